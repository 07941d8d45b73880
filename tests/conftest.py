"""Shared fixtures: the acceptance corpus (never copied into the repo) and its expected values."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DOSEFLOW_CORPUS", REPO.parent / "shared" / "corpus"))


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"corpus file missing in CI: {path}")
        pytest.skip(f"corpus not present: {path}")
    return path


def expected(case: str) -> dict:
    return json.loads((CORPUS / "expected" / f"{case}.json").read_text())


def lookup(report: dict, path: str):
    """Resolve an expected-file path ('ct.events[2].sources[0].kvp', 'X.length') in a report."""
    import re

    node = report
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part == "length" and i == len(parts) - 1:
            return len(node or [])
        m = re.fullmatch(r"([^\[]*)((?:\[\d+\])*)", part)
        if m.group(1):
            node = None if node is None else node.get(m.group(1))
        for idx in re.findall(r"\[(\d+)\]", m.group(2)):
            node = None if node is None or int(idx) >= len(node) else node[int(idx)]
    return node


def assert_matches_expected(report: dict, case: str) -> None:
    """Every value the corpus expects for `case`, compared as check-corpus does."""
    exp = expected(case)
    tol = exp.get("tolerance_rel", 1e-4)
    problems = []
    for path, want in exp["expect"].items():
        got = lookup(report, path)
        over = exp.get("tolerances", {}).get(path, {})
        if want is None:
            ok = got is None
        elif isinstance(want, (int, float)) and not isinstance(want, bool):
            ok = isinstance(got, (int, float)) and abs(got - want) <= (
                over.get("abs", over.get("rel", tol) * abs(want)) + 1e-12)
        elif isinstance(want, str) and isinstance(got, str):
            ok = _norm(got) == _norm(want)
        else:
            ok = got == want
        if not ok:
            problems.append(f"{path}: expected {want!r}, got {got!r}")
    assert not problems, f"{case}: {len(problems)} mismatches:\n" + "\n".join(problems)


def _norm(s: str) -> str:
    import datetime as dt

    s = s.strip()
    for parse in (dt.datetime.fromisoformat, dt.date.fromisoformat, dt.time.fromisoformat):
        try:
            v = parse(s)
            return v.replace(tzinfo=None).isoformat() if hasattr(v, "tzinfo") else v.isoformat()
        except ValueError:
            continue
    return s


@pytest.fixture
def corpus():
    return corpus_file
