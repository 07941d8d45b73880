"""JSON logs of real worker processes: every line is one JSON object, and one object's
correlation id (its ObjectReceived message id) is on the lines of every stage that handled it."""
from __future__ import annotations

import json
import shutil

import pytest

from shared import broker
from shared.messages import ObjectReceived
from tests.conftest import corpus_file
from tests.integration.conftest import ledger, wait_until

pytestmark = pytest.mark.integration


def log_lines(workers) -> dict[str, list[dict]]:
    """Worker kind -> its log lines, each parsed as JSON (a line that is not JSON fails the test)."""
    by_kind: dict[str, list[dict]] = {}
    for f in sorted(workers.log_dir.glob("*.log")):
        kind = f.name.rsplit("-", 1)[0]
        by_kind[kind] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return by_kind


def test_one_objects_correlation_id_is_on_the_log_lines_of_every_stage(workers, doseflow_env, database_url,
                                                                       clean_broker, tmp_path):
    workers.env = {**doseflow_env, "DOSEFLOW_LOG_FORMAT": "json", "DOSEFLOW_LOG_LEVEL": "DEBUG"}
    for kind in ("classifier", "extractor", "writer"):
        workers.start(kind)
    stored, junk = tmp_path / "stored.dcm", tmp_path / "junk.dcm"
    shutil.copy(corpus_file("CT-RDSR-Siemens_Flash-TAP-SS.dcm"), stored)
    junk.write_bytes(b"not DICOM\n" * 10)
    good, bad = ObjectReceived(path=str(stored)), ObjectReceived(path=str(junk))
    publisher = broker.Publisher(clean_broker)
    for msg in (good, bad):
        publisher.publish(broker.Publish(broker.INGEST_EXCHANGE, "ingest", msg.encode()))
    publisher.close()

    wait_until(lambda: len(ledger(database_url)) == 2, timeout=60, what="two ledger rows")
    wait_until(lambda: sum(l.get("correlation_id") == good.message_id
                           for l in log_lines(workers).get("writer", [])) >= 1, what="writer log line")

    lines = log_lines(workers)
    for kind, entries in lines.items():
        assert entries, kind
        assert all(e["service"] == kind and {"time", "level", "logger", "message"} <= set(e) for e in entries), kind
    # The stored object: ingest -> extract.rdsr -> writer, all under its ObjectReceived id.
    assert any(e.get("correlation_id") == good.message_id and e["message"] == "ingest message acked"
               for e in lines["classifier"])
    assert any(e.get("correlation_id") == good.message_id and e["message"] == "extract.rdsr message acked"
               for e in lines["extractor"])
    assert any(e.get("correlation_id") == good.message_id and e["message"] == "writer message acked"
               for e in lines["writer"])
    # The failed object: its dead-lettering warning and its ledger outcome carry its own id.
    assert any(e.get("correlation_id") == bad.message_id and e["level"] == "WARNING"
               and "dead-lettering" in e["message"] for e in lines["classifier"])
    wait_until(lambda: any(e.get("correlation_id") == bad.message_id and e["message"] == "outcomes message acked"
                           for e in log_lines(workers)["writer"]), what="writer log line of the failed object")
    # Lines about no object in particular carry no correlation id.
    assert any("consuming" in e["message"] and "correlation_id" not in e for e in lines["classifier"])
