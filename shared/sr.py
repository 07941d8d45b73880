"""Reading a DICOM structured report's content tree, by coded concept.

Concepts are compared by (coding scheme, code value), never by meaning text: vendors
misspell and recase CodeMeaning (GE writes "X-ray", "Scope Of Accumulation"...).
The codes are declared in shared/codes.py; a concept with several spellings (SRT and SCT,
a retired code) is one Code whose `also` holds the others, and matches any of them.

Pure functions over pydicom Datasets; no I/O.
"""
from __future__ import annotations

import math
from typing import Iterable, NamedTuple, Optional

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from shared.codes import Code
from shared.dicom import FAST_TREE, as_text
from shared.outcome import Failed
from shared.sr_tree import CONTENT_SEQUENCE, UNDEFINED, Item, NotSimple, read_sequence

# A content item is a pydicom Dataset (the root, and any tree read through pydicom) or an
# sr_tree.Item (a tree read by the fast walk); both answer `.get(keyword)` alike.
ITEM_TYPES = (Dataset, Item)


# A concept to look for: one Code (with every spelling in its `also`), or several codes.
Concept = "Code | Iterable[Code]"


def _codes(concept) -> tuple[Code, ...]:
    if isinstance(concept, Code):
        return concept.codes if concept.also else (concept,)
    return tuple(c for one in concept for c in (one.codes if isinstance(one, Code) else (one,)))


def value(item: Optional[Dataset], keyword: str):
    """The value of `keyword` in `item`; None when absent or when it cannot be decoded.

    pydicom decodes an element when it is first read, so a malformed one (a value written
    under the wrong VR, bytes of the wrong length for its VR, a sequence cut short) raises
    there, wherever in the tree it sits. One unreadable value must not stop the report: it
    counts as absent, and the reader of that concept says what is missing."""
    if item is None:
        return None
    try:
        return item.get(keyword)
    except Exception:  # noqa: BLE001 - any decoding error of untrusted bytes
        return None


def code_of(seq_item: Optional[Dataset]) -> Optional[Code]:
    """The (scheme, value) of one code sequence item; long/URN code values count as the value."""
    if not isinstance(seq_item, ITEM_TYPES):
        return None
    code = value(seq_item, "CodeValue") or value(seq_item, "LongCodeValue") or value(seq_item, "URNCodeValue")
    if not code:
        return None
    return Code.plain(as_text(value(seq_item, "CodingSchemeDesignator") or ""), as_text(code))


def first_item(item: Optional[Dataset], keyword: str) -> Optional[Dataset]:
    """The first item of a sequence; None when absent, empty, unreadable or not a sequence
    (a sequence written under another VR reads as text or numbers)."""
    seq = value(item, keyword)
    if not isinstance(seq, (Sequence, list)) or not seq or not isinstance(seq[0], ITEM_TYPES):
        return None
    return seq[0]


def concept_name(item: Dataset) -> Optional[Code]:
    return code_of(first_item(item, "ConceptNameCodeSequence"))


def is_concept(item: Dataset, concept) -> bool:
    return concept_name(item) in _codes(concept)


def children(item: Dataset) -> list[Dataset]:
    """The content items under `item`. A ContentSequence that is present but cannot be read
    fails the object: reading on without it would silently drop its events."""
    if isinstance(item, Dataset):
        fast = _fast_children(item)
        if fast is not None:
            return fast
    try:
        seq = item.get("ContentSequence")
    except RecursionError:
        raise Failed(f"SR content tree nested too deeply to read, under {_where(item)}") from None
    except Exception as exc:  # noqa: BLE001 - any decoding error of untrusted bytes
        raise Failed(f"SR content tree cannot be read: ContentSequence (0040,A730) under {_where(item)}: "
                     f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if not seq:
        return []
    if not isinstance(seq, (Sequence, list)):
        raise Failed(f"SR content tree cannot be read: ContentSequence (0040,A730) under {_where(item)} "
                     "is not a sequence")
    return [child for child in seq if isinstance(child, ITEM_TYPES)]


def _fast_children(ds: Dataset) -> Optional[list[Item]]:
    """The items of `ds`'s ContentSequence through the fast walk (shared/sr_tree.py), when `ds`
    was read from a file by shared.dicom and the element still holds its raw bytes; None when it does not (converted already, or bytes the
    walk leaves to pydicom), and pydicom reads it as before. The walk's result is kept on the
    dataset with the raw element it came from, so a replaced element is never answered stale."""
    if not ds.__dict__.get(FAST_TREE):
        return None
    elem = ds._dict.get(CONTENT_SEQUENCE)
    if not isinstance(elem, RawDataElement) or elem.VR not in ("SQ", None) or not elem.is_little_endian \
            or elem.length == UNDEFINED or not isinstance(elem.value, bytes) or len(elem.value) != elem.length:
        return None
    cached = ds.__dict__.get("_doseflow_content")
    if cached is not None and cached[0] is elem:
        return cached[1]
    try:
        items = read_sequence(elem.value, implicit=elem.is_implicit_VR, encoding=ds._character_set)
    except NotSimple:
        return None
    ds.__dict__["_doseflow_content"] = (elem, items)
    return items


def _where(item: Dataset) -> str:
    name = concept_name(item)
    return f"concept {name.scheme} {name.value}" if name else "an item without a concept name"


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
    return None if item is None else code_of(first_item(item, "ConceptCodeSequence"))


def coded_meaning(item: Optional[Dataset]) -> Optional[str]:
    """The CodeMeaning of a CODE item's value, exactly as written (trailing blanks dropped)."""
    if item is None:
        return None
    code = first_item(item, "ConceptCodeSequence")
    if code is None:
        return None
    meaning = value(code, "CodeMeaning")
    return as_text(meaning) or None if meaning is not None else None


def text(item: Optional[Dataset]) -> Optional[str]:
    raw = value(item, "TextValue")
    return None if raw is None else as_text(raw) or None


def uid(item: Optional[Dataset]) -> Optional[str]:
    """A UIDREF item's UID; some GE C-arms send the Device Observer UID as TEXT instead."""
    raw = value(item, "UID") or value(item, "TextValue")
    return as_text(raw) or None if raw else None


def datetime_value(item: Optional[Dataset]) -> Optional[str]:
    from shared.dicom import iso_datetime

    return iso_datetime(value(item, "DateTime"))


class Measured(NamedTuple):
    value: Optional[float]
    unit: Optional[str]  # the UCUM code value, e.g. "mGy", "Gy.m2", "dGy.cm2"
    problem: Optional[str]  # why a present item gave no number


def measured(item: Optional[Dataset]) -> Measured:
    """The number and unit of a NUM item. Absent or unreadable gives value None, never 0."""
    if item is None:
        return Measured(None, None, None)
    mv = first_item(item, "MeasuredValueSequence")
    if mv is None:
        return Measured(None, None, "no measured value")
    unit = code_of(first_item(mv, "MeasurementUnitsCodeSequence"))
    unit_value = unit.value if unit else None
    try:
        raw = mv.get("NumericValue")
    except Exception as exc:  # noqa: BLE001
        # pydicom raises here instead of keeping the text when validation is strict, or when
        # the value's bytes do not fit its VR.
        return Measured(None, unit_value, f"not a number ({str(exc)[:60]})")
    values = _floats(raw)
    if values is None:
        return Measured(None, unit_value, f"not a number: {as_text(raw)[:40]!r}")
    if not values:
        return Measured(None, unit_value, "empty numeric value")
    return Measured(values[0], unit_value, None)


def measured_all(item: Optional[Dataset]) -> list[float]:
    """Every value of a possibly multi-valued NUM (pulse-level data)."""
    if item is None:
        return []
    mv = first_item(item, "MeasuredValueSequence")
    return (_floats(value(mv, "NumericValue")) or []) if mv is not None else []


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
