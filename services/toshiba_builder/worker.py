"""The Toshiba builder service (placeholder until the builder lands): consumes
`toshiba.collect` so legacy Toshiba objects do not pile up, and records each as ignored with
the reason, so the ledger stays complete."""
from __future__ import annotations

from services.classifier.worker import outcome
from shared import broker
from shared.broker import Result
from shared.messages import ExtractRequest, UndecodableMessage, decode


def handle(body: bytes, headers: dict) -> Result:
    try:
        msg = decode(ExtractRequest, body)
    except UndecodableMessage as exc:
        return Result(dead_letter_reason=str(exc))
    return Result([outcome(msg.path, "ignored", "legacy Toshiba CT object: the Toshiba builder is not built yet",
                           stage="toshiba_builder", sop_instance_uid=msg.sop_instance_uid,
                           study_instance_uid=msg.study_instance_uid)])


def run(settings, stop=None) -> None:
    broker.consume(settings.amqp_url, {"toshiba.collect": handle}, prefetch=settings.prefetch,
                   delivery_limit=settings.delivery_limit, stop=stop)
