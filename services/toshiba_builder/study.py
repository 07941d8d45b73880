"""One legacy Toshiba study, from collected objects to a real RDSR: the steps the builder
service and `doseflow import --as toshiba` share.

- `collect(ds, path)`: what the builder keeps of one object while its study waits to be quiet
  (plain JSON-able data: kind, study header, per-acquisition header sample), never the pixels.
- `build(objects, read_page)`: reads the dose pages (the only pixels ever needed), OCRs and
  parses the screens, enriches rows from the header samples, and returns the DoseReport and an
  X-Ray Radiation Dose SR built from it with doseflow's RDSR writer.
- `header_report(objects)`: for a study that has an RDSR of its own, a report holding only the
  images' study/equipment attributes; stored beside the RDSR it fills the RDSR's empty study-level
  fields (study description, requested procedure, software versions, serial number) without
  overwriting anything the RDSR states.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict
from pydicom import dcmwrite
from pydicom.dataset import Dataset

from services.extractors.common import DEFAULT_OPTIONS, ExtractOptions
from services.toshiba_builder.build import build_report
from services.toshiba_builder.headers import (HeaderSample, StudyHeader, header_sample, is_ct_image,
                                              merge_samples, merge_study_headers, study_header)
from services.toshiba_builder.pages import is_dose_page
from services.toshiba_builder.reading import read_dose_screens
from services.toshiba_builder.screen import merge_screens
from shared.dicom import text
from shared.outcome import Failed
from services.toshiba_builder.rdsr_writer import ct_rdsr_from_report, uid_from
from shared.codes import DERIVED_FROM_HUMAN_READABLE_REPORTS
from shared.report import DoseReport, Source
from shared import routes

ROUTE = routes.TOSHIBA.name


class Collected(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    path: str
    kind: Literal["dose_page", "image", "other"]
    header: StudyHeader
    sample: Optional[HeaderSample] = None


def collect(ds: Dataset, path: str, options: ExtractOptions = DEFAULT_OPTIONS) -> Collected:
    """What the builder keeps of one object (from its header only)."""
    sop, study = text(ds, "SOPInstanceUID"), text(ds, "StudyInstanceUID")
    if not sop or not study:
        raise Failed("no SOPInstanceUID or StudyInstanceUID: the object cannot join a study")
    if is_dose_page(ds):
        kind, sample = "dose_page", None
    elif is_ct_image(ds):
        kind, sample = "image", header_sample(ds)
    else:
        kind, sample = "other", None
    return Collected(sop_instance_uid=sop, sop_class_uid=text(ds, "SOPClassUID") or "", study_instance_uid=study,
                     path=path, kind=kind, header=study_header(ds, options), sample=sample)


def built_rdsr_uid(objects: Sequence[Collected]) -> str:
    """The built RDSR's SOP Instance UID, derived from the study and the objects it was built
    from: rebuilding the same objects gives the same UID (the writer stores it once); a study
    re-built with more objects gives a new one whose events (same derived UIDs) replace the old."""
    uids = sorted(o.sop_instance_uid for o in objects)
    return uid_from("toshiba-rdsr", objects[0].study_instance_uid, *uids)


def build(objects: Sequence[Collected], read_page: Callable[[str], Dataset]) -> tuple[DoseReport, Dataset]:
    """The study's report and RDSR. Raises Failed (no summary, unreadable screen, rows not
    adding up to the total) with the reason; nothing is built then."""
    pages = [read_page(o.path) for o in objects if o.kind == "dose_page"]
    if not pages:
        raise Failed(f"no dose summary among the study's {len(objects)} objects (a secondary capture with "
                     "ImageType exactly DERIVED\\SECONDARY)")
    screen = merge_screens(read_dose_screens(pages))
    samples = merge_samples(o.sample for o in objects if o.sample is not None)
    report = build_report(screen, samples, merge_study_headers(o.header for o in objects))
    identity = (str(pages[0].get("PatientName", "") or ""), str(pages[0].get("PatientID", "") or ""))
    rdsr = ct_rdsr_from_report(report, sop_instance_uid=built_rdsr_uid(objects), patient_identity=identity,
                               dose_source=DERIVED_FROM_HUMAN_READABLE_REPORTS)
    return report, rdsr


def header_report(objects: Sequence[Collected]) -> Optional[DoseReport]:
    """Study-level attributes of the images, as a report with no dose sections (see module doc)."""
    images = [o for o in objects if o.kind == "image"] or list(objects)
    if not images:
        return None
    header = merge_study_headers(o.header for o in objects)
    first = min(images, key=lambda o: o.sop_instance_uid)
    return DoseReport(study=header.study, patient=header.patient, equipment=header.equipment,
                      sources=[Source(route=ROUTE, sop_class_uid=first.sop_class_uid,
                                      sop_instance_uid=first.sop_instance_uid)])


def write_rdsr(rdsr: Dataset, out_dir: Path) -> Path:
    """Write atomically (temp name, fsync, rename) as <out>/<study uid>/<sop uid>.dcm."""
    folder = Path(out_dir) / str(rdsr.StudyInstanceUID)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{rdsr.SOPInstanceUID}.dcm"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".building-", suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as f:
            dcmwrite(f, rdsr, enforce_file_format=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return final


def has_own_rdsr(source_routes: Sequence[tuple[str, str]], built_uids: set[str]) -> bool:
    """Whether a study's stored objects include an RDSR the scanner made (not one we built)."""
    return any(route == routes.RDSR.name and sop not in built_uids for route, sop in source_routes)


def warnings_report(objects: Sequence[Collected], report: DoseReport, rdsr_uid: str,
                    rebuilt: bool = False) -> Optional[DoseReport]:
    """The build's warnings (rows no image matched, lengths or values left empty) as a report
    with no dose sections, stored beside the built RDSR, which has no place for them: the stored
    study's `warnings` then carry them. Its source UID is derived from the built RDSR's, so a
    rebuild brings its own, and the study is assembled from the last one only (writer assembly):
    a rebuild replaces the earlier build's warnings. None when the build had nothing to say,
    unless the study was built before (then an empty one clears the earlier warnings)."""
    if not report.warnings and not rebuilt:
        return None
    page = next(o for o in objects if o.kind == "dose_page")
    return DoseReport(study=report.study.model_copy(), warnings=list(report.warnings),
                      sources=[Source(route=ROUTE, sop_class_uid=page.sop_class_uid,
                                      sop_instance_uid=uid_from("toshiba-build-warnings", rdsr_uid))])


def no_summary_reason(objects: Sequence[Collected]) -> str:
    """Why an image-only legacy study is not built: the reason recorded for each of its objects."""
    equipment = merge_study_headers(o.header for o in objects).equipment
    model = " ".join(v for v in (equipment.manufacturer, equipment.model) if v) or "an unknown model"
    images = sum(1 for o in objects if o.kind == "image")
    return f"legacy CT study without a dose summary page: {images} image{'s' * (images != 1)} of {model}"


class Finished(BaseModel):
    """How a study's build ended: `built` (with the RDSR), `skipped` (it has its own RDSR: the
    header report fills its gaps), `no_summary` (images only, no dose page: its objects are
    ignored, and a dose page arriving later re-opens it) or `failed` (with the reason; nothing
    is stored)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    status: Literal["built", "skipped", "no_summary", "failed"]
    reason: str
    rdsr: Optional[Dataset] = None
    header_report: Optional[DoseReport] = None
    warnings_report: Optional[DoseReport] = None


def finish(objects: Sequence[Collected], stored_sources: Sequence[tuple[str, str]], built_uids: set[str],
           read_page: Callable[[str], Dataset]) -> Finished:
    """Decide and build one quiet study. `stored_sources` are the (route, SOP UID) of the
    study's stored objects; `built_uids` the RDSRs this builder made for it before."""
    if has_own_rdsr(stored_sources, built_uids):
        return Finished(status="skipped", header_report=header_report(objects),
                        reason="the study has its own RDSR: its dose screen is not used; empty study-level "
                               "fields are filled from the image headers")
    if not any(o.kind == "dose_page" for o in objects):
        return Finished(status="no_summary", reason=no_summary_reason(objects))
    try:
        report, rdsr = build(objects, read_page)
    except Failed as exc:
        return Finished(status="failed", reason=exc.reason)
    return Finished(status="built", rdsr=rdsr, reason=f"built into RDSR {rdsr.SOPInstanceUID}",
                    warnings_report=warnings_report(objects, report, str(rdsr.SOPInstanceUID),
                                                    rebuilt=bool(built_uids)))
