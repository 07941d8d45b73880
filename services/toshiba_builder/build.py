"""A legacy CT study's DoseReport from its dose screen and its CT image headers.

One CT event per screen row, in screen order; totals as the screen states them. A row takes
protocol, kVp, pitch, collimation, modulation and rotation time from the image headers of the
same acquisition, found by CTDIvol and DLP (Toshiba writes both into its images' private tags).
Other makes (GE LightSpeed Plus and the like) have no such tags: their rows are not matched and
the report holds what the screen says.
"""
from __future__ import annotations

import uuid
from typing import Iterable, Optional, Sequence

from pydicom.dataset import Dataset

from services.extractors.common import DEFAULT_OPTIONS, ExtractOptions
from services.toshiba_builder.headers import HeaderSample, StudyHeader, harvest_samples, harvest_study_header
from services.toshiba_builder.reading import read_dose_screens
from services.toshiba_builder.screen import LOCALIZER, DoseScreen, ScreenRow, merge_screens
from shared.dicom import date_time
from shared.report import Ct, CtEvent, CtSource, DoseReport, Source
from shared import routes

ROUTE = routes.TOSHIBA.name
# Event UIDs are derived, not random, so that building the same study twice gives the same
# events and the writer stores them once.
EVENT_UID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5c7d-9e0f-1a2b3c4d5e6f")


def event_uid(study_instance_uid: str, summary_uid: Optional[str], row_index: int) -> str:
    """`2.25.<uuid5 as integer>` (PS3.5 B.2) of study, summary series and row position."""
    name = f"{study_instance_uid}|{summary_uid or ''}|{row_index}"
    return f"2.25.{uuid.uuid5(EVENT_UID_NAMESPACE, name).int}"


def _rounding(decimals: int) -> float:
    """Matching tolerance for a value printed with `decimals` decimals: the screen rounds what
    the images store (58.3 on screen for 58.27 or 58.34 in the header), so any header value
    that rounds to the printed one matches; 1e-6 absorbs float noise at the .x5 boundary."""
    return 0.5 * 10.0 ** -decimals + 1e-6


def matches(row: ScreenRow, sample: HeaderSample) -> bool:
    """Same acquisition: CTDIvol and DLP both present and both equal within the screen's rounding."""
    if None in (row.ctdivol_mGy, row.dlp_mGycm, sample.ctdivol_mGy, sample.dlp_mGycm):
        return False
    tolerance = _rounding(row.dose_decimals)
    return (abs(row.ctdivol_mGy - sample.ctdivol_mGy) <= tolerance
            and abs(row.dlp_mGycm - sample.dlp_mGycm) <= tolerance)


def match_rows(rows: Sequence[ScreenRow], samples: Sequence[HeaderSample]) -> list[Optional[HeaderSample]]:
    """The header sample of each row, or None.

    Dose rows match by CTDIvol and DLP (`matches`), in screen order; a row prefers a sample no
    earlier row took (two identical acquisitions map to their images in acquisition order), then
    the nearest values, then the earliest acquisition. A sample may serve two rows only when
    nothing else matches (one acquisition whose images share a key).
    Localizer rows carry no dose to match by: they are paired in order with the localizer
    images' samples, and only when the counts are equal (otherwise which is which is a guess)."""
    ordered = list(samples)
    taken: set[int] = set()
    chosen: list[Optional[HeaderSample]] = []
    for row in rows:
        candidates = [i for i, s in enumerate(ordered) if matches(row, s)]
        if not candidates:
            chosen.append(None)
            continue
        best = min(candidates, key=lambda i: (i in taken, _distance(row, ordered[i]), i))
        taken.add(best)
        chosen.append(ordered[best])
    localizer_rows = [i for i, row in enumerate(rows) if row.acquisition_type == LOCALIZER and chosen[i] is None]
    localizer_samples = [s for s in ordered if s.localizer]
    if localizer_rows and len(localizer_rows) == len(localizer_samples):
        for i, sample in zip(localizer_rows, localizer_samples):
            chosen[i] = sample
    return chosen


def _distance(row: ScreenRow, sample: HeaderSample) -> float:
    return abs(row.ctdivol_mGy - sample.ctdivol_mGy) + abs(row.dlp_mGycm - sample.dlp_mGycm)


def exposure_time_per_rotation_s(sample: HeaderSample) -> Optional[float]:
    """RevolutionTime (0018,9305) in s; without it the reference's ExposureTime (0018,1150) ms / 1000."""
    if sample.revolution_time_s is not None:
        return sample.revolution_time_s
    if sample.exposure_time_ms is not None:
        return sample.exposure_time_ms / 1000.0
    return None


def _event(row: ScreenRow, sample: Optional[HeaderSample], uid: str,
           default_phantom: Optional[str]) -> CtEvent:
    event = CtEvent(
        irradiation_event_uid=uid,
        acquisition_type=row.acquisition_type,
        exposure_time_s=row.exposure_time_s,
        scanning_length_mm=row.scanning_length_mm,
        ctdivol_mGy=row.ctdivol_mGy,
        dlp_mGycm=row.dlp_mGycm,
        ctdiw_phantom=(row.phantom or default_phantom) if row.dlp_mGycm is not None else None,
    )
    if sample is None or not sample.protocol_name:
        # The screen's block title is OCR text ("Head Rout ine"): kept as a comment, never as the
        # protocol name audits group by.
        event.comment = f"dose screen protocol: {row.protocol}" if row.protocol else None
    if sample is not None:
        event.acquisition_protocol = sample.protocol_name
        event.pitch_factor = sample.pitch_factor
        event.nominal_single_collimation_mm = sample.nominal_single_collimation_mm
        event.nominal_total_collimation_mm = sample.nominal_total_collimation_mm
        event.xray_modulation_type = sample.xray_modulation_type
        source = CtSource(kvp=sample.kvp, exposure_time_per_rotation_s=exposure_time_per_rotation_s(sample))
        if source.kvp is not None or source.exposure_time_per_rotation_s is not None:
            event.sources = [source]
    return event


def build_report(screen: DoseScreen, samples: Sequence[HeaderSample], study_header: StudyHeader) -> DoseReport:
    """The study's DoseReport: study, patient and equipment from the headers, one CT event per
    screen row, the screen's DLP total and event count."""
    study = study_header.study.model_copy()
    study.modality = "CT"
    study_uid = study.study_instance_uid
    # A row with no phantom of its own (a layout without suffixes) takes the summary's only one.
    default_phantom = None
    if screen.dlp_head_mGycm is None or screen.dlp_body_mGycm is None:
        default_phantom = screen.total_phantom
    chosen = match_rows(screen.rows, samples)
    events = [_event(row, sample, uid, default_phantom)
              for row, sample, uid in zip(screen.rows, chosen, _event_uids(study_uid, screen.rows))]
    warnings: list[str] = list(screen.warnings)
    matchable = any(s.dlp_mGycm is not None for s in samples)
    for index, (row, sample) in enumerate(zip(screen.rows, chosen), 1):
        if sample is None and matchable and row.acquisition_type != LOCALIZER:
            warnings.append(
                f"dose screen row {index} ({row.scan_type.title()}, CTDIvol {row.ctdivol_mGy} mGy, DLP "
                f"{row.dlp_mGycm} mGy.cm): no CT image with the same Toshiba CTDIvol (7005,xx63) and DLP "
                "(7005,xx40); protocol, kVp, pitch and collimation unknown")
        if sample is not None:
            warnings.extend(f"image {sample.sop_instance_uid}: {w}" for w in sample.warnings)
    sources = [Source(route=ROUTE, sop_class_uid=cls, sop_instance_uid=sop)
               for cls, sop in zip(screen.page_sop_class_uids, screen.page_sop_instance_uids)]
    return DoseReport(
        study=study,
        patient=study_header.patient.model_copy(),
        equipment=study_header.equipment.model_copy(),
        sources=sources,
        ct=Ct(total_dlp_mGycm=screen.total_dlp_mGycm, total_events=len(events),
              start_of_xray_irradiation=_first_acquisition(samples), events=events),
        warnings=warnings,
    )


def _event_uids(study_uid: str, rows: Sequence[ScreenRow]) -> list[str]:
    """Each row's UID from its own summary and its place in that summary, so a summary read
    alone or merged with a later one gives its events the same UIDs."""
    seen: dict[Optional[str], int] = {}
    uids = []
    for row in rows:
        index = seen.get(row.summary_uid, 0)
        seen[row.summary_uid] = index + 1
        uids.append(event_uid(study_uid, row.summary_uid, index))
    return uids


def _first_acquisition(samples: Iterable[HeaderSample]) -> Optional[str]:
    """Irradiation began no later than the study's first acquisition (the localizer)."""
    starts = sorted(d for d in (date_time(s.acquisition_date, s.acquisition_time) for s in samples) if d)
    return starts[0] if starts else None


def build_study_report(datasets: Iterable[Dataset], options: ExtractOptions = DEFAULT_OPTIONS) -> DoseReport:
    """Everything at once, for `doseflow import` and tests: every object of one study in,
    the report out. Several dose summaries are read and merged."""
    datasets = list(datasets)
    screen = merge_screens(read_dose_screens(datasets))
    return build_report(screen, harvest_samples(datasets), harvest_study_header(datasets, options))
