"""A legacy CT dose summary as read from its screen: the `DoseScreen` every parser returns, the
cross-checks that catch misreads, and the merge of several summaries of one study. Pure.

Scanners without RDSR (old Toshiba Aquilion, some GE) keep their dose summary only as a picture:
secondary captures of the console's dose screen. Reading one is split in steps, one module each:
`pages` (which objects are dose pages, grouped per summary), `ocr` (pixels to text),
`toshiba_screen` and `ge_screen` (text to `DoseScreen`, one parser per screen family, with
`screen_text` for what they share), and `reading` (OCR under several preparations, parse, vote,
cross-check).
"""
from __future__ import annotations

from typing import Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from shared.outcome import Failed

Phantom = Literal["head16", "body32"]

# Acquisition-type CodeMeanings (CID 10013) for the scan-type words of the screens
# (PixelMed CTScanType, spec §2.5 and §5). Toshiba's NORMAL is its axial scan; VOLUME and DYNAMIC
# keep the table still; SCANOSCOPE / SCOUT are the localizer.
SCAN_TYPES: dict[str, str] = {
    "HELICAL": "Spiral Acquisition",
    "SPIRAL": "Spiral Acquisition",
    "NORMAL": "Sequenced Acquisition",
    "AXIAL": "Sequenced Acquisition",
    "DYNAMIC": "Stationary Acquisition",
    "VOLUME": "Stationary Acquisition",
    "CINE": "Stationary Acquisition",
    "STATIONARY": "Stationary Acquisition",
    "SCANOSCOPE": "Constant Angle Acquisition",
    "SCANOGRAM": "Constant Angle Acquisition",
    "SCOUT": "Constant Angle Acquisition",
    "SMARTVIEW": "Free Acquisition",
}
LOCALIZER = "Constant Angle Acquisition"

# Reference convention (spec §2.5, §6): a summary with head and body subtotals reports
# head x 0.5 + body, as a body-phantom total.
HEAD_TO_BODY_DLP = 0.5


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScreenRow(_Model):
    """One acquisition as the screen shows it. Values are as printed (mGy, mGy.cm, mm, s)."""

    scan_type: str  # the screen's word, upper case: HELICAL, SCANOSCOPE, ...
    acquisition_type: str  # CodeMeaning, e.g. "Spiral Acquisition"
    protocol: Optional[str] = None  # the block's protocol line, e.g. "Chest/Abdomen/Pelvis"
    block: Optional[int] = None  # the block number printed before the protocol
    exposure_time_s: Optional[float] = None
    ctdivol_mGy: Optional[float] = None
    dlp_mGycm: Optional[float] = None
    phantom: Optional[Phantom] = None
    start_position_mm: Optional[float] = None
    end_position_mm: Optional[float] = None
    # Decimals printed for CTDIvol/DLP: the rounding the matching and the cross-check allow for.
    dose_decimals: int = 1
    # Other (start, end) pairs the OCR text equally allows (a GE position whose letter may have been
    # lost, ge_screen): the length is kept only when DLP / CTDIvol leaves one (check_scanning_lengths).
    position_alternatives: list[tuple[float, float]] = Field(default_factory=list)
    summary_uid: Optional[str] = None  # SeriesInstanceUID of the summary's pages (read_summary)
    # What the reading noticed about this row (a value it could not read and left empty).
    notes: list[str] = Field(default_factory=list)

    @property
    def scanning_length_mm(self) -> Optional[float]:
        if self.start_position_mm is None or self.end_position_mm is None:
            return None
        return round(abs(self.end_position_mm - self.start_position_mm), 6)


class DoseScreen(_Model):
    """A parsed dose summary: rows in screen order and the screen's DLP totals."""

    rows: list[ScreenRow] = Field(default_factory=list)
    dlp_head_mGycm: Optional[float] = None  # (Head): subtotal
    dlp_body_mGycm: Optional[float] = None  # (Body): subtotal
    dlp_unassigned_mGycm: Optional[float] = None  # a total printed with no phantom (Eff. DLP, GE)
    total_decimals: int = 1
    # CTDIvol printed beside the DLP totals, per phantom: only checked against the rows, as its
    # meaning (sum or maximum of the rows) differs between screens.
    ctdivol_head_mGy: Optional[float] = None
    ctdivol_body_mGy: Optional[float] = None
    warnings: list[str] = Field(default_factory=list)
    # Filled by read_summary: which objects this screen was read from.
    series_instance_uid: Optional[str] = None
    page_sop_instance_uids: list[str] = Field(default_factory=list)
    page_sop_class_uids: list[str] = Field(default_factory=list)

    @property
    def total_dlp_mGycm(self) -> Optional[float]:
        head, body, other = self.dlp_head_mGycm, self.dlp_body_mGycm, self.dlp_unassigned_mGycm
        if head is None and body is None:
            return other
        if head is not None and body is not None:
            return round(head * HEAD_TO_BODY_DLP + body, 6)
        return head if head is not None else body

    @property
    def total_phantom(self) -> Optional[Phantom]:
        if self.dlp_body_mGycm is not None:
            return "body32"
        if self.dlp_head_mGycm is not None:
            return "head16"
        return None

    def dose_key(self) -> tuple:
        """The dose record proper, for comparing two OCR readings: events, their type, CTDIvol,
        DLP and phantom, and the totals."""
        rows = tuple((r.acquisition_type, r.ctdivol_mGy, r.dlp_mGycm, r.phantom) for r in self.rows)
        return rows, self.dlp_head_mGycm, self.dlp_body_mGycm, self.dlp_unassigned_mGycm

    def full_key(self) -> tuple:
        """The dose record and the secondary values (scan range, exposure time); protocol text
        is left out, its OCR spacing differs between readings without changing any value."""
        return self.dose_key(), tuple((r.start_position_mm, r.end_position_mm, r.exposure_time_s)
                                      for r in self.rows)


def merge_screens(screens: Sequence[DoseScreen]) -> DoseScreen:
    """Several summaries of one study as one: rows appended in order, subtotals added per
    phantom (so the combined total follows the same head x 0.5 + body rule)."""
    if not screens:
        raise Failed("no dose screen to merge")
    if len(screens) == 1:
        return screens[0]

    def add(values: list[Optional[float]]) -> Optional[float]:
        present = [v for v in values if v is not None]
        return round(sum(present), 6) if present else None

    return DoseScreen(
        rows=[r for s in screens for r in s.rows],
        dlp_head_mGycm=add([s.dlp_head_mGycm for s in screens]),
        dlp_body_mGycm=add([s.dlp_body_mGycm for s in screens]),
        dlp_unassigned_mGycm=add([s.dlp_unassigned_mGycm for s in screens]),
        total_decimals=max(s.total_decimals for s in screens),
        warnings=[w for s in screens for w in s.warnings],
        series_instance_uid=screens[0].series_instance_uid,
        page_sop_instance_uids=[u for s in screens for u in s.page_sop_instance_uids],
        page_sop_class_uids=[u for s in screens for u in s.page_sop_class_uids],
    )





def _tolerance(row_decimals: Sequence[int], total_decimals: int) -> float:
    """How far a sum of rounded values may sit from a rounded total: half a unit in the last
    printed place of each value and of the total, plus float noise."""
    return sum(0.5 * 10.0 ** -d for d in (*row_decimals, total_decimals)) + 1e-6


def cross_check(screen: DoseScreen) -> None:
    """The rows' DLP must add up to the screen's total, per phantom when the screen gives
    subtotals per phantom. A screen with no total, or a row other than a localizer without
    CTDIvol or DLP, fails."""
    if screen.total_dlp_mGycm is None:
        raise Failed("dose screen: no DLP total read (<<Dose Information>> DLP line or 'Total Exam DLP')")
    for index, row in enumerate(screen.rows, 1):
        if row.acquisition_type != LOCALIZER and (row.dlp_mGycm is None or row.ctdivol_mGy is None):
            missing = " and ".join(n for n, v in (("CTDIvol", row.ctdivol_mGy), ("DLP", row.dlp_mGycm)) if v is None)
            raise Failed(f"dose screen row {index} ({row.scan_type.title()}): no {missing} read")
    dosed = [r for r in screen.rows if r.dlp_mGycm is not None]
    if screen.dlp_head_mGycm is None and screen.dlp_body_mGycm is None:
        _compare("all rows", dosed, screen.dlp_unassigned_mGycm, screen.total_decimals)
        return
    only = "head16" if screen.dlp_body_mGycm is None else "body32" if screen.dlp_head_mGycm is None else None
    for phantom, subtotal in (("head16", screen.dlp_head_mGycm), ("body32", screen.dlp_body_mGycm)):
        if subtotal is None:
            continue
        rows = [r for r in dosed if (r.phantom or only) == phantom]
        _compare(f"{'head' if phantom == 'head16' else 'body'} rows", rows, subtotal, screen.total_decimals)
    stray = [r for r in dosed if r.phantom is None and only is None]
    if stray:
        raise Failed(f"dose screen: {len(stray)} row(s) with no phantom on a screen with head and body totals")


def ctdivol_consistency(screen: DoseScreen) -> list[str]:
    """Warnings when the CTDIvol printed with the totals is neither the sum nor the maximum of
    the rows' CTDIvol of that phantom (screens print one or the other): a row's CTDIvol may be
    misread, and nothing else on the screen checks it."""
    warnings = []
    only = "head16" if screen.ctdivol_body_mGy is None else "body32" if screen.ctdivol_head_mGy is None else None
    for phantom, stated in (("head16", screen.ctdivol_head_mGy), ("body32", screen.ctdivol_body_mGy)):
        values = [r.ctdivol_mGy for r in screen.rows
                  if r.ctdivol_mGy is not None and (r.phantom or only) == phantom]
        if stated is None or not values:
            continue
        tolerance = _tolerance([r.dose_decimals for r in screen.rows if r.ctdivol_mGy is not None], 1)
        if abs(sum(values) - stated) > tolerance and abs(max(values) - stated) > 0.05 + 1e-6:
            warnings.append(f"dose screen: CTDIvol {stated} mGy printed with the {phantom[:4]} totals is neither "
                            f"the sum nor the maximum of the rows' CTDIvol {values}: a CTDIvol may be misread")
    return warnings


def _compare(what: str, rows: list[ScreenRow], total: Optional[float], total_decimals: int) -> None:
    added = sum(r.dlp_mGycm for r in rows)
    tolerance = _tolerance([r.dose_decimals for r in rows], total_decimals)
    if total is None or abs(added - total) > tolerance:
        raise Failed(f"dose screen: {what} add up to DLP {added:.2f} mGy.cm but the screen total is "
                     f"{total} mGy.cm (allowed difference {tolerance:.2f})")


# --- Scanning length against DLP / CTDIvol -----------------------------------------------------
# DLP = CTDIvol x irradiated length, so DLP / CTDIvol is the length the beam covered. For any
# acquisition that is never shorter than the range its images cover: helical scans irradiate
# beyond the image range (overranging: the interpolation needs data past each end); for axial
# scans CTDIvol already spreads the dose over the table increment, so DLP / CTDIvol is
# (rotations x increment), at least the range from the first to the last image; a stationary
# (cine, volume, SmartView) acquisition's DLP / CTDIvol is its beam width, and its images lie
# within the beam. For helical and axial scans it is also rarely much longer: overranging is
# about one rotation's table feed in total, at most pitch 1.5 x 40 mm (the widest helical
# collimation of these scanner generations) = 60 mm, and a screen's range may be one
# reconstruction's images inside a longer acquisition, which the 1.5 factor allows for. (A
# stationary acquisition's images may cover a thin slab of a wide beam: no upper bound.)
# A length outside these bounds is a misread position (or dose): the row keeps its dose values,
# which the DLP total checked, and loses the length, with a warning. Where the text allows other
# positions (`ScreenRow.position_alternatives`), a length is kept only when exactly one length
# among all the readings fits: two that fit are a guess, and a guessed length is not stored.
LENGTH_CHECKED_TYPES = ("Spiral Acquisition", "Sequenced Acquisition")
BEAM_BOUNDED_TYPES = ("Stationary Acquisition", "Free Acquisition")  # lower bound only
POSITION_SLACK_MM = 1.0  # table positions are printed to 0.01 mm; a reading may round
OVERRANGING_MAX_MM = 60.0
RANGE_FACTOR_MAX = 1.5
SAME_LENGTH_MM = 1e-3


def irradiated_length_bounds_mm(row: ScreenRow) -> Optional[tuple[float, float]]:
    """The least and greatest 10 x DLP / CTDIvol (mm) the printed, rounded values allow."""
    if row.ctdivol_mGy is None or row.dlp_mGycm is None:
        return None
    half = 0.5 * 10.0 ** -row.dose_decimals
    if row.ctdivol_mGy - half <= 0:
        return None
    return (10.0 * max(0.0, row.dlp_mGycm - half) / (row.ctdivol_mGy + half),
            10.0 * (row.dlp_mGycm + half) / (row.ctdivol_mGy - half))


def length_fits(row: ScreenRow, length_mm: float) -> Optional[bool]:
    """Whether a scanned length fits the row's DLP / CTDIvol; None where nothing can be said
    (a localizer, or a row without both doses)."""
    bounds = irradiated_length_bounds_mm(row)
    if bounds is None or row.acquisition_type not in LENGTH_CHECKED_TYPES + BEAM_BOUNDED_TYPES:
        return None
    least, greatest = bounds
    if greatest < length_mm - POSITION_SLACK_MM:
        return False
    return row.acquisition_type in BEAM_BOUNDED_TYPES or least <= RANGE_FACTOR_MAX * length_mm + OVERRANGING_MAX_MM


def check_scanning_lengths(screen: DoseScreen) -> None:
    """Drop (with a note on the row) a scanning length that DLP / CTDIvol rules out, or that the
    OCR text leaves ambiguous; see the bounds above."""
    for row in screen.rows:
        length = row.scanning_length_mm
        if length is None:
            row.position_alternatives = []
            continue
        pairs = [(row.start_position_mm, row.end_position_mm), *row.position_alternatives]
        row.position_alternatives = []
        verdicts = [(pair, round(abs(pair[1] - pair[0]), 6)) for pair in pairs]
        fitting = [(pair, pair_length) for pair, pair_length in verdicts if length_fits(row, pair_length) is not False]
        lengths = sorted({pair_length for _, pair_length in fitting})
        if lengths and lengths[-1] - lengths[0] <= SAME_LENGTH_MM:
            row.start_position_mm, row.end_position_mm = fitting[0][0]
            continue
        irradiated = (f"DLP / CTDIvol = {10 * row.dlp_mGycm / row.ctdivol_mGy:.1f} mm"
                      if row.dlp_mGycm is not None and row.ctdivol_mGy else "no DLP / CTDIvol")
        if not lengths:
            bound = ("at least the scanned one and at most 1.5 x it + "
                     f"{OVERRANGING_MAX_MM:g} mm" if row.acquisition_type in LENGTH_CHECKED_TYPES
                     else "at least the scanned one")
            row.notes.append(f"scanning length {length:g} mm does not fit {irradiated} (the irradiated length is "
                             f"{bound}): a position is misread; length left empty, dose values kept")
        else:
            row.notes.append(f"scan range read ambiguously (a position's S/I letter may have been lost): "
                             f"lengths {', '.join(f'{v:g}' for v in lengths)} mm all fit {irradiated}; "
                             "length left empty, dose values kept")
        row.start_position_mm = row.end_position_mm = None
