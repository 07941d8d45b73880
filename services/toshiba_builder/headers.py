"""What the CT image headers of a legacy study add to its dose screen (spec openrem-extraction §7
step 4, toshiba.md §3).

The dose screen gives CTDIvol and DLP per acquisition but no protocol, kVp, pitch or collimation.
The CT images of the same acquisition carry those, and (Toshiba) the acquisition's CTDIvol and
DLP in private tags, which is how a screen row finds its images. One `HeaderSample` is kept per
acquisition (AcquisitionNumber, AcquisitionTime), plus one `StudyHeader` per study.

Both are small plain records: the builder service stores them as JSON while a study waits to
be quiet, so it never has to keep the images.
"""
from __future__ import annotations

from typing import Iterable, Optional

from pydantic import BaseModel, ConfigDict
from pydicom.dataset import Dataset

from services.extractors.common import (DEFAULT_OPTIONS, ExtractOptions, equipment_from_header,
                                        first_code_meaning, patient_from_header, study_from_header)
from services.extractors.privacy import protect
from shared.dicom import CT_IMAGE, ENHANCED_CT_IMAGE, number, text
from shared.header import HeaderReader
from shared.report import Equipment, Patient, Study

TOSHIBA_CREATOR = "TOSHIBA_MEC_CT3"
TOSHIBA_GROUP = 0x7005
# Toshiba private elements, group 7005, as offsets within the creator's block.
DETECTOR_ROW_WIDTH = 0x08  # (7005,xx08) DS, single detector row width in mm
ACTIVE_ROWS = 0x09  # (7005,xx09) LO, one '0'/'1' per detector row
PITCH_FACTOR = 0x23  # (7005,xx23) DS, helical pitch
DLP = 0x40  # (7005,xx40) FD, acquisition DLP in mGy.cm
CTDIVOL = 0x63  # (7005,xx63) FD, acquisition CTDIvol in mGy (read as such by the reference)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeaderSample(_Record):
    """One acquisition as its CT images describe it. Units in the names."""

    acquisition_number: Optional[int] = None
    acquisition_time: Optional[str] = None  # TM as written, e.g. "101812"
    acquisition_date: Optional[str] = None
    series_instance_uid: Optional[str] = None
    sop_instance_uid: Optional[str] = None  # the first image the sample was read from
    localizer: bool = False  # ImageType says LOCALIZER
    protocol_name: Optional[str] = None
    exposure_time_ms: Optional[float] = None  # (0018,1150)
    revolution_time_s: Optional[float] = None  # (0018,9305)
    kvp: Optional[float] = None
    pitch_factor: Optional[float] = None  # (0018,9311), else Toshiba (7005,xx23)
    nominal_single_collimation_mm: Optional[float] = None  # Toshiba only
    nominal_total_collimation_mm: Optional[float] = None  # Toshiba only
    ctdivol_mGy: Optional[float] = None  # Toshiba (7005,xx63), else (0018,9345)
    dlp_mGycm: Optional[float] = None  # Toshiba (7005,xx40); no standard fallback
    xray_modulation_type: Optional[str] = None  # (0018,9323)
    warnings: list[str] = []

    @property
    def key(self) -> tuple:
        return (self.acquisition_number, self.acquisition_time)


class StudyHeader(_Record):
    """Study, patient and equipment of a legacy study: the first non-empty value across its
    objects (spec §7 step 4), patient identifiers already hashed per configuration."""

    study: Study
    patient: Patient = Patient()
    equipment: Equipment = Equipment()


def is_ct_image(ds: Dataset) -> bool:
    return (text(ds, "SOPClassUID") or "") in (CT_IMAGE, ENHANCED_CT_IMAGE)


def is_toshiba(ds: Dataset) -> bool:
    return "toshiba" in (text(ds, "Manufacturer") or "").lower()


def header_sample(ds: Dataset) -> Optional[HeaderSample]:
    """The acquisition an image belongs to, or None for an object that is not a CT image."""
    if not is_ct_image(ds):
        return None
    warnings: list[str] = []
    reader = HeaderReader(ds, warnings)
    image_type = ds.get("ImageType") or []
    sample = HeaderSample(
        acquisition_number=_int(reader.number("AcquisitionNumber")),
        acquisition_time=text(ds, "AcquisitionTime"),
        acquisition_date=text(ds, "AcquisitionDate"),
        series_instance_uid=text(ds, "SeriesInstanceUID"),
        sop_instance_uid=text(ds, "SOPInstanceUID"),
        localizer="LOCALIZER" in [str(v).strip().upper() for v in image_type],
        protocol_name=text(ds, "ProtocolName"),
        exposure_time_ms=reader.number("ExposureTime"),
        revolution_time_s=reader.number("RevolutionTime"),
        kvp=reader.number("KVP"),
        pitch_factor=reader.number("SpiralPitchFactor"),
        xray_modulation_type=text(ds, "ExposureModulationType"),
    )
    toshiba = is_toshiba(ds)
    if sample.pitch_factor is None:
        sample.pitch_factor = number(reader.private_text(TOSHIBA_GROUP, TOSHIBA_CREATOR, PITCH_FACTOR))
    ctdivol = reader.private_double(TOSHIBA_GROUP, TOSHIBA_CREATOR, CTDIVOL, "CTDIvol (7005,xx63)")
    sample.ctdivol_mGy = ctdivol if ctdivol is not None else reader.number("CTDIvol")
    sample.dlp_mGycm = reader.private_double(TOSHIBA_GROUP, TOSHIBA_CREATOR, DLP, "DLP (7005,xx40)")
    if toshiba:
        single = number(reader.private_text(TOSHIBA_GROUP, TOSHIBA_CREATOR, DETECTOR_ROW_WIDTH))
        sample.nominal_single_collimation_mm = single
        rows = reader.private_text(TOSHIBA_GROUP, TOSHIBA_CREATOR, ACTIVE_ROWS)
        if single is not None and rows:
            # The active-row pattern: every '1' is one detector row of `single` mm in use.
            sample.nominal_total_collimation_mm = round(rows.count("1") * single, 6)
    sample.warnings = warnings
    return sample


def _int(value: Optional[float]) -> Optional[int]:
    return None if value is None else int(value)


def harvest_samples(datasets: Iterable[Dataset]) -> list[HeaderSample]:
    """One sample per (AcquisitionNumber, AcquisitionTime), in acquisition order. Images of the
    same acquisition (several slices, a second reconstruction) fill what the first left empty."""
    return merge_samples(s for s in (header_sample(ds) for ds in datasets) if s is not None)


def merge_samples(samples: Iterable[HeaderSample]) -> list[HeaderSample]:
    """Samples of possibly the same acquisitions (e.g. stored one image at a time) merged by key."""
    by_key: dict[tuple, HeaderSample] = {}
    for sample in samples:
        kept = by_key.get(sample.key)
        if kept is None:
            by_key[sample.key] = sample.model_copy(deep=True)
            continue
        for name in HeaderSample.model_fields:
            if getattr(kept, name) in (None, [], False) and getattr(sample, name) not in (None, [], False):
                setattr(kept, name, getattr(sample, name))
    return sorted(by_key.values(), key=_acquisition_order)


def _acquisition_order(sample: HeaderSample) -> tuple:
    return (sample.acquisition_date or "", sample.acquisition_time or "",
            sample.acquisition_number if sample.acquisition_number is not None else -1)


def study_header(ds: Dataset, options: ExtractOptions = DEFAULT_OPTIONS) -> StudyHeader:
    """The study-level values one object carries."""
    study = study_from_header(ds, date_fallback=False)
    # As the reference: StudyDescription, else the procedure code's meaning; the requested
    # procedure is its description, else the requested (or performed) procedure code's meaning.
    study.study_description = study.study_description or first_code_meaning(ds, "ProcedureCodeSequence")
    study.requested_procedure = (text(ds, "RequestedProcedureDescription")
                                 or first_code_meaning(ds, "RequestedProcedureCodeSequence")
                                 or first_code_meaning(ds, "ProcedureCodeSequence"))
    study.modality = "CT"
    header = StudyHeader(study=study, patient=patient_from_header(ds, study.study_date, options),
                         equipment=equipment_from_header(ds))
    protect(header, options)
    return header


def merge_study_headers(headers: Iterable[StudyHeader]) -> StudyHeader:
    """The first non-empty value of every field across the study's objects."""
    headers = list(headers)
    if not headers:
        raise ValueError("no study header to merge")
    merged = headers[0].model_copy(deep=True)
    for other in headers[1:]:
        for section in ("study", "patient", "equipment"):
            target, source = getattr(merged, section), getattr(other, section)
            for name in type(target).model_fields:
                if getattr(target, name) in (None, "") and getattr(source, name) not in (None, ""):
                    setattr(target, name, getattr(source, name))
    return merged


def harvest_study_header(datasets: Iterable[Dataset], options: ExtractOptions = DEFAULT_OPTIONS) -> StudyHeader:
    return merge_study_headers(study_header(ds, options) for ds in datasets)
