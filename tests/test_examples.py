"""The bundled example objects (examples/): synthetic, written by doseflow's own code, and never
drifting from it."""
from __future__ import annotations

import pydicom
import pytest

from doseflow.examples import ROOT, examples, write_examples
from services.extractors.routes import extract
from shared import device
from tests.conftest import REPO

COMMITTED = REPO / "examples"


pytestmark = pytest.mark.usefixtures("strict_pydicom")


def test_regenerating_the_examples_reproduces_the_committed_files_byte_for_byte(tmp_path):
    # Given the committed examples, When they are regenerated from the code
    paths = write_examples(tmp_path)
    # Then the same files, with the same bytes, and no stale committed file
    assert sorted(p.name for p in paths) == sorted(p.name for p in COMMITTED.glob("*.dcm"))
    for path in paths:
        assert path.read_bytes() == (COMMITTED / path.name).read_bytes(), (
            f"examples/{path.name} differs from what doseflow/examples.py writes: "
            "run `python -m doseflow.examples examples/` and commit the result")


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.filename)
def test_each_committed_example_extracts_to_the_report_it_was_made_from(example):
    report = extract(pydicom.dcmread(COMMITTED / example.filename), "rdsr")
    assert report.warnings == []
    # the device key is derived after every route (shared/device.py), not written into the object
    assert report.equipment.device_key == device.key_of(report)
    unkeyed = report.equipment.model_copy(update={"device_key": None})
    assert report.model_copy(update={"sources": [], "equipment": unkeyed}) == example.report
    assert report.sources[0].sop_instance_uid == example.sop_instance_uid


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.filename)
def test_examples_are_small_synthetic_and_say_so(example):
    path = COMMITTED / example.filename
    ds = pydicom.dcmread(path)
    assert path.stat().st_size < 32_000
    assert ds.InstitutionName == "DOSEFLOW EXAMPLE HOSPITAL"
    assert str(ds.PatientName).startswith("EXAMPLE^")
    assert ds.PatientBirthDate == ""
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert uid.startswith(ROOT + ".")


def test_every_example_total_is_the_sum_of_its_events():
    for example in examples():
        ct = example.report.ct
        assert ct.total_events == len(ct.events)
        assert ct.total_dlp_mGycm == pytest.approx(sum(e.dlp_mGycm for e in ct.events))
        if ct.total_effective_dose_mSv is not None:
            assert ct.total_effective_dose_mSv == pytest.approx(
                sum(e.effective_dose_mSv or 0 for e in ct.events))


def test_the_examples_hold_a_head_a_chest_abdomen_pelvis_and_a_continued_study():
    by_name = {e.filename: e.report for e in examples()}
    assert len(by_name["ct-head.dcm"].ct.events) == 2
    cap = by_name["ct-chest-abdomen-pelvis.dcm"].ct.events
    assert [e.acquisition_type for e in cap] == ["Constant Angle Acquisition", "Spiral Acquisition",
                                                  "Spiral Acquisition"]
    first, second = by_name["ct-continued-1.dcm"], by_name["ct-continued-2.dcm"]
    assert first.study.study_instance_uid == second.study.study_instance_uid
    assert not set(first.event_uids()) & set(second.event_uids())
    uids = [u for r in by_name.values() for u in r.event_uids()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.filename)
def test_dcmtk_reads_each_example_without_errors_or_warnings(example):
    import subprocess

    from tests.test_rdsr_writer import dsrdump_or_skip

    run = subprocess.run([dsrdump_or_skip(), str(COMMITTED / example.filename)], capture_output=True,
                         text=True, errors="replace", timeout=60)
    assert run.returncode == 0, run.stderr
    assert [line for line in (run.stdout + run.stderr).splitlines()
            if line.startswith(("W:", "E:", "F:"))] == []
