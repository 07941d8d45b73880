"""Rendered Toshiba dose screens in every detail-page layout of spec toshiba.md §2.5, with the
values each must read to, and the comparison that sorts a reading into fully right / failed /
value dropped with a warning / wrong value.

No real Toshiba screen is public (spec §1), so these are synthetic: each layout's two pages
(<<Dose Information>>, <<Detail Information>>) as text in fixed columns, rendered without
antialiasing in a monospaced font (white or grey on black, 1024 x 1024, 8 bit, WW 1 / WC 0 like
the corpus pages) and wrapped in a DICOM secondary capture. The values are physically
consistent: each helical/axial DLP / CTDIvol covers the scanned length plus some overranging.
Used by tests/test_toshiba_layouts.py and benchmarks/legacy_screens.py.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

FONT_DIR = Path("/usr/share/fonts/truetype")
# Monospaced fonts of Debian packages fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf and
# fonts-noto-mono (scripts/bootstrap --services installs them).
FONT_FILES = {
    "DejaVuSansMono": FONT_DIR / "dejavu" / "DejaVuSansMono.ttf",
    "LiberationMono": FONT_DIR / "liberation" / "LiberationMono-Regular.ttf",
    "FreeMono": FONT_DIR / "freefont" / "FreeMono.ttf",
    "NotoSansMono": FONT_DIR / "noto" / "NotoSansMono-Regular.ttf",
}
SIZES_PX = (14, 18)
TEST_FONTS = ("DejaVuSansMono", "LiberationMono")  # the two the tests render in
WHITE, GREY = 255, 160


@dataclass
class Event:
    """One acquisition as printed, and what it must read to."""

    word: str  # the scan-type word printed: Helical, Scanoscope, Normal, Volume
    acquisition_type: str
    ctdivol: Optional[str] = None  # as printed
    dlp: Optional[str] = None
    phantom: Optional[str] = None  # "Head" / "Body" printed after the value, or None
    start: Optional[str] = None  # signed, as printed
    end: Optional[str] = None
    exposure_time: Optional[str] = None
    mas: Optional[str] = None
    sd: str = "12.5"

    def dose(self, value: Optional[str], suffix: bool = True) -> str:
        if value is None:
            return ""
        return f"{value}({self.phantom})" if suffix and self.phantom else value


@dataclass
class Layout:
    name: str
    spec: str  # the §2.5 header text this layout stands for
    page1: list[str]
    page2: list[str]
    events: list[Event]
    total_dlp_mGycm: float
    # phantom each dosed row must end with (after the builder's single-phantom default)
    phantoms: list[Optional[str]]
    reads_exposure_time: bool = False  # the layout places exposure time in a column of its own
    reads_scan_range: bool = False
    family: str = "toshiba"  # "ge": one Dose Report page, series 999, SCREEN SAVE


def cells(*placed: tuple[int, str]) -> str:
    """A screen line: each text starting at its character column."""
    line = ""
    for column, text in placed:
        line = line.ljust(column) + (" " if line and len(line) > column else "") + text
    return line


C = (1, 15, 30, 45, 60, 75)  # column starts, in characters


def totals_by_phantom(events: list[Event]) -> list[str]:
    def value(phantom: str, what: str) -> str:
        values = [float(getattr(e, what)) for e in events if e.phantom == phantom and getattr(e, what)]
        if not values:
            return "-"
        return f"{(sum(values) if what == 'dlp' else max(values)):.1f}"

    return [cells((1, "CTDIvol(mGy)"), (20, f"(Head): {value('Head', 'ctdivol')}"),
                  (42, f"(Body): {value('Body', 'ctdivol')}")),
            cells((1, "DLP(mGycm)"), (20, f"(Head): {value('Head', 'dlp')}"), (42, f"(Body): {value('Body', 'dlp')}"))]


def page1(totals: list[str]) -> list[str]:
    return ["ID  : TSH04711           Exam No.: 2042", "Aquilion", "", "<<Dose Information>>", *totals, "",
            "<<Contrast/Enhance Information>>", "  Agent : -"]


def total_of(events: list[Event]) -> float:
    head = sum(float(e.dlp) for e in events if e.dlp and e.phantom == "Head")
    body = sum(float(e.dlp) for e in events if e.dlp and e.phantom == "Body")
    other = sum(float(e.dlp) for e in events if e.dlp and e.phantom is None)
    if head and body:
        return round(head * 0.5 + body, 6)
    return round(head + body + other, 6)


def _detail(blocks: list[tuple[str, list[str], list[str]]]) -> list[str]:
    lines = ["ID  : TSH04711           Exam No.: 2042", "<<Detail Information>>"]
    for protocol, header, rows in blocks:
        lines += [f" {protocol}", *header, *rows]
    return lines


def layouts() -> list[Layout]:
    out = []

    # A. `Total mAs  Exposure Time  CTDIvol  DLP`, one row per event (CX generation)
    # (the scanoscope row leaves its dose cells empty, so its time is not placed: not expected)
    ev = [Event("Scanoscope", "Constant Angle Acquisition"),
          Event("Helical", "Spiral Acquisition", "58.3", "1102.4", "Head", exposure_time="11.0", mas="3520")]
    header = [cells((C[1], "Total mAs"), (C[2], "Exposure Time"), (C[3], "CTDIvol(mGy)"), (C[4], "DLP(mGycm)"))]
    rows = [cells((C[0], "Scanoscope"), (C[1], "40"), (C[2], "2.9")),
            cells((C[0], "Helical"), (C[1], "3520"), (C[2], "11.0"), (C[3], ev[1].dose("58.3")), (C[4], ev[1].dose("1102.4")))]
    out.append(Layout("A_single_row", "Total mAs  Exposure Time  CTDIvol  DLP", page1(totals_by_phantom(ev)),
                      _detail([("1.Head Routine", header, rows)]), ev, total_of(ev), [None, "head16"],
                      reads_exposure_time=True))

    # B. `Exposure Time CTDIvol(mGy) DLP(mGycm)` then `Total mAs`: doses beside the type, mAs and time below
    ev = [Event("Scanoscope", "Constant Angle Acquisition"),
          Event("Helical", "Spiral Acquisition", "12.6", "430.9", "Body"),
          Event("Helical", "Spiral Acquisition", "9.5", "305.3", "Body")]
    header = [cells((C[1], "Exposure Time"), (C[2], "CTDIvol(mGy)"), (C[3], "DLP(mGycm)")), cells((C[1], "Total mAs"))]
    rows = [cells((C[0], "Scanoscope")), cells((C[1], "35"), (C[2], "3.1"))]
    for e, (mas, time) in zip(ev[1:], (("2250", "7.5"), ("1480", "5.0"))):
        rows += [cells((C[0], e.word), (C[2], e.dose(e.ctdivol)), (C[3], e.dose(e.dlp))), cells((C[1], mas), (C[2], time))]
    out.append(Layout("B_time_ctdivol_dlp_then_mas", "Exposure Time  CTDIvol  DLP  Total mAs (two lines)",
                      page1(totals_by_phantom(ev)), _detail([("1.Abdomen/Pelvis", header, rows)]), ev, total_of(ev),
                      [None, "body32", "body32"]))

    # C. `Exposure Time  CTDIvol  DLP  SD`: doses on the first row, the scan type last
    ev = [Event("Scanoscope", "Constant Angle Acquisition"),
          Event("Normal", "Sequenced Acquisition", "45.8", "229.0", "Head"),
          Event("Normal", "Sequenced Acquisition", "38.2", "152.8", "Head")]
    header = [cells((C[1], "Exposure Time"), (C[2], "CTDIvol(mGy)"), (C[3], "DLP(mGycm)"), (C[4], "SD"))]
    rows = [cells((C[0], "Scanoscope"), (C[1], "2.2"))]
    for e, time in zip(ev[1:], ("12.0", "9.0")):
        rows += [cells((C[2], e.dose(e.ctdivol)), (C[3], e.dose(e.dlp))), cells((C[0], e.word), (C[1], time), (C[4], "3.4"))]
    out.append(Layout("C_scan_type_last", "Exposure Time  CTDIvol  DLP  SD (type on the second row)",
                      page1(totals_by_phantom(ev)), _detail([("1.Brain Sequential", header, rows)]), ev, total_of(ev),
                      [None, "head16", "head16"]))

    # D. `CTDIvol(mGy) DLP(mGycm)` + `Total mAs SD`: mAs first, doses second, type with SD last
    ev = [Event("Helical", "Spiral Acquisition", "7.9", "283.4", "Body"),
          Event("Volume", "Stationary Acquisition", "112.5", "1800.0", "Body")]
    header = [cells((C[2], "CTDIvol(mGy)"), (C[3], "DLP(mGycm)")), cells((C[1], "Total mAs"), (C[4], "SD"))]
    rows = []
    for e, mas in zip(ev, ("1980", "600")):
        rows += [cells((C[1], mas)), cells((C[2], e.dose(e.ctdivol)), (C[3], e.dose(e.dlp))),
                 cells((C[0], e.word), (C[4], "8.0"))]
    out.append(Layout("D_mas_doses_type_sd", "Total mAs  CTDIvol  DLP  SD (mAs, doses, then type with SD)",
                      page1(totals_by_phantom(ev)), _detail([("1.Chest Perfusion", header, rows)]), ev, total_of(ev),
                      ["body32", "body32"]))

    # E. `SD  CTDIvol.e (Mean)  DLP.e`, head and body events on one summary
    ev = [Event("Scanoscope", "Constant Angle Acquisition"),
          Event("Helical", "Spiral Acquisition", "48.1", "866.0", "Head"),
          Event("Helical", "Spiral Acquisition", "14.3", "520.6", "Body")]
    header = [cells((C[1], "SD"), (C[2], "CTDIvol.e (Mean)"), (C[4], "DLP.e"))]
    rows = [cells((C[0], "Scanoscope"))] + [
        cells((C[0], e.word), (C[1], sd), (C[2], e.dose(e.ctdivol)), (C[4], e.dose(e.dlp)))
        for e, sd in zip(ev[1:], ("4.5", "11.0"))]
    out.append(Layout("E_sd_effective_columns", "SD  CTDIvol.e (Mean)  DLP.e",
                      page1([cells((1, "DLP.e(mGycm)"), (20, "(Head): 866.0"), (42, "(Body): 520.6"))]),
                      _detail([("1.Head/Neck/Chest", header, rows)]), ev, total_of(ev), [None, "head16", "body32"]))

    # F. `Total mAs Exposure Time CTDIvol.e DLP.e` + `Tot. Dose Red. Dose Red. Mode Modulation`
    ev = [Event("Scanoscope", "Constant Angle Acquisition"),
          Event("Helical", "Spiral Acquisition", "10.4", "395.2", "Body", exposure_time="6.5")]
    header = [cells((C[1], "Total mAs"), (C[2], "Exposure Time"), (C[3], "CTDIvol.e(mGy)"), (C[4], "DLP.e(mGycm)")),
              cells((C[1], "Tot. Dose Red."), (C[2], "Dose Red. Mode"), (C[3], "Modulation"))]
    rows = [cells((C[0], "Scanoscope"), (C[1], "50"), (C[2], "3.3")),
            cells((C[0], "Helical"), (C[1], "2100"), (C[2], "6.5"), (C[3], ev[1].dose("10.4")), (C[4], ev[1].dose("395.2"))),
            cells((C[1], "30.5"), (C[2], "ON"), (C[3], "3D"))]
    out.append(Layout("F_dose_reduction_row", "Total mAs Exposure Time CTDIvol.e DLP.e + Tot. Dose Red. Dose Red. "
                      "Mode Modulation", page1(totals_by_phantom(ev)), _detail([("1.Chest", header, rows)]), ev,
                      total_of(ev), [None, "body32"], reads_exposure_time=True))

    # G. `Start Pos. End Pos. Exposure Time Total mAs` + `Eff. CTDIvol Mean Eff. DLP SD`: no phantom suffix,
    # an Eff. DLP total with no phantom
    ev = [Event("Scanoscope", "Constant Angle Acquisition"),
          Event("Helical", "Spiral Acquisition", "25.4", "208.5", None, "-10.50", "+71.59", "9.8"),
          Event("Helical", "Spiral Acquisition", "24.7", "141.2", None, "+80.00", "+137.17", "7.1")]
    header = [cells((C[1], "Start Pos."), (C[2], "End Pos."), (C[3], "Exposure Time"), (C[4], "Total mAs")),
              cells((C[1], "Eff. CTDIvol Mean"), (C[3], "Eff. DLP"), (C[4], "SD"))]
    rows = [cells((C[0], "Scanoscope"), (C[3], "9.8"), (C[4], "50"))]
    for e, mas in zip(ev[1:], ("2350", "1800")):
        rows += [cells((C[0], e.word), (C[1], e.start), (C[2], e.end), (C[3], e.exposure_time), (C[4], mas)),
                 cells((C[1], e.ctdivol), (C[3], e.dlp), (C[4], "12.5"))]
    out.append(Layout("G_positions_first", "Start Pos. End Pos. Exposure Time Total mAs + Eff. CTDIvol Mean Eff. DLP SD",
                      page1([cells((1, "Eff. DLP (mGycm) :"), (22, "349.7"))]),
                      _detail([("1.Chest/Abdomen/Pelvis", header, rows)]), ev, total_of(ev), [None, None, None],
                      reads_exposure_time=True, reads_scan_range=True))

    # H. four header lines, four rows per event: doses beside the type, mAs and time, Eff. DLP with the
    # dose-reduction mode and the positions, total dose reduction
    ev = [Event("Scanoscope", "Constant Angle Acquisition"),
          Event("Helical", "Spiral Acquisition", "9.8", "352.6", "Body", "-40.50", "-365.75"),
          Event("Helical", "Spiral Acquisition", "12.4", "268.1", "Body", "-190.00", "-395.25")]
    header = [cells((C[1], "Exposure Time"), (C[2], "CTDIvol(mGy)"), (C[3], "DLP(mGycm)"), (C[4], "Total mAs")),
              cells((C[1], "Eff.DLP(mGycm)")), cells((C[1], "Dose Red. Mode"), (C[2], "Start Pos."), (C[3], "End Pos.")),
              cells((C[1], "Tot. Dose Red.(%)"))]
    rows = [cells((C[0], "Scanoscope"), (C[1], "4.6"), (C[4], "45"))]
    for e, (mas, time, red) in zip(ev[1:], (("1650", "5.5", "21.5"), ("1480", "4.0", "18.0"))):
        rows += [cells((C[0], e.word), (C[2], e.dose(e.ctdivol)), (C[3], e.dose(e.dlp))), cells((C[1], mas), (C[2], time)),
                 cells((C[1], e.dlp), (C[2], "ON"), (C[3], e.start), (C[4], e.end)), cells((C[1], red))]
    out.append(Layout("H_four_rows_per_event", "Exposure Time CTDIvol DLP Total mAs + Eff.DLP + Dose Red. Mode "
                      "Start Pos. End Pos. + Tot. Dose Red.(%)", page1(totals_by_phantom(ev)),
                      _detail([("1.Liver", header, rows)]), ev, total_of(ev), [None, "body32", "body32"],
                      reads_scan_range=True))

    # I. the newest layout: five header lines and five rows per event, effective values, no suffix
    ev = [Event("Scanoscope", "Constant Angle Acquisition", exposure_time="3.0"),
          Event("Helical", "Spiral Acquisition", "11.2", "448.0", "Body", "+20.00", "-330.00", "8.2")]
    header = [cells((C[1], "Exposure Time"), (C[2], "Total mAs")),
              cells((C[1], "Start Pos."), (C[2], "End Pos."), (C[3], "CTDIair"), (C[4], "DLPair")),
              cells((C[1], "Eff. CTDIvol Mean"), (C[2], "Eff. DLP"), (C[3], "Modulation"), (C[4], "SD")),
              cells((C[1], "Boost"), (C[2], "QDS"), (C[3], "Dose Red. Mode"), (C[4], "Tot. Dose Red.")),
              cells((C[1], "Total Image Number"))]
    rows = [cells((C[0], "Scanoscope"), (C[1], "3.0"), (C[2], "40")),
            cells((C[0], "Helical"), (C[1], "8.2"), (C[2], "2400")),
            cells((C[1], "+20.00"), (C[2], "-330.00"), (C[3], "22.6"), (C[4], "904.0")),
            cells((C[1], "11.2"), (C[2], "448.0"), (C[3], "ON"), (C[4], "10.0")),
            cells((C[1], "OFF"), (C[2], "ON"), (C[3], "ON"), (C[4], "28.0")),
            cells((C[1], "412"))]
    out.append(Layout("I_newest_five_rows", "... Start Pos. End Pos. CTDIair DLPair + Eff. CTDIvol Mean Eff. DLP "
                      "Modulation SD + Boost QDS Dose Red. Mode Tot. Dose Red. + Total Image Number",
                      page1([cells((1, "Eff. DLP (mGycm)"), (20, "(Head): -"), (42, "(Body): 448.0"))]),
                      _detail([("1.Abdomen", header, rows)]), ev, total_of(ev), [None, "body32"],
                      reads_exposure_time=True, reads_scan_range=True))
    # GE "Dose Report" (spec §5): one page, positions lettered S/I, phantom as "Body 32" / "Head 16"
    ev = [Event("Scout", "Constant Angle Acquisition"),
          Event("Helical", "Spiral Acquisition", "14.52", "457.38", "Body", "+12.250", "-287.750"),
          Event("Axial", "Sequenced Acquisition", "55.10", "110.20", "Head", "-10.000", "-30.000"),
          Event("Cine", "Stationary Acquisition", "30.00", "60.00", "Body", "+5.000", "-15.000"),
          Event("SmartView", "Free Acquisition", "8.25", "8.25", "Body", "-100.000", "-110.000")]

    def lettered(position: str) -> str:
        return ("S" if position.startswith("+") else "I") + position[1:]

    page = ["Exam: 4711  DOE JANE  20190304", "Dose Report", "",
            cells((1, "Series"), (9, "Type"), (21, "Scan Range"), (43, "CTDIvol"), (53, "DLP"), (63, "Phantom")),
            cells((21, "(mm)"), (43, "(mGy)"), (53, "(mGy-cm)"), (63, "cm")),
            cells((1, "1"), (9, "Scout"), (21, "-"), (43, "-"), (53, "-"))]
    for number, e in enumerate(ev[1:], 2):
        page.append(cells((1, str(number)), (9, e.word), (21, f"{lettered(e.start)}-{lettered(e.end)}"),
                          (43, e.ctdivol), (53, e.dlp), (63, "Head 16" if e.phantom == "Head" else "Body 32")))
    total = round(sum(float(e.dlp) for e in ev[1:]), 2)
    page += ["", cells((1, "Total Exam DLP:"), (21, f"{total:.2f}"))]
    out.append(Layout("GE_dose_report", "GE Dose Report (spec §5)", page, [], ev, total,
                      [None, "body32", "head16", "body32", "body32"], reads_scan_range=True, family="ge"))
    return out


def render(lines: list[str], font: str, size_px: int, ink: int, side: int = 1024) -> np.ndarray:
    """White or grey text on black, no antialiasing (a console's bitmap font), line pitch 1.4 em."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(FONT_FILES[font]), size_px)
    image = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    for index, line in enumerate(lines):
        draw.text((16, 16 + index * round(size_px * 1.4)), line, fill=ink, font=face)
    return np.asarray(image)


def secondary_capture(pixels: np.ndarray, series_uid: str, instance: int, family: str = "toshiba") -> Dataset:
    """A dose page as the corpus has them (Toshiba: ImageType DERIVED\\SECONDARY, WW 1 / WC 0;
    GE: SCREEN SAVE in series 999), written and read back as a DICOM file."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Manufacturer, ds.Modality = "TOSHIBA", "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "1.2.3", series_uid, 9000, instance
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.WindowWidth, ds.WindowCenter = 1, 0
    if family == "ge":
        ds.Manufacturer, ds.SeriesNumber = "GE MEDICAL SYSTEMS", 999
        ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def summary_pages(layout: Layout, font: str, size_px: int, ink: int) -> list[Dataset]:
    series = generate_uid()
    return [secondary_capture(render(page, font, size_px, ink), series, number, layout.family)
            for number, page in enumerate((layout.page1, layout.page2), 1) if page]


# --- sorting a reading -------------------------------------------------------------------------------


def _number(text: Optional[str]) -> Optional[float]:
    return None if text is None else float(text)


def expected_rows(layout: Layout) -> list[dict]:
    rows = []
    for event, phantom in zip(layout.events, layout.phantoms):
        length = None
        if layout.reads_scan_range and event.start is not None:
            length = round(abs(float(event.end) - float(event.start)), 6)
        rows.append({"acquisition_type": event.acquisition_type, "ctdivol_mGy": _number(event.ctdivol),
                     "dlp_mGycm": _number(event.dlp), "ctdiw_phantom": phantom if event.dlp else None,
                     "scanning_length_mm": length,
                     "exposure_time_s": _number(event.exposure_time) if layout.reads_exposure_time else None})
    return rows


def sort_reading(layout: Layout, report) -> tuple[str, list[str]]:
    """`right`, `dropped` (a value expected but left empty, with a warning saying so) or `wrong`
    (a value stored that is not the printed one, or a value left empty without a warning), with
    what differed. `report` is the built DoseReport."""
    problems, dropped = [], []
    got = [{k: getattr(e, k) for k in ("acquisition_type", "ctdivol_mGy", "dlp_mGycm", "ctdiw_phantom",
                                        "scanning_length_mm", "exposure_time_s")} for e in report.ct.events]
    want = expected_rows(layout)
    if len(got) != len(want):
        return "wrong", [f"{len(got)} events, expected {len(want)}"]
    for index, (g, w) in enumerate(zip(got, want), 1):
        for key, value in w.items():
            if g[key] == value or (isinstance(value, float) and g[key] is not None and abs(g[key] - value) < 1e-6):
                continue
            if g[key] is None and key in ("scanning_length_mm", "exposure_time_s"):
                dropped.append(f"row {index} {key}")
            else:
                problems.append(f"row {index} {key}: {g[key]!r}, printed {value!r}")
    total = report.ct.total_dlp_mGycm
    if total is None or abs(total - layout.total_dlp_mGycm) > 1e-6:
        problems.append(f"total DLP {total}, printed {layout.total_dlp_mGycm}")
    if problems:
        return "wrong", problems
    if dropped:
        if len(report.warnings) < 1:
            return "wrong", [f"{d} left empty without a warning" for d in dropped]
        return "dropped", dropped
    return "right", []
