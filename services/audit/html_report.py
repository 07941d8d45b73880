"""The audit as one self-contained HTML page: tables and inline SVG box plots, no script, no
external resource (it opens offline and prints on A4 landscape)."""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from html import escape
from typing import Optional, Sequence

from services.audit.references import Provenance
from services.audit.statistics import TABLE_HEADERS, Audit, Box, Group, median, table_rows

UNITS = {"ctdivol_mGy": "mGy", "dlp_mGycm": "mGy·cm"}
LABELS = {"ctdivol_mGy": "CTDIvol", "dlp_mGycm": "DLP"}

CSS = """
body { font: 14px/1.4 "DejaVu Sans", Arial, sans-serif; color: #111; margin: 24px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #333; }
h3 { font-size: 15px; margin: 0 0 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid #999; padding: 3px 6px; vertical-align: top; }
th { background: #e8e8e8; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.above { font-weight: 700; color: #b00000; }
.muted { color: #555; }
table.summary { font-size: 12px; width: 100%; }
table.summary th { font-size: 11px; }
.meta td { border: none; padding: 1px 10px 1px 0; }
.group { border: 1px solid #bbb; padding: 10px 12px; margin: 12px 0; page-break-inside: avoid; break-inside: avoid; }
.plots { display: flex; flex-wrap: wrap; gap: 8px 24px; }
svg.boxplot text { font: 11px "DejaVu Sans", Arial, sans-serif; fill: #111; }
.note { font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { margin: 0; max-width: none; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  h2 { page-break-after: avoid; break-after: avoid; }
  tr { page-break-inside: avoid; break-inside: avoid; }
  .summary { font-size: 8.5pt; }
}
"""


def fmt(value, digits: int = 3) -> str:
    """A number for reading: 3 significant digits, never scientific notation for doses."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:.{decimals}f}"


def anchor(uid: str) -> str:
    return "study-" + hashlib.sha1(uid.encode()).hexdigest()[:12]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def box_plot(values: Sequence[float], drl: Optional[float], name: str) -> str:
    """A horizontal box plot of `values` with the DRL as a dashed red line, as inline SVG."""
    unit, label = UNITS[name], LABELS[name]
    width, height, left, right, top = 520, 96, 16, 16, 22
    axis_y = 66
    top_value = _nice_max(max(list(values) + ([drl] if drl else [])) * 1.08)
    x = lambda v: left + (width - left - right) * v / top_value  # noqa: E731
    parts = [f'<svg class="boxplot" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" data-n="{len(values)}">',
             f"<title>{escape(label)} ({unit}): {len(values)} studies" + (f", DRL {drl:g} {unit}" if drl else "")
             + "</title>",
             f'<text x="{left}" y="13" font-weight="bold">{escape(label)} ({unit}), n = {len(values)}</text>']
    # axis and ticks
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#333"/>')
    for i in range(6):
        v = top_value * i / 5
        parts.append(f'<line x1="{x(v):.1f}" y1="{axis_y}" x2="{x(v):.1f}" y2="{axis_y + 4}" stroke="#333"/>'
                     f'<text x="{x(v):.1f}" y="{axis_y + 16}" text-anchor="middle">{fmt(v)}</text>')
    mid = (top + axis_y) / 2
    if len(values) >= 4:
        b = Box.of(values)
        parts.append(f'<line class="whisker" x1="{x(b.low):.1f}" y1="{mid}" x2="{x(b.q1):.1f}" y2="{mid}" stroke="#333"/>'
                     f'<line class="whisker" x1="{x(b.q3):.1f}" y1="{mid}" x2="{x(b.high):.1f}" y2="{mid}" stroke="#333"/>')
        for w in (b.low, b.high):
            parts.append(f'<line x1="{x(w):.1f}" y1="{mid - 8}" x2="{x(w):.1f}" y2="{mid + 8}" stroke="#333"/>')
        parts.append(f'<rect class="box" x="{x(b.q1):.1f}" y="{top + 4}" width="{max(x(b.q3) - x(b.q1), 1):.1f}" '
                     f'height="{axis_y - top - 12}" fill="#cfe0f3" stroke="#1f4e79"/>')
    # every study as a dot (so a small room is still visible), the median as a thick bar
    for v in values:
        parts.append(f'<circle class="study" cx="{x(v):.1f}" cy="{mid}" r="3" fill="#1f4e79" fill-opacity="0.6"/>')
    if values:
        med = median(values)
        parts.append(f'<line class="median" x1="{x(med):.1f}" y1="{top + 2}" x2="{x(med):.1f}" y2="{axis_y - 6}" '
                     'stroke="#000" stroke-width="3"/>')
    if drl:
        parts.append(f'<line class="drl" x1="{x(drl):.1f}" y1="{top - 4}" x2="{x(drl):.1f}" y2="{axis_y}" '
                     'stroke="#c00000" stroke-width="2" stroke-dasharray="5,3"/>'
                     f'<text x="{min(x(drl) + 4, width - right - 90):.1f}" y="{top + 2}" fill="#c00000">'
                     f'DRL {drl:g} {unit}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 2}" text-anchor="end" class="muted">{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _provenance(title: str, p: Provenance, extra: str = "") -> str:
    return (f"<tr><th>{escape(title)}</th><td><b>{escape(p.label)}</b> — {escape(p.title or '')}; "
            f"{escape(p.issuer)}; dated {escape(p.date)}; status {escape(p.status)}{extra}; "
            f'<a href="{escape(p.url)}">{escape(p.url)}</a></td></tr>')


def _cell(value, header: str) -> str:
    if isinstance(value, float):
        cls = "num above" if header.startswith("Median/DRL") and value > 1.0 else "num"
        mark = " ▲" if "above" in cls else ""
        text = f"{value:.2f}" if header.startswith("Median/DRL") else fmt(value)
        return f'<td class="{cls}">{text}{mark}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{escape(str(value)) if value is not None else '—'}</td>"


def _summary_table(result: Audit) -> str:
    rows = table_rows(result)
    head = "".join(f"<th>{escape(h)}</th>" for h in TABLE_HEADERS[:-1])
    body = []
    for group, row in zip(result.groups, rows):
        cells = "".join(_cell(v, h) for v, h in zip(row[:-1], TABLE_HEADERS[:-1]))
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(TABLE_HEADERS) - 1}">No study of the period matched a DRL row.</td></tr>')
    return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _study_link(point) -> str:
    return f'<a href="#{anchor(point.uid)}">{escape(point.accession or "(no accession) " + point.uid)}</a>'


def _group(group: Group) -> str:
    row = group.row
    med_e = group.values("effective_dose_mSv")
    plots = []
    for name in ("ctdivol_mGy", "dlp_mGycm"):
        values = group.values(name)
        if values:
            plots.append(box_plot(values, group.drl(name), name))
        else:
            plots.append(f'<p class="muted">No {LABELS[name]} on the {row.phantom} phantom.</p>')
    outliers = group.outliers()
    listed = "".join(f"<li>{_study_link(o.study)} ({escape(o.study.date or 'no date')}): {escape(o.why)}</li>"
                     for o in outliers) or "<li class='muted'>none</li>"
    e_text = (f"median effective dose estimate {fmt(median(med_e))} mSv (n = {len(med_e)})" if med_e
              else "no effective dose estimate")
    return (f'<section class="group"><h3>{escape(group.device)} — {escape(group.category)}</h3>'
            f'<p class="note">Compared with <b>{escape(row.id)}</b> {escape(row.examination)}'
            + (f" ({escape(row.indication)})" if row.indication else "")
            + f"; {row.phantom} phantom; n = {group.n}; {escape(group.status)}; {e_text}.</p>"
            f'<div class="plots">{"".join(plots)}</div>'
            f"<p class='note'><b>Studies to look at</b> (above the DRL, or beyond the whiskers):</p><ul class='note'>{listed}</ul>"
            "</section>")


def render(result: Audit, *, date_from: Optional[dt.date], date_to: Optional[dt.date],
           generated: Optional[dt.datetime] = None) -> str:
    cfg = result.config
    generated = generated or dt.datetime.now(dt.timezone.utc)
    period = f"{date_from or 'first study'} to {date_to or 'last study'}"
    superseded = f"; superseded {cfg.drl.superseded}" if cfg.drl.superseded else ""
    points = [s for g in result.groups for s in g.studies] + [u.study for u in result.unmatched]
    compared = sum(g.n for g in result.groups)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>CT dose audit {escape(period)}</title><style>{CSS}</style></head><body>",
        "<h1>CT dose audit: typical values against diagnostic reference levels</h1>",
        f"<p>Studies dated {escape(period)}: <b>{result.studies}</b> CT studies, <b>{compared}</b> compared with a DRL, "
        f"<b>{len(result.unmatched)}</b> not compared (listed below with the reason). Generated "
        f"{generated.strftime('%Y-%m-%d %H:%M UTC')} by doseflow.</p>",
        "<table class='meta'>",
        _provenance("DRL set", cfg.drl.provenance, superseded),
        _provenance("k-factors", cfg.k.provenance, f"; {escape(cfg.k.basis)} weights"),
        f"<tr><th>Protocol mapping</th><td>{escape(cfg.protocol_map.source)} ({len(cfg.protocol_map.rules)} rules)</td></tr>",
        "</table>",
        "<h2>Per device and examination</h2>",
        "<p class='note'>Median = typical value of the room (ICRP 135); P75 = 75th percentile (linear interpolation); "
        "Median/DRL above 1 is marked ▲. A DRL applies to a room's median, not to one study.</p>",
        _summary_table(result),
        "<h2>Distributions</h2>",
        "<p class='note'>Box: 25th–75th percentile; black bar: median; whiskers: furthest study within 1.5 × IQR "
        "(boxes drawn from 4 studies); dots: each study; dashed red line: the DRL.</p>",
    ]
    parts += [_group(g) for g in result.groups] or ["<p>No groups.</p>"]
    parts.append("<h2>Studies not compared</h2>")
    if result.unmatched:
        parts.append("<table><thead><tr><th>Accession</th><th>Date</th><th>Device</th><th>Description</th>"
                     "<th>Category</th><th>Why not compared</th></tr></thead><tbody>")
        for u in result.unmatched:
            parts.append(f"<tr><td>{_study_link(u.study)}</td><td>{escape(u.study.date or '—')}</td>"
                         f"<td>{escape(u.device)}</td><td>{escape(u.study.description or '—')}</td>"
                         f"<td>{escape(u.category or '—')}</td><td>{escape(u.reason)}</td></tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p>None.</p>")
    parts.append("<h2>Studies</h2><table><thead><tr><th>Accession</th><th>Date</th><th>Description</th>"
                 "<th>CTDIvol for the DRL (mGy)</th><th>DLP for the DRL (mGy·cm)</th>"
                 "<th>Effective dose estimate (mSv)</th><th>Study instance UID</th></tr></thead><tbody>")
    for p in sorted(points, key=lambda p: (p.date or "", p.accession or "", p.uid)):
        parts.append(f"<tr id='{anchor(p.uid)}'><td>{escape(p.accession or '—')}</td><td>{escape(p.date or '—')}</td>"
                     f"<td>{escape(p.description or '—')}</td><td class='num'>{fmt(p.ctdivol_mGy)}</td>"
                     f"<td class='num'>{fmt(p.dlp_mGycm)}</td><td class='num'>{fmt(p.effective_dose_mSv)}</td>"
                     f"<td class='muted'>{escape(p.uid)}</td></tr>")
    parts.append("</tbody></table>")
    parts.append(DEFINITIONS.format(k=escape(cfg.k.method)))
    parts.append("</body></html>")
    return "\n".join(parts)


DEFINITIONS = """<h2>What the numbers mean</h2><ul class='note'>
<li><b>CTDIvol for the DRL</b>: the largest CTDIvol (mGy) of the study's events that are not localizers
(CT Acquisition Type other than Constant Angle Acquisition) and whose CTDIvol refers to the DRL row's phantom;
the UK table gives CTDIvol per sequence.</li>
<li><b>DLP for the DRL</b>: the study's total DLP (mGy·cm) as reported; when some events are on another phantom,
the sum of the events on the row's phantom.</li>
<li><b>Median, P75</b>: the room's typical value (median, ICRP Publication 135) and 75th percentile, linear
interpolation between order statistics (Hyndman–Fan type 7). A national DRL is the 75th percentile of facility
medians; a room whose median lies above it is worth a review (IAEA). Fewer than 10 studies: insufficient data.</li>
<li><b>Effective dose estimate</b> (mSv): a population estimate, k × DLP per event summed over the study, with k by
body region, age band and phantom from {k}; null when any event lacks a k (no target region, phantom mismatch,
no age). It is not a patient's dose. A scanner's own effective dose is stored separately.</li>
<li><b>SSDE</b> (per event, in the data and exports): AAPM Report 204 conversion of CTDIvol by the
water-equivalent diameter (AAPM Report 220), body CT only; a value the scanner reports is kept as reported.</li>
</ul>"""
