"""DOSEFLOW_PATH_MAP: a worker host whose share is mounted elsewhere opens the same file."""
from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from shared.outcome import Failed
from shared.paths import check_ingest_path, map_path, parse_path_map
from shared.settings import Settings

MAP = parse_path_map(["/mnt/pacs=/data/incoming", "/mnt/pacs/ct=/ct-share", "/srv/x/=/y/"])


def test_a_mapped_prefix_is_replaced():
    assert map_path("/mnt/pacs/1.2/3.4.dcm", MAP) == "/data/incoming/1.2/3.4.dcm"
    assert map_path("/srv/x/a.dcm", MAP) == "/y/a.dcm"


def test_the_longest_matching_prefix_wins():
    assert map_path("/mnt/pacs/ct/a.dcm", MAP) == "/ct-share/a.dcm"
    assert map_path("/mnt/pacs/ctx/a.dcm", MAP) == "/data/incoming/ctx/a.dcm"
    # Order in the setting does not matter.
    assert map_path("/mnt/pacs/ct/a.dcm", list(reversed(MAP))) == "/ct-share/a.dcm"


def test_only_whole_path_components_match():
    assert map_path("/mnt/pacs2/a.dcm", MAP) == "/mnt/pacs2/a.dcm"
    assert map_path("/mnt/pacsa.dcm", MAP) == "/mnt/pacsa.dcm"
    assert map_path("/srv/xy/a.dcm", MAP) == "/srv/xy/a.dcm"


def test_the_mapped_folder_itself_maps_to_the_target():
    assert map_path("/mnt/pacs", MAP) == "/data/incoming"
    assert map_path("/mnt/pacs/", MAP) == "/data/incoming"


def test_an_unmapped_path_is_unchanged():
    assert map_path("/data/incoming/a.dcm", MAP) == "/data/incoming/a.dcm"
    assert map_path("/data/incoming/a.dcm", []) == "/data/incoming/a.dcm"


def test_the_root_folder_can_be_mapped():
    assert map_path("/a/b.dcm", parse_path_map(["/=/chroot"])) == "/chroot/a/b.dcm"


@pytest.mark.parametrize("entry", ["/mnt/pacs", "mnt/pacs=/data", "/mnt/pacs=data", "=/data"])
def test_a_malformed_entry_is_refused_with_its_text(entry):
    with pytest.raises(ValueError, match="path map entry"):
        parse_path_map([entry])


def test_the_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DOSEFLOW_PATH_MAP", "/mnt/pacs=/data/incoming, /srv/x=/y")
    assert Settings().path_map == [("/mnt/pacs", "/data/incoming"), ("/srv/x", "/y")]
    monkeypatch.setenv("DOSEFLOW_PATH_MAP", "/mnt/pacs")
    with pytest.raises(ValidationError, match="is not FROM=TO"):
        Settings()
    monkeypatch.delenv("DOSEFLOW_PATH_MAP")
    assert Settings().path_map == []


def test_the_ingest_root_check_applies_to_the_mapped_path(tmp_path):
    root = tmp_path / "incoming"
    (root / "1.2").mkdir(parents=True)
    (root / "1.2" / "a.dcm").write_bytes(b"x")
    path_map = parse_path_map([f"/mnt/pacs={root}"])
    assert check_ingest_path("/mnt/pacs/1.2/a.dcm", [str(root)], path_map) == os.path.realpath(root / "1.2" / "a.dcm")
    # Unmapped, the producer's path is outside the roots and refused.
    with pytest.raises(Failed, match="outside"):
        check_ingest_path("/mnt/pacs/1.2/a.dcm", [str(root)])
    # A mapped path that climbs out of the root is still refused.
    with pytest.raises(Failed, match="outside"):
        check_ingest_path("/mnt/pacs/../../etc/passwd", [str(root)], path_map)
