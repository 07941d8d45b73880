"""The `extract.dx_image` route: one radiographic image (CR, DX For Presentation/Processing;
Modality CR, DX or PX) to a DoseReport with one projection event.

An image is one exposure: the event is identified by the image's SOPInstanceUID, and the
report's single plane holds that one image's totals (its DAP, one radiographic frame), so the
writer's merge can add planes of disjoint images. There is no dose at the reference point.
"""
from __future__ import annotations

from typing import Optional

from pydicom.dataset import Dataset

from services.extractors.common import (
    DEFAULT_OPTIONS,
    ExtractOptions,
    first_code_meaning,
    first_text,
)
from services.extractors.image_header import (
    acquisition_datetime,
    exposure_time_ms,
    exposure_uAs,
    field_area_m2,
    filters,
    item_meaning,
    report_header,
    tube_current_mA,
)
from shared import codes, sr
from shared.header import HeaderReader
from shared.dicom import CR_IMAGE, DX_FOR_PRESENTATION, DX_FOR_PROCESSING, text
from shared.outcome import Ignored
from shared.report import DoseReport, Projection, ProjectionEvent, ProjectionPlane
from shared import routes

ROUTE = routes.DX_IMAGE.name

# ImageAndFluoroscopyAreaDoseProduct (0018,115E) is defined in dGy·cm²; 1 Gy·m² = 1e5 dGy·cm².
DGYCM2_PER_GYM2 = 1e5
# Kodak DR 7500 sends DistanceSourceToDetector in dm.
MM_PER_DM = 100.0
# A radiograph is a stationary acquisition (DCM 113611); the image does not say so, we do,
# so that image events read like the events of a DX RDSR.
STATIONARY_ACQUISITION = codes.STATIONARY_ACQUISITION_EVENT.meaning
_LATERALITY = {"R": codes.RIGHT.meaning, "L": codes.LEFT.meaning, "B": codes.RIGHT_AND_LEFT.meaning}
# ViewPosition terms and the SNOMED meanings of their view codes (R-10206, R-10214, R-10236,
# R-10232), used when the image has no ViewCodeSequence.
_VIEW_POSITIONS = {"AP": "antero-posterior", "PA": "postero-anterior", "LL": "left lateral",
                   "RL": "right lateral"}
_IMAGE_MODALITIES = ("CR", "DX", "PX")


def check_is_radiograph(ds: Dataset) -> None:
    sop_class = text(ds, "SOPClassUID")
    if sop_class not in (CR_IMAGE, DX_FOR_PRESENTATION, DX_FOR_PROCESSING):
        raise Ignored(f"SOP class {sop_class} is not a CR or Digital X-Ray image")


def modality(ds: Dataset, warnings: list[str]) -> str:
    value = text(ds, "Modality")
    if value in _IMAGE_MODALITIES:
        return value
    fallback = "CR" if text(ds, "SOPClassUID") == CR_IMAGE else "DX"
    warnings.append(f"Modality (0008,0060) {value!r} is not CR, DX or PX; {fallback} taken from "
                    "the SOP class")
    return fallback


def study_description(ds: Dataset) -> Optional[str]:
    return first_text(ds, "StudyDescription", "SeriesDescription") or \
        first_code_meaning(ds, "ProcedureCodeSequence")


def procedure(ds: Dataset) -> Optional[str]:
    return first_code_meaning(ds, "ProcedureCodeSequence") or \
        first_text(ds, "ProtocolName", "StudyDescription", "SeriesDescription")


def requested_procedure(ds: Dataset) -> Optional[str]:
    """The request, from the most to the least specific place it is written. Units that send no
    request at all (Carestream DRX-Revolution, Canon CXDI) end at StudyDescription."""
    request = sr.first_item(ds, "RequestAttributesSequence")
    return (first_code_meaning(ds, "RequestedProcedureCodeSequence")
            or item_meaning(ds, "RequestAttributesSequence", "RequestedProcedureCodeSequence")
            or (text(request, "RequestedProcedureDescription") if request is not None else None)
            or first_code_meaning(ds, "ProcedureCodeSequence")
            or text(ds, "RequestedProcedureDescription")
            or first_code_meaning(ds, "PerformedProtocolCodeSequence")
            or text(ds, "StudyDescription"))


def _is_toshiba_radrex(ds: Dataset) -> bool:
    return (text(ds, "Manufacturer") or "").upper() == "TOSHIBA_MEC" and \
        "TM_TFD_1.0" in (text(ds, "SoftwareVersions") or "").upper()


def acquisition_protocol(ds: Dataset) -> Optional[str]:
    # Toshiba Radrex writes the protocol into ImageComments.
    if _is_toshiba_radrex(ds) and text(ds, "ImageComments"):
        return text(ds, "ImageComments")
    return first_text(ds, "ProtocolName", "SeriesDescription") or \
        first_code_meaning(ds, "PerformedProtocolCodeSequence")


def comment(ds: Dataset) -> Optional[str]:
    parts = [p for p in (text(ds, "SeriesDescription"),
                         text(ds, "ExposureControlModeDescription")) if p]
    return ", ".join(parts) or None


def image_view(reader: HeaderReader) -> Optional[str]:
    coded = first_code_meaning(reader.ds, "ViewCodeSequence")
    if coded:
        return coded
    position = reader.text("ViewPosition")
    return _VIEW_POSITIONS.get(position.upper()) if position else None


def laterality(reader: HeaderReader) -> Optional[str]:
    value = reader.text("ImageLaterality")
    return _LATERALITY.get(value.upper()) if value else None


def _is_kodak_dr7500(ds: Dataset) -> bool:
    return "kodak" in (text(ds, "Manufacturer") or "").lower() and \
        "dr 7500" in (text(ds, "ManufacturerModelName") or "").lower()


def source_to_detector_mm(ds: Dataset, reader: HeaderReader) -> Optional[float]:
    sid = reader.number("DistanceSourceToDetector")
    if sid is not None and _is_kodak_dr7500(ds):
        return sid * MM_PER_DM
    return sid


def projection_event(ds: Dataset, warnings: list[str]) -> ProjectionEvent:
    reader = HeaderReader(ds, warnings)
    dap_dGycm2 = reader.number("ImageAndFluoroscopyAreaDoseProduct")
    return ProjectionEvent(
        irradiation_event_uid=text(ds, "SOPInstanceUID"),
        plane="single",
        datetime_started=acquisition_datetime(ds, study_fallback=True, warnings=warnings),
        event_type=STATIONARY_ACQUISITION,
        acquisition_protocol=acquisition_protocol(ds),
        anatomy=first_code_meaning(ds, "AnatomicRegionSequence"),
        laterality=laterality(reader),
        image_view=image_view(reader),
        dap_Gym2=dap_dGycm2 / DGYCM2_PER_GYM2 if dap_dGycm2 is not None else None,
        entrance_exposure_at_rp_mGy=reader.number("EntranceDoseInmGy"),
        kvp=reader.number("KVP"),
        tube_current_mA=tube_current_mA(reader),
        exposure_time_ms=exposure_time_ms(reader),
        exposure_uAs=exposure_uAs(reader),
        filters=filters(reader),
        positioner_primary_angle_deg=reader.number("PositionerPrimaryAngle"),
        positioner_secondary_angle_deg=reader.number("PositionerSecondaryAngle"),
        distance_source_to_detector_mm=source_to_detector_mm(ds, reader),
        distance_source_to_isocenter_mm=reader.number("DistanceSourceToIsocenter"),
        table_height_mm=reader.number("TableHeight"),
        collimated_field_area_m2=field_area_m2(reader),
        exposure_index=reader.number("ExposureIndex"),
        target_exposure_index=reader.number("TargetExposureIndex"),
        deviation_index=reader.number("DeviationIndex"),
        comment=comment(ds),
    )


def extract(ds: Dataset, options: ExtractOptions = DEFAULT_OPTIONS) -> DoseReport:
    check_is_radiograph(ds)
    report = report_header(ds, ROUTE, options)
    study = report.study
    study.modality = modality(ds, report.warnings)
    study.study_description = study_description(ds)
    study.procedure = procedure(ds)
    study.requested_procedure = requested_procedure(ds)
    event = projection_event(ds, report.warnings)
    plane = ProjectionPlane(plane="single", dap_total_Gym2=event.dap_Gym2,
                            total_radiographic_frames=1)
    report.projection = Projection(planes=[plane], events=[event])
    return report
