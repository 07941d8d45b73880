"""A legacy Toshiba study, collected object by object as the builder service does, built into a
real RDSR that dcmtk accepts and that re-imports to the expected values."""
from __future__ import annotations

import io
import os
import shutil
import subprocess

import pydicom
import pytest

from services.extractors.routes import extract
from services.toshiba_builder.ocr import ocr_available
from services.toshiba_builder.study import Collected, build, collect, finish, header_report, warnings_report
from services.writer.assembly import assemble
from tests.conftest import CORPUS, assert_matches_expected, expected

CASES = ["toshiba_cx_head_scanogram", "toshiba_cxl_cap_contrast"]
_BUILT: dict[str, tuple] = {}


@pytest.fixture
def ocr():
    if not ocr_available():
        if os.environ.get("CI"):
            pytest.fail("tesseract is not installed in CI")
        pytest.skip("tesseract not installed")


def collected(case: str) -> list[Collected]:
    folder = CORPUS / "toshiba" / case
    if not folder.is_dir():
        pytest.fail(f"corpus case folder missing: {folder}")
    return [collect(pydicom.dcmread(p, stop_before_pixels=True), str(p)) for p in sorted(folder.glob("*.dcm"))]


def built(case: str):
    if case not in _BUILT:  # OCR takes seconds: build each study once for all tests
        objects = collected(case)
        _BUILT[case] = (objects, *build(objects, pydicom.dcmread))
    return _BUILT[case]


def as_read_back(ds) -> pydicom.Dataset:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("case", CASES)
def test_the_built_rdsr_re_imports_to_the_expected_values(case, ocr):
    _, _, rdsr = built(case)
    report = extract(as_read_back(rdsr), "rdsr")
    assert_matches_expected(report.model_dump(mode="json"), case)
    assert report.study.study_instance_uid == expected(case)["study_instance_uid"]


@pytest.mark.parametrize("case", CASES)
def test_dcmtk_reads_the_built_rdsr_without_errors(case, ocr, tmp_path):
    if shutil.which("dsrdump") is None:
        if os.environ.get("CI"):
            pytest.fail("dsrdump (dcmtk) is not installed in CI")
        pytest.skip("dcmtk not installed")
    _, _, rdsr = built(case)
    path = tmp_path / "built.dcm"
    pydicom.dcmwrite(path, rdsr, enforce_file_format=True)
    done = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "E:" not in done.stderr and "error" not in done.stderr.lower(), done.stderr
    assert "X-Ray Radiation Dose Report" in done.stdout


def test_rebuilding_the_same_objects_gives_the_same_rdsr_uid(ocr):
    objects, _, rdsr = built("toshiba_cx_head_scanogram")
    _, again = build(list(reversed(objects)), pydicom.dcmread)
    assert again.SOPInstanceUID == rdsr.SOPInstanceUID
    assert [e.irradiation_event_uid for e in extract(as_read_back(again), "rdsr").ct.events] == \
        [e.irradiation_event_uid for e in extract(as_read_back(rdsr), "rdsr").ct.events]


def test_a_study_with_its_own_rdsr_is_not_rebuilt_and_its_empty_fields_are_filled_from_the_headers(ocr):
    # Given a scanner RDSR (CXL V4.86-like) that leaves study description and requested procedure empty
    objects, _, rdsr = built("toshiba_cxl_cap_contrast")
    own = extract(as_read_back(rdsr), "rdsr")
    own.study.study_description = None
    own.study.requested_procedure = None
    own.equipment.software_versions = None
    # When the builder finishes the quiet study
    done = finish(objects, [("rdsr", own.sources[0].sop_instance_uid)], set(), pydicom.dcmread)
    # Then nothing is built from the screen, and stored beside the RDSR the header report fills
    # the empty study-level fields without touching what the RDSR states
    assert done.status == "skipped" and done.rdsr is None
    study = assemble([own, done.header_report])
    headers = header_report(objects)
    assert study.study.study_description == headers.study.study_description is not None
    assert study.equipment.software_versions == headers.equipment.software_versions is not None
    assert study.ct == own.ct
    assert study.study.study_date == own.study.study_date


def test_an_image_only_study_ends_without_a_summary_with_a_reason_naming_the_study():
    images = [o for o in collected("toshiba_cx_head_scanogram") if o.kind == "image"]
    done = finish(images, [], set(), pydicom.dcmread)
    assert done.status == "no_summary" and done.rdsr is None
    assert done.reason == f"legacy CT study without a dose summary page: {len(images)} images of TOSHIBA Aquilion"


def test_build_warnings_travel_into_the_stored_study_through_a_report_beside_the_rdsr(ocr):
    objects = collected("toshiba_cxl_cap_contrast")
    # One acquisition's images are missing: its screen row matches no image, and says so.
    first_series = next(o.sample.series_instance_uid for o in objects if o.kind == "image" and not o.sample.localizer)
    objects = [o for o in objects if o.kind != "image" or o.sample.series_instance_uid != first_series]
    done = finish(objects, [], set(), pydicom.dcmread)
    assert done.status == "built"
    notes = done.warnings_report
    assert notes is not None and notes.ct is None
    assert any("no CT image with the same Toshiba CTDIvol" in w for w in notes.warnings)
    rdsr_report = extract(as_read_back(done.rdsr), "rdsr")
    study = assemble([rdsr_report, notes])
    assert study.warnings == notes.warnings + [w for w in rdsr_report.warnings if w not in notes.warnings]
    assert study.ct == rdsr_report.ct
    # The missing images arrive: the study is rebuilt, has nothing to say, and its empty warnings report
    # replaces the earlier one, so the stored study no longer carries the stale warning.
    again = finish(collected("toshiba_cxl_cap_contrast"), [], {str(done.rdsr.SOPInstanceUID)}, pydicom.dcmread)
    assert again.status == "built" and again.warnings_report.warnings == []
    assert again.warnings_report.sources[0].sop_instance_uid != notes.sources[0].sop_instance_uid
    rebuilt_report = extract(as_read_back(again.rdsr), "rdsr")
    study = assemble([rdsr_report, notes, rebuilt_report, again.warnings_report])
    assert study.warnings == rdsr_report.warnings and study.ct == rebuilt_report.ct
    # a first build with nothing to say stores no warnings report at all
    assert warnings_report(objects, rebuilt_report.model_copy(update={"warnings": []}), "1.2.3") is None
