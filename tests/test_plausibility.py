"""Plausibility after every route (shared/plausibility.py): placeholders become absent, values
beyond human bounds become absent, dose values outside their unit-sanity range are kept and
warned about. Each rule on a real corpus object, edited with pydicom where no corpus file shows
the rule."""
from __future__ import annotations

import pytest

from services.extractors.routes import extract
from shared import sr
from shared.plausibility import DOSE_RANGES
from shared.codes import DCM
from tests.conftest import read


def warnings_with(report, *words):
    return [w for w in report.warnings if all(word in w for word in words)]


# --- placeholders ---------------------------------------------------------------------------------


def test_cr_style_zero_placeholders_become_absent_with_warnings():
    # The Agfa CR pattern (kVp 0, 0 µAs, weight 0, size 0) on a real GE radiograph.
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.KVP = "0"
    ds.ExposureInuAs = 0
    ds.Exposure = 0
    ds.PatientWeight = "0"
    ds.PatientSize = "0"
    ds.DistanceSourceToDetector = "0"
    report = extract(ds, "dx_image")
    event = report.projection.events[0]
    assert event.kvp is None and event.exposure_uAs is None and event.distance_source_to_detector_mm is None
    assert report.patient.weight_kg is None and report.patient.size_m is None
    assert event.dap_Gym2 == pytest.approx(4.1e-06)  # the dose it did deliver stays
    for path in ("projection.events[0].kvp", "projection.events[0].exposure_uAs", "patient.weight_kg",
                 "patient.size_m", "projection.events[0].distance_source_to_detector_mm"):
        assert warnings_with(report, "placeholder:", path), (path, report.warnings)


def test_philips_rdsr_weight_zero_becomes_absent():
    ds = read("RF-RDSR-Philips_Allura.dcm")
    ds.PatientWeight = "0"
    report = extract(ds, "rdsr")
    assert report.patient.weight_kg is None
    assert warnings_with(report, "placeholder: patient.weight_kg: 0")


def test_rdsr_event_kvp_zero_becomes_absent():
    ds = read("RF-RDSR-Philips_Allura.dcm")
    event = sr.find_all(ds, (DCM("113706"),))[1]
    kvp = sr.find(event, (DCM("113733"),))
    kvp.MeasuredValueSequence[0].NumericValue = "0"
    report = extract(ds, "rdsr")
    assert report.projection.events[1].kvp is None
    assert report.projection.events[0].kvp == pytest.approx(69.3977142857142)
    assert warnings_with(report, "placeholder: projection.events[1].kvp")


def test_a_surview_ctdivol_of_zero_stays_zero():
    # Philips Dose Info: the surview's CTDIvol and DLP are 0 in the object, and 0 is a real dose.
    report = extract(read("CT-SC-Philips_Brilliance16P.dcm"), "ct_philips")
    assert report.ct.events[0].ctdivol_mGy == 0.0 and report.ct.events[0].dlp_mGycm == 0.0
    assert not warnings_with(report, "ct.events[0].ctdivol") and not warnings_with(report, "ct.events[0].dlp")


def test_zero_exposure_is_kept_for_an_event_that_states_it_delivered_no_dose():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.ImageAndFluoroscopyAreaDoseProduct = "0"
    ds.ExposureInuAs = 0
    report = extract(ds, "dx_image")
    assert report.projection.events[0].exposure_uAs == 0.0
    assert report.projection.events[0].dap_Gym2 == 0.0


def test_zero_exposure_of_an_event_whose_dose_is_unknown_is_a_placeholder():
    ds = read("DX-Im-GE_XR220-1.dcm")
    del ds.ImageAndFluoroscopyAreaDoseProduct
    ds.XRayTubeCurrent = 0
    report = extract(ds, "dx_image")
    assert report.projection.events[0].tube_current_mA is None
    assert warnings_with(report, "placeholder: projection.events[0].tube_current_mA")


def test_ct_source_kvp_zero_becomes_absent():
    ds = read("CT-SC-Philips_Brilliance16P.dcm")
    ds.ExposureDoseSequence[1].KVP = "0"
    report = extract(ds, "ct_philips")
    assert report.ct.events[1].sources[0].kvp is None
    assert warnings_with(report, "placeholder: ct.events[1].sources[0].kvp")


# --- human bounds ---------------------------------------------------------------------------------


def test_birth_date_1800_gives_no_age_and_a_warning():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.PatientBirthDate = "18000101"
    report = extract(ds, "dx_image")
    assert report.patient.age_years is None
    assert warnings_with(report, "implausible: patient.age_years", "214.")


@pytest.mark.parametrize("keyword, value, field", [
    ("PatientSize", "170", "size_m"),      # centimetres in a metres field
    ("PatientWeight", "75000", "weight_kg"),  # grams in a kilogram field
])
def test_patient_values_beyond_human_bounds_become_absent(keyword, value, field):
    ds = read("CT-RDSR-Siemens_Flash-TAP-SS.dcm")
    setattr(ds, keyword, value)
    report = extract(ds, "rdsr")
    assert getattr(report.patient, field) is None
    assert warnings_with(report, f"implausible: patient.{field}: {value}")


def test_values_within_human_bounds_are_kept():
    report = extract(read("CT-RDSR-Siemens_Flash-TAP-SS.dcm"), "rdsr")
    assert report.patient.size_m == pytest.approx(1.86) and report.patient.weight_kg == pytest.approx(87.0)
    assert not [w for w in report.warnings if w.startswith(("placeholder", "implausible", "out of range"))]


def test_age_zero_is_kept_with_a_suspect_warning():
    # Birth date = study date: a newborn, or an anonymiser's placeholder; the corpus keeps 0.
    report = extract(read("DX-Im-Carestream_DR7500-1.dcm"), "dx_image")
    assert report.patient.age_years == 0.0
    assert warnings_with(report, "suspect: patient.age_years is 0")


# --- dose unit-sanity ranges ----------------------------------------------------------------------


def test_dx_dap_of_2_gym2_is_kept_and_warned_about():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.ImageAndFluoroscopyAreaDoseProduct = "210000"  # dGy·cm² = 2.1 Gy·m²
    report = extract(ds, "dx_image")
    assert report.projection.events[0].dap_Gym2 == pytest.approx(2.1)
    warning = warnings_with(report, "out of range: projection.events[0].dap_Gym2")
    assert warning and "DAP 2.1 Gy·m² for one radiographic exposure (DX)" in warning[0]
    assert "check units" in warning[0]


def test_ct_ctdivol_beyond_the_dose_check_alert_is_kept_and_warned_about():
    ds = read("CT-SC-Philips_Brilliance16P.dcm")
    ds.ExposureDoseSequence[1].CTDIvol = 5000.0
    report = extract(ds, "ct_philips")
    assert report.ct.events[1].ctdivol_mGy == 5000.0
    assert warnings_with(report, "out of range: ct.events[1].ctdivol_mGy: CTDIvol 5000 mGy per event")


def test_rf_dose_rp_read_in_the_wrong_unit_is_kept_and_warned_about():
    # A Dose (RP) in mGy labelled Gy: 293 "Gy" for one fluoroscopy event.
    ds = read("RF-RDSR-Philips_Allura.dcm")
    event = sr.find_all(ds, (DCM("113706"),))[0]
    sr.find(event, (DCM("113738"),)).MeasuredValueSequence[0].NumericValue = "293.08"
    report = extract(ds, "rdsr")
    assert report.projection.events[0].dose_rp_Gy == pytest.approx(293.08)
    assert warnings_with(report, "out of range: projection.events[0].dose_rp_Gy", "above")


def test_mammography_agd_in_dgy_read_as_mgy_is_warned_about():
    ds = read("MG-Im-GE_Seno_1_ForPresentation.dcm")
    ds.OrganDose = "0.0001"  # 0.01 mGy: a value a thousand times too small
    report = extract(ds, "mg_image")
    assert report.mammography.events[0].agd_mGy == pytest.approx(0.01)
    assert warnings_with(report, "out of range: mammography.events[0].agd_mGy", "below")


@pytest.mark.parametrize("name", [
    "CT-ESR-GE_Optima.dcm", "CT-RDSR-Siemens_Flash-TAP-SS.dcm", "CT-RDSR-Toshiba_DoseCheck.dcm",
    "RF-RDSR-Philips_Allura.dcm", "RF-RDSR-Siemens-Zee.dcm", "RF-RDSR-GE.dcm", "RF-ESR-Siemens-Varic.dcm",
    "RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP.dcm", "DX-RDSR-Canon_CXDI.dcm", "Dual-RDSR-DX.dcm",
    "MG-RDSR-Hologic_2D.dcm", "MG-RDSR-GEPristina-2D.dcm", "MG-Im-Hologic-PropProj.dcm",
])
def test_no_corpus_dose_is_out_of_range(name):
    # The ranges are wide enough for every real object of the corpus (all vendors and modalities).
    route = "mg_image" if "-Im-" in name else "rdsr"
    report = extract(read(name), route)
    assert not warnings_with(report, "out of range"), report.warnings


def test_every_range_is_ordered():
    assert all(0 <= r.low < r.high for r in DOSE_RANGES.values())


def test_readme_table_is_the_ranges_in_the_code():
    from pathlib import Path

    from shared.plausibility import ranges_markdown
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("<!-- ranges-table -->\n", 1)[1].split("\n<!-- /ranges-table -->", 1)[0]
    assert table == ranges_markdown(), "README's ranges table differs: paste shared.plausibility.ranges_markdown()"
