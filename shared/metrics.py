"""Prometheus metrics of the workers (`doseflow worker ...` with DOSEFLOW_METRICS_PORT set).

What is counted where:
- per message (shared/broker.py's consume loop): how each delivery ended — acked, dead-lettered
  or requeued — and how long its handler ran, by queue;
- per object (where a ledger row is committed: the writer, the Toshiba builder): stored, ignored
  or failed, by route;
- failures (every dead letter a worker makes), by reason class;
- retries of the broker connection and of database work;
- the receiver's C-STORE answers;
- alerts raised, by rule and level (the alerts service), and notifications delivered, retried
  and failed, by channel (the notifier).

Labels are bounded: queue, route, outcome, and a reason *class* (the first plain words of the
reason) — never a path, a UID or any value read from an object.
"""
from __future__ import annotations

import re

from prometheus_client import Counter, Histogram, Info, start_http_server

MESSAGES = Counter("doseflow_messages", "Deliveries handled, by queue and how they ended "
                   "(acked, dead_lettered, requeued).", ["queue", "outcome"])
MESSAGE_SECONDS = Histogram("doseflow_message_processing_seconds", "Time a handler took for one delivery.",
                            ["queue"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300))
OBJECTS = Counter("doseflow_objects", "Objects whose outcome was committed to the ledger, by route "
                  "('none' when the classifier ended them) and outcome (stored, ignored, failed).",
                  ["route", "outcome"])
FAILURES = Counter("doseflow_failures", "Dead letters made, by queue and reason class (the first "
                   "plain words of the reason).", ["queue", "reason"])
RETRIES = Counter("doseflow_retries", "Retries after a transient fault, by what was retried "
                  "(broker, database).", ["what"])
DICOM_STORES = Counter("doseflow_dicom_stores", "C-STORE requests the receiver answered, by status "
                       "(success, out_of_resources, cannot_understand).", ["status"])
ALERTS = Counter("doseflow_alerts_raised", "New alerts kept (an alert already raised is not counted "
                 "again), by rule id and level.", ["rule", "level"])
NOTIFICATIONS = Counter("doseflow_notifications", "Notification delivery attempts by channel and outcome "
                        "(delivered, retried, failed).", ["channel", "outcome"])
WORKER = Info("doseflow_worker", "Which doseflow worker this process is.")

_WORD = re.compile(r"[A-Za-z][A-Za-z_-]*")
REASON_WORDS = 5


def reason_class(reason: str | None) -> str:
    """A bounded label for a free-text reason: its first plain words (letters only), up to the
    first number, quote, bracket or other value-like token, at most REASON_WORDS words.
    'file not found (deleted or moved ...)' -> 'file not found'; 'dose screen row 3 ...' ->
    'dose screen row'."""
    words = []
    for token in (reason or "").split():
        token = token.rstrip(":,;.")
        if not _WORD.fullmatch(token):
            break
        words.append(token)
        if len(words) == REASON_WORDS:
            break
    return " ".join(words) or "other"


def message_done(queue: str, outcome: str) -> None:
    MESSAGES.labels(queue, outcome).inc()


def dead_lettered(queue: str, reason: str | None) -> None:
    FAILURES.labels(queue, reason_class(reason)).inc()


def object_outcome(route: str | None, outcome: str) -> None:
    OBJECTS.labels(route or "none", outcome).inc()


def retried(what: str) -> None:
    RETRIES.labels(what).inc()


def dicom_store(status: str) -> None:
    DICOM_STORES.labels(status).inc()


def alert_raised(rule: str, level: str) -> None:
    ALERTS.labels(rule, level).inc()


def notification(channel: str, outcome: str) -> None:
    NOTIFICATIONS.labels(channel, outcome).inc()


def serve(port: int, kind: str, version: str) -> None:
    """Expose /metrics on `port` (all interfaces: in a container the scraper comes from outside;
    nothing here names a patient or a file)."""
    WORKER.info({"kind": kind, "version": version})
    start_http_server(port)
