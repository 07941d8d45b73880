"""The extractor service: ExtractRequest -> ReportReady for the writer, or an outcome."""
from __future__ import annotations

from services.extractors.common import ExtractOptions
from services.extractors.routes import EXTRACT_ROUTES, extract
from shared import broker
from shared.broker import Publish, Result
from shared.dicom import read_header
from shared.messages import ExtractRequest, ReportReady
from shared.outcome import Failed
from shared.paths import PathMap, check_ingest_path
from shared.readiness import Readiness
from shared.report import DoseReport

STAGE = "extractor"
from shared.routes import BY_NAME as ROUTES_BY_NAME, Route


def extract_file(path: str, route: str, options: ExtractOptions, ds=None) -> DoseReport:
    """The report of the file at `path` through `route`; raises Ignored or Failed."""
    if ds is None:
        ds = read_header(path)
    # Validated once more as a whole, as the writer will: values set piecemeal by an extractor
    # get the model's checks (no negative doses) before anything is stored or sent.
    report = DoseReport.model_validate(extract(ds, route, options).model_dump())
    if not report.study.study_instance_uid:
        raise Failed("no StudyInstanceUID (0020,000D): the report cannot be filed under a study")
    if not report.sources or not report.sources[0].sop_instance_uid:
        raise Failed("no SOPInstanceUID (0008,0018): the object cannot be identified")
    return report


def make_handler(route: str, options: ExtractOptions, roots: list[str], path_map: PathMap = ()) -> broker.Stage:
    """The extractor stage of one route, on that route's queue."""
    def handle(msg: ExtractRequest) -> Result:
        report = extract_file(check_ingest_path(msg.path, roots, path_map), route, options)
        ready = ReportReady(path=msg.path, report=report, correlation_id=msg.correlation)
        return Result([Publish(broker.REPORTS_EXCHANGE, "writer", ready.encode())])

    return broker.Stage(ROUTES_BY_NAME[route].queue, ExtractRequest, handle, records=STAGE)


def route_stage(route: Route, context: broker.StageContext) -> broker.Stage:
    """The registry's stage factory for an extracted route (shared/routes.py `Route.stage`)."""
    return make_handler(route.name, context.options, context.roots, context.path_map)


def run(settings, routes: list[str] | None = None, stop=None) -> None:
    context = broker.StageContext(ExtractOptions.from_settings(settings), settings.ingest_roots, settings.path_map)
    stages = [ROUTES_BY_NAME[r].stage_function()(ROUTES_BY_NAME[r], context) for r in routes or EXTRACT_ROUTES]
    broker.consume(settings.amqp_url, stages,
                   prefetch=settings.prefetch, delivery_limit=settings.delivery_limit, stop=stop,
                   readiness=Readiness(settings.ready_file))
