"""Protocol mapping: local study and acquisition names -> examination category (the key of a DRL
row), from a site-editable CSV (shipped default: data/protocol-map.csv; DOSEFLOW_PROTOCOL_MAP).

Rules are tried in file order and the first match decides, so a site puts specific rules first.
Categories are computed from the stored report whenever needed, never stored alone, so editing
the file changes the category of studies already stored (`doseflow audit --remap` rewrites the
stored copy; the audit report always uses the file as it is now).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from services.audit.references import DATA, ReferenceError, _csv_rows

DEFAULT_MAP = DATA / "protocol-map.csv"
STUDY_FIELDS = ("requested_procedure", "study_description", "procedure")
EVENT_FIELDS = ("acquisition_protocol", "target_region")
FIELDS = ("study",) + STUDY_FIELDS + EVENT_FIELDS
MAX_PATTERN = 500  # a site's pattern is code we run on every study: keep it small


@dataclass(frozen=True)
class Rule:
    number: int  # position among the rules (comments and header not counted)
    field: str
    match: str  # "exact" | "regex"
    pattern: str
    category: str
    regex: Optional[re.Pattern]

    def matches(self, text: Optional[str]) -> bool:
        if not text or not text.strip():
            return False
        if self.match == "exact":
            return text.strip().casefold() == self.pattern.strip().casefold()
        return self.regex.search(text) is not None

    def fields(self) -> tuple[str, ...]:
        return STUDY_FIELDS if self.field == "study" else (self.field,)


@dataclass(frozen=True)
class ProtocolMap:
    source: str
    rules: tuple[Rule, ...]

    def categorize(self, report: dict) -> tuple[Optional[str], Optional[str]]:
        """(category, what matched: 'field "text" (rule N)') for a DoseReport dict; (None,
        None) when no rule matches."""
        texts = local_names(report)
        for rule in self.rules:
            for field in rule.fields():
                for text in texts.get(field, ()):
                    if rule.matches(text):
                        return rule.category, f'{field} "{text}" (rule {rule.number})'
        return None, None

    def category_of_name(self, field: str, text: str) -> Optional[str]:
        """The category a name would give on its own (for `doseflow protocols`)."""
        for rule in self.rules:
            if field in rule.fields() and rule.matches(text):
                return rule.category
        return None


def local_names(report: dict) -> dict[str, list[str]]:
    """Field -> the study's distinct non-empty names for it (events in document order)."""
    study = report.get("study") or {}
    out: dict[str, list[str]] = {f: [study[f]] for f in STUDY_FIELDS if (study.get(f) or "").strip()}
    events = (report.get("ct") or {}).get("events") or []
    for f in EVENT_FIELDS:
        names = list(dict.fromkeys(e[f] for e in events if (e.get(f) or "").strip()))
        if names:
            out[f] = names
    return out


def parse_map(rows: Iterable[dict], source: str) -> ProtocolMap:
    rules = []
    for n, row in enumerate(rows, start=1):
        where = f"{source}: rule {n}"
        field, match = (row.get("field") or "").strip(), (row.get("match") or "").strip()
        pattern, category = row.get("pattern") or "", (row.get("category") or "").strip()
        if field not in FIELDS:
            raise ReferenceError(f"{where}: field must be one of {', '.join(FIELDS)}, not {field!r}")
        if match not in ("exact", "regex"):
            raise ReferenceError(f"{where}: match must be exact or regex, not {match!r}")
        if not pattern.strip() or not category:
            raise ReferenceError(f"{where}: needs a pattern and a category")
        if len(pattern) > MAX_PATTERN:
            raise ReferenceError(f"{where}: pattern longer than {MAX_PATTERN} characters")
        regex = None
        if match == "regex":
            try:
                regex = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise ReferenceError(f"{where}: not a regular expression ({exc})") from None
        rules.append(Rule(n, field, match, pattern, category, regex))
    return ProtocolMap(source, tuple(rules))


def load_map(path: Optional[Path] = None) -> ProtocolMap:
    path = Path(path) if path else DEFAULT_MAP
    rows = _csv_rows(path)
    if rows and not {"field", "match", "pattern", "category"} <= set(rows[0]):
        raise ReferenceError(f"{path}: the header must be field,match,pattern,category")
    return parse_map(rows, str(path))


@dataclass(frozen=True)
class LocalName:
    field: str
    name: str
    category: Optional[str]
    studies: int


def protocol_listing(reports: Iterable[dict], pmap: ProtocolMap) -> list[LocalName]:
    """Every distinct local name of the studies with the category it maps to and the number of
    studies that carry it: unmapped names first, then by count (most first), field and name."""
    counts: Counter[tuple[str, str]] = Counter()
    for report in reports:
        for field, names in local_names(report).items():
            for name in names:
                counts[(field, name)] += 1
    out = [LocalName(f, n, pmap.category_of_name(f, n), c) for (f, n), c in counts.items()]
    out.sort(key=lambda x: (x.category is not None, -x.studies, x.field, x.name))
    return out
