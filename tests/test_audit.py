"""services/audit: the spec's test vectors (shared/spec/dose-references.md §5) at the source's
tolerance (relative 1e-4), k examples built from corpus files, protocol mapping on the corpus's
real names, and null-with-a-reason (never 0) when an input is missing."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from services.audit.config import load_config
from services.audit.indices import (AuditConfig, enrich, event_effective_dose, event_ssde,
                                    ssde_factor, study_ctdivol, water_equivalent_diameter_mm)
from services.audit.mapping import load_map, parse_map, protocol_listing
from services.audit.references import (DATA, ReferenceError, available_drl_sets, load_drl_set, load_k_set,
                                       load_target_regions)
from services.audit.statistics import Group, StudyPoint, local_drl, median, percentile
from services.audit.water_equivalent import dw_from_dataset, dw_from_hu, measure_hu
from services.writer.assembly import assemble
from shared.report import REPORTED_SSDE, Ct, CtEvent, DoseReport, Patient, Study
from shared.settings import Settings
from tests.conftest import CORPUS, corpus_file, report_of

REL = 1e-4  # spec §5: relative 1e-4 unless stated


@pytest.fixture(scope="module")
def cfg() -> AuditConfig:
    return load_config(Settings(_env_file=None))


def approx(value):
    return pytest.approx(value, rel=REL)


# --- TV-DRL ------------------------------------------------------------------------------------

ROOMS = {"A": [400, 420, 450, 500, 610], "B": [300, 350, 360], "C": [700, 650, 800, 720],
         "D": [500, 520, 540], "E": [380, 390, 410, 395], "F": [600, 610, 640]}


def test_tv_drl_1_room_medians_and_the_75th_percentile_of_medians_type_7():
    medians = {room: median(v) for room, v in ROOMS.items()}
    assert medians == {"A": 450, "B": 350, "C": 710, "D": 520, "E": 392.5, "F": 610}
    assert local_drl(list(medians.values())) == approx(587.5)
    assert local_drl(list(medians.values())) != approx(635)  # type 6 must not be used
    assert median(list(medians.values())) == approx(485)
    assert median([v for vs in ROOMS.values() for v in vs]) == approx(500)


def _group(values, row) -> Group:
    g = Group("room", row.category, row)
    g.studies = [StudyPoint(f"1.2.{i}", f"ACC{i}", "2026-01-01", None, None, v, None) for i, v in enumerate(values)]
    return g


def test_tv_drl_2_room_medians_against_uk_ct_10():
    row = load_drl_set("UK-2024").row_for("abdomen_pelvis")
    assert (row.id, row.dlp_mGycm) == ("UK-CT-10", 530)
    ratios = {room: _group(v * 4, row).ratio("dlp_mGycm") for room, v in ROOMS.items()}  # n >= 10
    assert ratios["C"] == approx(1.3396)
    assert ratios["F"] == approx(1.1509)
    assert ratios["D"] == approx(0.9811)
    above = {room for room, v in ROOMS.items() if _group(v * 4, row).status == "median above DRL"}
    assert above == {"C", "F"}


def test_tv_drl_3_a_room_with_9_studies_has_insufficient_data():
    row = load_drl_set("UK-2024").row_for("abdomen_pelvis")
    assert _group([900] * 9, row).status.startswith("insufficient data")
    assert _group([900] * 10, row).status == "median above DRL"


def test_tv_drl_4_the_localizer_ctdivol_is_not_the_study_ctdivol():
    ct = report_of("CT-RDSR-Siemens_Flash-TAP-SS").ct
    assert [e.ctdivol_mGy for e in ct.events][0] == approx(0.14)
    assert study_ctdivol(ct, "body32") == approx(9.91)


# --- TV-E (spec §2.7) --------------------------------------------------------------------------


@pytest.mark.parametrize("case, expected", [
    ("CT-RDSR-Siemens_Flash-TAP-SS", 10.8678),  # E-1: trunk + abdomen & pelvis
    ("CT-RDSR-Siemens-Continued-1", 0.84238),   # E-2: chest
    ("CT-RDSR-ToshibaPixelMed", 5.2455),        # E-3: CAP -> trunk; the localizer has no DLP
    ("CT-ESR-GE_Optima", 6.2373),               # E-4: abdomen; 4 localizers without DLP
])
def test_tv_e_effective_dose_estimates_of_corpus_studies(cfg, case, expected):
    ct = enrich(report_of(case), cfg).ct
    assert ct.effective_dose_estimate_mSv == approx(expected)
    assert ct.effective_dose_estimate_method == "k-factor AAPM96 (ICRP 60) v2008"
    assert ct.effective_dose_estimate_reason is None
    assert ct.total_effective_dose_mSv == report_of(case).ct.total_effective_dose_mSv  # the scanner's stays


def test_tv_e_5_no_target_region_gives_null_with_the_reason(cfg):
    ct = enrich(report_of("CT-RDSR-GEPixelMed"), cfg).ct
    assert ct.effective_dose_estimate_mSv is None
    assert ct.effective_dose_estimate_reason == "event 1: no target region"
    assert [e.effective_dose_estimate_mSv for e in ct.events] == [None, None]
    assert [e.effective_dose_estimate_reason for e in ct.events] == ["no target region"] * 2


def _event(region, phantom, dlp, **kw) -> CtEvent:
    return CtEvent(target_region=region, ctdiw_phantom=phantom, dlp_mGycm=dlp, **kw)


@pytest.mark.parametrize("age, region, phantom, dlp, expected", [
    (5.0, "Head", "head16", 300, 1.2),     # E-6
    (0.5, "Chest", "body32", 50, 1.95),    # E-7: 0 y band
])
def test_tv_e_6_7_paediatric_bands(cfg, age, region, phantom, dlp, expected):
    value, reason = event_effective_dose(_event(region, phantom, dlp), age, cfg.k, cfg.regions)
    assert (value, reason) == (approx(expected), None)


def test_tv_e_8_adult_head_on_the_body_phantom_is_a_phantom_mismatch(cfg):
    value, reason = event_effective_dose(_event("Head", "body32", 100), 40, cfg.k, cfg.regions)
    assert value is None and reason.startswith("phantom_mismatch")


@pytest.mark.parametrize("event, age, reason", [
    (_event("Chest", "body32", None), 40, "no DLP"),
    (_event(None, "body32", 100), 40, "no target region"),
    (_event("Knee", "body32", 100), 40, "target region 'Knee' is not in the region table"),
    (_event("Chest", "body32", 100), None, "no patient age"),
    (_event("Chest", None, 100), 40, "no CTDIw phantom"),
    (_event("Neck", "body32", 100), 5, "AAPM96 has no k for region neck at age band 5"),  # UNVERIFIED cell
])
def test_effective_dose_is_null_with_the_reason_never_0(cfg, event, age, reason):
    assert event_effective_dose(event, age, cfg.k, cfg.regions) == (None, reason)


def test_a_missing_age_makes_every_estimate_of_the_study_null(cfg):
    report = report_of("CT-RDSR-Siemens-Continued-1").model_copy(deep=True)
    report.patient.age_years = None
    ct = enrich(report, cfg).ct
    assert ct.effective_dose_estimate_mSv is None and ct.effective_dose_estimate_reason == "event 1: no patient age"
    assert ct.drl_ratio_dlp is None and ct.drl_reason == "no patient age (the DRLs are for adults)"


def test_an_event_without_dlp_is_left_out_only_when_the_total_says_it_carried_none(cfg):
    events = [_event("Chest", "body32", None), _event("Chest", "body32", 100.0)]
    base = dict(study=Study(study_instance_uid="1.2.3"), patient=Patient(age_years=50))
    ok = enrich(DoseReport(**base, ct=Ct(total_dlp_mGycm=100.0, events=events)), cfg).ct
    assert ok.effective_dose_estimate_mSv == approx(1.4)
    for total in (None, 150.0):
        bad = enrich(DoseReport(**base, ct=Ct(total_dlp_mGycm=total, events=events)), cfg).ct
        assert bad.effective_dose_estimate_mSv is None
        assert bad.effective_dose_estimate_reason.startswith("event 1: no DLP")


def test_other_k_sets_load_and_record_their_version():
    nci = load_k_set("NCI-ED103-120kV")
    assert nci.band(16) == "15" and nci.band(18) == "30" and nci.band(0.5) == "0"
    assert nci.row_for("trunk").k["30"] == 0.0180
    adult = load_k_set("ICRP103-adult")
    assert adult.method == "k-factor ICRP103-adult (ICRP 103) v1"
    assert adult.row_for("chest").k == {"adult": 0.0145}


# --- TV-SSDE (spec §4) -------------------------------------------------------------------------


def _ssde(region, phantom, ctdivol, dw_cm, cfg):
    return event_ssde(CtEvent(target_region=region, ctdiw_phantom=phantom, ctdivol_mGy=ctdivol,
                              water_equivalent_diameter_mm=None if dw_cm is None else dw_cm * 10), cfg.regions)


def test_tv_ssde_1_body32_dw_24_cm(cfg):
    assert ssde_factor(24, "body32") == approx(1.5346)
    value, method, reason = _ssde("Abdomen", "body32", 10, 24, cfg)
    assert value == approx(15.346) and reason is None
    assert method.startswith("DCM 113988") and "32 cm" in method


def test_tv_ssde_2_abdomen_on_the_16_cm_phantom(cfg):
    assert ssde_factor(16, "head16") == approx(1.0091)
    assert _ssde("Abdomen", "head16", 10, 16, cfg)[0] == approx(10.091)


def test_tv_ssde_6_head_ct_is_outside_report_204(cfg):
    assert _ssde("Head", "head16", 40, 16, cfg) == (None, None, "head CT is outside AAPM Report 204 (body CT only)")


def test_tv_ssde_3_dw_outside_the_tabulated_range(cfg):
    value, _, reason = _ssde("Abdomen", "body32", 10, 50, cfg)
    assert value is None and "outside the AAPM 204 range 8-45 cm" in reason


def test_tv_ssde_4_dw_from_the_water_equivalent_area(cfg):
    dw = water_equivalent_diameter_mm(24740.231323242188)
    assert dw == approx(177.48307205659782)
    assert ssde_factor(dw / 10, "body32") == approx(1.93055)
    assert _ssde("Abdomen", "body32", 10, dw / 10, cfg)[0] == approx(19.3055)


def test_tv_ssde_5_a_reported_ssde_is_kept(cfg):
    report = DoseReport(study=Study(study_instance_uid="1.2.3"), patient=Patient(age_years=50), ct=Ct(events=[
        CtEvent(target_region="Abdomen", ctdiw_phantom="body32", ctdivol_mGy=10, dlp_mGycm=100,
                ssde_mGy=12.0, water_equivalent_diameter_mm=300, ssde_method=REPORTED_SSDE)]))
    event = enrich(report, cfg).ct.events[0]
    assert (event.ssde_mGy, event.ssde_method) == (12.0, REPORTED_SSDE)
    computed = _ssde("Abdomen", "body32", 10, 30, cfg)[0]
    assert computed == approx(12.311)  # what it would have been


@pytest.mark.parametrize("kw, reason", [
    (dict(ctdivol_mGy=10, ctdiw_phantom="body32", target_region="Abdomen"),
     "no water-equivalent diameter (not in the RDSR, no image measured)"),
    (dict(ctdiw_phantom="body32", target_region="Abdomen", water_equivalent_diameter_mm=240), "no CTDIvol"),
    (dict(ctdivol_mGy=10, target_region="Abdomen", water_equivalent_diameter_mm=240), "no CTDIw phantom"),
    (dict(ctdivol_mGy=10, ctdiw_phantom="body32", water_equivalent_diameter_mm=240),
     "no target region (SSDE is for body CT only)"),
])
def test_ssde_is_null_with_the_reason_never_0(cfg, kw, reason):
    assert event_ssde(CtEvent(**kw), cfg.regions) == (None, None, reason)


def test_no_corpus_ct_event_gets_an_ssde_or_a_zero(cfg):
    for case in ("CT-RDSR-Siemens_Flash-TAP-SS", "CT-ESR-GE_Optima", "CT-RDSR-Toshiba_DoseCheck"):
        for e in enrich(report_of(case), cfg).ct.events:
            assert e.ssde_mGy is None and e.ssde_reason.startswith("no water-equivalent diameter")
            assert e.effective_dose_estimate_mSv != 0


# --- Dw from an axial image (AAPM 220) ---------------------------------------------------------


def _disc(size=400, radius_px=150, hu=0.0):
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius_px ** 2
    img = np.full((size, size), -1000.0)
    img[inside] = hu
    return img, inside


def test_dw_of_a_water_cylinder_is_its_diameter():
    img, _ = _disc(radius_px=150)
    assert dw_from_hu(img, 1.0) == pytest.approx(300, rel=5e-3)


def test_dw_counts_the_lungs_inside_the_patient_and_leaves_out_the_table():
    img, inside = _disc(radius_px=150)
    yy, xx = np.mgrid[:400, :400]
    lung = (yy - 200) ** 2 + (xx - 150) ** 2 <= 40 ** 2
    img[lung] = -800.0
    img[385:390, 20:380] = 200.0  # a table under the patient, not touching it
    area = inside.sum()
    mean = img[inside].mean()
    assert dw_from_hu(img, 1.0) == pytest.approx(2 * math.sqrt((mean / 1000 + 1) * area / math.pi), rel=1e-9)
    assert dw_from_hu(np.full((50, 50), -1000.0), 1.0) is None


def test_dw_of_a_corpus_ct_image_is_refused_when_the_patient_fills_the_field_of_view():
    # The corpus's CT images are 16 x 16 pixels of water (0 HU) with a 42 HU block: everything is
    # "patient", cut on every side by the image edge.
    ds = pydicom.dcmread(corpus_file("toshiba/toshiba_cxl_cap_contrast/IM00001.dcm"))
    measured = measure_hu(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept),
                          float(ds.PixelSpacing[0]) * float(ds.PixelSpacing[1]))
    assert measured.area_mm2 == pytest.approx(256 * 0.9765625 ** 2)  # 244.14 mm², the whole image
    assert measured.mean_hu == pytest.approx((64 * 42 + 192 * 0) / 256)  # 10.5 HU
    assert measured.dw_mm == pytest.approx(17.72324513, rel=1e-9)
    assert measured.edge_share == 1.0
    dw, reason = dw_from_dataset(ds)
    assert dw is None and reason.startswith("patient cut by the field of view (100% of the image edge")
    localizer = pydicom.dcmread(corpus_file("toshiba/toshiba_cxl_cap_contrast/IM00005.dcm"))
    dw, reason = dw_from_dataset(localizer)
    assert dw is None and reason.startswith("localizer")


# --- protocol mapping --------------------------------------------------------------------------

CORPUS_CATEGORIES = {
    "CT-RDSR-Siemens_Flash-TAP-SS": "chest_abdomen_pelvis",  # "Thorax^TAP (Adult)"
    "CT-ESR-GE_Optima": "ct_colonography",                 # "Colonography"
    "CT-RDSR-Siemens-Continued-1": "chest",                # "Thorax^Thorax_NON_CON (Adult)"
    "CT-RDSR-Siemens-Multi-3": "rt_planning",              # "Thorax^RTP_4DCT_Thorax_C (Adult)"
    "CT-RDSR-GEPixelMed": "rt_planning",                   # protocol "10.13 RADIOTHERAPY QA"
    "CT-RDSR-Toshiba_DoseCheck": "abdomen",                # protocol "Abdomen Routine ZC (NR)"
    "CT-RDSR-ToshibaPixelMed": None,                       # no name at all
}


@pytest.mark.parametrize("case, category", CORPUS_CATEGORIES.items())
def test_default_mapping_of_the_corpus_names(cfg, case, category):
    assert cfg.protocol_map.categorize(report_of(case).model_dump(mode="json"))[0] == category


def test_default_mapping_of_philips_and_legacy_toshiba_names(cfg):
    from services.extractors.routes import extract

    philips = extract(pydicom.dcmread(corpus_file("CT-SC-Philips_Brilliance16P.dcm")), "ct_philips")
    assert philips.study.study_description == "Abdomen/IH_KUB_2mm"
    assert cfg.protocol_map.categorize(philips.model_dump(mode="json")) == (
        "kub", 'study_description "Abdomen/IH_KUB_2mm" (rule 5)')
    for folder, category in (("toshiba_cx_head_scanogram", "head"), ("toshiba_cxl_cap_contrast", "chest_abdomen_pelvis"),
                             ("ge_lightspeed_head_chest", "head_chest")):
        ds = pydicom.dcmread(corpus_file(f"toshiba/{folder}/IM00002.dcm"), stop_before_pixels=True)
        study = {"study": {"study_description": ds.StudyDescription,
                           "requested_procedure": ds.get("RequestedProcedureDescription")}}
        assert cfg.protocol_map.categorize(study)[0] == category, ds.StudyDescription


def test_a_site_mapping_wins_in_file_order_and_exact_is_case_insensitive():
    pmap = parse_map([{"field": "study_description", "match": "exact", "pattern": " thorax^tap (adult) ",
                       "category": "my_cap"},
                      {"field": "study", "match": "regex", "pattern": "TAP", "category": "other"}], "site.csv")
    report = report_of("CT-RDSR-Siemens_Flash-TAP-SS").model_dump(mode="json")
    assert pmap.categorize(report)[0] == "my_cap"


@pytest.mark.parametrize("row, message", [
    ({"field": "station", "match": "exact", "pattern": "x", "category": "c"}, "field must be one of"),
    ({"field": "study", "match": "glob", "pattern": "x", "category": "c"}, "match must be exact or regex"),
    ({"field": "study", "match": "regex", "pattern": "(", "category": "c"}, "not a regular expression"),
    ({"field": "study", "match": "regex", "pattern": "x", "category": ""}, "needs a pattern and a category"),
])
def test_a_broken_mapping_rule_is_refused_with_its_number(row, message):
    with pytest.raises(ReferenceError, match=rf"site.csv: rule 1: {message}"):
        parse_map([row], "site.csv")


def test_protocol_listing_puts_unmapped_names_first(cfg):
    reports = [report_of(c).model_dump(mode="json") for c in
               ("CT-RDSR-Siemens_Flash-TAP-SS", "CT-RDSR-ToshibaPixelMed", "CT-RDSR-Siemens-Continued-1")]
    listing = protocol_listing(reports, cfg.protocol_map)
    firsts = [x.category for x in listing]
    assert None in firsts and firsts.index(None) == 0
    assert firsts[firsts.count(None):].count(None) == 0  # no unmapped after a mapped one
    by_name = {(x.field, x.name): (x.category, x.studies) for x in listing}
    assert by_name[("study_description", "Thorax^TAP (Adult)")] == ("chest_abdomen_pelvis", 1)
    assert by_name[("target_region", "Chest, Abdomen and Pelvis")] == (None, 1)
    assert by_name[("acquisition_protocol", "Topogram")] == (None, 1)


# --- reference data ----------------------------------------------------------------------------


def test_shipped_drl_sets_carry_their_provenance_and_the_spec_values():
    assert {"UK-2024", "ARPANSA-2018"} <= set(available_drl_sets())
    uk = load_drl_set("UK-2024")
    assert (uk.provenance.issuer, uk.provenance.version, uk.provenance.status) == (
        "UK Health Security Agency (UKHSA)", "2024-11-20", "V")
    assert uk.provenance.url.startswith("https://www.gov.uk/")
    assert len(uk.rows) == 13
    cap = uk.row_for("chest_abdomen_pelvis")
    assert (cap.id, cap.ctdivol_mGy, cap.dlp_mGycm) == ("UK-CT-08", None, 660)  # "—": no CTDIvol published
    assert uk.row_for("chest").ctdivol_mGy == 8.5
    au = load_drl_set("ARPANSA-2018")
    assert len(au.rows) == 8 and au.superseded == "2025-07-01"
    assert au.row_for("lumbar_spine").dlp_mGycm == 670


def test_a_site_drl_set_from_the_reference_dir(tmp_path):
    (tmp_path / "drl").mkdir()
    text = (DATA / "drl" / "LOCAL.toml.example").read_text()
    (tmp_path / "drl" / "LOCAL-2026.toml").write_text(text)
    local = load_drl_set("LOCAL-2026", tmp_path)
    assert local.provenance.label == "LOCAL-2026 v1" and local.row_for("head").dlp_mGycm == 750
    (tmp_path / "drl" / "BAD.toml").write_text(text.replace('id = "LOCAL-2026"', 'id = "BAD"')
                                               .replace("dlp_mGycm = 750", "dlp_mGycm = 0"))
    with pytest.raises(ReferenceError, match="must be a positive number"):
        load_drl_set("BAD", tmp_path)
    with pytest.raises(ReferenceError, match="no DRL set 'NOPE'"):
        load_drl_set("NOPE", tmp_path)


def test_unverified_k_cells_are_absent_not_zero():
    aapm = load_k_set("AAPM96")
    assert aapm.row_for("neck").k == {"adult": 0.0059}
    assert aapm.row_for("head_neck").k == {"adult": 0.0031}
    assert all(v > 0 for row in aapm.rows for v in row.k.values())
    regions = load_target_regions()
    assert regions["chest, abdomen and pelvis"] == "trunk" and regions["entire body"] == "trunk"


# --- the stored result records what it was computed with ---------------------------------------


def test_enrich_records_the_versions_and_the_drl_ratios(cfg):
    ct = enrich(report_of("CT-RDSR-Siemens_Flash-TAP-SS"), cfg).ct
    assert ct.drl_set == "UK-2024 v2024-11-20" and ct.drl_id == "UK-CT-08"
    assert ct.drl_ratio_dlp == approx(724.52 / 660)
    assert ct.drl_ratio_ctdivol is None and ct.drl_reason == "UK-CT-08 has no CTDIvol"


def test_enrich_is_idempotent_and_leaves_the_scanner_values(cfg):
    merged = assemble([report_of("CT-RDSR-Siemens-Continued-1"), report_of("CT-RDSR-Siemens-Continued-2")])
    once = enrich(merged, cfg)
    assert enrich(once, cfg) == once
    assert once.ct.effective_dose_estimate_mSv == approx(0.014 * (5.05 + 55.12 + 4.62 + 51.82))
    assert [e.ctdivol_mGy for e in once.ct.events] == [e.ctdivol_mGy for e in merged.ct.events]
    assert once.ct.drl_ratio_ctdivol == approx(2.22 / 8.5)


# --- SSDE and Dw as an RDSR reports them (TID 10013, CP-1525) ----------------------------------


def _num_item(code_value: str, meaning: str, value: str, unit: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "NUM"
    name = Dataset()
    name.CodingSchemeDesignator, name.CodeValue, name.CodeMeaning = "DCM", code_value, meaning
    item.ConceptNameCodeSequence = [name]
    mv, units = Dataset(), Dataset()
    mv.NumericValue = value
    units.CodingSchemeDesignator, units.CodeValue, units.CodeMeaning = "UCUM", unit, unit
    mv.MeasurementUnitsCodeSequence = [units]
    item.MeasuredValueSequence = [mv]
    return item


def _flash_with(ssde: str | None, dw_cm: str | None):
    """The Flash TAP RDSR with SSDE and/or Dw added to its spiral (4th) acquisition: SSDE in the CT
    Dose container, Dw one level deeper, as a size-estimation sub-container might hold it."""
    from pydicom.dataset import Dataset

    from services.extractors.routes import extract
    from tests.conftest import acquisitions, item_in, read

    ds = read("CT-RDSR-Siemens_Flash-TAP-SS.dcm")
    dose = item_in(acquisitions(ds)[3], "113829")
    if ssde is not None:
        dose.ContentSequence.append(_num_item("113930", "Size Specific Dose Estimate", ssde, "mGy"))
    if dw_cm is not None:
        holder = Dataset()
        holder.RelationshipType, holder.ValueType, holder.ContinuityOfContent = "CONTAINS", "CONTAINER", "SEPARATE"
        name = Dataset()
        name.CodingSchemeDesignator, name.CodeValue, name.CodeMeaning = "99TEST", "SIZE", "size estimation"
        holder.ConceptNameCodeSequence = [name]
        holder.ContentSequence = [_num_item("113980", "Water Equivalent Diameter", dw_cm, "cm")]
        dose.ContentSequence.append(holder)
    return extract(ds, "rdsr")


def test_tv_ssde_5_from_an_rdsr_the_reported_ssde_stands(cfg):
    report = _flash_with("12.0", "30")
    event = report.ct.events[3]
    assert (event.ssde_mGy, event.water_equivalent_diameter_mm, event.ssde_method) == (12.0, 300.0, REPORTED_SSDE)
    enriched = enrich(report, cfg).ct.events[3]
    assert (enriched.ssde_mGy, enriched.ssde_method, enriched.ssde_reason) == (12.0, REPORTED_SSDE, None)


def test_an_rdsr_dw_alone_gives_a_computed_ssde(cfg):
    report = _flash_with(None, "30")
    assert report.ct.events[3].ssde_mGy is None and report.ct.events[3].water_equivalent_diameter_mm == 300.0
    event = enrich(report, cfg).ct.events[3]
    assert event.ssde_mGy == approx(ssde_factor(30, "body32") * 9.91)
    assert event.ssde_method.startswith("DCM 113988") and event.ssde_reason is None
    assert [e.ssde_mGy for e in report.ct.events[:3]] == [None] * 3  # the other events report none
