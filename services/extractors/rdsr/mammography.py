"""Mammography dose reports (TID 10001 with procedure Mammography): accumulated average
glandular dose per breast (TID 10005) and the irradiation events.

Where an event holds several values of kVp or tube current (GE Pristina sends one item per
exposure pulse), the first is the event's value, as the acceptance corpus records it; the
Average X-Ray Tube Current (113767) wins when sent. Exposure and exposure time add up over
pulses, as for projection events.
"""
from __future__ import annotations

from typing import Optional

from pydicom.dataset import Dataset

from services.extractors.rdsr.irradiation import (
    Problems,
    Reader,
    accumulated_and_events,
    anatomy,
    laterality_item,
    tube_current_mA,
)
from shared.units import DOSE_MGY, KV, MM, MS, NEWTON, UAS
from shared import sr
from shared.report import AccumulatedAgd, Mammography, MammographyEvent
from shared.codes import (
    ACCUMULATED_AGD,
    ACQUISITION_PROTOCOL,
    ANODE_TARGET_MATERIAL,
    AVERAGE_GLANDULAR_DOSE,
    BOTH_BREASTS,
    COMPRESSION_FORCE,
    COMPRESSION_THICKNESS,
    DATETIME_STARTED,
    ENTRANCE_EXPOSURE_AT_RP,
    EXPOSURE,
    EXPOSURE_TIME,
    FILTER_MATERIAL,
    HALF_VALUE_LAYER,
    IMAGE_VIEW,
    IRRADIATION_EVENT_UID,
    KVP,
    LATERALITY,
    LEFT,
    LEFT_BREAST,
    RIGHT,
    RIGHT_AND_LEFT,
    RIGHT_BREAST,
    XRAY_FILTERS,
    Code,
)

# Laterality, as a laterality qualifier (child of Target Region / Anatomical Structure or of
# the accumulated AGD) or as a breast, in every spelling.
_LEFT = {*LEFT.codes, *LEFT_BREAST.codes}
_RIGHT = {*RIGHT.codes, *RIGHT_BREAST.codes}
_BOTH = {*RIGHT_AND_LEFT.codes, *BOTH_BREASTS.codes}


def side_of(code: Optional[Code]) -> Optional[str]:
    """'left', 'right' or 'both' for a laterality or breast code; None when not one of them."""
    if code in _LEFT:
        return "left"
    if code in _RIGHT:
        return "right"
    if code in _BOTH:
        return "both"
    return None


_LETTER = {"left": "L", "right": "R", "both": "B"}


def read_mammography(ds: Dataset, warnings: list[str]) -> Mammography:
    problems = Problems("mammography")
    _, containers, event_items = accumulated_and_events(
        ds, problems, warnings, report="mammography dose report", without_totals="accumulated AGD")
    section = Mammography(
        accumulated_agd_mGy=accumulated_agd(containers),
        events=[irradiation_event(Reader(item, problems, n)) for n, item in enumerate(event_items, 1)],
    )
    problems.flush(warnings)
    return section


def accumulated_agd(containers: list[Reader]) -> AccumulatedAgd:
    """Accumulated AGD per breast, from the Laterality child of each 111637 item."""
    agd = AccumulatedAgd()
    for acc in containers:
        acc.where = "accumulated dose"
        for item in acc.children(ACCUMULATED_AGD):
            side = side_of(sr.coded_value(sr.find(item.item, LATERALITY.codes)))
            if side is None:
                acc.note(ACCUMULATED_AGD, "has no left, right or both-breasts Laterality; not stored")
                continue
            value = item.own_number(ACCUMULATED_AGD, DOSE_MGY)
            if getattr(agd, side) is not None:
                acc.note(ACCUMULATED_AGD, f"appears more than once for the {side} breast; the first is kept")
                continue
            setattr(agd, side, value)
    return agd


def irradiation_event(event: Reader) -> MammographyEvent:
    side = side_of(sr.coded_value(laterality_item(event)))
    return MammographyEvent(
        irradiation_event_uid=event.uid(IRRADIATION_EVENT_UID),
        datetime_started=event.datetime(DATETIME_STARTED),
        laterality=_LETTER.get(side) if side else None,
        view=event.meaning(IMAGE_VIEW),
        acquisition_protocol=event.meaning_or_text(ACQUISITION_PROTOCOL),
        agd_mGy=event.number(AVERAGE_GLANDULAR_DOSE, DOSE_MGY),
        entrance_exposure_at_rp_mGy=event.number(ENTRANCE_EXPOSURE_AT_RP, DOSE_MGY),
        kvp=event.number(KVP, KV),
        tube_current_mA=tube_current_mA(event, several="first"),
        exposure_time_ms=event.total(EXPOSURE_TIME, MS),
        exposure_uAs=event.total(EXPOSURE, UAS),
        compression_thickness_mm=event.number(COMPRESSION_THICKNESS, MM),
        compression_force_N=event.number(COMPRESSION_FORCE, NEWTON),
        anode_target=event.meaning(ANODE_TARGET_MATERIAL),
        filter_material=filter_material(event),
        half_value_layer_mm=event.number(HALF_VALUE_LAYER, MM),
        target_region=anatomy(event),
    )


def filter_material(event: Reader) -> Optional[str]:
    """The filter material(s) of the event's X-Ray Filters containers: one material, or
    several different ones joined with ' | ' in document order."""
    materials: list[str] = []
    for f in event.children(XRAY_FILTERS):
        material = f.meaning(FILTER_MATERIAL)
        if material and material not in materials:
            materials.append(material)
    return " | ".join(materials) or None
