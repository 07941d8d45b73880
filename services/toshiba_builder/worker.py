"""The Toshiba builder service.

Consumer: each `toshiba.collect` message is read (header only), kept in PostgreSQL
(services/toshiba_builder/state.py) and acked after the commit — a study never holds a delivery
while it waits to be quiet.
Builder thread: every few seconds, claims one study quiet for DOSEFLOW_TOSHIBA_QUIET_SECONDS
(FOR UPDATE SKIP LOCKED, so several builders build each study once), builds it
(services/toshiba_builder/study.py), writes the RDSR under DOSEFLOW_TOSHIBA_OUTPUT_DIR and
publishes ObjectReceived for it, so it flows through classifier → RDSR extractor → writer like
any scanner RDSR; then records the study built and its objects in the ledger, and commits.
An image-only study (no dose page) is recorded ignored per object with a reason naming the study,
no dead letter; a dose page arriving later re-opens it.
A study that fails for a reason of its own (dose page gone or unreadable, no summary) is recorded
failed per object and dead-lettered, and waits for a new object or a replay to re-open it; a
deployment fault (OCR engine missing, output folder not writable, broker away) sets the study
aside with a growing backoff (state.postpone). Either way the builder goes on with the next
quiet study: one study never blocks the others.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional

from tenacity import RetryError

from services.extractors.common import ExtractOptions
from services.toshiba_builder import state
from services.toshiba_builder.ocr import OcrUnavailable
from services.toshiba_builder.study import Finished, collect, finish, write_rdsr
from services.writer.store import stored_objects
from shared import broker, metrics
from shared.broker import Publish, Publisher, Result
from shared.database import Database, migrate
from shared.dicom import read_header, read_object
from shared.ledger import record_outcome
from shared.messages import ExtractRequest, ObjectReceived, ReportReady
from shared.outcome import Failed, Ignored
from shared.paths import PathMap, check_ingest_path
from shared.readiness import Readiness, database_answers
from shared.routes import TOSHIBA

log = logging.getLogger(__name__)
STAGE = "toshiba_builder"


def output_dir(settings) -> Path:
    return settings.toshiba_output_dir or settings.data_dir / "toshiba-rdsr"


NOT_LEGACY_CT = "object of a legacy CT study that is neither a dose summary page nor a CT image"


def make_collect_handler(db: Database, options: ExtractOptions, roots: list[str], path_map: PathMap = (), *,
                         out_dir: Optional[Path] = None) -> broker.Stage:
    """The collect stage on the Toshiba route's queue. With `out_dir` (the in-process import)
    it also remembers the studies it collected and builds them at the end of the input
    (`Stage.at_end`): there, end of input is the quiet period."""
    collected: dict[str, None] = {}  # study UIDs in arrival order, kept only in process

    def handle(msg: ExtractRequest) -> Result:
        obj = collect(read_header(check_ingest_path(msg.path, roots, path_map)), msg.path, options)
        if obj.kind == "other":
            raise Ignored(NOT_LEGACY_CT)
        try:
            db.run(lambda conn: state.collect_object(conn, obj))
        except RetryError:
            return Result(requeue=True)
        if out_dir is not None:
            collected[obj.study_instance_uid] = None
        return Result()

    def at_end(publisher) -> None:
        for uid in list(collected):
            try:
                db.run(lambda conn: build_one(conn, publisher, out_dir=out_dir, roots=roots, path_map=path_map,
                                              study=uid))
            except RetryError:
                raise broker.Requeued("the legacy CT studies could not be built: the database went away") from None
        collected.clear()

    return broker.Stage(TOSHIBA.queue, ExtractRequest, handle, records=STAGE,
                        at_end=at_end if out_dir is not None else None)


def collect_stage(route, context: broker.StageContext) -> broker.Stage:
    """The registry's stage factory for the Toshiba route (shared/routes.py `Route.stage`)."""
    return make_collect_handler(context.db, context.options, context.roots, context.path_map,
                                out_dir=context.output_dir if context.in_process else None)


def dose_page_reader(roots: list[str], path_map: PathMap = ()):
    """How the builder reads a dose page (the only pixels it needs): through the one reading
    layer, so a page gone or unreadable fails its study with a reason naming the page."""
    def read_page(path: str):
        try:
            return read_object(check_ingest_path(path, roots, path_map))
        except Failed as exc:
            raise Failed(f"dose page {path}: {exc.reason}") from None

    return read_page


# Faults of the deployment, not of the study: the study is retried after a backoff and the
# builder goes on with other studies. OSError: the output folder (missing, full, not writable);
# the broker's errors: the built RDSR could not be announced.
DEPLOYMENT_FAULTS = (OcrUnavailable, OSError, *broker.TRANSIENT_AMQP, *broker.REFUSED_PUBLISH)


def build_one(conn, publisher, *, out_dir: Path, roots: list[str], path_map: PathMap = (),
              quiet_seconds: float = 0.0, study: Optional[str] = None) -> bool:
    """Handle one due study, if any; True when one was handled (built, skipped, failed, or set
    aside for a retry), so the caller goes on to the next. A study never blocks the others.
    `study`: that study now, quiet or not (the in-process import, at the end of its input);
    there is no later in that process, so a deployment fault also records its objects failed
    with the reason (the study stays set aside: a builder or the next import builds it)."""
    with conn.transaction():
        uid = state.claim_due_study(conn, quiet_seconds, study)
        if uid is None:
            return False
        objects = state.study_objects(conn, uid)
        try:
            done, built_uid, announced = _build_and_announce(conn, uid, objects, publisher, out_dir, roots,
                                                             path_map)
        except DEPLOYMENT_FAULTS as exc:
            reason = f"not built yet: {type(exc).__name__}: {exc}"
            delay = state.postpone(conn, uid, reason[:2000])
            metrics.retried("toshiba_build")
            log.warning("legacy CT study %s %s; retrying in %.0f s", uid[-12:], reason, delay)
            if study is not None:
                _record(conn, objects, uid, "failed", reason)
            return True
        status = {"built": "stored", "skipped": "ignored", "no_summary": "ignored", "failed": "failed"}[done.status]
        _record(conn, objects, uid, status, done.reason)
        state.mark(conn, uid, done.status, done.reason, built_uid)
        log.info("legacy CT study %s: %s", uid[-12:], done.status,
                 extra={"correlation_id": announced.correlation} if announced else None)
    # Committed: count what the ledger now says.
    for _ in objects:
        metrics.object_outcome(TOSHIBA.name, status)
    if done.status == "failed":
        metrics.dead_lettered(TOSHIBA.queue, done.reason)
    return True


def _record(conn, objects, uid: str, status: str, reason: str) -> None:
    for obj in objects:
        record_outcome(conn, path=obj.path, status=status, stage=STAGE, reason=reason, route=TOSHIBA.name,
                       sop_instance_uid=obj.sop_instance_uid, study_instance_uid=uid)


def _build_and_announce(conn, uid, objects, publisher, out_dir, roots, path_map):
    """Build the study and publish what follows from it: the built RDSR (to ingest), the header
    report (to the writer) or the failure (a dead letter, for replay)."""
    try:
        done = finish(objects, [(route, sop) for route, sop, _ in stored_objects(conn, uid)], state.built_uids(conn, uid),
                      dose_page_reader(roots, path_map))
    except DEPLOYMENT_FAULTS:
        raise
    except Exception as exc:  # a defect of ours on this study's data: set it aside, replayable
        log.exception("building legacy CT study %s failed", uid[-12:])
        done = Finished(status="failed", reason=f"internal error building the study: {type(exc).__name__}: {exc}")
    built_uid, announced = None, None
    if done.status == "built":
        path = write_rdsr(done.rdsr, out_dir)
        # The built RDSR is a new object with a correlation id of its own (logged below).
        announced = ObjectReceived(path=str(path), origin=STAGE)
        publisher.publish(Publish(broker.INGEST_EXCHANGE, "ingest", announced.encode()))
        built_uid = str(done.rdsr.SOPInstanceUID)
        if done.warnings_report is not None:
            page = next(o for o in objects if o.kind == "dose_page")
            publisher.publish(Publish(broker.REPORTS_EXCHANGE, "writer",
                                      ReportReady(path=page.path, report=done.warnings_report).encode()))
    elif done.status == "skipped" and done.header_report is not None:
        first = next(o for o in objects if o.sop_instance_uid == done.header_report.sources[0].sop_instance_uid)
        publisher.publish(Publish(broker.REPORTS_EXCHANGE, "writer",
                                  ReportReady(path=first.path, report=done.header_report).encode()))
    elif done.status == "failed":
        page = next((o for o in objects if o.kind == "dose_page"), objects[0])
        request = ExtractRequest(path=page.path, route=TOSHIBA.name, sop_instance_uid=page.sop_instance_uid,
                                 study_instance_uid=uid, sop_class_uid=page.sop_class_uid)
        publisher.publish(broker.dead_letter(TOSHIBA.queue, request.encode(), {}, done.reason))
    return done, built_uid, announced


def build_loop(db: Database, settings, stop: threading.Event) -> None:
    publisher = Publisher(settings.amqp_url, settings.delivery_limit)
    poll = max(0.2, min(5.0, settings.toshiba_quiet_seconds / 4))
    wait = poll
    try:
        while not stop.wait(wait):
            try:
                while not stop.is_set() and db.run(lambda conn: build_one(
                        conn, publisher, out_dir=output_dir(settings), roots=settings.ingest_roots,
                        path_map=settings.path_map, quiet_seconds=settings.toshiba_quiet_seconds)):
                    pass
                wait = poll
            except Exception:  # the database away, most likely: wait longer each time, up to a minute
                wait = min(60.0, wait * 2)
                log.exception("the Toshiba builder cannot reach its state; retrying in %.0f s", wait)
    finally:
        publisher.close()


def run(settings, stop=None) -> None:
    if not settings.database_url:
        raise SystemExit("the Toshiba builder needs DOSEFLOW_DATABASE_URL")
    stop = stop or threading.Event()
    db = Database(settings.database_url)
    db.run(migrate)
    options = ExtractOptions.from_settings(settings)
    builder = threading.Thread(target=build_loop, args=(Database(settings.database_url), settings, stop),
                               name="toshiba-build", daemon=True)
    builder.start()
    try:
        context = broker.StageContext(options, settings.ingest_roots, settings.path_map, db)
        broker.consume(settings.amqp_url, [TOSHIBA.stage_function()(TOSHIBA, context)],
                       prefetch=settings.prefetch, delivery_limit=settings.delivery_limit, stop=stop,
                       readiness=Readiness(settings.ready_file, [database_answers(settings.database_url)]))
    finally:
        stop.set()
        builder.join(timeout=30)
