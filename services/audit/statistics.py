"""The audit tables (spec dose-references §1.1, §1.2): per device (room) and examination category,
the typical value (median of the study values, ICRP 135) and 75th percentile of CTDIvol and DLP,
compared with the DRL; studies above the DRL or outside the box plot's whiskers are listed.

Percentiles interpolate linearly between order statistics (Hyndman-Fan type 7, numpy's default),
as spec §1.2 step 5 requires.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from services.audit.indices import AuditConfig, drl_row_for, enrich, study_ctdivol, study_dlp
from services.audit.references import DrlRow
from shared.report import DoseReport

MIN_STUDIES = 10  # fewer studies in a room: "insufficient data" (spec §1.2 step 3)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, linear interpolation (type 7)."""
    return float(np.percentile(np.asarray(values, dtype=float), q, method="linear"))


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def local_drl(room_medians: Sequence[float]) -> float:
    """A local (or national) DRL: the 75th percentile of room medians (ICRP 135)."""
    return percentile(room_medians, 75)


@dataclass(frozen=True)
class Box:
    """Five numbers of a box plot (whiskers at the furthest value within 1.5 IQR) and the values
    beyond the whiskers."""
    low: float
    q1: float
    median: float
    q3: float
    high: float
    outliers: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> "Box":
        v = sorted(values)
        q1, med, q3 = percentile(v, 25), percentile(v, 50), percentile(v, 75)
        lo_fence, hi_fence = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        inside = [x for x in v if lo_fence <= x <= hi_fence]
        return cls(min(inside), q1, med, q3, max(inside), tuple(x for x in v if x < lo_fence or x > hi_fence))


@dataclass(frozen=True)
class StudyPoint:
    uid: str
    accession: Optional[str]
    date: Optional[str]
    description: Optional[str]
    ctdivol_mGy: Optional[float]
    dlp_mGycm: Optional[float]
    effective_dose_mSv: Optional[float]


@dataclass(frozen=True)
class Outlier:
    study: StudyPoint
    why: str  # e.g. "DLP 812 mGy·cm above the DRL 660"


@dataclass
class Group:
    device: str
    category: str
    row: Optional[DrlRow]
    studies: list[StudyPoint] = field(default_factory=list)

    def values(self, name: str) -> list[float]:
        return [getattr(s, name) for s in self.studies if getattr(s, name) is not None]

    @property
    def n(self) -> int:
        return len(self.studies)

    def summary(self, name: str) -> tuple[Optional[float], Optional[float]]:
        v = self.values(name)
        return (median(v), percentile(v, 75)) if v else (None, None)

    def drl(self, name: str) -> Optional[float]:
        if self.row is None:
            return None
        return self.row.ctdivol_mGy if name == "ctdivol_mGy" else self.row.dlp_mGycm

    def ratio(self, name: str) -> Optional[float]:
        med, drl = self.summary(name)[0], self.drl(name)
        return med / drl if med is not None and drl else None

    @property
    def status(self) -> str:
        if self.row is None:
            return "no DRL"
        if self.n < MIN_STUDIES:
            return f"insufficient data (n < {MIN_STUDIES})"
        if any((r or 0) > 1.0 for r in (self.ratio("ctdivol_mGy"), self.ratio("dlp_mGycm"))):
            return "median above DRL"
        return "median at or below DRL"

    def outliers(self) -> list[Outlier]:
        """Studies above the DRL (listed, though a DRL applies to medians) or beyond the whiskers."""
        out = []
        for name, label, unit in (("ctdivol_mGy", "CTDIvol", "mGy"), ("dlp_mGycm", "DLP", "mGy·cm")):
            values = self.values(name)
            box = Box.of(values) if len(values) >= 4 else None
            drl = self.drl(name)
            for s in self.studies:
                v = getattr(s, name)
                if v is None:
                    continue
                if drl is not None and v > drl:
                    out.append(Outlier(s, f"{label} {v:.4g} {unit} above the DRL {drl:g} {unit}"))
                elif box is not None and v in box.outliers:
                    out.append(Outlier(s, f"{label} {v:.4g} {unit} beyond the whiskers (1.5 IQR)"))
        return out


@dataclass(frozen=True)
class Unmatched:
    study: StudyPoint
    device: str
    category: Optional[str]
    reason: str


@dataclass
class Audit:
    config: AuditConfig
    groups: list[Group]
    unmatched: list[Unmatched]
    studies: int


def device_label(report: DoseReport) -> str:
    """A room: the device observer UID's equipment, else station name and serial number."""
    eq = report.equipment
    name = " ".join(x for x in (eq.manufacturer, eq.model) if x) or "unknown device"
    where = ", ".join(x for x in (eq.station_name, f"serial {eq.serial_number}" if eq.serial_number else None) if x)
    return f"{name} ({where})" if where else name


def device_key(report: DoseReport) -> str:
    eq = report.equipment
    return eq.device_observer_uid or f"{eq.station_name or ''}|{eq.serial_number or ''}|{eq.manufacturer or ''}|{eq.model or ''}"


def audit(reports: list[dict], cfg: AuditConfig) -> Audit:
    """The audit of these stored CT studies with the current mapping and reference data."""
    groups: dict[tuple[str, str], Group] = {}
    labels: dict[str, str] = {}
    unmatched = []
    count = 0
    for data in reports:
        report = enrich(DoseReport.model_validate(data), cfg)
        if report.ct is None:
            continue
        count += 1
        key = device_key(report)
        label = labels.setdefault(key, device_label(report))
        category = report.study.examination_category
        row, why = drl_row_for(report, category, cfg.drl)
        phantom = row.phantom if row else None
        point = StudyPoint(uid=report.study.study_instance_uid, accession=report.study.accession_number,
                           date=report.study.study_date, description=report.study.study_description
                           or report.study.requested_procedure or report.study.procedure,
                           ctdivol_mGy=study_ctdivol(report.ct, phantom) if phantom else None,
                           dlp_mGycm=study_dlp(report.ct, phantom) if phantom else None,
                           effective_dose_mSv=report.ct.effective_dose_estimate_mSv)
        if row is None:
            unmatched.append(Unmatched(point, label, category, why))
            continue
        groups.setdefault((key, category), Group(label, category, row)).studies.append(point)
    ordered = sorted(groups.values(), key=lambda g: (g.device, g.category))
    return Audit(cfg, ordered, unmatched, count)


TABLE_HEADERS = [
    "Device", "Category", "DRL row", "Examination (indication)", "n", "Status",
    "Median CTDIvol (mGy)", "P75 CTDIvol (mGy)", "DRL CTDIvol (mGy)", "Median/DRL CTDIvol",
    "Median DLP (mGy·cm)", "P75 DLP (mGy·cm)", "DRL DLP (mGy·cm)", "Median/DRL DLP",
    "Median effective dose estimate (mSv)", "n effective dose", "Studies listed (accession)",
]


def table_rows(result: Audit) -> list[list]:
    """The audit table: one row per device and category (the CSV and the HTML show the same)."""
    rows = []
    for g in result.groups:
        c_med, c_p75 = g.summary("ctdivol_mGy")
        d_med, d_p75 = g.summary("dlp_mGycm")
        e = g.values("effective_dose_mSv")
        listed = sorted({o.study.accession or o.study.uid for o in g.outliers()})
        indication = f"{g.row.examination} ({g.row.indication})" if g.row.indication else g.row.examination
        rows.append([g.device, g.category, g.row.id, indication, g.n, g.status,
                     _r(c_med, 2), _r(c_p75, 2), g.drl("ctdivol_mGy"), _r(g.ratio("ctdivol_mGy"), 3),
                     _r(d_med, 2), _r(d_p75, 2), g.drl("dlp_mGycm"), _r(g.ratio("dlp_mGycm"), 3),
                     _r(median(e), 3) if e else None, len(e), " ".join(listed)])
    return rows


def _r(value: Optional[float], decimals: int) -> Optional[float]:
    """Rounded for the table a physicist files (the stored values keep full precision)."""
    return None if value is None else round(value, decimals)
