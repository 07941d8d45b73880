"""`doseflow protocols` and `doseflow audit` against a real PostgreSQL: corpus CT objects imported
with `doseflow import`; the stored studies carry the audit values; a new protocol mapping reaches
the stored studies with `doseflow audit --remap`, without importing again."""
from __future__ import annotations

import csv
import json

import psycopg
import pytest

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, imported_database

pytestmark = pytest.mark.integration

OBJECTS = ["CT-RDSR-Siemens_Flash-TAP-SS.dcm", "CT-RDSR-Siemens-Continued-1.dcm", "CT-RDSR-Siemens-Continued-2.dcm",
           "CT-ESR-GE_Optima.dcm", "CT-RDSR-GEPixelMed.dcm", "CT-RDSR-ToshibaPixelMed.dcm",
           "RF-RDSR-Siemens-Zee.dcm"]
FLASH = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.3.0"


@pytest.fixture
def imported(service_urls, tmp_path):
    with imported_database(service_urls["pg"], tmp_path / "data", map(corpus_file, OBJECTS)) as env:
        yield env


def stored(env, uid):
    with psycopg.connect(env["DOSEFLOW_DATABASE_URL"]) as conn:
        return conn.execute("SELECT examination_category, ct_effective_dose_estimate_msv, "
                            "ct_effective_dose_estimate_method, ct_drl_set, ct_drl_id, ct_drl_ratio_dlp, "
                            "report->'study'->>'examination_category' FROM study WHERE study_instance_uid = %s",
                            (uid,)).fetchone()


def test_stored_studies_carry_the_audit_values(imported):
    category, e, method, drl_set, drl_id, ratio, in_report = stored(imported, FLASH)
    assert (category, in_report, drl_set, drl_id) == ("chest_abdomen_pelvis",) * 2 + ("UK-2024 v2024-11-20", "UK-CT-08")
    assert e == pytest.approx(10.8678, rel=1e-4) and method == "k-factor AAPM96 (ICRP 60) v2008"
    assert ratio == pytest.approx(724.52 / 660, rel=1e-6)
    with psycopg.connect(imported["DOSEFLOW_DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT effective_dose_estimate_msv, ssde_mgy, ssde_reason FROM ct_event "
                            "WHERE study_instance_uid = %s ORDER BY event_index", (FLASH,)).fetchall()
    assert [r[0] for r in rows] == pytest.approx([11.51 * 0.015, 1.2 * 0.015, 3.61 * 0.015, 708.2 * 0.015])
    assert all(r[1] is None and r[2].startswith("no water-equivalent diameter") for r in rows)


def test_protocols_lists_unmapped_names_first(imported):
    listing = json.loads(doseflow(imported, "protocols", "--json").stdout)
    assert listing[0]["category"] is None
    names = {(x["field"], x["name"]): (x["category"], x["studies"]) for x in listing}
    assert names[("study_description", "Thorax^TAP (Adult)")] == ("chest_abdomen_pelvis", 1)
    assert names[("study_description", "Colonography")] == ("ct_colonography", 1)
    assert names[("acquisition_protocol", "Topogram")] == (None, 1)
    text = doseflow(imported, "protocols").stdout
    assert "-- unmapped --" in text.splitlines()[1]


def test_audit_writes_the_html_and_its_csv_twin(imported, tmp_path):
    out = tmp_path / "audit.html"
    doseflow(imported, "audit", "--modality", "CT", "--from", "1990-01-01", "--to", "2030-12-31",
             "--drl-set", "UK-2024", "--output", str(out))
    html = out.read_text(encoding="utf-8")
    assert html.count('<svg class="boxplot"') == 6 and "http-equiv" not in html and "<script" not in html
    with open(tmp_path / "audit.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    by_category = {r["Category"]: r for r in rows}
    assert set(by_category) == {"chest_abdomen_pelvis", "chest", "ct_colonography"}
    cap = by_category["chest_abdomen_pelvis"]
    assert (cap["DRL row"], cap["n"], cap["Median DLP (mGy·cm)"], cap["DRL DLP (mGy·cm)"]) == ("UK-CT-08", "1", "724.52", "660.0")
    assert cap["Median/DRL DLP"] == "1.098" and cap["DRL CTDIvol (mGy)"] == ""  # no CTDIvol DRL: empty, not 0
    assert cap["Median effective dose estimate (mSv)"] == "10.868"
    assert by_category["chest"]["Median CTDIvol (mGy)"] == "2.22"  # Continued-1 and -2: one study
    au = tmp_path / "au.html"
    doseflow(imported, "audit", "--drl-set", "ARPANSA-2018", "--output", str(au), "--csv", str(tmp_path / "au.csv"))
    assert "AU18-07" in au.read_text(encoding="utf-8")
    bad = doseflow(imported, "audit", "--drl-set", "NOPE", "--output", str(au), check=False)
    assert bad.returncode == 2 and "no DRL set 'NOPE'" in bad.stderr


def test_a_mapping_change_reaches_stored_studies_with_remap(imported, tmp_path):
    site_map = tmp_path / "site-map.csv"
    site_map.write_text("field,match,pattern,category\nstudy_description,exact,thorax^tap (adult),abdomen_pelvis\n")
    env = {**imported, "DOSEFLOW_PROTOCOL_MAP": str(site_map)}
    result = doseflow(env, "audit", "--remap")
    assert "recomputed 6 stored studies" in result.stderr
    category, *_, drl_id, ratio, in_report = stored(imported, FLASH)
    assert (category, in_report, drl_id) == ("abdomen_pelvis", "abdomen_pelvis", "UK-CT-10")
    assert ratio == pytest.approx(724.52 / 530, rel=1e-6)
    unmapped = json.loads(doseflow(env, "protocols", "--json").stdout)
    assert {x["name"] for x in unmapped if x["category"] is None} >= {"Colonography", "Topogram"}
