"""Legacy CT dose screens: find the dose-summary pages of a study, OCR them, parse the text.

Scanners without RDSR (old Toshiba Aquilion, some GE) keep their dose summary only as a picture:
secondary captures of the console's dose screen. Page 1 carries `<<Dose Information>>` (DLP
totals per phantom), page 2 `<<Detail Information>>` (one row group per acquisition); a GE
"Dose Report" screen carries both on one page (spec toshiba.md §2, §5).

The OCR is a general engine (tesseract), never templates of one font, because real screens
use bitmap fonts we have no sample of. OCR misreads digits (0/9/8, 3/8), so a summary is read
under several image preparations and a reading is only accepted when two of them agree on every
dose value, and when its rows' DLP add up to the screen's own total (`cross_check`).

Pure apart from the OCR subprocess: datasets in, a `DoseScreen` out; no files, no network.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterable, Literal, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydicom.dataset import Dataset

from shared.dicom import SECONDARY_CAPTURE, number, text
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
    summary_uid: Optional[str] = None  # SeriesInstanceUID of the summary's pages (read_summary)

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


# --- Which objects are dose pages ----------------------------------------------------------------


@dataclass
class DoseSummary:
    """The pages of one dose summary, in page order (InstanceNumber)."""

    series_instance_uid: Optional[str]
    pages: list[Dataset]


def _image_type(ds: Dataset) -> list[str]:
    value = ds.get("ImageType")
    if value is None:
        return []
    values = list(value) if not isinstance(value, str) else value.split("\\")
    return [str(v).strip().upper() for v in values]


def is_dose_page(ds: Dataset) -> bool:
    """A dose-screen page: a secondary capture whose ImageType is exactly DERIVED\\SECONDARY
    (Toshiba; other SCs carry a third value such as DISPLAY, MPR, MULTI_FORMAT_RASTER), or a GE
    "Dose Report" screen save (series 999 or 10999)."""
    sop_class = text(ds, "SOPClassUID") or ""
    if not (sop_class == SECONDARY_CAPTURE or sop_class.startswith(SECONDARY_CAPTURE + ".")):
        return False
    image_type = _image_type(ds)
    if image_type == ["DERIVED", "SECONDARY"]:
        return True
    manufacturer = (text(ds, "Manufacturer") or "").upper()
    series = number(ds.get("SeriesNumber"))
    return (image_type == ["DERIVED", "SECONDARY", "SCREEN SAVE"] and "GE" in manufacturer.split()
            and series in (999.0, 10999.0))


def find_dose_summaries(datasets: Iterable[Dataset]) -> list[DoseSummary]:
    """The study's dose summaries: dose pages grouped by series, each in InstanceNumber order.

    Toshiba stores two pages per summary in one series; a study scanned in several sessions has
    several summaries. The same object twice counts once; a second page with an InstanceNumber
    already taken in its series is left out (the first one read stays). No dose page at all is
    a Failed: there is nothing to build from."""
    datasets = list(datasets)
    by_series: dict[Optional[str], list[Dataset]] = {}
    seen: set[str] = set()
    for ds in datasets:
        if not is_dose_page(ds):
            continue
        sop = text(ds, "SOPInstanceUID") or f"#{id(ds)}"
        if sop in seen:
            continue
        seen.add(sop)
        by_series.setdefault(text(ds, "SeriesInstanceUID"), []).append(ds)
    if not by_series:
        raise Failed(f"no dose summary among {len(datasets)} objects: no secondary capture with "
                     "ImageType exactly DERIVED\\SECONDARY (nor a GE dose report screen)")
    summaries = []
    for series, pages in by_series.items():
        ordered: list[Dataset] = []
        taken: set[float] = set()
        for ds in sorted(pages, key=_page_order):
            instance = number(ds.get("InstanceNumber"))
            if instance is not None and instance in taken:
                continue
            if instance is not None:
                taken.add(instance)
            ordered.append(ds)
        summaries.append(DoseSummary(series, ordered))
    summaries.sort(key=lambda s: (_page_time(s.pages[0]), s.series_instance_uid or ""))
    return summaries


def _page_order(ds: Dataset) -> tuple:
    instance = number(ds.get("InstanceNumber"))
    return (instance is None, instance or 0.0)


def _page_time(ds: Dataset) -> str:
    return (text(ds, "ContentDate") or "") + (text(ds, "ContentTime") or text(ds, "SeriesTime") or "")


# --- OCR -------------------------------------------------------------------------------------


class OcrUnavailable(RuntimeError):
    """The OCR engine is not installed or does not run: a deployment fault, not the object's."""


@dataclass(frozen=True)
class Preparation:
    """How a page image is prepared for the OCR: upscale factor and Gaussian blur radius (px,
    after scaling). Screen fonts are small (about 12 px capitals) and pure binary; the engine
    reads smoothed, larger glyphs more reliably, and different preparations make different
    mistakes, which is what the agreement rule relies on."""

    scale: float
    blur_px: float


PREPARATIONS: tuple[Preparation, ...] = (Preparation(2.0, 1.0), Preparation(3.0, 1.5), Preparation(1.5, 1.0))
# Characters a dose screen prints. Keeping the engine to these stops it "recognising" digits as
# look-alike symbols (@ for 0, } for ), | for 1), which measurably cut misread numbers.
CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.:()<>/%+-[]_ "
TESSERACT = os.environ.get("DOSEFLOW_TESSERACT", "tesseract")
OCR_TIMEOUT_S = 120


def ocr_available() -> bool:
    return shutil.which(TESSERACT) is not None


def page_images(ds: Dataset, prep: Preparation = PREPARATIONS[0]) -> list:
    """The page's frames as Pillow images, dark text on white, scaled and smoothed.

    Text is whatever differs clearly from the background (the most common value), so white
    or grey text on black, dark on light, MONOCHROME1/2, 8 or 16 bit and RGB all come out the
    same without trusting the stored window."""
    from PIL import Image, ImageFilter

    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # no pixel data, unsupported compression, truncated
        raise Failed(f"dose screen {text(ds, 'SOPInstanceUID')}: pixel data not readable: "
                     f"{type(exc).__name__}: {str(exc)[:160]}") from exc
    samples = int(number(ds.get("SamplesPerPixel")) or 1)
    if samples > 1:
        pixels = pixels.astype(np.float32).mean(axis=-1)
    frames = pixels if pixels.ndim == 3 else pixels[np.newaxis, ...]
    images = []
    for frame in frames:
        frame = frame.astype(np.float32)
        values, counts = np.unique(frame, return_counts=True)
        background = values[np.argmax(counts)]
        distance = np.abs(frame - background)
        if distance.max() <= 0:
            continue  # a blank frame carries no text
        ink = distance > 0.25 * distance.max()
        image = Image.fromarray(np.where(ink, 0, 255).astype(np.uint8))
        if prep.scale != 1:
            image = image.resize((round(image.width * prep.scale), round(image.height * prep.scale)),
                                 Image.BICUBIC)
        if prep.blur_px:
            image = image.filter(ImageFilter.GaussianBlur(prep.blur_px))
        images.append(image)
    if not images:
        raise Failed(f"dose screen {text(ds, 'SOPInstanceUID')}: the page is blank")
    return images


def ocr_image(image) -> str:
    """Tesseract on one image, as a subprocess without a shell: PNG on stdin, text on stdout.
    Page segmentation 6 (one uniform block) keeps each screen row on one line."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    env = dict(os.environ)
    env.setdefault("OMP_THREAD_LIMIT", "1")  # several workers share the CPUs; threads only contend
    try:
        done = subprocess.run([TESSERACT, "stdin", "stdout", "--psm", "6", "-l", "eng",
                               "-c", f"tessedit_char_whitelist={CHARACTERS}"],
                              input=buffer.getvalue(), capture_output=True, timeout=OCR_TIMEOUT_S,
                              env=env, check=False)
    except FileNotFoundError as exc:
        raise OcrUnavailable(f"OCR engine {TESSERACT!r} not found (install tesseract-ocr)") from exc
    except subprocess.TimeoutExpired as exc:
        raise Failed(f"OCR took longer than {OCR_TIMEOUT_S} s on a dose screen page") from exc
    if done.returncode != 0:
        raise OcrUnavailable(f"OCR engine failed (exit {done.returncode}): "
                             f"{done.stderr.decode('utf-8', 'replace')[:200]}")
    return done.stdout.decode("utf-8", "replace")


def read_screen_text(ds: Dataset, prep: Preparation = PREPARATIONS[0]) -> str:
    """The OCR text of one dose-screen page (all frames, in order)."""
    return "\n".join(ocr_image(image) for image in page_images(ds, prep))


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
            screen = parse_dose_screen(page_text)
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
    return result


def _describe(screen: DoseScreen) -> str:
    rows = ", ".join(f"{r.ctdivol_mGy}/{r.dlp_mGycm}" for r in screen.rows)
    return f"rows CTDIvol/DLP [{rows}] total {screen.total_dlp_mGycm}"


def _with_pages(screen: DoseScreen, summary: DoseSummary) -> DoseScreen:
    rows = [row.model_copy(update={"summary_uid": summary.series_instance_uid}) for row in screen.rows]
    return screen.model_copy(update={
        "rows": rows,
        "series_instance_uid": summary.series_instance_uid,
        "page_sop_instance_uids": [text(p, "SOPInstanceUID") or "" for p in summary.pages],
        "page_sop_class_uids": [text(p, "SOPClassUID") or "" for p in summary.pages],
    })


def read_dose_screens(datasets: Iterable[Dataset]) -> list[DoseScreen]:
    """Every dose summary of a study, read and cross-checked, in acquisition order."""
    return [read_summary(s) for s in find_dose_summaries(datasets)]


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


# --- Parsing ---------------------------------------------------------------------------------
# The text is normalised line by line before anything is matched: upper case, numbers rejoined
# where the OCR split them ("352. 6", "- 40.50"), letters the OCR put inside numbers turned back
# into digits (O->0, l/I/|->1), and the phantom suffix glued to its value ("9.8 (Body}" -> "9.8(BODY)").

# The suffix is glued only when no ':' follows: "(Head): 58.3 (Body): -" is a label, not a suffix.
_PHANTOM_TEXT = r"[({\[]\s*(?P<ph>H\s*E\s*A\s*D|B\s*[O0Q]\s*D\s*[YV])\s*[)}\]]?+(?!\s*[:;])"
_PHANTOM_GLUE = re.compile(r"(\d)\s*" + _PHANTOM_TEXT)
_DIGITISH = re.compile(r"^([+-]?)([0-9OIL|]*[0-9][0-9OIL|]*(?:\.[0-9OIL|]+)?)(\((?:HEAD|BODY)\))?$")
_VALUE = re.compile(r"^(?P<num>[+-]?\d+(?:\.\d+)?)(?:\((?P<ph>HEAD|BODY)\))?$")


def _normalise_line(line: str) -> str:
    s = line.upper().replace("\u2014", "-").replace("\u2013", "-").replace("\u2212", "-")
    s = re.sub(r"(\d)(?:\s+[.,]\s*|[.,]\s+)(\d)", r"\1.\2", s)  # "352. 6", "392 .3" -> "352.6", "392.3"
    s = re.sub(r"(\d),(\d)", r"\1.\2", s)  # "12,4" -> "12.4": no screen prints thousands separators
    s = re.sub(r"(^|\s)([+-])\s+(\d)", r"\1\2\3", s)  # "- 40.50" -> "-40.50"
    s = re.sub(r":(?=\S)", ": ", s)  # "(Head):11O2.4": the value is a token of its own
    s = _PHANTOM_GLUE.sub(lambda m: f"{m.group(1)}({'HEAD' if m.group('ph')[0] == 'H' else 'BODY'})", s)
    return " ".join(_fix_digits(tok) for tok in s.split())


def _fix_digits(token: str) -> str:
    m = _DIGITISH.match(token)
    if not m:
        return token
    body = m.group(2).translate(str.maketrans({"O": "0", "I": "1", "L": "1", "|": "1"}))
    return m.group(1) + body + (m.group(3) or "")


def _decimals(number_text: str) -> int:
    return len(number_text.split(".")[1]) if "." in number_text else 0


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def scan_type_of(word: str) -> Optional[str]:
    """The scan-type word a row starts with, tolerating OCR slips: letters only up to the first
    other character ("Scanoscope[2]", "Helical_CT"), digits read back as letters, and one wrong
    letter in words of six or more letters (HELLCAL, SCANOSC0PE), I and L taken as one letter,
    or a word the OCR cut after at least five letters ("SCANOSC OPE")."""
    word = word.upper().translate(str.maketrans({"0": "O", "1": "I", "5": "S", "|": "I"}))
    letters = re.match(r"[A-Z]+", word)
    if not letters:
        return None
    candidate = letters.group(0)
    if candidate in SCAN_TYPES:
        return candidate
    folded = _fold(candidate)
    for known in SCAN_TYPES:
        target = _fold(known)
        if folded == target:
            return known
        if len(known) >= 6 and abs(len(folded) - len(target)) <= 1 and _edit_distance(folded, target) <= 1:
            return known
        if len(candidate) >= 5 and target.startswith(folded):  # "SCANOSC OPE" split by the OCR
            return known
    return None


def _leading_scan_type(tokens: list[str]) -> tuple[Optional[str], int]:
    """The scan type a line starts with and how many tokens it takes: the OCR may split the
    word ("Sc anosc ope"), so up to three leading all-letter pieces are tried joined, longest
    first."""
    for count in (3, 2, 1):
        if len(tokens) < count or not all(t.isalpha() for t in tokens[: count - 1]):
            continue
        if count > 1 and not tokens[count - 1].isalpha():
            continue
        found = scan_type_of("".join(tokens[:count]))
        if found:
            return found, count
    return None, 0


def _fold(word: str) -> str:
    """I and L are one letter to the OCR of small screen fonts (HeIicaI, DYNAMLC)."""
    return word.replace("L", "I")


# Column labels of the detail tables (spec §2.5), most specific first. Dose labels tolerate the
# OCR's usual slips (CTDIvo1, CTDlvol, DLP.e).
_I = r"[I1L|]"
_COLUMN_LABELS: tuple[tuple[str, str], ...] = (
    ("image_number", r"TOTAL\s*IMAGE\s*NUMBER"),
    ("eff_ctdivol", rf"EFF\s*\.?\s*CTD{_I}\s*VO{_I}(?:\s*\.\s*E)?(?:\s*\(\s*MGY\s*\))?(?:\s*\(?\s*MEAN\s*\)?)?"),
    ("eff_dlp", rf"EFF\s*\.?\s*D{_I}P(?:\s*\.\s*E)?(?:\s*\(\s*MGYCM\s*\))?"),
    ("ctdiair", rf"CTD{_I}\s*A{_I}R"),
    ("dlpair", rf"D{_I}P\s*A{_I}R"),
    ("ctdivol", rf"CTD{_I}\s*VO{_I}(?:\s*\.\s*E)?(?:\s*\(\s*MGY\s*\))?(?:\s*\(?\s*MEAN\s*\)?)?"),
    ("dlp", rf"D{_I}P(?:\s*\.\s*E)?(?:\s*\(\s*MGYCM\s*\))?"),
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
_PROTOCOL = re.compile(r"^(\d{1,2})\s*[.,]\s*(?=\S*[A-Z])(.*)$")


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
    """The lines of one acquisition: the scan-type line and its continuation lines."""

    scan_type: str
    lines: list[list[str]]
    headers: list[list[str]]
    protocol: Optional[str]
    block: Optional[int]


def parse_dose_screen(screen_text: str) -> DoseScreen:
    """Parse the OCR text of a dose summary (pages joined in order) and cross-check it.

    Raises Failed when no total or no acquisition row can be read, when a row other than a
    localizer lacks CTDIvol or DLP, or when the rows' DLP do not add up to the total."""
    lines = [(_normalise_line(raw), raw.strip()) for raw in screen_text.splitlines()]
    lines = [(line, raw) for line, raw in lines if line]
    if any("TOTAL EXAM DLP" in line for line, _ in lines):
        screen = _parse_ge([line for line, _ in lines])
    else:
        screen = _parse_toshiba(lines)
    cross_check(screen)
    screen.warnings.extend(ctdivol_consistency(screen))
    return screen


def _parse_toshiba(lines: list[tuple[str, str]]) -> DoseScreen:
    section = None
    totals: dict[str, list[tuple[float, int]]] = {"head": [], "body": [], "none": []}
    eff_totals: dict[str, list[tuple[float, int]]] = {"head": [], "body": [], "none": []}
    ctdivol_totals: dict[str, list[tuple[float, int]]] = {"head": [], "body": [], "none": []}
    groups: list[_Group] = []
    headers: list[list[str]] = []
    headers_closed = False  # a header line after rows starts a new table
    protocol: Optional[str] = None
    block: Optional[int] = None
    for line, raw in lines:
        found = _section_of(line)
        if found:
            section = found
            headers, headers_closed, protocol, block = [], False, None, None
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
        elif columns and not any(_VALUE.match(t) for t in tokens):
            if headers_closed:
                headers, headers_closed = [], False
            headers.append(columns)
        elif scan_type:
            headers_closed = True
            groups.append(_Group(scan_type, [tokens[used:]], list(headers), protocol, block))
        elif groups and headers_closed and (not headers or len(groups[-1].lines) < len(headers)):
            groups[-1].lines.append(tokens)
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
    label = re.search(rf"(EFF\s*\.?\s*)?(TOTAL\s+)?(?:(?P<ctdi>CTD{_I}\s*VO{_I})|D{_I}P(?!\s*A{_I}R))", line)
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
        header = group.headers[index] if index < len(group.headers) else []
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
    return row


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


# --- GE "Dose Report" -----------------------------------------------------------------------
# `<series> <TYPE> <S|I>pos-<S|I>pos <CTDIvol> <DLP> <phantom>` rows and `Total Exam DLP: x`
# (spec §5). S is superior (+), I inferior (-).

_GE_ROW = re.compile(
    r"^(?P<series>\d+)\s+(?P<type>[A-Z0-9_]+)\s+"
    r"(?:(?P<s1>[SI])\s*(?P<p1>\d+(?:\.\d+)?)\s*-\s*(?P<s2>[SI])\s*(?P<p2>\d+(?:\.\d+)?)|-)\s+"
    r"(?P<ctdi>\d+(?:\.\d+)?|-)\s+(?P<dlp>\d+(?:\.\d+)?|-)\s*(?P<ph>(?:HEAD|BODY)\s*\d*|-)?")


def _parse_ge(lines: list[str]) -> DoseScreen:
    rows: list[ScreenRow] = []
    total: Optional[tuple[float, int]] = None
    for line in lines:
        m = re.search(r"TOTAL\s+EXAM\s+DLP\s*[:.]*\s*(\d+(?:\.\d+)?)", line)
        if m:
            total = (float(m.group(1)), _decimals(m.group(1)))
            continue
        m = _GE_ROW.match(line)
        if not m:
            continue
        scan_type = scan_type_of(m.group("type"))
        if scan_type is None:
            continue
        row = ScreenRow(scan_type=scan_type, acquisition_type=SCAN_TYPES[scan_type])
        if m.group("p1") is not None:
            row.start_position_mm = float(m.group("p1")) * (1 if m.group("s1") == "S" else -1)
            row.end_position_mm = float(m.group("p2")) * (1 if m.group("s2") == "S" else -1)
        decimals = []
        for name, key in (("ctdivol_mGy", "ctdi"), ("dlp_mGycm", "dlp")):
            if m.group(key) != "-":
                setattr(row, name, float(m.group(key)))
                decimals.append(_decimals(m.group(key)))
        row.dose_decimals = max(decimals) if decimals else 1
        phantom = (m.group("ph") or "").replace(" ", "")
        row.phantom = "head16" if phantom.startswith("HEAD") else "body32" if phantom.startswith("BODY") else None
        rows.append(row)
    if not rows:
        raise Failed("GE dose report: no acquisition row read")
    screen = DoseScreen(rows=rows)
    if total is not None:
        screen.dlp_unassigned_mGycm, screen.total_decimals = total
    return screen


# --- Cross-check -------------------------------------------------------------------------------


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
