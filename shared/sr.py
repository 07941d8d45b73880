"""Reading a DICOM structured report's content tree, by coded concept.

Concepts are compared by (coding scheme, code value), never by meaning text: vendors
misspell and recase CodeMeaning (GE writes "X-ray", "Scope Of Accumulation"...).
A concept that has an SRT and an SCT spelling is a set of codes.

Pure functions over pydicom Datasets; no I/O.
"""
from __future__ import annotations

import math
from typing import Iterable, NamedTuple, Optional

from pydicom.dataset import Dataset


class Code(NamedTuple):
    scheme: str
    value: str


def DCM(value: str) -> Code:
    return Code("DCM", value)


def SRT(value: str) -> Code:
    return Code("SRT", value)


def SCT(value: str) -> Code:
    return Code("SCT", value)


Concept = "Code | frozenset[Code] | tuple[Code, ...]"


def _codes(concept) -> tuple[Code, ...]:
    return (concept,) if isinstance(concept, Code) else tuple(concept)


def code_of(seq_item: Optional[Dataset]) -> Optional[Code]:
    """The (scheme, value) of one code sequence item; long/URN code values count as the value."""
    if seq_item is None:
        return None
    value = seq_item.get("CodeValue") or seq_item.get("LongCodeValue") or seq_item.get("URNCodeValue")
    if not value:
        return None
    return Code(str(seq_item.get("CodingSchemeDesignator", "") or "").strip(), str(value).strip())


def _first(item: Dataset, keyword: str) -> Optional[Dataset]:
    seq = item.get(keyword)
    return seq[0] if seq else None


def concept_name(item: Dataset) -> Optional[Code]:
    return code_of(_first(item, "ConceptNameCodeSequence"))


def is_concept(item: Dataset, concept) -> bool:
    return concept_name(item) in _codes(concept)


def children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence") or [])


def find(item: Dataset, concept) -> Optional[Dataset]:
    """First child of `item` with the concept name `concept`, or None."""
    codes = _codes(concept)
    for child in children(item):
        if concept_name(child) in codes:
            return child
    return None


def find_all(item: Dataset, concept) -> list[Dataset]:
    codes = _codes(concept)
    return [child for child in children(item) if concept_name(child) in codes]


# --- values of one content item -------------------------------------------------------------


def coded_value(item: Optional[Dataset]) -> Optional[Code]:
    return None if item is None else code_of(_first(item, "ConceptCodeSequence"))


def coded_meaning(item: Optional[Dataset]) -> Optional[str]:
    """The CodeMeaning of a CODE item's value, exactly as written (trailing blanks dropped)."""
    if item is None:
        return None
    code = _first(item, "ConceptCodeSequence")
    if code is None:
        return None
    meaning = code.get("CodeMeaning")
    return str(meaning).strip() or None if meaning is not None else None


def text(item: Optional[Dataset]) -> Optional[str]:
    if item is None:
        return None
    value = item.get("TextValue")
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def uid(item: Optional[Dataset]) -> Optional[str]:
    """A UIDREF item's UID; some GE C-arms send the Device Observer UID as TEXT instead."""
    if item is None:
        return None
    value = item.get("UID") or item.get("TextValue")
    return str(value).strip() or None if value else None


def datetime_value(item: Optional[Dataset]) -> Optional[str]:
    from shared.dicom import iso_datetime

    return None if item is None else iso_datetime(item.get("DateTime"))


class Measured(NamedTuple):
    value: Optional[float]
    unit: Optional[str]  # the UCUM code value, e.g. "mGy", "Gy.m2", "dGy.cm2"
    problem: Optional[str]  # why a present item gave no number


def measured(item: Optional[Dataset]) -> Measured:
    """The number and unit of a NUM item. Absent or unreadable gives value None, never 0."""
    if item is None:
        return Measured(None, None, None)
    mv = _first(item, "MeasuredValueSequence")
    if mv is None:
        return Measured(None, None, "no measured value")
    unit = code_of(_first(mv, "MeasurementUnitsCodeSequence"))
    unit_value = unit.value if unit else None
    try:
        raw = mv.get("NumericValue")
    except (ValueError, TypeError, OverflowError) as exc:
        # pydicom raises here instead of keeping the text when validation is strict.
        return Measured(None, unit_value, f"not a number ({str(exc)[:60]})")
    values = _floats(raw)
    if values is None:
        return Measured(None, unit_value, f"not a number: {str(mv['NumericValue'].value)[:40]!r}"
                        if "NumericValue" in mv else "no numeric value")
    if not values:
        return Measured(None, unit_value, "empty numeric value")
    return Measured(values[0], unit_value, None)


def measured_all(item: Optional[Dataset]) -> list[float]:
    """Every value of a possibly multi-valued NUM (pulse-level data)."""
    if item is None:
        return []
    mv = _first(item, "MeasuredValueSequence")
    return (_floats(mv.get("NumericValue")) or []) if mv is not None else []


def _floats(raw) -> Optional[list[float]]:
    """Numbers of a DS value; None when the value is present but not numeric (or not finite)."""
    if raw is None:
        return []
    items: Iterable = raw if isinstance(raw, (list, tuple)) or type(raw).__name__ == "MultiValue" else [raw]
    out: list[float] = []
    for v in items:
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(f):
            return None
        out.append(f)
    return out
