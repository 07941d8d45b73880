"""Projection X-ray dose reports (TID 10001 for RF, XA and DX): accumulated dose per plane
(TID 10002/10004/10007), irradiation events (TID 10003), and whether the study is RF or DX.

Value rules where one event holds several values of a concept (per-pulse data, as repeated
items or as a multi-valued number):
- tube current: the Average X-Ray Tube Current (113767) if present, else the mean of the
  X-Ray Tube Current (113734) values (DESIGN §3); kVp and pulse width: the mean;
- exposure (µAs) and exposure time: the sum, since per-pulse parts add up to the event's;
- everything else: the first value.
An event with no Exposure Time but with a pulse width and a pulse count gets
exposure time = mean pulse width × number of pulses (the time the beam was on).
"""
from __future__ import annotations

from typing import Optional

from pydicom.dataset import Dataset

from services.extractors.rdsr.irradiation import (
    Problems,
    Reader,
    accumulated_and_events,
    anatomy,
    filters,
    laterality_item,
    plane_of,
    tube_current_mA,
)
from services.extractors.rdsr import philips_xper
from shared.units import (
    COUNT,
    DAP_GYM2,
    DEG,
    DOSE_GY,
    DOSE_MGY,
    KV,
    M2,
    MM,
    MS,
    PER_S,
    SECONDS,
    UAS,
)
from shared import sr
from shared.dicom import text
from shared.report import Projection, ProjectionEvent, ProjectionPlane
from shared.codes import (
    ACCUMULATED_DOSE,
    ACQUISITION_DAP_TOTAL,
    ACQUISITION_DEVICE_TYPE,
    ACQUISITION_DOSE_RP_TOTAL,
    ACQUISITION_PROTOCOL,
    CASSETTE_BASED,
    COLLIMATED_FIELD_AREA,
    COLLIMATED_FIELD_HEIGHT,
    COLLIMATED_FIELD_WIDTH,
    COMMENT,
    DAP,
    DAP_TOTAL,
    DATETIME_STARTED,
    DEVIATION_INDEX,
    DEVICE_OBSERVER_MODEL_NAME,
    DOSE_RP,
    DOSE_RP_TOTAL,
    ENTRANCE_EXPOSURE_AT_RP,
    EVENT_TYPE,
    EXPOSURE,
    EXPOSURE_INDEX,
    EXPOSURE_TIME,
    FLUOROSCOPY,
    FLUOROSCOPY_GUIDED,
    FLUORO_DAP_TOTAL,
    FLUORO_DOSE_RP_TOTAL,
    FLUORO_MODE,
    IMAGE_VIEW,
    INTEGRATED,
    IRRADIATION_DURATION,
    IRRADIATION_EVENT_UID,
    KVP,
    NUMBER_OF_PULSES,
    PHILIPS_NUMBER_OF_FRAMES,
    PHILIPS_TABLE_HEIGHT,
    POSITIONER_PRIMARY_ANGLE,
    POSITIONER_SECONDARY_ANGLE,
    PULSE_RATE,
    PULSE_WIDTH,
    REFERENCE_POINT_DEFINITION,
    SOURCE_TO_DETECTOR,
    SOURCE_TO_ISOCENTER,
    TABLE_HEIGHT,
    TABLE_LATERAL,
    TABLE_LONGITUDINAL,
    TARGET_EXPOSURE_INDEX,
    TOTAL_ACQUISITION_TIME,
    TOTAL_FLUORO_TIME,
    TOTAL_RADIOGRAPHIC_FRAMES,
)



def read_projection(ds: Dataset, warnings: list[str]) -> tuple[Projection, str]:
    """The projection section of a TID 10001 report, and its modality ("RF" or "DX")."""
    problems = Problems("projection")
    root, containers, event_items = accumulated_and_events(
        ds, problems, warnings, report="projection X-ray dose report", without_totals="dose totals")
    projection = Projection(
        planes=[p for p in (accumulated_plane(c, len(containers)) for c in containers) if p is not None],
        events=[irradiation_event(Reader(item, problems, n)) for n, item in enumerate(event_items, 1)],
    )
    modality = modality_of(ds, root, projection, event_items)
    problems.flush(warnings)
    return projection, modality


def accumulated_plane(acc: Reader, n_containers: int) -> Optional[ProjectionPlane]:
    """One Accumulated X-Ray Dose Data container (one per plane)."""
    acc.where = "accumulated dose"
    plane = plane_of(acc)
    if plane is None:
        if n_containers > 1:
            acc.note(ACCUMULATED_DOSE, "has no known Acquisition Plane among several planes; "
                                       "its totals are not stored")
            return None
        # TID 10002 requires the plane; with one container it can only be a single plane.
        acc.note("Acquisition Plane (DCM 113764)", "is missing or unknown in the only accumulated "
                                                   "container; taken as single plane")
        plane = "single"
    acc.where = f"accumulated dose, plane {plane}"
    return ProjectionPlane(
        plane=plane,
        dap_total_Gym2=acc.number(DAP_TOTAL, DAP_GYM2),
        dose_rp_total_Gy=acc.number(DOSE_RP_TOTAL, DOSE_GY),
        fluoro_dap_total_Gym2=acc.number(FLUORO_DAP_TOTAL, DAP_GYM2),
        fluoro_dose_rp_total_Gy=acc.number(FLUORO_DOSE_RP_TOTAL, DOSE_GY),
        total_fluoro_time_s=acc.number(TOTAL_FLUORO_TIME, SECONDS),
        acquisition_dap_total_Gym2=acc.number(ACQUISITION_DAP_TOTAL, DAP_GYM2),
        acquisition_dose_rp_total_Gy=acc.number(ACQUISITION_DOSE_RP_TOTAL, DOSE_GY),
        total_acquisition_time_s=acc.number(TOTAL_ACQUISITION_TIME, SECONDS),
        total_radiographic_frames=acc.whole_number(TOTAL_RADIOGRAPHIC_FRAMES),
        reference_point_definition=acc.meaning_or_text(REFERENCE_POINT_DEFINITION),
    )


def irradiation_event(event: Reader) -> ProjectionEvent:
    """One Irradiation Event X-Ray Data container."""
    pulse_width = event.mean(PULSE_WIDTH, MS)
    pulses = event.number(NUMBER_OF_PULSES, COUNT)
    if pulses is None:
        pulses = event.number(PHILIPS_NUMBER_OF_FRAMES, COUNT)
    laterality = laterality_item(event)
    sid_mm = event.number(SOURCE_TO_DETECTOR, MM)
    field = philips_xper.collimated_field(event, sid_mm) if not (
        event.has(COLLIMATED_FIELD_AREA) or event.has(COLLIMATED_FIELD_HEIGHT)) else philips_xper.NO_FIELD
    return ProjectionEvent(
        irradiation_event_uid=event.uid(IRRADIATION_EVENT_UID),
        plane=plane_of(event),
        datetime_started=event.datetime(DATETIME_STARTED),
        event_type=event.meaning(EVENT_TYPE),
        acquisition_protocol=event.meaning_or_text(ACQUISITION_PROTOCOL),
        anatomy=anatomy(event),
        laterality=sr.coded_meaning(laterality),
        image_view=event.meaning(IMAGE_VIEW),
        dap_Gym2=event.number(DAP, DAP_GYM2),
        dose_rp_Gy=event.number(DOSE_RP, DOSE_GY),
        entrance_exposure_at_rp_mGy=event.number(ENTRANCE_EXPOSURE_AT_RP, DOSE_MGY),
        kvp=event.mean(KVP, KV),
        tube_current_mA=tube_current_mA(event, several="mean"),
        exposure_time_ms=exposure_time_ms(event, pulse_width, pulses),
        exposure_uAs=event.total(EXPOSURE, UAS),
        pulse_width_ms=pulse_width,
        number_of_pulses=pulses,
        pulse_rate_per_s=event.number(PULSE_RATE, PER_S),
        irradiation_duration_s=event.number(IRRADIATION_DURATION, SECONDS),
        fluoro_mode=event.meaning(FLUORO_MODE),
        filters=filters(event),
        positioner_primary_angle_deg=event.number(POSITIONER_PRIMARY_ANGLE, DEG),
        positioner_secondary_angle_deg=event.number(POSITIONER_SECONDARY_ANGLE, DEG),
        distance_source_to_detector_mm=sid_mm,
        distance_source_to_isocenter_mm=event.number(SOURCE_TO_ISOCENTER, MM),
        table_longitudinal_mm=event.number(TABLE_LONGITUDINAL, MM),
        table_lateral_mm=event.number(TABLE_LATERAL, MM),
        table_height_mm=_first_present(event.number(TABLE_HEIGHT, MM),
                                       lambda: event.number(PHILIPS_TABLE_HEIGHT, MM)),
        # Standard items when sent; a Philips Allura's from its shutters otherwise (philips_xper.py).
        collimated_field_area_m2=_first_present(event.number(COLLIMATED_FIELD_AREA, M2), lambda: field.area_m2),
        collimated_field_height_mm=_first_present(event.number(COLLIMATED_FIELD_HEIGHT, MM),
                                                  lambda: field.height_mm),
        collimated_field_width_mm=_first_present(event.number(COLLIMATED_FIELD_WIDTH, MM), lambda: field.width_mm),
        exposure_index=event.number(EXPOSURE_INDEX, COUNT),
        target_exposure_index=event.number(TARGET_EXPOSURE_INDEX, COUNT),
        deviation_index=event.number(DEVIATION_INDEX, COUNT),
        comment=event.text(COMMENT),
    )


def exposure_time_ms(event: Reader, pulse_width_ms: Optional[float],
                     pulses: Optional[float]) -> Optional[float]:
    if event.has(EXPOSURE_TIME):
        return event.total(EXPOSURE_TIME, MS)
    if pulse_width_ms is not None and pulses is not None:
        return pulse_width_ms * pulses
    return None


def _first_present(value, fallback):
    return value if value is not None else fallback()


# --- RF or DX (reference §2.9, read from this object alone) ----------------------------------


def modality_of(ds: Dataset, root: Reader, projection: Projection, event_items: list[Dataset]) -> str:
    """"RF" for fluoroscopy systems, "DX" for radiography.

    The Acquisition Device Type decides when present, except on a Philips Azurion, which
    declares the wrong type. Without it (dual-purpose rooms, older systems), fluoroscopy is
    what makes RF: a non-zero fluoro total or a fluoroscopy event. A fluoro total present as 0
    (a Siemens dual room reporting a radiograph) is not fluoroscopy."""
    observer_model = sr.text(sr.find(ds, DEVICE_OBSERVER_MODEL_NAME))
    models = f"{text(ds, 'ManufacturerModelName') or ''} {observer_model or ''}"
    if "azurion" in models.lower():
        return "RF"
    device_type = root.code(ACQUISITION_DEVICE_TYPE)
    if device_type == FLUOROSCOPY_GUIDED:
        return "RF"
    if device_type in (INTEGRATED, CASSETTE_BASED):
        return "DX"
    if device_type is not None:
        root.note(ACQUISITION_DEVICE_TYPE, f"has a value doseflow does not know ({tuple(device_type)}); "
                                           "RF or DX decided from fluoroscopy content")
    return "RF" if _has_fluoroscopy(projection, event_items) else "DX"


def _has_fluoroscopy(projection: Projection, event_items: list[Dataset]) -> bool:
    for plane in projection.planes:
        fluoro = (plane.fluoro_dap_total_Gym2, plane.fluoro_dose_rp_total_Gy, plane.total_fluoro_time_s)
        if any(value for value in fluoro):  # None and 0 alike are no fluoroscopy
            return True
    return any(sr.coded_value(sr.find(item, EVENT_TYPE.codes)) in FLUOROSCOPY.codes for item in event_items)
