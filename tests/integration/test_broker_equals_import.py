"""The broker pipeline stores exactly what the in-process import stores: every corpus object
(RDSRs of every modality, images, Philips SC, a non-dose SR), published in shuffled order, twice
over, to several competing extractor and writer processes."""
from __future__ import annotations

import json
import random

import pytest

from tests.conftest import CORPUS
from tests.integration.conftest import doseflow, fresh_database, ledger, wait_until

pytestmark = pytest.mark.integration


def corpus_objects() -> list[str]:
    files = sorted(str(p) for p in CORPUS.glob("*.dcm"))
    if not files:
        pytest.fail(f"no corpus objects under {CORPUS}")
    return files


def studies(env) -> list[dict]:
    return sorted(json.loads(doseflow(env, "studies", "--json").stdout),
                  key=lambda s: s["study"]["study_instance_uid"])


def test_broker_pipeline_with_competing_workers_stores_what_import_stores(
        workers, doseflow_env, database_url, service_urls, tmp_path):
    files = corpus_objects()
    # Given the in-process import of every corpus object into its own database
    with fresh_database(service_urls["pg"]) as import_url:  # same server, second database
        import_env = {**doseflow_env, "DOSEFLOW_DATABASE_URL": import_url}
        doseflow(import_env, "import", *files, check=False)
        expected = studies(import_env)
        expected_ledger = ledger(import_url)
    assert len(expected) >= 20

    # When the same objects are published twice over, shuffled, to 2 classifiers, 3 extractors
    # and 2 writers
    for kind, n in (("classifier", 2), ("extractor", 3), ("writer", 2), ("toshiba-builder", 1), ("alerts", 1)):
        for _ in range(n):
            workers.start(kind)
    order = files * 2
    random.Random(20261126).shuffle(order)
    doseflow(doseflow_env, "publish", *order[: len(order) // 2])
    doseflow(doseflow_env, "publish", *order[len(order) // 2:])

    # Then every object has the same outcome and every study the same values
    wait_until(lambda: len(ledger(database_url)) == len(files), timeout=120, what="every object's outcome")

    def settled():
        status = json.loads(doseflow(doseflow_env, "status", "--json").stdout)
        return all(depth == 0 for depth in status["queues"].values())

    wait_until(settled, timeout=60, what="empty queues")
    got = studies(doseflow_env)
    assert [s["study"]["study_instance_uid"] for s in got] == [s["study"]["study_instance_uid"] for s in expected]
    for mine, theirs in zip(got, expected):
        assert mine == theirs, mine["study"]["study_instance_uid"]
    assert {p: s for p, (s, _) in ledger(database_url).items()} == \
        {p: s for p, (s, _) in expected_ledger.items()}
    assert set(workers.alive()) == {"classifier", "extractor", "writer", "toshiba-builder", "alerts"}
