"""The fault-injection suite in a shortened form (CI runs it; the full run is
`python -m tests.reliability --objects 2000`). Real faults: SIGKILL of workers, the local
broker stopped and started, the local PostgreSQL stopped for a while."""
from __future__ import annotations

import math
import os
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.reliability import scenarios
from tests.reliability.__main__ import AMQP, PG, table
from tests.reliability.harness import Pipeline, port_open

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline(tmp_path, request):
    if not (port_open(5672) and port_open(5432) and shutil.which("rabbitmqctl")):
        if os.environ.get("CI"):
            pytest.fail("local RabbitMQ/PostgreSQL (and rabbitmqctl) are required in CI")
        pytest.skip("local RabbitMQ/PostgreSQL not available")
    env_extra = getattr(request, "param", None) or {}
    if env_extra.get("DOSEFLOW_INGEST_ROOTS") == "incoming":
        env_extra = {**env_extra, "DOSEFLOW_INGEST_ROOTS": str(tmp_path / "incoming")}
    with ExitStack() as stack:
        yield Pipeline(stack, tmp_path, os.environ.get("DOSEFLOW_TEST_AMQP_URL", AMQP),
                       os.environ.get("DOSEFLOW_TEST_DATABASE_URL", PG), env_extra)


# Stopping the machine's broker or database breaks anything else using them, so these two run in
# CI (env CI) or when asked for (DOSEFLOW_FAULT_TESTS=1), never by surprise on a shared machine.
stops_services = pytest.mark.skipif(
    not (os.environ.get("CI") or os.environ.get("DOSEFLOW_FAULT_TESTS")),
    reason="stops the local RabbitMQ/PostgreSQL: runs in CI or with DOSEFLOW_FAULT_TESTS=1")


def check(row):
    print("\n" + table([row]))
    assert row.lost == 0, row
    assert row.duplicates == 0, row
    assert row.workers_alive, row
    assert row.objects_in == row.stored + row.ignored + row.failed, row
    assert row.recovery_s is not None and not math.isnan(row.recovery_s), "the pipeline never settled"


def test_kill_9_of_random_workers_loses_and_doubles_nothing(pipeline, tmp_path):
    row = scenarios.kill9(pipeline, tmp_path, 150, interval=2.0)
    check(row)
    assert row.stored == row.objects_in


@stops_services
def test_a_broker_restart_mid_flow_loses_nothing(pipeline, tmp_path):
    row = scenarios.broker_restart(pipeline, tmp_path, 60, down_s=3.0)
    check(row)
    assert row.stored == row.objects_in


@stops_services
def test_a_database_outage_is_waited_out_and_nothing_is_acked_before_commit(pipeline, tmp_path):
    row = scenarios.postgres_outage(pipeline, tmp_path, 60, outage_s=10.0)
    check(row)
    assert row.stored == row.objects_in


def test_a_message_delivered_a_thousand_times_and_racing_writers_store_once(pipeline, tmp_path):
    check(scenarios.redelivery(pipeline, tmp_path, copies=1000))


def test_poison_inputs_each_end_ignored_or_failed_with_a_reason(pipeline, tmp_path):
    row = scenarios.poison(pipeline, tmp_path)
    check(row)
    assert row.dead_letters >= 2 + row.failed  # failed objects and the two non-messages, kept for replay
    notes = "\n".join(row.notes)
    for what in ("zero-byte file: failed", "non-DICOM: failed", "wrong SOP class: ignored",
                 "truncated file: failed", "file deleted before extraction: failed",
                 "500 MB multi-frame object: stored", "non-UTF-8 file name: stored", "very long path: stored"):
        assert what in notes, notes


@pytest.mark.parametrize("pipeline", [{"DOSEFLOW_INGEST_ROOTS": "incoming"}], indirect=True)
def test_paths_outside_the_ingest_roots_are_refused_unopened(pipeline, tmp_path):
    row = scenarios.outside_roots(pipeline, tmp_path)
    check(row)
    assert (row.stored, row.failed) == (1, 3)
