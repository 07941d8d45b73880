"""`doseflow backfill` against real PACSes (Orthanc, and dcmqrscp as a weaker one), with the real
receiver and workers: exactly the dose objects are moved and stored, a second run moves nothing,
an interrupted run resumes without duplicates, a capped PACS is handled by splitting, and the
configuration errors name the setting to fix."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import psycopg
import pytest

from tests.conftest import assert_matches_expected
from tests.integration.conftest import doseflow, ledger, wait_until
from tests.integration.pacs import WINDOW, free_port, echo, start_dcmqrscp, start_orthanc, study_set

pytestmark = pytest.mark.integration

FROM, TO = (d.isoformat() for d in WINDOW)


@pytest.fixture
def db_env(database_url, tmp_path):
    """doseflow's environment for runs that need no broker (dry runs, errors before any move)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEFLOW_")}
    env.update(DOSEFLOW_DATABASE_URL=database_url, DOSEFLOW_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1",
               DOSEFLOW_BACKFILL_PACE_SECONDS="0")
    return env


@pytest.fixture
def receiver(workers, doseflow_env, tmp_path):
    """doseflow's receiver (AE DOSEFLOW) on a free port; the pipeline workers start with `pipeline()`."""
    root, port = tmp_path / "incoming", free_port()
    built = tmp_path / "built"
    workers.env = {**doseflow_env, "DOSEFLOW_INGEST_ROOTS": f"{root},{built}", "DOSEFLOW_TOSHIBA_OUTPUT_DIR": str(built),
                   "DOSEFLOW_RECEIVER_ROOT": str(root), "DOSEFLOW_RECEIVER_PORT": str(port),
                   "DOSEFLOW_RECEIVER_AE_TITLE": "DOSEFLOW", "DOSEFLOW_TOSHIBA_QUIET_SECONDS": "2",
                   "DOSEFLOW_BACKFILL_PACE_SECONDS": "0"}
    proc = workers.start("receiver")
    wait_until(lambda: proc.poll() is not None or echo(port, "DOSEFLOW"), timeout=60, what="receiver C-ECHO")
    assert proc.poll() is None, workers.logs()
    return port, root


def received(workers) -> Counter:
    """SOP Instance UIDs the receiver answered a C-STORE for, each time it did."""
    text = "".join(f.read_text(errors="replace") for f in workers.log_dir.glob("receiver-*.log"))
    return Counter(re.findall(r"received .* from \S+: .*/([0-9.]+)\.dcm", text))


def query(url: str, sql: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def backfill(env, *args, check=False):
    return doseflow(env, "backfill", *args, check=check)


def assert_expected_except_dates(report: dict, case: str) -> None:
    """Every value the corpus expects for `case`, but the study date (moved into the test
    window) and the patient age that follows from it."""
    assert_matches_expected(report, case, skip=("study.study_date", "patient.age"))


def test_orthanc_backfill_moves_exactly_the_dose_objects_and_a_second_run_nothing(receiver, workers, tmp_path,
                                                                                 database_url):
    port, root = receiver
    items = study_set()
    pacs = start_orthanc(tmp_path / "orthanc", port)
    try:
        pacs.load([i.ds for i in items])
        workers.start_pipeline()
        env = workers.env
        t0 = time.monotonic()
        run = backfill(env, "--pacs", pacs.node, "--from", FROM, "--to", TO)
        elapsed = time.monotonic() - t0
        assert run.returncode == 0, run.stdout + run.stderr + workers.logs()
        dose = {i.ds.SOPInstanceUID: i.label for i in items if i.dose}
        got = received(workers)
        # Exactly the dose objects, each once, as the receiver saw them ...
        assert set(got) == set(dose), {"missing": [dose[u] for u in set(dose) - set(got)],
                                       "extra": [i.label for i in items if i.ds.SOPInstanceUID in set(got) - set(dose)]}
        assert max(got.values()) == 1
        # ... and as the PACS counted its C-MOVE sub-operations.
        [(sent, failed)] = query(database_url, "SELECT sum(completed), sum(failed) FROM backfill_request"
                                               " WHERE command = 'C-MOVE'")
        assert (sent, failed) == (len(dose), 0)
        # Every instance considered has its decision and reason.
        decisions = dict(query(database_url, "SELECT sop_instance_uid, decision FROM backfill_instance"))
        assert {u for u, d in decisions.items() if d == "retrieved"} == set(dose)
        labels = {i.ds.SOPInstanceUID: i.label for i in items}
        reasons = {labels[u]: r for u, r in query(database_url, "SELECT sop_instance_uid, reason FROM backfill_instance")}
        assert "For Presentation" in reasons["MG-Im-GE_Seno_1_ForProcessing.dcm"]
        assert "not a dose report" in reasons["ESR_non-dose.dcm"]
        series = {r[0]: r[1:] for r in query(database_url, "SELECT description, decision, reason FROM backfill_series")}
        assert series["PET RAW"][0] == "excluded" and "never retrieved" in series["PET RAW"][1]
        assert series["Thorax 1.0"][0] == "not_dose"

        # The pipeline stores what came in: the studies equal the corpus' expected values.
        paths = [str(root / i.ds.StudyInstanceUID / f"{i.ds.SOPInstanceUID}.dcm") for i in items if i.dose]
        wait_until(lambda: all(ledger(database_url).get(p, ("",))[0] in ("stored", "ignored") for p in paths),
                   timeout=90, what="every retrieved object through the pipeline")
        # The legacy CT study's images are in the ledger once built; the RDSR built from them follows.
        wait_until(lambda: len(json.loads(doseflow(env, "studies", "--json").stdout)) >= 10, timeout=60, interval=1,
                   what="the legacy CT study built and stored")
        studies = {s["study"]["study_instance_uid"]: s for s in
                   json.loads(doseflow(env, "studies", "--json").stdout)}
        by_case = {i.label.removesuffix(".dcm"): i.ds.StudyInstanceUID for i in items}
        by_case["toshiba_cx_head_scanogram"] = next(i.ds.StudyInstanceUID for i in items if "toshiba" in i.label)
        by_case["DX-Im-GE_XR220"] = by_case["DX-Im-GE_XR220-1"]
        by_case["MG-Im-GE_Seno"] = by_case["MG-Im-GE_Seno_1_ForPresentation"]
        by_case["CT-RDSR-Siemens-Multi"] = by_case["CT-RDSR-Siemens-Multi-1"]
        for case in ("CT-RDSR-Siemens_Flash-TAP-SS", "CT-RDSR-Siemens-Multi", "MG-Im-GE_Seno", "MG-RDSR-Hologic_2D",
                     "DX-Im-GE_XR220", "DX-RDSR-Canon_CXDI", "CT-SC-Philips_Brilliance16P", "RF-RDSR-Siemens-Zee",
                     "CT-ESR-GE_Optima", "toshiba_cx_head_scanogram"):
            assert_expected_except_dates(studies[by_case[case]], case)
        assert len(studies) == 10  # the non-dose ESR study stores nothing

        # A second run moves nothing: every dose object is held.
        again = backfill(env, "--pacs", pacs.node, "--from", FROM, "--to", TO)
        assert again.returncode == 0, again.stderr
        run2 = query(database_url, "SELECT max(id) FROM backfill_run")[0][0]
        assert query(database_url, "SELECT count(*) FROM backfill_request WHERE run_id = %s AND command = 'C-MOVE'",
                     run2) == [(0,)]
        held = query(database_url, "SELECT reason FROM backfill_instance WHERE run_id = %s AND decision = 'held'", run2)
        assert len(held) == len(dose) and all("in the ledger" in r or "legacy CT" in r for (r,) in held)
        assert sum(received(workers).values()) == len(dose)

        finds, moves = (query(database_url, "SELECT count(*) FROM backfill_request WHERE run_id = 1 AND command = %s", c)[0][0]
                        for c in ("C-FIND", "C-MOVE"))
        print(f"\n30-day window on Orthanc: {len(dose)} objects from 10 dose studies; C-FIND {finds}, C-MOVE {moves}; "
              f"run {elapsed:.1f} s (pace 0)")
        names = {}
        for i in items:
            names.setdefault(i.ds.StudyInstanceUID, i.label.split(" ")[0].removesuffix(".dcm"))
        for uid, decision, ms, n in query(
                database_url, "SELECT s.study_instance_uid, s.decision, s.elapsed_ms, count(i.*) FILTER"
                " (WHERE i.decision = 'retrieved') FROM backfill_study s LEFT JOIN backfill_instance i USING"
                " (run_id, study_instance_uid) WHERE s.run_id = 1 GROUP BY 1, 2, 3 ORDER BY 1"):
            print(f"  {names.get(uid, uid):40} {decision:9} retrieved {n:2}  {ms or 0:6} ms")
    finally:
        pacs.stop()


def test_dcmqrscp_weak_pacs_is_served_by_its_profile(receiver, workers, tmp_path, database_url):
    """dcmqrscp ignores ModalitiesInStudy and returns no description, SOP class or counts: one study
    query per day, SR series fetched whole by instance (the classifier decides), images judged by
    series number. What such a PACS cannot tell is recorded, not guessed."""
    port, root = receiver
    items = study_set()
    pacs = start_dcmqrscp(tmp_path / "dcmqrscp", port)
    try:
        pacs.load([i.ds for i in items])
        run = backfill(workers.env, "--pacs", pacs.node, "--from", FROM, "--to", TO)
        assert run.returncode == 0, run.stdout + run.stderr + workers.logs()
        [(profile,)] = query(database_url, "SELECT profile FROM backfill_node")
        assert profile["matches_modalities_in_study"] is False and profile["image_sop_class"] is False
        labels = {i.ds.SOPInstanceUID: i.label for i in items}
        got = {labels[u] for u in received(workers)}
        dose = {i.label for i in items if i.dose}
        # What this PACS does not let us tell apart, by design:
        unseen = {"CT-SC-Philips_Brilliance16P.dcm"}  # no SeriesDescription: no "Dose Info" series to be seen
        extra = {"MG-Im-GE_Seno_1_ForProcessing.dcm",  # no SOP class: For Processing cannot be told
                 "ESR_non-dose.dcm",  # an SR of unknown class: the classifier decides (ignored)
                 "toshiba IM00008.dcm", "toshiba IM00009.dcm"}  # first image of the key-image / MPR SC series
        assert got == (dose - unseen) | extra
        reason = query(database_url, "SELECT reason FROM backfill_series WHERE decision = 'unsupported'")
        assert reason and "no SeriesDescription" in reason[0][0]
        assert "fake PET raw data" not in got
        assert query(database_url, "SELECT count(*) FROM backfill_request WHERE command = 'C-FIND' AND level = 'STUDY'"
                     " AND keys ? 'ModalitiesInStudy'")[0][0] <= 2  # only the probe's
        finds, moves = (query(database_url, "SELECT count(*) FROM backfill_request WHERE command = %s", c)[0][0]
                        for c in ("C-FIND", "C-MOVE"))
        print(f"\n30-day window on dcmqrscp: {len(got)} objects retrieved; C-FIND {finds}, C-MOVE {moves}")
    finally:
        pacs.stop()


def test_an_interrupted_run_resumes_without_duplicates(receiver, workers, tmp_path, database_url):
    port, _ = receiver
    items = study_set()
    pacs = start_orthanc(tmp_path / "orthanc", port)
    try:
        pacs.load([i.ds for i in items])
        env = {**workers.env, "DOSEFLOW_BACKFILL_PACE_SECONDS": "0.05"}
        proc = subprocess.Popen([sys.executable, "-m", "doseflow", "backfill", "--pacs", pacs.node, "--from", FROM,
                                 "--to", TO], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: proc.poll() is not None or query(
            database_url, "SELECT count(*) FROM backfill_instance WHERE decision = 'retrieved'")[0][0] >= 3
            if query(database_url, "SELECT to_regclass('backfill_instance')")[0][0] else False,
            timeout=60, interval=0.05, what="some objects retrieved")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, out + err
        assert "--resume" in err
        [(status,)] = query(database_url, "SELECT status FROM backfill_run")
        assert status == "interrupted"
        first = received(workers)
        assert 3 <= sum(first.values()) < sum(i.dose for i in items)

        resumed = backfill(env, "--resume")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        got = received(workers)
        assert set(got) == {i.ds.SOPInstanceUID for i in items if i.dose}
        assert max(got.values()) == 1  # nothing moved twice
        assert query(database_url, "SELECT id, status FROM backfill_run") == [(1, "completed")]
    finally:
        pacs.stop()


def test_an_object_the_move_fails_is_retried_once_recorded_failed_and_the_run_goes_on(receiver, workers, tmp_path,
                                                                                     database_url):
    """A DX series holding an image our receiver refuses (an intra-oral image class it does not
    accept): Orthanc fails the series move (0xC000, nothing sent); each object is then retried once
    on its own, the refused one is recorded failed with the status, and the next study is moved."""
    port, _ = receiver
    items = [i for i in study_set() if i.label in ("DX-Im-GE_XR220-1.dcm", "DX-Im-GE_XR220-2.dcm",
                                                   "RF-RDSR-Siemens-Zee.dcm")]
    refused = items[1].ds
    refused.SOPClassUID = refused.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.3"
    pacs = start_orthanc(tmp_path / "orthanc", port)
    try:
        pacs.load([i.ds for i in items])
        run = backfill(workers.env, "--pacs", pacs.node, "--from", FROM, "--to", TO)
        assert run.returncode == 1, run.stdout + run.stderr
        decisions = {u: (d, r) for u, d, r in query(database_url, "SELECT sop_instance_uid, decision, reason"
                                                                   " FROM backfill_instance")}
        assert decisions[refused.SOPInstanceUID][0] == "failed"
        assert "0xC000" in decisions[refused.SOPInstanceUID][1]
        assert decisions[items[0].ds.SOPInstanceUID][0] == "retrieved"
        assert decisions[items[2].ds.SOPInstanceUID][0] == "retrieved"  # the run went on
        assert set(received(workers)) == {items[0].ds.SOPInstanceUID, items[2].ds.SOPInstanceUID}
        assert query(database_url, "SELECT status FROM backfill_run") == [("completed",)]
    finally:
        pacs.stop()


def test_a_pacs_capping_its_answers_is_queried_in_smaller_slices(db_env, tmp_path, database_url):
    """Orthanc answering at most 4 matches: six studies of one day come back 4 and a Cancel status,
    so the day is split (never taken as complete) until every part answers in full; with the cap
    configured, a part answering exactly 4 is split too."""
    items = [i for i in study_set() if i.label in (
        "CT-RDSR-Siemens_Flash-TAP-SS.dcm", "MG-RDSR-Hologic_2D.dcm", "DX-RDSR-Canon_CXDI.dcm",
        "RF-RDSR-Siemens-Zee.dcm", "CT-ESR-GE_Optima.dcm", "ESR_non-dose.dcm")]
    for k, item in enumerate(items):  # one day, two in the morning, four in the afternoon
        item.ds.StudyDate, item.ds.StudyTime = "20240110", ("0815", "0930", "1300", "1415", "1530", "1645")[k]
    pacs = start_orthanc(tmp_path / "orthanc", free_port(), limit_find=4)
    try:
        pacs.load([i.ds for i in items])
        env = {**db_env, "DOSEFLOW_BACKFILL_PACE_SECONDS": "0", "DOSEFLOW_BACKFILL_PROFILE": "max_answers=4"}
        run = backfill(env, "--pacs", pacs.node, "--from", "2024-01-10", "--to", "2024-01-10", "--dry-run")
        assert run.returncode == 0, run.stdout + run.stderr
        slices = query(database_url, "SELECT time_from, time_to, status, studies FROM backfill_slice ORDER BY 1, 2")
        assert ("000000", "235959", "split", 0) in slices and ("120000", "235959", "split", 0) in slices
        done = [s for s in slices if s[2] == "done"]
        assert sum(s[3] for s in done) == 6
        assert all(s[3] < 4 for s in done)
        would = [l for l in run.stdout.splitlines() if l.startswith("would retrieve")]
        assert len(would) == 5  # every dose report, not the non-dose ESR
        assert query(database_url, "SELECT count(*) FROM backfill_request WHERE command = 'C-MOVE'") == [(0,)]
    finally:
        pacs.stop()


def test_an_unreachable_pacs_is_a_clear_error_and_nothing_is_done(db_env, database_url):
    run = backfill(db_env, "--pacs", f"NOPACS@127.0.0.1:{free_port()}", "--from", FROM, "--to", TO)
    assert run.returncode == 2
    assert "cannot reach the PACS NOPACS@127.0.0.1" in run.stderr and "--pacs" in run.stderr
    assert query(database_url, "SELECT count(*) FROM backfill_run") == [(0,)]


def test_a_pacs_that_does_not_know_our_ae_title_names_the_setting(db_env, tmp_path, database_url):
    pacs = start_orthanc(tmp_path / "orthanc", free_port())
    try:
        env = {**db_env, "DOSEFLOW_RECEIVER_AE_TITLE": "STRANGER", "DOSEFLOW_BACKFILL_PACE_SECONDS": "0"}
        run = backfill(env, "--pacs", pacs.node, "--from", FROM, "--to", TO)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "DOSEFLOW_RECEIVER_AE_TITLE" in run.stderr and "'STRANGER'" in run.stderr
        assert query(database_url, "SELECT count(*) FROM backfill_slice WHERE status = 'done'") == [(0,)]
    finally:
        pacs.stop()


@pytest.mark.parametrize("kind", ["orthanc", "dcmqrscp"])
def test_a_refused_move_destination_names_the_setting(kind, db_env, tmp_path, database_url):
    """dcmqrscp does not know DOSEFLOW as a destination (0xA801); Orthanc knows it at a port where
    nothing listens (0xC000, nothing sent)."""
    items = [i for i in study_set() if i.label == "RF-RDSR-Siemens-Zee.dcm"]
    if kind == "orthanc":
        pacs = start_orthanc(tmp_path / kind, free_port())
    else:
        pacs = start_dcmqrscp(tmp_path / kind, free_port(), move_destination=False)
    try:
        pacs.load([i.ds for i in items])
        env = {**db_env, "DOSEFLOW_BACKFILL_PACE_SECONDS": "0"}
        run = backfill(env, "--pacs", pacs.node, "--from", FROM, "--to", TO)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "DOSEFLOW_RECEIVER_AE_TITLE" in run.stderr and "destination" in run.stderr
        assert ("0xA801" if kind == "dcmqrscp" else "0xC000") in run.stderr
        assert query(database_url, "SELECT count(*) FROM backfill_instance WHERE decision = 'retrieved'") == [(0,)]
        assert query(database_url, "SELECT status FROM backfill_run") == [("interrupted",)]
    finally:
        pacs.stop()
