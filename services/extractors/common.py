"""Study, patient and equipment attributes read from an object's header, shared by every route.

Pure: a pydicom Dataset in, report sections out.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Optional

from pydicom.dataset import Dataset

from shared import sr
from shared.dicom import as_text, iso_date, iso_time, number, person_name, text
from shared.report import Equipment, Patient, Source, Study


@dataclass(frozen=True)
class ExtractOptions:
    """What extraction needs from configuration. `patient_hash_key` set means patient name and
    ID are stored as HMAC-SHA-256 hex digests under that key; None (the default) stores neither.
    The rest is what services/extractors/privacy.py keeps of ages, staff names and accession
    numbers (the DOSEFLOW_ settings of the same names)."""

    patient_hash_key: Optional[bytes] = None
    age_precision_years: str = "0.1"
    staff_names: str = "keep"
    accession_number: str = "keep"

    @classmethod
    def from_settings(cls, settings) -> "ExtractOptions":
        return cls(patient_hash_key=settings.patient_key(), age_precision_years=settings.age_precision_years,
                   staff_names=settings.staff_names, accession_number=settings.accession_number)


DEFAULT_OPTIONS = ExtractOptions()


# Counts (irradiation events, radiographic frames) are stored in PostgreSQL integer columns.
# A number under a count's concept that is negative or beyond that range is not a count of
# anything an X-ray system did, and it would make the writer fail on the whole study.
MAX_COUNT = 2**31 - 1


def count_out_of_range(value: float) -> Optional[str]:
    """Why `value` cannot be a count, or None when it can (whole-number checks are the caller's)."""
    if value < 0:
        return f"{value:g} is negative, not a count"
    if value > MAX_COUNT:
        return f"{value:g} is too large to be a count"
    return None


def first_text(ds: Dataset, *keywords: str) -> Optional[str]:
    for keyword in keywords:
        value = text(ds, keyword)
        if value:
            return value
    return None


def first_code_meaning(ds: Optional[Dataset], keyword: str) -> Optional[str]:
    meaning = sr.value(sr.first_item(ds, keyword), "CodeMeaning")
    return as_text(meaning) or None if meaning else None


def study_from_header(ds: Dataset, *, date_fallback: bool) -> Study:
    """The General Study module. With `date_fallback` (RDSR route) an empty StudyDate/Time falls
    back to Content, then Series date/time; image routes take StudyDate/Time only. No fallback
    ever invents a date: none found is None."""
    date_keys = ("StudyDate", "ContentDate", "SeriesDate") if date_fallback else ("StudyDate",)
    time_keys = ("StudyTime", "ContentTime", "SeriesTime") if date_fallback else ("StudyTime",)
    study_date = next((d for d in (iso_date(text(ds, k)) for k in date_keys) if d), None)
    study_time = next((t for t in (iso_time(text(ds, k)) for k in time_keys) if t), None)
    return Study(
        study_instance_uid=text(ds, "StudyInstanceUID") or "",
        accession_number=text(ds, "AccessionNumber"),
        study_date=study_date,
        study_time=study_time,
        study_description=text(ds, "StudyDescription"),
        requested_procedure=first_code_meaning(ds, "RequestedProcedureCodeSequence"),
        procedure=first_code_meaning(ds, "ProcedureCodeSequence"),
        study_id=text(ds, "StudyID"),
        operator_name=person_name(ds, "OperatorsName"),
        performing_physician_name=person_name(ds, "PerformingPhysicianName"),
        referring_physician_name=person_name(ds, "ReferringPhysicianName"),
    )


_AGE = re.compile(r"^(\d{1,3})([DWMY])$")


def age_from_patient_age(value: Optional[str]) -> Optional[float]:
    """PatientAge (AS, e.g. '045Y', '006M', '003W', '010D') in years."""
    if not value:
        return None
    m = _AGE.match(value.strip().upper())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    return {"Y": n, "M": n / 12, "W": n * 7 / 365.25, "D": n / 365.25}[unit]


def age_years(ds: Dataset, study_date: Optional[str]) -> Optional[float]:
    """Age at the study: (study date - birth date) in days / 365.25 when both are known, else
    from PatientAge."""
    birth = iso_date(text(ds, "PatientBirthDate"))
    if birth and study_date:
        days = (_dt.date.fromisoformat(study_date) - _dt.date.fromisoformat(birth)).days
        if days >= 0:
            return days / 365.25
    return age_from_patient_age(text(ds, "PatientAge"))


def keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def patient_from_header(ds: Dataset, study_date: Optional[str], options: ExtractOptions) -> Patient:
    name = id_ = None
    if options.patient_hash_key:
        raw_name, raw_id = text(ds, "PatientName"), text(ds, "PatientID")
        name = keyed_hash(options.patient_hash_key, raw_name) if raw_name else None
        id_ = keyed_hash(options.patient_hash_key, raw_id) if raw_id else None
    return Patient(
        age_years=age_years(ds, study_date),
        sex=text(ds, "PatientSex"),
        size_m=number(sr.value(ds, "PatientSize")),
        weight_kg=number(sr.value(ds, "PatientWeight")),
        id_hash=id_,
        name_hash=name,
    )


def equipment_from_header(ds: Dataset) -> Equipment:
    return Equipment(
        manufacturer=text(ds, "Manufacturer"),
        model=text(ds, "ManufacturerModelName"),
        station_name=text(ds, "StationName"),
        institution_name=text(ds, "InstitutionName"),
        department=text(ds, "InstitutionalDepartmentName"),
        serial_number=text(ds, "DeviceSerialNumber"),
        software_versions=text(ds, "SoftwareVersions"),
    )


def source_of(ds: Dataset, route: str) -> Source:
    return Source(route=route, sop_class_uid=text(ds, "SOPClassUID") or "",
                  sop_instance_uid=text(ds, "SOPInstanceUID") or "")
