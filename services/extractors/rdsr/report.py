"""The root of a dose SR: which kind of report it is, its header, and which section reader
reads its content tree."""
from __future__ import annotations

from typing import Optional

from pydicom.dataset import Dataset

from services.extractors.common import (
    ExtractOptions,
    equipment_from_header,
    first_text,
    patient_from_header,
    source_of,
    study_from_header,
)
from shared import sr
from shared.dicom import ENHANCED_SR, XRAY_RADIATION_DOSE_SR, text
from shared.outcome import Failed, Ignored
from shared.report import DoseReport
from shared.codes import (
    CT_ACCUMULATED,
    DEVICE_OBSERVER_MANUFACTURER,
    DEVICE_OBSERVER_MODEL_NAME,
    DEVICE_OBSERVER_SERIAL_NUMBER,
    DEVICE_OBSERVER_UID,
    MAMMOGRAPHY,
    PROCEDURE_REPORTED,
    PROJECTION_XRAY,
    SIEMENS_RADIATION_SUMMARY,
    X_RAY_RADIATION_DOSE_REPORT,
)
from shared import routes

ROUTE = routes.RDSR.name


def template_of(ds: Dataset) -> Optional[str]:
    """'10011' (CT), '10001' (projection X-ray) or None when the root declares no template."""
    template = sr.first_item(ds, "ContentTemplateSequence")
    return text(template, "TemplateIdentifier") if template is not None else None


def kind_of(ds: Dataset) -> str:
    """'ct', 'projection', 'mammography' or 'varic'. Falls back on content when the template
    identifier is missing: a CT accumulated container means CT (the reference rejects such a CT
    report; we read it), a procedure of Projection X-Ray (GE OEC Elite MiniView) means TID 10001."""
    if sr.is_concept(ds, SIEMENS_RADIATION_SUMMARY):
        return "varic"
    template = template_of(ds)
    procedure = sr.coded_value(sr.find(ds, PROCEDURE_REPORTED))
    if template == "10011" or (template is None and sr.find(ds, CT_ACCUMULATED) is not None):
        return "ct"
    if template == "10001" or (template is None and (procedure == PROJECTION_XRAY
                                                     or procedure in MAMMOGRAPHY.codes)):
        return "mammography" if procedure in MAMMOGRAPHY.codes else "projection"
    raise Failed(f"dose report with unsupported or missing template identifier ({template!r}) "
                 "and no CT or projection content to recognise it by")


def check_is_dose_report(ds: Dataset) -> None:
    sop_class = text(ds, "SOPClassUID")
    if sop_class not in (XRAY_RADIATION_DOSE_SR, ENHANCED_SR):
        raise Ignored(f"SOP class {sop_class} is not an X-Ray Radiation Dose SR or Enhanced SR")
    if not (sr.is_concept(ds, X_RAY_RADIATION_DOSE_REPORT) or sr.is_concept(ds, SIEMENS_RADIATION_SUMMARY)):
        concept = sr.concept_name(ds)
        raise Ignored(f"structured report whose root concept {tuple(concept) if concept else None} "
                      "is not an X-Ray Radiation Dose Report")


def extract_report(ds: Dataset, options: ExtractOptions) -> DoseReport:
    check_is_dose_report(ds)
    kind = kind_of(ds)
    study = study_from_header(ds, date_fallback=True)
    if not study.study_instance_uid:
        raise Failed("no StudyInstanceUID (0020,000D)")
    if study.requested_procedure is None:
        request = sr.first_item(ds, "RequestAttributesSequence")
        study.requested_procedure = (text(request, "RequestedProcedureDescription") if request else None) \
            or first_text(ds, "RequestedProcedureDescription")
    equipment = equipment_from_header(ds)
    equipment.device_observer_uid = sr.uid(sr.find(ds, DEVICE_OBSERVER_UID))
    # The device observer context names the device too; it fills what the header leaves empty
    # (a Philips Allura gives its model only there), so that the device key has it.
    for name, code in (("manufacturer", DEVICE_OBSERVER_MANUFACTURER), ("model", DEVICE_OBSERVER_MODEL_NAME),
                       ("serial_number", DEVICE_OBSERVER_SERIAL_NUMBER)):
        if getattr(equipment, name) is None:
            setattr(equipment, name, sr.text(sr.find(ds, code)) or None)
    report = DoseReport(study=study, patient=patient_from_header(ds, study.study_date, options),
                        equipment=equipment, sources=[source_of(ds, ROUTE)])

    if kind == "ct":
        from services.extractors.rdsr import ct

        report.ct = ct.read_ct(ds, report.warnings)
        report.study.modality = "CT"
    elif kind == "mammography":
        from services.extractors.rdsr import mammography

        report.mammography = mammography.read_mammography(ds, report.warnings)
        report.study.modality = "MG"
    elif kind == "projection":
        from services.extractors.rdsr import projection

        report.projection, report.study.modality = projection.read_projection(ds, report.warnings)
    else:
        from services.extractors.rdsr import varic

        report.projection = varic.read_varic(ds, report.warnings)
        report.study.modality = "RF"
    return report
