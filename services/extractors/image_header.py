"""Dose values read from image headers: the MG and CR/DX/PX image routes and the Philips CT
"Dose Info" secondary capture.

These objects carry their dose data as plain attributes, not as an SR tree, read through
`shared.header.HeaderReader` (standard and private attributes, every value that is present but
unreadable None plus a warning naming the attribute). This module holds what the image routes
share beyond that: the report header, event times, tube current, exposure, filters.

Pure: a pydicom Dataset in, plain values out.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Optional

from pydicom.dataset import Dataset

from services.extractors.common import (
    ExtractOptions,
    equipment_from_header,
    first_code_meaning,
    patient_from_header,
    source_of,
    study_from_header,
)
from shared import sr
from shared import codes
from shared.dicom import iso_date, iso_datetime, iso_time, text
from shared.header import HeaderReader
from shared.outcome import Failed
from shared.report import DoseReport, Filter, Patient

# Coded meanings written for image-attribute terms: image headers carry defined terms, not
# codes, so the meaning is ours to supply, that of the code the term stands for (shared/codes.py).
FILTER_MATERIALS = {
    "MOLYBDENUM": codes.MOLYBDENUM.meaning,
    "RHODIUM": codes.RHODIUM.meaning,
    "SILVER": codes.SILVER.meaning,
    "ALUMINUM": codes.ALUMINUM.meaning,
    "ALUMINIUM": codes.ALUMINUM.meaning,  # Philips DiDi spelling
    "COPPER": codes.COPPER.meaning,
    "NIOBIUM": codes.NIOBIUM.meaning,
    "EUROPIUM": codes.EUROPIUM.meaning,
    "LEAD": codes.LEAD.meaning,
    "TANTALUM": codes.TANTALUM.meaning,
}
ANODE_TARGETS = {
    "MOLYBDENUM": codes.MOLYBDENUM.meaning,
    "RHODIUM": codes.RHODIUM.meaning,
    "TUNGSTEN": codes.TUNGSTEN.meaning,
}
NO_FILTER = codes.NO_FILTER.meaning
FLAT_FILTER = codes.FLAT_FILTER.meaning
FILTER_TYPES = {
    "STRIP": codes.STRIP_FILTER.meaning,
    "WEDGE": codes.WEDGE_FILTER.meaning,
    "BUTTERFLY": codes.BUTTERFLY_FILTER.meaning,
    "FLAT": FLAT_FILTER,
}
# Siemens Multix writes its copper pre-filter as a type, e.g. CU_0.1_MM.
_SIEMENS_COPPER_TYPE = re.compile(r"^CU_(\d+(?:\.\d+)?)_MM$")


# --- header sections -----------------------------------------------------------------------


def report_header(ds: Dataset, route: str, options: ExtractOptions) -> DoseReport:
    """Study, patient, equipment and source of an image-route object. Study date and time come
    from StudyDate/StudyTime only (a missing or odd StudyTime gives None, never a failure)."""
    study = study_from_header(ds, date_fallback=False)
    if not study.study_instance_uid:
        raise Failed("no StudyInstanceUID (0020,000D)")
    if not text(ds, "SOPInstanceUID"):
        raise Failed("no SOPInstanceUID (0008,0018): the object cannot be identified")
    report = DoseReport(study=study, equipment=equipment_from_header(ds),
                        sources=[source_of(ds, route)])
    reader = HeaderReader(ds, report.warnings)
    for keyword, parse, kind in (("StudyDate", iso_date, "date"), ("StudyTime", iso_time, "time")):
        raw = reader.raw(keyword)
        if raw is not None and parse(raw) is None:
            reader.warn(f"{reader.label(keyword)}: {raw!r} is not a valid {kind}; left empty")
    report.patient = patient(ds, study.study_date, options, reader)
    return report


_PATIENT_KEYWORDS = ("SpecificCharacterSet", "PatientBirthDate", "PatientAge", "PatientSex",
                     "PatientName", "PatientID")


def patient(ds: Dataset, study_date: Optional[str], options: ExtractOptions,
            reader: HeaderReader) -> Patient:
    """The patient module, with size and weight read leniently: some DX units write text such
    as 'MEDIUM' in PatientSize, which gives None and a warning."""
    size, weight = reader.number("PatientSize"), reader.number("PatientWeight")
    try:
        result = patient_from_header(ds, study_date, options)
    except Exception:
        # Strict pydicom validation refuses the malformed size or weight outright: read the
        # rest of the module from a copy that leaves them out.
        rest = Dataset()
        for keyword in _PATIENT_KEYWORDS:
            element = ds.get_item(keyword)  # as read, not converted: no validation here
            if element is not None:
                rest[element.tag] = element
        result = patient_from_header(rest, study_date, options)
    result.size_m, result.weight_kg = size, weight
    return result


def item_meaning(ds: Dataset, sequence: str, inner: str) -> Optional[str]:
    """The CodeMeaning of `inner`[0] within `sequence`[0] (e.g. a request's procedure code)."""
    return first_code_meaning(sr.first_item(ds, sequence), inner)


# --- event values shared by MG and DX ------------------------------------------------------


def acquisition_datetime(ds: Dataset, *, study_fallback: bool,
                         warnings: list[str]) -> Optional[str]:
    """An image's exposure start as an ISO date-time (fraction kept).

    Date and time are looked up independently: AcquisitionDate/Time, then the parts of
    AcquisitionDateTime, then ContentDate/Time, and with `study_fallback` (DX, as the reference
    does) StudyDate/Time. Falling back to the study's time is said in a warning, because two
    images given the same study time would look like one exposure sent twice."""
    reader = HeaderReader(ds, [])
    acq_raw = reader.raw("AcquisitionDateTime")
    acq_dt = iso_datetime(acq_raw)
    acq_has_time = acq_dt is not None and len(acq_raw.split("+")[0].split("-")[0]) > 8
    dates = [("AcquisitionDate", iso_date(reader.raw("AcquisitionDate"))),
             ("AcquisitionDateTime", acq_dt[:10] if acq_dt else None),
             ("ContentDate", iso_date(reader.raw("ContentDate")))]
    times = [("AcquisitionTime", iso_time(reader.raw("AcquisitionTime"), keep_fraction=True)),
             ("AcquisitionDateTime", acq_dt[11:] if acq_has_time else None),
             ("ContentTime", iso_time(reader.raw("ContentTime"), keep_fraction=True))]
    if study_fallback:
        dates.append(("StudyDate", iso_date(reader.raw("StudyDate"))))
        times.append(("StudyTime", iso_time(reader.raw("StudyTime"), keep_fraction=True)))
    date = next(((k, v) for k, v in dates if v), None)
    time = next(((k, v) for k, v in times if v), None)
    if date is None or time is None:
        warnings.append("event start unknown: the image has no usable acquisition, content"
                        + (" or study" if study_fallback else "") + " date and time")
        return None
    used_study = [k for k, _ in (date, time) if k.startswith("Study")]
    if used_study:
        warnings.append(f"event start taken from {' and '.join(used_study)}: the image has no "
                        "acquisition or content date/time")
    return f"{date[1]}T{time[1]}"


def tube_current_mA(reader: HeaderReader) -> Optional[float]:
    """XRayTubeCurrent (mA), else XRayTubeCurrentInuA (µA) / 1000, else AverageXRayTubeCurrent."""
    ma = reader.number("XRayTubeCurrent")
    if ma is None:
        ua = reader.number("XRayTubeCurrentInuA")
        ma = ua / 1000 if ua is not None else None
    if ma is None:
        ma = reader.number("AverageXRayTubeCurrent")
    return ma


def exposure_time_ms(reader: HeaderReader) -> Optional[float]:
    """ExposureTime (ms), else ExposureTimeInuS (µs) / 1000. A decimal in the IS field (DRGEM)
    is kept as written, not rounded."""
    ms = reader.number("ExposureTime")
    if ms is None:
        us = reader.number("ExposureTimeInuS")
        ms = us / 1000 if us is not None else None
    return ms


def exposure_uAs(reader: HeaderReader) -> Optional[float]:
    """ExposureInuAs (µAs), else Exposure (mAs) × 1000."""
    uas = reader.number("ExposureInuAs")
    if uas is None:
        mas = reader.number("Exposure")
        uas = mas * 1000 if mas is not None else None
    return uas


def field_area_m2(reader: HeaderReader) -> Optional[float]:
    """FieldOfViewDimensions (mm × mm) as an area in m²; a single (round-field) value or a
    malformed pair gives None."""
    dims = reader.numbers("FieldOfViewDimensions")
    if len(dims) != 2 or None in dims:
        return None
    return dims[0] * dims[1] / 1e6


def material_meaning(term: Optional[str], table: dict[str, str], reader: HeaderReader,
                     key: str) -> Optional[str]:
    if not term:
        return None
    meaning = table.get(term.strip().upper())
    if meaning is None:
        reader.warn(f"{reader.label(key)}: {term!r} is not a known material; left empty")
    return meaning


def filters(reader: HeaderReader) -> list[Filter]:
    """The X-ray filters of a radiographic image.

    - FilterType NONE: one "No Filter" row.
    - Siemens Multix types CU_x_MM: one flat copper filter x mm thick.
    - Several materials (backslash multi-values or Kodak comma text): one flat filter per
      material, each with the same-index minimum/maximum thickness (whichever separator the
      thicknesses use).
    - Otherwise one row of the stated type and material.
    A minimum above the maximum is swapped (Kodak DR 7500 sends them crossed)."""
    types = reader.terms("FilterType")
    materials = reader.terms("FilterMaterial")
    mins = reader.numbers("FilterThicknessMinimum")
    maxs = reader.numbers("FilterThicknessMaximum")
    filter_type = types[0] if types else None

    if filter_type == "NONE":
        return [Filter(type=NO_FILTER)]
    copper = _SIEMENS_COPPER_TYPE.match(filter_type or "")
    if copper:
        mm = float(copper.group(1))
        return [Filter(type=FLAT_FILTER, material=FILTER_MATERIALS["COPPER"],
                       thickness_min_mm=mins[0] if mins and mins[0] is not None else mm,
                       thickness_max_mm=maxs[0] if maxs and maxs[0] is not None else mm)]
    if not (filter_type or materials or mins or maxs):
        return []

    def at(values: list[Optional[float]], i: int) -> Optional[float]:
        return values[i] if i < len(values) else None

    def row(type_: Optional[str], material: Optional[str], i: int) -> Filter:
        lo, hi = at(mins, i), at(maxs, i)
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        return Filter(type=type_, material=material_meaning(material, FILTER_MATERIALS, reader,
                                                            "FilterMaterial"),
                      thickness_min_mm=lo, thickness_max_mm=hi)

    if len(materials) > 1:
        if (mins and len(mins) != len(materials)) or (maxs and len(maxs) != len(materials)):
            reader.warn(f"FilterMaterial (0018,7050) lists {len(materials)} materials but the "
                        f"filter thicknesses list {len(mins)} minimum and {len(maxs)} maximum "
                        "values; thicknesses matched by position")
        return [row(FLAT_FILTER, material, i) for i, material in enumerate(materials)]

    type_meaning = FILTER_TYPES.get(filter_type) if filter_type else None
    if filter_type and type_meaning is None:
        reader.warn(f"FilterType (0018,1160): {filter_type!r} is not a known filter type; "
                    "type left empty")
    return [row(type_meaning, materials[0] if materials else None, 0)]


def add_seconds(iso: str, seconds: float) -> str:
    return (_dt.datetime.fromisoformat(iso) + _dt.timedelta(seconds=seconds)).isoformat()

