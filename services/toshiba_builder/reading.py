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


def read_summary(summary: DoseSummary, preparations: Sequence[Preparation] = PREPARATIONS) -> DoseScreen:
    """OCR and parse one summary (page texts joined in page order) until two readings agree.

    Readings come from different image preparations, so they do not share every mistake. Two
    readings that agree on every value end the search. Otherwise, once every preparation has
    been read, the dose record (events, type, CTDIvol, DLP, phantom, totals) must be the same in
    at least two readings, or the summary fails; a secondary value (scan range, exposure time)
    on which no two of those readings agree is left empty, with a warning. A reading that does
    not parse or fails the cross-check does not vote."""
    readings: list[DoseScreen] = []
    problems: list[str] = []
    for prep in preparations:
        page_text = "\n".join(read_screen_text(page, prep) for page in summary.pages)
        try:
            screen = parse_dose_screen(page_text, summary.family)
        except Failed as exc:
            problems.append(f"x{prep.scale:g}: {exc.reason}")
            continue
        if any(earlier.full_key() == screen.full_key() for earlier in readings):
            return _with_pages(screen, summary)
        readings.append(screen)
    where = f"dose summary in series {summary.series_instance_uid}"
    if not readings:
        raise Failed(f"{where}: no OCR reading parsed: " + "; ".join(problems))
    for screen in readings:
        agreeing = [r for r in readings if r.dose_key() == screen.dose_key()]
        if len(agreeing) >= 2:
            return _with_pages(_settle_secondary(agreeing), summary)
    described = " vs ".join(_describe(r) for r in readings)
    raise Failed(f"{where}: OCR readings disagree ({described})"
                 + (f"; unparsed: {'; '.join(problems)}" if problems else ""))


def _settle_secondary(readings: list[DoseScreen]) -> DoseScreen:
    """The first reading, each secondary value kept only where two readings agree on it."""
    result = readings[0].model_copy(deep=True)
    for index, row in enumerate(result.rows):
        for fields in SECONDARY_FIELDS:
            votes = [tuple(getattr(r.rows[index], f) for f in fields) for r in readings]
            agreed = next((v for v in votes if votes.count(v) >= 2), None)
            if agreed is None:
                for f in fields:
                    setattr(row, f, None)
                result.warnings.append(f"dose screen row {index + 1} ({row.scan_type.title()}): "
                                       f"{' and '.join(fields)} read differently each time; left empty")
            else:
                for f, v in zip(fields, agreed):
                    setattr(row, f, v)
                if fields[0] == "start_position_mm" and None not in agreed:
                    row.notes = []  # a reading that could not read the range is outvoted
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


