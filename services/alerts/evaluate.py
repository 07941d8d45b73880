"""Alert evaluation: (a stored study, the same patient's other studies, the rules) -> alerts.

Pure: no database, no clock, no I/O. The alerts service and `doseflow import` call it with the
study as stored (after assembly, so a continued study is evaluated whole) and the other studies
that carry the same keyed patient pseudonym (`patient.id_hash`).

Per-patient sums include the study itself and the patient's studies that come *before* it
(study date, then time, then StudyInstanceUID) within the rule's window, date only, both ends
included. So a cumulative alert belongs to the study that crossed the level, whatever order the
studies arrived in; the service re-evaluates a patient's later studies when an earlier one
arrives (services/alerts/store.py).
"""
from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

from services.alerts.rules import (
    LEVEL_ORDER,
    Condition,
    DoseCheckRule,
    DrlRule,
    RangeRule,
    RuleSet,
    Scope,
    ThresholdRule,
)
from shared.report import CtEvent, DoseReport

LOCALIZER = "Constant Angle Acquisition"  # CT Acquisition Type DCM 113805 (meaning as stored)


@dataclass(frozen=True)
class RaisedAlert:
    study_instance_uid: str
    rule_id: str
    rule_version: int
    level: str
    title: str
    source: str
    values: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        """The deduplication key: never raised twice."""
        return (self.study_instance_uid, self.rule_id, self.rule_version, self.level)


# --- metrics of one study --------------------------------------------------------------------


def _sum(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _planes(report: DoseReport):
    if report.projection is None:
        return []
    planes = report.projection.planes
    # An "all" plane is a total of the others: count it only when there is nothing else.
    separate = [p for p in planes if p.plane != "all"]
    return separate or planes


def _ct_events(report: DoseReport, phantom: Optional[str] = None) -> list[CtEvent]:
    if report.ct is None:
        return []
    return [e for e in report.ct.events
            if e.acquisition_type != LOCALIZER and (phantom is None or e.ctdiw_phantom == phantom)]


def _max(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return max(present) if present else None


METRICS: dict[str, Callable[[DoseReport], Optional[float]]] = {
    "rp_dose_total_Gy": lambda r: _sum(p.dose_rp_total_Gy for p in _planes(r)),
    "dap_total_Gym2": lambda r: _sum(p.dap_total_Gym2 for p in _planes(r)),
    "fluoro_time_s": lambda r: _sum(p.total_fluoro_time_s for p in _planes(r)),
    # No route reads a peak skin dose today; a report that states one would carry it here.
    "peak_skin_dose_Gy": lambda r: getattr(r.projection, "peak_skin_dose_Gy", None),
    "ct_dlp_total_mGycm": lambda r: r.ct.total_dlp_mGycm if r.ct else None,
    "ct_ctdivol_max_mGy": lambda r: _max(e.ctdivol_mGy for e in _ct_events(r)),
    "ct_ctdivol_max_head16_mGy": lambda r: _max(e.ctdivol_mGy for e in _ct_events(r, "head16")),
    "ct_ctdivol_max_body32_mGy": lambda r: _max(e.ctdivol_mGy for e in _ct_events(r, "body32")),
}


def metric(report: DoseReport, name: str) -> Optional[float]:
    return METRICS[name](report)


# --- scope -------------------------------------------------------------------------------------


def categories_of(report: DoseReport, rules: RuleSet) -> set[str]:
    """The dose-audit mapping's category when the report has one, else every category whose
    patterns match the study's description, requested procedure or procedure."""
    if report.study.examination_category:
        return {report.study.examination_category}
    texts = [t for t in (report.study.study_description, report.study.requested_procedure,
                         report.study.procedure) if t]
    out = set()
    for c in rules.categories:
        if c.modalities and report.study.modality not in c.modalities:
            continue
        if any(p.search(t) for p in c.compiled for t in texts):
            out.add(c.name)
    return out


def device_names(report: DoseReport) -> list[str]:
    e = report.equipment
    names = [e.station_name, e.device_observer_uid, e.serial_number]
    if e.manufacturer or e.model:
        names.append(" ".join(p for p in (e.manufacturer, e.model) if p))
    return [n for n in names if n]


def device_matches(patterns: list[str], report: DoseReport) -> bool:
    if not patterns:
        return True
    names = [n.lower() for n in device_names(report)]
    return any(fnmatch.fnmatchcase(n, p.lower()) for p in patterns for n in names)


def in_scope(scope: Scope, report: DoseReport, categories: set[str]) -> bool:
    if scope.modalities and report.study.modality not in scope.modalities:
        return False
    if not device_matches(scope.devices, report):
        return False
    if scope.categories and not categories & set(scope.categories):
        return False
    if categories & set(scope.not_categories):
        return False
    if scope.age_years is not None and not scope.age_years.contains(report.patient.age_years):
        return False
    return True


# --- evaluation --------------------------------------------------------------------------------


def study_order(report: DoseReport) -> tuple:
    s = report.study
    return (s.study_date or "", s.study_time or "", s.study_instance_uid)


def _most_severe(conditions: list[Condition], value: float) -> Optional[Condition]:
    met = [c for c in conditions if c.met(value)]
    return max(met, key=lambda c: LEVEL_ORDER[c.level]) if met else None


def _comparison(c: Condition) -> dict:
    op, limit = c.comparison
    return {"comparison": op, "limit": limit}


def window_studies(report: DoseReport, others: list[DoseReport], days: int,
                   modalities: list[str]) -> Optional[list[DoseReport]]:
    """The study and the same patient's studies before it within `days` (date only, both ends
    included); None when the study has no pseudonym or no date (no sum is possible)."""
    pseudonym, date = report.patient.id_hash, report.study.study_date
    if not pseudonym or not date:
        return None
    day = dt.date.fromisoformat(date)
    start = (day - dt.timedelta(days=days)).isoformat()
    mine = study_order(report)
    out = [report]
    for o in others:
        if o.patient.id_hash != pseudonym or o.study.study_instance_uid == report.study.study_instance_uid:
            continue
        if not o.study.study_date or not (start <= o.study.study_date <= date) or study_order(o) >= mine:
            continue
        if modalities and o.study.modality not in modalities:
            continue
        out.append(o)
    return out


def _threshold(rule: ThresholdRule, report: DoseReport, others: list[DoseReport]) -> Optional[tuple[str, dict]]:
    if rule.per == "study":
        value = metric(report, rule.metric)
        extra: dict = {}
    else:
        studies = window_studies(report, others, rule.window_days, rule.scope.modalities)
        if studies is None:
            return None
        value = _sum(metric(s, rule.metric) for s in studies)
        extra = {"per": "patient", "window_days": rule.window_days, "studies_summed": len(studies),
                 "this_study": metric(report, rule.metric),
                 "first_study_date": min(s.study.study_date for s in studies)}
    if value is None:
        return None
    hit = _most_severe(rule.levels, value)
    if hit is None:
        return None
    return hit.level, {"metric": rule.metric, "value": value, **_comparison(hit), **extra}


def _range(rule: RangeRule, report: DoseReport) -> Optional[tuple[str, dict]]:
    value = metric(report, rule.metric)
    if value is None:
        return None
    base = {"metric": rule.metric, "value": value, "expected_min": rule.min, "expected_max": rule.max}
    if value < rule.min:
        return rule.level_low, {**base, "direction": "low"}
    if value > rule.max:
        return rule.level_high, {**base, "direction": "high"}
    return None


def _drl(rule: DrlRule, report: DoseReport) -> Optional[tuple[str, dict]]:
    value = metric(report, rule.metric)
    if value is None:
        return None
    ratio = value / rule.drl
    hit = _most_severe(rule.levels, ratio)
    if hit is None:
        return None
    return hit.level, {"metric": rule.metric, "value": value, "drl": rule.drl, "drl_source": rule.drl_source,
                       "ratio_to_drl": round(ratio, 6), **_comparison(hit)}


def _dose_check(rule: DoseCheckRule, report: DoseReport) -> Optional[tuple[str, dict]]:
    """Events whose Dose Check fired at the console, with what was configured, the forward
    estimate and the operator's reason for proceeding."""
    if report.ct is None:
        return None
    if rule.which == "alert":
        pairs = (("dlp", "dlp_alert_value_mGycm", "accumulated_dlp_forward_estimate_mGycm"),
                 ("ctdivol", "ctdivol_alert_value_mGy", "accumulated_ctdivol_forward_estimate_mGy"))
        reason_field = "alert_reason_for_proceeding"
    else:
        pairs = (("dlp", "dlp_notification_value_mGycm", "dlp_forward_estimate_mGycm"),
                 ("ctdivol", "ctdivol_notification_value_mGy", "ctdivol_forward_estimate_mGy"))
        reason_field = "notification_reason_for_proceeding"
    fired = []
    for index, event in enumerate(report.ct.events):
        dc = event.dose_check
        if dc is None:
            continue
        exceeded = {}
        for name, configured, estimate in pairs:
            limit, value = getattr(dc, configured), getattr(dc, estimate)
            if limit is not None and value is not None and value > limit:
                exceeded[name] = {configured: limit, estimate: value}
        if exceeded:
            fired.append({"event_index": index, "acquisition_protocol": event.acquisition_protocol,
                          "exceeded": exceeded, "reason_for_proceeding": getattr(dc, reason_field)})
    if not fired:
        return None
    return rule.level, {"dose_check": rule.which, "events": fired}


def evaluate(report: DoseReport, others: list[DoseReport], rules: RuleSet) -> list[RaisedAlert]:
    """Every enabled rule that applies to `report` and is met, once per rule (its most severe
    level). `others`: the same patient's other stored studies (any order; only those before it
    within a window count)."""
    categories = categories_of(report, rules)
    out = []
    for rule in rules.active:
        if not in_scope(rule.scope, report, categories):
            continue
        if isinstance(rule, ThresholdRule):
            hit = _threshold(rule, report, others)
        elif isinstance(rule, RangeRule):
            hit = _range(rule, report)
        elif isinstance(rule, DrlRule):
            hit = _drl(rule, report)
        else:
            hit = _dose_check(rule, report)
        if hit is None:
            continue
        level, values = hit
        out.append(RaisedAlert(report.study.study_instance_uid, rule.id, rule.version, level, rule.title,
                               rule.source, values))
    return out
