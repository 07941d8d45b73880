"""Attacks through the ingest folder on the readers (classifier, extractor and `doseflow import`,
real processes), and what must hold: no hang, bounded memory (peak RSS from /proc), a ledger row
with the reason, no worker death, and the queue keeps flowing."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import corpus_file
from tests.integration.conftest import PIPELINE, doseflow, ledger, wait_until
from tests.security import attacks

pytestmark = pytest.mark.integration

CT_RDSR = "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
RSS_BOUND_MB = 400


@pytest.fixture
def pipeline(workers, doseflow_env, tmp_path):
    root = tmp_path / "incoming"
    root.mkdir()
    workers.env = {**doseflow_env, "DOSEFLOW_INGEST_ROOTS": str(root)}
    workers.start_pipeline()
    return root, workers


def publish(env, *paths):
    doseflow(env, "publish", *map(str, paths))


def row(database_url, path, timeout=60):
    return wait_until(lambda: ledger(database_url).get(str(path)), timeout=timeout, what=f"ledger row for {path}")


def test_a_fifo_in_the_ingest_root_fails_at_once_and_the_queue_keeps_flowing(pipeline, database_url):
    """Attacker: a named pipe in the ingest folder, published as an object (before: the
    classifier blocked for ever in open(), its prefetched messages unacked, heartbeats hiding it).
    Must hold: a failed ledger row naming a FIFO within seconds, the classifier alive, and the
    next object stored."""
    root, workers = pipeline
    fifo = attacks.make_fifo(root / "pipe.dcm")
    good = root / "good.dcm"
    shutil.copy(corpus_file(CT_RDSR), good)
    publish(workers.env, fifo, good)
    # Bounded by the wait (a blocked classifier never records it); no timing beyond that, as the
    # workers may still be starting on a loaded machine.
    status, reason = row(database_url, fifo, timeout=120)
    assert status == "failed" and "FIFO" in reason
    assert row(database_url, good)[0] == "stored"
    assert set(workers.alive()) == set(PIPELINE)


def test_a_deflate_bomb_in_the_ingest_root_fails_with_the_reason_in_bounded_memory(pipeline, database_url):
    """Attacker: a 500 kB deflated object that inflates to 500 MB, put straight into the ingest
    folder (before: stored, 1.1 GB peak in the classifier and in the extractor).
    Must hold: failed with a reason naming the inflation limit; classifier and extractor peak
    RSS bounded; both alive."""
    root, workers = pipeline
    bomb = root / "bomb.dcm"
    attacks.write_deflate_bomb(bomb)
    publish(workers.env, bomb)
    status, reason = row(database_url, bomb, timeout=90)
    assert status == "failed" and "inflates beyond 64 MB" in reason
    for kind, proc in workers.procs:
        assert proc.poll() is None, kind
        if kind in ("classifier", "extractor"):
            assert attacks.peak_rss_mb(proc.pid) < RSS_BOUND_MB, kind


def test_os_errors_become_ledger_rows_with_the_reason(pipeline, database_url):
    """Attacker: a symbolic-link loop, a name longer than the system allows, and a NUL in a path
    (before: "internal error ... OSError" dead letters with no ledger row; the NUL crashed the
    writer's outcome handler). Must hold: a failed ledger row each, with the reason."""
    root, workers = pipeline
    (root / "loop-a.dcm").symlink_to(root / "loop-b.dcm")
    (root / "loop-b.dcm").symlink_to(root / "loop-a.dcm")
    long_name = root / ("x" * 300 + ".dcm")
    nul = str(root / "nul") + "\x00.dcm"
    from shared.broker import INGEST_EXCHANGE, Publish, Publisher
    from shared.messages import ObjectReceived

    publisher = Publisher(workers.env["DOSEFLOW_AMQP_URL"])
    try:
        for path in (str(root / "loop-a.dcm"), str(long_name), nul):
            publisher.publish(Publish(INGEST_EXCHANGE, "ingest", ObjectReceived(path=path).encode()))
    finally:
        publisher.close()
    assert "ELOOP" in row(database_url, root / "loop-a.dcm")[1]
    assert "ENAMETOOLONG" in row(database_url, long_name)[1]
    nul_row = row(database_url, nul.replace("\x00", "\\x00"))
    assert nul_row[0] == "failed" and "NUL" in nul_row[1]
    reasons = [r for _, r in ledger(database_url).values()]
    assert not any("internal error" in r for r in reasons), reasons


def test_import_applies_the_workers_rules_and_always_ends_with_a_summary(doseflow_env, database_url, tmp_path):
    """Attacker: an import folder holding a FIFO, a symbolic-link loop, a link escaping the
    ingest roots, and a good object (before: import hung on the FIFO, aborted with a traceback
    on the loop, and imported the escaping link). Must hold: finishes promptly, prints the
    summary, records each with its reason, refuses the escaping link, stores the good object."""
    root, outside = tmp_path / "incoming", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    shutil.copy(corpus_file(CT_RDSR), root / "good.dcm")
    shutil.copy(corpus_file("DX-Im-GE_XR220-1.dcm"), outside / "secret.dcm")
    (root / "escape.dcm").symlink_to(outside / "secret.dcm")
    attacks.make_fifo(root / "pipe.dcm")
    (root / "loop-a.dcm").symlink_to(root / "loop-b.dcm")
    (root / "loop-b.dcm").symlink_to(root / "loop-a.dcm")
    env = {**doseflow_env, "DOSEFLOW_INGEST_ROOTS": str(root)}
    # A hang (before: for ever on the FIFO) fails on the timeout.
    result = subprocess.run([sys.executable, "-m", "doseflow", "import", str(root)], env=env, capture_output=True,
                            text=True, timeout=180)
    assert "Traceback" not in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "stored 1, ignored 0, failed 4"
    rows = ledger(database_url)
    assert rows[str(root / "good.dcm")][0] == "stored"
    assert "outside DOSEFLOW_INGEST_ROOTS" in rows[str(root / "escape.dcm")][1]
    assert "FIFO" in rows[str(root / "pipe.dcm")][1]
    assert "ELOOP" in rows[str(root / "loop-a.dcm")][1]
