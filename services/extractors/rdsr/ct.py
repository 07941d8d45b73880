"""The CT part of a dose report: TID 10011 (CT Radiation Dose), as sent in an X-Ray Radiation
Dose SR or in GE's CT Enhanced SR.

Reads CT Accumulated Dose Data (TID 10012), the start and end of irradiation, and one event per
CT Acquisition container (TID 10013) in document order, with its acquisition parameters, X-ray
sources, CT dose and dose-check details (TID 10015).

Every concept is found by (scheme, code value): GE writes "X-ray" in lower case, Toshiba says
"Identification Number of the X-Ray Source", the Siemens Intevo miswrites the tube current's
meaning; none of that matters here. Units are checked wherever PS3.16 fixes them; a unit we can
convert without guessing is converted, anything else leaves the field empty with a warning.
Private containers (e.g. Toshiba's "Dose Reduce Parameters", whose DS values can be malformed)
are never read.
"""
from __future__ import annotations

from typing import Callable, Optional

from pydicom.dataset import Dataset

from services.extractors.common import count_out_of_range
from shared import codes, sr, units
from shared.codes import (
    ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE,
    ACCUMULATED_DLP_FORWARD_ESTIMATE,
    ACQUISITION_PROTOCOL,
    COMMENT,
    CT_ACCUMULATED,
    CT_ACQUISITION,
    CT_ACQUISITION_PARAMETERS,
    CT_ACQUISITION_TYPE,
    CT_DOSE,
    CT_SOURCE_PARAMETERS,
    CTDIVOL_ALERT_CONFIGURED,
    CTDIVOL_ALERT_VALUE,
    CTDIVOL_FORWARD_ESTIMATE,
    CTDIVOL_NOTIFICATION_CONFIGURED,
    CTDIVOL_NOTIFICATION_VALUE,
    CTDIW_PHANTOM_TYPE,
    DLP,
    DLP_ALERT_CONFIGURED,
    DLP_ALERT_VALUE,
    DLP_FORWARD_ESTIMATE,
    DLP_NOTIFICATION_CONFIGURED,
    DLP_NOTIFICATION_VALUE,
    DLP_TOTAL,
    DOSE_CHECK_ALERT,
    DOSE_CHECK_NOTIFICATION,
    EFFECTIVE_DOSE,
    EFFECTIVE_DOSE_TOTAL,
    END_OF_IRRADIATION,
    EXPOSURE_TIME,
    EXPOSURE_TIME_PER_ROTATION,
    IRRADIATION_EVENT_UID,
    KVP,
    MAX_TUBE_CURRENT,
    MEAN_CTDIVOL,
    NO,
    NUMBER_OF_SOURCES,
    PERSON_NAME,
    PITCH_FACTOR,
    REASON_FOR_PROCEEDING,
    SCANNING_LENGTH,
    SINGLE_COLLIMATION,
    SOURCE_ID,
    SSDE,
    START_OF_IRRADIATION,
    TARGET_REGION,
    TOTAL_COLLIMATION,
    TOTAL_EVENTS,
    TUBE_CURRENT,
    WATER_EQUIVALENT_DIAMETER,
    XRAY_MODULATION_TYPE,
    YES,
    Code,
)
from shared.dicom import person_name
from shared.outcome import Ignored
from shared.report import REPORTED_DW, REPORTED_SSDE, Ct, CtEvent, CtSource, DoseCheck

Warn = Callable[[str], None]


# --- units ------------------------------------------------------------------------------------


# One table for every route (shared/units.py); these are the names the CT templates use.
MGY, MGY_CM, MSV = units.DOSE_MGY, units.DLP_MGYCM, units.EFFECTIVE_DOSE_MSV
MM, SECONDS, MA, KV, COUNT = units.MM, units.SECONDS, units.MA, units.KV, units.COUNT


# The unit of every NUM concept of the CT templates, as PS3.16 fixes it: values in another unit
# are converted to it (shared/units.py) or left empty with a warning.
UNITS: dict[Code, units.Unit] = {
    # TID 10012 CT Accumulated Dose Data
    TOTAL_EVENTS: COUNT, DLP_TOTAL: MGY_CM, EFFECTIVE_DOSE_TOTAL: MSV,
    # TID 10013 CT Acquisition Parameters
    EXPOSURE_TIME: SECONDS, SCANNING_LENGTH: MM, SINGLE_COLLIMATION: MM, TOTAL_COLLIMATION: MM,
    PITCH_FACTOR: COUNT, NUMBER_OF_SOURCES: COUNT,
    # CT X-Ray Source Parameters
    KVP: KV, MAX_TUBE_CURRENT: MA, TUBE_CURRENT: MA, EXPOSURE_TIME_PER_ROTATION: SECONDS,
    # CT Dose
    MEAN_CTDIVOL: MGY, DLP: MGY_CM, EFFECTIVE_DOSE: MSV,
    # Size-specific dose (CP-1525): the rows' exact places are not verified, so they are read by
    # concept anywhere under the event's CT Acquisition container (spec dose-references §4.3)
    SSDE: MGY, WATER_EQUIVALENT_DIAMETER: MM,
    # TID 10015 CT Dose Check Details
    DLP_ALERT_VALUE: MGY_CM, CTDIVOL_ALERT_VALUE: MGY, ACCUMULATED_DLP_FORWARD_ESTIMATE: MGY_CM,
    ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE: MGY, DLP_NOTIFICATION_VALUE: MGY_CM,
    CTDIVOL_NOTIFICATION_VALUE: MGY, DLP_FORWARD_ESTIMATE: MGY_CM, CTDIVOL_FORWARD_ESTIMATE: MGY,
}
# The CT values of CTDIw Phantom Type, and doseflow's names for them.
PHANTOMS = {code: name for name, code in codes.CTDIW_PHANTOMS.items()}


# --- reading one value --------------------------------------------------------------------------


def number(container: Optional[Dataset], concept: Code, warn: Warn) -> Optional[float]:
    """The first `concept` item of `container` in the field's unit; None (and a warning when the item
    was there but unusable) otherwise. Never 0 for a missing value."""
    item = sr.find(container, concept) if container is not None else None
    if item is None:
        return None
    label = f"{concept.meaning} ({concept.value})"
    expected = UNITS[concept]
    value, unit, problem = sr.measured(item)
    if problem:
        warn(f"{label}: {problem}; left empty")
        return None
    if expected is COUNT:
        if unit is not None and units.is_physical(unit):
            warn(f"{label}: unit {unit!r} is not a count or ratio; left empty")
            return None
        return value
    if unit is None:
        warn(f"{label}: no unit (expected {expected.name}); left empty")
        return None
    factor = units.factor(unit, expected)
    if factor is None:
        warn(f"{label}: unit {unit!r} is not {expected.name} or a unit convertible to it; left empty")
        return None
    return value * factor


def _count(container: Optional[Dataset], concept: Code, warn: Warn) -> Optional[int]:
    value = number(container, concept, warn)
    if value is None:
        return None
    if value != int(value) or value < 0:
        warn(f"{concept.meaning} ({concept.value}): {value} is not a whole number of events; left empty")
        return None
    why = count_out_of_range(value)
    if why:
        warn(f"{concept.meaning} ({concept.value}): {why}; left empty")
        return None
    return int(value)


def _yes_no(container: Dataset, concept: Code, warn: Warn) -> Optional[bool]:
    item = sr.find(container, concept)
    if item is None:
        return None
    value = sr.coded_value(item)
    if value in YES.codes:
        return True
    if value in NO.codes:
        return False
    warn(f"{concept.meaning} ({concept.value}): {sr.coded_meaning(item)!r} is neither Yes nor No; left empty")
    return None


def _person_names(container: Dataset, warn: Warn) -> Optional[str]:
    """Names of the Person Name (113870) participants, joined with ' | '. A participant that is
    not a readable PNAME (Spectrum Dynamics sends invalid ones) is skipped with a warning."""
    names = []
    for item in sr.find_all(container, PERSON_NAME):
        name = person_name(item, "PersonName") or sr.text(item)
        if name:
            names.append(name)
        else:
            warn(f"Person Name ({PERSON_NAME.value}): participant without a readable name; skipped")
    return " | ".join(names) or None


# --- the sections ---------------------------------------------------------------------------------


def read_ct(ds: Dataset, warnings: list[str]) -> Ct:
    """TID 10011 below the root `ds` of the dose SR. `warnings` collects what could not be read."""
    accumulated = sr.find(ds, CT_ACCUMULATED)
    acquisitions = sr.find_all(ds, CT_ACQUISITION)
    if accumulated is None and not acquisitions:
        raise Ignored("CT dose report without CT Accumulated Dose Data (113811) "
                      "or any CT Acquisition (113819)")

    def warn_total(message: str) -> None:
        warnings.append(f"CT Accumulated Dose Data: {message}")

    if accumulated is None:
        warnings.append("no CT Accumulated Dose Data (113811): CT totals left empty")
    return Ct(
        total_events=_count(accumulated, TOTAL_EVENTS, warn_total),
        total_dlp_mGycm=number(accumulated, DLP_TOTAL, warn_total),
        total_effective_dose_mSv=number(accumulated, EFFECTIVE_DOSE_TOTAL, warn_total),
        start_of_xray_irradiation=sr.datetime_value(sr.find(ds, START_OF_IRRADIATION)),
        end_of_xray_irradiation=sr.datetime_value(sr.find(ds, END_OF_IRRADIATION)),
        events=[read_event(item, n, warnings) for n, item in enumerate(acquisitions, start=1)],
    )


def read_event(acquisition: Dataset, ordinal: int, warnings: list[str]) -> CtEvent:
    """One CT Acquisition (113819) container."""
    event_uid = sr.uid(sr.find(acquisition, IRRADIATION_EVENT_UID))
    place = f"CT Acquisition {ordinal}" + (f" (event {event_uid})" if event_uid else "")

    def warn(message: str) -> None:
        warnings.append(f"{place}: {message}")

    params = sr.find(acquisition, CT_ACQUISITION_PARAMETERS)
    dose = sr.find(acquisition, CT_DOSE)
    comment = sr.text(sr.find(acquisition, COMMENT))
    modulation = sr.text(sr.find(acquisition, XRAY_MODULATION_TYPE))
    if modulation is None and params is not None:
        modulation = sr.text(sr.find(params, XRAY_MODULATION_TYPE))
    return CtEvent(
        irradiation_event_uid=event_uid,
        acquisition_protocol=sr.text(sr.find(acquisition, ACQUISITION_PROTOCOL)),
        target_region=sr.coded_meaning(sr.find(acquisition, TARGET_REGION)),
        acquisition_type=sr.coded_meaning(sr.find(acquisition, CT_ACQUISITION_TYPE)),
        exposure_time_s=number(params, EXPOSURE_TIME, warn),
        scanning_length_mm=number(params, SCANNING_LENGTH, warn),
        nominal_single_collimation_mm=number(params, SINGLE_COLLIMATION, warn),
        nominal_total_collimation_mm=number(params, TOTAL_COLLIMATION, warn),
        pitch_factor=number(params, PITCH_FACTOR, warn),
        number_of_xray_sources=number(params, NUMBER_OF_SOURCES, warn),
        ctdivol_mGy=number(dose, MEAN_CTDIVOL, warn),
        ctdiw_phantom=_phantom(dose, warn),
        dlp_mGycm=number(dose, DLP, warn),
        effective_dose_mSv=number(dose, EFFECTIVE_DOSE, warn),
        xray_modulation_type=modulation or modulation_from_comment(comment),
        comment=comment,
        sources=[_source(item, warn) for item in sr.find_all(params, CT_SOURCE_PARAMETERS)]
        if params is not None else [],
        dose_check=read_dose_check(dose, warn) if dose is not None else None,
        **_size_specific(acquisition, warn),
    )


def _holder(container: Dataset, concept, depth: int = 4) -> Optional[Dataset]:
    """The first container, `container` itself or one up to `depth` levels below it, holding a
    child with `concept` (breadth first)."""
    level = [container]
    for _ in range(depth + 1):
        for item in level:
            if sr.find(item, concept) is not None:
                return item
        level = [child for item in level for child in sr.children(item)]
    return None


def _size_specific(acquisition: Dataset, warn: Warn) -> dict:
    """SSDE and water-equivalent diameter as the scanner reports them; an SSDE read here is marked
    reported, so doseflow never replaces it with one it computes."""
    ssde_holder = _holder(acquisition, SSDE)
    dw_holder = _holder(acquisition, WATER_EQUIVALENT_DIAMETER)
    ssde = number(ssde_holder, SSDE, warn) if ssde_holder is not None else None
    dw = number(dw_holder, WATER_EQUIVALENT_DIAMETER, warn) if dw_holder is not None else None
    return {"ssde_mGy": ssde, "water_equivalent_diameter_mm": dw,
            "water_equivalent_diameter_method": REPORTED_DW if dw is not None else None,
            "ssde_method": REPORTED_SSDE if ssde is not None else None}


def _source(container: Dataset, warn: Warn) -> CtSource:
    """One CT X-Ray Source Parameters (113831) container."""
    return CtSource(
        id=sr.text(sr.find(container, SOURCE_ID)),
        kvp=number(container, KVP, warn),
        max_tube_current_mA=number(container, MAX_TUBE_CURRENT, warn),
        tube_current_mA=number(container, TUBE_CURRENT, warn),
        exposure_time_per_rotation_s=number(container, EXPOSURE_TIME_PER_ROTATION, warn),
    )


def _phantom(dose: Optional[Dataset], warn: Warn) -> Optional[str]:
    item = sr.find(dose, CTDIW_PHANTOM_TYPE) if dose is not None else None
    if item is None:
        return None
    phantom = PHANTOMS.get(sr.coded_value(item))
    if phantom is None:
        warn(f"CTDIw Phantom Type ({CTDIW_PHANTOM_TYPE.value}): {sr.coded_meaning(item)!r} is not "
             "the IEC head or body phantom; left empty")
    return phantom


def modulation_from_comment(comment: Optional[str]) -> Optional[str]:
    """Siemens repeats the X-ray modulation type in the event comment, as one of its
    comma-separated parts: '..., X-ray Modulation Type = XYZ_EC'. Used when 113842 is absent."""
    if not comment:
        return None
    for part in comment.split(","):
        part = part.strip()
        if part.lower().startswith("x-ray modulation type") and "= " in part:
            return part.split("= ", 1)[1].strip() or None
    return None


def read_dose_check(dose: Dataset, warn: Warn) -> Optional[DoseCheck]:
    """CT Dose Check Details (TID 10015): the alert (113900) and notification (113908)
    containers inside CT Dose. None when the scanner sent neither."""
    alert = sr.find(dose, DOSE_CHECK_ALERT)
    notification = sr.find(dose, DOSE_CHECK_NOTIFICATION)
    if alert is None and notification is None:
        return None
    check = DoseCheck()
    if alert is not None:
        def warn_alert(message: str) -> None:
            warn(f"Dose Check Alert Details: {message}")

        check.dlp_alert_value_configured = _yes_no(alert, DLP_ALERT_CONFIGURED, warn_alert)
        check.ctdivol_alert_value_configured = _yes_no(alert, CTDIVOL_ALERT_CONFIGURED, warn_alert)
        check.dlp_alert_value_mGycm = number(alert, DLP_ALERT_VALUE, warn_alert)
        check.ctdivol_alert_value_mGy = number(alert, CTDIVOL_ALERT_VALUE, warn_alert)
        check.accumulated_dlp_forward_estimate_mGycm = number(
            alert, ACCUMULATED_DLP_FORWARD_ESTIMATE, warn_alert)
        check.accumulated_ctdivol_forward_estimate_mGy = number(
            alert, ACCUMULATED_CTDIVOL_FORWARD_ESTIMATE, warn_alert)
        check.alert_reason_for_proceeding = sr.text(sr.find(alert, REASON_FOR_PROCEEDING))
        check.alert_person_name = _person_names(alert, warn_alert)
    if notification is not None:
        def warn_notification(message: str) -> None:
            warn(f"Dose Check Notification Details: {message}")

        check.dlp_notification_value_configured = _yes_no(notification, DLP_NOTIFICATION_CONFIGURED,
                                                          warn_notification)
        check.ctdivol_notification_value_configured = _yes_no(notification, CTDIVOL_NOTIFICATION_CONFIGURED,
                                                              warn_notification)
        check.dlp_notification_value_mGycm = number(notification, DLP_NOTIFICATION_VALUE,
                                                    warn_notification)
        check.ctdivol_notification_value_mGy = number(notification, CTDIVOL_NOTIFICATION_VALUE,
                                                      warn_notification)
        check.dlp_forward_estimate_mGycm = number(notification, DLP_FORWARD_ESTIMATE,
                                                  warn_notification)
        check.ctdivol_forward_estimate_mGy = number(notification, CTDIVOL_FORWARD_ESTIMATE,
                                                    warn_notification)
        check.notification_reason_for_proceeding = sr.text(
            sr.find(notification, REASON_FOR_PROCEEDING))
        check.notification_person_name = _person_names(notification, warn_notification)
    return check
