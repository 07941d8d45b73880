"""`doseflow import`: the whole pipeline in one process, no broker.

The same steps as the services — classify (header only), extract, store — called directly, so
an import and a broker deployment store identical studies.
"""
from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field
from typing import Iterable, Optional

import psycopg

from services.classifier.rules import RoutingRules
from services.classifier.worker import classify_file, read_header
from services.extractors.common import ExtractOptions
from services.extractors.worker import extract_file
from services.writer.store import record_outcome, store_report
from shared.outcome import Failed, Ignored


def expand_paths(patterns: Iterable[str]) -> list[str]:
    """Files, folders (recursive) and glob patterns, as sorted absolute file paths, each once."""
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        for match in matches:
            if os.path.isdir(match):
                for root, dirs, files in os.walk(match):
                    dirs.sort()
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
                 route: Optional[str] = None, progress: Optional[Progress] = None) -> Summary:
    """Import each file; `route` forces one (as `--as`), else the classifier decides."""
    summary = Summary()
    toshiba: list[str] = []
    for path in paths:
        try:
            if route is None:
                chosen, ds = classify_file(path, rules, roots=[])
            else:
                chosen, ds = route, read_header(path)
            if chosen == "toshiba":
                toshiba.append(path)
                raise Ignored("legacy Toshiba CT object: the Toshiba builder is not built yet")
            report = extract_file(path, chosen, options, ds)
            store_report(conn, report, path)
            summary.stored += 1
        except (Ignored, Failed) as exc:
            status = "ignored" if isinstance(exc, Ignored) else "failed"
            with conn.transaction():
                record_outcome(conn, path=path, status=status, stage="import", reason=exc.reason, route=route)
            setattr(summary, status, getattr(summary, status) + 1)
            summary.problems.append((path, status, exc.reason))
        if progress:
            progress.step()
    return summary
