"""Logging: plain text for a person at a terminal, or one JSON object per line for a log
collector (DOSEFLOW_LOG_FORMAT=json), each carrying the correlation id of the object in hand.

The correlation id follows one object through the stages: ObjectReceived's message id, copied
into every message a stage publishes for that object (shared/messages.py). While a worker
handles a message, `decode()` makes the message's id the logging context (a context variable;
shared/broker.py runs each handler in its own context, so it never leaks to the next message).

Logs name files and UIDs, never patient names or IDs (messages do not carry them).
"""
from __future__ import annotations

import contextvars
import datetime as _dt
import json
import logging
import sys
import threading
from typing import Optional

_correlation: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("doseflow_correlation_id",
                                                                             default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(correlation)s: %(message)s"


def set_correlation(correlation_id: Optional[str]) -> None:
    """The correlation id of what the current context is handling."""
    _correlation.set(correlation_id)


def correlation_id() -> Optional[str]:
    return _correlation.get()


def _correlation_of(record: logging.LogRecord) -> Optional[str]:
    # `log.info(..., extra={"correlation_id": ...})` names an object outside a handler context.
    return getattr(record, "correlation_id", None) or _correlation.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, service,
    correlation_id (when an object is in hand), exception (when one was logged)."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        cid = _correlation_of(record)
        if cid:
            entry["correlation_id"] = cid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        # ASCII: a file name that is not valid UTF-8 (surrogate escapes) still makes a valid line.
        return json.dumps(entry, ensure_ascii=True)


class TextFormatter(logging.Formatter):
    """The usual text line, with ` [correlation id]` after the logger name when an object is in hand."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        cid = _correlation_of(record)
        record.correlation = f" [{cid}]" if cid else ""
        return super().format(record)


def setup(level: str, fmt: str, service: str) -> None:
    """Route every logger to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pika logs every failed connection attempt with a traceback; doseflow words each broker
    # fault itself (retrying, or a configuration error), so pika speaks only when debugging.
    logging.getLogger("pika").setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.CRITICAL)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # Python warnings (pydicom's about odd values) and a crash's traceback become log records
    # too, so a JSON log stays all JSON.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def _log_uncaught(kind, value, traceback) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("doseflow").critical("uncaught %s", kind.__name__, exc_info=(kind, value, traceback))
