"""The receiver service (`doseflow worker receiver`): a DICOM C-STORE SCP that writes each
object under the receiver root and announces it on the ingest queue (ObjectReceived).

Unlike the other workers it consumes nothing; it listens on a TCP port, so one receiver runs
per published port. pynetdicom serves each association in its own thread; the announcements
share one confirming broker channel behind a lock (pika is not thread-safe).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional

from tenacity import stop_after_delay, wait_exponential_jitter

from services.receiver.scp import Limits, StoreHandler, application_entity, drop_stalled, start
from shared import broker
from shared.broker import INGEST_EXCHANGE, Publish
from shared.messages import ObjectReceived
from shared.outcome import Failed
from shared.paths import check_ingest_path
from shared.readiness import Readiness, folder_writable

log = logging.getLogger(__name__)

# A modality waits for the C-STORE response for typically 30-60 s; a broker outage must give
# it a failure status well before that (DOSEFLOW_RECEIVER_ANNOUNCE_TIMEOUT_S), so it keeps the
# object and retries, rather than an aborted association after our 10-minute reconnect backoff.
CONNECT_WITHIN_S = 10.0
# How long SIGTERM waits for associations in progress before aborting them.
DRAIN_S = 30.0
# Heartbeats on the idle announcement connection (pika's heartbeat is 30 s).
KEEPALIVE_S = 5.0


class Announcer:
    """Publishes ObjectReceived through the project's confirming Publisher, one at a time.
    Returns only when the broker confirmed the message; raises otherwise."""

    def __init__(self, url: str, delivery_limit: int, connect_within: float = CONNECT_WITHIN_S):
        self.publisher = broker.Publisher(url, delivery_limit)
        # Short waits, and the last one never past the bound (tenacity checks the delay after a
        # failed attempt: a 15 s backoff would overshoot it); a refused login is not retried.
        self._connect = broker.connect.retry_with(
            stop=stop_after_delay(connect_within * 0.6),
            wait=wait_exponential_jitter(initial=0.2, max=max(connect_within / 5, 0.5)))
        self.connect_within = connect_within
        self._lock = threading.Lock()

    def __call__(self, path: str) -> str:
        """Announce the object at `path`; returns the correlation id that follows it through the stages."""
        received = ObjectReceived(path=path, origin="receiver")
        message = Publish(INGEST_EXCHANGE, "ingest", received.encode())
        with self._lock:
            self._ensure_channel()
            self.publisher.publish(message)
        return received.correlation

    def _ensure_channel(self) -> None:
        # Connect with a bounded wait; Publisher.publish would otherwise reconnect with the
        # long backoff meant for background producers.
        channel = self.publisher._channel
        if channel is None or not channel.channel.is_open:
            self.publisher.close()
            params = broker.connection_parameters(self.publisher.url)
            params.socket_timeout = params.stack_timeout = self.connect_within / 4
            # A blocked broker (memory or disk alarm) must not hold the C-STORE for 5 minutes.
            params.blocked_connection_timeout = self.connect_within / 2
            self.publisher._channel = broker.Channel(self._connect(self.publisher.url, params),
                                                     self.publisher.delivery_limit)

    def keepalive(self) -> None:
        """Let pika send heartbeats and notice a dropped connection between C-STOREs."""
        with self._lock:
            channel = self.publisher._channel
            if channel is None:
                return
            try:
                channel.connection.process_data_events(time_limit=0)
            except broker.TRANSIENT_AMQP:
                self.publisher.close()

    def connected(self) -> Optional[str]:
        """Readiness check: None when a confirming channel to the broker is open (connecting
        now, with the bounded wait, if there is none), else why not."""
        with self._lock:
            try:
                self._ensure_channel()
                self.publisher._channel.connection.process_data_events(time_limit=0)
            except broker.TRANSIENT_AMQP as exc:
                self.publisher.close()
                return f"broker unreachable ({broker._refused(exc) or type(exc).__name__})"
        return None

    def close(self) -> None:
        with self._lock:
            self.publisher.close()


def receiver_root(settings) -> Path:
    """The folder received objects go to; raises Failed with the reason when unusable."""
    root = settings.receiver_folder()
    if root is None:
        raise Failed("no receiver folder: set DOSEFLOW_RECEIVER_ROOT or DOSEFLOW_INGEST_ROOTS")
    root = Path(os.path.realpath(root))
    if settings.ingest_roots:
        try:
            check_ingest_path(str(root), settings.ingest_roots)
        except Failed:
            raise Failed(f"receiver folder {root} is outside DOSEFLOW_INGEST_ROOTS: the classifier "
                         "would refuse every object received") from None
    return root


def limits_of(settings) -> Limits:
    return Limits(acse_timeout_s=settings.receiver_acse_timeout_s, dimse_timeout_s=settings.receiver_dimse_timeout_s,
                  network_timeout_s=settings.receiver_network_timeout_s,
                  max_associations=settings.receiver_max_associations,
                  max_associations_per_ae=settings.receiver_max_associations_per_ae,
                  max_object_bytes=int(settings.receiver_max_object_mb * (1 << 20)))


def run(settings, stop: Optional[threading.Event] = None) -> int:
    stop = stop or threading.Event()
    try:
        root = receiver_root(settings)
        root.mkdir(parents=True, exist_ok=True)
    except (Failed, OSError) as exc:
        log.error("receiver cannot start: %s", getattr(exc, "reason", exc))
        return 2
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # per-PDU chatter otherwise
    announcer = Announcer(settings.amqp_url, settings.delivery_limit, settings.receiver_announce_timeout_s)
    limits = limits_of(settings)
    ae = application_entity(settings.receiver_ae_title, settings.receiver_allowed_calling_aes, limits)
    try:
        server = start(ae, settings.receiver_port, StoreHandler(root, announcer), limits)
    except OSError as exc:
        log.error("receiver cannot listen on port %d: %s", settings.receiver_port, exc)
        return 1
    log.info("receiving as %s on port %d into %s (calling AEs: %s)", settings.receiver_ae_title,
             settings.receiver_port, root, ", ".join(settings.receiver_allowed_calling_aes) or "any")
    unwritable = folder_writable(root)()
    if unwritable:
        log.error("every object would be refused (0xA700): %s", unwritable)
    readiness = Readiness(settings.ready_file, [folder_writable(root), announcer.connected])
    try:
        # Short waits: SIGTERM may land on a pynetdicom thread, and the main thread only runs
        # the handler (which sets `stop`) when it wakes.
        last_keepalive = time.monotonic()
        while not stop.wait(0.5):
            drop_stalled(ae, limits.acse_timeout_s)
            if time.monotonic() - last_keepalive >= KEEPALIVE_S:
                announcer.keepalive()
                last_keepalive = time.monotonic()
            readiness.beat()
    finally:
        readiness.clear()
        server.shutdown()  # stop accepting; associations in progress go on
        deadline = time.monotonic() + DRAIN_S
        # Only established associations may be mid-C-STORE; a connection still negotiating
        # (or a bare port probe) is aborted at once.
        while any(a.is_established for a in ae.active_associations) and time.monotonic() < deadline:
            time.sleep(0.2)
        ae.shutdown()
        announcer.close()
    return 0
