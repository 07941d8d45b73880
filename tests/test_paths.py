"""Ingest roots (shared/paths.py): a path is accepted only when its real location (symlinks and
`..` resolved) lies under a configured root; anything else is refused without being opened."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.outcome import Failed
from shared.paths import check_ingest_path


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """root/ (the ingest root) and its sibling rootx/ (same prefix, outside), with files and links."""
    root, outside = tmp_path / "root", tmp_path / "rootx"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a.dcm").write_bytes(b"")
    (root / "sub" / "b.dcm").write_bytes(b"")
    (outside / "secret.dcm").write_bytes(b"")
    (root / "escape.dcm").symlink_to(outside / "secret.dcm")
    (root / "escape-dir").symlink_to(outside)
    (root / "inside-link.dcm").symlink_to(root / "sub" / "b.dcm")
    return {"root": root, "outside": outside}


def refused(path: str, roots: list[str]) -> str:
    with pytest.raises(Failed) as caught:
        check_ingest_path(path, roots)
    return caught.value.reason


def test_a_file_inside_the_root_is_accepted_as_its_real_path(tree):
    root = tree["root"]
    assert check_ingest_path(str(root / "a.dcm"), [str(root)]) == os.path.realpath(root / "a.dcm")
    assert check_ingest_path(str(root / "sub" / "b.dcm"), [str(root)]) == os.path.realpath(root / "sub" / "b.dcm")


def test_any_of_several_roots_will_do(tree):
    roots = [str(tree["outside"]), str(tree["root"])]
    assert check_ingest_path(str(tree["root"] / "a.dcm"), roots)
    assert check_ingest_path(str(tree["outside"] / "secret.dcm"), roots)


def test_a_root_given_with_a_trailing_slash_still_matches(tree):
    assert check_ingest_path(str(tree["root"] / "a.dcm"), [str(tree["root"]) + "/"])


def test_a_link_that_stays_inside_the_root_is_accepted(tree):
    root = tree["root"]
    assert check_ingest_path(str(root / "inside-link.dcm"), [str(root)]) == os.path.realpath(root / "sub" / "b.dcm")


def test_a_file_outside_the_root_is_refused(tree):
    reason = refused(str(tree["outside"] / "secret.dcm"), [str(tree["root"])])
    assert "outside DOSEFLOW_INGEST_ROOTS" in reason


def test_a_sibling_folder_sharing_the_roots_name_as_prefix_is_outside(tree):
    # /x/rootx is not under /x/root even though the strings share a prefix
    assert str(tree["outside"]).startswith(str(tree["root"]))
    refused(str(tree["outside"] / "secret.dcm"), [str(tree["root"])])


def test_dot_dot_escaping_the_root_is_refused(tree):
    root = tree["root"]
    refused(f"{root}/sub/../../rootx/secret.dcm", [str(root)])


def test_dot_dot_that_stays_inside_the_root_is_accepted(tree):
    root = tree["root"]
    assert check_ingest_path(f"{root}/sub/../a.dcm", [str(root)]) == os.path.realpath(root / "a.dcm")


def test_a_symlinked_file_escaping_the_root_is_refused(tree):
    refused(str(tree["root"] / "escape.dcm"), [str(tree["root"])])


def test_a_symlinked_folder_escaping_the_root_is_refused(tree):
    refused(str(tree["root"] / "escape-dir" / "secret.dcm"), [str(tree["root"])])


def test_a_root_that_is_itself_a_link_is_resolved_too(tree, tmp_path):
    link_root = tmp_path / "incoming"
    link_root.symlink_to(tree["root"])
    assert check_ingest_path(str(tree["root"] / "a.dcm"), [str(link_root)])
    assert check_ingest_path(str(link_root / "a.dcm"), [str(tree["root"])])


def test_a_relative_path_is_refused(tree):
    reason = refused("root/a.dcm", [str(tree["root"])])
    assert "absolute" in reason


def test_a_relative_path_is_refused_even_without_roots():
    assert "absolute" in refused("a.dcm", [])


@pytest.mark.parametrize("roots", [[], ["/"]], ids=["no roots", "root /"])
def test_a_nul_byte_is_refused(roots):
    assert "NUL" in refused("/data/incoming/a.dcm\x00.txt", roots)


def test_an_empty_path_is_refused():
    refused("", [])


def test_without_roots_any_absolute_path_is_accepted(tree):
    assert check_ingest_path(str(tree["outside"] / "secret.dcm"), []) == os.path.realpath(tree["outside"] / "secret.dcm")
    assert check_ingest_path("/no-such-folder/a.dcm", []) == "/no-such-folder/a.dcm"
