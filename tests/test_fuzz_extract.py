"""Fuzz (issue 7, "bad input cannot hurt"): over a thousand seeded mutants of the corpus objects
(tests/fuzz.py) through the code of `doseflow extract`: each ends as a valid DoseReport, as
`Ignored` or as `Failed` with a reason. Any other exception is a bug in a route or a helper;
the failure message names the mutant's source, seed and mutation, which rebuild it:
`tests.fuzz.mutate(CORPUS / source, seed, out_dir)`.

`DOSEFLOW_FUZZ_SEED` (default 7) shifts every seed, to explore beyond the pinned set.
"""
from __future__ import annotations

import collections
import json
import logging
import math
import os
import random
import subprocess
import sys
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import pytest

from doseflow.extract import extract_object
from services.classifier.rules import RoutingRules
from services.extractors.common import ExtractOptions
from services.extractors.routes import ROUTE_ALIASES
from shared.outcome import Failed, Ignored
from shared.report import DoseReport
from tests import fuzz
from tests.conftest import CORPUS, REPO

pytestmark = pytest.mark.slow

BASE_SEED = int(os.environ.get("DOSEFLOW_FUZZ_SEED", "7"))
TOTAL = 1050
CLI_SAMPLE = 50
# Share of mutants run with a forced route (`doseflow extract --as ROUTE`), so each route also
# meets objects that are not its own.
FORCED_ROUTE_SHARE = 0.15
# Objects above these sizes take seconds (the 3 MB RF report: ~10 s) to parse and extract.
BIG, MEDIUM = 1_000_000, 50_000


@dataclass
class Result:
    mutant: fuzz.Mutant
    route: Optional[str]  # the forced route (`--as`), None when the classifier decides
    outcome: str  # stored | ignored | failed | crash
    detail: Union[DoseReport, str]  # the report, the reason, or the crash's traceback
    seconds: float

    def command(self) -> list[str]:
        return ["extract", str(self.mutant.path), "--json"] + (["--as", self.route] if self.route else [])


def plan(objects: list[Path], total: int = TOTAL) -> list[tuple[Path, int, Optional[tuple[str, ...]]]]:
    """(object, how many mutants, which mutations): every object gets some; the legacy Toshiba
    images (one route, mostly ignored) a handful; the dose objects the rest, the slower medium
    ones fewer. Objects over BIG (seconds just to parse) get one cut file: their route is
    fuzzed through the smaller objects of the same kind."""
    fixed: dict[Path, tuple[int, Optional[tuple[str, ...]]]] = {}
    for obj in objects:
        size = obj.stat().st_size
        if size > BIG:
            fixed[obj] = (1, ("truncate_file",))
        elif "toshiba" in obj.parts:
            fixed[obj] = (4, None)
        elif size > MEDIUM:
            fixed[obj] = (6, None)
    rest = [o for o in objects if o not in fixed]
    share = max(1, -(-(total - sum(n for n, _ in fixed.values())) // max(1, len(rest))))
    return [(o, *fixed.get(o, (share, None))) for o in objects]


def run_extract(path: str, route: Optional[str]) -> DoseReport:
    """What `doseflow extract PATH [--as ROUTE]` runs, with the default settings."""
    return extract_object(path, route, RoutingRules(), ExtractOptions())


def run_one(mutant: fuzz.Mutant, route: Optional[str]) -> Result:
    start = time.perf_counter()
    try:
        report = run_extract(str(mutant.path), route)
        outcome, detail = "stored", report
    except Ignored as exc:
        outcome, detail = "ignored", exc.reason
    except Failed as exc:
        outcome, detail = "failed", exc.reason
    except BaseException as exc:  # noqa: BLE001 - the very thing this test looks for
        outcome, detail = "crash", "".join(traceback.format_exception(exc)[-6:])
    return Result(mutant, route, outcome, detail, time.perf_counter() - start)


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory) -> list[Result]:
    objects = fuzz.corpus_objects()
    if not objects:
        if os.environ.get("CI"):
            pytest.fail(f"corpus missing in CI: {CORPUS}")
        pytest.skip(f"corpus not present: {CORPUS}")
    out_dir = tmp_path_factory.mktemp("mutants")
    aliases = sorted(ROUTE_ALIASES)
    results = []
    started = time.perf_counter()
    pydicom_log = logging.getLogger("pydicom")
    level = pydicom_log.level
    pydicom_log.setLevel(logging.CRITICAL)  # it logs every malformed value it meets
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for source, count, kinds in plan(objects):
                for i in range(count):
                    mutant = fuzz.mutate(source, BASE_SEED + i, out_dir, kinds=kinds)
                    pick = random.Random(f"route/{mutant.source}/{mutant.seed}")
                    route = pick.choice(aliases) if pick.random() < FORCED_ROUTE_SHARE else None
                    results.append(run_one(mutant, route))
    finally:
        pydicom_log.setLevel(level)
    _print_summary(results, time.perf_counter() - started)
    return results


def _kind(mutation: str) -> str:
    return mutation.split(":", 1)[0]


def _print_summary(results: list[Result], seconds: float) -> None:
    counts = collections.Counter(r.outcome for r in results)
    print(f"\nfuzz extract: {len(results)} mutants of {len({r.mutant.source for r in results})} corpus objects "
          f"in {seconds:.1f} s: " + ", ".join(f"{k} {counts[k]}" for k in ("stored", "ignored", "failed", "crash")))
    by_kind = collections.defaultdict(collections.Counter)
    for r in results:
        by_kind[_kind(r.mutant.mutation)][r.outcome] += 1
    for kind, c in sorted(by_kind.items()):
        print(f"  {kind:20} stored {c['stored']:4}  ignored {c['ignored']:4}  failed {c['failed']:4}  crash {c['crash']}")
    slowest = max(results, key=lambda r: r.seconds)
    print(f"  slowest: {slowest.seconds:.1f} s  {slowest.mutant}")


def _describe(r: Result) -> str:
    forced = f" (--as {r.route})" if r.route else ""
    return f"{r.mutant}{forced}\n{r.detail}"


def report_problems(report: DoseReport) -> list[str]:
    """What makes a report unfit to store: not a round trip through JSON, a NaN or infinite
    number, a count beyond PostgreSQL's integer, text PostgreSQL cannot hold (NUL, unencodable)."""
    problems = []
    data = report.model_dump(mode="json")
    if DoseReport.model_validate_json(report.model_dump_json()) != report:
        problems.append("does not round-trip through JSON")
    try:
        json.dumps(data, allow_nan=False)
    except ValueError:
        problems.append("holds NaN or infinity")

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{where}.{k}" if where else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")
        elif isinstance(node, float) and not math.isfinite(node):
            problems.append(f"{where} = {node}")
        elif isinstance(node, int) and not isinstance(node, bool) and not -2**31 <= node < 2**31:
            problems.append(f"{where} = {node} does not fit the database's integer column")
        elif isinstance(node, str):
            if "\x00" in node:
                problems.append(f"{where} holds a NUL character")
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"{where} is not encodable as UTF-8")

    walk(data, "")
    if not report.study.study_instance_uid or not report.sources or not report.sources[0].sop_instance_uid:
        problems.append("no study or SOP instance UID")
    return problems


def test_over_a_thousand_mutants_from_every_corpus_object_are_run(fuzz_run):
    assert len(fuzz_run) >= 1000
    assert {r.mutant.source for r in fuzz_run} == {
        p.relative_to(CORPUS).as_posix() for p in fuzz.corpus_objects()}
    kinds = {_kind(r.mutant.mutation) for r in fuzz_run}
    assert kinds >= set(fuzz.WEIGHTS), f"mutations never drawn: {set(fuzz.WEIGHTS) - kinds}"
    # The mutants must still exercise the extractors, not just the file reader.
    assert sum(r.outcome == "stored" for r in fuzz_run) >= len(fuzz_run) // 5


def test_every_mutant_ends_as_a_report_or_ignored_or_failed_with_a_reason(fuzz_run):
    crashes = [r for r in fuzz_run if r.outcome == "crash"]
    assert not crashes, (f"{len(crashes)} of {len(fuzz_run)} mutants crashed the extract code:\n\n"
                         + "\n\n".join(_describe(r) for r in crashes[:15]))
    unexplained = [r for r in fuzz_run if r.outcome in ("ignored", "failed")
                   and not (isinstance(r.detail, str) and r.detail.strip())]
    assert not unexplained, "ended without a reason:\n" + "\n".join(str(r.mutant) for r in unexplained)


def test_every_report_of_a_mutant_is_valid_and_its_numbers_finite(fuzz_run):
    bad = [(r, report_problems(r.detail)) for r in fuzz_run if r.outcome == "stored"]
    bad = [(r, p) for r, p in bad if p]
    assert not bad, f"{len(bad)} reports unfit to store:\n" + "\n".join(
        f"{r.mutant}: {'; '.join(p[:5])}" for r, p in bad[:15])


def _cli(result: Result) -> tuple[Result, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEFLOW_")}
    done = subprocess.run([sys.executable, "-m", "doseflow", *result.command()], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    return result, done


def test_the_doseflow_extract_command_ends_each_of_a_sample_the_same_way(fuzz_run):
    # Every outcome and mutation kind represented; the fast objects only (a process per run).
    pool = [r for r in fuzz_run if r.seconds < 1.0]
    rng = random.Random(BASE_SEED)
    sample = rng.sample(pool, min(CLI_SAMPLE, len(pool)))
    problems = []
    with ThreadPoolExecutor(max_workers=3) as executor:
        for result, done in executor.map(_cli, sample):
            where = _describe(result).splitlines()[0]
            if "Traceback" in done.stderr:
                problems.append(f"{where}: traceback\n{done.stderr[-1500:]}")
                continue
            if result.outcome == "failed":
                expected = f"doseflow extract: {result.mutant.path}: {result.detail}"
                if done.returncode != 1 or done.stderr.strip() != expected:
                    problems.append(f"{where}: expected exit 1 and {expected!r}, got {done.returncode} "
                                    f"{done.stderr.strip()[:300]!r}")
                continue
            if done.returncode != 0:
                problems.append(f"{where}: exit {done.returncode}: {done.stderr.strip()[:300]}")
                continue
            printed = json.loads(done.stdout)
            if result.outcome == "ignored":
                if printed != {"outcome": "ignored", "reason": result.detail}:
                    problems.append(f"{where}: expected ignored {result.detail!r}, printed {done.stdout[:300]}")
            elif printed != result.detail.model_dump(mode="json"):
                problems.append(f"{where}: printed report differs from the in-process report")
    outcomes = collections.Counter(r.outcome for r in sample)
    print(f"\ndoseflow extract CLI: {len(sample)} mutants, " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    assert not problems, "\n\n".join(problems)
    assert len(outcomes) >= 3, f"the sample should hold reports, ignored and failed objects: {outcomes}"
