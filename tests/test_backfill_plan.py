"""The backfill's pure decisions (doseflow/backfill/plan.py): nodes, slices and caps, filters, the
never-retrieved table, and which objects of a study are its dose objects."""
from __future__ import annotations

import datetime as dt

import pytest

from doseflow.backfill import plan
from doseflow.backfill.plan import (EXCLUDED, FILTERED, NOT_DOSE, RETRIEVE, UNSUPPORTED, Filters, Instance, MoveResult,
                                    Profile, Series, Slice)
from shared import dicom

ORTHANC = Profile(matches_modalities_in_study=True, returns_modalities_in_study=True, series_sop_class=True,
                  series_instance_count=True, series_station_name=True, series_description=True,
                  image_level_in_sr=True, image_sop_class=True, image_concept_name=True)
WEAK = Profile()  # dcmqrscp: nothing beyond Modality, SeriesNumber and InstanceNumber
ALL = ("CT", "MG", "DX", "RF")


def test_a_node_is_aet_at_host_and_port_or_a_configured_name():
    assert plan.parse_node("PACS@10.0.0.5:104") == plan.Node("PACS", "10.0.0.5", 104)
    assert plan.resolve_node("main", ["main=ARCHIVE@pacs.example.org:11112"]) == \
        plan.Node("ARCHIVE", "pacs.example.org", 11112)
    for bad in ("PACS@host", "@host:104", "A" * 17 + "@h:104", "PACS@h:70000"):
        with pytest.raises(ValueError, match="AET@HOST:PORT"):
            plan.parse_node(bad)
    with pytest.raises(ValueError, match="no PACS node named 'other'.*main"):
        plan.resolve_node("other", ["main=ARCHIVE@pacs:104"])


def test_the_profile_is_overridden_per_node_or_for_all():
    node = plan.Node("ARCHIVE", "h", 104)
    entries = ["max_answers=500", "ARCHIVE.image_level_in_sr=false", "OTHER.series_description=false"]
    overrides = plan.profile_overrides(entries, node)
    assert overrides == {"max_answers": "500", "image_level_in_sr": "false"}
    p = ORTHANC.overridden(overrides)
    assert p.max_answers == 500 and p.image_level_in_sr is False and p.series_description is True
    with pytest.raises(ValueError, match="unknown profile key 'nonsense'"):
        Profile().overridden({"nonsense": "1"})
    with pytest.raises(ValueError, match="true or false"):
        Profile().overridden({"image_sop_class": "maybe"})


def test_the_range_is_cut_in_days_and_a_capped_slice_in_halves_down_to_a_minute():
    days = plan.day_slices(dt.date(2024, 1, 30), dt.date(2024, 2, 2))
    assert [str(s) for s in days] == ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
    assert days[0].study_time() == ""  # a whole day matches studies without a StudyTime too
    with pytest.raises(ValueError, match="before"):
        plan.day_slices(dt.date(2024, 2, 2), dt.date(2024, 2, 1))
    morning, afternoon = plan.split(days[0])
    assert (morning.time_from, morning.time_to, afternoon.time_from, afternoon.time_to) == \
        ("000000", "115959", "120000", "235959")
    assert afternoon.study_time() == "120000-235959"
    s = days[0]
    for _ in range(30):
        halves = plan.split(s)
        if halves is None:
            break
        s = halves[0]
    assert halves is None and plan._seconds(s.time_to) - plan._seconds(s.time_from) < plan.MIN_SLICE_S


@pytest.mark.parametrize("answers,status,cap,capped", [
    (10, 0x0000, 0, False),
    (500, 0x0000, 500, True),  # exactly the cap: never taken as complete
    (499, 0x0000, 500, False),
    (4, 0xFE00, 0, True),  # Orthanc's LimitFindResults: the answers so far, then Cancel
    (0, 0xA700, 0, True),  # out of resources: some PACSes answer nothing when too many match (OpenREM #319)
    (3, 0xC001, 0, True),
])
def test_an_answer_that_may_be_incomplete_splits_the_slice(answers, status, cap, capped):
    assert plan.capped(answers, status, Profile(max_answers=cap)) is capped


def test_study_queries_follow_what_the_pacs_does_with_modalities_in_study():
    assert plan.study_query_modalities(ALL, ORTHANC) == (None,)  # returned: filtered here
    matching_only = Profile(matches_modalities_in_study=True)
    assert plan.study_query_modalities(("CT", "DX"), matching_only) == ("CT", "DX", "CR", "PX", "SR")
    assert plan.study_query_modalities(ALL, WEAK) == (None,)
    assert plan.wanted_study(["CT", "SR"], ["CT"]) and plan.wanted_study(["SR"], ["MG"])
    assert not plan.wanted_study(["MR", "SR"], ALL) and not plan.wanted_study(["CT"], ["MG"])
    assert plan.parse_modalities("ct, dx") == ("CT", "DX")
    with pytest.raises(ValueError, match="unknown modality NM"):
        plan.parse_modalities("CT,NM")


def test_filters_match_substrings_and_pass_missing_values():
    f = Filters(description_include=Filters.terms("chest, ,abdo"), station_exclude=Filters.terms("PET"))
    assert f.description_include == ("chest", "abdo")  # the empty term is dropped, not a match-all
    assert plan.description_refused("CT Chest", f) is None
    assert "no include term" in plan.description_refused("CT Head", f)
    assert plan.description_refused(None, f) is None
    assert "exclude term 'pet'" in plan.station_refused("GEMINI_PET_1", f)
    assert plan.station_refused("", f) is None


def test_pet_nm_and_bulk_classes_are_never_retrieved_whatever_the_rule():
    assert "Raw Data" in plan.never_retrieved(sop_class="1.2.840.10008.5.1.4.1.1.66")
    assert "PET" in plan.never_retrieved(sop_class="1.2.840.10008.5.1.4.1.1.128")
    assert "PET series" in plan.never_retrieved(modality="PT")
    assert plan.never_retrieved(sop_class=dicom.CT_IMAGE, modality="CT") is None
    # A PET raw-data object in a legacy CT series is dropped even as its first instance.
    choice = plan.SeriesChoice(RETRIEVE, "legacy", inspect="first", take="first_ct_image")
    [(_, decision, reason)] = plan.instances_to_take(
        choice, [Instance("1", "1.2.840.10008.5.1.4.1.1.66", 1)], ORTHANC, set())
    assert decision == EXCLUDED and "never retrieved" in reason


def _decide(series, sr_instances, profile=ORTHANC, groups=ALL, filters=Filters()):
    first = plan.triage(series, groups, filters, profile)
    dose_sr = any(c.take == "whole" for c in first.values())
    for s in series:
        c = first.get(s.uid)
        if c and c.take == "dose_sr":
            dose_sr |= any(d == RETRIEVE for _, d, _ in plan.instances_to_take(c, sr_instances.get(s.uid, []), profile, set()))
    return plan.choose(series, first, dose_sr, groups, profile)


RDSR_TITLE = ("113701", "DCM")


def test_a_study_with_an_rdsr_takes_only_the_rdsr():
    series = [Series("sr", "SR", 502, "Dose Report"), Series("ct", "CT", 2, "Thorax 1.0"),
              Series("pt", "PT", 900, "PET RAW")]
    choices = _decide(series, {"sr": [Instance("r", dicom.XRAY_RADIATION_DOSE_SR, 1, RDSR_TITLE)]})
    assert choices["sr"].decision == RETRIEVE
    assert choices["ct"].decision == NOT_DOSE and "dose SR" in choices["ct"].reason
    assert choices["pt"].decision == EXCLUDED


def test_sr_instances_are_chosen_by_class_and_confirmed_by_title():
    choice = plan.SeriesChoice(RETRIEVE, "SR", inspect="all", take="dose_sr")
    found = [Instance("rdsr", dicom.XRAY_RADIATION_DOSE_SR, 1, RDSR_TITLE),
             Instance("esr", dicom.ENHANCED_SR, 2, RDSR_TITLE),
             Instance("report", dicom.ENHANCED_SR, 3, ("18748-4", "LN")),
             Instance("varic", dicom.ENHANCED_SR, 4, ("C-10", "99SMS_RADSUM")),  # (value, scheme), as scu reads it
             Instance("comprehensive", dicom.COMPREHENSIVE_SR, 5, None),
             Instance("sc", dicom.SECONDARY_CAPTURE, 6)]  # OpenREM #972: an SC in the SR series
    got = {i.uid: d for i, d, _ in plan.instances_to_take(choice, found, ORTHANC, set())}
    assert got == {"rdsr": RETRIEVE, "esr": RETRIEVE, "report": NOT_DOSE, "varic": RETRIEVE,
                   "comprehensive": NOT_DOSE, "sc": NOT_DOSE}
    # A PACS that returns no SOP class: the classifier decides after receipt.
    [(_, d, why)] = plan.instances_to_take(choice, [Instance("x", None, 1)], WEAK, set())
    assert d == RETRIEVE and "no SOPClassUID" in why


def test_mg_and_dx_images_only_where_no_rdsr_and_for_processing_only_without_for_presentation():
    series = [Series("p", "MG", 1), Series("q", "MG", 2), Series("sr", "SR", 3)]
    choices = _decide(series, {"sr": [Instance("k", dicom.COMPREHENSIVE_SR, 1)]})
    assert choices["p"].decision == RETRIEVE and choices["p"].take == "all"
    found = [Instance("a", dicom.MG_FOR_PRESENTATION, 1), Instance("b", dicom.MG_FOR_PROCESSING, 1)]
    classes = {dicom.MG_FOR_PRESENTATION, dicom.MG_FOR_PROCESSING}
    got = {i.uid: d for i, d, _ in plan.instances_to_take(choices["p"], found, ORTHANC, classes)}
    assert got == {"a": RETRIEVE, "b": NOT_DOSE}
    got = {i.uid: d for i, d, _ in plan.instances_to_take(choices["p"], found[1:], ORTHANC, {dicom.MG_FOR_PROCESSING})}
    assert got == {"b": RETRIEVE}
    with_rdsr = _decide(series, {"sr": [Instance("r", dicom.XRAY_RADIATION_DOSE_SR, 1, RDSR_TITLE)]})
    assert with_rdsr["p"].decision == NOT_DOSE
    assert _decide([Series("d", "CR", 1)], {}, groups=("CT",))["d"].decision == NOT_DOSE  # DX not requested


def test_ct_fallbacks_philips_dose_info_then_legacy_screens_then_nothing():
    philips = [Series("sc", "CT", 80160, "Dose Info"), Series("img", "CT", 2, "Abdomen 5mm")]
    c = _decide(philips, {})
    assert (c["sc"].decision, c["img"].decision) == (RETRIEVE, NOT_DOSE)
    legacy = [Series("screen", "CT", 9000, "Dose Summary"), Series("head", "CT", 2, "Head Routine"),
              Series("keys", "CT", 5001, "Key images")]
    c = _decide(legacy, {})
    assert c["screen"].take == "all" and c["head"].take == "first_ct_image" and c["keys"].take == "first_ct_image"
    first = [Instance("k1", dicom.SECONDARY_CAPTURE, 1)]
    [(_, d, _)] = plan.instances_to_take(c["keys"], first, ORTHANC, set())
    assert d == NOT_DOSE  # a key-image capture is not a CT image
    found = [Instance("h2", dicom.CT_IMAGE, 2), Instance("h1", dicom.CT_IMAGE, 1)]
    got = {i.uid: d for i, d, _ in plan.instances_to_take(c["head"], found, ORTHANC, set())}
    assert got == {"h1": RETRIEVE, "h2": NOT_DOSE}
    # GE LightSpeed-style "Dose Report" screen, and a screen known only by its series number.
    assert _decide([Series("g", "CT", 999, "Dose Report"), Series("i", "CT", 2)], {})["g"].decision == RETRIEVE
    weak = _decide([Series("s", "CT", 9000), Series("i", "CT", 2)], {}, profile=WEAK)
    assert weak["s"].take == "all" and weak["i"].take == "first_ct_image"
    assert _decide([Series("i", "CT", 2, "Head")], {})["i"].decision == NOT_DOSE
    assert _decide([Series("i", "CT", 2)], {}, profile=WEAK)["i"].decision == UNSUPPORTED


def test_rf_images_are_never_retrieved_and_station_filters_apply_per_series():
    assert _decide([Series("x", "XA", 1)], {})["x"].decision == NOT_DOSE
    f = Filters(station_exclude=("theatre",))
    c = _decide([Series("a", "SR", 1, station="THEATRE2"), Series("b", "SR", 2, station="ROOM1")], {}, filters=f)
    assert c["a"].decision == FILTERED and c["b"].decision == RETRIEVE


def test_an_sr_series_without_image_level_answers_is_taken_whole():
    no_image = Profile(image_level_in_sr=False)
    c = _decide([Series("sr", "SR", 1), Series("ct", "CT", 2)], {}, profile=no_image)
    assert c["sr"].take == "whole" and c["ct"].decision == NOT_DOSE


def test_move_statuses():
    assert plan.destination_refused(MoveResult(0xA801), any_success_yet=True)
    assert plan.destination_refused(MoveResult(0xC000, completed=0), any_success_yet=False)
    assert not plan.destination_refused(MoveResult(0xC000, completed=0), any_success_yet=True)
    assert not plan.destination_refused(MoveResult(0xB000, completed=2, failed=1), any_success_yet=False)
    assert plan.status_text(0xA801).startswith("0xA801 Failure")
    assert "no answer" in plan.status_text(None)
