"""The notifier service: delivers the outbox (table `notification`) by e-mail and webhook.

Each notification is claimed with `FOR UPDATE SKIP LOCKED` (any number of notifiers may run),
sent, and marked delivered in the same transaction once the server accepted it. A transient
failure is retried with exponential backoff (1 s doubling, jittered, up to
DOSEFLOW_NOTIFY_RETRY_MAX_SECONDS) until DOSEFLOW_NOTIFY_MAX_ATTEMPTS; a permanent refusal
marks it failed with the reason. A notifier killed between the server's acceptance and the
commit leaves the row pending: it is sent again, with the same idempotency key (deliver.py).
"""
from __future__ import annotations

import logging
import random
import threading
from typing import Optional

import psycopg

from services.alerts.rules import RuleSet, load_configured
from services.notifier import deliver
from services.notifier.deliver import Permanent, SmtpConfig, Transient
from shared import metrics
from shared.database import Database, migrate

log = logging.getLogger(__name__)

POLL_S = 1.0


class ConfigurationError(Exception):
    pass


class Sender:
    def __init__(self, smtp: Optional[SmtpConfig], webhook_secret: Optional[bytes]):
        self.smtp, self.webhook_secret = smtp, webhook_secret

    def send(self, channel: str, address: str, payload: dict) -> None:
        if channel == "email":
            if self.smtp is None:
                raise Transient("e-mail is not configured (DOSEFLOW_SMTP_HOST)")
            deliver.send_email(self.smtp, address, payload)
        else:
            if self.webhook_secret is None:
                raise Transient("webhooks are not configured (DOSEFLOW_WEBHOOK_SECRET_FILE)")
            deliver.send_webhook(address, payload, self.webhook_secret)


def _secret(path, what: str) -> bytes:
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not value:
        raise ConfigurationError(f"{what} {path} is empty")
    return value


def sender_from(settings, rules: RuleSet) -> Sender:
    """The channels the settings configure; refuses (ConfigurationError) when a subscription
    needs a channel that is not configured, so the notifier never starts half-configured."""
    channels = {s.channel for s in rules.subscriptions}
    smtp = None
    if settings.smtp_host:
        password = None
        if settings.smtp_username:
            if not settings.smtp_password_file:
                raise ConfigurationError("DOSEFLOW_SMTP_USERNAME is set but DOSEFLOW_SMTP_PASSWORD_FILE is not")
            password = _secret(settings.smtp_password_file, "SMTP password file").decode("utf-8")
        if settings.smtp_ca_file and not settings.smtp_ca_file.is_file():
            raise ConfigurationError(f"DOSEFLOW_SMTP_CA_FILE {settings.smtp_ca_file} is not a file")
        smtp = SmtpConfig(settings.smtp_host, settings.smtp_port, settings.smtp_security, settings.smtp_from,
                          str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
                          settings.smtp_username, password)
    elif "email" in channels:
        raise ConfigurationError("the alert rules subscribe e-mail recipients but DOSEFLOW_SMTP_HOST is not set")
    secret = None
    if settings.webhook_secret_file:
        secret = _secret(settings.webhook_secret_file, "webhook secret file")
    elif "webhook" in channels:
        raise ConfigurationError("the alert rules subscribe webhooks but DOSEFLOW_WEBHOOK_SECRET_FILE is not set")
    return Sender(smtp, secret)


def backoff_s(attempts: int, ceiling: float) -> float:
    """Seconds before attempt `attempts + 1`: 1, 2, 4, ... up to `ceiling`, each 50-100 %."""
    return min(ceiling, 2.0 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)


def deliver_one(conn: psycopg.Connection, sender: Sender, *, max_attempts: int, retry_max_s: float) -> bool:
    """Deliver the next due notification, if any. Returns whether there was one."""
    with conn.transaction():
        row = conn.execute(
            "SELECT id, channel, address, payload, attempts FROM notification"
            " WHERE status = 'pending' AND next_attempt_at <= now()"
            " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED").fetchone()
        if row is None:
            return False
        id_, channel, address, payload, attempts = row
        attempts += 1
        try:
            sender.send(channel, address, payload)
        except Transient as exc:
            if attempts >= max_attempts:
                _finish(conn, id_, "failed", attempts, f"{exc} (gave up after {attempts} attempts)")
                metrics.notification(channel, "failed")
                log.error("notification %d (%s) failed after %d attempts: %s", id_, channel, attempts, exc)
            else:
                wait = backoff_s(attempts, retry_max_s)
                conn.execute("UPDATE notification SET attempts = %s, last_error = %s,"
                             " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
                             (attempts, str(exc), wait, id_))
                metrics.notification(channel, "retried")
                log.warning("notification %d (%s) not delivered (%s); retrying in %.1f s", id_, channel, exc, wait)
        except Exception as exc:  # a bug must not make one row stop the notifier for good
            if not isinstance(exc, Permanent):
                log.exception("notification %d (%s): internal error", id_, channel)
                exc = Permanent(f"internal error: {type(exc).__name__}: {exc}")
            _finish(conn, id_, "failed", attempts, str(exc))
            metrics.notification(channel, "failed")
            log.error("notification %d (%s) refused: %s", id_, channel, exc)
        else:
            _finish(conn, id_, "delivered", attempts, None)
            metrics.notification(channel, "delivered")
            log.info("notification %d delivered by %s", id_, channel)
    return True


def _finish(conn, id_: int, status: str, attempts: int, error: Optional[str]) -> None:
    conn.execute("UPDATE notification SET status = %s, attempts = %s, last_error = %s,"
                 " delivered_at = CASE WHEN %s = 'delivered' THEN now() END WHERE id = %s",
                 (status, attempts, error, status, id_))


def run(settings, stop: Optional[threading.Event] = None, rules: Optional[RuleSet] = None) -> None:
    if not settings.database_url:
        raise SystemExit("the notifier needs DOSEFLOW_DATABASE_URL")
    sender = sender_from(settings, rules or load_configured(settings))
    stop = stop or threading.Event()
    db = Database(settings.database_url)
    db.run(migrate)
    log.info("delivering notifications")
    while not stop.is_set():
        busy = db.run(lambda conn: deliver_one(conn, sender, max_attempts=settings.notify_max_attempts,
                                               retry_max_s=settings.notify_retry_max_seconds))
        if not busy:
            stop.wait(POLL_S)
