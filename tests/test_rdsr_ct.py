"""The CT part of the rdsr route (TID 10011 in RDSRs and GE's CT Enhanced SR), against the real
vendor files of the corpus, plus the quirks and malformed values it must survive."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from services.extractors.routes import extract
from shared import sr
from shared.outcome import Ignored
from shared.codes import DCM
from tests.conftest import CT_SR_CASES as CT_CASES
from tests.conftest import (acquisitions, assert_case_matches_expected, assert_matches_expected,
                            code, item_in, read, round_trip, set_raw_numeric_value)


def content_item(value_type: str, name: Dataset, relationship: str = "CONTAINS") -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = Sequence([name])
    return item


def ct_of(ds: Dataset) -> dict:
    return extract(ds, "rdsr").model_dump(mode="json")


# --- the corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CT_CASES)
def test_every_ct_dose_report_of_the_corpus_gives_its_expected_values(case):
    # Given a real vendor CT RDSR or ESR, when the rdsr route reads it, then every value the
    # corpus expects is there, in DESIGN's units
    assert_case_matches_expected(case, "rdsr")


@pytest.mark.parametrize("case", CT_CASES)
def test_well_formed_ct_reports_read_without_warnings(case):
    report = extract(read(f"{case}.dcm"), "rdsr")
    assert report.warnings == []


def test_the_non_dose_enhanced_sr_is_ignored():
    with pytest.raises(Ignored):
        extract(read("ESR_non-dose.dcm"), "rdsr")


# --- the vendor quirks -------------------------------------------------------------------------


def test_toshiba_dose_check_alert_and_notification_details_are_read():
    report = extract(read("CT-RDSR-Toshiba_DoseCheck.dcm"), "rdsr")
    first, second = (event.dose_check for event in report.ct.events)

    assert first.dlp_alert_value_configured is True
    assert first.ctdivol_alert_value_configured is True
    assert first.dlp_alert_value_mGycm == pytest.approx(100.0)
    assert first.ctdivol_alert_value_mGy == pytest.approx(10.0)
    assert first.accumulated_dlp_forward_estimate_mGycm == pytest.approx(251.2)
    assert first.accumulated_ctdivol_forward_estimate_mGy is None  # absent in event 1, not 0
    assert first.alert_person_name == "Luuk"
    assert first.dlp_notification_value_configured is False
    assert first.ctdivol_notification_value_configured is False
    assert first.dlp_notification_value_mGycm is None

    assert second.accumulated_dlp_forward_estimate_mGycm == pytest.approx(502.4)
    assert second.accumulated_ctdivol_forward_estimate_mGy == pytest.approx(10.6)


def test_an_event_without_dose_check_containers_has_no_dose_check():
    report = extract(read("CT-ESR-GE_Optima.dcm"), "rdsr")
    assert all(event.dose_check is None for event in report.ct.events)


@pytest.mark.parametrize("meaning", ["Reason for Proceeding", "Reason For Proceeding"])
def test_reason_for_proceeding_is_read_by_code_whatever_its_spelling(meaning):
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    alert = item_in(acquisitions(ds)[0], "113829", "113900")
    reason = content_item("TEXT", code("113907", "DCM", meaning))
    reason.TextValue = "Obese patient"
    alert.ContentSequence.append(reason)

    check = ct_of(round_trip(ds))["ct"]["events"][0]["dose_check"]

    assert check["alert_reason_for_proceeding"] == "Obese patient"


def test_a_dose_check_person_participant_without_a_name_is_skipped_with_a_warning():
    # Spectrum Dynamics sends invalid person participants: a PNAME item with no name and no
    # proper children must not stop the report.
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    alert = item_in(acquisitions(ds)[0], "113829", "113900")
    person = item_in(alert, "113870")
    del person.PersonName
    person.ContentSequence = Sequence([Dataset()])  # a child with no concept at all

    report = extract(round_trip(ds), "rdsr")

    check = report.ct.events[0].dose_check
    assert check.alert_person_name is None
    assert check.dlp_alert_value_mGycm == pytest.approx(100.0)
    assert any("Person Name (113870)" in w for w in report.warnings)


def test_modulation_type_comes_from_the_siemens_comment_when_the_item_is_missing():
    ds = read("CT-RDSR-Siemens-Continued-1.dcm")
    event = acquisitions(ds)[1]
    comment = sr.text(sr.find(event, DCM("121106")))
    assert comment.endswith("X-ray Modulation Type = XYZ_EC")
    event.ContentSequence = Sequence(
        [c for c in event.ContentSequence if not sr.is_concept(c, DCM("113842"))])

    report = ct_of(ds)

    assert report["ct"]["events"][1]["xray_modulation_type"] == "XYZ_EC"
    assert report["ct"]["events"][1]["comment"] == comment


def test_modulation_type_item_wins_over_the_comment():
    report = ct_of(read("CT-RDSR-Siemens-Continued-1.dcm"))
    assert [e["xray_modulation_type"] for e in report["ct"]["events"]] == ["NONE", "XYZ_EC"]


def test_ge_lower_case_x_ray_meanings_are_still_read():
    ds = read("CT-ESR-GE_Optima.dcm")
    last = acquisitions(ds)[5]
    source = item_in(last, "113822", "113831")
    # The file really spells these with a lower-case "x" (the test would prove nothing otherwise).
    assert sr.find(ds, DCM("113809")).ConceptNameCodeSequence[0].CodeMeaning == \
        "Start of X-ray Irradiation"
    assert source.ConceptNameCodeSequence[0].CodeMeaning == "CT X-ray Source Parameters"
    assert item_in(source, "113833").ConceptNameCodeSequence[0].CodeMeaning == \
        "Maximum X-ray Tube Current"

    report = extract(ds, "rdsr")

    event = report.ct.events[5]
    assert report.ct.start_of_xray_irradiation == "2006-08-23T11:40:14"
    assert event.number_of_xray_sources == 1
    assert event.sources[0].max_tube_current_mA == pytest.approx(560.0)
    assert event.sources[0].tube_current_mA == pytest.approx(100.0)


def test_ge_dlp_written_as_mgycm_is_read_as_mgy_cm():
    ds = read("CT-ESR-GE_Optima.dcm")
    dlp = item_in(acquisitions(ds)[5], "113829", "113838")
    assert dlp.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "mGycm"

    report = extract(ds, "rdsr")

    assert report.ct.events[5].dlp_mGycm == pytest.approx(259.85)
    assert report.ct.total_dlp_mGycm == pytest.approx(415.82)


def test_toshiba_identification_number_of_the_source_is_matched_by_code():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    ident = item_in(acquisitions(ds)[0], "113822", "113831", "113832")
    assert ident.ConceptNameCodeSequence[0].CodeMeaning == "Identification Number of the X-Ray Source"
    assert extract(ds, "rdsr").ct.events[0].sources[0].id == "1"


def test_tube_current_with_a_wrong_meaning_is_matched_by_code():
    # Siemens Intevo writes 113734 with a meaning that is not "X-Ray Tube Current".
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    current = item_in(acquisitions(ds)[0], "113822", "113831", "113734")
    current.ConceptNameCodeSequence[0].CodeMeaning = "X-Ray Tube Current in mA"
    assert extract(ds, "rdsr").ct.events[0].sources[0].tube_current_mA == pytest.approx(150.0)


def test_toshiba_malformed_multi_valued_ds_in_a_private_container_is_harmless():
    # Toshiba vHP: "Standard deviation of population" written '10.50/ 15.00' inside a private
    # "Dose Reduce Parameters" container. We never read that container; it must not crash us.
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    private = content_item("CONTAINER", code("99TOST000A-0010", "99TOSHIBA-TMSC", "Dose Reduce Parameters"))
    private.ContinuityOfContent = "SEPARATE"
    deviation = content_item("NUM", code("99TOST000A-0011", "99TOSHIBA-TMSC",
                                         "Standard deviation of population"))
    measured = Dataset()
    measured.MeasurementUnitsCodeSequence = Sequence([code("1", "UCUM", "no units")])
    deviation.MeasuredValueSequence = Sequence([measured])
    set_raw_numeric_value(deviation, b"10.50/ 15.00")
    private.ContentSequence = Sequence([deviation])
    acquisitions(ds)[0].ContentSequence.append(private)

    report = extract(round_trip(ds), "rdsr")

    assert report.warnings == []
    assert report.ct.events[0].ctdivol_mGy == pytest.approx(5.3)
    assert_matches_expected(report.model_dump(mode="json"), "CT-RDSR-Toshiba_DoseCheck")


def test_phantom_codes_become_head16_and_body32():
    head = extract(read("CT-RDSR-GEPixelMed.dcm"), "rdsr").ct.events[0]
    body = extract(read("CT-RDSR-Toshiba_DoseCheck.dcm"), "rdsr").ct.events[0]
    assert (head.ctdiw_phantom, body.ctdiw_phantom) == ("head16", "body32")


def test_irradiation_date_times_keep_their_fraction():
    ct = extract(read("CT-RDSR-Siemens-Continued-1.dcm"), "rdsr").ct
    assert ct.start_of_xray_irradiation == "2018-04-27T10:11:37.966991"


def test_events_follow_document_order():
    ds = read("CT-ESR-GE_Optima.dcm")
    in_file = [sr.uid(sr.find(a, DCM("113769"))) for a in acquisitions(ds)]
    assert [e.irradiation_event_uid for e in extract(ds, "rdsr").ct.events] == in_file


# --- malformed values: None and a warning, never a crash, never 0 ------------------------------


def test_text_in_a_numeric_value_and_a_missing_measured_value_give_none_and_warnings():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    set_raw_numeric_value(item_in(acquisitions(ds)[0], "113829", "113830"), b"n/a ")
    del item_in(ds, "113811", "113813").MeasuredValueSequence

    report = extract(round_trip(ds), "rdsr")

    assert report.ct.events[0].ctdivol_mGy is None
    assert report.ct.total_dlp_mGycm is None
    assert report.ct.events[0].dlp_mGycm == pytest.approx(251.2)  # its neighbours still read
    assert report.ct.events[1].ctdivol_mGy == pytest.approx(5.3)
    assert any("Mean CTDIvol (113830)" in w and "CT Acquisition 1" in w for w in report.warnings)
    assert any("CT Dose Length Product Total (113813)" in w for w in report.warnings)


def test_an_empty_measured_value_sequence_gives_none_and_a_warning():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    item_in(acquisitions(ds)[1], "113822", "113828").MeasuredValueSequence = Sequence([])

    report = extract(round_trip(ds), "rdsr")

    assert report.ct.events[1].pitch_factor is None
    assert any("Pitch Factor (113828)" in w for w in report.warnings)


def test_a_numeric_value_present_as_zero_stays_zero():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    item_in(acquisitions(ds)[0], "113829", "113830").MeasuredValueSequence[0].NumericValue = "0"
    report = extract(ds, "rdsr")
    assert report.ct.events[0].ctdivol_mGy == 0.0
    assert report.warnings == []


def _set_unit(num_item: Dataset, unit: str) -> None:
    num_item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue = unit


def test_ctdivol_in_gy_is_converted_to_mgy():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    ctdivol = item_in(acquisitions(ds)[0], "113829", "113830")
    ctdivol.MeasuredValueSequence[0].NumericValue = "0.0053"
    _set_unit(ctdivol, "Gy")
    assert extract(ds, "rdsr").ct.events[0].ctdivol_mGy == pytest.approx(5.3)


def test_dlp_in_gy_cm_is_converted_to_mgy_cm():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    total = item_in(ds, "113811", "113813")
    total.MeasuredValueSequence[0].NumericValue = "0.5024"
    _set_unit(total, "Gy.cm")
    assert extract(ds, "rdsr").ct.total_dlp_mGycm == pytest.approx(502.4)


def test_a_dose_in_a_unit_that_cannot_be_converted_gives_none_and_a_warning():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    _set_unit(item_in(acquisitions(ds)[0], "113829", "113830"), "mGy.cm")
    _set_unit(item_in(acquisitions(ds)[0], "113829", "113838"), "mGy")

    report = extract(ds, "rdsr")

    assert report.ct.events[0].ctdivol_mGy is None
    assert report.ct.events[0].dlp_mGycm is None
    assert any("Mean CTDIvol (113830)" in w and "'mGy.cm'" in w for w in report.warnings)
    assert any("DLP (113838)" in w and "'mGy'" in w for w in report.warnings)


def test_a_numeric_value_without_a_unit_gives_none_and_a_warning():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    kvp = item_in(acquisitions(ds)[0], "113822", "113831", "113733")
    del kvp.MeasuredValueSequence[0].MeasurementUnitsCodeSequence

    report = extract(ds, "rdsr")

    assert report.ct.events[0].sources[0].kvp is None
    assert any("KVP (113733)" in w and "no unit" in w for w in report.warnings)


def test_a_scanning_length_in_cm_is_converted_to_mm():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    length = item_in(acquisitions(ds)[0], "113822", "113825")
    length.MeasuredValueSequence[0].NumericValue = "48.7"
    _set_unit(length, "cm")
    assert extract(ds, "rdsr").ct.events[0].scanning_length_mm == pytest.approx(487.0)


def test_a_report_with_no_ct_dose_content_is_ignored():
    ds = read("CT-RDSR-Toshiba_DoseCheck.dcm")
    ds.ContentSequence = Sequence(
        [c for c in ds.ContentSequence if not sr.is_concept(c, (DCM("113811"), DCM("113819")))])
    with pytest.raises(Ignored):
        extract(ds, "rdsr")
