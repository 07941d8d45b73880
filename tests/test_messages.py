"""Queue messages (shared/messages.py): every message survives encode -> decode unchanged, and a
body that is not a valid message of the expected kind raises UndecodableMessage with a reason a
person reading the dead-letter queue can act on."""
from __future__ import annotations

import json

import pydantic
import pydicom
import os

import pytest

from services.extractors.routes import extract
from shared.messages import (
    SCHEMA,
    ExtractRequest,
    ObjectReceived,
    Outcome,
    ReportReady,
    UndecodableMessage,
    decode,
)
from tests.conftest import corpus_file


def a_report():
    return extract(pydicom.dcmread(corpus_file("CT-RDSR-Siemens-Continued-1.dcm")), "rdsr")


def messages():
    return [
        ObjectReceived(path="/data/incoming/a.dcm"),
        ObjectReceived(path="/var/lib/doseflow/toshiba-rdsr/b.dcm", origin="toshiba_builder"),
        ExtractRequest(path="/data/incoming/a.dcm", route="rdsr", sop_instance_uid="1.2.3.4",
                       study_instance_uid="1.2.3", sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67"),
        Outcome(path="/data/incoming/c.dcm", stage="classifier", status="ignored",
                reason="no dose route takes CT Image Storage", sop_instance_uid="1.2.3.5"),
        Outcome(path="/data/incoming/d.dcm", stage="writer", status="failed", reason="refused: path is outside"),
    ]


@pytest.mark.parametrize("message", messages(), ids=lambda m: type(m).__name__)
def test_message_survives_encode_and_decode(message):
    body = message.encode()
    assert isinstance(body, bytes)
    assert decode(type(message), body) == message


def test_report_ready_carries_the_whole_report_unchanged():
    report = a_report()
    message = ReportReady(path="/data/incoming/e.dcm", report=report)
    back = decode(ReportReady, message.encode())
    assert back == message
    assert back.report.model_dump() == report.model_dump()
    assert back.report.ct.total_dlp_mGycm == pytest.approx(60.17)


def test_body_names_its_schema_version_and_message_id():
    body = json.loads(ObjectReceived(path="/a").encode())
    assert body["schema"] == SCHEMA == 1
    assert len(body["message_id"]) == 32


def test_every_message_gets_its_own_id():
    assert ObjectReceived(path="/a").message_id != ObjectReceived(path="/a").message_id


def test_messages_are_frozen():
    message = ObjectReceived(path="/a")
    with pytest.raises(pydantic.ValidationError):
        message.path = "/b"


def test_non_ascii_paths_round_trip():
    message = ObjectReceived(path="/data/incoming/Križ/ü.dcm")
    assert decode(ObjectReceived, message.encode()).path == "/data/incoming/Križ/ü.dcm"


def test_a_file_name_that_is_not_utf8_round_trips_to_the_same_bytes():
    # Linux file names are bytes; Python shows undecodable ones with surrogate escapes.
    path = os.fsdecode(b"/data/incoming/caf\xe9.dcm")
    body = ObjectReceived(path=path).encode()
    assert body.isascii()
    assert os.fsencode(decode(ObjectReceived, body).path) == b"/data/incoming/caf\xe9.dcm"


# --- bodies that are not messages --------------------------------------------------------------


def reason(model, body: bytes) -> str:
    with pytest.raises(UndecodableMessage) as caught:
        decode(model, body)
    return str(caught.value)


def body_of(message, **changes) -> bytes:
    data = json.loads(message.encode())
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_wrong_schema_version_is_undecodable_naming_the_schema():
    text = reason(ObjectReceived, body_of(ObjectReceived(path="/a"), schema=2))
    assert "ObjectReceived" in text and "schema" in text


def test_missing_field_is_undecodable_naming_the_field():
    text = reason(ObjectReceived, body_of(ObjectReceived(path="/a"), path=...))
    assert "path" in text and "required" in text.lower()


def test_extra_field_is_undecodable_naming_the_field():
    text = reason(ObjectReceived, body_of(ObjectReceived(path="/a"), colour="blue"))
    assert "colour" in text


def test_message_of_another_kind_is_undecodable():
    text = reason(ExtractRequest, ObjectReceived(path="/a").encode())
    assert "ExtractRequest" in text and "route" in text


def test_wrong_value_in_a_literal_field_is_undecodable_naming_it():
    body = body_of(Outcome(path="/a", stage="writer", status="failed", reason="x"), status="lost")
    assert "status" in reason(Outcome, body)


def test_invalid_report_inside_report_ready_names_the_report_field():
    body = body_of(ReportReady(path="/a", report=a_report()))
    data = json.loads(body)
    data["report"]["ct"]["total_dlp_mGycm"] = "a lot"
    assert "report.ct.total_dlp_mGycm" in reason(ReportReady, json.dumps(data).encode())


@pytest.mark.parametrize("body", [b"not json", b"", b"{", b"[]", b"null", b"42"],
                         ids=["text", "empty", "truncated", "array", "null", "number"])
def test_body_that_is_not_a_json_object_is_undecodable(body):
    text = reason(ObjectReceived, body)
    assert text.startswith("not a valid ObjectReceived")


@pytest.mark.parametrize("body", [b"\xff\xfe{}", '{"schema": 1, "path": "/\u00e9"}'.encode("latin-1")],
                         ids=["binary", "latin-1"])
def test_body_that_is_not_utf8_is_undecodable_saying_so(body):
    text = reason(ObjectReceived, body)
    assert "UTF-8" in text
