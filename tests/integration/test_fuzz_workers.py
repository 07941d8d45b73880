"""Fuzz (issue 7) through the services: over a thousand seeded mutants of the smaller corpus
objects (tests/fuzz.py) published with `doseflow publish` to real classifier, extractor and
writer processes. Each ends in the ledger as stored, ignored or failed with a reason; no
worker dies; no queue keeps a message; every failed object waits in a dead-letter queue with
the same reason, and nothing else does. A dead letter that says "internal error" is a handler
exception — a bug, not an outcome — and fails the test.
"""
from __future__ import annotations

import collections
import json
import os
import time

import psycopg
import pytest
from pydicom.uid import generate_uid

from shared.report import DoseReport
from tests import fuzz
from tests.integration.conftest import doseflow, wait_until
from tests.test_fuzz_extract import BASE_SEED, report_problems

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 1000
SMALL = 45_000  # bytes: the objects that parse in milliseconds (RF: the Philips Allura report)
MUTANTS_PER_STUDY = 4  # mutants of one object share a study, so the writer also assembles them
WORKERS = {"classifier": 1, "extractor": 2, "writer": 1, "alerts": 1, "ct-dw": 1}
STALL_S = 30  # no new ledger row for this long: something is stuck, stop waiting and say what


def make_mutants(out_dir) -> dict[str, fuzz.Mutant]:
    """Path -> mutant. Each mutant is its own object (new SOP Instance UID); every
    MUTANTS_PER_STUDY mutants of one corpus object share a new study."""
    objects = [p for p in fuzz.corpus_objects() if p.stat().st_size <= SMALL]
    dose = [p for p in objects if "toshiba" not in p.parts]
    legacy = [p for p in objects if "toshiba" in p.parts]
    plan = [(p, 2) for p in legacy]
    share = -(-(TOTAL - sum(n for _, n in plan)) // len(dose))
    plan += [(p, share) for p in dose]
    mutants = {}
    for source, count in plan:
        for i in range(count):
            seed = BASE_SEED + i
            study = generate_uid(entropy_srcs=["fuzz-workers", source.name, str(seed // MUTANTS_PER_STUDY)])
            m = fuzz.mutate(source, seed, out_dir, unique_uids=True, study_uid=study)
            mutants[str(m.path)] = m
    return mutants


def ledger_rows(database_url: str) -> dict[str, tuple[str, str, str]]:
    """path -> (status, stage, reason)."""
    with psycopg.connect(database_url) as conn:
        try:
            return {p: (s, st, r) for p, s, st, r in
                    conn.execute("SELECT path, status, stage, reason FROM object_ledger")}
        except psycopg.errors.UndefinedTable:
            return {}


def wait_for_every_outcome(database_url: str, paths: set[str], budget_s: float) -> dict:
    deadline = time.monotonic() + budget_s
    seen, progress_at = -1, time.monotonic()
    while True:
        rows = ledger_rows(database_url)
        done = len(paths & rows.keys())
        if done == len(paths):
            return rows
        if done != seen:
            seen, progress_at = done, time.monotonic()
        if time.monotonic() > deadline or time.monotonic() - progress_at > STALL_S:
            return rows
        time.sleep(1.0)


def test_over_a_thousand_mutants_through_the_workers_each_end_with_an_outcome(
        workers, doseflow_env, database_url, tmp_path):
    started = time.monotonic()
    # Given mutants of the small corpus objects in an ingest folder, and running services
    # (Toshiba models set to match nothing: the legacy builder is not under test here; its CT
    # images go to the Dw stage like any other CT axial image, so mutants of them test that stage)
    mutants = make_mutants(tmp_path / "ingest")
    assert len(mutants) >= 1000
    workers.env = {**doseflow_env, "DOSEFLOW_TOSHIBA_MODELS": "none/none"}
    for kind, n in WORKERS.items():
        for _ in range(n):
            workers.start(kind)
    made = time.monotonic()

    # When they are published
    doseflow(doseflow_env, "publish", str(tmp_path / "ingest"))

    # Then each path gets exactly one ledger row...
    rows = wait_for_every_outcome(database_url, set(mutants), budget_s=150)
    settled = time.monotonic()
    letters = json.loads(doseflow(doseflow_env, "dead-letters", "list", "--json").stdout)
    internal = [l for l in letters if "internal error" in l["reason"]]
    missing = sorted(set(mutants) - rows.keys())
    assert not internal, f"{len(internal)} handler exceptions (bugs, not outcomes):\n" + "\n".join(
        f"{l['queue']}: {mutants.get(l['path'], l['path'])}\n    {l['reason'][:400]}" for l in internal[:15])
    assert not missing, f"{len(missing)} published objects have no outcome:\n" + "\n".join(
        str(mutants[p]) for p in missing[:15]) + "\n" + workers.logs()[-4000:]
    assert rows.keys() == set(mutants), "ledger rows for paths that were never published"

    # ...stored, ignored or failed, with the reason for the latter two
    counts = collections.Counter(status for status, _, _ in rows.values())
    by_stage = collections.Counter((status, stage) for status, stage, _ in rows.values())
    print(f"\nfuzz workers: {len(mutants)} mutants, made in {made - started:.0f} s, all outcomes "
          f"{settled - made:.0f} s after the workers started: " + ", ".join(
              f"{k} {counts[k]}" for k in ("stored", "ignored", "failed")) + "; by stage: " + ", ".join(
              f"{status}@{stage} {n}" for (status, stage), n in sorted(by_stage.items())))
    assert set(counts) <= {"stored", "ignored", "failed"}
    unexplained = [p for p, (status, _, reason) in rows.items()
                   if status in ("ignored", "failed") and not (reason or "").strip()]
    assert not unexplained, "\n".join(str(mutants[p]) for p in unexplained[:15])
    assert counts["stored"] >= len(mutants) // 5, "the mutants should still reach the extractors and the writer"

    # No worker died, and no queue holds a message
    assert sorted(workers.alive()) == sorted(k for k, n in WORKERS.items() for _ in range(n)), workers.logs()

    def queues_empty():
        status = json.loads(doseflow(doseflow_env, "status", "--json").stdout)
        return status if all(depth == 0 for depth in status["queues"].values()) else None

    status = wait_until(queues_empty, timeout=30, interval=1.0, what="empty queues")

    # Every failed object waits in a dead-letter queue with its reason; nothing else does
    failed = {p: reason for p, (s, _, reason) in rows.items() if s == "failed"}
    lettered = collections.defaultdict(list)
    for letter in letters:
        lettered[letter["path"]].append(letter["reason"])
    assert status["dead_letters"] == len(letters) == len(failed), (status["dead_letters"], len(letters), len(failed))
    wrong = [p for p, reason in failed.items() if lettered.get(p) != [reason]]
    assert not wrong, "failed objects without their dead letter:\n" + "\n".join(
        f"{mutants[p]}\n    ledger: {failed[p]!r}\n    letters: {lettered.get(p)}" for p in wrong[:10])
    print(f"dead letters {len(letters)} (= failed outcomes), queues empty, "
          f"{len(workers.alive())} workers alive; {time.monotonic() - started:.0f} s in all")

    # What was stored reads back as valid reports
    stored = json.loads(doseflow(doseflow_env, "studies", "--json").stdout)
    assert stored
    bad = [(s["study"]["study_instance_uid"], report_problems(DoseReport.model_validate(s))) for s in stored]
    assert not [b for b in bad if b[1]], [b for b in bad if b[1]][:10]


@pytest.fixture(autouse=True)
def _corpus_present():
    if not fuzz.corpus_objects():
        if os.environ.get("CI"):
            pytest.fail(f"corpus missing in CI: {fuzz.CORPUS}")
        pytest.skip(f"corpus not present: {fuzz.CORPUS}")
