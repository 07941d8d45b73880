"""Shared fixtures: the acceptance corpus (never copied into the repo) and its expected values."""
from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path

import pydicom
import pytest
from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from shared import sr
from shared.codes import DCM

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DOSEFLOW_CORPUS", REPO.parent / "shared" / "corpus"))


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"corpus file missing in CI: {path}")
        pytest.skip(f"corpus not present: {path}")
    return path


# Every CT dose SR of the corpus (RDSRs and GE's CT Enhanced SR).
CT_SR_CASES = [
    "CT-ESR-GE_Optima",
    "CT-RDSR-GEPixelMed",
    "CT-RDSR-Siemens-Continued-1",
    "CT-RDSR-Siemens-Continued-2",
    "CT-RDSR-Siemens-Multi-1",
    "CT-RDSR-Siemens-Multi-2",
    "CT-RDSR-Siemens-Multi-3",
    "CT-RDSR-Siemens_Flash-TAP-SS",
    "CT-RDSR-ToshibaPixelMed",
    "CT-RDSR-Toshiba_DoseCheck",
]


def read(name: str) -> Dataset:
    """A fresh in-memory copy of a corpus file (each test may corrupt its own)."""
    return pydicom.dcmread(corpus_file(name))


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


def assert_matches_expected(report: dict, case: str, skip: tuple[str, ...] = ()) -> None:
    """Every value the corpus expects for `case`, compared as check-corpus does; paths starting
    with one of `skip` are left out (a test that moved the study date skips the date and age)."""
    exp = expected(case)
    tol = exp.get("tolerance_rel", 1e-4)
    problems = []
    for path, want in exp["expect"].items():
        if path.startswith(skip):
            continue
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


def assert_case_matches_expected(case: str, route: str):
    """The corpus file of `case` through `route`, every value the corpus expects checked; the
    report is returned for the caller's own asserts."""
    from services.extractors.routes import extract

    report = extract(read(f"{case}.dcm"), route)
    assert_matches_expected(report.model_dump(mode="json"), case)
    return report


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


@pytest.fixture
def strict_pydicom():
    """pydicom raises on invalid values while the test runs, as a strict reader would."""
    strictness = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    yield
    config.settings.reading_validation_mode = strictness


# --- objects as a scanner would send them ------------------------------------------------------


def round_trip(ds: Dataset) -> Dataset:
    """Through bytes and back, as a corrupted object would arrive from a scanner. Writing a
    deliberately invalid value needs lenient validation even if a test run makes pydicom strict."""
    buffer = io.BytesIO()
    strictness = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.WARN
    try:
        ds.save_as(buffer)
    finally:
        config.settings.reading_validation_mode = strictness
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def with_raw(ds: Dataset, tag: int, vr: str, value: bytes) -> Dataset:
    """The object as a scanner would send it with `value` written into `tag`, read back from
    bytes (lenient writing: the value is malformed on purpose)."""
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    return round_trip(ds)


# --- dose SR content trees ---------------------------------------------------------------------

NUMERIC_VALUE = Tag(0x0040, 0xA30A)
ACCUMULATED = DCM("113702")
EVENT = DCM("113706")
ACQUISITION = DCM("113819")


def rdsr(ds: Dataset):
    # Imported here so that loading this conftest does not load every extractor.
    from services.extractors.routes import extract

    return extract(ds, "rdsr")


@functools.lru_cache(maxsize=None)
def report_of(case: str):
    """The rdsr report of an unmodified corpus file, extracted once per test run (the 316-event
    Philips file takes seconds to decode). Tests must not modify it."""
    return rdsr(read(f"{case}.dcm"))


def events(ds: Dataset) -> list[Dataset]:
    """The projection irradiation events (DCM 113706) of a dose SR."""
    return sr.find_all(ds, EVENT)


def acquisitions(ds: Dataset) -> list[Dataset]:
    """The CT acquisitions (DCM 113819) of a dose SR."""
    return sr.find_all(ds, ACQUISITION)


def item_in(container: Dataset, *path: str) -> Dataset:
    """The content item reached by following DCM code values from `container`."""
    for code_value in path:
        container = sr.find(container, DCM(code_value))
        assert container is not None, f"no {code_value} in the test object"
    return container


def set_raw_numeric_value(num_item: Dataset, raw: bytes) -> None:
    # pydicom refuses to *set* a non-numeric DS; a raw element is what the file parser makes.
    mv = num_item.MeasuredValueSequence[0]
    mv[NUMERIC_VALUE] = RawDataElement(NUMERIC_VALUE, "DS", len(raw), raw, 0, True, True)


def code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c
