"""The GE "Dose Report" screen parser (spec toshiba.md §5) on OCR text, and the corpus GE
LightSpeed study through the real OCR."""
from __future__ import annotations

import os

import pydicom
import pytest

from services.toshiba_builder.build import build_study_report
from services.toshiba_builder.ge_screen import is_ge_text, parse_ge_screen
from services.toshiba_builder.ocr import ocr_available
from services.toshiba_builder.pages import find_dose_summaries
from services.toshiba_builder.reading import parse_dose_screen
from shared.outcome import Failed
from tests.conftest import CORPUS, assert_matches_expected

GE_SCREEN = """\
Exam: 3101 GREEN MARY 20180611
Dose Report
Series Type Scan Range CTDIvol DLP Phantom
(mm) (mGy) (mGy-cm) cm
1 Scout - - -
2 Helical S12.250-I287.750 14.52 457.38 Body 32
3 Axial I10.000-I30.000 55.10 110.20 Head 16
4 Stationary I40.000-I40.000 120.33 60.17 Head 16
5 Cine S5.000-I15.000 30.00 60.00 Body 32
6 SmartView I100.000-I110.000 8.25 8.25 Body 32
Total Exam DLP: 696.00
"""

# How tesseract reads the corpus' GE screen: I as 1 at the start of a position, a space before
# the decimal point.
GE_OCR_TEXT = """\
Exam: 3101 GREEN MARY 20180611
Dose Report
Series Type Scan Range CTDIvol OLP Phantom
(mm) (mGy) (mGy-cm) cm
1 Scout - - -
2 Helical S0.000-1172.500 52.83 911.42 Head 16
3 Helical 1180 .000-1512.250 9.07 318.66 Body 32
Total Exam DLP: 1230.08
"""


def test_every_ge_scan_type_reads_with_signed_positions_doses_and_phantom():
    screen = parse_dose_screen(GE_SCREEN)
    assert [(r.scan_type, r.acquisition_type) for r in screen.rows] == [
        ("SCOUT", "Constant Angle Acquisition"), ("HELICAL", "Spiral Acquisition"),
        ("AXIAL", "Sequenced Acquisition"), ("STATIONARY", "Stationary Acquisition"),
        ("CINE", "Stationary Acquisition"), ("SMARTVIEW", "Free Acquisition")]
    assert [(r.ctdivol_mGy, r.dlp_mGycm, r.phantom) for r in screen.rows] == [
        (None, None, None), (14.52, 457.38, "body32"), (55.10, 110.20, "head16"), (120.33, 60.17, "head16"),
        (30.00, 60.00, "body32"), (8.25, 8.25, "body32")]
    assert [(r.start_position_mm, r.end_position_mm) for r in screen.rows[1:3]] == [(12.25, -287.75), (-10.0, -30.0)]
    assert [r.scanning_length_mm for r in screen.rows] == [None, 300.0, 20.0, 0.0, 20.0, 10.0]
    assert screen.rows[1].dose_decimals == 2
    assert screen.total_dlp_mGycm == 696.00 and screen.dlp_head_mGycm is None


def test_the_ocr_reading_of_i_as_1_still_gives_inferior_positions():
    screen = parse_dose_screen(GE_OCR_TEXT)
    assert [(r.start_position_mm, r.end_position_mm) for r in screen.rows] == [
        (None, None), (0.0, -172.5), (-180.0, -512.25)]
    assert [r.scanning_length_mm for r in screen.rows] == [None, 172.5, 332.25]
    assert screen.total_dlp_mGycm == 1230.08


def test_s_read_as_5_is_superior():
    screen = parse_ge_screen(GE_SCREEN.replace("S12.250-I287.750", "512.250-I287.750"))
    assert screen.rows[1].start_position_mm == 12.25


def test_a_scan_range_that_does_not_read_keeps_the_doses_and_notes_the_empty_length():
    screen = parse_ge_screen(GE_SCREEN.replace("S12.250-I287.750", "S12.250-"))
    row = screen.rows[1]
    assert (row.ctdivol_mGy, row.dlp_mGycm, row.scanning_length_mm) == (14.52, 457.38, None)
    assert row.notes and "scan range" in row.notes[0]


def test_a_lost_s_letter_before_a_1_is_not_guessed_into_a_wrong_length():
    # Seen in Liberation Mono 18 px: every preparation reads S12.250 as "12.250". Taken as I2.250 the
    # length would be 285.5 mm, where 300.0 is printed; both (and 275.5) fit 457.38 / 14.52 = 315 mm.
    screen = parse_dose_screen(GE_SCREEN.replace("S12.250-I287.750", "12.250-1287.750"))
    row = screen.rows[1]
    assert (row.ctdivol_mGy, row.dlp_mGycm, row.phantom, row.scanning_length_mm) == (14.52, 457.38, "body32", None)
    assert len(row.notes) == 1 and "ambiguously" in row.notes[0] and "285.5, 300" in row.notes[0]
    assert [r.scanning_length_mm for r in screen.rows[2:]] == [20.0, 0.0, 20.0, 10.0]


def test_a_digit_in_the_letter_place_is_resolved_when_only_one_reading_fits_dlp_over_ctdivol():
    # I10.000-I30.000 read as 110.000-130.000: 20 mm (as I10-I30, or I110-I130) fits 110.20 / 55.10 = 20 mm;
    # 80, 120, 140, 240 mm do not. Cine S5.000-I15.000 read as 55.000-115.000: only 20 mm fits a 20 mm beam.
    screen = parse_dose_screen(GE_SCREEN.replace("I10.000-I30.000", "110.000-130.000")
                               .replace("S5.000-I15.000", "55.000-115.000"))
    assert [r.scanning_length_mm for r in screen.rows] == [None, 300.0, 20.0, 0.0, 20.0, 10.0]
    assert all(r.notes == [] and r.position_alternatives == [] for r in screen.rows)


def test_positions_of_unlike_decimals_are_a_misread():
    # the corpus page at x2: "S0.000" read "S0.9000"
    row = parse_ge_screen(GE_SCREEN.replace("S12.250-I287.750", "S12.2500-I287.750")).rows[1]
    assert (row.dlp_mGycm, row.scanning_length_mm) == (457.38, None) and "unlike decimals" in row.notes[0]


def test_a_stationary_range_wider_than_its_beam_is_dropped():
    # SmartView: 8.25 / 8.25 = 10 mm of beam cannot hold images over 210 mm
    screen = parse_dose_screen(GE_SCREEN.replace("I100.000-I110.000", "I100.000-I310.000"))
    row = screen.rows[5]
    assert (row.ctdivol_mGy, row.dlp_mGycm, row.scanning_length_mm) == (8.25, 8.25, None)
    assert len(row.notes) == 1 and "at least the scanned one)" in row.notes[0]


def test_rows_not_adding_up_to_total_exam_dlp_fail():
    with pytest.raises(Failed, match="all rows add up to DLP 696.00 mGy.cm but the screen total is 696.1"):
        parse_dose_screen(GE_SCREEN.replace("696.00", "696.10"))


def test_a_ge_report_without_its_total_line_fails():
    with pytest.raises(Failed, match="no DLP total"):
        parse_dose_screen(GE_SCREEN.replace("Total Exam DLP: 696.00", ""), "ge")


def test_a_ge_screen_is_told_from_a_toshiba_one_by_its_total_line():
    assert is_ge_text(GE_SCREEN) and is_ge_text("Total Exam DLP : 12.00")
    assert not is_ge_text("<<Dose Information>>\nDLP(mGycm) (Head): 12.0 (Body): -")


def test_header_and_exam_lines_are_not_rows():
    with pytest.raises(Failed, match="no acquisition row"):
        parse_ge_screen("Exam: 3101 GREEN MARY 20180611\nDose Report\nSeries Type Scan Range\nTotal Exam DLP: 1.00")


CASE = "ge_lightspeed_head_chest"


def test_the_ge_page_of_the_corpus_study_is_found_as_a_ge_summary():
    datasets = [pydicom.dcmread(p) for p in sorted((CORPUS / "toshiba" / CASE).glob("*.dcm"))]
    [summary] = find_dose_summaries(datasets)
    assert summary.family == "ge" and len(summary.pages) == 1


def test_the_corpus_ge_study_builds_the_expected_report_through_the_ocr():
    if not ocr_available():
        if os.environ.get("CI"):
            pytest.fail("tesseract is not installed in CI")
        pytest.skip("tesseract not installed")
    folder = CORPUS / "toshiba" / CASE
    if not folder.is_dir():
        pytest.fail(f"corpus case folder missing: {folder}")
    report = build_study_report([pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))])
    assert_matches_expected(report.model_dump(mode="json"), CASE)
    # GE images carry no Toshiba private dose tags: rows are not matched, and that is no warning
    assert report.warnings == []
