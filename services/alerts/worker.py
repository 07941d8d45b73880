"""The alerts service: StudyStored -> evaluate the stored study's rules -> new alerts and their
outbox rows, in one transaction, then ack. Any number may run (competing consumers); a
re-delivered message raises nothing twice (services/alerts/store.py)."""
from __future__ import annotations

import logging
from typing import Callable, Optional

from tenacity import RetryError

from services.alerts.rules import RuleSet, load_configured
from services.alerts.store import evaluate_stored
from shared import broker, metrics
from shared.broker import Result
from shared.database import Database, migrate
from shared.messages import StudyStored
from shared.readiness import Readiness, database_answers

log = logging.getLogger(__name__)


def count_raised(new) -> None:
    for _, alert in new:
        metrics.alert_raised(alert.rule_id, alert.level)
        log.info("alert %s v%d (%s) raised for study %s", alert.rule_id, alert.rule_version, alert.level,
                 alert.study_instance_uid)


def make_handlers(db: Database, rules: RuleSet, also: Optional[Callable[[list], None]] = None) -> list[broker.Stage]:
    """The alerts stage. The alerts each study raised are counted and logged, and given to
    `also` (the import counts them for its summary)."""
    def on_study(msg: StudyStored) -> Result:
        try:
            new = db.run(lambda conn: evaluate_stored(conn, msg.study_instance_uid, rules))
        except RetryError:
            return Result(requeue=True)
        count_raised(new)
        if also is not None:
            also(new)
        return Result()

    return [broker.Stage("alerts", StudyStored, on_study)]


def run(settings, stop=None, rules: Optional[RuleSet] = None) -> None:
    if not settings.database_url:
        raise SystemExit("the alerts service needs DOSEFLOW_DATABASE_URL")
    rules = rules or load_configured(settings)
    db = Database(settings.database_url)
    db.run(migrate)
    broker.consume(settings.amqp_url, make_handlers(db, rules), prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop,
                   readiness=Readiness(settings.ready_file, [database_answers(settings.database_url)]))
