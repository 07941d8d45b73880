"""Routing rules: which extractor queue an object goes to, decided from its header alone.

Pure: a header Dataset (read with stop_before_pixels) and the routing settings in, a route
name out, or `Ignored` with the reason. The rules follow the reference system's acceptance
tests per importer and its DICOM-store dispatch order (spec §1.1, §8.2).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import UID

from shared import dicom
from shared.dicom import text
from shared.outcome import Ignored
from shared.settings import DEFAULT_TOSHIBA_MODELS
from shared.codes import SIEMENS_RADIATION_SUMMARY, X_RAY_RADIATION_DOSE_REPORT
from shared.sr import concept_name
from shared import routes


MG_IMAGES = (dicom.MG_FOR_PRESENTATION, dicom.MG_FOR_PROCESSING)
RADIOGRAPHIC_IMAGES = (dicom.CR_IMAGE, dicom.DX_FOR_PRESENTATION, dicom.DX_FOR_PROCESSING)
TOSHIBA_CANDIDATE_CLASSES = (dicom.CT_IMAGE, dicom.ENHANCED_CT_IMAGE, dicom.SECONDARY_CAPTURE)



@dataclass(frozen=True)
class RoutingRules:
    # "Manufacturer/Model" pairs whose CT objects and secondary captures are legacy dose-screen
    # studies for the Toshiba builder; each part matches case-insensitively as a prefix.
    toshiba_models: tuple[str, ...] = field(default=DEFAULT_TOSHIBA_MODELS)
    # CT axial images go to the Dw stage (SSDE from the images, issue 17); off, they are ignored.
    measure_ct_images: bool = True

    def is_toshiba_candidate(self, manufacturer: str | None, model: str | None) -> bool:
        if not manufacturer or not model:
            return False
        for pair in self.toshiba_models:
            make, _, model_prefix = pair.partition("/")
            if manufacturer.lower().startswith(make.strip().lower()) and \
                    model.lower().startswith(model_prefix.strip().lower()):
                return True
        return False


def _sop_class_name(uid: str | None) -> str:
    if not uid:
        return "no SOP Class UID"
    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else uid


def classify(ds: Dataset, rules: RoutingRules = RoutingRules()) -> str:
    """The name of this object's route (shared/routes.py)."""
    sop_class = text(ds, "SOPClassUID")
    modality = text(ds, "Modality")
    # Through text(): a single-valued ImageType comes back from pydicom as a str, not a list.
    image_type = [v.strip().upper() for v in (text(ds, "ImageType") or "").split("\\")]

    if sop_class in (dicom.XRAY_RADIATION_DOSE_SR, dicom.ENHANCED_SR):
        root = concept_name(ds)
        if root in (X_RAY_RADIATION_DOSE_REPORT, SIEMENS_RADIATION_SUMMARY):
            return routes.RDSR.name
        raise Ignored(f"{_sop_class_name(sop_class)} whose root concept "
                      f"{'/'.join(root) if root else 'is missing'} is not an X-Ray Radiation Dose Report")
    if sop_class == dicom.RADIOPHARMACEUTICAL_RADIATION_DOSE_SR:
        raise Ignored("Radiopharmaceutical Radiation Dose SR: nuclear medicine dose is not imported")
    if sop_class in MG_IMAGES:
        return routes.MG_IMAGE.name
    if sop_class == dicom.SECONDARY_CAPTURE and modality == "MG" and "ORIGINAL" in image_type:
        return routes.MG_IMAGE.name  # e.g. Hologic tomosynthesis proprietary projection
    if sop_class in RADIOGRAPHIC_IMAGES:
        return routes.DX_IMAGE.name

    manufacturer, model = text(ds, "Manufacturer"), text(ds, "ManufacturerModelName")
    if sop_class == dicom.SECONDARY_CAPTURE and manufacturer and "philips" in manufacturer.lower() \
            and (text(ds, "SeriesDescription") or "").lower() == "dose info":
        return routes.CT_PHILIPS.name
    if sop_class in TOSHIBA_CANDIDATE_CLASSES and rules.is_toshiba_candidate(manufacturer, model):
        return routes.TOSHIBA.name
    if sop_class == dicom.CT_IMAGE and "AXIAL" in image_type and "LOCALIZER" not in image_type \
            and rules.measure_ct_images:
        # No dose in it, but its patient gives the Dw for the SSDE of its event (the Dw stage
        # samples and measures; whether it holds pixel data is not known before reading them).
        return routes.CT_DW.name
    raise Ignored(f"no dose route takes {_sop_class_name(sop_class)}, modality {modality or 'none'}, "
                  f"from {manufacturer or 'unknown manufacturer'} {model or ''}".rstrip())
