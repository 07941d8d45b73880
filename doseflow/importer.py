"""`doseflow import`: the whole pipeline in one process, no broker.

The same steps as the services — classify (header only), extract, store — called directly, so
an import and a broker deployment store identical studies.
"""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import psycopg

from services.classifier.rules import RoutingRules
from services.toshiba_builder.ocr import OcrUnavailable
from services.toshiba_builder.study import Collected, Finished, collect, finish, write_rdsr
from services.toshiba_builder.worker import dose_page_reader
from services.classifier.worker import classify_file
from shared.dicom import read_header
from services.extractors.common import ExtractOptions
from services.extractors.worker import extract_file
from services.alerts.rules import RuleSet
from services.alerts.store import evaluate_stored
from services.writer.store import store_measurement as _store_measurement, store_report as _store_report, stored_objects
from services.audit.water_equivalent import SAMPLE_INTERVAL_MM
from services.ct_dw.stage import measure_file
from shared.ledger import record_outcome
from shared.outcome import Failed, Ignored
from shared.paths import check_ingest_path
from shared import routes


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


def import_paths(conn: psycopg.Connection, paths: list[str], *, rules: RoutingRules, options: ExtractOptions,
                 toshiba_output: Path, route: Optional[str] = None, progress: Optional[Progress] = None,
                 alert_rules: Optional[RuleSet] = None, roots: Sequence[str] = (),
                 unreadable: Sequence[tuple[str, str]] = (), dw_interval_mm: float = SAMPLE_INTERVAL_MM) -> Summary:
    """Import each file; `route` forces one (as `--as`), else the classifier decides. Legacy
    Toshiba objects are gathered per study and built at the end (no quiet period to wait for).
    With `alert_rules`, each stored study is evaluated as the alerts service would (its
    notifications wait in the outbox for a notifier). The workers' rules apply: paths outside
    `roots` (when any) are refused unopened; folders that could not be listed (`unreadable`)
    are recorded failed."""
    summary = Summary()
    for path, reason in unreadable:
        _record(conn, path, "failed", "import", reason)
        summary.count(path, "failed", reason)

    def store_report(conn, report, path):
        new = _store_report(conn, report, path)
        if alert_rules is not None:
            summary.alerts.extend(evaluate_stored(conn, report.study.study_instance_uid, alert_rules))
        return new

    legacy: dict[str, list[Collected]] = {}
    for path in paths:
        chosen_route = None
        try:
            if route is None:
                chosen, ds = classify_file(path, rules, roots=list(roots))
            else:
                chosen, ds = route, read_header(check_ingest_path(path, list(roots)))
            chosen_route = chosen
            if chosen == routes.CT_DW.name:
                measured = measure_file(path, check_ingest_path(path, list(roots)), interval_mm=dw_interval_mm,
                                        header=ds)
                _store_measurement(conn, measured)
                summary.count(path, "stored")
            elif chosen == routes.TOSHIBA.name:
                obj = collect(ds, path, options)
                if obj.kind == "other":
                    raise Ignored("object of a legacy CT study that is neither a dose summary page nor a CT image")
                legacy.setdefault(obj.study_instance_uid, []).append(obj)
            else:
                report = extract_file(path, chosen, options, ds)
                store_report(conn, report, path)
                summary.count(path, "stored")
        except (Ignored, Failed) as exc:
            status = "ignored" if isinstance(exc, Ignored) else "failed"
            _record(conn, path, status, "import", exc.reason,
                    route or (chosen_route if chosen_route == routes.CT_DW.name else None))
            summary.count(path, status, exc.reason)
        if progress:
            progress.step()
    for objects in legacy.values():
        _build_legacy_study(conn, objects, options, toshiba_output, summary, store_report)
    return summary


def _record(conn, path, status, stage, reason, route=None, **uids) -> None:
    with conn.transaction():
        record_outcome(conn, path=path, status=status, stage=stage, reason=reason, route=route, **uids)


def _build_legacy_study(conn: psycopg.Connection, objects: list[Collected], options: ExtractOptions,
                        out_dir: Path, summary: Summary, store_report=_store_report) -> None:
    """The Toshiba builder's steps, in process: build, write the RDSR, import it like any RDSR."""
    uid = objects[0].study_instance_uid
    rows = stored_objects(conn, uid)
    sources = [(route, sop) for route, sop, _ in rows]
    # RDSRs this builder wrote earlier lie in its output folder; any other RDSR is the scanner's.
    built_before = {sop for _, sop, path in rows if path and Path(path).is_relative_to(out_dir)}
    try:
        done = finish(objects, sources, built_before, dose_page_reader([]))
    except OcrUnavailable as exc:  # a deployment fault: the study can be imported again once fixed
        done = Finished(status="failed", reason=f"dose screen not read: {exc}")
    if done.status == "built":
        rdsr_path = str(write_rdsr(done.rdsr, out_dir))
        try:
            store_report(conn, extract_file(rdsr_path, routes.RDSR.name, options), rdsr_path)
        except (Ignored, Failed) as exc:  # our own RDSR must read back: say so loudly if not
            done = done.model_copy(update={"status": "failed", "reason": f"the built RDSR did not read back: {exc}"})
        else:
            if done.warnings_report is not None:
                page = next(o for o in objects if o.kind == "dose_page")
                store_report(conn, done.warnings_report, page.path)
    elif done.status == "skipped" and done.header_report is not None:
        store_report(conn, done.header_report, objects[0].path)
    status = {"built": "stored", "skipped": "ignored", "no_summary": "ignored", "failed": "failed"}[done.status]
    for obj in objects:
        _record(conn, obj.path, status, "toshiba_builder", done.reason, routes.TOSHIBA.name,
                sop_instance_uid=obj.sop_instance_uid, study_instance_uid=uid)
        summary.count(obj.path, status, done.reason)
