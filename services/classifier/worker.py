"""The classifier service: ObjectReceived (a path) -> the route's extractor queue, or an
ignored/failed outcome. Reads the header only, never pixel data."""
from __future__ import annotations

import logging
from typing import Mapping

from pydicom.dataset import Dataset

from services.classifier.rules import RoutingRules, classify
from shared import broker
from shared.broker import Publish, Result
from shared.dicom import read_header, text
from shared.messages import ExtractRequest, ObjectReceived
from shared.paths import PathMap, check_ingest_path
from shared.readiness import Readiness

log = logging.getLogger(__name__)
STAGE = "classifier"


def classify_file(path: str, rules: RoutingRules, roots: list[str], *,
                  routing_only: bool = False, path_map: PathMap = ()) -> tuple[str, Dataset]:
    """(route, header) for the file at `path` (as `path_map` rewrites it); raises Ignored or
    Failed. `routing_only` reads just the attributes routing needs (the header returned is then
    not enough to extract)."""
    real = check_ingest_path(path, roots, path_map)
    ds = read_header(real, routing_only=routing_only)
    return classify(ds, rules), ds


def make_handler(rules: RoutingRules, roots: list[str], path_map: PathMap = (), *,
                 given: Mapping[str, str] = {}) -> broker.Stage:
    """The classifier stage on `ingest`. `given`: routes the caller chose for these paths
    (`doseflow import --as`); their header is still read (the request carries the UIDs), the
    rules are not asked. Any other object, such as an RDSR the Toshiba builder made from them,
    is classified."""
    def handle(msg: ObjectReceived) -> Result:
        chosen = given.get(msg.path)
        if chosen is None:
            route, ds = classify_file(msg.path, rules, roots, routing_only=True, path_map=path_map)
        else:
            route, ds = chosen, read_header(check_ingest_path(msg.path, roots, path_map), routing_only=True)
        request = ExtractRequest(path=msg.path, route=route, sop_instance_uid=text(ds, "SOPInstanceUID") or "",
                                 study_instance_uid=text(ds, "StudyInstanceUID") or "",
                                 sop_class_uid=text(ds, "SOPClassUID") or "", correlation_id=msg.correlation)
        return Result([Publish(broker.EXTRACT_EXCHANGE, route, request.encode())])

    return broker.Stage("ingest", ObjectReceived, handle, records=STAGE)


def run(settings, stop=None) -> None:
    rules = RoutingRules(tuple(settings.toshiba_models), settings.dw_from_images)
    stage = make_handler(rules, settings.ingest_roots, settings.path_map)
    broker.consume(settings.amqp_url, [stage], prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop, readiness=Readiness(settings.ready_file))
