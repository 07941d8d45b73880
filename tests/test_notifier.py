"""Sending one notification (services/notifier/deliver.py) to real receivers on 127.0.0.1: an
aiosmtpd server requiring STARTTLS and AUTH, and a stdlib HTTP server; and the notifier's
refusal to start half-configured."""
from __future__ import annotations

import hashlib
import hmac
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from services.alerts.rules import parse
from services.notifier import deliver
from services.notifier.deliver import Permanent, SmtpConfig, Transient
from services.notifier.worker import ConfigurationError, backoff_s, sender_from
from tests.integration.receivers import SmtpReceiver, WebhookReceiver, self_signed_certificate

PAYLOAD = {
    "idempotency_key": "doseflow-0123456789abcdef0123456789abcdef",
    "alert_id": 7,
    "raised_at": "2026-12-02T10:00:00+00:00",
    "level": "warning",
    "rule": {"id": "fgi-kar", "version": 1, "title": "Ka,r above 5 Gy", "source": "NCRP 168"},
    "values": {"metric": "rp_dose_total_Gy", "value": 5.3, "comparison": "above", "limit": 5.0},
    "study": {"study_instance_uid": "1.2.3", "accession_number": "ACC1", "study_date": "2026-12-01",
              "modality": "XA", "study_description": "Embolisation"},
    "device": {"station_name": "CATH\r\nBcc: x@evil.example", "manufacturer": "Siemens", "model": "Artis Zee",
               "institution_name": None, "department": None},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    server = SmtpReceiver(free_port(), cert, key, "doseflow", "pw")
    server.start()
    yield server, SmtpConfig("127.0.0.1", server.port, "starttls", "doseflow@example.org", str(cert),
                             "doseflow", "pw")
    server.stop()


def test_an_email_carries_the_key_and_one_line_headers():
    msg = deliver.email_message(PAYLOAD, "physics@example.org", "doseflow@example.org")
    assert msg["Message-ID"] == f"<{PAYLOAD['idempotency_key']}@doseflow>"
    assert msg["X-Doseflow-Idempotency-Key"] == PAYLOAD["idempotency_key"]
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Subject"].startswith("[doseflow warning] Ka,r above 5 Gy - CATH Bcc:")  # text, not a header
    assert msg["Bcc"] is None
    body = msg.get_content()
    assert "accession ACC1" in body and "doseflow alerts ack 7 --by NAME" in body and '"value": 5.3' in body


def test_email_over_starttls_with_auth_is_accepted(smtp):
    server, config = smtp
    deliver.send_email(config, "physics@example.org", PAYLOAD)
    assert server.inbox.arrivals == [("physics@example.org", PAYLOAD["idempotency_key"])]


def test_a_server_that_is_down_or_untrusted_is_transient(smtp, tmp_path):
    server, config = smtp
    with pytest.raises(Transient, match="SMTP ConnectionRefusedError"):
        deliver.send_email(SmtpConfig(**{**config.__dict__, "port": free_port()}), "a@example.org", PAYLOAD)
    # A certificate the notifier does not trust: nothing is sent in clear; retried later.
    (tmp_path / "other").mkdir()
    other, _ = self_signed_certificate(tmp_path / "other")
    with pytest.raises(Transient, match="SSL|certificate"):
        deliver.send_email(SmtpConfig(**{**config.__dict__, "ca_file": str(other)}), "a@example.org", PAYLOAD)
    assert server.inbox.arrivals == []


def test_webhook_is_signed_and_http_errors_are_classified():
    secret = b"k"
    receiver = WebhookReceiver(secret)
    try:
        deliver.send_webhook(receiver.url("/hook"), PAYLOAD, secret)
        assert receiver.inbox.arrivals == [("/hook", PAYLOAD["idempotency_key"])]
        body = deliver.webhook_body(PAYLOAD)
        assert deliver.signature(secret, body) == "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        with pytest.raises(Permanent, match="HTTP 401"):  # the receiver refuses a wrong signature
            deliver.send_webhook(receiver.url("/hook"), PAYLOAD, b"wrong key")
    finally:
        receiver.stop()
    with pytest.raises(Transient, match="unreachable"):
        deliver.send_webhook(f"http://127.0.0.1:{free_port()}/hook", PAYLOAD, secret)


def settings(tmp_path: Path, **values):
    base = dict(smtp_host=None, smtp_port=587, smtp_security="starttls", smtp_ca_file=None, smtp_username=None,
                smtp_password_file=None, smtp_from="d@example.org", webhook_secret_file=None)
    return SimpleNamespace(**{**base, **values})


RULES = parse("subscriptions:\n  - {name: a, email: a@example.org}\n  - {name: b, webhook: 'http://h/x'}\n")


def test_the_notifier_does_not_start_half_configured(tmp_path):
    with pytest.raises(ConfigurationError, match="DOSEFLOW_SMTP_HOST is not set"):
        sender_from(settings(tmp_path), RULES)
    with pytest.raises(ConfigurationError, match="DOSEFLOW_SMTP_PASSWORD_FILE is not"):
        sender_from(settings(tmp_path, smtp_host="mail", smtp_username="u"), RULES)
    with pytest.raises(ConfigurationError, match="cannot read SMTP password file"):
        sender_from(settings(tmp_path, smtp_host="mail", smtp_username="u",
                             smtp_password_file=tmp_path / "missing"), RULES)
    with pytest.raises(ConfigurationError, match="DOSEFLOW_WEBHOOK_SECRET_FILE is not set"):
        sender_from(settings(tmp_path, smtp_host="mail"), RULES)
    (tmp_path / "secret").write_text("\n")
    with pytest.raises(ConfigurationError, match="is empty"):
        sender_from(settings(tmp_path, smtp_host="mail", webhook_secret_file=tmp_path / "secret"), RULES)
    (tmp_path / "secret").write_text("s3\n")
    sender = sender_from(settings(tmp_path, smtp_host="mail", webhook_secret_file=tmp_path / "secret"), RULES)
    assert sender.webhook_secret == b"s3" and sender.smtp.host == "mail"


def test_backoff_doubles_with_jitter_up_to_the_ceiling():
    for attempts, top in ((1, 1), (2, 2), (3, 4), (10, 300), (40, 300)):
        for _ in range(20):
            assert top * 0.5 <= backoff_s(attempts, 300) <= top
