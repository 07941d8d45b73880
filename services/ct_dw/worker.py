"""The Dw stage service: ExtractRequest (route ct_dw) -> ImageMeasured for the writer, or an
ignored/failed outcome. An image that is not sampled or gives no Dw ends ignored with the
reason, never failed: it holds no dose, nothing is lost without it."""
from __future__ import annotations

import logging

from services.audit.water_equivalent import SAMPLE_INTERVAL_MM
from services.ct_dw.stage import measure_file
from shared import broker, routes
from shared.broker import Publish, Result
from shared.messages import ExtractRequest
from shared.paths import PathMap, check_ingest_path
from shared.readiness import Readiness

log = logging.getLogger(__name__)
STAGE = "dw_stage"


def make_handler(roots: list[str], interval_mm: float, path_map: PathMap = ()) -> broker.Stage:
    def handle(msg: ExtractRequest) -> Result:
        measured = measure_file(msg.path, check_ingest_path(msg.path, roots, path_map), interval_mm=interval_mm,
                                correlation_id=msg.correlation)
        log.info("Dw %.1f mm measured in %.0f ms", measured.dw_mm, measured.measure_ms)
        return Result([Publish(broker.REPORTS_EXCHANGE, "measurements", measured.encode())])

    return broker.Stage(routes.CT_DW.queue, ExtractRequest, handle, records=STAGE)


def route_stage(route: routes.Route, context: broker.StageContext) -> broker.Stage:
    """The registry's stage factory for the Dw route (shared/routes.py `Route.stage`)."""
    interval = context.dw_sample_interval_mm
    return make_handler(context.roots, SAMPLE_INTERVAL_MM if interval is None else interval, context.path_map)


def run(settings, stop=None) -> None:
    context = broker.StageContext(None, settings.ingest_roots, settings.path_map,
                                  dw_sample_interval_mm=settings.dw_sample_interval_mm)
    broker.consume(settings.amqp_url, [routes.CT_DW.stage_function()(routes.CT_DW, context)],
                   prefetch=settings.prefetch, delivery_limit=settings.delivery_limit, stop=stop,
                   readiness=Readiness(settings.ready_file))
