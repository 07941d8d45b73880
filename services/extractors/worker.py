"""The extractor service: ExtractRequest -> ReportReady for the writer, or an outcome."""
from __future__ import annotations

from services.extractors.common import ExtractOptions
from services.extractors.routes import EXTRACT_ROUTES, extract
from shared import broker
from shared.broker import Publish, Result, outcome
from shared.dicom import read_header
from shared.messages import ExtractRequest, ReportReady
from shared.outcome import Failed, Ignored
from shared.paths import PathMap, check_ingest_path
from shared.readiness import Readiness
from shared.report import DoseReport
from shared.routes import BY_NAME as ROUTES_BY_NAME


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


def make_handler(route: str, options: ExtractOptions, roots: list[str], path_map: PathMap = ()):
    def handle(msg: ExtractRequest) -> Result:
        try:
            report = extract_file(check_ingest_path(msg.path, roots, path_map), route, options)
        except (Ignored, Failed) as exc:
            status = "ignored" if isinstance(exc, Ignored) else "failed"
            record = outcome(msg.path, status, exc.reason, stage="extractor", route=route,
                             sop_instance_uid=msg.sop_instance_uid, study_instance_uid=msg.study_instance_uid,
                             correlation_id=msg.correlation)
            return Result([record], dead_letter_reason=exc.reason if status == "failed" else None)
        ready = ReportReady(path=msg.path, report=report, correlation_id=msg.correlation)
        return Result([Publish(broker.REPORTS_EXCHANGE, "writer", ready.encode())])

    return broker.bind(ExtractRequest, handle)


def run(settings, routes: list[str] | None = None, stop=None) -> None:
    options = ExtractOptions.from_settings(settings)
    routes = routes or list(EXTRACT_ROUTES)
    handlers = {ROUTES_BY_NAME[r].queue: make_handler(r, options, settings.ingest_roots, settings.path_map)
                for r in routes}
    broker.consume(settings.amqp_url, handlers, prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop, readiness=Readiness(settings.ready_file))
