"""The `extract.ct_philips` route: the "Dose Info" secondary capture of Philips CT scanners that
send no RDSR (Gemini, Brilliance, Big Bore) to a DoseReport.

The dose data sit in ExposureDoseSequence (0040,030E), one item per acquisition, with the DLPs
in ELSCINT1 private attributes. The object gives its events no UIDs, so each event gets a UID
derived from the object's SOPInstanceUID and the item's position: importing the same object
twice gives the same events (the reference makes random ones, so re-imports double up).
"""
from __future__ import annotations

import uuid
from typing import Optional

from pydicom.dataset import Dataset

from services.extractors.common import DEFAULT_OPTIONS, ExtractOptions, count_out_of_range
from services.extractors.image_header import add_seconds, item_meaning, report_header
from shared import codes
from shared.header import HeaderReader
from shared.dicom import SECONDARY_CAPTURE, iso_datetime, person_name, text
from shared.outcome import Ignored
from shared.report import Ct, CtEvent, CtSource, DoseReport
from shared import routes

ROUTE = routes.CT_PHILIPS.name

ELSCINT = "ELSCINT1"
# The exposure items repeat ELSCINT1's elements at (gggg,10xx) without a creator element of their
# own, and anonymisers drop creators: so the ELSCINT1 attributes below are read with
# assume_first_block (no creator in the group at all: the first block is taken as ELSCINT1's;
# another creator's block is never read as ours).
DLP_GROUP, DLP_OFFSET = 0x00E1, 0x21  # (00E1,xx21) DLP, mGy·cm: total at top level, per item
PROTOCOL_FILE_GROUP, PROTOCOL_FILE_OFFSET = 0x00E1, 0x61  # (00E1,xx61) protocol file name
PHANTOM_GROUP, PHANTOM_OFFSET = 0x01E1, 0x26  # (01E1,xx26) CTDI phantom, "16 CM" / "32 CM"

# AcquisitionType (0018,9302) defined terms and the CID 10013 meanings of their codes.
ACQUISITION_TYPES = {
    "CONSTANT_ANGLE": codes.CONSTANT_ANGLE_ACQUISITION.meaning,
    "SPIRAL": codes.SPIRAL_ACQUISITION.meaning,
    "SEQUENCED": codes.SEQUENCED_ACQUISITION.meaning,
    "STATIONARY": codes.STATIONARY_ACQUISITION.meaning,
    "FREE": codes.FREE_ACQUISITION.meaning,
}
PHANTOMS = {"16 CM": "head16", "32 CM": "body32"}
MS_PER_S = 1000.0
UA_PER_MA = 1000.0

# Namespace of doseflow's derived event UIDs (a fixed, arbitrary UUID: changing it would change
# every derived UID and break re-import dedup).
EVENT_UID_NAMESPACE = uuid.UUID("6f1c3f0e-4b7a-5d2e-9a41-2d6c1f0b8e53")


def check_is_dose_info(ds: Dataset) -> None:
    sop_class = text(ds, "SOPClassUID")
    manufacturer = text(ds, "Manufacturer")
    series = text(ds, "SeriesDescription")
    if sop_class != SECONDARY_CAPTURE:
        raise Ignored(f"SOP class {sop_class} is not Secondary Capture: not a Philips CT "
                      "Dose Info object")
    if (manufacturer or "").upper() != "PHILIPS" or (series or "").upper() != "DOSE INFO":
        raise Ignored(f"Secondary Capture from manufacturer {manufacturer!r} with series "
                      f"description {series!r} is not a Philips CT Dose Info object")


def event_uid(sop_instance_uid: str, item_index: int) -> str:
    """A UID of the form 2.25.<uuid as integer> (PS3.5 B.2), the same for the same object and
    exposure item on every import."""
    name = f"{sop_instance_uid}/ExposureDoseSequence/{item_index}"
    return f"2.25.{uuid.uuid5(EVENT_UID_NAMESPACE, name).int}"


def phantom(reader: HeaderReader, *fallbacks: HeaderReader) -> Optional[str]:
    for r in (reader, *fallbacks):
        value = r.private_text(PHANTOM_GROUP, ELSCINT, PHANTOM_OFFSET, assume_first_block=True)
        if value is None:
            continue
        key = " ".join(value.upper().split())
        if key in PHANTOMS:
            return PHANTOMS[key]
        r.warn(f"CTDI phantom (01E1,1026) [{ELSCINT}]: {value!r} is neither '16 CM' nor "
               "'32 CM'; left empty")
        return None
    return None


def ct_event(item: Dataset, index: int, sop_uid: str, top: HeaderReader,
             warnings: list[str]) -> CtEvent:
    reader = HeaderReader(item, warnings, where=f"ExposureDoseSequence item {index + 1}: ")
    acquisition = reader.text("AcquisitionType")
    acquisition_type = ACQUISITION_TYPES.get((acquisition or "").upper())
    if acquisition_type is None:
        reader.warn(f"AcquisitionType (0018,9302) {acquisition!r} is not a known acquisition "
                    "type; left empty")
    time_ms = reader.number("ExposureTime")
    current_ua = reader.number("XRayTubeCurrentInuA")
    current_ma = (current_ua / UA_PER_MA if current_ua is not None
                  else reader.number("XRayTubeCurrent"))
    dlp = reader.private_number(DLP_GROUP, ELSCINT, DLP_OFFSET, "DLP", assume_first_block=True)
    if dlp is None and reader.private_text(DLP_GROUP, ELSCINT, DLP_OFFSET, assume_first_block=True) is None:
        reader.warn(f"no DLP (00E1,1021) [{ELSCINT}] for this acquisition; left empty")
    return CtEvent(
        irradiation_event_uid=event_uid(sop_uid, index),
        datetime_started=iso_datetime(reader.raw("AcquisitionDateTime")),
        acquisition_protocol=reader.text("SeriesDescription"),
        acquisition_type=acquisition_type,
        exposure_time_s=time_ms / MS_PER_S if time_ms is not None else None,
        scanning_length_mm=reader.number("ScanLength"),
        nominal_single_collimation_mm=reader.number("SingleCollimationWidth"),
        nominal_total_collimation_mm=reader.number("TotalCollimationWidth"),
        pitch_factor=reader.number("SpiralPitchFactor"),
        number_of_xray_sources=1,
        ctdivol_mGy=reader.number("CTDIvol"),
        ctdiw_phantom=phantom(reader, top),
        dlp_mGycm=dlp,
        sources=[CtSource(id="A", kvp=reader.number("KVP"), tube_current_mA=current_ma)],
    )


def irradiation_span(events: list[CtEvent]) -> tuple[Optional[str], Optional[str]]:
    """First start, and the last start plus that acquisition's exposure time (in seconds: the
    reference adds a thousandth of it)."""
    timed = [e for e in events if e.datetime_started]
    if not timed:
        return None, None
    first = min(timed, key=lambda e: e.datetime_started)
    last = max(timed, key=lambda e: e.datetime_started)
    end = add_seconds(last.datetime_started, last.exposure_time_s or 0.0)
    return first.datetime_started, end


def study_comment(ds: Dataset, top: HeaderReader) -> Optional[str]:
    parts = [(label, value) for label, value in (
        ("StudyDescription", text(ds, "StudyDescription")),
        ("Comments on radiation dose", text(ds, "CommentsOnRadiationDose")),
        ("ProtocolFilename", top.private_text(PROTOCOL_FILE_GROUP, ELSCINT, PROTOCOL_FILE_OFFSET,
                                              assume_first_block=True)),
    ) if value]
    return ". ".join(f"{label}: {value}" for label, value in parts) or None


def extract(ds: Dataset, options: ExtractOptions = DEFAULT_OPTIONS) -> DoseReport:
    check_is_dose_info(ds)
    report = report_header(ds, ROUTE, options)
    top = HeaderReader(ds, report.warnings)
    study = report.study
    study.modality = "CT"
    # Philips puts the scan protocol where a study description belongs; the real study
    # description goes into the comment.
    study.study_description = text(ds, "ProtocolName")
    study.referring_physician_name = person_name(ds, "RequestingPhysician")
    study.procedure = item_meaning(ds, "RequestAttributesSequence", "ScheduledProtocolCodeSequence")
    study.requested_procedure = text(ds, "RequestedProcedureDescription")
    study.comment = study_comment(ds, top)

    sop_uid = text(ds, "SOPInstanceUID") or ""
    try:
        items = [item for item in ds.get("ExposureDoseSequence") or [] if isinstance(item, Dataset)]
    except Exception:
        items = []
        report.warnings.append("ExposureDoseSequence (0040,030E) could not be read")
    events = [ct_event(item, i, sop_uid, top, report.warnings) for i, item in enumerate(items)
              if "AcquisitionType" in item]
    total_dlp = top.private_number(DLP_GROUP, ELSCINT, DLP_OFFSET, "total DLP", assume_first_block=True)
    total_events = top.number("TotalNumberOfExposures")
    if total_events is not None and (total_events != int(total_events) or count_out_of_range(total_events)):
        report.warnings.append(f"TotalNumberOfExposures (0040,0301): {total_events:g} is not a count of "
                               "exposures; left empty")
        total_events = None
    if not events and total_dlp is None:
        raise Ignored("Philips Dose Info object with no exposure items and no total DLP")
    start, end = irradiation_span(events)
    report.ct = Ct(total_dlp_mGycm=total_dlp,
                   total_events=int(total_events) if total_events is not None else None,
                   start_of_xray_irradiation=start, end_of_xray_irradiation=end, events=events)
    return report

