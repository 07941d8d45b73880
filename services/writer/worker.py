"""The writer service: ReportReady -> PostgreSQL (one transaction per report), Outcome -> the
ledger; each message acked only after its transaction committed."""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

import psycopg
from tenacity import RetryError, retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from services.writer.store import record_outcome, store_report
from shared import broker
from shared.broker import Result
from shared.database import connect, migrate
from shared.messages import Outcome, ReportReady, UndecodableMessage, decode

log = logging.getLogger(__name__)
T = TypeVar("T")

# A database outage is waited out: messages stay unacked in the queue meanwhile.
DATABASE_PATIENCE_S = 600


class Database:
    """One connection, reopened when the server went away."""

    def __init__(self, url: str):
        self.url = url
        self.conn: psycopg.Connection | None = None

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        @retry(retry=retry_if_exception_type(psycopg.OperationalError),
               wait=wait_exponential_jitter(multiplier=0.5, max=10), stop=stop_after_delay(DATABASE_PATIENCE_S),
               before_sleep=lambda rs: log.warning("database unavailable (%s); retrying",
                                                   str(rs.outcome.exception()).strip()[:200]))
        def attempt():
            if self.conn is None or self.conn.closed or self.conn.broken:
                self.conn = connect(self.url)
            try:
                return work(self.conn)
            except psycopg.OperationalError:
                try:
                    self.conn.close()
                finally:
                    self.conn = None
                raise

        return attempt()


def make_handlers(db: Database) -> dict[str, broker.Handler]:
    def on_report(body: bytes, headers: dict) -> Result:
        try:
            msg = decode(ReportReady, body)
        except UndecodableMessage as exc:
            return Result(dead_letter_reason=str(exc))
        try:
            db.run(lambda conn: store_report(conn, msg.report, msg.path))
        except RetryError:
            return Result(requeue=True)
        return Result()

    def on_outcome(body: bytes, headers: dict) -> Result:
        try:
            msg = decode(Outcome, body)
        except UndecodableMessage as exc:
            return Result(dead_letter_reason=str(exc))

        def write(conn):
            with conn.transaction():
                record_outcome(conn, path=msg.path, status=msg.status, stage=msg.stage, reason=msg.reason,
                               sop_instance_uid=msg.sop_instance_uid, study_instance_uid=msg.study_instance_uid)
        try:
            db.run(write)
        except RetryError:
            return Result(requeue=True)
        return Result()

    return {"writer": on_report, "outcomes": on_outcome}


def run(settings, stop=None) -> None:
    if not settings.database_url:
        raise SystemExit("the writer needs DOSEFLOW_DATABASE_URL (the embedded database is for `doseflow import`)")
    db = Database(settings.database_url)
    db.run(migrate)
    broker.consume(settings.amqp_url, make_handlers(db), prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop)
