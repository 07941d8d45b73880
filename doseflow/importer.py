"""`doseflow import`: the whole pipeline in one process, no broker.

The services' own stages (shared/broker.py `Stage`: classifier, each route's stage from the
registry, writer, alerts) run on an in-process broker (`InProcessBroker`): the same handlers,
the same messages, the same outcome recording as a broker deployment, so an import stores what
the services store by construction. Each file is handled through to its outcome before the
next; at the end of the input the Toshiba builder builds the legacy studies it collected (end of
input is its quiet period). The counts come from the ledger the stages wrote.
"""
from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import psycopg

from services.alerts.rules import RuleSet
from services.alerts.worker import make_handlers as alerts_stages
from services.classifier.rules import RoutingRules
from services.classifier.worker import make_handler as classifier_stage
from services.extractors.common import ExtractOptions
from services.writer.worker import make_handlers as writer_stages
from shared import broker, routes
from shared.database import Database, DatabaseUnreachable
from shared.ledger import record_outcome, storable_path
from shared.messages import ObjectReceived


def expand_paths(patterns: Iterable[str], unreadable: Optional[list[tuple[str, str]]] = None) -> list[str]:
    """Files, folders (recursive) and glob patterns, as sorted absolute file paths, each once.
    Links to folders are not followed (no loops); a folder that cannot be listed is appended to
    `unreadable` as (path, reason) instead of being skipped silently."""
    from shared.dicom import os_reason

    out: list[str] = []

    def cannot_list(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append((os.path.abspath(exc.filename or "?"), f"folder not readable: {os_reason(exc)}"))

    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        for match in matches:
            if os.path.isdir(match):
                for root, dirs, files in os.walk(match, onerror=cannot_list):
                    # The receiver's spool holds data sets still arriving (services/receiver/scp.py).
                    dirs[:] = sorted(d for d in dirs if d != ".receiving")
                    out.extend(os.path.join(root, f) for f in sorted(files))
            else:
                out.append(match)
    seen: set[str] = set()
    unique = []
    for path in (os.path.abspath(p) for p in out):
        if path not in seen:
            seen.add(path)
            unique.append(path)
    return unique


@dataclass
class Summary:
    stored: int = 0
    ignored: int = 0
    failed: int = 0
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, status, reason)
    alerts: list = field(default_factory=list)  # (alert id, RaisedAlert) newly raised

    def count(self, path: str, status: str, reason: Optional[str] = None) -> None:
        setattr(self, status, getattr(self, status) + 1)
        if status != "stored":
            self.problems.append((path, status, reason or ""))

    def line(self) -> str:
        return f"stored {self.stored}, ignored {self.ignored}, failed {self.failed}"


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream, self.done = total, stream, 0
        self.enabled = total > 0 and hasattr(stream, "isatty") and stream.isatty()

    def step(self) -> None:
        self.done += 1
        if self.enabled:
            width = 30
            filled = width * self.done // self.total
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def stages(db: Database, *, rules: RoutingRules, options: ExtractOptions, toshiba_output: Path,
           roots: Sequence[str] = (), given: Mapping[str, str] = {}, dw_interval_mm: Optional[float] = None,
           alert_rules: Optional[RuleSet] = None, raised=None) -> list[broker.Stage]:
    """Every stage of the pipeline, as the workers build them: the classifier, the stage of
    each route in the registry (shared/routes.py), the writer and, with rules, the alerts."""
    context = broker.StageContext(options, list(roots), db=db, output_dir=toshiba_output, in_process=True,
                                  dw_sample_interval_mm=dw_interval_mm)
    return [classifier_stage(rules, list(roots), given=given),
            *(route.stage_function()(route, context) for route in routes.ROUTES),
            *writer_stages(db),
            *(alerts_stages(db, alert_rules, raised) if alert_rules is not None else [])]


def import_paths(conn: psycopg.Connection, paths: list[str], *, rules: RoutingRules, options: ExtractOptions,
                 toshiba_output: Path, route: Optional[str] = None, progress: Optional[Progress] = None,
                 alert_rules: Optional[RuleSet] = None, roots: Sequence[str] = (),
                 unreadable: Sequence[tuple[str, str]] = (), dw_interval_mm: Optional[float] = None) -> Summary:
    """Import each file through the pipeline's stages; `route` forces one (as `--as`), else the
    classifier decides. With `alert_rules`, each stored study is evaluated by the alerts stage
    (its notifications wait in the outbox for a notifier). The workers' rules apply: paths
    outside `roots` (when any) are refused unopened; folders that could not be listed
    (`unreadable`) are recorded failed."""
    summary = Summary()
    for path, reason in unreadable:
        with conn.transaction():
            record_outcome(conn, path=path, status="failed", stage="import", reason=reason)

    given = {path: route for path in paths} if route is not None else {}
    pipeline = broker.InProcessBroker(stages(Database.over(conn), rules=rules, options=options,
                                             toshiba_output=toshiba_output, roots=roots, given=given,
                                             dw_interval_mm=dw_interval_mm,
                                             alert_rules=alert_rules, raised=summary.alerts.extend))
    try:
        for path in paths:
            pipeline.publish(broker.Publish(broker.INGEST_EXCHANGE, "ingest", ObjectReceived(path=path).encode()))
            pipeline.drain()
            if progress:
                progress.step()
        pipeline.end_of_input()
    except broker.Requeued as exc:
        raise DatabaseUnreachable(str(exc)) from None
    _count(conn, [p for p, _ in unreadable] + list(paths), summary)
    return summary


def _count(conn: psycopg.Connection, paths: list[str], summary: Summary) -> None:
    """Each input's outcome as the ledger holds it, in input order."""
    with conn.transaction():
        rows = dict(((path, (status, reason)) for path, status, reason in conn.execute(
            "SELECT path, status, reason FROM object_ledger WHERE path = ANY(%s)",
            ([storable_path(p) for p in paths],))))
    for path in paths:
        status, reason = rows.get(storable_path(path), ("failed", "no outcome recorded for this object"))
        summary.count(path, status, reason)
