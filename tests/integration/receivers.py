"""Real receivers for notifications: an SMTP server (aiosmtpd, STARTTLS and AUTH required) and
an HTTP webhook receiver (stdlib) on 127.0.0.1, each dropping repeats by the idempotency key as
the README tells a receiver to."""
from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import ssl
import subprocess
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (openssl), which the notifier trusts through
    DOSEFLOW_SMTP_CA_FILE."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        pytest.fail("openssl is needed to make the test SMTP server's certificate")
    return cert, key


class Inbox:
    """What one kind of receiver got: every arrival, and what it processed after dropping
    repeats of an idempotency key it had seen."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrivals: list[tuple[str, str]] = []  # (recipient, key)
        self.processed: Counter = Counter()  # (recipient, key) -> times processed
        self.messages: dict[tuple[str, str], object] = {}

    def arrive(self, recipient: str, key: str, message) -> None:
        with self.lock:
            self.arrivals.append((recipient, key))
            if (recipient, key) not in self.processed:  # the receiver's dedup by idempotency key
                self.processed[(recipient, key)] += 1
                self.messages[(recipient, key)] = message

    @property
    def repeats(self) -> int:
        """Arrivals dropped as repeats of a key already processed."""
        return len(self.arrivals) - len(self.processed)

    @property
    def duplicates_after_dedup(self) -> int:
        return sum(n - 1 for n in self.processed.values())

    def per_recipient(self) -> Counter:
        return Counter(r for r, _ in self.processed)


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1:`port` requiring STARTTLS and AUTH; stop()/start() to be down."""

    def __init__(self, port: int, cert: Path, key: Path, user: str, password: str):
        self.port, self.user, self.password = port, user, password
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert), str(key))
        self.inbox = Inbox()
        self.controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        key = message["X-Doseflow-Idempotency-Key"]
        assert message["Message-ID"] == f"<{key}@doseflow>"
        for recipient in envelope.rcpt_tos:
            self.inbox.arrive(recipient, key, message)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=self.context,
                                     require_starttls=True, auth_required=True, auth_require_tls=True,
                                     authenticator=self._authenticate, server_hostname="127.0.0.1",
                                     ready_timeout=10)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class WebhookReceiver:
    """A stdlib HTTP server checking each body's HMAC signature. With `hold_first`, the first
    request is answered only once `release` is set (at most 60 s): a notifier can be killed
    after the receiver got the body and before it answered."""

    def __init__(self, secret: bytes, hold_first: bool = False):
        self.secret, self.hold_first = secret, hold_first
        self.release = threading.Event()
        self.inbox = Inbox()
        self.bad_signatures = 0
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Doseflow-Signature", "")):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                payload = json.loads(body)
                key = self.headers["Idempotency-Key"]
                assert payload["idempotency_key"] == key
                receiver.inbox.arrive(self.path, key, payload)
                with receiver.inbox.lock:
                    receiver.requests += 1
                    hold = receiver.hold_first and receiver.requests == 1
                if hold:
                    receiver.release.wait(60)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
