"""The GE "Dose Report" screen (spec toshiba.md §5), a pure function of OCR text.

One row per series: `<series> <type> <S|I>pos-<S|I>pos <CTDIvol> <DLP> <phantom>`, e.g.
`2  Helical  S12.250-I287.750  14.52  425.68  Body 32`; a scout row `1  Scout  -  -  -`; and the
study total `Total Exam DLP:  498.92`. Positions are superior (S, +) or inferior (I, -) of the
landmark. GE always prints the letter, so the first character of a position is taken as its
letter even when the OCR read it as a digit (I as 1, S as 5): `1172.500` is I172.500. But a digit
there may also be a real digit whose letter the OCR dropped (`S12.250` read as `12.250`, seen in
Liberation Mono): the row then also carries the positions that reading allows
(`ScreenRow.position_alternatives`), and the scanning-length check keeps a length only when one
length among them fits DLP / CTDIvol."""
from __future__ import annotations

import re
from typing import Optional

from services.toshiba_builder.screen import LOCALIZER, SCAN_TYPES, DoseScreen, ScreenRow
from services.toshiba_builder.screen_text import I_LIKE, decimals, normalise_line, scan_type_of
from shared.outcome import Failed

# The acquisition types a GE Dose Report prints (PixelMed's regression list, spec §5).
GE_SCAN_TYPES = ("SCOUT", "HELICAL", "AXIAL", "STATIONARY", "CINE", "SMARTVIEW")

_TOTAL = re.compile(rf"TOTAL\s*EXAM\s*D{I_LIKE}P\s*[:.;,]*\s*(?P<num>\d+\.\d+|\d+)")
_ROW = re.compile(r"^(?P<series>\d{1,5})\s+(?P<type>[A-Z][A-Z0-9_\[\]]*)\s+(?P<rest>.*)$")
_PHANTOM = re.compile(r"\s*(?P<ph>H\s*E\s*A\s*D|B\s*[O0Q]\s*D\s*[YV])\s*(?:\d{2})?\s*(?:CM)?\s*$")
_DOSE = r"(?P<{}>\d+\.\d+|\d+|-)"
_DOSES = re.compile(r"\s*" + _DOSE.format("ctdi") + r"\s+" + _DOSE.format("dlp") + r"\s*$")
_POSITION_LETTER = {"S": 1.0, "5": 1.0, "$": 1.0, "I": -1.0, "1": -1.0, "L": -1.0, "|": -1.0}
# A digit in the letter's place: either the letter misread, or a digit whose letter was lost.
_DIGIT_LETTERS = ("1", "5")
_RANGE = re.compile(r"^(?P<l1>[SI15$L|])(?P<p1>\d+\.\d+)-(?P<l2>[SI15$L|])(?P<p2>\d+\.\d+)$")


def is_ge_text(screen_text: str) -> bool:
    """A GE Dose Report: only it prints a `Total Exam DLP` line."""
    return any(_TOTAL.search(normalise_line(line)) for line in screen_text.splitlines())


def parse_ge_screen(screen_text: str) -> DoseScreen:
    """Rows and total of a GE Dose Report's OCR text, not yet cross-checked. Raises Failed when
    no row can be read. A scan range that does not read as two lettered positions is left empty
    with a warning; the row's dose values stay."""
    rows: list[ScreenRow] = []
    total: Optional[tuple[float, int]] = None
    for raw in screen_text.splitlines():
        line = normalise_line(raw)
        m = _TOTAL.search(line)
        if m:
            total = (float(m.group("num")), decimals(m.group("num")))
            continue
        row = _row(line)
        if row is not None:
            rows.append(row)
    if not rows:
        raise Failed("GE dose report: no acquisition row (Scout, Helical, Axial, ...) read")
    screen = DoseScreen(rows=rows)
    if total is not None:
        screen.dlp_unassigned_mGycm, screen.total_decimals = total
    return screen


def _row(line: str) -> Optional[ScreenRow]:
    m = _ROW.match(line)
    if not m:
        return None
    scan_type = scan_type_of(m.group("type"))
    if scan_type is None:
        return None
    rest = m.group("rest")
    phantom = _PHANTOM.search(rest)
    if phantom:
        rest = rest[:phantom.start()]
    doses = _DOSES.search(rest)
    if not doses and SCAN_TYPES[scan_type] != LOCALIZER:
        return None  # not a row: a type word with no dose cells
    row = ScreenRow(scan_type=scan_type, acquisition_type=SCAN_TYPES[scan_type])
    places = []
    if doses:
        for name, key in (("ctdivol_mGy", "ctdi"), ("dlp_mGycm", "dlp")):
            if doses.group(key) != "-":
                setattr(row, name, float(doses.group(key)))
                places.append(decimals(doses.group(key)))
        rest = rest[:doses.start()]
    row.dose_decimals = max(places) if places else 2
    if phantom:
        row.phantom = "head16" if phantom.group("ph").startswith("H") else "body32"
    scan_range = re.sub(r"\s+", "", rest)
    if scan_range not in ("", "-"):
        positions = _RANGE.match(scan_range)
        if positions and decimals(positions.group("p1")) != decimals(positions.group("p2")):
            # GE prints every position with the same decimals (S12.250): a digit more or less is a
            # stray or lost glyph ("S0.9000"), so neither position is trusted
            row.notes.append(f"scan range {scan_range[:40]!r} has positions of unlike decimals: misread; "
                             "scanning length left empty")
        elif positions:
            starts = _position_readings(positions.group("l1"), positions.group("p1"))
            ends = _position_readings(positions.group("l2"), positions.group("p2"))
            row.start_position_mm, row.end_position_mm = starts[0], ends[0]
            row.position_alternatives = [(s, e) for s in starts for e in ends if (s, e) != (starts[0], ends[0])]
        else:
            row.notes.append(f"scan range {scan_range[:40]!r} not read as two positions; scanning length "
                             "left empty")
    return row


def _position_readings(letter: str, digits: str) -> list[float]:
    """The positions a lettered position's text allows, the likeliest first: the letter as read
    (a 1 or 5 taken as I or S), and where a digit stands in the letter's place, that digit as part
    of the number with the letter lost (either side of the landmark)."""
    readings = [_POSITION_LETTER[letter] * float(digits)]
    if letter in _DIGIT_LETTERS:
        whole = float(letter + digits)
        readings += [whole, -whole]
    return readings
