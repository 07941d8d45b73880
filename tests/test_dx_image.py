"""The radiographic image route (CR, DX, PX): Kodak/Carestream DR 7500 and GE Optima XR220
images, one report per image, checked against the corpus expected values plus targeted unit
and vendor-quirk tests."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from services.extractors.routes import extract
from shared.outcome import Failed, Ignored
from tests.conftest import assert_case_matches_expected, read, with_raw

DX_CASES = [
    "DX-Im-Carestream_DR7500-1",
    "DX-Im-Carestream_DR7500-2",
    "DX-Im-Date-Missing",
    "DX-Im-GE_XR220-1",
    "DX-Im-GE_XR220-2",
    "DX-Im-GE_XR220-3",
]


def event_of(ds: Dataset):
    return extract(ds, "dx_image").projection.events[0]


@pytest.mark.parametrize("case", DX_CASES)
def test_dx_image_matches_the_corpus_expected_values(case):
    # Given a single radiographic image from the corpus, when it goes through the dx_image route,
    # then every expected value matches
    report = assert_case_matches_expected(case, "dx_image")
    assert report.sources[0].route == "dx_image"


def test_image_dap_in_dgycm2_is_converted_to_gym2():
    # (0018,115E) is 0.41 dGy.cm2 = 4.1e-6 Gy.m2
    report = extract(read("DX-Im-GE_XR220-1.dcm"), "dx_image")
    assert report.projection.events[0].dap_Gym2 == pytest.approx(4.1e-6)
    plane = report.projection.planes[0]
    assert plane.plane == "single"
    assert plane.dap_total_Gym2 == pytest.approx(4.1e-6)
    assert plane.total_radiographic_frames == 1
    assert plane.dose_rp_total_Gy is None


def test_image_without_dap_has_no_dap_total_rather_than_zero():
    ds = read("DX-Im-GE_XR220-1.dcm")
    del ds.ImageAndFluoroscopyAreaDoseProduct
    report = extract(ds, "dx_image")
    assert report.projection.events[0].dap_Gym2 is None
    assert report.projection.planes[0].dap_total_Gym2 is None
    assert report.projection.planes[0].total_radiographic_frames == 1


def test_event_carries_what_the_study_merge_needs():
    ds = read("DX-Im-GE_XR220-2.dcm")
    event = event_of(ds)
    assert event.irradiation_event_uid == ds.SOPInstanceUID
    assert event.datetime_started.startswith("2014-09-30T14:12:15")
    assert event.plane == "single"
    assert event.event_type == "Stationary Acquisition"


def test_kodak_dr7500_source_to_detector_distance_in_dm_is_converted_to_mm():
    assert event_of(read("DX-Im-Carestream_DR7500-1.dcm")).distance_source_to_detector_mm == 1150.0


def test_source_to_detector_distance_of_other_units_is_taken_as_mm():
    ds = read("DX-Im-Carestream_DR7500-1.dcm")
    ds.Manufacturer = "Carestream Health"  # a DR 7500 labelled Carestream sends mm
    assert event_of(ds).distance_source_to_detector_mm == 11.5


def test_kodak_comma_separated_filters_become_one_flat_filter_per_material():
    filters = event_of(read("DX-Im-Carestream_DR7500-2.dcm")).filters
    assert [(f.type, f.material, f.thickness_min_mm, f.thickness_max_mm) for f in filters] == [
        ("Flat filter", "Aluminum or Aluminum compound", 0.94, 1.06),  # min > max swapped
        ("Flat filter", "Copper or Copper compound", 0.194, 0.206),
    ]


def test_single_filter_keeps_its_type_and_swaps_crossed_thicknesses():
    filters = event_of(read("DX-Im-Carestream_DR7500-1.dcm")).filters
    assert [(f.type, f.material, f.thickness_min_mm, f.thickness_max_mm) for f in filters] == [
        ("Wedge filter", "Aluminum or Aluminum compound", 0.94, 1.06)]


def test_backslash_multivalued_filter_thicknesses_are_kept_per_material():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.FilterType = "FLAT"
    ds.FilterMaterial = ["COPPER", "ALUMINUM"]
    ds.FilterThicknessMinimum = ["0.1", "1.0"]
    ds.FilterThicknessMaximum = ["0.1", "1.0"]
    filters = event_of(ds).filters
    assert [(f.material, f.thickness_min_mm, f.thickness_max_mm) for f in filters] == [
        ("Copper or Copper compound", 0.1, 0.1), ("Aluminum or Aluminum compound", 1.0, 1.0)]


def test_siemens_multix_copper_filter_type_becomes_a_flat_copper_filter():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.FilterType = "CU_0.2_MM"
    filters = event_of(ds).filters
    assert [(f.type, f.material, f.thickness_min_mm, f.thickness_max_mm) for f in filters] == [
        ("Flat filter", "Copper or Copper compound", 0.2, 0.2)]


def test_butterfly_filter_and_aluminium_spelling_are_read():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.FilterType = "BUTTERFLY"
    ds.FilterMaterial = "ALUMINIUM"  # Philips DiDi spelling
    filters = event_of(ds).filters
    assert [(f.type, f.material) for f in filters] == [("Butterfly filter",
                                                         "Aluminum or Aluminum compound")]


def test_filter_type_none_gives_one_no_filter_row():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.FilterType = "NONE"
    assert [f.type for f in event_of(ds).filters] == ["No Filter"]


def test_image_without_filter_attributes_has_no_filter_rows():
    assert event_of(read("DX-Im-GE_XR220-1.dcm")).filters == []


def test_exposure_in_mas_is_converted_to_uas_when_exposure_in_uas_is_absent():
    ds = read("DX-Im-Carestream_DR7500-1.dcm")
    assert "ExposureInuAs" not in ds and ds.Exposure == 10
    assert event_of(ds).exposure_uAs == 10000.0


def test_exposure_in_uas_wins_over_exposure_in_mas():
    # GE writes Exposure 1 mAs (rounded) and ExposureInuAs 1040
    assert event_of(read("DX-Im-GE_XR220-1.dcm")).exposure_uAs == 1040.0


def test_collimated_field_area_is_the_field_of_view_product_in_m2():
    # FieldOfViewDimensions 402 x 402 mm
    area = event_of(read("DX-Im-GE_XR220-1.dcm")).collimated_field_area_m2
    assert area == pytest.approx(0.161604)


def test_drgem_decimal_in_an_is_field_is_kept_even_under_strict_pydicom(strict_pydicom):
    ds = with_raw(read("DX-Im-GE_XR220-1.dcm"), 0x00181150, "IS", b"12.5")
    event = event_of(ds)
    assert event.exposure_time_ms == 12.5


def test_text_in_kvp_gives_none_and_a_warning_naming_the_attribute(strict_pydicom):
    ds = with_raw(read("DX-Im-GE_XR220-1.dcm"), 0x00180060, "DS", b"abc ")
    report = extract(ds, "dx_image")
    assert report.projection.events[0].kvp is None
    assert report.projection.events[0].dap_Gym2 == pytest.approx(4.1e-6)
    assert any("KVP (0018,0060)" in w and "abc" in w for w in report.warnings)


def test_text_in_patient_size_gives_none_and_a_warning(strict_pydicom):
    ds = with_raw(read("DX-Im-GE_XR220-1.dcm"), 0x00101020, "DS", b"MEDIUM")
    report = extract(ds, "dx_image")
    assert report.patient.size_m is None
    assert report.patient.sex == "M"  # the rest of the patient module is still read
    assert any("PatientSize (0010,1020)" in w for w in report.warnings)


def test_missing_study_date_gives_no_date_and_no_invented_event_start():
    report = extract(read("DX-Im-Date-Missing.dcm"), "dx_image")
    assert report.study.study_date is None
    assert report.projection.events[0].datetime_started is None
    assert any("event start unknown" in w for w in report.warnings)


def test_event_date_and_time_fall_back_independently_to_the_study():
    ds = read("DX-Im-Carestream_DR7500-1.dcm")
    ds.AcquisitionDate = ""
    ds.ContentDate = ""
    # the date comes from StudyDate, the time still from AcquisitionTime
    report = extract(ds, "dx_image")
    assert report.projection.events[0].datetime_started == "2014-06-20T10:51:16"
    assert any("StudyDate" in w for w in report.warnings)


def test_missing_study_time_does_not_fail_the_image():
    ds = read("DX-Im-GE_XR220-1.dcm")
    del ds.StudyTime
    report = extract(ds, "dx_image")
    assert report.study.study_time is None
    assert report.projection.events[0].datetime_started.startswith("2014-09-30T14:11:33")


def test_study_description_falls_back_to_the_series_description():
    # GE XR220 sends an empty StudyDescription
    report = extract(read("DX-Im-GE_XR220-1.dcm"), "dx_image")
    assert report.study.study_description == "Abdomen"
    assert report.study.procedure == "ABD_1_VIEW"


def test_requested_procedure_comes_from_the_request_before_the_study_description():
    ds = read("DX-Im-Carestream_DR7500-1.dcm")
    assert extract(ds, "dx_image").study.requested_procedure == "AEC"  # no request at all
    ds.RequestedProcedureDescription = "XR CHEST"
    assert extract(ds, "dx_image").study.requested_procedure == "XR CHEST"


def test_toshiba_radrex_protocol_is_read_from_image_comments():
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.Manufacturer = "TOSHIBA_MEC"
    ds.SoftwareVersions = "TM_TFD_1.0"
    ds.ImageComments = "CHEST PA"
    assert event_of(ds).acquisition_protocol == "CHEST PA"


def test_view_position_is_used_when_there_is_no_view_code():
    ds = read("DX-Im-GE_XR220-1.dcm")
    del ds.ViewCodeSequence
    ds.ViewPosition = "PA"
    assert event_of(ds).image_view == "postero-anterior"


def test_modality_is_the_objects_modality():
    assert extract(read("DX-Im-Carestream_DR7500-1.dcm"), "dx_image").study.modality == "CR"
    ds = read("DX-Im-GE_XR220-1.dcm")
    ds.Modality = "PX"
    assert extract(ds, "dx_image").study.modality == "PX"


def test_mammography_image_forced_through_the_dx_route_is_ignored_with_a_reason():
    with pytest.raises(Ignored, match="not a CR or Digital X-Ray image"):
        extract(read("MG-Im-GE_Seno_1_ForPresentation.dcm"), "dx_image")


def test_ct_rdsr_forced_through_the_dx_route_is_ignored():
    with pytest.raises(Ignored):
        extract(read("CT-RDSR-Siemens_Flash-TAP-SS.dcm"), "dx_image")


def test_image_without_study_instance_uid_fails_with_the_tag_named():
    ds = read("DX-Im-GE_XR220-1.dcm")
    del ds.StudyInstanceUID
    with pytest.raises(Failed, match=r"\(0020,000D\)"):
        extract(ds, "dx_image")
