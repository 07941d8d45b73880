"""Legacy Toshiba CT dose screens: the text parser (clean and OCR-noisy text, the DLP
cross-check), the image-header samples, the report build, and the whole route on the two
synthetic corpus studies through a real OCR engine."""
from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from services.toshiba_builder import screen_text
from services.toshiba_builder.ocr import ocr_available
from services.toshiba_builder.pages import is_dose_page
from services.toshiba_builder.screen import SCAN_TYPES
from services.toshiba_builder.build import (build_report, build_study_report, event_uid, match_rows,
                                            matches)
from services.toshiba_builder.headers import (HeaderSample, StudyHeader, harvest_samples,
                                              harvest_study_header, header_sample)
from services.toshiba_builder.pages import DoseSummary, find_dose_summaries
from services.toshiba_builder.reading import parse_dose_screen, read_summary, settle_readings
from services.toshiba_builder.screen import (DoseScreen, ScreenRow, check_scanning_lengths, irradiated_length_bounds_mm,
                                             merge_screens)
from shared.outcome import Failed
from shared.report import Study
from tests.conftest import assert_matches_expected, corpus_file

CASES = ["toshiba_cx_head_scanogram", "toshiba_cxl_cap_contrast"]

# --- screen texts as an OCR returns them ---------------------------------------------------------

CX_SCREEN = """\
ID  : TSH00001           Exam No.: 1001
Name: DOE JANE           2016/12/06 10:15
Aquilion V4.40ER011
<<Dose Information>>
  CTDIvol(mGy)   (Head): 58.3       (Body): -
  DLP(mGycm)     (Head): 1102.4     (Body): -
<<Contrast/Enhance Information>>
  Agent : -
1/2
ID  : TSH00001           Exam No.: 1001
<<Detail Information>>
 1.Head Routine
              Total mAs       Exposure Time   CTDIvol(mGy)    DLP(mGycm)
 Scanoscope    40              2.9
 Helical       3520            11.0            58.3(Head)      1102.4(Head)
2/2
"""

# The same screen as a poor OCR reading of a small bitmap font gives it: letters for digits,
# I for l, split numbers, braces for parentheses, single angle brackets, lost spaces.
CX_SCREEN_NOISY = """\
ID : TSHOOOO1 Exam No.: 1OO1
<Dose Informations>
CTDIvo1(mGy) (Head) : 58.3 (Body): -
DLP (mGycm) (Head):11O2. 4 (Body) : -
<<Contrast/Enhance lnformation>>
<<Detail lnformation>>
1. Head Routine
Total mAs ExposureTime CTDlvol (mGy) DLP(mGycm)
Scan0scope 4O 2.9
HeIicaI 352O 11. 0 58. 3 (Head} 11O2.4( Head)
"""

CXL_SCREEN = """\
<<Dose Information>>
  CTDIvol(mGy)   (Head): -          (Body): 33.9
  DLP(mGycm)     (Head): -          (Body): 1204.6
<<Contrast/Enhance Information>>
  Agent : Omnipaque 350
  Volume: 100 ml    Rate: 3.0 ml/s
<<Detail Information>>
 1.Chest/Abdomen/Pelvis
              Exposure Time   CTDIvol(mGy)    DLP(mGycm)      Total mAs
              Eff.DLP(mGycm)  Dose Red. Mode  Start Pos.      End Pos.
              Tot. Dose Red.(%)
 Scanoscope   4.6                                             45
 Helical      5.5             9.8(Body)       352.6(Body)     1650
              352.6           ON              -40.50          -365.75
              21.5
 2.Liver Arterial
              Exposure Time   CTDIvol(mGy)    DLP(mGycm)      Total mAs
              Eff.DLP(mGycm)  Dose Red. Mode  Start Pos.      End Pos.
              Tot. Dose Red.(%)
 Helical      4.0             12.4(Body)      268.1(Body)     1480
              268.1           ON              -190.00         -395.25
              18.0
 3.Portal Venous
              Exposure Time   CTDIvol(mGy)    DLP(mGycm)      Total mAs
              Eff.DLP(mGycm)  Dose Red. Mode  Start Pos.      End Pos.
              Tot. Dose Red.(%)
 Helical      7.5             11.7(Body)      583.9(Body)     2310
              583.9           ON              -35.00          -520.50
              24.3
"""

# The layout PixelMed knows from newer software: positions first, effective values below.
EFF_SCREEN = """\
<<Dose Information>>
Eff. DLP (mGycm) : 349.7
<<Detail Information>>
1.Chest/Abdomen/Pelvis
Start Pos. End Pos. Exposure Time Total mAs
Eff. CTDIvol Mean Eff. DLP SD
Scanoscope 9.8 50
Helical -10.50 +71.59 9.8 2350
25.4 208.5 12.5
Helical +80.00 +137.17 7.1 1800
24.7 141.2 11.0
"""

HEAD_AND_BODY_SCREEN = """\
<<Dose Information>>
DLP(mGycm) (Head): 120.3 (Body): 229.4
<<Detail Information>>
1.Head/Neck
Total mAs Exposure Time CTDIvol(mGy) DLP(mGycm)
Helical 1250 5.0 45.2(Head) 120.3(Head)
Helical 2100 6.0 14.1(Body) 229.4(Body)
"""

# --- parser ----------------------------------------------------------------------------------------


def test_single_row_layout_gives_one_event_per_row_with_type_dose_and_phantom():
    screen = parse_dose_screen(CX_SCREEN)
    assert [r.acquisition_type for r in screen.rows] == ["Constant Angle Acquisition", "Spiral Acquisition"]
    localizer, helical = screen.rows
    assert (localizer.ctdivol_mGy, localizer.dlp_mGycm) == (None, None)
    assert (helical.ctdivol_mGy, helical.dlp_mGycm, helical.phantom) == (58.3, 1102.4, "head16")
    assert helical.exposure_time_s == 11.0
    assert helical.protocol == "Head Routine" and helical.block == 1
    assert screen.total_dlp_mGycm == 1102.4 and screen.total_phantom == "head16"


def test_ocr_noise_in_digits_letters_spacing_and_brackets_reads_as_the_clean_screen():
    assert parse_dose_screen(CX_SCREEN_NOISY).full_key() == parse_dose_screen(CX_SCREEN).full_key()


def test_a_scan_type_word_the_ocr_split_in_pieces_still_starts_a_row():
    screen = parse_dose_screen(CX_SCREEN.replace(" Scanoscope    40", " Sc anosc ope 40"))
    assert [r.scan_type for r in screen.rows] == ["SCANOSCOPE", "HELICAL"]


def test_three_row_layout_reads_dose_from_the_first_row_and_the_scan_range_from_the_second():
    screen = parse_dose_screen(CXL_SCREEN)
    assert [(r.ctdivol_mGy, r.dlp_mGycm) for r in screen.rows] == [
        (None, None), (9.8, 352.6), (12.4, 268.1), (11.7, 583.9)]
    assert [r.scanning_length_mm for r in screen.rows] == [None, 325.25, 205.25, 485.5]
    assert [r.protocol for r in screen.rows] == ["Chest/Abdomen/Pelvis", "Chest/Abdomen/Pelvis",
                                                 "Liver Arterial", "Portal Venous"]
    assert screen.rows[1].start_position_mm == -40.5 and screen.rows[1].end_position_mm == -365.75
    assert screen.total_dlp_mGycm == 1204.6 and screen.total_phantom == "body32"
    assert screen.warnings == []  # CTDIvol 33.9 printed with the totals is the rows' sum


def test_the_scanoscope_of_the_three_row_layout_leaves_its_empty_dose_cells_empty():
    localizer = parse_dose_screen(CXL_SCREEN).rows[0]
    assert localizer.acquisition_type == "Constant Angle Acquisition"
    assert localizer.ctdivol_mGy is None and localizer.dlp_mGycm is None and localizer.phantom is None


def test_effective_value_layout_takes_eff_ctdivol_and_eff_dlp_and_the_eff_dlp_total():
    screen = parse_dose_screen(EFF_SCREEN)
    assert [(r.ctdivol_mGy, r.dlp_mGycm) for r in screen.rows] == [(None, None), (25.4, 208.5), (24.7, 141.2)]
    # PixelMed's real output for such a screen: 82.09 mm and 57.17 mm, total 349.7
    assert [r.scanning_length_mm for r in screen.rows[1:]] == [82.09, 57.17]
    assert screen.total_dlp_mGycm == 349.7


def test_a_row_line_that_does_not_read_in_its_columns_leaves_its_values_empty_with_a_note_never_silently():
    # FreeMono 18 px: two preparations read "+137.17" as "4137.17", which breaks the whole line's columns
    screen = parse_dose_screen(EFF_SCREEN.replace("+137.17", "4137.17"))
    row = screen.rows[2]
    assert (row.ctdivol_mGy, row.dlp_mGycm, row.scanning_length_mm, row.exposure_time_s) == (24.7, 141.2, None, None)
    assert row.notes == ["scan range (Start/End Pos.) not read; scanning length left empty",
                         "exposure time not read; left empty"]
    assert screen.rows[1].notes == [] and screen.rows[1].exposure_time_s == 9.8
    assert screen.rows[0].notes == []  # a localizer's empty cells are not a misread


def test_a_scan_range_two_readings_share_but_a_third_reads_otherwise_is_left_empty_with_a_warning():
    # Noto Sans Mono 14 px: x2 and x3 read "-40.50" as "-48.50" (317.25 mm also fits DLP / CTDIvol), x1.5 right
    wrong = parse_dose_screen(CXL_SCREEN.replace("-40.50", "-48.50"))
    screen = settle_readings([wrong, wrong.model_copy(deep=True), parse_dose_screen(CXL_SCREEN)])
    row = screen.rows[1]
    assert (row.ctdivol_mGy, row.dlp_mGycm, row.scanning_length_mm) == (9.8, 352.6, None)
    assert row.notes == ["scan range (start/end, mm) read as -40.5/-365.75, -48.5/-365.75 by 3 of 3 OCR readings, "
                         "not two alike and none otherwise; left empty"]
    assert [r.scanning_length_mm for r in screen.rows[2:]] == [205.25, 485.5]


def test_a_reading_that_read_no_scan_range_abstains_and_one_reading_alone_is_not_enough():
    right, unread = parse_dose_screen(CXL_SCREEN), parse_dose_screen(CXL_SCREEN.replace("-40.50", "4O.50"))
    assert unread.rows[1].scanning_length_mm is None and unread.rows[1].notes
    kept = settle_readings([unread, right, right.model_copy(deep=True)])
    assert kept.rows[1].scanning_length_mm == 325.25 and kept.rows[1].notes == []
    alone = settle_readings([unread, unread.model_copy(deep=True), right])
    assert alone.rows[1].scanning_length_mm is None and "by 1 of 3" in alone.rows[1].notes[-1]
    assert [r.scanning_length_mm for r in alone.rows[2:]] == [205.25, 485.5]


def test_readings_that_disagree_on_a_dose_fail_the_summary_with_both_readings():
    other = parse_dose_screen(CXL_SCREEN.replace("352.6(Body)", "357.6(Body)").replace("1204.6", "1209.6"))
    with pytest.raises(Failed, match="OCR readings disagree"):
        settle_readings([parse_dose_screen(CXL_SCREEN), other])


def test_head_and_body_totals_combine_as_half_the_head_plus_the_body_each_checked_on_its_own_rows():
    screen = parse_dose_screen(HEAD_AND_BODY_SCREEN)
    assert (screen.dlp_head_mGycm, screen.dlp_body_mGycm) == (120.3, 229.4)
    assert screen.total_dlp_mGycm == pytest.approx(0.5 * 120.3 + 229.4)
    assert screen.total_phantom == "body32"
    with pytest.raises(Failed, match="head rows add up to DLP 120.30"):
        parse_dose_screen(HEAD_AND_BODY_SCREEN.replace("(Head): 120.3", "(Head): 130.3"))


def test_rows_whose_dlp_do_not_add_up_to_the_total_fail_naming_both_sums():
    with pytest.raises(Failed, match=r"body rows add up to DLP 1204.60 mGy.cm but the screen total is 1214.6"):
        parse_dose_screen(CXL_SCREEN.replace("(Body): 1204.6", "(Body): 1214.6"))


def test_a_misread_row_dlp_is_caught_by_the_total():
    with pytest.raises(Failed, match="add up"):
        parse_dose_screen(CXL_SCREEN.replace("268.1(Body)", "266.1(Body)"))


def test_sums_within_the_screen_rounding_pass():
    # three rows rounded to 0.1 may sit 0.15 from their rounded total
    parse_dose_screen(CXL_SCREEN.replace("(Body): 1204.6", "(Body): 1204.7"))


def test_a_screen_without_a_dlp_total_fails():
    text = CX_SCREEN.replace("DLP(mGycm)     (Head): 1102.4     (Body): -", "")
    with pytest.raises(Failed, match="no DLP total"):
        parse_dose_screen(text)


def test_a_screen_without_acquisition_rows_fails():
    text = CX_SCREEN.split("<<Detail Information>>")[0]
    with pytest.raises(Failed, match="no acquisition row"):
        parse_dose_screen(text)


def test_a_helical_row_whose_dlp_cannot_be_read_fails():
    with pytest.raises(Failed, match=r"row 2 \(Helical\): no DLP read"):
        parse_dose_screen(CX_SCREEN.replace("1102.4(Head)", "11#2.4(Head)"))


def test_a_single_readable_dose_value_is_not_guessed_to_be_ctdivol_or_dlp():
    # the CTDIvol lost its suffix: the one suffixed value left could be either column
    with pytest.raises(Failed, match="no CTDIvol and DLP read|no CTDIvol read|no DLP read"):
        parse_dose_screen(CX_SCREEN.replace("58.3(Head)", "58.3(Hcad"))


def test_scan_type_words_map_to_ct_acquisition_types_despite_ocr_slips():
    assert screen_text.scan_type_of("Scanoscope[2]") == "SCANOSCOPE"
    assert screen_text.scan_type_of("Helical_CT") == "HELICAL"
    assert screen_text.scan_type_of("HELLCAL") == "HELICAL"
    assert screen_text.scan_type_of("DYNAMLC") == "DYNAMIC"
    assert screen_text.scan_type_of("SCANOSC") == "SCANOSCOPE"
    assert screen_text.scan_type_of("Normal") == "NORMAL"
    assert SCAN_TYPES["NORMAL"] == "Sequenced Acquisition"
    assert SCAN_TYPES["VOLUME"] == "Stationary Acquisition"
    assert screen_text.scan_type_of("352.6") is None and screen_text.scan_type_of("ON") is None


def test_a_ctdivol_total_that_is_neither_sum_nor_maximum_of_the_rows_is_a_warning():
    screen = parse_dose_screen(CXL_SCREEN.replace("(Body): 33.9", "(Body): 39.9"))
    assert len(screen.warnings) == 1 and "CTDIvol 39.9" in screen.warnings[0]


def test_two_summaries_merge_with_subtotals_added_per_phantom():
    head = parse_dose_screen(CX_SCREEN)
    body = parse_dose_screen(CXL_SCREEN)
    merged = merge_screens([head, body])
    assert len(merged.rows) == 6
    assert merged.total_dlp_mGycm == pytest.approx(1102.4 * 0.5 + 1204.6)


# --- which objects are dose pages --------------------------------------------------------------------


def read_case(case: str) -> list[Dataset]:
    folder = corpus_file(f"toshiba/{case}")
    return [pydicom.dcmread(path) for path in sorted(Path(folder).glob("*.dcm"))]


@pytest.mark.parametrize("case", CASES)
def test_the_two_dose_pages_are_found_in_page_order_and_the_decoy_captures_are_not(case):
    datasets = read_case(case)
    summaries = find_dose_summaries(datasets)
    assert len(summaries) == 1
    pages = summaries[0].pages
    assert [int(p.InstanceNumber) for p in pages] == [1, 2]
    assert all(list(p.ImageType) == ["DERIVED", "SECONDARY"] for p in pages)
    decoys = [d for d in datasets if len(d.get("ImageType", [])) == 3 and d.SOPClassUID.endswith(".7")]
    assert decoys and not any(d in pages for d in decoys)


def test_a_study_without_a_dose_page_fails():
    datasets = [d for d in read_case(CASES[0]) if not is_dose_page(d)]
    with pytest.raises(Failed, match="no dose summary among 8 objects"):
        find_dose_summaries(datasets)


def test_the_same_page_twice_counts_once():
    datasets = read_case(CASES[0])
    pages = [d for d in datasets if is_dose_page(d)]
    assert len(find_dose_summaries(datasets + pages)[0].pages) == 2


# --- image headers -------------------------------------------------------------------------------------


def toshiba_image(**private) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.Manufacturer = private.pop("manufacturer", "Toshiba")
    ds.AcquisitionNumber = 2
    ds.AcquisitionTime = "101812"
    ds.ExposureTime = 500
    ds.KVP = "120"
    block = private.pop("block", 0x10)
    ds.add_new(Tag(0x7005, block), "LO", "TOSHIBA_MEC_CT3")
    for offset, (vr, value) in private.items():
        ds.add_new(Tag(0x7005, (block << 8) | int(offset[1:], 16)), vr, value)
    return ds


def test_total_collimation_is_the_count_of_active_rows_times_the_row_width():
    ds = toshiba_image(x08=("DS", "0.5"), x09=("LO", "0000111111111111111111111111111111110000"))
    sample = header_sample(ds)
    assert sample.nominal_single_collimation_mm == 0.5
    assert sample.nominal_total_collimation_mm == 16.0


def test_private_ctdivol_and_dlp_are_read_as_doubles_also_when_a_pacs_made_them_un():
    ds = toshiba_image(x63=("UN", struct.pack("<d", 9.8)), x40=("UN", struct.pack("<d", 352.6)))
    sample = header_sample(ds)
    assert (sample.ctdivol_mGy, sample.dlp_mGycm) == (9.8, 352.6)
    fd = header_sample(toshiba_image(x63=("FD", 12.4), x40=("FD", 268.1)))
    assert (fd.ctdivol_mGy, fd.dlp_mGycm) == (12.4, 268.1)


def test_a_private_dose_of_the_wrong_length_is_a_warning_not_a_number():
    sample = header_sample(toshiba_image(x40=("UN", b"\x00\x01\x02")))
    assert sample.dlp_mGycm is None
    assert sample.warnings and "DLP (7005,xx40)" in sample.warnings[0]


def test_the_private_block_is_found_wherever_the_creator_reserved_it():
    sample = header_sample(toshiba_image(block=0x11, x40=("FD", 268.1), x08=("DS", "0.5")))
    assert sample.dlp_mGycm == 268.1 and sample.nominal_single_collimation_mm == 0.5


def test_pitch_falls_back_to_the_private_pitch_factor_and_ctdivol_to_the_standard_tag():
    ds = toshiba_image(x23=("DS", "0.828"))
    ds.CTDIvol = 11.7
    sample = header_sample(ds)
    assert sample.pitch_factor == 0.828 and sample.ctdivol_mGy == 11.7
    ds.SpiralPitchFactor = 1.375
    assert header_sample(ds).pitch_factor == 1.375


def test_collimation_is_toshiba_only():
    ds = toshiba_image(manufacturer="GE MEDICAL SYSTEMS", x08=("DS", "0.5"), x09=("LO", "1111"))
    sample = header_sample(ds)
    assert sample.nominal_single_collimation_mm is None and sample.nominal_total_collimation_mm is None


def test_images_of_one_acquisition_give_one_sample_and_secondary_captures_none():
    datasets = read_case("toshiba_cxl_cap_contrast")
    samples = harvest_samples(datasets)
    # localizer, CAP Plain, Liver Arterial, Portal Venous (two series of one acquisition)
    assert [s.protocol_name for s in samples] == ["Chest/Abdomen/Pelvis", "CAP Plain", "Liver Arterial",
                                                  "Portal Venous"]
    assert samples[0].localizer and not any(s.localizer for s in samples[1:])
    assert [(s.ctdivol_mGy, s.dlp_mGycm) for s in samples[1:]] == [(9.8, 352.6), (12.4, 268.1), (11.7, 583.9)]


def test_samples_and_study_header_are_plain_json():
    datasets = read_case("toshiba_cx_head_scanogram")
    sample = harvest_samples(datasets)[1]
    assert HeaderSample.model_validate_json(sample.model_dump_json()) == sample
    header = harvest_study_header(datasets)
    assert StudyHeader.model_validate_json(header.model_dump_json()) == header
    assert header.study.requested_procedure == "CT Head"
    assert header.equipment.serial_number == "4CA0911001"


# --- build -----------------------------------------------------------------------------------------------


def row(ctdivol, dlp, **kw) -> ScreenRow:
    return ScreenRow(scan_type="HELICAL", acquisition_type="Spiral Acquisition", ctdivol_mGy=ctdivol,
                     dlp_mGycm=dlp, phantom="body32", **kw)


def sample(ctdivol, dlp, number=2, time_="101812", **kw) -> HeaderSample:
    return HeaderSample(acquisition_number=number, acquisition_time=time_, ctdivol_mGy=ctdivol,
                        dlp_mGycm=dlp, **kw)


def test_a_row_matches_header_values_that_round_to_the_printed_ones():
    assert matches(row(58.3, 1102.4), sample(58.27, 1102.43))
    assert matches(row(58.3, 1102.4), sample(58.35, 1102.35))  # the .x5 boundary rounds either way
    assert not matches(row(58.3, 1102.4), sample(58.36, 1102.4))
    assert not matches(row(58.3, 1102.4), sample(58.3, None))


def test_identical_rows_take_their_images_in_acquisition_order():
    first, second = sample(10.0, 200.0, 2, "100000", protocol_name="A"), sample(10.0, 200.0, 3, "100500",
                                                                                 protocol_name="B")
    chosen = match_rows([row(10.0, 200.0), row(10.0, 200.0)], [first, second])
    assert [c.protocol_name for c in chosen] == ["A", "B"]


def header(uid="1.2.3.4") -> StudyHeader:
    return StudyHeader(study=Study(study_instance_uid=uid))


def test_unmatched_toshiba_rows_keep_the_screen_values_and_say_why_in_a_warning():
    screen = DoseScreen(rows=[row(9.8, 352.6, protocol="Chest")], dlp_body_mGycm=352.6)
    report = build_report(screen, [sample(9.9, 352.6, protocol_name="CAP")], header())
    event = report.ct.events[0]
    assert (event.ctdivol_mGy, event.dlp_mGycm, event.acquisition_protocol) == (9.8, 352.6, None)
    assert event.comment == "dose screen protocol: Chest"
    assert len(report.warnings) == 1 and "no CT image with the same" in report.warnings[0]


GE_SCREEN = """\
Dose Report
Series Type Scan Range (mm) CTDIvol (mGy) DLP (mGy-cm) Phantom cm
1 Scout - - -
2 Helical S0.000-I200.000 2.40 63.66 Body 32
3 Axial I10.000-I30.000 55.10 110.20 Head 16
Total Exam DLP: 173.86
"""


def test_other_makes_build_from_the_screen_alone_without_warnings():
    screen = parse_dose_screen(GE_SCREEN)
    ge_image = sample(2.4, None, kvp=120.0, protocol_name="Abdomen")  # no Toshiba DLP tag
    report = build_report(screen, [ge_image], header())
    assert report.warnings == []
    assert [e.dlp_mGycm for e in report.ct.events] == [None, 63.66, 110.2]
    assert all(e.sources == [] and e.acquisition_protocol is None for e in report.ct.events)
    assert report.ct.total_dlp_mGycm == 173.86 and report.ct.total_events == 3


def test_event_uids_are_valid_and_the_same_each_time_the_study_is_built():
    uid = event_uid("2.25.115703557449965948862007635034022404664", "1.2.826.0.1.3680043.8.498.9", 1)
    assert uid == event_uid("2.25.115703557449965948862007635034022404664", "1.2.826.0.1.3680043.8.498.9", 1)
    assert uid != event_uid("2.25.115703557449965948862007635034022404664", "1.2.826.0.1.3680043.8.498.9", 2)
    assert uid.startswith("2.25.") and len(uid) <= 64 and uid[5:].isdigit()


def test_exposure_time_per_rotation_is_the_revolution_time_else_exposure_time_in_seconds():
    screen = DoseScreen(rows=[row(9.8, 352.6)], dlp_body_mGycm=352.6)
    with_revolution = build_report(screen, [sample(9.8, 352.6, revolution_time_s=0.35, exposure_time_ms=500)],
                                   header())
    assert with_revolution.ct.events[0].sources[0].exposure_time_per_rotation_s == 0.35
    without = build_report(screen, [sample(9.8, 352.6, exposure_time_ms=500)], header())
    assert without.ct.events[0].sources[0].exposure_time_per_rotation_s == 0.5


# --- end to end through the OCR -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ocr():
    if not ocr_available():
        if os.environ.get("CI"):
            pytest.fail("tesseract is not installed in CI (apt-get install tesseract-ocr tesseract-ocr-eng)")
        pytest.skip("tesseract not installed")


_REPORTS: dict[str, object] = {}


def case_report(case: str):
    if case not in _REPORTS:
        _REPORTS[case] = build_study_report(read_case(case))
    return _REPORTS[case]


@pytest.mark.parametrize("case", CASES)
def test_corpus_study_builds_the_expected_report(ocr, case):
    report = case_report(case)
    assert_matches_expected(report.model_dump(mode="json"), case)
    assert report.warnings == []
    assert [s.route for s in report.sources] == ["toshiba", "toshiba"]


def test_corpus_helical_rows_are_enriched_from_their_images_and_scan_ranges_come_from_the_screen(ocr):
    events = case_report("toshiba_cxl_cap_contrast").ct.events
    assert [e.acquisition_protocol for e in events] == ["Chest/Abdomen/Pelvis", "CAP Plain", "Liver Arterial",
                                                        "Portal Venous"]
    assert [e.scanning_length_mm for e in events] == [None, 325.25, 205.25, 485.5]
    assert [e.exposure_time_s for e in events[1:]] == [5.5, 4.0, 7.5]


def test_a_built_report_round_trips_through_an_rdsr(ocr):
    from services.extractors.routes import extract
    from services.toshiba_builder.rdsr_writer import ct_rdsr_from_report, uid_from
    from shared.codes import DERIVED_FROM_HUMAN_READABLE_REPORTS

    report = case_report("toshiba_cxl_cap_contrast")
    ds = ct_rdsr_from_report(report, sop_instance_uid=uid_from("test", "toshiba", "rdsr"),
                             dose_source=DERIVED_FROM_HUMAN_READABLE_REPORTS)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    buffer.seek(0)
    back = extract(pydicom.dcmread(buffer), "rdsr")
    for field in ("total_dlp_mGycm", "total_events"):
        assert getattr(back.ct, field) == getattr(report.ct, field)
    assert [e.model_dump(exclude={"comment"}) for e in back.ct.events] == [
        e.model_dump(exclude={"comment"}) for e in report.ct.events]
    assert_matches_expected(back.model_dump(mode="json"), "toshiba_cxl_cap_contrast")


# --- another rendering of the screen: not tuned to the corpus font ---------------------------------------


def render_page(lines: list[list[tuple[int, str]]], size: int, font_px: int) -> np.ndarray:
    """White text on black, one bitmap (no antialiasing) in Pillow's own sans font, which is
    proportional, unlike the corpus screens' monospaced one."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=font_px)
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    for index, line in enumerate(lines):
        for x, text in line:
            draw.text((20 + x, 20 + index * round(font_px * 1.5)), text, fill=255, font=font)
    return np.asarray(image)


def capture(pixels: np.ndarray, series: str, instance: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SeriesInstanceUID, ds.InstanceNumber = series, instance
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    return ds


def test_a_screen_in_another_font_and_spacing_reads_the_same(ocr):
    # Given a 768 x 768 summary in a proportional font with columns 110 px apart
    col = [0, 110, 220, 330, 440]
    page1 = [[(0, "<<Dose Information>>")], [],
             [(col[0], "CTDIvol(mGy)"), (col[1] + 40, "(Head): -"), (col[3], "(Body): 22.1")],
             [(col[0], "DLP(mGycm)"), (col[1] + 40, "(Head): -"), (col[3], "(Body): 736.2")]]
    page2 = [[(0, "<<Detail Information>>")], [],
             [(10, "1.Abdomen")],
             [(col[1], "Total mAs"), (col[2], "Exposure Time"), (col[3], "CTDIvol(mGy)"), (col[4], "DLP(mGycm)")],
             [(10, "Scanoscope"), (col[1], "35"), (col[2], "3.1")],
             [(10, "Helical"), (col[1], "2250"), (col[2], "7.5"), (col[3], "12.6(Body)"), (col[4], "430.9(Body)")],
             [(10, "2.Pelvis")],
             [(col[1], "Total mAs"), (col[2], "Exposure Time"), (col[3], "CTDIvol(mGy)"), (col[4], "DLP(mGycm)")],
             [(10, "Helical"), (col[1], "1480"), (col[2], "5.0"), (col[3], "9.5(Body)"), (col[4], "305.3(Body)")]]
    series = generate_uid()
    summary = DoseSummary(series, [capture(render_page(page1, 768, 15), series, 1),
                                   capture(render_page(page2, 768, 15), series, 2)])
    # When it is read
    screen = read_summary(summary)
    # Then every dose value comes out as printed
    assert [(r.acquisition_type, r.ctdivol_mGy, r.dlp_mGycm, r.phantom) for r in screen.rows] == [
        ("Constant Angle Acquisition", None, None, None),
        ("Spiral Acquisition", 12.6, 430.9, "body32"),
        ("Spiral Acquisition", 9.5, 305.3, "body32")]
    assert screen.total_dlp_mGycm == 736.2
    assert screen.page_sop_instance_uids == [p.SOPInstanceUID for p in summary.pages]


# --- scanning length against DLP / CTDIvol ----------------------------------------------------------------


def test_scanning_lengths_that_fit_dlp_over_ctdivol_are_kept():
    # 352.6 / 9.8 = 359.8 mm irradiated for 325.25 mm scanned; 268.1 / 12.4 = 216.2 for 205.25
    screen = parse_dose_screen(CXL_SCREEN)
    assert [r.scanning_length_mm for r in screen.rows] == [None, 325.25, 205.25, 485.5]
    assert all(r.notes == [] for r in screen.rows)


def test_a_misread_position_longer_than_the_irradiated_length_drops_the_length_and_keeps_the_doses():
    screen = parse_dose_screen(CXL_SCREEN.replace("-365.75", "-865.75"))  # 825 mm scanned, 360 irradiated
    row = screen.rows[1]
    assert (row.ctdivol_mGy, row.dlp_mGycm, row.scanning_length_mm) == (9.8, 352.6, None)
    assert len(row.notes) == 1 and "does not fit DLP / CTDIvol = 359.8 mm" in row.notes[0]
    assert [r.scanning_length_mm for r in screen.rows[2:]] == [205.25, 485.5]


def test_a_scanned_length_far_shorter_than_the_irradiated_one_is_dropped_too():
    # 583.9 / 11.7 = 499 mm irradiated; 35 mm scanned allows at most 1.5 x 35 + 60 = 112.5 mm
    screen = parse_dose_screen(CXL_SCREEN.replace("-520.50", "-70.00"))
    assert screen.rows[3].scanning_length_mm is None and screen.rows[3].dlp_mGycm == 583.9


def test_the_length_check_allows_for_the_rounding_of_the_printed_doses():
    # 5.5 mm scanned; 1.1 / 2.0 = 5.5 mm irradiated, but printed values may be 1.05 / 2.05 = 5.12 mm
    row = ScreenRow(scan_type="NORMAL", acquisition_type="Sequenced Acquisition", ctdivol_mGy=2.0, dlp_mGycm=1.1,
                    start_position_mm=0.0, end_position_mm=-5.5)
    least, greatest = irradiated_length_bounds_mm(row)
    assert least < 5.5 < greatest
    screen = DoseScreen(rows=[row], dlp_unassigned_mGycm=1.1)
    check_scanning_lengths(screen)
    assert screen.rows[0].scanning_length_mm == 5.5


def test_a_stationary_range_within_its_beam_is_kept():
    rows = [ScreenRow(scan_type="VOLUME", acquisition_type="Stationary Acquisition", ctdivol_mGy=100.0,
                      dlp_mGycm=1600.0, start_position_mm=0.0, end_position_mm=0.0)]
    screen = DoseScreen(rows=rows, dlp_unassigned_mGycm=1600.0)
    check_scanning_lengths(screen)
    assert screen.rows[0].scanning_length_mm == 0.0 and screen.rows[0].notes == []
