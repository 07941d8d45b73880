"""RabbitMQ: the topology, the one publish helper, and the consumer loop every worker runs.

- Every queue is a durable quorum queue with a delivery limit and a dead-letter exchange, so a
  message that keeps killing a worker ends in `dead.<queue>` instead of blocking the queue.
- Publishes go through `Channel.publish` only: publisher confirms on, persistent, mandatory.
- Work runs in a worker thread; the connection's thread keeps heartbeats flowing and does the
  publishing and the ack when the work is done (pika is not thread-safe, so results are handed
  back with `add_callback_threadsafe`). Nothing is acked before its output is confirmed or its
  database transaction committed.
- A stage is a `Stage`: its queue, its message model and its pure handler (message in ->
  `Result` out: messages to publish, or a dead-letter reason). Decoding, the outcome of an object
  a stage ignores or fails, and dead-lettering happen in `Stage.__call__`, for every queue.
  Transient faults are retried inside handlers; an unexpected exception dead-letters the message
  with the exception as reason and the worker carries on (`handle_delivery`).
- `consume` runs stages on RabbitMQ; `InProcessBroker` runs the same stages in one process
  (`doseflow import`), the way dramatiq's StubBroker runs the same actors without a broker.
"""
from __future__ import annotations

import contextvars
import datetime as _dt
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import pika
import pika.exceptions
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from shared import lifecycle, metrics, routes
from shared.lifecycle import ConfigurationError

log = logging.getLogger(__name__)

INGEST_EXCHANGE = "doseflow.ingest"
EXTRACT_EXCHANGE = "doseflow.extract"
REPORTS_EXCHANGE = "doseflow.reports"
OUTCOMES_EXCHANGE = "doseflow.outcomes"
ALERTS_EXCHANGE = "doseflow.alerts"
DEAD_EXCHANGE = "doseflow.dead"

# queue -> (exchange, routing key); one queue per route (shared/routes.py), keyed by its name.
QUEUES: dict[str, tuple[str, str]] = {
    "ingest": (INGEST_EXCHANGE, "ingest"),
    **{route.queue: (EXTRACT_EXCHANGE, route.name) for route in routes.ROUTES},
    "writer": (REPORTS_EXCHANGE, "writer"),
    "measurements": (REPORTS_EXCHANGE, "measurements"),  # CT image Dw (AAPM 220) for the writer
    "outcomes": (OUTCOMES_EXCHANGE, "outcomes"),
    "alerts": (ALERTS_EXCHANGE, "alerts"),
}


def dead_queue(queue: str) -> str:
    return f"dead.{queue}"


REASON_HEADER = "x-doseflow-reason"
QUEUE_HEADER = "x-doseflow-queue"
AT_HEADER = "x-doseflow-dead-at"

TRANSIENT_AMQP = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError,
                  pika.exceptions.StreamLostError, ConnectionError, OSError)
# The broker did not take a published message (no queue bound, or a negative confirm).
REFUSED_PUBLISH = (pika.exceptions.UnroutableError, pika.exceptions.NackError)


@dataclass(frozen=True)
class Publish:
    exchange: str
    routing_key: str
    body: bytes
    headers: Optional[dict] = None


@dataclass
class Result:
    publishes: list[Publish] = field(default_factory=list)
    dead_letter_reason: Optional[str] = None
    # A transient fault outlasted the handler's retries: give the message back to the queue.
    requeue: bool = False


Handler = Callable[[bytes, dict], Result]


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline as both compositions run it (`consume` on RabbitMQ,
    `InProcessBroker` for `doseflow import`): the queue it takes, the message model of that
    queue, and the stage's pure handler of decoded messages (message in -> Result out).

    `records`: for a stage whose every message stands for one object (ObjectReceived,
    ExtractRequest), the stage's name in the ledger. Its handler ends an object by raising
    `Ignored` or `Failed`; the binding turns that into the object's Outcome for the ledger and,
    for a failure, a dead letter with the reason, so no handler writes an outcome itself.
    `at_end`: what the stage does when the input ends, given a publisher; only the in-process
    composition has an end of input (the Toshiba builder's quiet period is then over)."""

    queue: str
    model: type
    handle: Callable[[Any], Result]
    records: Optional[str] = None
    at_end: Optional[Callable[[Any], None]] = None

    def __call__(self, body: bytes, headers: dict) -> Result:
        from shared.messages import UndecodableMessage, decode
        from shared.outcome import Failed, Ignored

        try:
            msg = decode(self.model, body)
        except UndecodableMessage as exc:
            return Result(dead_letter_reason=str(exc))
        if self.records is None:
            return self.handle(msg)
        try:
            return self.handle(msg)
        except (Ignored, Failed) as exc:
            failed = isinstance(exc, Failed)
            record = outcome(msg.path, "failed" if failed else "ignored", exc.reason, stage=self.records,
                             route=getattr(msg, "route", None), sop_instance_uid=getattr(msg, "sop_instance_uid", None),
                             study_instance_uid=getattr(msg, "study_instance_uid", None),
                             correlation_id=msg.correlation)
            return Result([record], dead_letter_reason=exc.reason if failed else None)


@dataclass(frozen=True)
class StageContext:
    """What a route's stage factory (shared/routes.py `Route.stage`) is given: a worker makes it
    from its settings, `doseflow import` from its own."""

    options: Any  # services.extractors.common.ExtractOptions
    roots: list[str] = field(default_factory=list)
    path_map: tuple = ()
    db: Any = None  # shared.database.Database, for a stage that keeps state between messages
    # Where a stage writes objects it makes (the Toshiba builder's RDSRs).
    output_dir: Any = None
    # In process the input ends: stages then do what waits for a quiet period (`Stage.at_end`).
    in_process: bool = False
    # Table travel between the CT images the Dw stage measures (None: the stage's default).
    dw_sample_interval_mm: Optional[float] = None


def handle_delivery(queue: str, handler: Handler, body: bytes, headers: dict) -> Result:
    """Run one delivery's handler: a bug must not kill the worker (or the import), so any
    exception dead-letters the message with the exception as reason."""
    try:
        return handler(body, headers)
    except Exception as exc:
        log.exception("handler for %s failed", queue)
        return Result(dead_letter_reason=f"internal error in {queue} handler: {type(exc).__name__}: {exc}")


def declare_topology(channel, delivery_limit: int) -> None:
    """Idempotent: every service declares the whole topology at start."""
    for exchange in (INGEST_EXCHANGE, EXTRACT_EXCHANGE, REPORTS_EXCHANGE, OUTCOMES_EXCHANGE, ALERTS_EXCHANGE,
                     DEAD_EXCHANGE):
        channel.exchange_declare(exchange, exchange_type="direct", durable=True)
    for queue, (exchange, key) in QUEUES.items():
        channel.queue_declare(queue, durable=True, arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
            "x-dead-letter-routing-key": queue,
            # Dead-lettering is our "kept for replay" promise: at-least-once needs reject-publish.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        })
        channel.queue_bind(queue, exchange, routing_key=key)
        channel.queue_declare(dead_queue(queue), durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(dead_queue(queue), DEAD_EXCHANGE, routing_key=queue)


def connection_parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 300
    params.connection_attempts = 1
    return params


def _refused(exc: Exception) -> Optional[str]:
    """Why the broker refused us for good (a login or virtual host it does not know), else None."""
    if isinstance(exc, (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)):
        return "the broker refused the user name or password"
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        return "the broker refused access to the virtual host (does it exist, may this user use it?)"
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker) and exc.reply_code in (403, 530):
        return f"the broker refused the connection ({exc.reply_code} {exc.reply_text})"
    return None


@retry(retry=retry_if_exception_type(TRANSIENT_AMQP), wait=wait_exponential_jitter(multiplier=0.5, max=15),
       stop=stop_after_delay(600), reraise=True, sleep=lifecycle.sleep,
       before_sleep=lambda rs: (metrics.retried("broker"),
                                log.warning("broker unreachable (%s); retrying", rs.outcome.exception())))
def connect(url: str, params: Optional[pika.ConnectionParameters] = None) -> pika.BlockingConnection:
    """A connection; transient faults retried with backoff, a refused login raises ConfigurationError."""
    try:
        return pika.BlockingConnection(params or connection_parameters(url))
    except TRANSIENT_AMQP as exc:
        reason = _refused(exc)
        if reason:
            raise ConfigurationError(f"{reason}: check DOSEFLOW_AMQP_URL") from None
        raise


class Channel:
    """A confirming channel: the only place doseflow publishes."""

    def __init__(self, connection: pika.BlockingConnection, delivery_limit: int):
        self.connection = connection
        self.channel = connection.channel()
        self.channel.confirm_delivery()
        declare_topology(self.channel, delivery_limit)

    def publish(self, p: Publish) -> None:
        # Raises UnroutableError / NackError when the broker did not take the message.
        self.channel.basic_publish(
            p.exchange, p.routing_key, p.body, mandatory=True,
            properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                            content_type="application/json", headers=p.headers or None))


class Publisher:
    """A reconnecting publisher for producers (`doseflow publish`, the Toshiba builder)."""

    def __init__(self, url: str, delivery_limit: int = 5):
        self.url, self.delivery_limit = url, delivery_limit
        self._channel: Optional[Channel] = None

    def publish(self, p: Publish) -> None:
        for attempt in range(2):
            try:
                if self._channel is None or not self._channel.channel.is_open:
                    self._channel = Channel(connect(self.url), self.delivery_limit)
                self._channel.publish(p)
                return
            except TRANSIENT_AMQP:
                self._channel = None
                if attempt:
                    raise

    def close(self) -> None:
        if self._channel is not None:
            try:
                self._channel.connection.close()
            except Exception:
                pass
            self._channel = None


def outcome(path: str, status: str, reason: str, *, stage: str = "classifier",
            sop_instance_uid: str | None = None, study_instance_uid: str | None = None,
            route: str | None = None, correlation_id: str | None = None) -> Publish:
    """The Publish recording how an object ended (ignored or failed) in the ledger."""
    from shared.messages import Outcome

    msg = Outcome(path=path, stage=stage, status=status, reason=reason, route=route, correlation_id=correlation_id,
                  sop_instance_uid=sop_instance_uid or None, study_instance_uid=study_instance_uid or None)
    return Publish(OUTCOMES_EXCHANGE, "outcomes", msg.encode())


def dead_letter(queue: str, body: bytes, headers: dict, reason: str) -> Publish:
    return Publish(DEAD_EXCHANGE, queue, body, {
        **(headers or {}), REASON_HEADER: reason[:2000], QUEUE_HEADER: queue,
        AT_HEADER: _dt.datetime.now(_dt.timezone.utc).isoformat()})


def consume(url: str, stages: Iterable[Stage], *, prefetch: int, delivery_limit: int,
            stop: Optional[threading.Event] = None, readiness=None) -> None:
    """Run `stages` (each on its queue) until `stop` is set, reconnecting with backoff.
    `readiness` (shared.readiness.Readiness) beats while consuming and is cleared otherwise."""
    handlers: dict[str, Handler] = {stage.queue: stage for stage in stages}
    stop = stop or threading.Event()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="work")
    try:
        while not stop.is_set():
            try:
                _consume_once(url, handlers, prefetch, delivery_limit, stop, executor, readiness)
            except TRANSIENT_AMQP as exc:
                if readiness is not None:
                    readiness.clear()
                if stop.is_set():
                    break
                metrics.retried("broker")
                log.warning("broker connection lost (%s); reconnecting", type(exc).__name__)
    finally:
        if readiness is not None:
            readiness.clear()
        executor.shutdown(wait=True, cancel_futures=True)


def _consume_once(url, handlers, prefetch, delivery_limit, stop, executor, readiness=None) -> None:
    connection = connect(url)
    channel = Channel(connection, delivery_limit)
    ch = channel.channel
    ch.basic_qos(prefetch_count=prefetch)

    def finish(queue, method, body, headers, result: Result):
        # On the connection's thread: publish the results, then ack.
        if not ch.is_open:
            return  # the delivery comes back on a new channel; its work is idempotent
        try:
            if result.requeue:
                # nack, not reject: from RabbitMQ 4.3 a basic.nack(requeue) is a return that does
                # not spend the message's delivery limit (basic.reject and a lost channel do), so
                # a database outage cannot dead-letter good messages; older brokers count both.
                ch.basic_nack(method.delivery_tag, requeue=True)
                metrics.message_done(queue, "requeued")
                return
            if result.dead_letter_reason is not None:
                log.warning("dead-lettering a message from %s: %s", queue, result.dead_letter_reason)
                for p in result.publishes:
                    channel.publish(p)
                channel.publish(dead_letter(queue, body, headers, result.dead_letter_reason))
            else:
                for p in result.publishes:
                    channel.publish(p)
            ch.basic_ack(method.delivery_tag)
        except REFUSED_PUBLISH as exc:
            log.error("broker refused an output of a %s message (%s); requeueing it", queue, exc)
            ch.basic_nack(method.delivery_tag, requeue=True)
            metrics.message_done(queue, "requeued")
            return
        outcome = "acked" if result.dead_letter_reason is None else "dead_lettered"
        metrics.message_done(queue, outcome)
        if result.dead_letter_reason is not None:
            metrics.dead_lettered(queue, result.dead_letter_reason)
        log.debug("%s message %s", queue, outcome)

    def work(queue, handler, method, body, headers):
        # Each message in a context of its own: the correlation id its decoding sets for the
        # logs stays with it, through `finish`, and never leaks into the next message.
        context = contextvars.copy_context()
        started = time.monotonic()
        result = context.run(handle_delivery, queue, handler, body, headers)
        metrics.MESSAGE_SECONDS.labels(queue).observe(time.monotonic() - started)
        connection.add_callback_threadsafe(functools.partial(context.run, finish, queue, method, body, headers,
                                                             result))

    def on_message(queue, handler, _ch, method, properties, body):
        executor.submit(work, queue, handler, method, body, dict(properties.headers or {}))

    for queue, handler in handlers.items():
        ch.basic_consume(queue, functools.partial(on_message, queue, handler))
    log.info("consuming %s", ", ".join(handlers))
    try:
        while not stop.is_set():
            connection.process_data_events(time_limit=0.5)
            if readiness is not None:
                readiness.beat()
    finally:
        if connection.is_open:
            try:
                connection.close()
            except Exception:
                pass


class Requeued(RuntimeError):
    """In process, a handler gave its message back: a transient fault (the database) outlasted
    its retries, and there is no other consumer to take the message later."""


class InProcessBroker:
    """The pipeline in one process, no RabbitMQ (`doseflow import`): the same topology
    (QUEUES), the same stages, every message encoded and decoded as on the wire, so an import
    and a broker deployment run one wiring. Like dramatiq's StubBroker it stands in for the
    broker and runs the real handlers; unlike it there are no worker threads: `drain` handles
    the waiting messages in the order they were published, each message's results before the
    next input, on the caller's thread.

    A Result is applied as `consume` applies it: its publishes queued, a dead letter kept in
    `dead_letters` as (queue, reason), then the message is dropped (the ack: its database work
    is committed by then). A message for a queue no stage here takes (StudyStored without an
    alerts stage) is counted in `unconsumed`, as it would wait in RabbitMQ for its consumer."""

    def __init__(self, stages: Iterable[Stage]):
        self.stages: dict[str, Stage] = {stage.queue: stage for stage in stages}
        self._queue_of = {binding: queue for queue, binding in QUEUES.items()}
        self._waiting: deque[tuple[str, bytes, dict]] = deque()
        self.dead_letters: list[tuple[str, str]] = []
        self.unconsumed: dict[str, int] = {}

    def publish(self, p: Publish) -> None:
        if p.exchange == DEAD_EXCHANGE:
            self.dead_letters.append((p.routing_key, (p.headers or {}).get(REASON_HEADER, "")))
            return
        queue = self._queue_of.get((p.exchange, p.routing_key))
        if queue is None:  # RabbitMQ returns a mandatory publish no queue is bound for
            raise LookupError(f"no queue is bound to {p.exchange} with key {p.routing_key!r}")
        if queue in self.stages:
            self._waiting.append((queue, p.body, p.headers or {}))
        else:
            self.unconsumed[queue] = self.unconsumed.get(queue, 0) + 1

    def drain(self) -> None:
        """Handle every waiting message, and what they publish, until no message waits."""
        while self._waiting:
            queue, body, headers = self._waiting.popleft()
            # Each message in a context of its own, as in `consume`: its correlation id stays with it.
            result = contextvars.copy_context().run(handle_delivery, queue, self.stages[queue], body, headers)
            if result.requeue:
                raise Requeued(f"a {queue} message could not be handled: a transient fault (the database?) "
                               "outlasted its retries")
            for p in result.publishes:
                self.publish(p)
            if result.dead_letter_reason is not None:
                self.dead_letters.append((queue, result.dead_letter_reason))

    def end_of_input(self) -> None:
        """The input has ended: each stage with work held back for a quiet period does it now
        (the Toshiba builder builds its studies), and what that publishes is handled."""
        self.drain()
        for stage in self.stages.values():
            if stage.at_end is not None:
                stage.at_end(self)
                self.drain()
