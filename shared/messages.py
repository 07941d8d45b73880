"""The messages on doseflow's queues: one frozen, versioned model per queue, decoded in one place.

A body that does not decode (not JSON, wrong schema version, missing field) raises
`UndecodableMessage`; the consumer dead-letters it with that reason and never requeues it.
"""
from __future__ import annotations

import datetime as _dt
import json
import uuid
from typing import Literal, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared import logs
from shared.report import DoseReport

SCHEMA = 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def _id() -> str:
    return uuid.uuid4().hex


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(SCHEMA, alias="schema")
    message_id: str = Field(default_factory=_id)
    # Follows one object through the stages (logs): its ObjectReceived's message_id, copied by
    # each stage into the messages it publishes for that object.
    correlation_id: Optional[str] = None

    @property
    def correlation(self) -> str:
        """The id to log and to copy forward (this message's own id when none came with it)."""
        return self.correlation_id or self.message_id

    def encode(self) -> bytes:
        # ASCII JSON with \u escapes: a file name that is not valid UTF-8 (a Linux path decoded
        # with surrogateescape) survives the trip and still opens the same file.
        return json.dumps(self.model_dump(mode="json", by_alias=True), ensure_ascii=True,
                          separators=(",", ":")).encode("ascii")


class ObjectReceived(Message):
    """A DICOM object arrived: queue `ingest`."""

    path: str
    received_at: str = Field(default_factory=_now)
    # "toshiba_builder" for RDSRs the builder made, so they are not sent back to it.
    origin: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _starts_a_correlation(cls, data):
        # An object's journey starts here: its correlation id is this message's id.
        if isinstance(data, dict) and not data.get("correlation_id"):
            data = {**data, "message_id": data.get("message_id") or _id()}
            data["correlation_id"] = data["message_id"]
        return data


class ExtractRequest(Message):
    """A classified object for one extractor: queues `extract.<route>`, `toshiba.collect`."""

    path: str
    route: str
    sop_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str


class ReportReady(Message):
    """A validated report of one object for the writer: queue `writer`."""

    path: str
    report: DoseReport


class Outcome(Message):
    """How an object ended, when it did not end as a stored report: queue `outcomes`."""

    path: str
    stage: Literal["classifier", "extractor", "toshiba_builder", "writer", "dw_stage"]
    status: Literal["ignored", "failed"]
    reason: str
    sop_instance_uid: Optional[str] = None
    study_instance_uid: Optional[str] = None
    at: str = Field(default_factory=_now)
    # The extractor route the object was classified for; None when the classifier ended it.
    route: Optional[str] = None


class ImageMeasured(Message):
    """A CT image's water-equivalent diameter (AAPM 220) for the writer: queue `measurements`."""

    path: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: Optional[str] = None
    irradiation_event_uid: Optional[str] = None
    z_mm: Optional[float] = None  # table position of the slice
    dw_mm: float = Field(gt=0)
    area_mm2: float = Field(gt=0)  # area of the patient contour
    mean_hu: float
    edge_share: float = Field(ge=0, le=1)
    measure_ms: float = Field(ge=0)  # reading and measuring the pixel data


class StudyStored(Message):
    """The writer committed a study or an update of one: queue `alerts` (evaluate its rules)."""

    study_instance_uid: str


class UndecodableMessage(Exception):
    pass


M = TypeVar("M", bound=Message)


def decode(model: type[M], body: bytes) -> M:
    """The only place a queue body becomes a message. The message's correlation id becomes the
    logging context of the handling (shared/logs.py; the consumer gives each message its own)."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            # pydantic would call this "Invalid JSON"; the dead letter should say what is wrong.
            raise UndecodableMessage(f"not a valid {model.__name__}: body is not UTF-8 text "
                                     f"({exc.reason} at byte {exc.start})") from None
    try:
        message = model.model_validate(json.loads(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise UndecodableMessage(f"not a valid {model.__name__} (schema {SCHEMA}): {where}: {first['msg']}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        kind = "Invalid JSON: " if isinstance(exc, json.JSONDecodeError) else ""
        raise UndecodableMessage(f"not a valid {model.__name__}: {kind}{exc}") from None
    logs.set_correlation(message.correlation)
    return message
