"""`doseflow quality`: per device, how complete and how plausible its stored data are.

For each device (shared/device.py's key): objects, studies, first and last study date; the share
of each key field that is missing; the study warnings by kind; and the values outside their
unit-sanity ranges. A device that sends kVp 0 or no CTDIvol, or DAP a thousand times too
large, stands out in its row.

`devices()` is pure: stored study rows in, one summary per device out. The rest formats.
A field's share is over the items it belongs to: CTDIvol and DLP over CT events, DAP and dose
at RP over projection events, AGD over mammography events, kVp and protocol over every event
(a CT event has kVp when any of its X-ray sources has), patient and request fields over
studies. A field with nothing it could belong to (CTDIvol of a radiography room) is "n/a",
never 0 % or 100 %.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from shared import device
from shared.report import DoseReport

# (column, header on a terminal, what the share is over)
FIELDS = [
    ("ctdivol", "CTDIvol", "CT events"),
    ("dlp", "DLP", "CT events"),
    ("dap", "DAP", "projection events"),
    ("dose_rp", "RP dose", "projection events"),
    ("agd", "AGD", "mammography events"),
    ("kvp", "kVp", "events"),
    ("age", "Age", "studies"),
    ("sex", "Sex", "studies"),
    ("weight", "Weight", "studies"),
    ("size", "Size", "studies"),
    ("protocol", "Protocol", "events"),
    ("requested_procedure", "Req.proc", "studies"),
]

# Warning text -> kind. The plausibility pass writes its kind first ("placeholder: ..."); the
# extractors' and assembly's warnings are recognised by what they say.
KIND_PREFIXES = ("placeholder", "implausible", "out of range", "suspect")
KIND_PATTERNS = [
    ("field size", re.compile(r"Wedges and Shutters")),
    ("unreadable value", re.compile(r"has no measured value|is unreadable|not a valid date-time|has an empty "
                                    r"meaning|has no coded value|not a number|could not be read|is not a whole number")),
    ("unit not known", re.compile(r"which is not a unit of|has no unit")),
    ("negative value", re.compile(r"is negative")),
    ("corrupt number", re.compile(r"is not a plausible number")),
    ("event time", re.compile(r"event start")),
    ("missing container", re.compile(r"^(projection|mammography|no CT Accumulated)[^:]*: no |no CT Accumulated")),
    ("objects disagree", re.compile(r"share some but not all events|reports state")),
    ("value not known", re.compile(r"doseflow does not know|is missing or unknown")),
]


def warning_kind(warning: str) -> str:
    head = warning.split(":", 1)[0]
    if head in KIND_PREFIXES:
        return head
    for kind, pattern in KIND_PATTERNS:
        if pattern.search(warning):
            return kind
    return "other"


@dataclass
class Share:
    missing: int = 0
    total: int = 0

    def add(self, value: Any) -> None:
        self.total += 1
        if value is None or value == "":
            self.missing += 1

    @property
    def percent(self) -> Optional[float]:
        return None if self.total == 0 else 100.0 * self.missing / self.total


@dataclass
class Device:
    key: str
    label: str
    manufacturer: Optional[str] = None
    model: Optional[str] = None
    serial_number: Optional[str] = None
    station_names: set[str] = field(default_factory=set)
    institutions: set[str] = field(default_factory=set)
    observer_uids: set[str] = field(default_factory=set)
    modalities: Counter = field(default_factory=Counter)
    objects: int = 0
    studies: int = 0
    first_seen: Optional[str] = None
    last_seen: Optional[str] = None
    missing: dict[str, Share] = field(default_factory=lambda: {name: Share() for name, _, _ in FIELDS})
    warnings: Counter = field(default_factory=Counter)
    out_of_range: Counter = field(default_factory=Counter)  # quantity label -> values

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_key": self.key,
            "label": self.label,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "serial_number": self.serial_number,
            "station_names": sorted(self.station_names),
            "institutions": sorted(self.institutions),
            "device_observer_uids": len(self.observer_uids),
            "modalities": dict(sorted(self.modalities.items())),
            "objects": self.objects,
            "studies": self.studies,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "missing_percent": {name: _round(share.percent) for name, share in self.missing.items()},
            "warnings": dict(sorted(self.warnings.items())),
            "out_of_range": dict(sorted(self.out_of_range.items())),
        }


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def devices(rows: Iterable[tuple[dict, Optional[str], int]]) -> list[Device]:
    """One Device per key from stored studies: (report JSON, stored device key or None, number of
    stored objects). A study stored before the key existed gets it from its report."""
    out: dict[str, Device] = {}
    for data, stored_key, objects in rows:
        report = DoseReport.model_validate(data)
        key = stored_key or report.equipment.device_key or device.key_of(report)
        e = report.equipment
        d = out.get(key)
        if d is None:
            d = out[key] = Device(key, device.label(e), e.manufacturer, e.model, e.serial_number)
        _add_study(d, report, objects)
    return sorted(out.values(), key=lambda d: (d.label.casefold(), d.key))


def _add_study(d: Device, report: DoseReport, objects: int) -> None:
    e = report.equipment
    d.station_names.update(v for v in [e.station_name] if v)
    d.institutions.update(v for v in [e.institution_name] if v)
    d.observer_uids.update(v for v in [e.device_observer_uid] if v)
    d.modalities[report.study.modality or "?"] += 1
    d.objects += objects
    d.studies += 1
    date = report.study.study_date
    if date:
        d.first_seen = min(filter(None, [d.first_seen, date]))
        d.last_seen = max(filter(None, [d.last_seen, date]))
    m = d.missing
    p = report.patient
    for name, value in (("age", p.age_years), ("sex", p.sex), ("weight", p.weight_kg), ("size", p.size_m),
                        ("requested_procedure", report.study.requested_procedure)):
        m[name].add(value)
    if report.ct is not None:
        for ev in report.ct.events:
            m["ctdivol"].add(ev.ctdivol_mGy)
            m["dlp"].add(ev.dlp_mGycm)
            m["kvp"].add(next((s.kvp for s in ev.sources if s.kvp is not None), None))
            m["protocol"].add(ev.acquisition_protocol)
    if report.projection is not None:
        for ev in report.projection.events:
            m["dap"].add(ev.dap_Gym2)
            m["dose_rp"].add(ev.dose_rp_Gy)
            m["kvp"].add(ev.kvp)
            m["protocol"].add(ev.acquisition_protocol)
    if report.mammography is not None:
        for ev in report.mammography.events:
            m["agd"].add(ev.agd_mGy)
            m["kvp"].add(ev.kvp)
            m["protocol"].add(ev.acquisition_protocol)
    for w in report.warnings:
        kind = warning_kind(w)
        d.warnings[kind] += 1
        if kind == "out of range":
            # "out of range: <path>: <label> <value> <unit> ..." -> count by quantity label
            label = re.match(r"out of range: [^:]+: (.+?) [-+\d.]", w)
            d.out_of_range[label.group(1) if label else "?"] += 1


# --- reading ------------------------------------------------------------------------------------


def stored_rows(conn, date_from: Optional[dt.date] = None, date_to: Optional[dt.date] = None):
    """(report, device_key, objects) of each stored study, study dates bounded inclusive (a study
    without a date is left out when a bound is given), as `doseflow export` does."""
    where, args = [], []
    if date_from is not None:
        where.append("s.study_date >= %s")
        args.append(date_from)
    if date_to is not None:
        where.append("s.study_date <= %s")
        args.append(date_to)
    sql = ("SELECT s.report, s.device_key, (SELECT count(*) FROM source_object o "
           "WHERE o.study_instance_uid = s.study_instance_uid) FROM study s"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY s.study_date NULLS LAST, s.study_instance_uid")
    return conn.execute(sql, args).fetchall()


# --- formats ------------------------------------------------------------------------------------


def as_json(found: list[Device]) -> str:
    return json.dumps([d.as_dict() for d in found], ensure_ascii=False, indent=2)


def as_csv(found: list[Device]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["Device key", "Device", "Modalities", "Objects", "Studies", "First seen", "Last seen"]
                    + [f"{header} missing (%)" for _, header, _ in FIELDS]
                    + ["Warnings", "Warnings by kind", "Values out of range"])
    for d in found:
        writer.writerow([d.key, d.label, " ".join(sorted(d.modalities)), d.objects, d.studies,
                         d.first_seen or "", d.last_seen or ""]
                        + ["" if d.missing[name].percent is None else _round(d.missing[name].percent)
                           for name, _, _ in FIELDS]
                        + [sum(d.warnings.values()), _counts(d.warnings), _counts(d.out_of_range)])
    return buf.getvalue()


def _counts(counter: Counter) -> str:
    return "; ".join(f"{k} {n}" for k, n in sorted(counter.items()))


def as_table(found: list[Device], width: int = 32) -> str:
    """A terminal table: one row per device (missing shares in %, '·' where a field does not
    apply), then each device's key, warnings by kind and out-of-range values."""
    if not found:
        return "no stored studies in this period\n"
    heads = ["#", "Device", "Mod", "Obj", "Stud", "First", "Last"] + [h for _, h, _ in FIELDS] + ["Warn"]
    body = []
    for i, d in enumerate(found, 1):
        cells = [str(i), _cut(d.label, width), "/".join(sorted(d.modalities)), str(d.objects), str(d.studies),
                 d.first_seen or "-", d.last_seen or "-"]
        cells += [_percent(d.missing[name]) for name, _, _ in FIELDS]
        cells.append(str(sum(d.warnings.values())))
        body.append(cells)
    widths = [max(len(r[c]) for r in [heads] + body) for c in range(len(heads))]
    left = {1, 2}  # text columns

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = ["Missing values in % of the items each field belongs to (· = not applicable)", line(heads),
           "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body]
    out.append("")
    for i, d in enumerate(found, 1):
        out.append(f"{i:>2}  {d.key}")
        extra = []
        if len(d.station_names) > 1:
            extra.append("stations " + ", ".join(sorted(d.station_names)))
        if len(d.observer_uids) > 1:
            extra.append(f"{len(d.observer_uids)} different Device Observer UIDs")
        if extra:
            out.append("    " + "; ".join(extra))
        if d.warnings:
            out.append("    warnings: " + ", ".join(f"{k} {n}" for k, n in d.warnings.most_common()))
        if d.out_of_range:
            out.append("    out of range: " + ", ".join(f"{k} {n}" for k, n in d.out_of_range.most_common()))
    return "\n".join(out) + "\n"


def _percent(share: Share) -> str:
    p = share.percent
    return "·" if p is None else f"{p:.0f}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
