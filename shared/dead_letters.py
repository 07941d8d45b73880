"""Dead letters: messages a stage could not process (with the reason), kept in `dead.<queue>`
for `doseflow dead-letters list|replay`, and queue depths for `doseflow status`."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional

import pika

from shared import broker
from shared.broker import AT_HEADER, QUEUES, REASON_HEADER, TRANSIENT_AMQP, dead_queue

DOSEFLOW_HEADERS = (REASON_HEADER, broker.QUEUE_HEADER, AT_HEADER, "x-death", "x-first-death-exchange",
                    "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange",
                    "x-last-death-queue", "x-last-death-reason", "x-delivery-count")


@dataclass
class DeadLetter:
    id: str
    queue: str
    reason: str
    at: Optional[str]
    path: Optional[str]


def _describe(queue: str, body: bytes, headers: dict) -> DeadLetter:
    letter_id = hashlib.sha256(queue.encode() + b"\0" + body).hexdigest()[:16]
    reason = headers.get(REASON_HEADER)
    at = headers.get(AT_HEADER)
    if reason is None:
        deaths = headers.get("x-death") or []
        first = deaths[0] if deaths else {}
        why = first.get("reason", b"")
        why = why.decode() if isinstance(why, bytes) else str(why or "unknown")
        reason = (f"broker dead-lettered it ({why}): delivered the maximum number of times without "
                  "being acknowledged — a worker died or gave up on it each time")
        at = str(first.get("time")) if first.get("time") else None
    try:
        path = json.loads(body).get("path")
    except (ValueError, AttributeError, RecursionError):  # any body, however hostile (nested 100000 deep)
        path = None
    if not isinstance(path, str):
        path = None
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return DeadLetter(letter_id, queue, str(reason), str(at) if at else None, path)


def list_letters(settings) -> list[DeadLetter]:
    """Every dead letter; read without removing (unacked gets are returned when the channel closes)."""
    out = []
    conn = broker.connect(settings.amqp_url)
    try:
        ch = conn.channel()
        broker.declare_topology(ch, settings.delivery_limit)
        for queue in QUEUES:
            while True:
                method, props, body = ch.basic_get(dead_queue(queue), auto_ack=False)
                if method is None:
                    break
                out.append(_describe(queue, body, dict(props.headers or {})))
    finally:
        conn.close()
    return out


def replay(settings, ids: Optional[set[str]]) -> int:
    """Re-publish dead letters (all, or those with the given ids) to the queue they died in,
    then remove them. Replaying twice re-publishes nothing: a replayed letter is gone, and the
    stages are idempotent for a message that is processed twice."""
    replayed = 0
    conn = broker.connect(settings.amqp_url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        broker.declare_topology(ch, settings.delivery_limit)
        for queue in QUEUES:
            # Only the letters there now: a replayed message that dies again at once (a poison
            # body, a fast worker) must not be taken again, or --all would never end.
            waiting = ch.queue_declare(dead_queue(queue), passive=True).method.message_count
            for _ in range(waiting):
                method, props, body = ch.basic_get(dead_queue(queue), auto_ack=False)
                if method is None:
                    break
                letter = _describe(queue, body, dict(props.headers or {}))
                if ids is not None and letter.id not in ids:
                    continue  # left unacked: back in the dead queue when the channel closes
                headers = {k: v for k, v in (props.headers or {}).items() if k not in DOSEFLOW_HEADERS}
                exchange, key = QUEUES[queue]
                ch.basic_publish(exchange, key, body, mandatory=True, properties=pika.BasicProperties(
                    delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json",
                    headers=headers or None))
                ch.basic_ack(method.delivery_tag)
                replayed += 1
    finally:
        conn.close()
    return replayed


def queue_depths(settings) -> tuple[dict[str, int], Optional[dict[str, int]]]:
    """(ready messages per queue, dead letters per queue); ({}, None) when the broker is unreachable."""
    try:
        conn = pika.BlockingConnection(broker.connection_parameters(settings.amqp_url))
    except TRANSIENT_AMQP:
        return {}, None
    try:
        ch = conn.channel()
        broker.declare_topology(ch, settings.delivery_limit)
        depths = {q: ch.queue_declare(q, passive=True).method.message_count for q in QUEUES}
        dead = {q: ch.queue_declare(dead_queue(q), passive=True).method.message_count for q in QUEUES}
        return depths, dead
    finally:
        conn.close()
