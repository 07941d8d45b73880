"""`doseflow export`: stored studies of one modality as a table for physicists (CSV or XLSX).

One row per irradiation event, each carrying its study's columns (date, accession, procedure,
equipment, patient) and the study's totals, then the event's own values; a study without events
is one row with empty event cells. Every header names its unit ("CTDIvol (mGy)",
"DAP (Gy·m²)"); values are the stored report's, never converted, so the export says exactly
what the database holds. An absent value is an empty cell, never 0.

`table()` is pure: stored DoseReport dicts in, headers and rows out. The writers only format.
"""
from __future__ import annotations

import csv
import datetime as dt
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, TextIO

# --modality value -> study modalities it covers (DX covers all radiography, RF covers XA).
MODALITY_GROUPS = {"CT": {"CT"}, "RF": {"RF", "XA"}, "DX": {"DX", "CR", "PX"}, "MG": {"MG"}}


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict], Any]


def _get(*path: str | int) -> Callable[[Optional[dict]], Any]:
    """A getter for a nested value; a missing level anywhere gives None."""
    def get(node):
        for key in path:
            if node is None:
                return None
            if isinstance(key, int):
                node = node[key] if key < len(node) else None
            else:
                node = node.get(key)
        return node
    return get


# --- study columns (every modality) -------------------------------------------------------------

STUDY_COLUMNS = [
    Column("Study date", _get("study", "study_date")),
    Column("Study time", _get("study", "study_time")),
    Column("Accession number", _get("study", "accession_number")),
    Column("Study description", _get("study", "study_description")),
    Column("Requested procedure", _get("study", "requested_procedure")),
    Column("Modality", _get("study", "modality")),
    Column("Manufacturer", _get("equipment", "manufacturer")),
    Column("Model", _get("equipment", "model")),
    Column("Station name", _get("equipment", "station_name")),
    Column("Institution", _get("equipment", "institution_name")),
    Column("Device key", _get("equipment", "device_key")),  # shared/device.py: one key per device
    Column("Patient age (years)", _get("patient", "age_years")),
    Column("Patient sex", _get("patient", "sex")),
    Column("Patient size (m)", _get("patient", "size_m")),
    Column("Patient weight (kg)", _get("patient", "weight_kg")),
    Column("Study instance UID", _get("study", "study_instance_uid")),
]


def _event_count(section: str) -> Callable[[dict], int]:
    return lambda report: len((report.get(section) or {}).get("events") or [])


# --- CT ----------------------------------------------------------------------------------------

CT_TOTALS = [
    Column("Number of events", _event_count("ct")),
    Column("Total DLP (mGy·cm)", _get("ct", "total_dlp_mGycm")),
    Column("Total effective dose (mSv)", _get("ct", "total_effective_dose_mSv")),
    # doseflow's own values (services/audit), apart from the scanner's
    Column("Examination category", _get("study", "examination_category")),
    Column("Effective dose estimate (mSv)", _get("ct", "effective_dose_estimate_mSv")),
    Column("Effective dose estimate method", _get("ct", "effective_dose_estimate_method")),
    Column("DRL set", _get("ct", "drl_set")),
    Column("DRL row", _get("ct", "drl_id")),
    Column("CTDIvol / DRL (ratio)", _get("ct", "drl_ratio_ctdivol")),
    Column("DLP / DRL (ratio)", _get("ct", "drl_ratio_dlp")),
]

CT_EVENT = [
    Column("Event start", _get("datetime_started")),
    Column("Acquisition protocol", _get("acquisition_protocol")),
    Column("Target region", _get("target_region")),
    Column("Acquisition type", _get("acquisition_type")),
    Column("CTDIvol (mGy)", _get("ctdivol_mGy")),
    Column("CTDIw phantom", _get("ctdiw_phantom")),
    Column("DLP (mGy·cm)", _get("dlp_mGycm")),
    Column("Effective dose (mSv)", _get("effective_dose_mSv")),
    Column("Effective dose estimate (mSv)", _get("effective_dose_estimate_mSv")),
    Column("SSDE (mGy)", _get("ssde_mGy")),
    Column("Water-equivalent diameter (mm)", _get("water_equivalent_diameter_mm")),
    Column("SSDE method", _get("ssde_method")),
    Column("Scanning length (mm)", _get("scanning_length_mm")),
    Column("Exposure time (s)", _get("exposure_time_s")),
    Column("Pitch factor", _get("pitch_factor")),
    Column("Nominal single collimation (mm)", _get("nominal_single_collimation_mm")),
    Column("Nominal total collimation (mm)", _get("nominal_total_collimation_mm")),
    Column("Number of X-ray sources", _get("number_of_xray_sources")),
    Column("X-ray modulation type", _get("xray_modulation_type")),
    Column("Comment", _get("comment")),
]


def _ct_source_columns(n: int) -> list[Column]:
    cols = []
    for i in range(n):
        p = f"Source {i + 1} "
        cols += [
            Column(p + "ID", _get("sources", i, "id")),
            Column(p + "kVp (kV)", _get("sources", i, "kvp")),
            Column(p + "maximum tube current (mA)", _get("sources", i, "max_tube_current_mA")),
            Column(p + "tube current (mA)", _get("sources", i, "tube_current_mA")),
            Column(p + "exposure time per rotation (s)", _get("sources", i, "exposure_time_per_rotation_s")),
        ]
    return cols


# --- projection X-ray (RF/XA, DX/CR/PX) -----------------------------------------------------------

PLANE_ORDER = ["single", "A", "B", "all"]
PLANE_PREFIX = {"single": "", "A": "Plane A ", "B": "Plane B ", "all": "All planes "}


def _plane(report: dict, plane: str) -> Optional[dict]:
    for p in (report.get("projection") or {}).get("planes") or []:
        if p.get("plane") == plane:
            return p
    return None


def _plane_columns(planes: list[str]) -> list[Column]:
    fields = [
        ("DAP total (Gy·m²)", "dap_total_Gym2"),
        ("dose at RP total (Gy)", "dose_rp_total_Gy"),
        ("fluoro DAP total (Gy·m²)", "fluoro_dap_total_Gym2"),
        ("fluoro dose at RP total (Gy)", "fluoro_dose_rp_total_Gy"),
        ("fluoro time total (s)", "total_fluoro_time_s"),
        ("acquisition DAP total (Gy·m²)", "acquisition_dap_total_Gym2"),
        ("acquisition dose at RP total (Gy)", "acquisition_dose_rp_total_Gy"),
        ("acquisition time total (s)", "total_acquisition_time_s"),
        ("radiographic frames total", "total_radiographic_frames"),
        ("reference point definition", "reference_point_definition"),
    ]
    cols = []
    for plane in planes:
        for header, key in fields:
            header = PLANE_PREFIX[plane] + header
            cols.append(Column(header[0].upper() + header[1:],
                               lambda r, plane=plane, key=key: (_plane(r, plane) or {}).get(key)))
    return cols


PROJECTION_EVENT = [
    Column("Plane", _get("plane")),
    Column("Event start", _get("datetime_started")),
    Column("Event type", _get("event_type")),
    Column("Acquisition protocol", _get("acquisition_protocol")),
    Column("Anatomy", _get("anatomy")),
    Column("Laterality", _get("laterality")),
    Column("Image view", _get("image_view")),
    Column("DAP (Gy·m²)", _get("dap_Gym2")),
    Column("Dose at RP (Gy)", _get("dose_rp_Gy")),
    Column("Entrance exposure at RP (mGy)", _get("entrance_exposure_at_rp_mGy")),
    Column("kVp (kV)", _get("kvp")),
    Column("Tube current (mA)", _get("tube_current_mA")),
    Column("Exposure time (ms)", _get("exposure_time_ms")),
    Column("Exposure (µAs)", _get("exposure_uAs")),
    Column("Pulse width (ms)", _get("pulse_width_ms")),
    Column("Number of pulses", _get("number_of_pulses")),
    Column("Pulse rate (1/s)", _get("pulse_rate_per_s")),
    Column("Irradiation duration (s)", _get("irradiation_duration_s")),
    Column("Fluoro mode", _get("fluoro_mode")),
    Column("Positioner primary angle (°)", _get("positioner_primary_angle_deg")),
    Column("Positioner secondary angle (°)", _get("positioner_secondary_angle_deg")),
    Column("Source to detector distance (mm)", _get("distance_source_to_detector_mm")),
    Column("Source to isocenter distance (mm)", _get("distance_source_to_isocenter_mm")),
    Column("Table longitudinal position (mm)", _get("table_longitudinal_mm")),
    Column("Table lateral position (mm)", _get("table_lateral_mm")),
    Column("Table height (mm)", _get("table_height_mm")),
    Column("Collimated field area (m²)", _get("collimated_field_area_m2")),
    Column("Collimated field height (mm)", _get("collimated_field_height_mm")),
    Column("Collimated field width (mm)", _get("collimated_field_width_mm")),
    Column("Exposure index", _get("exposure_index")),
    Column("Target exposure index", _get("target_exposure_index")),
    Column("Deviation index", _get("deviation_index")),
    Column("Comment", _get("comment")),
]


def _filter_columns(n: int) -> list[Column]:
    cols = []
    for i in range(n):
        p = f"Filter {i + 1} "
        cols += [
            Column(p + "type", _get("filters", i, "type")),
            Column(p + "material", _get("filters", i, "material")),
            Column(p + "thickness min (mm)", _get("filters", i, "thickness_min_mm")),
            Column(p + "thickness max (mm)", _get("filters", i, "thickness_max_mm")),
        ]
    return cols


# --- mammography -------------------------------------------------------------------------------

MG_TOTALS = [
    Column("Number of events", _event_count("mammography")),
    Column("Accumulated AGD left (mGy)", _get("mammography", "accumulated_agd_mGy", "left")),
    Column("Accumulated AGD right (mGy)", _get("mammography", "accumulated_agd_mGy", "right")),
    Column("Accumulated AGD both (mGy)", _get("mammography", "accumulated_agd_mGy", "both")),
]

MG_EVENT = [
    Column("Event start", _get("datetime_started")),
    Column("Laterality", _get("laterality")),
    Column("View", _get("view")),
    Column("Acquisition protocol", _get("acquisition_protocol")),
    Column("AGD (mGy)", _get("agd_mGy")),
    Column("Entrance exposure at RP (mGy)", _get("entrance_exposure_at_rp_mGy")),
    Column("kVp (kV)", _get("kvp")),
    Column("Tube current (mA)", _get("tube_current_mA")),
    Column("Exposure time (ms)", _get("exposure_time_ms")),
    Column("Exposure (µAs)", _get("exposure_uAs")),
    Column("Compression thickness (mm)", _get("compression_thickness_mm")),
    Column("Compression force (N)", _get("compression_force_N")),
    Column("Anode target", _get("anode_target")),
    Column("Filter material", _get("filter_material")),
    Column("Half value layer (mm)", _get("half_value_layer_mm")),
    Column("Target region", _get("target_region")),
]

SECTION = {"CT": "ct", "RF": "projection", "DX": "projection", "MG": "mammography"}


# --- the table ---------------------------------------------------------------------------------


def export_modality(report: dict) -> Optional[str]:
    """The --modality group a stored study belongs to, from its modality (or, when that is
    missing, from its CT or mammography section; a projection section alone cannot tell RF
    from DX)."""
    modality = (report.get("study") or {}).get("modality")
    for group, members in MODALITY_GROUPS.items():
        if modality in members:
            return group
    if modality is None:
        if report.get("ct") is not None:
            return "CT"
        if report.get("mammography") is not None:
            return "MG"
    return None


def _events(report: dict, modality: str) -> list[dict]:
    return (report.get(SECTION[modality]) or {}).get("events") or []


def columns_for(reports: list[dict], modality: str) -> tuple[list[Column], list[Column]]:
    """(study-level columns incl. totals, event columns) for these reports; repeated groups
    (CT X-ray sources, filters, planes) get as many columns as the widest report needs."""
    events = [e for r in reports for e in _events(r, modality)]
    if modality == "CT":
        n_sources = max([len(e.get("sources") or []) for e in events] or [0])
        return STUDY_COLUMNS + CT_TOTALS, CT_EVENT + _ct_source_columns(max(n_sources, 1))
    if modality == "MG":
        return STUDY_COLUMNS + MG_TOTALS, MG_EVENT
    planes = {p.get("plane") for r in reports for p in (r.get("projection") or {}).get("planes") or []}
    n_filters = max([len(e.get("filters") or []) for e in events] or [0])
    totals = [Column("Number of events", _event_count("projection"))]
    totals += _plane_columns([p for p in PLANE_ORDER if p in planes] or ["single"])
    return STUDY_COLUMNS + totals, PROJECTION_EVENT + _filter_columns(n_filters)


def table(reports: Iterable[dict], modality: str) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows for the stored studies of `modality` (CT, RF, DX or MG): one row per
    event, with its study's columns and totals; a study without events is one row. Absent
    values are None."""
    if modality not in MODALITY_GROUPS:
        raise ValueError(f"modality must be one of {sorted(MODALITY_GROUPS)}, not {modality!r}")
    selected = [r for r in reports if export_modality(r) == modality]
    study_cols, event_cols = columns_for(selected, modality)
    headers = [c.header for c in study_cols] + ["Event number"] + [c.header for c in event_cols]
    rows = []
    for report in selected:
        study_values = [c.value(report) for c in study_cols]
        events = _events(report, modality)
        if not events:
            rows.append(study_values + [None] + [None] * len(event_cols))
        for i, event in enumerate(events, start=1):
            rows.append(study_values + [i] + [c.value(event) for c in event_cols])
    return headers, rows


# --- writers -----------------------------------------------------------------------------------

# Text a spreadsheet would run as a formula when the CSV is opened (OWASP "CSV injection"): DICOM
# text comes from modalities, so it is made inert with a leading apostrophe. XLSX cells are typed
# as text instead and keep the value exactly.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    if value is None:
        return ""  # absent is an empty cell, never 0
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same number
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def write_csv(headers: list[str], rows: list[list[Any]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])


def write_xlsx(headers: list[str], rows: list[list[Any]], path: str, sheet: str) -> None:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for col, header in enumerate(headers, start=1):
        ws.cell(row=1, column=col, value=header).font = Font(bold=True)
    date_col = headers.index("Study date") if "Study date" in headers else None
    for r, row in enumerate(rows, start=2):
        for col, value in enumerate(row):
            if value is None:
                continue  # absent is an empty cell, never 0
            cell = ws.cell(row=r, column=col + 1)
            if col == date_col:
                try:
                    cell.value = dt.date.fromisoformat(value)
                    cell.number_format = "yyyy-mm-dd"
                    continue
                except (TypeError, ValueError):
                    pass
            if isinstance(value, str):
                # XLSX cannot hold control characters; show them rather than fail the export.
                cell.value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
                cell.data_type = "s"  # never a formula, whatever the text starts with
            else:
                cell.value = value
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    wb.save(path)


def export(reports: list[dict], modality: str, fmt: str, output: Optional[str]) -> int:
    """Write the export; returns the exit status."""
    headers, rows = table(reports, modality)
    if fmt == "xlsx":
        if not output:
            print("doseflow export: --format xlsx needs --output FILE", file=sys.stderr)
            return 2
        write_xlsx(headers, rows, output, modality)
    elif output:
        # A byte-order mark so that spreadsheet programs read the units (·, ², µ) as UTF-8.
        with open(output, "w", encoding="utf-8-sig", newline="") as f:
            write_csv(headers, rows, f)
    else:
        write_csv(headers, rows, sys.stdout)
    if output:
        studies = len({r[headers.index("Study instance UID")] for r in rows})
        print(f"exported {studies} {modality} studies, {len(rows)} rows to {output}", file=sys.stderr)
    return 0
