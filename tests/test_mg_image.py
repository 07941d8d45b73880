"""The mammography image route: GE Senographe and Hologic DBT projection images, one report per
image, checked against the corpus expected values plus targeted unit and quirk tests."""
from __future__ import annotations

import pytest
from pydicom import config

from services.extractors.routes import extract
from shared.outcome import Ignored
from tests.conftest import assert_case_matches_expected, read, with_raw

MG_CASES = [
    "MG-Im-GE_Seno_1_ForPresentation",
    "MG-Im-GE_Seno_1_ForProcessing",
    "MG-Im-GE_Seno_2_ForPresentation",
    "MG-Im-Hologic-PropProj",
]


@pytest.mark.parametrize("case", MG_CASES)
def test_mg_image_matches_the_corpus_expected_values(case):
    # Given a single mammography image from the corpus, when it goes through the mg_image route,
    # then every expected value matches
    report = assert_case_matches_expected(case, "mg_image")
    assert report.sources[0].route == "mg_image"


def test_ge_senographe_organ_dose_in_dgy_is_reported_as_agd_in_mgy():
    report = extract(read("MG-Im-GE_Seno_1_ForPresentation.dcm"), "mg_image")
    # OrganDose (0040,0316) is 0.00547 dGy
    assert report.mammography.events[0].agd_mGy == pytest.approx(0.547)
    assert report.mammography.accumulated_agd_mGy.left == pytest.approx(0.547)
    assert report.mammography.accumulated_agd_mGy.right is None


def test_agd_scales_with_the_organ_dose_value_not_a_constant():
    ds = read("MG-Im-GE_Seno_1_ForPresentation.dcm")
    ds.OrganDose = "0.02"
    report = extract(ds, "mg_image")
    assert report.mammography.events[0].agd_mGy == pytest.approx(2.0)


def test_hologic_un_byte_values_are_decoded_even_when_pydicom_keeps_them_as_bytes():
    # Given the Hologic projection read with UN values left as raw bytes
    previous = config.replace_un_with_known_vr
    config.replace_un_with_known_vr = False
    try:
        ds = read("MG-Im-Hologic-PropProj.dcm")
        assert ds["ExposureInuAs"].VR == "UN" and isinstance(ds["ExposureInuAs"].value, bytes)
        # When it is extracted
        report = extract(ds, "mg_image")
    finally:
        config.replace_un_with_known_vr = previous
    # Then the byte values are read as numbers and terms
    event = report.mammography.events[0]
    assert event.exposure_uAs == 6000.0
    assert event.compression_thickness_mm == 18.0
    assert event.entrance_exposure_at_rp_mGy == pytest.approx(0.42)
    assert event.agd_mGy == pytest.approx(0.26)
    assert event.half_value_layer_mm == pytest.approx(0.479)
    assert event.compression_force_N == 0.0  # present as 0, stays 0
    assert event.anode_target == "Tungsten or Tungsten compound"
    assert event.filter_material == "Aluminum or Aluminum compound"
    assert report.warnings == []


def test_hologic_projection_takes_laterality_from_the_series_laterality():
    ds = read("MG-Im-Hologic-PropProj.dcm")
    assert "ImageLaterality" not in ds
    report = extract(ds, "mg_image")
    assert report.mammography.events[0].laterality == "R"
    assert report.mammography.accumulated_agd_mGy.right == pytest.approx(0.26)


def test_event_is_the_image_identified_by_its_sop_instance_uid_and_acquisition_time():
    ds = read("MG-Im-GE_Seno_2_ForPresentation.dcm")
    event = extract(ds, "mg_image").mammography.events[0]
    assert event.irradiation_event_uid == ds.SOPInstanceUID
    assert event.datetime_started.startswith("2013-04-12T13:26:28")


def test_study_procedure_is_the_protocol_name():
    report = extract(read("MG-Im-GE_Seno_1_ForPresentation.dcm"), "mg_image")
    assert report.study.procedure == "STEREO"
    assert report.study.modality == "MG"


def test_bilateral_image_accumulates_on_both():
    ds = read("MG-Im-GE_Seno_1_ForPresentation.dcm")
    ds.ImageLaterality = "B"
    report = extract(ds, "mg_image")
    assert report.mammography.accumulated_agd_mGy.both == pytest.approx(0.547)
    assert report.mammography.accumulated_agd_mGy.left is None


def test_image_without_laterality_keeps_its_agd_but_accumulates_nothing_and_says_so():
    ds = read("MG-Im-GE_Seno_1_ForPresentation.dcm")
    del ds.ImageLaterality
    report = extract(ds, "mg_image")
    assert report.mammography.events[0].agd_mGy == pytest.approx(0.547)
    assert report.mammography.accumulated_agd_mGy.model_dump() == {"left": None, "right": None,
                                                                   "both": None}
    assert any("laterality" in w for w in report.warnings)


def test_text_in_kvp_gives_none_and_a_warning_naming_the_attribute():
    ds = with_raw(read("MG-Im-GE_Seno_1_ForPresentation.dcm"), 0x00180060, "DS", b"abc ")
    report = extract(ds, "mg_image")
    assert report.mammography.events[0].kvp is None
    assert report.mammography.events[0].agd_mGy == pytest.approx(0.547)
    assert any("KVP (0018,0060)" in w and "abc" in w for w in report.warnings)


def test_missing_study_time_does_not_fail_the_image():
    ds = read("MG-Im-GE_Seno_1_ForPresentation.dcm")
    del ds.StudyTime
    report = extract(ds, "mg_image")
    assert report.study.study_time is None
    assert report.mammography.events[0].agd_mGy == pytest.approx(0.547)


def test_unparsable_study_time_gives_none_and_a_warning():
    ds = with_raw(read("MG-Im-GE_Seno_1_ForPresentation.dcm"), 0x00080030, "TM", b"1x")
    report = extract(ds, "mg_image")
    assert report.study.study_time is None
    assert any("StudyTime (0008,0030)" in w for w in report.warnings)


def test_unknown_anode_material_is_left_empty_with_a_warning():
    ds = read("MG-Im-GE_Seno_1_ForPresentation.dcm")
    ds.AnodeTargetMaterial = "UNOBTAINIUM"
    report = extract(ds, "mg_image")
    assert report.mammography.events[0].anode_target is None
    assert any("AnodeTargetMaterial" in w for w in report.warnings)


def test_ct_rdsr_forced_through_the_mg_route_is_ignored_with_a_reason():
    with pytest.raises(Ignored, match="not a Digital Mammography"):
        extract(read("CT-RDSR-Siemens_Flash-TAP-SS.dcm"), "mg_image")


def test_dx_image_forced_through_the_mg_route_is_ignored():
    with pytest.raises(Ignored, match="SOP class 1.2.840.10008.5.1.4.1.1.1.1.1"):
        extract(read("DX-Im-GE_XR220-1.dcm"), "mg_image")


def test_secondary_capture_that_is_not_an_original_mg_exposure_is_ignored():
    # The Philips CT Dose Info SC is a Secondary Capture too, but CT and DERIVED
    with pytest.raises(Ignored, match="Modality 'CT'"):
        extract(read("CT-SC-Philips_Brilliance16P.dcm"), "mg_image")
    ds = read("MG-Im-Hologic-PropProj.dcm")
    ds.ImageType = ["DERIVED", "SECONDARY"]
    with pytest.raises(Ignored, match="ORIGINAL"):
        extract(ds, "mg_image")
