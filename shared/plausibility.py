"""Plausibility of the numbers in a DoseReport: placeholders, human bounds, dose unit sanity.

Pure: one function, `check(report)`, run once after every extractor route (next to the pass
that blanks non-finite numbers), so the rules hold for every vendor and every route alike.

Three rules, each leaving a warning that starts with its kind (the quality report counts
warnings by that first word):

- **placeholder** — a 0 where the quantity cannot physically be 0 is a system's way of saying
  "not known" (an Agfa CR writes kVp 0, 0 µAs, weight 0 and size 0; Philips RDSRs weight
  0 kg): stored as absent. The quantities: kVp; the source-to-detector and source-to-isocentre
  distances; patient weight and size; and the tube current, exposure (mAs/µAs) and exposure
  time of an exposure that delivered dose. An event that itself states a dose of exactly 0
  for every dose it gives (a dose-free event) keeps its zeros. Dose values keep a real 0 (a
  surview's CTDIvol 0 is a measurement, not a placeholder).
- **implausible** — a patient value beyond human bounds (age over 125 years, weight over 400 kg,
  size over 2.5 m: a birth date of 1800-01-01, a size of 170 "m" written in cm) is stored as
  absent.
- **out of range** — a dose quantity outside its unit-sanity range (DOSE_RANGES, documented in
  README) is KEPT and warned about: a dose value is never changed by doseflow, but a value 1000×
  off is named so that a physicist checks the unit.

Age 0 is not a placeholder: a newborn is X-rayed on its day of birth (neonatal chest films),
and a birth date equal to the study date says exactly that. It is kept with a "suspect"
warning, because an anonymiser setting the birth date to the study date gives the same 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from pydantic import BaseModel

from shared.report import DoseReport

# --- human bounds -------------------------------------------------------------------------------

MAX_AGE_YEARS = 125.0  # the oldest documented human lived 122.5 years
MAX_WEIGHT_KG = 400.0  # above the heaviest patients any X-ray table carries (typically 200-320 kg)
MAX_SIZE_M = 2.5  # the tallest documented human was 2.72 m once; 2.5 m separates metres from cm

# --- placeholders -------------------------------------------------------------------------------

# Event fields that are never 0 for a real X-ray exposure: a tube does not emit at 0 kV, and an
# imaging geometry has a source away from its detector and isocentre.
NEVER_ZERO = ("kvp", "distance_source_to_detector_mm", "distance_source_to_isocenter_mm")
# Never 0 for an exposure that delivered dose; 0 is possible only for an event that reports no dose.
ZERO_ONLY_WITHOUT_DOSE = ("exposure_uAs", "tube_current_mA", "exposure_time_ms", "exposure_time_s")
# The event's dose values: an event stating each one as exactly 0 delivered nothing.
EVENT_DOSES = ("dap_Gym2", "dose_rp_Gy", "entrance_exposure_at_rp_mGy", "agd_mGy", "ctdivol_mGy", "dlp_mGycm")


# --- dose unit-sanity ranges --------------------------------------------------------------------


@dataclass(frozen=True)
class DoseRange:
    """A dose quantity's plausible non-zero range. `label` and `unit` are how the warning names
    it; `why` is the reason for the bounds (README's table is rendered from it)."""

    label: str
    unit: str
    low: float
    high: float
    scope: str  # "per event", "per study" (the object's totals), "per exposure"
    why: str


# A value outside its range is kept and warned about; 0 is never out of range (a real "no dose").
DOSE_RANGES: dict[str, DoseRange] = {
    "ct_event.ctdivol_mGy": DoseRange(
        "CTDIvol", "mGy", 0.005, 1000.0, "per event",
        "1000 mGy is the CTDIvol alert value NEMA XR-25 / AAPM Dose Check recommend for any scan (perfusion "
        "scans reach a few hundred); the lowest surview CTDIvol reported is a few hundredths of a mGy"),
    "ct_event.dlp_mGycm": DoseRange(
        "DLP", "mGy·cm", 0.01, 10000.0, "per event",
        "1000 mGy over a 10 cm perfusion, or 20-60 mGy over 1.5 m of body, stay below 10 000 mGy·cm"),
    "ct.total_dlp_mGycm": DoseRange(
        "DLP total", "mGy·cm", 0.01, 20000.0, "per study",
        "multiphase studies reach a few thousand mGy·cm; 20 000 is several times the highest published"),
    "projection_event.dap_Gym2:radiography": DoseRange(
        "DAP", "Gy·m²", 1e-8, 0.01, "for one radiographic exposure",
        "the heaviest radiograph (lateral lumbar spine, large patient) gives about 5e-4 Gy·m² (5 Gy·cm²); "
        "0.01 is 20 times that. 1e-8 Gy·m² (0.1 mGy·cm²) is below an intra-oral dental exposure"),
    "projection_event.dap_Gym2": DoseRange(
        "DAP", "Gy·m²", 1e-8, 0.1, "per event",
        "one fluoroscopy run or acquisition series of minutes stays below 0.1 Gy·m² (1000 Gy·cm²)"),
    "projection_plane.dap_Gym2": DoseRange(
        "DAP total", "Gy·m²", 1e-8, 1.0, "per study",
        "the highest interventional totals published are 0.2-0.5 Gy·m² (2000-5000 Gy·cm²)"),
    "projection_event.dose_rp_Gy": DoseRange(
        "Dose (RP)", "Gy", 1e-7, 5.0, "per event",
        "5 Gy is the SIR significant-dose level for a whole procedure; one event beyond it is a unit slip "
        "(mGy read as Gy)"),
    "projection_plane.dose_rp_Gy": DoseRange(
        "Dose (RP) total", "Gy", 1e-7, 20.0, "per study",
        "beyond the 15 Gy skin dose that counts as a sentinel event"),
    "mammography_event.agd_mGy": DoseRange(
        "AGD", "mGy", 0.05, 20.0, "per exposure",
        "1-3 mGy per view (MQSA limit 3 mGy for the standard breast); 20 mGy covers magnification views of "
        "large dense breasts; below 0.05 mGy is a dose in Gy or dGy read as mGy"),
    "mammography.accumulated_agd_mGy": DoseRange(
        "accumulated AGD", "mGy", 0.05, 100.0, "per breast per study",
        "a screening study is 2-6 mGy per breast; 100 mGy is dozens of views"),
    "projection_plane.total_fluoro_time_s": DoseRange(
        "fluoro time", "s", 0.0, 14400.0, "per study",
        "the longest procedures published use 2-3 hours of fluoroscopy; 4 hours (a time in ms read as s "
        "is far beyond)"),
}


def ranges_markdown() -> str:
    """README's table of the ranges (a test keeps the two equal)."""
    lines = ["| quantity | scope | plausible range | why |", "| --- | --- | --- | --- |"]
    for r in DOSE_RANGES.values():
        lines.append(f"| {r.label} | {r.scope} | {r.low:g} - {r.high:g} {r.unit} | {r.why} |")
    return "\n".join(lines)


RADIOGRAPHY = ("DX", "CR", "PX", "MG")


def check(report: DoseReport) -> None:
    """Apply the three rules to `report` in place, each change or doubt with a warning."""
    _patient(report)
    for path, event in _events(report):
        _event_placeholders(report, path, event)
    _dose_ranges(report)


# --- patient ------------------------------------------------------------------------------------


def _patient(report: DoseReport) -> None:
    p = report.patient
    for name, bound, unit in (("weight_kg", MAX_WEIGHT_KG, "kg"), ("size_m", MAX_SIZE_M, "m")):
        value = getattr(p, name)
        if value == 0:
            _blank(report, p, f"patient.{name}", "placeholder", f"0 {unit} is not a patient's {name[:-2].rstrip('_')}")
        elif value is not None and value > bound:
            _blank(report, p, f"patient.{name}", "implausible",
                   f"{value:g} {unit} is beyond human bounds (over {bound:g} {unit}: a wrong unit?)")
    if p.age_years is not None and p.age_years > MAX_AGE_YEARS:
        _blank(report, p, "patient.age_years", "implausible",
               f"{p.age_years:.1f} years is beyond human bounds (over {MAX_AGE_YEARS:g}: a placeholder birth date?)")
    elif p.age_years == 0:
        report.warnings.append("suspect: patient.age_years is 0 (birth date = study date, or age 000): a newborn, "
                               "or a placeholder; kept")


# --- events -------------------------------------------------------------------------------------


def _events(report: DoseReport) -> Iterable[tuple[str, BaseModel]]:
    for section in ("ct", "projection", "mammography"):
        sec = getattr(report, section)
        if sec is None:
            continue
        for i, event in enumerate(sec.events):
            yield f"{section}.events[{i}]", event
            for j, source in enumerate(getattr(event, "sources", [])):  # CT X-ray sources
                yield f"{section}.events[{i}].sources[{j}]", source


def _event_placeholders(report: DoseReport, path: str, event: BaseModel) -> None:
    fields = type(event).model_fields
    for name in NEVER_ZERO:
        if name in fields and getattr(event, name) == 0:
            _blank(report, event, f"{path}.{name}", "placeholder", "0 is not physical for an X-ray exposure")
    if _dose_free(report, path, event):
        return
    for name in ZERO_ONLY_WITHOUT_DOSE:
        if name in fields and getattr(event, name) == 0:
            _blank(report, event, f"{path}.{name}", "placeholder", "0 for an exposure that delivered dose")


def _dose_free(report: DoseReport, path: str, event: BaseModel) -> bool:
    """True when the event (a CT source: its event) states its doses and every one is exactly 0."""
    if ".sources[" in path:
        event = report.ct.events[int(path.split("[")[1].split("]")[0])]
    doses = [getattr(event, name) for name in EVENT_DOSES if name in type(event).model_fields]
    stated = [d for d in doses if d is not None]
    return bool(stated) and all(d == 0 for d in stated)


# --- dose ranges --------------------------------------------------------------------------------


def _dose_ranges(report: DoseReport) -> None:
    modality = report.study.modality
    if report.ct is not None:
        for i, e in enumerate(report.ct.events):
            _range(report, "ct_event.ctdivol_mGy", e.ctdivol_mGy, f"ct.events[{i}].ctdivol_mGy")
            _range(report, "ct_event.dlp_mGycm", e.dlp_mGycm, f"ct.events[{i}].dlp_mGycm")
        _range(report, "ct.total_dlp_mGycm", report.ct.total_dlp_mGycm, "ct.total_dlp_mGycm")
    if report.projection is not None:
        dap_key = "projection_event.dap_Gym2" + (":radiography" if modality in RADIOGRAPHY else "")
        for i, e in enumerate(report.projection.events):
            _range(report, dap_key, e.dap_Gym2, f"projection.events[{i}].dap_Gym2", modality)
            _range(report, "projection_event.dose_rp_Gy", e.dose_rp_Gy, f"projection.events[{i}].dose_rp_Gy")
        for i, p in enumerate(report.projection.planes):
            where = f"projection.planes[{i}]"
            for name in ("dap_total_Gym2", "fluoro_dap_total_Gym2", "acquisition_dap_total_Gym2"):
                _range(report, "projection_plane.dap_Gym2", getattr(p, name), f"{where}.{name}")
            for name in ("dose_rp_total_Gy", "fluoro_dose_rp_total_Gy", "acquisition_dose_rp_total_Gy"):
                _range(report, "projection_plane.dose_rp_Gy", getattr(p, name), f"{where}.{name}")
            _range(report, "projection_plane.total_fluoro_time_s", p.total_fluoro_time_s,
                   f"{where}.total_fluoro_time_s")
    if report.mammography is not None:
        for i, e in enumerate(report.mammography.events):
            _range(report, "mammography_event.agd_mGy", e.agd_mGy, f"mammography.events[{i}].agd_mGy")
        accumulated = report.mammography.accumulated_agd_mGy
        for side in ("left", "right", "both"):
            _range(report, "mammography.accumulated_agd_mGy", getattr(accumulated, side),
                   f"mammography.accumulated_agd_mGy.{side}")


def _range(report: DoseReport, key: str, value: Optional[float], path: str, modality: Optional[str] = None) -> None:
    if value is None or value == 0:
        return
    r = DOSE_RANGES[key]
    if r.low <= value <= r.high:
        return
    scope = f"{r.scope} ({modality})" if modality and "radiographic" in r.scope else r.scope
    side = "above" if value > r.high else "below"
    report.warnings.append(f"out of range: {path}: {r.label} {value:g} {r.unit} {scope} is {side} the plausible "
                           f"{r.low:g}-{r.high:g} {r.unit}: check units; kept")


def _blank(report: DoseReport, owner: BaseModel, path: str, kind: str, why: str) -> None:
    value = getattr(owner, path.rsplit(".", 1)[1])
    setattr(owner, path.rsplit(".", 1)[1], None)
    report.warnings.append(f"{kind}: {path}: {value:g}: {why}; stored as absent")
