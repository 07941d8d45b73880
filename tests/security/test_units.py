"""The guards as pure functions (no services): safe open, capped inflation, password hiding,
privacy rounding and pseudonyms, hostile dead-letter bodies."""
from __future__ import annotations

import errno
import io
import json
import os
import zlib

import pytest

from doseflow.configuration import _hide_password
from doseflow.importer import expand_paths
from services.extractors.common import ExtractOptions
from services.extractors.privacy import protect, rounded_age
from shared import dicom
from shared.dead_letters import _describe
from shared.ledger import storable_path, storable_text
from shared.report import DoseCheck, DoseReport, Patient, Source, Study
from tests.security import attacks


def test_a_fifo_device_or_folder_is_refused_without_blocking(tmp_path):
    fifo = attacks.make_fifo(tmp_path / "pipe")
    with pytest.raises(dicom.NotRegularFile, match="FIFO"):
        dicom.open_regular(str(fifo))  # would block for ever with a plain open()
    with pytest.raises(dicom.NotRegularFile, match="character device"):
        dicom.open_regular("/dev/zero")
    with pytest.raises(IsADirectoryError):
        dicom.open_regular(str(tmp_path))


def test_os_errors_are_worded_with_their_code(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OSError) as loop:
        dicom.open_regular(str(tmp_path / "a"))
    assert "ELOOP" in dicom.os_reason(loop.value)
    with pytest.raises(OSError) as long:
        dicom.open_regular(str(tmp_path / ("x" * 300)))
    assert "ENAMETOOLONG" in dicom.os_reason(long.value)


def test_inflation_stops_at_the_cap_whatever_the_ratio():
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = compressor.compress(bytes(50 << 20)) + compressor.flush()
    assert len(bomb) < 100_000
    with pytest.raises(dicom.InflationLimit, match="inflates beyond 1 MB"):
        dicom.inflate_capped(io.BytesIO(bomb), 1 << 20)
    assert dicom.inflate_capped(io.BytesIO(bomb), 64 << 20).getbuffer().nbytes == 50 << 20


def test_a_small_deflated_object_still_reads(tmp_path):
    path = tmp_path / "small.dcm"
    ds = attacks.write_deflate_bomb(path, 1000)
    read = dicom.read_object(str(path))
    assert read.SOPInstanceUID == ds.SOPInstanceUID and len(read.PixelData) == 1000
    assert "PixelData" not in dicom.read_object(str(path), header_only=True)


def test_import_lists_a_folder_it_cannot_read(tmp_path, monkeypatch):
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.dcm").write_bytes(b"x")
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    unreadable = []
    assert expand_paths([str(tmp_path)], unreadable) == [str(tmp_path / "ok" / "a.dcm")]
    assert unreadable == [(str(tmp_path / "locked"), "folder not readable: Permission denied [EACCES] (permission denied)")]


@pytest.mark.parametrize("url, secret", [
    ("postgresql://app:s3cret@db/doseflow", "s3cret"),
    ("host=db user=app password=s3cret dbname=doseflow", "s3cret"),
    ("host=db password='s3 cret' dbname=doseflow", "s3 cret"),
    ("postgresql://db/doseflow?user=app&password=s3cret&sslmode=verify-full", "s3cret"),
    ("amqps://user:s3cret@broker:5671/%2F", "s3cret"),
])
def test_config_hides_every_form_of_password(url, secret):
    shown = _hide_password(url)
    assert secret not in shown and "***" in shown


def test_nul_never_reaches_the_database_text():
    assert "\x00" not in storable_path("/data/a\x00b.dcm")
    assert storable_path("/data/a\x00b.dcm") == "/data/a\\x00b.dcm"
    assert storable_text("why\x00") == "why\ufffd"


def test_a_deeply_nested_dead_letter_body_is_described_not_crashed():
    body = b"[" * 100_000 + b"]" * 100_000
    letter = _describe("ingest", body, {})
    assert letter.path is None and letter.reason
    assert _describe("ingest", json.dumps({"path": {"nested": 1}}).encode(), {}).path is None


def test_age_is_rounded_to_a_tenth_or_floored_to_whole_years():
    assert rounded_age(45.678) == 45.7
    assert rounded_age(45.678, "1") == 45.0
    assert rounded_age(0.04) == 0.0
    assert rounded_age(None) is None


def report(**study) -> DoseReport:
    return DoseReport(study=Study(study_instance_uid="1.2", **study), patient=Patient(age_years=61.23456),
                      sources=[Source(route="rdsr", sop_class_uid="1.2.3", sop_instance_uid="1.2.3.4")])


def test_staff_names_and_accession_are_hashed_with_the_key_or_dropped():
    r = report(operator_name="Smith^Jane", referring_physician_name="Doe^J", accession_number="ACC123")
    protect(r, ExtractOptions(patient_hash_key=b"k", staff_names="hash", accession_number="hash"))
    assert r.patient.age_years == 61.2
    assert len(r.study.operator_name) == 64 and "Smith" not in r.study.operator_name
    assert len(r.study.accession_number) == 64
    hashed = r.study.operator_name
    protect(r, ExtractOptions(patient_hash_key=b"k", staff_names="hash", accession_number="hash"))
    assert r.study.operator_name == hashed  # applying twice changes nothing
    r = report(operator_name="Smith^Jane", accession_number="ACC123")
    protect(r, ExtractOptions(staff_names="hash", accession_number="drop"))  # no key: nothing reversible kept
    assert r.study.operator_name is None and r.study.accession_number is None
    check = DoseCheck(alert_person_name="Smith^Jane")
    protect(check, ExtractOptions(staff_names="drop"))
    assert check.alert_person_name is None
