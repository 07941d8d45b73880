"""The projection X-ray part of the rdsr route (TID 10001 for RF and DX, and the Siemens Arcadis
Varic summary), against the real vendor files of the corpus, plus unit conversions, the RF/DX
decision, value rules and the malformed content it must survive."""
from __future__ import annotations

import copy

import pytest
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from shared import sr
from shared.outcome import Ignored
from shared.codes import DCM
from tests.conftest import (ACCUMULATED, assert_matches_expected, code, events, item_in, rdsr, read,
                            report_of, round_trip, set_raw_numeric_value)

PROJECTION_CASES = [
    "RF-ESR-Siemens-Varic",
    "RF-Pat-Orientation-Modifier-Missing",
    "RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP",
    "RF-RDSR-GE",
    "RF-RDSR-Philips_Allura",
    "RF-RDSR-Siemens-Zee",
    "DX-RDSR-Canon_CXDI",
    "Dual-RDSR-DX",
]


def num_item(code_value: str, meaning: str, value: str, unit: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "NUM"
    item.ConceptNameCodeSequence = Sequence([code(code_value, "DCM", meaning)])
    mv = Dataset()
    mv.NumericValue = value
    mv.MeasurementUnitsCodeSequence = Sequence([code(unit, "UCUM", unit)])
    item.MeasuredValueSequence = Sequence([mv])
    return item


def code_item(name: Dataset, value: Dataset) -> Dataset:
    item = Dataset()
    item.RelationshipType = "HAS CONCEPT MOD"
    item.ValueType = "CODE"
    item.ConceptNameCodeSequence = Sequence([name])
    item.ConceptCodeSequence = Sequence([value])
    return item


def remove(container: Dataset, code_value: str) -> None:
    container.ContentSequence = Sequence(
        [c for c in container.ContentSequence if sr.concept_name(c) != DCM(code_value)])


# --- the corpus ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", PROJECTION_CASES)
def test_projection_report_matches_the_corpus_expected_values(case):
    # Given a projection X-ray dose SR (or the Varic summary) from the corpus
    # When it goes through the rdsr route
    report = report_of(case)
    # Then every expected value matches, and nothing lands in the other sections
    assert_matches_expected(report.model_dump(mode="json"), case)
    assert report.ct is None and report.mammography is None


# --- units ----------------------------------------------------------------------------------------


def test_canon_dap_in_dgycm2_is_converted_to_gym2():
    report = report_of("RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP")
    # Event 1 DAP is 1.323 dGy.cm2; the plane's total 126.596 dGy.cm2, fluoro 106.281, acquisition 20.315
    assert report.projection.events[0].dap_Gym2 == pytest.approx(1.323e-5)
    plane = report.projection.planes[0]
    assert plane.dap_total_Gym2 == pytest.approx(126.596e-5)
    assert plane.fluoro_dap_total_Gym2 == pytest.approx(106.281e-5)
    assert plane.acquisition_dap_total_Gym2 == pytest.approx(20.315e-5)


def test_canon_ultimax_dose_at_rp_in_mgy_is_converted_to_gy():
    report = report_of("RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP")
    # Event 1 dose at RP is 0.384 mGy; the plane's totals 30.573, 25.664 and 4.909 mGy
    assert report.projection.events[0].dose_rp_Gy == pytest.approx(0.384e-3)
    plane = report.projection.planes[0]
    assert plane.dose_rp_total_Gy == pytest.approx(0.030573)
    assert plane.fluoro_dose_rp_total_Gy == pytest.approx(0.025664)
    assert plane.acquisition_dose_rp_total_Gy == pytest.approx(0.004909)


def test_varic_dap_in_gycm2_is_divided_by_ten_thousand():
    report = report_of("RF-ESR-Siemens-Varic")
    # C-204 "Cumulative dose area product" is 0.2359 Gy.cm^2
    assert report.projection.planes[0].dap_total_Gym2 == pytest.approx(0.2359e-4)
    assert report.projection.planes[0].plane == "single"
    assert report.projection.events == []
    assert report.study.modality == "RF"


def test_siemens_gym2_unit_spelling_is_read_as_gray_square_metre():
    report = report_of("RF-RDSR-Siemens-Zee")
    # Siemens writes "Gym2" for Gy.m2: 1.6e-005 stays 1.6e-5
    assert report.projection.planes[0].dap_total_Gym2 == pytest.approx(1.6e-5)
    assert report.projection.events[0].dap_Gym2 == pytest.approx(1e-6)


def test_a_dap_in_an_unknown_unit_is_dropped_with_a_warning():
    # Given a Siemens report whose DAP total is in a unit nobody should use
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    dap_total = item_in(sr.find(ds, ACCUMULATED), "113722")
    dap_total.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue = "R.cm2"
    # When extracted
    report = rdsr(round_trip(ds))
    # Then the total is empty, not a guess, and the warning says which item and unit
    assert report.projection.planes[0].dap_total_Gym2 is None
    assert report.projection.planes[0].fluoro_dap_total_Gym2 == pytest.approx(1.6e-5)
    assert any("Dose Area Product Total (DCM 113722)" in w and "'R.cm2'" in w for w in report.warnings)


# --- RF or DX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case, modality", [
    ("RF-RDSR-Siemens-Zee", "RF"),
    ("RF-RDSR-GE", "RF"),
    ("RF-RDSR-Philips_Allura", "RF"),
    ("RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP", "RF"),
    ("RF-Pat-Orientation-Modifier-Missing", "RF"),
    ("DX-RDSR-Canon_CXDI", "DX"),
    ("Dual-RDSR-DX", "DX"),
])
def test_projection_modality_follows_the_fluoroscopy_content_without_a_device_type(case, modality):
    assert report_of(case).study.modality == modality


def test_dual_room_radiograph_with_fluoro_totals_present_as_zero_is_dx():
    report = report_of("Dual-RDSR-DX")
    plane = report.projection.planes[0]
    # the zeros are kept as zeros (not absent), and do not count as fluoroscopy
    assert plane.fluoro_dap_total_Gym2 == 0.0 and plane.total_fluoro_time_s == 0.0
    assert report.study.modality == "DX"


def _with_device_type(ds: Dataset, value: str, meaning: str) -> Dataset:
    device_type = code_item(code("122142", "DCM", "Acquisition Device Type"), code(value, "DCM", meaning))
    ds.ContentSequence.insert(1, device_type)
    return ds


def test_integrated_device_type_makes_a_fluoroscopy_report_dx():
    ds = _with_device_type(read("RF-RDSR-Siemens-Zee.dcm"), "113958",
                           "Integrated Projection Radiography System")
    assert rdsr(round_trip(ds)).study.modality == "DX"


def test_fluoroscopy_guided_device_type_makes_a_radiograph_report_rf():
    ds = _with_device_type(read("Dual-RDSR-DX.dcm"), "113957",
                           "Fluoroscopy-Guided Projection Radiography System")
    assert rdsr(round_trip(ds)).study.modality == "RF"


def test_azurion_is_rf_whatever_device_type_it_declares():
    # Given a report claiming to be an integrated radiography system from an Azurion
    ds = _with_device_type(read("Dual-RDSR-DX.dcm"), "113958", "Integrated Projection Radiography System")
    ds.ManufacturerModelName = "Azurion 7 M20"
    # Then it is RF: the Azurion is known to send the wrong device type
    assert rdsr(round_trip(ds)).study.modality == "RF"


def test_an_unknown_device_type_is_warned_about_and_the_content_decides():
    ds = _with_device_type(read("Dual-RDSR-DX.dcm"), "999999", "Something Else")
    report = rdsr(round_trip(ds))
    assert report.study.modality == "DX"
    assert any("Acquisition Device Type (DCM 122142)" in w for w in report.warnings)


# --- value rules and vendor quirks ------------------------------------------------------------------


def test_average_tube_current_is_preferred_over_the_tube_current_values():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    first = events(ds)[0]
    first.ContentSequence.append(num_item("113767", "Average X-Ray Tube Current", "88.5", "mA"))
    report = rdsr(round_trip(ds))
    assert report.projection.events[0].tube_current_mA == pytest.approx(88.5)
    assert report.projection.events[1].tube_current_mA == pytest.approx(96.9)


def test_per_pulse_values_give_the_mean_current_kvp_and_pulse_width_and_the_summed_exposure():
    # Given an event whose source values are sent per pulse (multi-valued numbers)
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    first = events(ds)[0]
    item_in(first, "113734").MeasuredValueSequence[0].NumericValue = ["90", "100", "110"]
    item_in(first, "113733").MeasuredValueSequence[0].NumericValue = ["70", "72", "77"]
    item_in(first, "113793").MeasuredValueSequence[0].NumericValue = ["4", "5", "6"]
    item_in(first, "113736").MeasuredValueSequence[0].NumericValue = ["300", "400", "500"]
    # When extracted
    event = rdsr(round_trip(ds)).projection.events[0]
    # Then one value per event: means of the settings, the total of the exposure
    assert event.tube_current_mA == pytest.approx(100.0)
    assert event.kvp == pytest.approx(73.0)
    assert event.pulse_width_ms == pytest.approx(5.0)
    assert event.exposure_uAs == pytest.approx(1200.0)


def test_repeated_tube_current_items_are_averaged():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    events(ds)[0].ContentSequence.append(num_item("113734", "X-Ray Tube Current", "104.9", "mA"))
    assert rdsr(round_trip(ds)).projection.events[0].tube_current_mA == pytest.approx(100.0)


def test_exposure_time_is_read_from_the_current_code_113824():
    # Canon and GE send Exposure Time with code 113824 (113735 is the retired code)
    report = report_of("RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP")
    assert report.projection.events[0].exposure_time_ms == pytest.approx(580.000019)
    assert report_of("RF-RDSR-GE").projection.events[0].exposure_time_ms == pytest.approx(7333.0)


def test_philips_exposure_time_is_mean_pulse_width_times_pulses_when_not_sent():
    report = report_of("RF-RDSR-Philips_Allura")
    event = report.projection.events[0]
    # No Exposure Time item; Pulse Width 4.05582655886454 ms x 98 pulses
    assert event.exposure_time_ms == pytest.approx(4.05582655886454 * 98)


def test_philips_private_number_of_frames_and_table_height_fill_only_absent_standard_items():
    # Given the Allura event with its standard Number of Pulses removed
    ds = read("RF-RDSR-Philips_Allura.dcm")
    remove(events(ds)[0], "113768")
    event = rdsr(round_trip(ds)).projection.events[0]
    # Then the private "Number of Frames" (98) stands in, and the private table height (905 mm) is read
    assert event.number_of_pulses == 98
    assert event.table_height_mm == pytest.approx(905.0)
    # while the Siemens standard table height is read as sent
    assert report_of("RF-RDSR-Siemens-Zee").projection.events[0].table_height_mm == pytest.approx(151.8)


def test_collimated_field_height_and_width_are_read_from_the_sr():
    # The reference importer never reads 113788/113789; doseflow does.
    ds = read("RF-RDSR-GE.dcm")
    first = events(ds)[0]
    first.ContentSequence.append(num_item("113788", "Collimated Field Height", "204", "mm"))
    first.ContentSequence.append(num_item("113789", "Collimated Field Width", "20.5", "cm"))
    event = rdsr(round_trip(ds)).projection.events[0]
    assert event.collimated_field_height_mm == pytest.approx(204.0)
    assert event.collimated_field_width_mm == pytest.approx(205.0)
    assert event.collimated_field_area_m2 == pytest.approx(0.041968)


def test_ge_text_observer_uid_and_empty_positioner_angles_are_handled():
    report = report_of("RF-RDSR-GE")
    assert report.equipment.device_observer_uid == "1.3.6.1.4.1.45593.912345678.9876543123"
    # GE sends the angles with an empty MeasuredValueSequence: empty, with one warning for all 8 events
    assert all(e.positioner_primary_angle_deg is None for e in report.projection.events)
    angle_warnings = [w for w in report.warnings if "Positioner Primary Angle" in w]
    assert angle_warnings == [
        "projection events 1-8: Positioner Primary Angle (DCM 112011) has no measured value "
        "(empty MeasuredValueSequence); stored as empty"]


def test_canon_cxdi_empty_dose_at_rp_is_empty_not_zero():
    report = report_of("DX-RDSR-Canon_CXDI")
    assert report.projection.events[0].dose_rp_Gy is None
    assert report.projection.planes[0].dose_rp_total_Gy is None
    assert report.projection.events[0].exposure_uAs == pytest.approx(800.0)  # unit written "uA.s"


def test_reference_point_definition_is_the_code_meaning_or_the_text():
    assert report_of("RF-RDSR-Siemens-Zee").projection.planes[0].reference_point_definition \
        == "15cm from Isocenter toward Source"
    assert report_of("RF-RDSR-Philips_Allura").projection.planes[0].reference_point_definition \
        == "15cm below BeamIsocenter"


def test_event_order_and_planes_follow_the_document():
    report = report_of("RF-RDSR-Siemens-Zee")
    starts = [e.datetime_started for e in report.projection.events]
    assert len(starts) == 8 and starts[0] == "2016-05-12T10:11:54"
    assert {e.plane for e in report.projection.events} == {"single"}


def test_plane_a_and_b_containers_give_two_planes():
    # Given a biplane report: the accumulated container copied as Plane B
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    plane_a = sr.find(ds, ACCUMULATED)
    item_in(plane_a, "113764").ConceptCodeSequence[0].CodeValue = "113620"
    plane_b = copy.deepcopy(plane_a)
    item_in(plane_b, "113764").ConceptCodeSequence = Sequence([code("113621", "DCM", "Plane B")])
    item_in(plane_b, "113722").MeasuredValueSequence[0].NumericValue = "2.5e-5"
    ds.ContentSequence.insert(list(ds.ContentSequence).index(plane_a) + 1, plane_b)
    # Then both planes are listed with their own names
    planes = rdsr(round_trip(ds)).projection.planes
    assert [p.plane for p in planes] == ["A", "B"]
    assert [p.dap_total_Gym2 for p in planes] == pytest.approx([1.6e-5, 2.5e-5])


# --- malformed content ------------------------------------------------------------------------------


def test_text_in_a_numeric_value_gives_none_and_a_warning_not_a_crash():
    # Given the Zee report with text where the first event's DAP and the DAP total belong
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    set_raw_numeric_value(item_in(events(ds)[0], "122130"), b"n/a ")
    set_raw_numeric_value(item_in(sr.find(ds, ACCUMULATED), "113722"), b"1,6e-5")
    # When extracted
    report = rdsr(round_trip(ds))
    # Then those two values are empty, the rest is read, and the warnings name the items
    assert report.projection.events[0].dap_Gym2 is None
    assert report.projection.events[1].dap_Gym2 == pytest.approx(1.2e-6)
    assert report.projection.planes[0].dap_total_Gym2 is None
    assert report.projection.planes[0].dose_rp_total_Gy == pytest.approx(0.00252)
    assert any("event 1: Dose Area Product (DCM 122130)" in w for w in report.warnings)
    assert any("Dose Area Product Total (DCM 113722)" in w for w in report.warnings)


def test_text_in_a_numeric_value_is_survived_under_strict_pydicom_validation():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    set_raw_numeric_value(item_in(events(ds)[0], "113733"), b"seventy")
    ds = round_trip(ds)
    strictness = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        report = rdsr(ds)
    finally:
        config.settings.reading_validation_mode = strictness
    assert report.projection.events[0].kvp is None
    assert any("KVP (DCM 113733)" in w for w in report.warnings)


def test_a_report_without_the_accumulated_container_keeps_its_events_and_warns():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    remove(ds, "113702")
    report = rdsr(round_trip(ds))
    assert report.projection.planes == []
    assert len(report.projection.events) == 8
    assert report.study.modality == "RF"  # fluoroscopy events still make it RF
    assert any("Accumulated X-Ray Dose Data (DCM 113702)" in w for w in report.warnings)


def test_a_num_item_without_any_measured_value_sequence_is_empty_not_a_crash():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    del item_in(events(ds)[0], "113738").MeasuredValueSequence
    report = rdsr(round_trip(ds))
    assert report.projection.events[0].dose_rp_Gy is None
    assert report.projection.events[1].dose_rp_Gy == pytest.approx(0.00019)
    assert any("Dose (RP) (DCM 113738)" in w for w in report.warnings)


def test_a_missing_unit_on_a_dose_is_not_guessed():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    del item_in(events(ds)[0], "113738").MeasuredValueSequence[0].MeasurementUnitsCodeSequence
    report = rdsr(round_trip(ds))
    assert report.projection.events[0].dose_rp_Gy is None
    assert any("Dose (RP) (DCM 113738) has no unit" in w for w in report.warnings)


def test_an_accumulated_container_without_a_plane_is_taken_as_single_plane_with_a_warning():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    remove(sr.find(ds, ACCUMULATED), "113764")
    report = rdsr(round_trip(ds))
    assert report.projection.planes[0].plane == "single"
    assert report.projection.planes[0].dap_total_Gym2 == pytest.approx(1.6e-5)
    assert any("Acquisition Plane" in w for w in report.warnings)


def test_a_projection_report_with_no_dose_content_is_ignored():
    ds = read("RF-RDSR-Siemens-Zee.dcm")
    remove(ds, "113702")
    without_totals = rdsr(round_trip(ds))
    assert without_totals.projection.planes == [] and without_totals.projection.events
    assert "projection: no Accumulated X-Ray Dose Data (DCM 113702) container; the report has no dose " \
           "totals" in without_totals.warnings
    remove(ds, "113706")
    with pytest.raises(Ignored, match="^projection X-ray dose report with no Accumulated X-Ray Dose Data and "
                                      "no Irradiation Event X-Ray Data$"):
        rdsr(round_trip(ds))


def test_a_mammography_report_without_accumulated_dose_warns_and_with_no_dose_content_is_ignored():
    ds = read("MG-RDSR-Hologic_2D.dcm")
    remove(ds, "113702")
    report = rdsr(round_trip(ds))
    assert report.mammography.accumulated_agd_mGy.left is None and report.mammography.events
    assert "mammography: no Accumulated X-Ray Dose Data (DCM 113702) container; the report has no " \
           "accumulated AGD" in report.warnings
    remove(ds, "113706")
    with pytest.raises(Ignored, match="^mammography dose report with no Accumulated X-Ray Dose Data and "
                                      "no Irradiation Event X-Ray Data$"):
        rdsr(round_trip(ds))
