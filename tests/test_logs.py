"""Logs: the JSON line format, and the correlation id that follows one object from ObjectReceived
through ExtractRequest to ReportReady or Outcome, and into the log lines of its handling."""
from __future__ import annotations

import contextvars
import json
import logging
import shutil
import sys

import pytest

from services.classifier.rules import RoutingRules
from services.classifier.worker import make_handler as classifier_handler
from services.extractors.common import ExtractOptions
from services.extractors.worker import make_handler as extractor_handler
from shared import logs
from shared.messages import ExtractRequest, ObjectReceived, Outcome, ReportReady, decode
from tests.conftest import corpus_file


def record(message: str, *args, level=logging.INFO, exc_info=None, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("services.classifier.worker", level, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def in_fresh_context(fn, *args):
    """Run `fn` in a context of its own that starts with no correlation id (other tests decode
    messages in the test thread's context)."""
    def run():
        logs.set_correlation(None)
        return fn(*args)
    return contextvars.copy_context().run(run)


def test_a_json_log_line_has_time_level_logger_message_service_and_correlation_id():
    def emit():
        logs.set_correlation("abc123")
        return logs.JsonFormatter("classifier").format(record("dead-lettering a message from %s", "ingest",
                                                              level=logging.WARNING))

    line = json.loads(in_fresh_context(emit))
    assert line.pop("time").endswith("+00:00")
    assert line == {"level": "WARNING", "logger": "services.classifier.worker",
                    "message": "dead-lettering a message from ingest", "service": "classifier",
                    "correlation_id": "abc123"}


def test_a_json_log_line_outside_any_message_has_no_correlation_id():
    line = json.loads(in_fresh_context(lambda: logs.JsonFormatter("writer").format(record("consuming writer"))))
    assert "correlation_id" not in line
    assert line["service"] == "writer"


def test_a_correlation_id_given_with_the_record_wins_over_the_context():
    def emit():
        logs.set_correlation("from-context")
        return logs.JsonFormatter("receiver").format(record("received", correlation_id="from-record"))

    assert json.loads(in_fresh_context(emit))["correlation_id"] == "from-record"


def test_a_json_log_line_carries_the_exception_and_stays_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("handler for %s failed", "writer", level=logging.ERROR, exc_info=sys.exc_info())
    text = in_fresh_context(lambda: logs.JsonFormatter("writer").format(rec))
    assert "\n" not in text
    line = json.loads(text)
    assert "ValueError: boom" in line["exception"]
    assert line["message"] == "handler for writer failed"


def test_a_file_name_that_is_not_utf8_still_makes_a_valid_json_line():
    odd = b"/data/incoming/caf\xe9.dcm".decode("utf-8", "surrogateescape")
    text = in_fresh_context(lambda: logs.JsonFormatter("classifier").format(record("cannot read %s", odd)))
    text.encode("ascii")
    assert "caf" in json.loads(text)["message"]


def test_a_text_log_line_shows_the_correlation_id_after_the_logger():
    def emit():
        logs.set_correlation("abc123")
        return logs.TextFormatter().format(record("stored"))

    assert in_fresh_context(emit).endswith(" INFO services.classifier.worker [abc123]: stored")
    assert in_fresh_context(lambda: logs.TextFormatter().format(record("stored"))).endswith(
        " INFO services.classifier.worker: stored")


def test_an_object_received_message_starts_a_correlation_with_its_own_id():
    msg = ObjectReceived(path="/data/incoming/a.dcm")
    assert msg.correlation_id == msg.message_id
    assert decode(ObjectReceived, msg.encode()).correlation_id == msg.message_id
    # One published before correlation ids existed still gets one on arrival.
    old = json.dumps({"schema": 1, "message_id": "m1", "path": "/a.dcm", "received_at": "x"}).encode()
    assert decode(ObjectReceived, old).correlation == "m1"


def test_decoding_a_message_sets_the_logging_context_of_its_handling():
    msg = ObjectReceived(path="/data/incoming/a.dcm")

    def handle():
        decode(ObjectReceived, msg.encode())
        return logs.correlation_id()

    def consumer():
        # As shared/broker.py does: each message handled in a copy of the consumer's context.
        handled = contextvars.copy_context().run(handle)
        return handled, logs.correlation_id()

    handled, afterwards = in_fresh_context(consumer)
    assert handled == msg.message_id
    assert afterwards is None  # the context of one handling does not leak into the next


def published(result, model):
    return [decode(model, p.body) for p in result.publishes]


@pytest.fixture
def received(tmp_path):
    def make(case: str) -> ObjectReceived:
        path = tmp_path / case
        shutil.copy(corpus_file(case), path)
        return ObjectReceived(path=str(path))
    return make


def test_an_objects_correlation_id_goes_from_object_received_to_extract_request_to_report_ready(received):
    msg = received("CT-RDSR-Siemens_Flash-TAP-SS.dcm")
    result = in_fresh_context(classifier_handler(RoutingRules(), roots=[]), msg.encode(), {})
    [request] = published(result, ExtractRequest)
    assert request.correlation_id == msg.message_id

    result = in_fresh_context(extractor_handler("rdsr", ExtractOptions(), roots=[]), request.encode(), {})
    [ready] = published(result, ReportReady)
    assert ready.correlation_id == msg.message_id
    assert ready.message_id not in (msg.message_id, request.message_id)  # each message is its own


def test_an_ignored_objects_outcome_carries_its_correlation_id(received):
    msg = received("ESR_non-dose.dcm")
    result = in_fresh_context(classifier_handler(RoutingRules(), roots=[]), msg.encode(), {})
    [outcome] = published(result, Outcome)
    assert outcome.status == "ignored"
    assert outcome.correlation_id == msg.message_id


def test_a_failed_objects_outcome_from_the_extractor_carries_its_correlation_id(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not DICOM\n" * 10)
    request = ExtractRequest(path=str(junk), route="rdsr", sop_instance_uid="1.2", study_instance_uid="1.3",
                             sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", correlation_id="journey-1")
    result = in_fresh_context(extractor_handler("rdsr", ExtractOptions(), roots=[]), request.encode(), {})
    [outcome] = published(result, Outcome)
    assert (outcome.status, outcome.route, outcome.correlation_id) == ("failed", "rdsr", "journey-1")
    assert result.dead_letter_reason


def test_setup_json_sends_every_logger_and_python_warnings_to_stderr_as_json(capsys):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook)
    try:
        logs.setup("INFO", "json", "extractor")
        logging.getLogger("services.extractors.worker").info("extracted %d objects", 2)
        import warnings

        warnings.warn("Invalid value for VR AS", UserWarning)
        lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
        assert [(l["service"], l["level"]) for l in lines] == [("extractor", "INFO"), ("extractor", "WARNING")]
        assert lines[0]["message"] == "extracted 2 objects"
        assert "Invalid value for VR AS" in lines[1]["message"]
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        sys.excepthook = saved[2]
