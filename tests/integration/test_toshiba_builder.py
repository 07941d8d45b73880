"""The Toshiba builder behind the broker: legacy dose screens become real RDSRs, once."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time

import psycopg
import pytest

from tests.conftest import CORPUS, assert_matches_expected, expected
from tests.integration.conftest import doseflow, ledger, wait_until

pytestmark = pytest.mark.integration

CASE = "toshiba_cxl_cap_contrast"


def case_files(case: str, tmp_path):
    folder = CORPUS / "toshiba" / case
    if not folder.is_dir():
        pytest.fail(f"corpus case folder missing: {folder}")
    target = tmp_path / "incoming" / case
    shutil.copytree(folder, target)
    return sorted(str(p) for p in target.glob("*.dcm"))


@pytest.fixture
def quick_env(doseflow_env, tmp_path):
    return {**doseflow_env, "DOSEFLOW_TOSHIBA_QUIET_SECONDS": "2",
            "DOSEFLOW_TOSHIBA_OUTPUT_DIR": str(tmp_path / "built")}


def toshiba_state(database_url, uid):
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT status, builds, reason FROM toshiba_study WHERE study_instance_uid = %s",
                            (uid,)).fetchone()


def stored(env, uid):
    return json.loads(doseflow(env, "studies", "--json", "--study", uid).stdout)


def test_two_builders_build_a_published_legacy_study_once_with_the_expected_values(
        workers, quick_env, database_url, tmp_path):
    files = case_files(CASE, tmp_path)
    uid = expected(CASE)["study_instance_uid"]
    workers.env = quick_env
    workers.start_pipeline()
    workers.start("toshiba-builder")  # a second builder races for the same study
    doseflow(quick_env, "publish", *files)
    wait_until(lambda: stored(quick_env, uid), timeout=180, what="the built study")
    [study] = stored(quick_env, uid)
    assert_matches_expected(study, CASE)
    # The builder commits its own bookkeeping just after the RDSR went on its way.
    wait_until(lambda: (toshiba_state(database_url, uid) or ("",))[0] == "built", what="study marked built")
    time.sleep(3)  # give the second builder every chance to build it again
    assert toshiba_state(database_url, uid)[:2] == ("built", 1)
    assert len(list((tmp_path / "built").rglob("*.dcm"))) == 1
    outcomes = ledger(database_url)
    for f in files:  # dose pages and CT images went into the RDSR; other objects are ignored, said why
        assert outcomes[f][0] == ("ignored" if _kind(f) == "other" else "stored"), (f, outcomes[f])
    assert len(json.loads(doseflow(quick_env, "studies", "--json").stdout)) == 1


def test_a_ge_lightspeed_dose_report_study_is_built_through_the_services(workers, quick_env, database_url, tmp_path):
    case = "ge_lightspeed_head_chest"
    files = case_files(case, tmp_path)
    uid = expected(case)["study_instance_uid"]
    workers.env = quick_env
    workers.start_pipeline()
    doseflow(quick_env, "publish", *files)
    wait_until(lambda: stored(quick_env, uid), timeout=180, what="the built GE study")
    assert_matches_expected(stored(quick_env, uid)[0], case)
    kinds = {f: _kind(f) for f in files}
    assert "dose_page" in kinds.values()
    wait_until(lambda: all(ledger(database_url).get(f, ("",))[0] == ("ignored" if kinds[f] == "other" else "stored")
                           for f in files), what="the GE screen and images stored")


def test_a_builder_killed_mid_study_builds_it_once_with_all_objects_after_restart(
        workers, quick_env, database_url, tmp_path):
    files = case_files(CASE, tmp_path)
    uid = expected(CASE)["study_instance_uid"]
    env = {**quick_env, "DOSEFLOW_TOSHIBA_QUIET_SECONDS": "15"}
    kept = [f for f in files if _kind(f) != "other"]
    workers.env = env
    for kind in ("classifier", "extractor", "writer"):
        workers.start(kind)
    builder = workers.start("toshiba-builder")
    half = len(files) // 2
    doseflow(env, "publish", *files[:half])
    wait_until(lambda: _collected(database_url, uid) == len([f for f in files[:half] if f in kept]), timeout=60,
               what="half the study collected")
    os.kill(builder.pid, signal.SIGKILL)  # mid-study: collected, not yet quiet
    builder.wait()
    doseflow(env, "publish", *files[half:])
    time.sleep(1)
    workers.start("toshiba-builder")
    wait_until(lambda: stored(env, uid), timeout=180, what="the built study")
    [study] = stored(env, uid)
    assert_matches_expected(study, CASE)
    wait_until(lambda: (toshiba_state(database_url, uid) or ("",))[0] == "built", what="study marked built")
    assert _collected(database_url, uid) == len(kept)
    assert toshiba_state(database_url, uid)[:2] == ("built", 1)


def test_an_image_only_legacy_study_is_ignored_with_the_study_reason_and_built_when_its_summary_comes(
        workers, quick_env, database_url, tmp_path):
    files = case_files(CASE, tmp_path)
    uid = expected(CASE)["study_instance_uid"]
    images = [f for f in files if _kind(f) == "image"]
    workers.env = quick_env
    workers.start_pipeline()
    doseflow(quick_env, "publish", *images)
    wait_until(lambda: (toshiba_state(database_url, uid) or ("",))[0] == "no_summary", timeout=120,
               what="the study ended without a summary")
    reason = f"legacy CT study without a dose summary page: {len(images)} images of TOSHIBA Aquilion"
    assert toshiba_state(database_url, uid)[2] == reason
    assert {ledger(database_url)[f] for f in images} == {("ignored", reason)}
    assert stored(quick_env, uid) == []
    assert json.loads(doseflow(quick_env, "dead-letters", "list", "--json").stdout) == []
    status = json.loads(doseflow(quick_env, "status", "--json").stdout)
    assert status["dead_letters"] == 0
    assert status["legacy_ct_studies"] == {"waiting": 0, "without_summary": 1}
    # The summary arrives 10 s later: the study re-opens and is built with everything.
    time.sleep(10)
    doseflow(quick_env, "publish", *[f for f in files if f not in images])
    wait_until(lambda: stored(quick_env, uid), timeout=180, what="the built study")
    assert_matches_expected(stored(quick_env, uid)[0], CASE)
    wait_until(lambda: all(ledger(database_url)[f][0] == "stored" for f in files if _kind(f) != "other"),
               what="every dose page and image re-recorded stored")
    assert toshiba_state(database_url, uid)[0] == "built"
    assert json.loads(doseflow(quick_env, "dead-letters", "list", "--json").stdout) == []
    assert json.loads(doseflow(quick_env, "status", "--json").stdout)["legacy_ct_studies"] == {
        "waiting": 0, "without_summary": 0}


def test_a_rebuild_replaces_the_earlier_builds_warnings_in_the_stored_study(
        workers, quick_env, database_url, tmp_path):
    import pydicom

    from services.toshiba_builder.study import collect

    files = case_files(CASE, tmp_path)
    uid = expected(CASE)["study_instance_uid"]
    collected = {f: collect(pydicom.dcmread(f, stop_before_pixels=True), f) for f in files}
    first_series = next(c.sample.series_instance_uid for c in collected.values()
                        if c.kind == "image" and not c.sample.localizer)
    late = [f for f, c in collected.items() if c.kind == "image" and c.sample.series_instance_uid == first_series]
    workers.env = quick_env
    workers.start_pipeline()
    # One acquisition's images are late: its screen row matches no image, and the stored study says so.
    doseflow(quick_env, "publish", *[f for f in files if f not in late])
    unmatched = "no CT image with the same Toshiba CTDIvol"
    wait_until(lambda: any(unmatched in w for s in stored(quick_env, uid) for w in s["warnings"]), timeout=180,
               what="the study built with the unmatched-row warning")
    # They arrive: the study is rebuilt with every image, and the stale warning goes.
    doseflow(quick_env, "publish", *late)
    wait_until(lambda: toshiba_state(database_url, uid)[:2] == ("built", 2), timeout=180, what="the study rebuilt")
    wait_until(lambda: not any(unmatched in w for w in stored(quick_env, uid)[0]["warnings"]), timeout=60,
               what="the stale warning gone")
    [study] = stored(quick_env, uid)
    assert_matches_expected(study, CASE)


def _collected(database_url, uid) -> int:
    with psycopg.connect(database_url) as conn:
        try:
            return conn.execute("SELECT count(*) FROM toshiba_object WHERE study_instance_uid = %s",
                                (uid,)).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0


def _kind(path: str) -> str:
    import pydicom

    from services.toshiba_builder.study import collect

    return collect(pydicom.dcmread(path, stop_before_pixels=True), path).kind


OTHER = "toshiba_cx_head_scanogram"


def _publish_two_quiet_studies(env, database_url, tmp_path):
    """Both studies published together and collected before either is quiet: the first one is
    the first claimed (oldest last object)."""
    first, second = case_files(CASE, tmp_path), case_files(OTHER, tmp_path)
    uids = expected(CASE)["study_instance_uid"], expected(OTHER)["study_instance_uid"]
    doseflow(env, "publish", *first, *second)
    for files, uid in zip((first, second), uids):
        kept = len([f for f in files if _kind(f) != "other"])
        wait_until(lambda: _collected(database_url, uid) == kept, timeout=60, what="the studies collected")
    return first, second, uids


def test_a_study_whose_dose_page_vanished_fails_with_the_reason_and_the_next_study_is_still_built(
        workers, quick_env, database_url, tmp_path):
    env = {**quick_env, "DOSEFLOW_TOSHIBA_QUIET_SECONDS": "8"}
    workers.env = env
    workers.start_pipeline()
    first, second, (uid1, uid2) = _publish_two_quiet_studies(env, database_url, tmp_path)
    pages = [f for f in first if _kind(f) == "dose_page"]
    assert pages
    for page in pages:  # gone after it was collected, before the study is quiet
        os.unlink(page)
    wait_until(lambda: stored(env, uid2), timeout=120, what="the second study built past the first")
    assert_matches_expected(stored(env, uid2)[0], OTHER)
    wait_until(lambda: (toshiba_state(database_url, uid1) or ("",))[0] == "failed", what="the first study failed")
    reason = toshiba_state(database_url, uid1)[2]
    assert re.search(r"dose page .+ not found", reason), reason
    outcomes = ledger(database_url)
    assert {outcomes[f][0] for f in first if _kind_or_none(f) != "other"} == {"failed"}
    assert stored(env, uid1) == []
    letters = json.loads(doseflow(env, "dead-letters", "list", "--json").stdout)
    assert [(l["queue"], "not found" in l["reason"]) for l in letters] == [("toshiba.collect", True)]


def test_without_the_ocr_engine_every_quiet_study_waits_its_turn_and_is_built_once_the_engine_is_back(
        workers, quick_env, database_url, tmp_path):
    env = {**quick_env, "DOSEFLOW_TOSHIBA_QUIET_SECONDS": "4"}
    workers.env = env
    for kind in ("classifier", "extractor", "writer"):
        workers.start(kind)
    workers.env = {**env, "DOSEFLOW_TESSERACT": str(tmp_path / "no-such-tesseract")}
    builder = workers.start("toshiba-builder")
    first, second, uids = _publish_two_quiet_studies(env, database_url, tmp_path)
    # A deployment fault: each study is set aside with a backoff, neither starves the other,
    # none is failed.
    wait_until(lambda: all(_attempts(database_url, uid) >= 1 for uid in uids), timeout=60,
               what="both studies tried")
    for uid in uids:
        status, _, reason = toshiba_state(database_url, uid)
        assert status == "collecting" and "OCR engine" in reason, (status, reason)
    assert not any(s == "failed" for s, _ in ledger(database_url).values())
    builder.terminate()
    builder.wait(timeout=30)
    workers.env = env
    workers.start("toshiba-builder")
    for uid, case in zip(uids, (CASE, OTHER)):
        wait_until(lambda: stored(env, uid), timeout=180, what="the study built once OCR is back")
        assert_matches_expected(stored(env, uid)[0], case)


def _attempts(database_url, uid) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT attempts FROM toshiba_study WHERE study_instance_uid = %s", (uid,)).fetchone()
        return row[0] if row else 0


def _kind_or_none(path: str):
    return _kind(path) if os.path.exists(path) else None


def test_the_import_runs_the_builders_stage_a_study_unfit_to_build_fails_with_its_reason_one_waiting_for_ocr_fails_until_it_is_back(
        doseflow_env, database_url, tmp_path):
    # `doseflow import` runs the builder's own stage on an in-process broker: end of input is
    # the quiet period, and its outcomes are the service's.
    env = {**doseflow_env, "DOSEFLOW_TOSHIBA_OUTPUT_DIR": str(tmp_path / "built")}
    first, second = case_files(CASE, tmp_path), case_files(OTHER, tmp_path)
    uid1, uid2 = expected(CASE)["study_instance_uid"], expected(OTHER)["study_instance_uid"]
    pages = [f for f in first if _kind(f) == "dose_page"]
    assert pages
    for page in pages:  # its header still reads (collected), its pixels are cut short
        size = os.path.getsize(page)
        with open(page, "r+b") as f:
            f.truncate(size - 2000)
    no_ocr = {**env, "DOSEFLOW_TESSERACT": str(tmp_path / "no-such-tesseract")}
    result = doseflow(no_ocr, "import", "--as", "toshiba", *first, *second, check=False)
    assert result.returncode == 1, result.stderr
    outcomes = ledger(database_url)
    # A study unfit to build (its dose page unreadable) fails for good, with the page named,
    # before any OCR; a deployment fault (no OCR engine) fails this run with "not built yet",
    # and the study stays waiting for a builder or the next import.
    kept1, kept2 = ([f for f in files if _kind(f) != "other"] for files in (first, second))
    assert {outcomes[f] for f in kept1} == {("failed", outcomes[pages[0]][1])}
    assert re.search(rf"dose page {re.escape(pages[0])}: .*cut short", outcomes[pages[0]][1]), outcomes[pages[0]]
    assert toshiba_state(database_url, uid1)[0] == "failed"
    assert {outcomes[f][0] for f in kept2} == {"failed"}
    assert all(outcomes[f][1].startswith("not built yet: OcrUnavailable") for f in kept2), outcomes[kept2[0]]
    assert toshiba_state(database_url, uid2)[0] == "collecting"
    ignored = len(first) + len(second) - len(kept1) - len(kept2)
    assert f"stored 0, ignored {ignored}, failed {len(kept1) + len(kept2)}" in result.stdout
    assert stored(env, uid1) == [] and stored(env, uid2) == []

    # The engine is back: the same files again build the waiting study, at once.
    result = doseflow(env, "import", "--as", "toshiba", *second)
    assert f"stored {len(kept2)}, ignored {len(second) - len(kept2)}, failed 0" in result.stdout
    assert_matches_expected(stored(env, uid2)[0], OTHER)
    assert toshiba_state(database_url, uid2)[:2] == ("built", 1)
    assert {ledger(database_url)[f][0] for f in kept2} == {"stored"}
