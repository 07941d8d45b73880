"""The `extract.mg_image` route: one mammography image (For Presentation or For Processing, or a
Hologic DBT proprietary projection sent as Secondary Capture) to a DoseReport with one event.

The image's dose attributes describe its own exposure: the event is identified by the image's
SOPInstanceUID, and the accumulated AGD of this one-image report is that event's AGD for its
side. Assembling several images of a study (and dropping the For Processing copy of an
exposure) is the writer's merge.
"""
from __future__ import annotations

from typing import Optional

from pydicom.dataset import Dataset

from services.extractors.common import DEFAULT_OPTIONS, ExtractOptions, first_code_meaning
from services.extractors.image_header import (
    ANODE_TARGETS,
    FILTER_MATERIALS,
    acquisition_datetime,
    exposure_time_ms,
    exposure_uAs,
    material_meaning,
    report_header,
    tube_current_mA,
)
from shared.header import HeaderReader
from shared.dicom import MG_FOR_PRESENTATION, MG_FOR_PROCESSING, SECONDARY_CAPTURE, text
from shared.outcome import Ignored
from shared.report import AccumulatedAgd, Mammography, MammographyEvent
from shared import routes

ROUTE = routes.MG_IMAGE.name

# OrganDose (0040,0316) is in dGy; AGD is reported in mGy.
MGY_PER_DGY = 100.0
_SIDES = {"L": "L", "R": "R", "B": "B"}


def check_is_mammography_image(ds: Dataset) -> None:
    sop_class = text(ds, "SOPClassUID")
    if sop_class in (MG_FOR_PRESENTATION, MG_FOR_PROCESSING):
        return
    if sop_class == SECONDARY_CAPTURE:
        modality = text(ds, "Modality")
        image_type = [t.strip().upper() for t in (text(ds, "ImageType") or "").split("\\")]
        if modality == "MG" and "ORIGINAL" in image_type:
            return  # Hologic DBT proprietary projection
        raise Ignored(f"Secondary Capture with Modality {modality!r} and ImageType "
                      f"{text(ds, 'ImageType')!r} is not a mammography exposure (the MG route "
                      "takes an SC only with Modality MG and ORIGINAL in ImageType)")
    raise Ignored(f"SOP class {sop_class} is not a Digital Mammography X-Ray image "
                  "(For Presentation or For Processing) nor an MG Secondary Capture")


def laterality(reader: HeaderReader) -> Optional[str]:
    """ImageLaterality (0020,0062), else Laterality (0020,0060) (Hologic projections have only
    the series-level one). 'U' (unpaired) and unknown values give None."""
    value = reader.text("ImageLaterality") or reader.text("Laterality")
    if value is None:
        return None
    side = _SIDES.get(value.strip().upper())
    if side is None and value.strip().upper() != "U":
        reader.warn(f"laterality {value!r} is not L, R or B; left empty")
    return side


def mammography_event(ds: Dataset, warnings: list[str]) -> MammographyEvent:
    reader = HeaderReader(ds, warnings)
    organ_dose_dGy = reader.number("OrganDose")
    return MammographyEvent(
        irradiation_event_uid=text(ds, "SOPInstanceUID"),
        datetime_started=acquisition_datetime(ds, study_fallback=False, warnings=warnings),
        laterality=laterality(reader),
        view=first_code_meaning(ds, "ViewCodeSequence"),
        acquisition_protocol=reader.text("ProtocolName"),
        agd_mGy=organ_dose_dGy * MGY_PER_DGY if organ_dose_dGy is not None else None,
        entrance_exposure_at_rp_mGy=reader.number("EntranceDoseInmGy"),
        kvp=reader.number("KVP"),
        tube_current_mA=tube_current_mA(reader),
        exposure_time_ms=exposure_time_ms(reader),
        exposure_uAs=exposure_uAs(reader),
        compression_thickness_mm=reader.number("BodyPartThickness"),
        compression_force_N=reader.number("CompressionForce"),
        anode_target=material_meaning(reader.text("AnodeTargetMaterial"), ANODE_TARGETS, reader,
                                      "AnodeTargetMaterial"),
        filter_material=material_meaning(reader.text("FilterMaterial"), FILTER_MATERIALS, reader,
                                         "FilterMaterial"),
        half_value_layer_mm=reader.number("HalfValueLayer"),
        target_region=first_code_meaning(ds, "AnatomicRegionSequence"),
    )


def accumulated(event: MammographyEvent, warnings: list[str]) -> AccumulatedAgd:
    """This image's AGD on its side; nothing when the side or the dose is unknown."""
    if event.agd_mGy is None:
        return AccumulatedAgd()
    if event.laterality is None:
        warnings.append("AGD present but the image has no laterality: not added to a side's "
                        "accumulated AGD")
        return AccumulatedAgd()
    side = {"L": "left", "R": "right", "B": "both"}[event.laterality]
    return AccumulatedAgd(**{side: event.agd_mGy})


def extract(ds: Dataset, options: ExtractOptions = DEFAULT_OPTIONS):
    check_is_mammography_image(ds)
    report = report_header(ds, ROUTE, options)
    report.study.modality = "MG"
    # The reference files the protocol as the study's procedure for mammography images.
    report.study.procedure = text(ds, "ProtocolName")
    event = mammography_event(ds, report.warnings)
    report.mammography = Mammography(accumulated_agd_mGy=accumulated(event, report.warnings),
                                     events=[event])
    return report
