"""The Toshiba dose screen (spec toshiba.md §2.5): `<<Dose Information>>` with the DLP totals per
phantom, `<<Detail Information>>` with one block per protocol, each a column header (one layout
per software generation) and one row group per acquisition. A pure function of OCR text.

Columns are found by their labels, not by position, so every layout of §2.5 is read by the
same code: a header of one, two, three or more lines says which value sits where in the row
group's first, second, third... line."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from services.toshiba_builder.screen import LOCALIZER, SCAN_TYPES, DoseScreen, ScreenRow
from services.toshiba_builder.screen_text import I_LIKE as _I
from services.toshiba_builder.screen_text import VALUE as _VALUE
from services.toshiba_builder.screen_text import decimals as _decimals
from services.toshiba_builder.screen_text import leading_scan_type as _leading_scan_type
from services.toshiba_builder.screen_text import normalise_line
from shared.outcome import Failed



# Column labels of the detail tables (spec §2.5), most specific first. Dose labels tolerate the
# OCR's usual slips (CTDIvo1, CTDlvol, DLP.e).
# The D of DLP: the OCR reads it as O or 0 at small sizes ("OLP"); not after a letter (VOLP).
_D = r"(?<![A-Z])[DO0]"
_COLUMN_LABELS: tuple[tuple[str, str], ...] = (
    ("image_number", r"TOTAL\s*IMAGE\s*NUMBER"),
    ("eff_ctdivol", rf"EFF\s*\.?\s*CTD{_I}\s*VO{_I}(?:\s*\.\s*E)?(?:\s*\(\s*MGY\s*\))?(?:\s*\(?\s*MEAN\s*\)?)?"),
    ("eff_dlp", rf"EFF\s*\.?\s*{_D}{_I}P(?:\s*\.\s*E)?(?:\s*\(\s*MGYCM\s*\))?"),
    ("ctdiair", rf"CTD{_I}\s*A{_I}R"),
    ("dlpair", rf"{_D}{_I}P\s*A{_I}R"),
    ("ctdivol", rf"CTD{_I}\s*VO{_I}(?:\s*\.\s*E)?(?:\s*\(\s*MGY\s*\))?(?:\s*\(?\s*MEAN\s*\)?)?"),
    ("dlp", rf"{_D}{_I}P(?:\s*\.\s*E)?(?:\s*\(\s*MGYCM\s*\))?"),
    ("mas", r"TOTAL\s*MAS"),
    ("exposure_time", r"EXPOSURE\s*TIME(?:\s*\(\s*S(?:EC)?\s*\))?"),
    ("start", r"START\s*POS\s*\.?"),
    ("end", r"END\s*POS\s*\.?"),
    ("tot_dose_red", r"TOT\s*\.?\s*DOSE\s*RED\s*\.?(?:\s*\(\s*%\s*\))?"),
    ("dose_red_mode", r"DOSE\s*RED\s*\.?\s*MODE"),
    ("modulation", r"MODULATION"),
    ("boost", r"BOOST"),
    ("qds", r"QDS"),
    ("sd", r"\bSD\b"),
)
_DOSE_COLUMNS = ("ctdivol", "dlp", "eff_ctdivol", "eff_dlp", "ctdiair", "dlpair")


def _columns(line: str) -> list[str]:
    """The column labels of a header line, left to right."""
    found: list[tuple[int, int, str]] = []
    for name, pattern in _COLUMN_LABELS:
        for m in re.finditer(pattern, line):
            if any(m.start() < end and start < m.end() for start, end, _ in found):
                continue
            found.append((m.start(), m.end(), name))
    return [name for _, _, name in sorted(found)]


_SECTION = re.compile(r"<+\s*([^<>]+?)\s*>+")
_SECTION = re.compile(r"<+\s*([^<>]+?)\s*>+")
# `1.Chest/Abdomen/Pelvis`: the title starts with a letter (`45.8(HEAD)` is a value, not block 45).
_PROTOCOL = re.compile(r"^(\d{1,2})\s*[.,]\s*(?=[A-Z])(.*)$")


def _section_of(line: str) -> Optional[str]:
    m = _SECTION.search(line)
    if not m:
        return None
    name = re.sub(r"\s+", " ", m.group(1))
    if "DOSE" in name:
        return "dose"
    if "DETAIL" in name:
        return "detail"
    if "CONTRAST" in name or "ENHANCE" in name:
        return "contrast"
    return "other"


@dataclass
class _Group:
    """The lines of one acquisition: the scan-type line and its continuation lines, or (layouts
    that print the scan type last) the value lines before it and the scan-type line."""

    scan_type: str
    lines: list[list[str]]
    headers: list[list[str]]
    protocol: Optional[str]
    block: Optional[int]
    type_last: bool = False

    def expects_more(self) -> bool:
        return not self.type_last and (not self.headers or len(self.lines) < len(self.headers))


def parse_toshiba_screen(screen_text: str) -> DoseScreen:
    """The rows and totals of a Toshiba summary's OCR text (pages joined in order), not yet
    cross-checked. Raises Failed when no acquisition row can be read."""
    lines = [(normalise_line(raw), raw.strip()) for raw in screen_text.splitlines()]
    return _parse_toshiba([(line, raw) for line, raw in lines if line])


def _parse_toshiba(lines: list[tuple[str, str]]) -> DoseScreen:
    section = None
    totals: dict[str, list[tuple[float, int]]] = {"head": [], "body": [], "none": []}
    eff_totals: dict[str, list[tuple[float, int]]] = {"head": [], "body": [], "none": []}
    ctdivol_totals: dict[str, list[tuple[float, int]]] = {"head": [], "body": [], "none": []}
    groups: list[_Group] = []
    headers: list[list[str]] = []
    headers_closed = False  # a header line after rows starts a new table
    open_group: Optional[_Group] = None  # the acquisition whose continuation lines may follow
    pending: list[list[str]] = []  # value lines before their scan-type line (type printed last)
    protocol: Optional[str] = None
    block: Optional[int] = None
    for line, raw in lines:
        found = _section_of(line)
        if found:
            section = found
            headers, headers_closed, protocol, block = [], False, None, None
            open_group, pending = None, []
            continue
        if section == "dose":
            _read_total_line(line, totals, eff_totals, ctdivol_totals)
            continue
        if section != "detail":
            continue
        tokens = line.split()
        scan_type, used = _leading_scan_type(tokens)
        protocol_match = None if scan_type else _PROTOCOL.match(line)
        columns = [] if scan_type or protocol_match else _columns(line)
        if protocol_match:
            block = int(protocol_match.group(1))
            # The protocol as printed (case kept): the line after its "<n>." prefix.
            protocol = re.sub(r"^\s*\d{1,2}\s*[.,]\s*", "", raw).strip() or None
            headers, headers_closed = [], False
            open_group, pending = None, []
        elif columns and not any(_VALUE.match(t) for t in tokens):
            if headers_closed:
                headers, headers_closed = [], False
            headers.append(columns)
            open_group, pending = None, []
        elif scan_type:
            headers_closed = True
            open_group = _Group(scan_type, [*pending, tokens[used:]], list(headers), protocol, block,
                                type_last=bool(pending))
            groups.append(open_group)
            pending = []
        elif open_group is not None and open_group.expects_more():
            open_group.lines.append(tokens)
        elif headers and any(_VALUE.match(t) for t in tokens):
            # A value line after a complete acquisition (or before the first): the layout prints
            # the scan type on the group's last line (spec §2.5 "Exposure Time CTDIvol DLP SD").
            pending.append(tokens)
    if not groups:
        raise Failed("dose screen: no acquisition row (HELICAL, NORMAL, SCANOSCOPE, ...) read under "
                     "<<Detail Information>>")
    rows = [_row_of(group) for group in groups]
    screen = DoseScreen(rows=rows)
    chosen = totals if any(totals.values()) else eff_totals
    _set_totals(screen, chosen)
    if ctdivol_totals["head"]:
        screen.ctdivol_head_mGy = ctdivol_totals["head"][-1][0]
    if ctdivol_totals["body"]:
        screen.ctdivol_body_mGy = ctdivol_totals["body"][-1][0]
    return screen


def _read_total_line(line: str, totals: dict, eff_totals: dict, ctdivol_totals: dict) -> None:
    """A total line of <<Dose Information>>: `DLP(mGycm) (Head): 45.2 (Body): -`,
    `Eff. DLP (mGycm) : 349.7`, or the same for CTDIvol."""
    label = re.search(rf"(EFF\s*\.?\s*)?(TOTAL\s+)?(?:(?P<ctdi>CTD{_I}\s*VO{_I})|{_D}{_I}P(?!\s*A{_I}R))", line)
    if not label:
        return
    if label.group("ctdi"):
        target = ctdivol_totals
    else:
        target = eff_totals if label.group(1) else totals
    rest = line[label.end():]
    by_phantom = list(re.finditer(r"\(\s*(HEAD|BODY)\s*\)\s*[:.;]*\s*(\S+)", rest))
    if by_phantom:
        for m in by_phantom:
            value = _VALUE.match(m.group(2))
            if value and not value.group("ph"):
                target[m.group(1).lower()].append((float(value.group("num")), _decimals(value.group("num"))))
        return
    for token in rest.replace(":", " ").split():
        value = _VALUE.match(token)
        if value:
            phantom = (value.group("ph") or "none").lower()
            target[phantom].append((float(value.group("num")), _decimals(value.group("num"))))
            return


def _set_totals(screen: DoseScreen, totals: dict) -> None:
    def add(values: list[tuple[float, int]]) -> Optional[float]:
        return round(sum(v for v, _ in values), 6) if values else None

    screen.dlp_head_mGycm = add(totals["head"])
    screen.dlp_body_mGycm = add(totals["body"])
    screen.dlp_unassigned_mGycm = add(totals["none"])
    decimals = [d for values in totals.values() for _, d in values]
    screen.total_decimals = max(decimals) if decimals else 1


def _row_of(group: _Group) -> ScreenRow:
    """Place a group's values in its columns.

    A line with exactly as many values as its header line has labels is read column by column.
    Otherwise (a localizer leaves cells empty, the OCR lost a header) values are placed by
    their form: a value with a (Head)/(Body) suffix is a dose (CTDIvol before DLP, the order of
    every known layout), a signed number with decimals is a table position (start before end)."""
    values: dict[str, str] = {}
    for index, tokens in enumerate(group.lines):
        # Where the type comes last, which header line a row line belongs to is not printed:
        # values are placed by their form only.
        header = group.headers[index] if index < len(group.headers) and not group.type_last else []
        placed = _by_columns(tokens, header)
        if placed is None:
            placed = _by_form(tokens, header)
        for name, token in placed.items():
            values.setdefault(name, token)
    row = ScreenRow(scan_type=group.scan_type, acquisition_type=SCAN_TYPES[group.scan_type],
                    protocol=group.protocol, block=group.block)
    # "Eff." values stand in only on screens that print no plain CTDIvol/DLP column: where both
    # are printed they are different quantities.
    labels = {name for header in group.headers for name in header}
    ctdivol = values.get("ctdivol") if "ctdivol" in labels or "eff_ctdivol" not in labels else values.get("eff_ctdivol")
    dlp = values.get("dlp") if "dlp" in labels or "eff_dlp" not in labels else values.get("eff_dlp")
    decimals = []
    phantoms = []
    for name, token in (("ctdivol_mGy", ctdivol), ("dlp_mGycm", dlp)):
        m = _VALUE.match(token) if token else None
        if m:
            setattr(row, name, float(m.group("num")))
            decimals.append(_decimals(m.group("num")))
            if m.group("ph"):
                phantoms.append(m.group("ph"))
    if phantoms:
        row.phantom = "head16" if phantoms[-1] == "HEAD" else "body32"
    row.dose_decimals = max(decimals) if decimals else 1
    for name, key in (("exposure_time_s", "exposure_time"), ("start_position_mm", "start"),
                      ("end_position_mm", "end")):
        m = _VALUE.match(values.get(key, ""))
        if m and not m.group("ph"):
            setattr(row, name, float(m.group("num")))
    start, end = (_VALUE.match(values.get(key, "")) for key in ("start", "end"))
    if start and end and _decimals(start.group("num")) != _decimals(end.group("num")):
        # both positions are printed with the same decimals (+71.59): a digit more or less is a misread
        row.start_position_mm = row.end_position_mm = None
    _note_unread(row, group, labels)
    return row


def _note_unread(row: ScreenRow, group: _Group, labels: set[str]) -> None:
    """A note on an acquisition row for a printed column its values did not read into, so a value
    left empty is never left empty silently (a position whose sign the OCR turned into a digit,
    "+137.17" read "4137.17", breaks the columns of its whole line). Positions: wherever the table
    has Start/End Pos. columns. Exposure time: where the row's line under the Exposure Time label
    holds at least as many values as that header line has labels, i.e. where it is printed (some
    layouts print no time on the acquisition's line). Localizer rows leave cells empty: no note."""
    if row.acquisition_type == LOCALIZER:
        return
    if {"start", "end"} & labels and (row.start_position_mm is None or row.end_position_mm is None):
        row.start_position_mm = row.end_position_mm = None
        row.notes.append("scan range (Start/End Pos.) not read; scanning length left empty")
    if row.exposure_time_s is None and not group.type_last:
        for header, tokens in zip(group.headers, group.lines):
            if "exposure_time" in header and len(tokens) >= len(header):
                row.notes.append("exposure time not read; left empty")
                break


def _by_columns(tokens: list[str], header: list[str]) -> Optional[dict[str, str]]:
    if not header or len(tokens) != len(header):
        return None
    placed = dict(zip(header, tokens))
    for name, token in placed.items():
        m = _VALUE.match(token)
        if m and m.group("ph") and name not in _DOSE_COLUMNS:
            return None  # a dose value under a non-dose label: the columns do not line up
        if name in ("start", "end") and not re.fullmatch(r"[+-]\d+\.\d+", token):
            return None  # table positions are printed signed; an unsigned one lost its sign
    return placed


def _by_form(tokens: list[str], header: list[str]) -> dict[str, str]:
    placed: dict[str, str] = {}
    doses = [t for t in tokens if (m := _VALUE.match(t)) and m.group("ph")]
    dose_columns = [c for c in header if c in ("ctdivol", "dlp", "eff_ctdivol", "eff_dlp")] or ["ctdivol", "dlp"]
    if len(doses) == len(dose_columns):  # one suffix lost to the OCR: which value is which is a guess
        placed.update(zip(dose_columns, doses))
    positions = [t for t in tokens if re.fullmatch(r"[+-]\d+\.\d+", t)]
    if len(positions) == 2 and ("start" in header or not header):
        placed["start"], placed["end"] = positions
    return placed
