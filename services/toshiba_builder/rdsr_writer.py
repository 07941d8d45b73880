"""doseflow's own X-Ray Radiation Dose SR writer: a DoseReport's CT section as a TID 10011 object.

Two users: the bundled example objects (`doseflow.examples`), and the Toshiba builder, which
turns a legacy dose screen into a DoseReport and sends the RDSR made here back through the normal
pipeline. So the contract is a round trip: what `services.extractors` reads back from the object
equals the report that went in, for every CT field.

Rules the writer keeps:
- An absent value (None) writes no content item; a 0 is written as 0. Nothing is invented, even
  where TID 10011/10013 call an item mandatory: a dose record with a made-up value is worse than an
  incomplete template.
- Units are UCUM codes in MeasurementUnitsCodeSequence, in the units of the report's field names.
- Code values the report holds only as meanings (target region, CT acquisition type) get their
  PS3.16 code from a small table, matched without regard to case; the meaning is written exactly
  as the report holds it, because readers output the CodeMeaning as written. A meaning that is
  not in the table gets a code of the private scheme "99DOSEFLOW", its meaning preserved.
- Patient name and ID are never taken from the report (it only has hashes); they are empty unless
  the caller passes them explicitly (`patient_identity`). No birth date is written.
- Values a strict reader would refuse (a malformed UID, a code meaning over 64 characters) are
  refused here with a ValueError naming the attribute and content item.

What does not survive the round trip, by the nature of the object: a fractional age (PatientAge
holds completed years, or months under 2 years); an event's `datetime_started` (TID 10013 has no
place for it); the report's `sources` and `warnings` (the new object is its own source).

Pure: a DoseReport in, a pydicom Dataset (with file meta) out. Write it with
`pydicom.dcmwrite(path, ds, enforce_file_format=True)`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
import uuid
from contextlib import contextmanager
from typing import Iterable, Optional, Sequence, Union

from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import format_number_as_ds, validate_value

from shared.codes import (
    ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE,
    ACCUMULATED_DLP_FORWARD_ESTIMATE,
    ACQUISITION_PROTOCOL,
    COMMENT,
    COMPUTED_TOMOGRAPHY_XRAY,
    CTDIVOL_ALERT_CONFIGURED,
    CTDIVOL_ALERT_VALUE,
    CTDIVOL_FORWARD_ESTIMATE,
    CTDIVOL_NOTIFICATION_CONFIGURED,
    CTDIVOL_NOTIFICATION_VALUE,
    CTDIW_PHANTOMS,
    CTDIW_PHANTOM_TYPE,
    CT_ACCUMULATED,
    CT_ACQUISITION,
    CT_ACQUISITION_PARAMETERS,
    CT_ACQUISITION_TYPE,
    CT_ACQUISITION_TYPES,
    CT_DOSE,
    CT_SOURCE_PARAMETERS,
    CT_TARGET_REGIONS,
    DEVICE,
    DEVICE_OBSERVER_MANUFACTURER,
    DEVICE_OBSERVER_MODEL_NAME,
    DEVICE_OBSERVER_NAME,
    DEVICE_OBSERVER_SERIAL_NUMBER,
    DEVICE_OBSERVER_UID,
    DLP,
    DLP_ALERT_CONFIGURED,
    DLP_ALERT_VALUE,
    DLP_FORWARD_ESTIMATE,
    DLP_NOTIFICATION_CONFIGURED,
    DLP_NOTIFICATION_VALUE,
    DLP_TOTAL,
    DOSEFLOW_PRIVATE_SCHEME,
    DOSE_CHECK_ALERT,
    DOSE_CHECK_NOTIFICATION,
    EFFECTIVE_DOSE,
    EFFECTIVE_DOSE_TOTAL,
    END_OF_IRRADIATION,
    EVENTS,
    EXPOSURE_TIME,
    EXPOSURE_TIME_PER_ROTATION,
    IRRADIATION_EVENT_UID,
    KV,
    KVP,
    MA,
    MAX_TUBE_CURRENT,
    MEAN_CTDIVOL,
    MGY,
    MGY_CM,
    MM,
    MSV,
    NO,
    NUMBER_OF_SOURCES,
    OBSERVER_TYPE,
    PERSON_NAME,
    PITCH_FACTOR,
    PROCEDURE_REPORTED,
    RATIO,
    REASON_FOR_PROCEEDING,
    SCANNING_LENGTH,
    SCOPE_OF_ACCUMULATION,
    SECONDS,
    SINGLE_COLLIMATION,
    SOURCE_ID,
    SOURCE_OF_DOSE_INFORMATION,
    START_OF_IRRADIATION,
    STUDY,
    STUDY_INSTANCE_UID,
    TARGET_REGION,
    TOTAL_COLLIMATION,
    TOTAL_EVENTS,
    TUBE_CURRENT,
    XRAY_MODULATION_TYPE,
    XRAY_SOURCES,
    X_RAY_RADIATION_DOSE_REPORT,
    YES,
    Code,
)
from shared.dicom import XRAY_RADIATION_DOSE_SR
from shared.report import Ct, CtEvent, CtSource, DoseCheck, DoseReport

# --- identity of this implementation -------------------------------------------------------------


def uid_from(*parts: str) -> str:
    """A UID derived from `parts` by a name-based UUID (ITU-T X.667 / PS3.5 B.2: "2.25." + the
    UUID as an integer). The same parts always give the same UID, so regenerated objects are
    byte-identical; different parts give different UIDs."""
    name = "\x1f".join(parts)
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'doseflow:' + name).int}"


IMPLEMENTATION_CLASS_UID = uid_from("implementation", "rdsr_writer")
# Part of every file's meta header: bumped when the writer's output changes, never per release,
# so committed example objects do not change with the package version.
IMPLEMENTATION_VERSION_NAME = "DOSEFLOW_RDSR_1"


# --- coded values ---------------------------------------------------------------------------------


PRIVATE_SCHEME = DOSEFLOW_PRIVATE_SCHEME


def _table(known: Iterable[Code]) -> dict[str, Code]:
    return {c.meaning.casefold(): c for c in known}


# Meanings a report holds, to their codes: CID 10013 CT Acquisition Type, and the target regions
# CT reports commonly name (shared/codes.py).
ACQUISITION_TYPES = _table(CT_ACQUISITION_TYPES)
TARGET_REGIONS = _table(CT_TARGET_REGIONS)


def coded_for(meaning: str, table: dict[str, Code]) -> Code:
    """The code for a meaning the report holds: the table's code (the meaning kept as the report
    writes it), else a private code whose value is derived from the meaning, so the same meaning
    always gets the same code."""
    known = table.get(meaning.strip().casefold())
    if known is not None:
        return Code(known.scheme, known.value, meaning)
    digest = hashlib.sha256(meaning.strip().casefold().encode("utf-8")).hexdigest()[:12].upper()
    return Code(PRIVATE_SCHEME, f"DF{digest}", meaning)


# --- checked assignment ---------------------------------------------------------------------------

_STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                "UI", "UR", "UT"}


_SINGLE_VALUED = {"LT", "ST", "UT", "UR"}


def _put(ds: Dataset, keyword: str, value) -> None:
    """Set an attribute after checking its value as a strict reader would (length, characters,
    UID form), so a bad report field is refused here, named, whatever pydicom's global
    validation settings are."""
    vr = dictionary_VR(keyword)
    if vr in _STRING_VRS and value is not None:
        if isinstance(value, list):
            values = value
        elif vr in _SINGLE_VALUED:
            values = [value]
        else:  # "a\\b" is two values
            values = str(value).split("\\")
        for one in values:
            try:
                validate_value(vr, str(one), config.RAISE)
            except ValueError as exc:
                raise ValueError(f"{keyword} {Tag(keyword)}: {exc}") from None
    setattr(ds, keyword, value)


@contextmanager
def _about(concept: Code):
    """Name the content item in any value error raised while it is built."""
    try:
        yield
    except ValueError as exc:
        raise ValueError(f"content item {concept.meaning!r}: {exc}") from None


# --- content items --------------------------------------------------------------------------------


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    _put(item, "CodeValue", code.value)
    _put(item, "CodingSchemeDesignator", code.scheme)
    _put(item, "CodeMeaning", code.meaning)
    return item


def _item(relationship: Optional[str], value_type: str, concept: Code) -> Dataset:
    item = Dataset()
    if relationship is not None:
        item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = DicomSequence([_code_item(concept)])
    return item


def container(relationship: str, concept: Code, children: Iterable[Optional[Dataset]]) -> Dataset:
    item = _item(relationship, "CONTAINER", concept)
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = DicomSequence([c for c in children if c is not None])
    return item


def text(relationship: str, concept: Code, value: Optional[str]) -> Optional[Dataset]:
    if value is None:
        return None
    item = _item(relationship, "TEXT", concept)
    with _about(concept):
        _put(item, "TextValue", value)
    return item


def code(relationship: str, concept: Code, value: Optional[Code],
         children: Sequence[Dataset] = ()) -> Optional[Dataset]:
    if value is None:
        return None
    item = _item(relationship, "CODE", concept)
    with _about(concept):
        item.ConceptCodeSequence = DicomSequence([_code_item(value)])
    if children:
        item.ContentSequence = DicomSequence(list(children))
    return item


def uidref(relationship: str, concept: Code, value: Optional[str]) -> Optional[Dataset]:
    if value is None:
        return None
    item = _item(relationship, "UIDREF", concept)
    with _about(concept):
        _put(item, "UID", value)
    return item


def date_time(relationship: str, concept: Code, iso: Optional[str]) -> Optional[Dataset]:
    if iso is None:
        return None
    item = _item(relationship, "DATETIME", concept)
    with _about(concept):
        _put(item, "DateTime", dicom_datetime(iso))
    return item


def person(relationship: str, concept: Code, name: str) -> Dataset:
    item = _item(relationship, "PNAME", concept)
    with _about(concept):
        _put(item, "PersonName", name)
    return item


def num(relationship: str, concept: Code, value: Optional[float], unit: Code) -> Optional[Dataset]:
    if value is None:
        return None
    item = _item(relationship, "NUM", concept)
    measured = Dataset()
    with _about(concept):
        _put(measured, "NumericValue", decimal_string(value))
    units = _code_item(unit)
    measured.MeasurementUnitsCodeSequence = DicomSequence([units])
    item.MeasuredValueSequence = DicomSequence([measured])
    return item


def decimal_string(value: float) -> str:
    """A number as a DS (at most 16 characters). Whole numbers without a fraction; otherwise the
    shortest text that reads back as the same float, rounded to 16 characters only when longer
    (relative error below 1e-13)."""
    f = float(value)
    if not math.isfinite(f):
        raise ValueError(f"{value!r} cannot be written as a DICOM decimal string")
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    shortest = repr(f)
    return shortest if len(shortest) <= 16 else format_number_as_ds(f)


# --- dates and times ------------------------------------------------------------------------------

_ISO_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?)?([+-]\d{2}:?\d{2}|Z)?$")


def dicom_datetime(iso: str) -> str:
    """ISO date-time ('2024-03-05T10:01:02.5', as DoseReports hold them) to DT
    ('20240305100102.5'). The fraction's digits are kept as written; a zone offset is kept."""
    m = _ISO_DATETIME.match(iso.strip())
    if not m:
        raise ValueError(f"not an ISO date-time: {iso!r}")
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    _dt.date(int(y), int(mo), int(d))  # refuses 2024-02-30
    out = f"{y}{mo}{d}"
    if hh is not None:
        out += f"{hh}{mi}{ss or '00'}{frac or ''}"
    if tz:
        out += "+0000" if tz == "Z" else tz.replace(":", "")
    return out


def dicom_date(iso: Optional[str]) -> str:
    return "" if iso is None else _dt.date.fromisoformat(iso).strftime("%Y%m%d")


def dicom_time(iso: Optional[str]) -> str:
    return "" if iso is None else _dt.time.fromisoformat(iso).strftime("%H%M%S")


def patient_age(age_years: Optional[float]) -> Optional[str]:
    """Age in years as an AS string: completed years from 2 years up, completed months below,
    weeks below a month."""
    if age_years is None:
        return None
    if age_years < 0:
        raise ValueError(f"negative patient age {age_years}")
    if age_years >= 2:
        return f"{min(int(age_years), 999):03d}Y"
    months = int(age_years * 12 + 1e-9)
    if months >= 1:
        return f"{months:03d}M"
    return f"{int(age_years * 365.25 / 7 + 1e-9):03d}W"


def _names(flat: Optional[str]) -> Optional[list[str]]:
    """A DoseReport name ('Family^Given', several joined with ' | ') as PN values."""
    if flat is None:
        return None
    return [n.strip() for n in flat.split(" | ") if n.strip()] or None


# --- the template ------------------------------------------------------------------------------


def _observer_context(report: DoseReport) -> list[Optional[Dataset]]:
    """TID 1002/1004 device observer: the equipment's identity, where known."""
    eq = report.equipment
    identity = [
        uidref("HAS OBS CONTEXT", DEVICE_OBSERVER_UID, eq.device_observer_uid),
        text("HAS OBS CONTEXT", DEVICE_OBSERVER_NAME, eq.station_name),
        text("HAS OBS CONTEXT", DEVICE_OBSERVER_MANUFACTURER, eq.manufacturer),
        text("HAS OBS CONTEXT", DEVICE_OBSERVER_MODEL_NAME, eq.model),
        text("HAS OBS CONTEXT", DEVICE_OBSERVER_SERIAL_NUMBER, eq.serial_number),
    ]
    if not any(identity):
        return []
    return [code("HAS OBS CONTEXT", OBSERVER_TYPE, DEVICE), *identity]


def _accumulated(ct: Ct) -> Dataset:
    """TID 10012 CT Accumulated Dose Data."""
    return container("CONTAINS", CT_ACCUMULATED, [
        num("CONTAINS", TOTAL_EVENTS, ct.total_events, EVENTS),
        num("CONTAINS", DLP_TOTAL, ct.total_dlp_mGycm, MGY_CM),
        num("CONTAINS", EFFECTIVE_DOSE_TOTAL, ct.total_effective_dose_mSv, MSV),
    ])


def _source(source: CtSource) -> Dataset:
    return container("CONTAINS", CT_SOURCE_PARAMETERS, [
        text("CONTAINS", SOURCE_ID, source.id),
        num("CONTAINS", KVP, source.kvp, KV),
        num("CONTAINS", MAX_TUBE_CURRENT, source.max_tube_current_mA, MA),
        num("CONTAINS", TUBE_CURRENT, source.tube_current_mA, MA),
        num("CONTAINS", EXPOSURE_TIME_PER_ROTATION, source.exposure_time_per_rotation_s, SECONDS),
    ])


def _parameters(event: CtEvent) -> Optional[Dataset]:
    children = [
        num("CONTAINS", EXPOSURE_TIME, event.exposure_time_s, SECONDS),
        num("CONTAINS", SCANNING_LENGTH, event.scanning_length_mm, MM),
        num("CONTAINS", SINGLE_COLLIMATION, event.nominal_single_collimation_mm, MM),
        num("CONTAINS", TOTAL_COLLIMATION, event.nominal_total_collimation_mm, MM),
        num("CONTAINS", PITCH_FACTOR, event.pitch_factor, RATIO),
        num("CONTAINS", NUMBER_OF_SOURCES, event.number_of_xray_sources, XRAY_SOURCES),
        *(_source(s) for s in event.sources),
    ]
    if not any(children):
        return None
    return container("CONTAINS", CT_ACQUISITION_PARAMETERS, children)


def _yes_no(concept: Code, value: Optional[bool]) -> Optional[Dataset]:
    return code("CONTAINS", concept, None if value is None else (YES if value else NO))


def _people(flat: Optional[str]) -> list[Dataset]:
    return [person("CONTAINS", PERSON_NAME, n) for n in _names(flat) or []]


def _dose_check(check: Optional[DoseCheck]) -> list[Optional[Dataset]]:
    """TID 10015 CT Dose Check Details: a container per part (alert, notification) that holds a
    value."""
    if check is None:
        return []
    alert = [
        _yes_no(DLP_ALERT_CONFIGURED, check.dlp_alert_value_configured),
        _yes_no(CTDIVOL_ALERT_CONFIGURED, check.ctdivol_alert_value_configured),
        num("CONTAINS", DLP_ALERT_VALUE, check.dlp_alert_value_mGycm, MGY_CM),
        num("CONTAINS", CTDIVOL_ALERT_VALUE, check.ctdivol_alert_value_mGy, MGY),
        num("CONTAINS", ACCUMULATED_DLP_FORWARD_ESTIMATE,
            check.accumulated_dlp_forward_estimate_mGycm, MGY_CM),
        num("CONTAINS", ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE,
            check.accumulated_ctdivol_forward_estimate_mGy, MGY),
        text("CONTAINS", REASON_FOR_PROCEEDING, check.alert_reason_for_proceeding),
        *_people(check.alert_person_name),
    ]
    notification = [
        _yes_no(DLP_NOTIFICATION_CONFIGURED, check.dlp_notification_value_configured),
        _yes_no(CTDIVOL_NOTIFICATION_CONFIGURED, check.ctdivol_notification_value_configured),
        num("CONTAINS", DLP_NOTIFICATION_VALUE, check.dlp_notification_value_mGycm, MGY_CM),
        num("CONTAINS", CTDIVOL_NOTIFICATION_VALUE, check.ctdivol_notification_value_mGy, MGY),
        num("CONTAINS", DLP_FORWARD_ESTIMATE, check.dlp_forward_estimate_mGycm, MGY_CM),
        num("CONTAINS", CTDIVOL_FORWARD_ESTIMATE, check.ctdivol_forward_estimate_mGy, MGY),
        text("CONTAINS", REASON_FOR_PROCEEDING, check.notification_reason_for_proceeding),
        *_people(check.notification_person_name),
    ]
    return [container("CONTAINS", DOSE_CHECK_ALERT, alert) if any(alert) else None,
            container("CONTAINS", DOSE_CHECK_NOTIFICATION, notification) if any(notification) else None]


def _dose(event: CtEvent) -> Optional[Dataset]:
    phantom = None
    if event.ctdiw_phantom is not None:
        phantom = CTDIW_PHANTOMS[event.ctdiw_phantom]
    children = [
        num("CONTAINS", MEAN_CTDIVOL, event.ctdivol_mGy, MGY),
        code("CONTAINS", CTDIW_PHANTOM_TYPE, phantom),
        num("CONTAINS", DLP, event.dlp_mGycm, MGY_CM),
        num("CONTAINS", EFFECTIVE_DOSE, event.effective_dose_mSv, MSV),
        *_dose_check(event.dose_check),
    ]
    if not any(children):
        return None
    return container("CONTAINS", CT_DOSE, children)


def _acquisition(event: CtEvent) -> Dataset:
    """TID 10013 CT Irradiation Event Data: one CT Acquisition container."""
    region = None if event.target_region is None else coded_for(event.target_region, TARGET_REGIONS)
    kind = None if event.acquisition_type is None else coded_for(event.acquisition_type,
                                                                  ACQUISITION_TYPES)
    return container("CONTAINS", CT_ACQUISITION, [
        text("CONTAINS", ACQUISITION_PROTOCOL, event.acquisition_protocol),
        code("CONTAINS", TARGET_REGION, region),
        code("CONTAINS", CT_ACQUISITION_TYPE, kind),
        uidref("CONTAINS", IRRADIATION_EVENT_UID, event.irradiation_event_uid),
        _parameters(event),
        _dose(event),
        text("CONTAINS", XRAY_MODULATION_TYPE, event.xray_modulation_type),
        text("CONTAINS", COMMENT, event.comment),
    ])


def _content(report: DoseReport, dose_source: Optional[Code]) -> list[Optional[Dataset]]:
    ct = report.ct
    assert ct is not None
    scope = code("HAS OBS CONTEXT", SCOPE_OF_ACCUMULATION, STUDY, children=[
        uidref("HAS PROPERTIES", STUDY_INSTANCE_UID, report.study.study_instance_uid)])
    return [
        code("HAS CONCEPT MOD", PROCEDURE_REPORTED, COMPUTED_TOMOGRAPHY_XRAY),
        *_observer_context(report),
        date_time("HAS OBS CONTEXT", START_OF_IRRADIATION, ct.start_of_xray_irradiation),
        date_time("HAS OBS CONTEXT", END_OF_IRRADIATION, ct.end_of_xray_irradiation),
        scope,
        _accumulated(ct),
        *(_acquisition(e) for e in ct.events),
        code("CONTAINS", SOURCE_OF_DOSE_INFORMATION, dose_source),
    ]


# --- the object -----------------------------------------------------------------------------------


def _content_datetime(report: DoseReport, given) -> tuple[str, str]:
    """ContentDate/ContentTime: the caller's, else the end of irradiation, else the study's date
    and time. The clock is never read, so the same report always gives the same object."""
    if given is not None:
        if isinstance(given, _dt.datetime):
            return given.strftime("%Y%m%d"), given.strftime("%H%M%S")
        dt = dicom_datetime(str(given))
        return dt[:8], (dt[8:14] or "000000")
    if report.ct and report.ct.end_of_xray_irradiation:
        dt = dicom_datetime(report.ct.end_of_xray_irradiation)
        return dt[:8], (dt[8:14] or "000000")
    if report.study.study_date and report.study.study_time:
        return dicom_date(report.study.study_date), dicom_time(report.study.study_time)
    raise ValueError("content_datetime is needed: the report has neither an end of X-ray "
                     "irradiation nor a study date and time")


def _set(ds: Dataset, keyword: str, value) -> None:
    """Set an optional (type 3) attribute only when there is a value."""
    if value is not None and value != "":
        _put(ds, keyword, value)


def ct_rdsr_from_report(report: DoseReport, *, sop_instance_uid: str,
                        series_instance_uid: Optional[str] = None,
                        content_datetime: Union[_dt.datetime, str, None] = None,
                        patient_identity: Optional[tuple[str, str]] = None,
                        dose_source: Optional[Code] = None) -> Dataset:
    """An X-Ray Radiation Dose SR (TID 10011 CT Radiation Dose) holding `report`'s CT section.

    `patient_identity` is (PatientName, PatientID) to write; without it both are empty.
    `dose_source` is the Source of Dose Information (CID 10021, e.g. AUTOMATED_DATA_COLLECTION,
    DERIVED_FROM_HUMAN_READABLE_REPORTS); without it the item is left out.
    The series UID, when not given, is derived from the SOP instance UID.
    """
    if report.ct is None:
        raise ValueError("the report has no CT section: a CT dose SR cannot be written")
    study, patient, eq = report.study, report.patient, report.equipment
    if not study.study_instance_uid:
        raise ValueError("the report has no StudyInstanceUID")
    content_date, content_time = _content_datetime(report, content_datetime)

    ds = Dataset()
    _put(ds, "SOPClassUID", XRAY_RADIATION_DOSE_SR)
    _put(ds, "SOPInstanceUID", sop_instance_uid)
    # General Study
    _put(ds, "StudyDate", dicom_date(study.study_date))
    _put(ds, "StudyTime", dicom_time(study.study_time))
    _put(ds, "AccessionNumber", study.accession_number or "")
    _put(ds, "Modality", "SR")
    _put(ds, "Manufacturer", eq.manufacturer or "")
    _set(ds, "InstitutionName", eq.institution_name)
    _put(ds, "ReferringPhysicianName", _names(study.referring_physician_name) or "")
    _set(ds, "StationName", eq.station_name)
    _set(ds, "StudyDescription", study.study_description)
    if study.procedure is not None:
        ds.ProcedureCodeSequence = DicomSequence([_code_item(coded_for(study.procedure, {}))])
    _set(ds, "InstitutionalDepartmentName", eq.department)
    _set(ds, "PerformingPhysicianName", _names(study.performing_physician_name))
    _set(ds, "OperatorsName", _names(study.operator_name))
    _set(ds, "ManufacturerModelName", eq.model)
    # Patient
    name, patient_id = patient_identity if patient_identity is not None else ("", "")
    _put(ds, "PatientName", name)
    _put(ds, "PatientID", patient_id)
    _put(ds, "PatientBirthDate", "")
    _put(ds, "PatientSex", patient.sex or "")
    _set(ds, "PatientAge", patient_age(patient.age_years))
    _set(ds, "PatientSize", None if patient.size_m is None else decimal_string(patient.size_m))
    _set(ds, "PatientWeight", None if patient.weight_kg is None else decimal_string(patient.weight_kg))
    # Enhanced General Equipment
    _set(ds, "DeviceSerialNumber", eq.serial_number)
    _set(ds, "SoftwareVersions", eq.software_versions)
    # General Study / SR Document Series
    _put(ds, "StudyInstanceUID", study.study_instance_uid)
    _put(ds, "SeriesInstanceUID", series_instance_uid or uid_from("series", sop_instance_uid))
    _put(ds, "StudyID", study.study_id or "")
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    # Readers find a requested procedure known only as text here (there is no code for it).
    _set(ds, "RequestedProcedureDescription", study.requested_procedure)
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence()
    # SR Document General
    _put(ds, "ContentDate", content_date)
    _put(ds, "ContentTime", content_time)
    _put(ds, "CompletionFlag", "COMPLETE")
    _put(ds, "VerificationFlag", "UNVERIFIED")
    ds.PerformedProcedureCodeSequence = DicomSequence()
    # SR Document Content: the root container
    _put(ds, "ValueType", "CONTAINER")
    ds.ConceptNameCodeSequence = DicomSequence([_code_item(X_RAY_RADIATION_DOSE_REPORT)])
    _put(ds, "ContinuityOfContent", "SEPARATE")
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "10011"
    ds.ContentTemplateSequence = DicomSequence([template])
    ds.ContentSequence = DicomSequence([c for c in _content(report, dose_source) if c is not None])
    if _uses_private_codes(ds):
        scheme = Dataset()
        scheme.CodingSchemeDesignator = PRIVATE_SCHEME
        scheme.CodingSchemeName = "doseflow local codes for meanings without a standard code"
        scheme.CodingSchemeResponsibleOrganization = "doseflow"
        ds.CodingSchemeIdentificationSequence = DicomSequence([scheme])
    charset = character_set(_texts(ds))
    if charset is not None:
        ds.SpecificCharacterSet = charset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = XRAY_RADIATION_DOSE_SR
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    return ds


_TEXT_VRS = {"SH", "LO", "ST", "LT", "UT", "UC", "PN"}


def _texts(ds: Dataset) -> list[str]:
    found: list[str] = []

    def visit(d: Dataset, elem) -> None:
        if elem.VR in _TEXT_VRS and elem.value is not None:
            values = elem.value if elem.VM > 1 else [elem.value]
            found.extend(str(v) for v in values)

    ds.walk(visit)
    return found


def character_set(texts: Iterable[str]) -> Optional[str]:
    """The plainest Specific Character Set that holds every text: none (ASCII), Latin-1, else
    UTF-8. Plain sets keep older readers happy (DCMTK's checker does not handle UTF-8)."""
    texts = list(texts)
    if all(t.isascii() for t in texts):
        return None
    try:
        for t in texts:
            t.encode("latin-1")
        return "ISO_IR 100"
    except UnicodeEncodeError:
        return "ISO_IR 192"


def _uses_private_codes(ds: Dataset) -> bool:
    found = False

    def visit(d: Dataset, elem) -> None:
        nonlocal found
        if elem.keyword == "CodingSchemeDesignator" and elem.value == PRIVATE_SCHEME:
            found = True

    ds.walk(visit)
    return found

