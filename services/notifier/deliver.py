"""Sending one notification: an e-mail over SMTP (STARTTLS, AUTH) or a signed JSON webhook.

Every message carries the notification's idempotency key — the e-mail's Message-ID
`<KEY@doseflow>` and header `X-Doseflow-Idempotency-Key`, the webhook's `Idempotency-Key`
header and the body's `idempotency_key` — because delivery is at least once: a notifier that
dies after the server accepted a message and before it recorded that, sends it again, and the
receiver drops the repeat by its key.

`send` raises `Transient` (try again later: connection refused, timeout, 4xx) or `Permanent`
(the server refused this message for good: 5xx on the message or recipient, HTTP 4xx).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Optional

TIMEOUT_S = 30


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # starttls | none
    sender: str
    ca_file: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None


def _one_line(value) -> str:
    return " ".join(str(value).split()) if value is not None else "-"


def email_message(payload: dict, to: str, sender: str) -> EmailMessage:
    key, study, device, rule = payload["idempotency_key"], payload["study"], payload["device"], payload["rule"]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = _one_line(f"[doseflow {payload['level']}] {rule['title']} - {device.get('station_name') or '-'}"
                               f" {study.get('study_date') or ''} accession {study.get('accession_number') or '-'}")
    msg["Message-ID"] = f"<{key}@doseflow>"
    msg["X-Doseflow-Idempotency-Key"] = key
    msg["Date"] = format_datetime(dt.datetime.fromisoformat(payload["raised_at"]))
    lines = [
        f"Rule: {_one_line(rule['title'])} ({rule['id']} version {rule['version']}), level {payload['level']}",
        f"Source: {_one_line(rule['source'])}",
        f"Study: accession {_one_line(study.get('accession_number'))}, date {_one_line(study.get('study_date'))}, "
        f"{_one_line(study.get('modality'))} {_one_line(study.get('study_description'))}",
        f"Study Instance UID: {study['study_instance_uid']}",
        f"Device: {_one_line(device.get('station_name'))} ({_one_line(device.get('manufacturer'))} "
        f"{_one_line(device.get('model'))}), {_one_line(device.get('institution_name'))}",
        "Values:",
        json.dumps(payload["values"], indent=2, sort_keys=True),
        "",
        f"Alert {payload['alert_id']} raised {payload['raised_at']}. Acknowledge with: doseflow alerts ack "
        f"{payload['alert_id']} --by NAME",
        f"Idempotency key: {key} (a repeat of this e-mail after a notifier restart has the same Message-ID)",
    ]
    msg.set_content("\n".join(lines))
    return msg


def send_email(config: SmtpConfig, to: str, payload: dict) -> None:
    msg = email_message(payload, to, config.sender)
    try:
        with smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_S) as smtp:
            smtp.ehlo()
            if config.security == "starttls":
                smtp.starttls(context=ssl.create_default_context(cafile=config.ca_file))
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:  # a configuration fault: fixed, it delivers
        raise Transient(f"SMTP login refused ({exc.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        error = f"SMTP recipient refused ({', '.join(map(str, codes))})"
        raise (Permanent if all(c >= 500 for c in codes) else Transient)(error) from None
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP server answered {exc.smtp_code}: {_one_line(exc.smtp_error.decode(errors='replace'))[:200]}"
        raise (Permanent if exc.smtp_code >= 500 else Transient)(error) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise Transient(f"SMTP server does not support what is configured: {exc}") from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS, disconnected
        raise Transient(f"SMTP {type(exc).__name__}: {_one_line(exc)[:200]}") from None


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def send_webhook(url: str, payload: dict, secret: bytes) -> None:
    body = webhook_body(payload)
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "doseflow-notifier",
        "Idempotency-Key": payload["idempotency_key"], "X-Doseflow-Signature": signature(secret, body)})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        error = f"webhook answered HTTP {exc.code}"
        raise (Transient if exc.code in (408, 425, 429) or exc.code >= 500 else Permanent)(error) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Transient(f"webhook unreachable: {_one_line(getattr(exc, 'reason', exc))[:200]}") from None
