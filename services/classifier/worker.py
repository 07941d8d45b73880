"""The classifier service: ObjectReceived (a path) -> the route's extractor queue, or an
ignored/failed outcome. Reads the header only, never pixel data."""
from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from services.classifier.rules import RoutingRules, classify
from shared import broker
from shared.broker import Publish, Result
from shared.dicom import UnreadableObject, read_object, text
from shared.messages import ExtractRequest, ObjectReceived, Outcome, UndecodableMessage, decode
from shared.outcome import Failed, Ignored
from shared.paths import PathMap, check_ingest_path

log = logging.getLogger(__name__)


# The routing rules and the ExtractRequest read nothing after an SR's root concept name
# (0040,A043). The classifier stops there: the content tree is the extractor's to read, and
# pydicom parses undefined-length sequences eagerly (180 ms for one RF dose report).
ROUTING_HEADER_END = 0x0040A043


def read_header(path: str, *, routing_only: bool = False) -> Dataset:
    try:
        if routing_only:
            ds = read_object(path, up_to_tag=ROUTING_HEADER_END)
            if "SOPClassUID" in ds:
                return ds
            # Elements out of tag order, or no SOP class at all: read the whole header.
        return read_object(path, header_only=True)
    except FileNotFoundError:
        raise Failed("file not found (deleted or moved after it was published?)") from None
    except IsADirectoryError:
        raise Failed("path is a folder, not a file") from None
    except PermissionError:
        raise Failed("file not readable by doseflow (permission denied)") from None
    except UnreadableObject as exc:
        raise Failed(str(exc)) from None


def classify_file(path: str, rules: RoutingRules, roots: list[str], *,
                  routing_only: bool = False, path_map: PathMap = ()) -> tuple[str, Dataset]:
    """(route, header) for the file at `path` (as `path_map` rewrites it); raises Ignored or
    Failed. `routing_only` reads just the attributes routing needs (the header returned is then
    not enough to extract)."""
    real = check_ingest_path(path, roots, path_map)
    ds = read_header(real, routing_only=routing_only)
    return classify(ds, rules), ds


def outcome(path: str, status: str, reason: str, *, stage: str = "classifier",
            sop_instance_uid: str | None = None, study_instance_uid: str | None = None,
            route: str | None = None, correlation_id: str | None = None) -> Publish:
    msg = Outcome(path=path, stage=stage, status=status, reason=reason, route=route, correlation_id=correlation_id,
                  sop_instance_uid=sop_instance_uid or None, study_instance_uid=study_instance_uid or None)
    return Publish(broker.OUTCOMES_EXCHANGE, "outcomes", msg.encode())


def make_handler(rules: RoutingRules, roots: list[str], path_map: PathMap = ()):
    def handle(body: bytes, headers: dict) -> Result:
        try:
            msg = decode(ObjectReceived, body)
        except UndecodableMessage as exc:
            return Result(dead_letter_reason=str(exc))
        try:
            route, ds = classify_file(msg.path, rules, roots, routing_only=True, path_map=path_map)
        except Ignored as exc:
            return Result([outcome(msg.path, "ignored", exc.reason, correlation_id=msg.correlation)])
        except Failed as exc:
            return Result([outcome(msg.path, "failed", exc.reason, correlation_id=msg.correlation)],
                          dead_letter_reason=exc.reason)
        request = ExtractRequest(path=msg.path, route=route, sop_instance_uid=text(ds, "SOPInstanceUID") or "",
                                 study_instance_uid=text(ds, "StudyInstanceUID") or "",
                                 sop_class_uid=text(ds, "SOPClassUID") or "", correlation_id=msg.correlation)
        return Result([Publish(broker.EXTRACT_EXCHANGE, route, request.encode())])

    return handle


def run(settings, stop=None) -> None:
    handler = make_handler(RoutingRules(tuple(settings.toshiba_models)), settings.ingest_roots, settings.path_map)
    broker.consume(settings.amqp_url, {"ingest": handler}, prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop)
