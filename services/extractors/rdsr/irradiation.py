"""Reading an X-ray irradiation event (TID 10003 with its source, mechanical, detector and
distance rows) and the accumulated containers around it: the part that projection X-ray and
mammography reports share.

`Reader` wraps one content item (an event container, an accumulated container, the root) and
answers "the value of concept X in unit Y" with units converted and every unreadable value
turned into None plus a note in `Problems`. The section readers (`projection.py`,
`mammography.py`) decide which fields they want and how several values combine.
"""
from __future__ import annotations

from statistics import fmean
from typing import Optional, Union

from pydicom.dataset import Dataset

from services.extractors.common import count_out_of_range
from shared.units import COUNT, MA, MM, Unit, convert
from shared import sr
from shared.report import Filter
from shared.outcome import Ignored
from shared.codes import (
    ACCUMULATED_DOSE,
    ACQUISITION_PLANE,
    ALL_PLANES,
    ANATOMICAL_STRUCTURE,
    AVERAGE_TUBE_CURRENT,
    FILTER_MATERIAL,
    FILTER_THICKNESS_MAX,
    FILTER_THICKNESS_MIN,
    FILTER_TYPE,
    IRRADIATION_EVENT,
    LATERALITY,
    PLANE_A,
    PLANE_B,
    SINGLE_PLANE,
    TARGET_REGION,
    TUBE_CURRENT,
    XRAY_FILTERS,
    Code,
)


# Acquisition Plane values (CID 10003) and doseflow's names for them.
PLANES = {
    PLANE_A: "A",
    PLANE_B: "B",
    SINGLE_PLANE: "single",
    ALL_PLANES: "all",
}


# --- problems -------------------------------------------------------------------------------

Where = Union[int, str]  # an event's position in the document (1-based), or a container's name


class Problems:
    """Unreadable values met while one report section is read.

    The same defect usually repeats in every event of a report (GE's empty positioner angles,
    say), so notes are grouped by concept and reason into one warning that lists where."""

    def __init__(self, section: str):
        self.section = section
        self._where: dict[tuple[str, str], list[Where]] = {}

    def add(self, where: Optional[Where], what: str, why: str) -> None:
        places = self._where.setdefault((what, why), [])
        if where is not None and where not in places:
            places.append(where)

    def flush(self, warnings: list[str]) -> None:
        for (what, why), places in self._where.items():
            where = _places(places)
            warnings.append(f"{self.section}{' ' + where if where else ''}: {what} {why}; stored as empty")
        self._where.clear()


def _places(places: list[Where]) -> str:
    events = sorted(p for p in places if isinstance(p, int))
    others = [p for p in places if not isinstance(p, int)]
    parts = list(others)
    if events:
        runs, start, prev = [], events[0], events[0]
        for n in events[1:] + [None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            if n is not None:
                start = prev = n
        parts.append(("event " if len(events) == 1 else "events ") + ", ".join(runs))
    return ", ".join(parts)


# --- reading one content item ---------------------------------------------------------------


class Reader:
    """The children of one content item, read by concept, with problems noted against `where`."""

    def __init__(self, item: Dataset, problems: Problems, where: Optional[Where] = None):
        self.item = item
        self.problems = problems
        self.where = where
        self._index: Optional[list[tuple[Optional[Code], Dataset]]] = None

    def _named_children(self) -> list[tuple[Optional[Code], Dataset]]:
        # Each child's concept name is decoded once: pydicom attribute access is slow, and an
        # event is asked for some forty concepts (a 300-event report took seconds otherwise).
        if self._index is None:
            self._index = [(sr.concept_name(child), child) for child in sr.children(self.item)]
        return self._index

    def _find_all(self, c: Code) -> list[Dataset]:
        codes = c.codes
        return [child for name, child in self._named_children() if name in codes]

    def note(self, what: Union[Code, str], why: str) -> None:
        self.problems.add(self.where, str(what), why)

    def find(self, c: Code) -> Optional[Dataset]:
        codes = c.codes
        return next((child for name, child in self._named_children() if name in codes), None)

    def has(self, c: Code) -> bool:
        return self.find(c) is not None

    def child(self, c: Code) -> Optional["Reader"]:
        item = self.find(c)
        return None if item is None else Reader(item, self.problems, self.where)

    def children(self, c: Code) -> list["Reader"]:
        return [Reader(item, self.problems, self.where) for item in self._find_all(c)]

    # numbers

    def values(self, c: Code, unit: Unit) -> list[float]:
        """Every value of every item of concept `c` (repeated items and multi-valued numbers
        are per-pulse data), converted to `unit`. An unreadable item adds nothing."""
        out: list[float] = []
        for item in self._items(c):
            out.extend(self._item_values(item, c, unit))
        return out

    def _items(self, c: Code) -> list[Dataset]:
        """The items of `c` spelt with the code of the first one found: an object sending both
        the current and the retired code of a concept (113824 and 113735) is not added up."""
        codes = c.codes
        named = [(name, child) for name, child in self._named_children() if name in codes]
        return [child for name, child in named if name == named[0][0]] if named else []

    def number(self, c: Code, unit: Unit) -> Optional[float]:
        """The first value of the first item of concept `c`, converted to `unit`."""
        item = self.find(c)
        if item is None:
            return None
        values = self._item_values(item, c, unit)
        return values[0] if values else None

    def own_number(self, c: Code, unit: Unit) -> Optional[float]:
        """The first value of this reader's own item, a NUM of concept `c`."""
        values = self._item_values(self.item, c, unit)
        return values[0] if values else None

    def mean(self, c: Code, unit: Unit) -> Optional[float]:
        values = self.values(c, unit)
        return fmean(values) if values else None

    def total(self, c: Code, unit: Unit) -> Optional[float]:
        values = self.values(c, unit)
        return sum(values) if values else None

    def whole_number(self, c: Code) -> Optional[int]:
        value = self.number(c, COUNT)
        if value is None:
            return None
        if abs(value - round(value)) > 1e-6:
            self.note(c, f"is not a whole number ({value})")
            return None
        why = count_out_of_range(value)
        if why:
            self.note(c, why)
            return None
        return int(round(value))

    def _item_values(self, item: Dataset, c: Code, unit: Unit) -> list[float]:
        measured = sr.measured(item)
        if measured.problem:
            self.note(c, _why(measured.problem))
            return []
        out = []
        for value in sr.measured_all(item):
            converted, why = convert(value, measured.unit, unit)
            if why:
                self.note(c, why)
                return []
            out.append(converted)
        return out

    # codes, text, UIDs, date-times

    def code(self, c: Code) -> Optional[Code]:
        return sr.coded_value(self.find(c))

    def meaning(self, c: Code) -> Optional[str]:
        """The CodeMeaning of a CODE item, as written."""
        item = self.find(c)
        if item is None:
            return None
        meaning = sr.coded_meaning(item)
        if meaning is None:
            why = "has an empty meaning" if sr.value(item, "ConceptCodeSequence") else "has no coded value"
            self.note(c, why)
        return meaning

    def text(self, c: Code) -> Optional[str]:
        return sr.text(self.find(c))

    def meaning_or_text(self, c: Code) -> Optional[str]:
        """A concept some vendors send as CODE and others as TEXT."""
        item = self.find(c)
        if item is None:
            return None
        return sr.coded_meaning(item) or sr.text(item)

    def uid(self, c: Code) -> Optional[str]:
        return sr.uid(self.find(c))

    def datetime(self, c: Code) -> Optional[str]:
        item = self.find(c)
        if item is None:
            return None
        value = sr.datetime_value(item)
        if value is None:
            self.note(c, f"is not a valid date-time ({str(item.get('DateTime', ''))[:30]!r})")
        return value


def _why(problem: str) -> str:
    if problem == "no measured value":
        return "has no measured value (empty MeasuredValueSequence)"
    return f"is unreadable ({problem})"


# --- parts shared by projection and mammography events --------------------------------------


def accumulated_and_events(ds: Dataset, problems: Problems, warnings: list[str], *, report: str,
                           without_totals: str) -> tuple[Reader, list[Reader], list[Dataset]]:
    """The root of a TID 10001 report, its Accumulated X-Ray Dose Data containers and its
    irradiation event items, in document order. A report with neither is Ignored; one without
    containers is read with a warning that it has no `without_totals`."""
    root = Reader(ds, problems)
    containers = root.children(ACCUMULATED_DOSE)
    event_items = sr.find_all(ds, IRRADIATION_EVENT.codes)
    if not containers and not event_items:
        raise Ignored(f"{report} with no Accumulated X-Ray Dose Data and no Irradiation Event X-Ray Data")
    if not containers:
        warnings.append(f"{problems.section}: no {ACCUMULATED_DOSE} container; the report has no {without_totals}")
    return root, containers, event_items


def plane_of(reader: Reader) -> Optional[str]:
    """'A', 'B', 'single' or 'all' from the Acquisition Plane item; None (noted) otherwise."""
    item = reader.find(ACQUISITION_PLANE)
    if item is None:
        return None
    code = sr.coded_value(item)
    plane = PLANES.get(code) if code else None
    if plane is None:
        sent = tuple(code) if code else None
        reader.note(ACQUISITION_PLANE, f"has a value doseflow does not know ({sent})")
    return plane


def filters(event: Reader) -> list[Filter]:
    """One Filter per X-Ray Filters container, in document order."""
    return [
        Filter(
            type=f.meaning(FILTER_TYPE),
            material=f.meaning(FILTER_MATERIAL),
            thickness_min_mm=f.number(FILTER_THICKNESS_MIN, MM),
            thickness_max_mm=f.number(FILTER_THICKNESS_MAX, MM),
        )
        for f in event.children(XRAY_FILTERS)
    ]


def anatomy(event: Reader) -> Optional[str]:
    """The Target Region (TID 10003 since CP 1676) or, from older systems, the Anatomical
    Structure, as written."""
    if event.has(TARGET_REGION):
        return event.meaning(TARGET_REGION)
    return event.meaning(ANATOMICAL_STRUCTURE)


def laterality_item(event: Reader) -> Optional[Dataset]:
    """The Laterality child of the Target Region or of the Anatomical Structure (systems use
    either), the first one present."""
    for region_concept in (TARGET_REGION, ANATOMICAL_STRUCTURE):
        region = event.find(region_concept)
        laterality = sr.find(region, LATERALITY.codes) if region is not None else None
        if laterality is not None:
            return laterality
    return None


def tube_current_mA(event: Reader, *, several: str) -> Optional[float]:
    """The Average X-Ray Tube Current when sent; else the X-Ray Tube Current values combined
    by `several`: "mean" (projection, DESIGN §3) or "first" (mammography)."""
    average = event.number(AVERAGE_TUBE_CURRENT, MA)
    if average is not None:
        return average
    return event.mean(TUBE_CURRENT, MA) if several == "mean" else event.number(TUBE_CURRENT, MA)
