"""The Philips CT "Dose Info" secondary capture route (Brilliance 16P), checked against the
corpus expected values plus targeted unit, private-tag and event-UID tests."""
from __future__ import annotations

import re

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from services.extractors.ct_philips import event_uid
from services.extractors.routes import extract
from shared.outcome import Ignored
from tests.conftest import assert_case_matches_expected, read

CASE = "CT-SC-Philips_Brilliance16P"
FILE = f"{CASE}.dcm"


def test_philips_dose_info_matches_the_corpus_expected_values():
    report = assert_case_matches_expected(CASE, "ct_philips")
    assert report.sources[0].route == "ct_philips"


def test_exposure_time_in_ms_is_converted_to_seconds():
    # item 2 has ExposureTime (0018,1150) 6986 ms
    events = extract(read(FILE), "ct_philips").ct.events
    assert events[1].exposure_time_s == pytest.approx(6.986)
    assert events[0].exposure_time_s is None  # the surview item has no exposure time


def test_tube_current_in_ua_is_converted_to_ma():
    events = extract(read(FILE), "ct_philips").ct.events
    assert events[1].sources[0].tube_current_mA == pytest.approx(165.044374)
    assert events[1].sources[0].id == "A"


def test_surview_zeros_stay_zero():
    event = extract(read(FILE), "ct_philips").ct.events[0]
    assert event.ctdivol_mGy == 0.0 and event.dlp_mGycm == 0.0
    assert event.pitch_factor is None  # absent, not 0


def test_event_uids_are_the_same_on_every_import_and_distinct_per_exposure():
    first = [e.irradiation_event_uid for e in extract(read(FILE), "ct_philips").ct.events]
    second = [e.irradiation_event_uid for e in extract(read(FILE), "ct_philips").ct.events]
    assert first == second
    assert len(set(first)) == 4
    for uid in first:
        assert len(uid) <= 64 and re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", uid)


def test_event_uids_differ_between_objects():
    ds = read(FILE)
    assert event_uid(ds.SOPInstanceUID, 0) != event_uid(ds.SOPInstanceUID + ".1", 0)
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".1"
    other = extract(ds, "ct_philips").ct.events[0].irradiation_event_uid
    assert other == event_uid(ds.SOPInstanceUID, 0)
    assert other != extract(read(FILE), "ct_philips").ct.events[0].irradiation_event_uid


def test_totals_come_from_the_elscint_private_dlp_and_the_exposure_count():
    ct = extract(read(FILE), "ct_philips").ct
    assert ct.total_dlp_mGycm == pytest.approx(1102.44609)
    assert ct.total_events == 4


def test_private_dlp_in_another_creators_block_is_not_read_as_dlp():
    # Given the top-level (00E1,0010) block reserved by some other creator
    ds = read(FILE)
    ds[0x00E10010].value = "SOMEONE ELSE"
    report = extract(ds, "ct_philips")
    assert report.ct.total_dlp_mGycm is None
    assert report.ct.events[1].dlp_mGycm == pytest.approx(196.01)  # the items keep ELSCINT1


def test_private_dlp_is_found_wherever_elscint_reserved_its_block():
    # Given ELSCINT1 in the second block of group 00E1, after another creator's
    ds = read(FILE)
    del ds[0x00E11021]
    ds[0x00E10010].value = "GEIIS"
    ds.add_new(0x00E10011, "LO", "ELSCINT1")
    ds.add_new(0x00E11121, "DS", "123.4")
    assert extract(ds, "ct_philips").ct.total_dlp_mGycm == pytest.approx(123.4)


def test_missing_item_dlp_gives_none_and_a_warning_not_a_failure():
    ds = read(FILE)
    del ds.ExposureDoseSequence[2][0x00E11021]
    report = extract(ds, "ct_philips")
    assert report.ct.events[2].dlp_mGycm is None
    assert report.ct.events[3].dlp_mGycm == pytest.approx(657.85012)
    assert any("item 3" in w and "DLP" in w for w in report.warnings)


def test_text_in_item_kvp_gives_none_and_a_warning():
    ds = read(FILE)
    kvp = Tag(0x00180060)
    ds.ExposureDoseSequence[1][kvp] = RawDataElement(kvp, "DS", 4, b"high", 0, False, True)
    report = extract(ds, "ct_philips")
    assert report.ct.events[1].sources[0].kvp is None
    assert report.ct.events[2].sources[0].kvp == 120.0
    assert any("KVP (0018,0060)" in w and "high" in w for w in report.warnings)


@pytest.mark.parametrize("value, phantom", [("16 CM", "head16"), ("32 CM", "body32"),
                                            ("20 CM", None)])
def test_ctdi_phantom_comes_from_the_elscint_private_attribute(value, phantom):
    ds = read(FILE)
    item = ds.ExposureDoseSequence[1]
    item.add_new(0x01E10010, "LO", "ELSCINT1")
    item.add_new(0x01E11026, "CS", value)
    assert extract(ds, "ct_philips").ct.events[1].ctdiw_phantom == phantom


def test_study_fields_follow_the_philips_layout():
    study = extract(read(FILE), "ct_philips").study
    assert study.modality == "CT"
    assert study.study_description == "Abdomen/IH_KUB_2mm"  # ProtocolName
    assert study.comment.startswith("StudyDescription: CT Thorax & abdo & pelvis with contrast. "
                                    "Comments on radiation dose: Series #3 PRE KIDNEYS")
    assert study.comment.endswith("ProtocolFilename: Abdomen_Multi_1240_usr.proc")


def test_referring_physician_is_the_requesting_physician():
    ds = read(FILE)
    ds.RequestingPhysician = "Who^Doctor"
    assert extract(ds, "ct_philips").study.referring_physician_name == "Who^Doctor"


def test_empty_acquisition_datetimes_leave_the_irradiation_span_empty():
    ct = extract(read(FILE), "ct_philips").ct
    assert ct.start_of_xray_irradiation is None and ct.end_of_xray_irradiation is None
    assert all(e.datetime_started is None for e in ct.events)


def test_irradiation_ends_at_the_last_start_plus_its_exposure_time_in_seconds():
    ds = read(FILE)
    starts = ["20170516093000", "20170516093100", "20170516093200", "20170516093300"]
    for item, start in zip(ds.ExposureDoseSequence, starts):
        item.AcquisitionDateTime = start
    ct = extract(ds, "ct_philips").ct
    assert ct.events[3].datetime_started == "2017-05-16T09:33:00"
    assert ct.start_of_xray_irradiation == "2017-05-16T09:30:00"
    assert ct.end_of_xray_irradiation == "2017-05-16T09:33:15.745000"  # + 15745 ms


def test_missing_study_time_does_not_fail_the_object():
    ds = read(FILE)
    del ds.StudyTime
    report = extract(ds, "ct_philips")
    assert report.study.study_time is None
    assert len(report.ct.events) == 4


def test_secondary_capture_from_another_manufacturer_is_ignored_with_a_reason():
    ds = read(FILE)
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    with pytest.raises(Ignored, match="not a Philips CT Dose Info"):
        extract(ds, "ct_philips")


def test_philips_secondary_capture_of_another_series_is_ignored():
    ds = read(FILE)
    ds.SeriesDescription = "Patient Protocol"
    with pytest.raises(Ignored, match="Patient Protocol"):
        extract(ds, "ct_philips")


def test_mammography_image_forced_through_the_philips_route_is_ignored():
    with pytest.raises(Ignored, match="not Secondary Capture"):
        extract(read("MG-Im-GE_Seno_1_ForPresentation.dcm"), "ct_philips")


def test_dose_info_without_exposure_items_or_total_is_ignored():
    ds = read(FILE)
    del ds.ExposureDoseSequence
    del ds[0x00E11021]
    with pytest.raises(Ignored, match="no exposure items"):
        extract(ds, "ct_philips")
