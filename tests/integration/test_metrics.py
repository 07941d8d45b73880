"""Prometheus metrics of real worker processes: scraped over HTTP before and after a stored, an
ignored and a failed (non-DICOM) object went through the pipeline, and a C-STORE to the receiver."""
from __future__ import annotations

import shutil
import urllib.request

import pydicom
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, ledger, wait_until
from tests.integration.test_receiver import answers_echo, free_port, store

pytestmark = pytest.mark.integration

STORED = "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
IGNORED = "ESR_non-dose.dcm"


def scrape(port: int) -> dict[tuple, float]:
    """Every sample of the endpoint: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def serving(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False


def start_with_metrics(workers, doseflow_env, kind: str) -> int:
    port = free_port()
    workers.env = {**doseflow_env, "DOSEFLOW_METRICS_PORT": str(port)}
    proc = workers.start(kind)
    wait_until(lambda: proc.poll() is not None or serving(port), timeout=30, what=f"{kind} metrics endpoint")
    assert proc.poll() is None, workers.logs()
    return port


def test_each_worker_counts_its_messages_objects_and_failures(workers, doseflow_env, database_url, tmp_path):
    ports = {kind: start_with_metrics(workers, doseflow_env, kind) for kind in ("classifier", "extractor", "writer")}
    before = {kind: scrape(port) for kind, port in ports.items()}
    stored, ignored, junk = tmp_path / "stored.dcm", tmp_path / "ignored.dcm", tmp_path / "junk.dcm"
    shutil.copy(corpus_file(STORED), stored)
    shutil.copy(corpus_file(IGNORED), ignored)
    junk.write_bytes(b"not DICOM at all\n" * 20)

    doseflow(doseflow_env, "publish", str(stored), str(ignored), str(junk))

    wait_until(lambda: len(ledger(database_url)) == 3, timeout=60, what="three ledger rows")
    assert {p: s for p, (s, _) in ledger(database_url).items()} == {
        str(stored): "stored", str(ignored): "ignored", str(junk): "failed"}

    def moved(kind: str, name: str, **labels) -> float:
        return value(scrape(ports[kind]), name, **labels) - value(before[kind], name, **labels)

    # The writer counts after each commit and before its ack: wait for the last count to land.
    wait_until(lambda: moved("writer", "doseflow_messages_total", queue="outcomes", outcome="acked") == 2,
               what="writer acked both outcomes")
    wait_until(lambda: moved("writer", "doseflow_messages_total", queue="writer", outcome="acked") == 1,
               what="writer acked the report")
    # Per message, by queue and how it ended.
    assert moved("classifier", "doseflow_messages_total", queue="ingest", outcome="acked") == 2
    assert moved("classifier", "doseflow_messages_total", queue="ingest", outcome="dead_lettered") == 1
    assert moved("classifier", "doseflow_messages_total", queue="ingest", outcome="requeued") == 0
    assert moved("classifier", "doseflow_message_processing_seconds_count", queue="ingest") == 3
    assert moved("extractor", "doseflow_messages_total", queue="extract.rdsr", outcome="acked") == 1
    assert moved("extractor", "doseflow_message_processing_seconds_count", queue="extract.rdsr") == 1
    # Failures by reason class: the first plain words of the reason, no path.
    assert moved("classifier", "doseflow_failures_total", queue="ingest", reason="not a readable DICOM object") == 1
    # Objects by route and outcome, counted where the ledger row is committed.
    assert moved("writer", "doseflow_objects_total", route="rdsr", outcome="stored") == 1
    assert moved("writer", "doseflow_objects_total", route="none", outcome="ignored") == 1
    assert moved("writer", "doseflow_objects_total", route="none", outcome="failed") == 1
    assert moved("writer", "doseflow_retries_total", what="database") == 0
    # Each endpoint says which worker it is.
    for kind, port in ports.items():
        assert value(scrape(port), "doseflow_worker_info", kind=kind, version="0.1.0") == 1
    # No label anywhere carries a path.
    for port in ports.values():
        for _, labels in scrape(port):
            assert not any(str(tmp_path) in v for _, v in labels)


def test_the_receiver_counts_its_c_store_answers(workers, doseflow_env, database_url, tmp_path):
    root = tmp_path / "incoming"
    dicom_port = free_port()
    doseflow_env = {**doseflow_env, "DOSEFLOW_INGEST_ROOTS": str(root), "DOSEFLOW_RECEIVER_PORT": str(dicom_port)}
    metrics_port = start_with_metrics(workers, doseflow_env, "receiver")
    wait_until(lambda: answers_echo(dicom_port), timeout=60, what="receiver answering C-ECHO")
    ds = pydicom.dcmread(corpus_file(STORED))

    _, status = store(dicom_port, ds)

    assert status == 0x0000
    assert value(scrape(metrics_port), "doseflow_dicom_stores_total", status="success") == 1
    assert value(scrape(metrics_port), "doseflow_worker_info", kind="receiver", version="0.1.0") == 1
