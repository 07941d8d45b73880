"""The mammography part of the rdsr route (TID 10001 with procedure Mammography): GE Pristina
and Hologic Selenia Dimensions RDSRs against the corpus, plus laterality, per-pulse values,
units and malformed content."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from shared import sr
from shared.codes import DCM, SRT
from tests.conftest import (ACCUMULATED, assert_matches_expected, code, events, item_in, rdsr, read,
                            report_of, round_trip, set_raw_numeric_value)

MG_CASES = ["MG-RDSR-GEPristina-2D", "MG-RDSR-Hologic_2D"]

ACCUMULATED_AGD = DCM("111637")
LATERALITY = SRT("G-C171")


def agd_items(ds: Dataset) -> list[Dataset]:
    return sr.find_all(sr.find(ds, ACCUMULATED), ACCUMULATED_AGD)


# --- the corpus -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", MG_CASES)
def test_mammography_rdsr_matches_the_corpus_expected_values(case):
    # Given a mammography RDSR from the corpus, when it goes through the rdsr route
    report = report_of(case)
    # Then every expected value matches, in the mammography section only
    assert_matches_expected(report.model_dump(mode="json"), case)
    assert report.study.modality == "MG"
    assert report.projection is None and report.ct is None


# --- accumulated AGD ------------------------------------------------------------------------------


def test_accumulated_agd_is_read_per_breast_from_the_laterality_child():
    agd = report_of("MG-RDSR-Hologic_2D").mammography.accumulated_agd_mGy
    assert (agd.left, agd.right, agd.both) == (pytest.approx(1.30), pytest.approx(1.28), None)


def test_an_accumulated_agd_of_zero_stays_zero():
    # GE Pristina reports 0 mGy for the left breast of a right-only study
    agd = report_of("MG-RDSR-GEPristina-2D").mammography.accumulated_agd_mGy
    assert agd.left == 0.0
    assert agd.right == pytest.approx(9.68)


def test_accumulated_agd_for_both_breasts_is_read_from_the_snomed_ct_code():
    ds = read("MG-RDSR-Hologic_2D.dcm")
    laterality = sr.find(agd_items(ds)[0], LATERALITY)
    laterality.ConceptCodeSequence = Sequence([code("63762007", "SCT", "Both breasts")])
    agd = rdsr(round_trip(ds)).mammography.accumulated_agd_mGy
    assert agd.both == pytest.approx(1.30)
    assert agd.left is None


def test_accumulated_agd_without_laterality_is_not_guessed():
    ds = read("MG-RDSR-Hologic_2D.dcm")
    del agd_items(ds)[0].ContentSequence
    report = rdsr(round_trip(ds))
    assert report.mammography.accumulated_agd_mGy.left is None
    assert report.mammography.accumulated_agd_mGy.right == pytest.approx(1.28)
    assert any("Accumulated Average Glandular Dose (DCM 111637)" in w for w in report.warnings)


def test_agd_sent_in_gy_is_converted_to_mgy():
    ds = read("MG-RDSR-Hologic_2D.dcm")
    agd = item_in(events(ds)[0], "111631").MeasuredValueSequence[0]
    agd.NumericValue = "0.0013"
    agd.MeasurementUnitsCodeSequence[0].CodeValue = "Gy"
    assert rdsr(round_trip(ds)).mammography.events[0].agd_mGy == pytest.approx(1.3)


# --- events ---------------------------------------------------------------------------------------


def test_laterality_comes_from_the_anatomical_structure_child_as_l_or_r():
    # Hologic and GE put Laterality under "Anatomical structure" (SRT T-D0005)
    assert [e.laterality for e in report_of("MG-RDSR-Hologic_2D").mammography.events] == ["L", "R"]
    assert report_of("MG-RDSR-GEPristina-2D").mammography.events[0].laterality == "R"


def test_laterality_under_target_region_is_read_too():
    # Given the Hologic event with Laterality moved under the Target Region (CP 1676 form)
    ds = read("MG-RDSR-Hologic_2D.dcm")
    first = events(ds)[0]
    target_region = item_in(first, "123014")
    assert not sr.children(target_region)
    structure = sr.find(first, SRT("T-D0005"))
    moved = structure.ContentSequence[0]
    del structure.ContentSequence
    moved.ConceptCodeSequence = Sequence([code("G-A100", "SRT", "Right")])
    target_region.ContentSequence = Sequence([moved])
    # Then the event is the right breast
    assert rdsr(round_trip(ds)).mammography.events[0].laterality == "R"


def test_hologic_image_view_in_the_snm3_scheme_is_its_meaning():
    assert report_of("MG-RDSR-Hologic_2D").mammography.events[0].view == "cranio-caudal"


def test_ge_pristina_per_pulse_kvp_and_tube_current_give_the_first_value():
    # Each Pristina event has two KVP (34.1, 33.99) and two tube current (2, 30.48) items
    event = report_of("MG-RDSR-GEPristina-2D").mammography.events[0]
    assert event.kvp == pytest.approx(34.1)
    assert event.tube_current_mA == pytest.approx(2.0)
    # Exposure Time (code 113824) is read as sent
    assert event.exposure_time_ms == pytest.approx(609.5)


def test_compression_and_filter_are_read():
    event = report_of("MG-RDSR-Hologic_2D").mammography.events[0]
    assert event.compression_thickness_mm == pytest.approx(43.0)
    assert event.filter_material == "Rhodium or Rhodium compound"
    assert event.anode_target == "Tungsten or Tungsten compound"
    # two filter containers of the same material name it once
    pristina = report_of("MG-RDSR-GEPristina-2D").mammography.events[0]
    assert pristina.filter_material == "Silver or Silver compound"


def test_compression_force_is_read_in_newtons():
    ds = read("MG-RDSR-Hologic_2D.dcm")
    force = Dataset()
    force.RelationshipType, force.ValueType = "CONTAINS", "NUM"
    force.ConceptNameCodeSequence = Sequence([code("111647", "DCM", "Compression Force")])
    mv = Dataset()
    mv.NumericValue = "9.5"
    mv.MeasurementUnitsCodeSequence = Sequence([code("daN", "UCUM", "daN")])
    force.MeasuredValueSequence = Sequence([mv])
    events(ds)[0].ContentSequence.append(force)
    assert rdsr(round_trip(ds)).mammography.events[0].compression_force_N == pytest.approx(95.0)


# --- malformed content ------------------------------------------------------------------------------


def test_text_in_the_agd_gives_none_and_a_warning_not_a_crash():
    ds = read("MG-RDSR-Hologic_2D.dcm")
    set_raw_numeric_value(item_in(events(ds)[1], "111631"), b"high")
    report = rdsr(round_trip(ds))
    assert report.mammography.events[1].agd_mGy is None
    assert report.mammography.events[0].agd_mGy == pytest.approx(1.30)
    assert any("event 2: Average Glandular Dose (DCM 111631)" in w for w in report.warnings)


def test_a_mammography_report_without_the_accumulated_container_keeps_its_events():
    ds = read("MG-RDSR-Hologic_2D.dcm")
    ds.ContentSequence = Sequence([c for c in ds.ContentSequence if sr.concept_name(c) != ACCUMULATED])
    report = rdsr(round_trip(ds))
    agd = report.mammography.accumulated_agd_mGy
    assert (agd.left, agd.right, agd.both) == (None, None, None)
    assert len(report.mammography.events) == 2
    assert any("Accumulated X-Ray Dose Data (DCM 113702)" in w for w in report.warnings)
