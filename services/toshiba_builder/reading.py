"""Reading a dose summary: OCR its pages under several image preparations, parse each reading
with its family's parser, cross-check it, and accept the values two readings agree on.

OCR misreads digits (0/9/8, 3/8), so a summary is read under several preparations and a reading
is only accepted when two of them agree on every dose value, and when its rows' DLP add up to
the screen's own total (`screen.cross_check`)."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from pydicom.dataset import Dataset

from services.toshiba_builder.ge_screen import is_ge_text, parse_ge_screen
from services.toshiba_builder.ocr import PREPARATIONS, Preparation, read_screen_text
from services.toshiba_builder.pages import DoseSummary, Family, find_dose_summaries
from services.toshiba_builder.screen import DoseScreen, check_scanning_lengths, cross_check, ctdivol_consistency
from services.toshiba_builder.toshiba_screen import parse_toshiba_screen
from shared.dicom import text
from shared.outcome import Failed


def parse_dose_screen(screen_text: str, family: Optional[Family] = None) -> DoseScreen:
    """Parse the OCR text of a dose summary (pages joined in order) with its family's parser
    (from the pages' headers, else from the text) and cross-check it.

    Raises Failed when no total or no acquisition row can be read, when a row other than a
    localizer lacks CTDIvol or DLP, or when the rows' DLP do not add up to the total. A scanning
    length that DLP / CTDIvol rules out is left empty with a note (`check_scanning_lengths`)."""
    if family is None:
        family = "ge" if is_ge_text(screen_text) else "toshiba"
    screen = parse_ge_screen(screen_text) if family == "ge" else parse_toshiba_screen(screen_text)
    cross_check(screen)
    screen.warnings.extend(ctdivol_consistency(screen))
    check_scanning_lengths(screen)
    return screen


SECONDARY_FIELDS = (("start_position_mm", "end_position_mm"), ("exposure_time_s",))
# Words of a row's notes about each secondary value: dropped with the value's own note when the
# readings settle it.
_NOTE_WORDS = {"start_position_mm": ("scan range", "scanning length", "position"), "exposure_time_s": ("exposure time",)}


def read_summary(summary: DoseSummary, preparations: Sequence[Preparation] = PREPARATIONS) -> DoseScreen:
    """OCR and parse one summary (page texts joined in page order) under every preparation, and
    settle the readings (`settle_readings`). A reading that does not parse or fails the
    cross-check does not vote.

    Every preparation is read, even when the first two agree: two preparations can share a
    misread (Noto Sans Mono 14 px: "-40.50" read "-48.50" at x2 and x3, right at x1.5), and a
    scan range has no total to catch it, so the third reading is what shows the disagreement."""
    readings: list[DoseScreen] = []
    problems: list[str] = []
    for prep in preparations:
        page_text = "\n".join(read_screen_text(page, prep) for page in summary.pages)
        try:
            readings.append(parse_dose_screen(page_text, summary.family))
        except Failed as exc:
            problems.append(f"x{prep.scale:g}: {exc.reason}")
    return _with_pages(settle_readings(readings, problems, f"dose summary in series {summary.series_instance_uid}"),
                       summary)


def settle_readings(readings: Sequence[DoseScreen], problems: Sequence[str] = (), where: str = "dose summary") \
        -> DoseScreen:
    """One screen from several readings of it. The dose record (events, type, CTDIvol, DLP,
    phantom, totals) must be the same in at least two readings, or the summary fails (Failed).
    A secondary value (scan range, exposure time), which no total checks, is kept only where at
    least two readings read it and no reading read it otherwise; else it is left empty with a
    warning. Readings of another row structure do not vote."""
    if not readings:
        raise Failed(f"{where}: no OCR reading parsed: " + "; ".join(problems))
    for screen in readings:
        agreeing = [r for r in readings if r.dose_key() == screen.dose_key()]
        if len(agreeing) >= 2:
            structure = _structure(screen)
            return _settle_secondary(agreeing[0], [r for r in readings if _structure(r) == structure])
    described = " vs ".join(_describe(r) for r in readings)
    raise Failed(f"{where}: OCR readings disagree ({described})"
                 + (f"; unparsed: {'; '.join(problems)}" if problems else ""))


def _structure(screen: DoseScreen) -> tuple:
    return tuple(r.acquisition_type for r in screen.rows)


def _settle_secondary(base: DoseScreen, voters: list[DoseScreen]) -> DoseScreen:
    """`base` with each secondary value kept only where two voters read it alike and none read it
    otherwise (a reading that read nothing there abstains)."""
    result = base.model_copy(deep=True)
    for index, row in enumerate(result.rows):
        for fields in SECONDARY_FIELDS:
            votes = [tuple(getattr(r.rows[index], f) for f in fields) for r in voters]
            read = [v for v in votes if None not in v]
            agreed = read[0] if len(read) >= 2 and len(set(read)) == 1 else None
            words = _NOTE_WORDS[fields[0]]
            if agreed is not None:
                row.notes = [n for n in row.notes if not any(w in n for w in words)]  # outvoted
            elif read:
                row.notes = [n for n in row.notes if not any(w in n for w in words)]
                shown = ", ".join(sorted({"/".join(f"{x:g}" for x in v) for v in read}))
                what = "scan range (start/end, mm)" if fields[0] == "start_position_mm" else "exposure time (s)"
                row.notes.append(f"{what} read as {shown} by {len(read)} of {len(votes)} OCR readings, not two "
                                 "alike and none otherwise; left empty")
            for f, v in zip(fields, agreed or (None,) * len(fields)):
                setattr(row, f, v)
    return result


def _describe(screen: DoseScreen) -> str:
    rows = ", ".join(f"{r.ctdivol_mGy}/{r.dlp_mGycm}" for r in screen.rows)
    return f"rows CTDIvol/DLP [{rows}] total {screen.total_dlp_mGycm}"


def _with_pages(screen: DoseScreen, summary: DoseSummary) -> DoseScreen:
    """The accepted reading, with the pages it was read from; each row's notes become warnings."""
    rows = [row.model_copy(update={"summary_uid": summary.series_instance_uid}) for row in screen.rows]
    notes = [f"dose screen row {index} ({row.scan_type.title()}): {note}"
             for index, row in enumerate(rows, 1) for note in row.notes]
    return screen.model_copy(update={
        "rows": rows,
        "warnings": screen.warnings + notes,
        "series_instance_uid": summary.series_instance_uid,
        "page_sop_instance_uids": [text(p, "SOPInstanceUID") or "" for p in summary.pages],
        "page_sop_class_uids": [text(p, "SOPClassUID") or "" for p in summary.pages],
    })


def read_dose_screens(datasets: Iterable[Dataset]) -> list[DoseScreen]:
    """Every dose summary of a study, read and cross-checked, in acquisition order."""
    return [read_summary(s) for s in find_dose_summaries(datasets)]


