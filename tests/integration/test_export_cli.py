"""`doseflow export` against a real PostgreSQL: corpus objects imported with `doseflow import`,
exported as CSV and XLSX, read back with csv / openpyxl and compared with `doseflow studies --json`."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

import openpyxl
import pytest

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, imported_database

pytestmark = pytest.mark.integration

OBJECTS = [
    "CT-RDSR-Siemens_Flash-TAP-SS.dcm",  # 1997-01-01, 4 events
    "CT-RDSR-Siemens-Continued-1.dcm", "CT-RDSR-Siemens-Continued-2.dcm",  # 2018-04-27, one study
    "RF-RDSR-Philips_Allura.dcm", "RF-RDSR-Siemens-Zee.dcm",
    "DX-Im-Carestream_DR7500-1.dcm", "DX-Im-GE_XR220-1.dcm", "DX-RDSR-Canon_CXDI.dcm",  # CR and DX
    "MG-Im-GE_Seno_1_ForPresentation.dcm", "MG-RDSR-Hologic_2D.dcm",
]

# export column -> (report section, event field) compared for every row
EVENT_VALUES = {
    "CT": {"CTDIvol (mGy)": "ctdivol_mGy", "DLP (mGy·cm)": "dlp_mGycm", "Acquisition protocol": "acquisition_protocol",
           "Scanning length (mm)": "scanning_length_mm"},
    "RF": {"DAP (Gy·m²)": "dap_Gym2", "Dose at RP (Gy)": "dose_rp_Gy", "kVp (kV)": "kvp", "Event type": "event_type"},
    "DX": {"DAP (Gy·m²)": "dap_Gym2", "kVp (kV)": "kvp", "Exposure (µAs)": "exposure_uAs",
           "Exposure index": "exposure_index"},
    "MG": {"AGD (mGy)": "agd_mGy", "kVp (kV)": "kvp", "Compression thickness (mm)": "compression_thickness_mm",
           "View": "view"},
}
SECTION = {"CT": "ct", "RF": "projection", "DX": "projection", "MG": "mammography"}
GROUP = {"CT": "CT", "RF": "RF", "XA": "RF", "DX": "DX", "CR": "DX", "PX": "DX", "MG": "MG"}


@pytest.fixture(scope="module")
def imported(service_urls, tmp_path_factory):
    """A fresh database with the corpus objects imported, shared by this module's tests (they
    only read it); the environment to run doseflow in, and `doseflow studies --json`."""
    with imported_database(service_urls["pg"], tmp_path_factory.mktemp("data"),
                           map(corpus_file, OBJECTS)) as env:
        yield env, json.loads(doseflow(env, "studies", "--json").stdout)


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def as_csv(value) -> str:
    return "" if value is None else (repr(value) if isinstance(value, float) else str(value))


def expected_rows(studies: list[dict], modality: str) -> list[tuple[dict, dict | None]]:
    """(study, event) per export row, in `doseflow studies` order."""
    out = []
    for s in studies:
        if GROUP.get(s["study"]["modality"]) != modality:
            continue
        events = (s[SECTION[modality]] or {}).get("events") or []
        out.extend((s, e) for e in events) if events else out.append((s, None))
    return out


@pytest.mark.parametrize("modality", ["CT", "RF", "DX", "MG"])
def test_csv_export_has_the_stored_values_row_for_row(imported, modality):
    env, studies = imported
    rows = csv_rows(doseflow(env, "export", "--modality", modality, "--format", "csv").stdout)
    want = expected_rows(studies, modality)
    assert len(rows) == len(want) > 0
    for row, (study, event) in zip(rows, want):
        assert row["Study instance UID"] == study["study"]["study_instance_uid"]
        assert row["Study date"] == as_csv(study["study"]["study_date"])
        assert row["Station name"] == as_csv(study["equipment"]["station_name"])
        for header, field in EVENT_VALUES[modality].items():
            assert row[header] == as_csv(event[field] if event else None), (header, row["Event number"])
    if modality == "CT":
        totals = {s["study"]["study_instance_uid"]: s["ct"]["total_dlp_mGycm"] for s in studies if s["ct"]}
        for row in rows:
            assert float(row["Total DLP (mGy·cm)"]) == totals[row["Study instance UID"]]
    if modality == "DX":
        assert {r["Modality"] for r in rows} == {"CR", "DX"}


def test_xlsx_export_has_the_stored_values_as_typed_cells(imported, tmp_path):
    env, studies = imported
    path = tmp_path / "dx.xlsx"
    result = doseflow(env, "export", "--modality", "DX", "--format", "xlsx", "--output", str(path))
    assert "exported 3 DX studies" in result.stderr
    ws = openpyxl.load_workbook(path).active
    headers = [c.value for c in ws[1]]
    rows = [dict(zip(headers, (c.value for c in r))) for r in ws.iter_rows(min_row=2)]
    want = expected_rows(studies, "DX")
    assert len(rows) == len(want) == 3
    for row, (study, event) in zip(rows, want):
        assert row["Study date"] == dt.datetime.fromisoformat(study["study"]["study_date"])
        for header, field in EVENT_VALUES["DX"].items():
            assert row[header] == event[field], header  # None (an empty cell) when absent, never 0
        assert row["Patient weight (kg)"] == study["patient"]["weight_kg"]


def test_dates_are_filtered_inclusively_on_the_study_date(imported):
    env, _ = imported
    only_2018 = csv_rows(doseflow(env, "export", "--modality", "CT", "--format", "csv",
                                  "--from", "2018-04-27", "--to", "2018-04-27").stdout)
    assert {r["Study date"] for r in only_2018} == {"2018-04-27"}
    assert len({r["Study instance UID"] for r in only_2018}) == 1  # the continued study, both parts
    up_to_1997 = csv_rows(doseflow(env, "export", "--modality", "CT", "--format", "csv", "--to", "1997-01-01").stdout)
    assert {r["Study date"] for r in up_to_1997} == {"1997-01-01"} and len(up_to_1997) == 4
    none = csv_rows(doseflow(env, "export", "--modality", "CT", "--format", "csv", "--from", "2030-01-01").stdout)
    assert none == []


def test_a_csv_file_has_a_byte_order_mark_for_spreadsheets_and_the_same_rows(imported, tmp_path):
    env, _ = imported
    path = tmp_path / "mg.csv"
    doseflow(env, "export", "--modality", "MG", "--format", "csv", "--output", str(path))
    assert path.read_bytes().startswith(b"\xef\xbb\xbfStudy date,")
    on_stdout = doseflow(env, "export", "--modality", "MG", "--format", "csv").stdout
    assert csv_rows(path.read_text(encoding="utf-8-sig")) == csv_rows(on_stdout)
    assert "AGD (mGy)" in on_stdout.splitlines()[0]


def test_xlsx_without_an_output_file_and_a_bad_date_are_refused(imported):
    env, _ = imported
    result = doseflow(env, "export", "--modality", "CT", "--format", "xlsx", check=False)
    assert result.returncode == 2 and "--output" in result.stderr
    result = doseflow(env, "export", "--modality", "CT", "--format", "csv", "--from", "27.04.2018", check=False)
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr
