"""The writer service: ReportReady -> PostgreSQL (one transaction per report), Outcome -> the
ledger; each message acked only after its transaction committed."""
from __future__ import annotations

import logging

from tenacity import RetryError

from services.writer.store import audit_config, store_measurement, store_report
from shared.ledger import record_outcome
from shared import broker, metrics, routes
from shared.broker import Publish, Result
from shared.database import Database, migrate
from shared.outcome import Failed
from shared.messages import ImageMeasured, Outcome, ReportReady, StudyStored
from shared.readiness import Readiness, database_answers

log = logging.getLogger(__name__)

def make_handlers(db: Database) -> list[broker.Stage]:
    """The writer's stages: reports on `writer`, CT image measurements on `measurements`,
    outcomes on `outcomes`. The writer is the
    ledger: it records outcomes itself (store_report commits the object's row with the report)."""
    def on_report(msg: ReportReady) -> Result:
        try:
            db.run(lambda conn: store_report(conn, msg.report, msg.path))
        except RetryError:
            return Result(requeue=True)
        except Failed as exc:  # a SOP Instance UID conflict: its ledger row is committed
            metrics.object_outcome(msg.report.sources[0].route, "failed")
            return Result(dead_letter_reason=exc.reason)
        metrics.object_outcome(msg.report.sources[0].route, "stored")
        # Also when the object was stored before: the first delivery may have died between its
        # commit and this publish, and evaluating a study again raises nothing twice.
        study = StudyStored(study_instance_uid=msg.report.study.study_instance_uid, correlation_id=msg.correlation)
        return Result(publishes=[Publish(broker.ALERTS_EXCHANGE, "alerts", study.encode())])

    def on_measurement(msg: ImageMeasured) -> Result:
        try:
            db.run(lambda conn: store_measurement(conn, msg))
        except RetryError:
            return Result(requeue=True)
        metrics.object_outcome(routes.CT_DW.name, "stored")
        return Result()

    def on_outcome(msg: Outcome) -> Result:

        def write(conn):
            with conn.transaction():
                record_outcome(conn, path=msg.path, status=msg.status, stage=msg.stage, reason=msg.reason,
                               route=msg.route, sop_instance_uid=msg.sop_instance_uid,
                               study_instance_uid=msg.study_instance_uid)
        try:
            db.run(write)
        except RetryError:
            return Result(requeue=True)
        metrics.object_outcome(msg.route, msg.status)
        return Result()

    return [broker.Stage("writer", ReportReady, on_report), broker.Stage("outcomes", Outcome, on_outcome),
            broker.Stage("measurements", ImageMeasured, on_measurement)]


def run(settings, stop=None) -> None:
    if not settings.database_url:
        raise SystemExit("the writer needs DOSEFLOW_DATABASE_URL (the embedded database is for `doseflow import`)")
    audit_config()  # a protocol mapping or reference file that cannot be used stops the writer here
    db = Database(settings.database_url)
    db.run(migrate)
    broker.consume(settings.amqp_url, make_handlers(db), prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop,
                   readiness=Readiness(settings.ready_file, [database_answers(settings.database_url)]))
