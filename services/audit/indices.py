"""Per-study dose indices, pure functions of a DoseReport and the reference data:

- effective-dose estimate E = k x DLP per event (spec dose-references §2), summed for the study
  only when every event has one (no partial sums);
- SSDE = f(Dw) x CTDIvol per event (AAPM 204 fits, Dw per AAPM 220; spec §4), a value the
  scanner reports kept as reported;
- the DRL comparison of the study's examination category (spec §1.2, §1.5).

Every value that cannot be computed is None with the reason in words, never 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from services.audit.mapping import ProtocolMap
from services.audit.references import DrlRow, DrlSet, KSet
from services.audit.water_equivalent import (IMAGE_METHOD_PREFIX, Measurement, event_dw,  # noqa: F401 (re-exported)
                                             water_equivalent_area_mm2, water_equivalent_diameter_mm)
from shared.report import REPORTED_DW, REPORTED_SSDE, Ct, CtEvent, DoseReport
# CID 10023 "Size Specific Dose Estimation Method for CT": 113988 Estimated from Water Equivalent Diameter
COMPUTED_SSDE = "DCM 113988 Estimated from Water Equivalent Diameter: AAPM 204 {fit} fit of Dw ({dw})"
LOCALIZER = "constant angle acquisition"  # CT Acquisition Type DCM 113805, by its meaning as stored
ADULT_AGE_YEARS = 16  # adult DRL rows apply from this age [doseflow convention, spec §1.5]
HEAD_REGIONS = ("head", "head_neck")  # outside AAPM 204 (body CT only)


@dataclass(frozen=True)
class AuditConfig:
    protocol_map: ProtocolMap
    drl: DrlSet
    k: KSet
    regions: dict[str, str]  # target region meaning (lower case) -> body region


# --- effective dose -----------------------------------------------------------------------------


def body_region(event: CtEvent, regions: dict[str, str]) -> Optional[str]:
    text = (event.target_region or "").strip().lower()
    return regions.get(text) if text else None


def event_effective_dose(event: CtEvent, age_years: Optional[float], kset: KSet,
                         regions: dict[str, str]) -> tuple[Optional[float], Optional[str]]:
    """(E in mSv, None) or (None, why not)."""
    if event.dlp_mGycm is None:
        return None, "no DLP"
    if not (event.target_region or "").strip():
        return None, "no target region"
    region = body_region(event, regions)
    if region is None:
        return None, f"target region {event.target_region!r} is not in the region table"
    row = kset.row_for(region)
    if row is None:
        return None, f"{kset.provenance.id} has no k for region {region}"
    if age_years is None:
        return None, "no patient age"
    if event.ctdiw_phantom is None:
        return None, "no CTDIw phantom"
    if event.ctdiw_phantom != row.phantom:
        return None, (f"phantom_mismatch: DLP on the {event.ctdiw_phantom} phantom, the k for {region} "
                      f"assumes {row.phantom}")
    band = kset.band(age_years)
    k = row.k.get(band)
    if k is None:
        return None, f"{kset.provenance.id} has no k for region {region} at age band {band}"
    return k * event.dlp_mGycm, None


def study_effective_dose(ct: Ct, age_years: Optional[float], kset: KSet,
                         regions: dict[str, str]) -> tuple[Optional[float], Optional[str], list]:
    """(total E in mSv or None, why not, [(E, reason) per event]).

    No partial sums: every event with a DLP needs an estimate. An event without a DLP (a localizer
    some scanners record without dose) is left out only when the other events' DLPs add up to the
    study's total DLP, i.e. when the scanner's own total says it carried none."""
    per_event = [event_effective_dose(e, age_years, kset, regions) for e in ct.events]
    with_dlp = [(i, e, r) for i, (e, r) in enumerate(zip(ct.events, per_event), start=1) if e.dlp_mGycm is not None]
    if not with_dlp:
        return None, "no event has a DLP", per_event
    for i, _, (value, reason) in with_dlp:
        if value is None:
            return None, f"event {i}: {reason}", per_event
    if len(with_dlp) < len(ct.events):
        dlp_sum = sum(e.dlp_mGycm for _, e, _ in with_dlp)
        total = ct.total_dlp_mGycm
        if total is None or abs(dlp_sum - total) > 1e-3 * max(abs(total), 1.0):
            first = next(i for i, e in enumerate(ct.events, start=1) if e.dlp_mGycm is None)
            return None, (f"event {first}: no DLP, and the events' DLPs ({dlp_sum:g} mGy·cm) do not "
                          f"account for the total DLP ({total if total is not None else 'not reported'})"), per_event
    return sum(r[0] for _, _, r in with_dlp), None, per_event


# --- SSDE and water-equivalent diameter ---------------------------------------------------------

# AAPM 204 exponential fits f = a x exp(-b x D), D in cm, and the D range tabulated (spec §4.1, V2)
SSDE_FITS = {"body32": (3.704369, 0.03671937, 8.0, 45.0), "head16": (1.874799, 0.03871313, 6.0, 55.0)}


def ssde_factor(dw_cm: float, phantom: str) -> Optional[float]:
    """AAPM 204 conversion factor for CTDIvol on `phantom`; None outside the tabulated range."""
    a, b, low, high = SSDE_FITS[phantom]
    if not low <= dw_cm <= high:
        return None
    return a * math.exp(-b * dw_cm)


def event_ssde(event: CtEvent, regions: dict[str, str]) -> tuple[Optional[float], Optional[str], Optional[str]]:
    """(SSDE in mGy, method, None) or (None, None, why not) for an event without a reported SSDE."""
    if event.water_equivalent_diameter_mm is None:
        return None, None, "no water-equivalent diameter (not in the RDSR, no image measured)"
    if event.ctdivol_mGy is None:
        return None, None, "no CTDIvol"
    if event.ctdiw_phantom is None:
        return None, None, "no CTDIw phantom"
    if not (event.target_region or "").strip():
        return None, None, "no target region (SSDE is for body CT only)"
    region = body_region(event, regions)
    if region is None:
        return None, None, f"target region {event.target_region!r} is not in the region table"
    if region in HEAD_REGIONS:
        return None, None, "head CT is outside AAPM Report 204 (body CT only)"
    dw_cm = event.water_equivalent_diameter_mm / 10.0
    f = ssde_factor(dw_cm, event.ctdiw_phantom)
    if f is None:
        low, high = SSDE_FITS[event.ctdiw_phantom][2:]
        return None, None, f"Dw {dw_cm:.4g} cm outside the AAPM 204 range {low:g}-{high:g} cm"
    dw_source = event.water_equivalent_diameter_method or "Dw source not recorded"
    return f * event.ctdivol_mGy, COMPUTED_SSDE.format(fit="32 cm" if event.ctdiw_phantom == "body32" else "16 cm",
                                                       dw=dw_source), None


# --- DRL comparison -----------------------------------------------------------------------------


def is_localizer(event: CtEvent) -> bool:
    return (event.acquisition_type or "").strip().lower() == LOCALIZER


def study_ctdivol(ct: Ct, phantom: str) -> Optional[float]:
    """The largest CTDIvol of the non-localizer events on `phantom` (the UK table is per sequence)."""
    values = [e.ctdivol_mGy for e in ct.events
              if not is_localizer(e) and e.ctdiw_phantom == phantom and e.ctdivol_mGy is not None]
    return max(values) if values else None


def study_dlp(ct: Ct, phantom: str) -> Optional[float]:
    """The examination DLP: the reported total when no event is on another phantom; otherwise the
    sum over the events on `phantom` (events on another phantom are left out, spec §1.2 step 6)."""
    other = [e for e in ct.events if e.ctdiw_phantom is not None and e.ctdiw_phantom != phantom]
    if not other and ct.total_dlp_mGycm is not None:
        return ct.total_dlp_mGycm
    same = [e for e in ct.events if e.ctdiw_phantom == phantom]
    if not same or any(e.dlp_mGycm is None for e in same):
        return None
    return sum(e.dlp_mGycm for e in same)


def drl_row_for(report: DoseReport, category: Optional[str], drl: DrlSet) -> tuple[Optional[DrlRow], Optional[str]]:
    """The DRL row a study is compared with, or None and why not."""
    if report.ct is None:
        return None, "not a CT study"
    if category is None:
        return None, "no examination category (no protocol mapping rule matches)"
    row = drl.row_for(category)
    if row is None:
        return None, f"{drl.provenance.id} has no row for {category}"
    if drl.population == "adult":
        age = report.patient.age_years
        if age is None:
            return None, "no patient age (the DRLs are for adults)"
        if age < ADULT_AGE_YEARS:
            return None, f"patient aged {age:.3g}: the DRLs are for adults ({ADULT_AGE_YEARS} and over)"
    return row, None


def drl_ratios(report: DoseReport, row: DrlRow) -> tuple[Optional[float], Optional[float], Optional[str]]:
    """(CTDIvol ratio, DLP ratio, why a ratio is null)."""
    reasons = []
    ctdivol, dlp = study_ctdivol(report.ct, row.phantom), study_dlp(report.ct, row.phantom)
    r_ctdivol = r_dlp = None
    if row.ctdivol_mGy is None:
        reasons.append(f"{row.id} has no CTDIvol")
    elif ctdivol is None:
        reasons.append(f"no non-localizer CTDIvol on the {row.phantom} phantom")
    else:
        r_ctdivol = ctdivol / row.ctdivol_mGy
    if row.dlp_mGycm is None:
        reasons.append(f"{row.id} has no DLP")
    elif dlp is None:
        reasons.append(f"no DLP on the {row.phantom} phantom")
    else:
        r_dlp = dlp / row.dlp_mGycm
    return r_ctdivol, r_dlp, "; ".join(reasons) or None


# --- the whole report ---------------------------------------------------------------------------


def is_image_dw(event: CtEvent) -> bool:
    return (event.water_equivalent_diameter_method or "").startswith(IMAGE_METHOD_PREFIX)


def image_dw_by_event(ct: Ct, measurements: Sequence[Measurement]) -> dict[int, tuple[float, str]]:
    """Event index -> (Dw, method) from the study's measured images. An image names its event by
    its Irradiation Event UID (0008,3010); images without one are given to the study's only
    non-localizer event when there is exactly one (otherwise it cannot be told which)."""
    by_uid: dict[str, list[Measurement]] = {}
    unnamed: list[Measurement] = []
    for m in measurements:
        if m.irradiation_event_uid:
            by_uid.setdefault(m.irradiation_event_uid, []).append(m)
        else:
            unnamed.append(m)
    out = {}
    for i, event in enumerate(ct.events):
        dw, method = event_dw(by_uid.get(event.irradiation_event_uid or "", []))
        if dw is not None:
            out[i] = (dw, method)
    scans = [i for i, e in enumerate(ct.events) if not is_localizer(e)]
    if unnamed and len(scans) == 1 and scans[0] not in out:
        dw, method = event_dw(unnamed)
        out[scans[0]] = (dw, method + "; images without an irradiation event UID, the study's only scan event")
    return out


def enrich(report: DoseReport, cfg: AuditConfig, measurements: Optional[Sequence[Measurement]] = None) -> DoseReport:
    """A copy of the report with doseflow's own values recomputed from scratch: examination
    category, effective-dose estimates, SSDE (unless reported), DRL ratios. Idempotent.

    `measurements`: the Dw of the study's sampled CT images (the writer's ct_image_measurement
    rows). Given, an event without a Dw from the scanner takes the one of its images (or none);
    not given (a stored report enriched again), a Dw measured before is kept."""
    out = report.model_copy(deep=True)
    data = out.model_dump(mode="json")
    category = cfg.protocol_map.categorize(data)[0] if out.ct is not None else None
    object.__setattr__(out.study, "examination_category", category)
    ct = out.ct
    if ct is None:
        return out
    total, reason, per_event = study_effective_dose(ct, out.patient.age_years, cfg.k, cfg.regions)
    from_images = image_dw_by_event(ct, measurements) if measurements is not None else {}
    for i, (event, (value, why)) in enumerate(zip(ct.events, per_event)):
        _set(event, effective_dose_estimate_mSv=value, effective_dose_estimate_reason=why)
        if event.ssde_mGy is not None and event.ssde_method == REPORTED_SSDE:
            _set(event, ssde_reason=None)  # the scanner's SSDE and Dw stay together, as reported
            continue
        if event.water_equivalent_diameter_mm is not None and event.water_equivalent_diameter_method is None:
            _set(event, water_equivalent_diameter_method=REPORTED_DW)  # read before the method was recorded
        if measurements is not None and is_image_dw(event):
            _set(event, water_equivalent_diameter_mm=None, water_equivalent_diameter_method=None)
        if event.water_equivalent_diameter_mm is None and i in from_images:
            dw, method = from_images[i]
            _set(event, water_equivalent_diameter_mm=dw, water_equivalent_diameter_method=method)
        ssde, method, why = event_ssde(event, cfg.regions)
        _set(event, ssde_mGy=ssde, ssde_method=method, ssde_reason=why)
    _set(ct, effective_dose_estimate_mSv=total, effective_dose_estimate_reason=reason,
         effective_dose_estimate_method=cfg.k.method)
    row, why = drl_row_for(out, category, cfg.drl)
    r_ctdivol = r_dlp = None
    if row is not None:
        r_ctdivol, r_dlp, why = drl_ratios(out, row)
    _set(ct, drl_set=cfg.drl.provenance.label, drl_id=row.id if row else None,
         drl_ratio_ctdivol=r_ctdivol, drl_ratio_dlp=r_dlp, drl_reason=why)
    return out


def _set(model, **values) -> None:
    # object.__setattr__: the values are already validated floats/str; skip re-validating the model
    for name, value in values.items():
        object.__setattr__(model, name, value)
