"""Which objects of a legacy CT study are dose-screen pages, how they group into summaries, and
which screen family (Toshiba, GE) each summary is (spec toshiba.md §2.2, §5). Header only: no
pixels are read here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Optional

from pydicom.dataset import Dataset

from shared.dicom import SECONDARY_CAPTURE, number, text
from shared.outcome import Failed

Family = Literal["toshiba", "ge"]
GE_SCREEN_SERIES = (999.0, 10999.0)


@dataclass
class DoseSummary:
    """The pages of one dose summary, in page order (InstanceNumber), and its screen family."""

    series_instance_uid: Optional[str]
    pages: list[Dataset]
    family: Optional[Family] = None  # None: decided from the text


def _image_type(ds: Dataset) -> list[str]:
    value = ds.get("ImageType")
    if value is None:
        return []
    values = list(value) if not isinstance(value, str) else value.split("\\")
    return [str(v).strip().upper() for v in values]


def is_dose_page(ds: Dataset) -> bool:
    """A dose-screen page: a secondary capture whose ImageType is exactly DERIVED\\SECONDARY
    (Toshiba; other SCs carry a third value such as DISPLAY, MPR, MULTI_FORMAT_RASTER), or a GE
    "Dose Report" screen save (series 999 or 10999)."""
    sop_class = text(ds, "SOPClassUID") or ""
    if not (sop_class == SECONDARY_CAPTURE or sop_class.startswith(SECONDARY_CAPTURE + ".")):
        return False
    image_type = _image_type(ds)
    if image_type == ["DERIVED", "SECONDARY"]:
        return True
    return is_ge_screen(ds)


def is_ge_screen(ds: Dataset) -> bool:
    """A GE "Dose Report" screen save: GE make, series 999 or 10999, ImageType
    DERIVED\\SECONDARY\\SCREEN SAVE (spec §5)."""
    manufacturer = (text(ds, "Manufacturer") or "").upper()
    series = number(ds.get("SeriesNumber"))
    return (_image_type(ds) == ["DERIVED", "SECONDARY", "SCREEN SAVE"] and "GE" in manufacturer.split()
            and series in GE_SCREEN_SERIES)


def find_dose_summaries(datasets: Iterable[Dataset]) -> list[DoseSummary]:
    """The study's dose summaries: dose pages grouped by series, each in InstanceNumber order.

    Toshiba stores two pages per summary in one series; a study scanned in several sessions has
    several summaries. The same object twice counts once; a second page with an InstanceNumber
    already taken in its series is left out (the first one read stays). No dose page at all is
    a Failed: there is nothing to build from."""
    datasets = list(datasets)
    by_series: dict[Optional[str], list[Dataset]] = {}
    seen: set[str] = set()
    for ds in datasets:
        if not is_dose_page(ds):
            continue
        sop = text(ds, "SOPInstanceUID") or f"#{id(ds)}"
        if sop in seen:
            continue
        seen.add(sop)
        by_series.setdefault(text(ds, "SeriesInstanceUID"), []).append(ds)
    if not by_series:
        raise Failed(f"no dose summary among {len(datasets)} objects: no secondary capture with "
                     "ImageType exactly DERIVED\\SECONDARY (nor a GE dose report screen)")
    summaries = []
    for series, pages in by_series.items():
        ordered: list[Dataset] = []
        taken: set[float] = set()
        for ds in sorted(pages, key=_page_order):
            instance = number(ds.get("InstanceNumber"))
            if instance is not None and instance in taken:
                continue
            if instance is not None:
                taken.add(instance)
            ordered.append(ds)
        summaries.append(DoseSummary(series, ordered, "ge" if is_ge_screen(ordered[0]) else None))
    summaries.sort(key=lambda s: (_page_time(s.pages[0]), s.series_instance_uid or ""))
    return summaries


def _page_order(ds: Dataset) -> tuple:
    instance = number(ds.get("InstanceNumber"))
    return (instance is None, instance or 0.0)


def _page_time(ds: Dataset) -> str:
    return (text(ds, "ContentDate") or "") + (text(ds, "ContentTime") or text(ds, "SeriesTime") or "")


