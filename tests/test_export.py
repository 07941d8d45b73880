"""`doseflow export` tables (doseflow/export.py) from real corpus reports: the values are the
reports' (checked against the corpus' expected values), every dose header names its unit, an
absent value is an empty cell and never 0, a 0 stays 0."""
from __future__ import annotations

import csv
import io

import openpyxl
import pydicom
import pytest

from doseflow.export import csv_cell, table, write_csv, write_xlsx
from services.classifier.rules import classify
from services.extractors.routes import extract
from tests.conftest import corpus_file, expected

_reports: dict[str, dict] = {}


def report(name: str) -> dict:
    """The object's report as stored (JSON form), extracted once."""
    if name not in _reports:
        ds = pydicom.dcmread(corpus_file(name))
        _reports[name] = extract(ds, classify(ds)).model_dump(mode="json")
    import copy

    return copy.deepcopy(_reports[name])


def as_dicts(headers, rows) -> list[dict]:
    return [dict(zip(headers, row)) for row in rows]


def exp(case: str, path: str):
    return expected(case)["expect"][path]


CT = "CT-RDSR-Siemens_Flash-TAP-SS"
RF = "RF-RDSR-Philips_Allura"
CR = "DX-Im-Carestream_DR7500-2"
MG = "MG-Im-GE_Seno_1_ForPresentation"


def test_a_ct_study_is_one_row_per_event_with_the_reports_values():
    headers, rows = table([report(CT + ".dcm")], "CT")
    rows = as_dicts(headers, rows)
    assert len(rows) == exp(CT, "ct.events.length") == 4
    assert [r["Event number"] for r in rows] == [1, 2, 3, 4]
    for i, row in enumerate(rows):
        assert row["CTDIvol (mGy)"] == pytest.approx(exp(CT, f"ct.events[{i}].ctdivol_mGy"))
        assert row["DLP (mGy·cm)"] == pytest.approx(exp(CT, f"ct.events[{i}].dlp_mGycm"))
        assert row["Acquisition protocol"] == exp(CT, f"ct.events[{i}].acquisition_protocol")
        assert row["Source 1 kVp (kV)"] == exp(CT, f"ct.events[{i}].sources[0].kvp")
        # The study's columns and totals are on every row of the study.
        assert row["Total DLP (mGy·cm)"] == pytest.approx(724.52)
        assert row["Number of events"] == 4
        assert row["Study instance UID"] == "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.3.0"
    assert rows[0]["CTDIw phantom"] == "body32"
    assert rows[0]["Scanning length (mm)"] == 821.0


def test_study_columns_come_first_then_totals_then_event_values():
    headers, _ = table([report(CT + ".dcm")], "CT")
    assert headers[:6] == ["Study date", "Study time", "Accession number", "Study description",
                           "Requested procedure", "Modality"]
    for h in ("Manufacturer", "Model", "Station name", "Institution", "Patient age (years)", "Patient sex",
              "Patient size (m)", "Patient weight (kg)"):
        assert headers.index(h) < headers.index("Total DLP (mGy·cm)")
    assert headers.index("Total DLP (mGy·cm)") < headers.index("Event number") < headers.index("CTDIvol (mGy)")


def test_an_absent_value_is_an_empty_cell_never_0():
    ct = report(CT + ".dcm")
    assert ct["ct"]["events"][0]["sources"][0]["exposure_time_per_rotation_s"] is None
    assert ct["ct"]["total_effective_dose_mSv"] is None
    headers, rows = table([ct], "CT")
    first = as_dicts(headers, rows)[0]
    assert first["Source 1 exposure time per rotation (s)"] is None
    assert first["Total effective dose (mSv)"] is None
    out = io.StringIO()
    write_csv(headers, rows, out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[0]["Source 1 exposure time per rotation (s)"] == ""
    assert parsed[0]["Total effective dose (mSv)"] == ""
    assert parsed[1]["Source 1 exposure time per rotation (s)"] == "0.5"


def test_a_value_present_as_0_stays_0():
    mg = report(MG + ".dcm")
    assert exp(MG, "patient.age_years") == 0.0
    headers, rows = table([mg], "MG")
    [row] = as_dicts(headers, rows)
    assert row["Patient age (years)"] == 0.0
    assert csv_cell(row["Patient age (years)"]) == "0.0"
    assert row["Accumulated AGD right (mGy)"] is None
    assert csv_cell(row["Accumulated AGD right (mGy)"]) == ""


# Numeric columns without a physical unit.
DIMENSIONLESS = {"Event number", "Number of events", "Pitch factor", "Number of X-ray sources", "Number of pulses",
                 "Exposure index", "Target exposure index", "Deviation index", "Radiographic frames total"}


@pytest.mark.parametrize("modality,names", [
    ("CT", [CT + ".dcm", "CT-RDSR-Toshiba_DoseCheck.dcm"]),
    ("RF", [RF + ".dcm", "RF-RDSR-Siemens-Zee.dcm", "RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP.dcm"]),
    ("DX", [CR + ".dcm", "DX-RDSR-Canon_CXDI.dcm", "Dual-RDSR-DX.dcm"]),
    ("MG", [MG + ".dcm", "MG-RDSR-Hologic_2D.dcm"]),
])
def test_every_numeric_column_names_its_unit(modality, names):
    headers, rows = table([report(n) for n in names], modality)
    assert rows
    numeric = {h for row in rows for h, v in zip(headers, row)
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric  # the test looks at real numbers
    for h in numeric:
        base = h.removeprefix("Plane A ").removeprefix("Plane B ").removeprefix("All planes ")
        if base[0].upper() + base[1:] in DIMENSIONLESS:
            continue
        assert h.endswith(")") and "(" in h, f"{modality}: numeric column without a unit: {h!r}"


def test_dose_headers_carry_their_units():
    headers = table([report(RF + ".dcm")], "RF")[0] + table([report(CT + ".dcm")], "CT")[0] + \
        table([report(MG + ".dcm")], "MG")[0]
    for h in ("CTDIvol (mGy)", "DLP (mGy·cm)", "DAP (Gy·m²)", "Dose at RP (Gy)", "DAP total (Gy·m²)",
              "AGD (mGy)", "Accumulated AGD left (mGy)", "Total DLP (mGy·cm)"):
        assert h in headers


def test_a_fluoroscopy_study_has_its_dap_and_filters_per_event():
    headers, rows = table([report(RF + ".dcm")], "RF")
    rows = as_dicts(headers, rows)
    assert len(rows) == exp(RF, "projection.events.length") == 3
    assert rows[0]["DAP (Gy·m²)"] == pytest.approx(exp(RF, "projection.events[0].dap_Gym2"))
    assert rows[0]["Dose at RP (Gy)"] == pytest.approx(exp(RF, "projection.events[0].dose_rp_Gy"))
    assert rows[0]["Event type"] == "Fluoroscopy"
    assert rows[0]["Filter 1 material"] == "Copper or Copper compound"
    assert rows[0]["Filter 1 thickness min (mm)"] == 0.4
    assert rows[0]["Filter 2 material"] == "Aluminum or Aluminum compound"
    assert rows[0]["Patient weight (kg)"] == 86.2
    assert rows[0]["Station name"] == "CCL Lab A"
    total = report(RF + ".dcm")["projection"]["planes"][0]["dap_total_Gym2"]
    assert all(r["DAP total (Gy·m²)"] == total for r in rows)


def test_dx_includes_cr_and_px_and_rf_includes_xa():
    cr = report(CR + ".dcm")
    px = report("DX-Im-GE_XR220-1.dcm")
    px["study"]["modality"] = "PX"
    px["study"]["study_instance_uid"] = "1.2.3.4"
    xa = report(RF + ".dcm")
    xa["study"]["modality"] = "XA"
    ct, mg = report(CT + ".dcm"), report(MG + ".dcm")
    everything = [cr, px, xa, ct, mg]

    def modalities(modality):
        headers, rows = table(everything, modality)
        return sorted({row[headers.index("Modality")] for row in rows})

    assert modalities("DX") == ["CR", "PX"]
    assert modalities("RF") == ["XA"]
    assert modalities("CT") == ["CT"]
    assert modalities("MG") == ["MG"]
    headers, rows = table(everything, "DX")
    cr_row = as_dicts(headers, rows)[0]
    assert cr_row["DAP (Gy·m²)"] == pytest.approx(exp(CR, "projection.events[0].dap_Gym2"))
    assert cr_row["kVp (kV)"] == 80.0
    assert cr_row["Exposure (µAs)"] == 9000.0


def test_a_study_without_events_is_one_row_with_its_totals():
    varic = report("RF-ESR-Siemens-Varic.dcm")
    assert varic["projection"]["events"] == []
    headers, rows = table([varic], "RF")
    [row] = as_dicts(headers, rows)
    assert row["Event number"] is None and row["DAP (Gy·m²)"] is None
    assert row["Number of events"] == 0
    assert row["DAP total (Gy·m²)"] == varic["projection"]["planes"][0]["dap_total_Gym2"] is not None


def test_a_mammography_exposure_row_has_agd_compression_and_view():
    headers, rows = table([report(MG + ".dcm")], "MG")
    [row] = as_dicts(headers, rows)
    assert row["AGD (mGy)"] == exp(MG, "mammography.events[0].agd_mGy") == 0.547
    assert row["Accumulated AGD left (mGy)"] == 0.547
    assert row["Compression force (N)"] == 30.0
    assert row["View"] == "cranio-caudal"
    assert row["Laterality"] == "L"


def test_csv_numbers_read_back_as_the_same_numbers():
    headers, rows = table([report(RF + ".dcm")], "RF")
    out = io.StringIO()
    write_csv(headers, rows, out)
    parsed = list(csv.reader(io.StringIO(out.getvalue())))
    assert parsed[0] == headers
    col = headers.index("DAP (Gy·m²)")
    assert [float(r[col]) for r in parsed[1:]] == [r[col] for r in rows]


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_inert(tmp_path):
    ct = report(CT + ".dcm")
    ct["study"]["study_description"] = "=HYPERLINK(\"http://x\")"
    headers, rows = table([ct], "CT")
    col = headers.index("Study description")
    assert csv_cell(rows[0][col]) == "'=HYPERLINK(\"http://x\")"
    path = tmp_path / "ct.xlsx"
    write_xlsx(headers, rows, str(path), "CT")
    cell = openpyxl.load_workbook(path).active.cell(row=2, column=col + 1)
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"http://x\")"


def test_xlsx_keeps_numbers_as_numbers_dates_as_dates_and_absent_as_empty(tmp_path):
    import datetime as dt

    headers, rows = table([report(CT + ".dcm")], "CT")
    path = tmp_path / "ct.xlsx"
    write_xlsx(headers, rows, str(path), "CT")
    ws = openpyxl.load_workbook(path).active
    assert ws.title == "CT"
    assert [c.value for c in ws[1]] == headers
    got = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert len(got) == 4
    row = dict(zip(headers, got[0]))
    assert row["CTDIvol (mGy)"] == 0.14
    assert row["Study date"] == dt.datetime(1997, 1, 1)
    assert row["Total effective dose (mSv)"] is None


def test_an_unknown_modality_is_refused():
    with pytest.raises(ValueError):
        table([], "US")
