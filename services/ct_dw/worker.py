"""The Dw stage service: ExtractRequest (route ct_dw) -> ImageMeasured for the writer, or an
ignored/failed outcome. An image that is not sampled or gives no Dw ends ignored with the
reason, never failed: it holds no dose, nothing is lost without it."""
from __future__ import annotations

import logging

from services.ct_dw.stage import measure_file
from shared import broker, routes
from shared.broker import Publish, Result, outcome
from shared.messages import ExtractRequest
from shared.outcome import Failed, Ignored
from shared.paths import PathMap, check_ingest_path
from shared.readiness import Readiness

log = logging.getLogger(__name__)


def make_handler(roots: list[str], interval_mm: float, path_map: PathMap = ()):
    def handle(msg: ExtractRequest) -> Result:
        try:
            measured = measure_file(msg.path, check_ingest_path(msg.path, roots, path_map), interval_mm=interval_mm,
                                    correlation_id=msg.correlation)
        except (Ignored, Failed) as exc:
            status = "ignored" if isinstance(exc, Ignored) else "failed"
            record = outcome(msg.path, status, exc.reason, stage="dw_stage", route=routes.CT_DW.name,
                             sop_instance_uid=msg.sop_instance_uid, study_instance_uid=msg.study_instance_uid,
                             correlation_id=msg.correlation)
            return Result([record], dead_letter_reason=exc.reason if status == "failed" else None)
        log.info("Dw %.1f mm measured in %.0f ms", measured.dw_mm, measured.measure_ms)
        return Result([Publish(broker.REPORTS_EXCHANGE, "measurements", measured.encode())])

    return broker.bind(ExtractRequest, handle)


def run(settings, stop=None) -> None:
    handler = make_handler(settings.ingest_roots, settings.dw_sample_interval_mm, settings.path_map)
    broker.consume(settings.amqp_url, {routes.CT_DW.queue: handler}, prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop, readiness=Readiness(settings.ready_file))
