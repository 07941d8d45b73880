"""Every Toshiba detail-page layout of spec toshiba.md §2.5 and the GE Dose Report: as text (the
parsers, no OCR) and rendered in monospaced fonts, sizes and grey or white text, read through
the real OCR into a DICOM secondary capture (fixtures made at test time: tests/toshiba_layouts.py).

A reading is sorted into fully right / value dropped with a warning / failed with the reason /
wrong. Wrong must never happen: a misread that no cross-check catches would be stored as a
patient's dose."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.toshiba_builder.build import build_report
from services.toshiba_builder.headers import StudyHeader
from services.toshiba_builder.ocr import ocr_available
from services.toshiba_builder.pages import find_dose_summaries
from services.toshiba_builder.reading import parse_dose_screen, read_summary
from shared.outcome import Failed
from shared.report import Study
from tests import toshiba_layouts as fixtures

LAYOUTS = {layout.name: layout for layout in fixtures.layouts()}
HEADER = StudyHeader(study=Study(study_instance_uid="1.2.3"))


def sort(layout, screen) -> tuple[str, list[str]]:
    return fixtures.sort_reading(layout, build_report(screen, [], HEADER))


def test_there_are_nine_toshiba_layouts_and_the_ge_report():
    assert sum(1 for layout in LAYOUTS.values() if layout.family == "toshiba") == 9
    assert [layout.family for layout in LAYOUTS.values()].count("ge") == 1


@pytest.mark.parametrize("name", LAYOUTS)
def test_each_layout_as_text_reads_fully_right(name):
    layout = LAYOUTS[name]
    screen = parse_dose_screen("\n".join(layout.page1 + layout.page2))
    assert sort(layout, screen) == ("right", [])
    assert screen.warnings == []


# --- through the OCR ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ocr():
    if not ocr_available():
        if os.environ.get("CI"):
            pytest.fail("tesseract is not installed in CI (apt-get install tesseract-ocr tesseract-ocr-eng)")
        pytest.skip("tesseract not installed")


def read_rendered(case: tuple[str, str, int, int]) -> tuple[str, list[str]]:
    name, font, size, ink = case
    layout = LAYOUTS[name]
    [summary] = find_dose_summaries(fixtures.summary_pages(layout, font, size, ink))
    try:
        return sort(layout, read_summary(summary))
    except Failed as exc:
        return "failed", [exc.reason]


def read_all(cases: list[tuple]) -> dict[tuple, tuple[str, list[str]]]:
    # Two at a time: the OCR runs as a subprocess per page, so two threads use two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(cases, pool.map(read_rendered, cases)))


# One rendering of each layout in the fast tier: font, size and ink taken in turn.
FONTS = fixtures.TEST_FONTS
FAST = [(name, FONTS[i % 2], fixtures.SIZES_PX[i // 2 % 2], (fixtures.WHITE, fixtures.GREY)[i // 4 % 2])
        for i, name in enumerate(LAYOUTS)]


def test_one_rendering_of_every_layout_reads_through_the_ocr_never_wrong(ocr):
    results = read_all(FAST)
    # A scan range or time no two readings read alike, with none reading it otherwise, is left empty
    # with a warning (GE in Liberation Mono 14 px: one preparation reads I110.000 as I110.900).
    assert {case: result for case, result in results.items() if result[0] not in ("right", "dropped")} == {}
    assert sum(1 for result, _ in results.values() if result == "right") >= len(FAST) - 2, results


@pytest.mark.slow
def test_every_layout_in_two_fonts_two_sizes_grey_and_white_never_stores_a_wrong_value(ocr):
    # white text in the small size, grey in the large one
    cases = [(name, font, size, fixtures.WHITE if size == fixtures.SIZES_PX[0] else fixtures.GREY)
             for name in LAYOUTS for font in FONTS for size in fixtures.SIZES_PX]
    results = read_all(cases)
    wrong = {case: result for case, result in results.items() if result[0] == "wrong"}
    # The GE screen in Liberation Mono 18 px grey once stored 285.5 mm for a printed 300.0 (an S lost
    # before a 1): a digit in a position's letter place is now ambiguous unless DLP / CTDIvol settles it.
    assert wrong == {}
    right = sum(1 for result, _ in results.values() if result == "right")
    # Measured with every preparation read and scan ranges/times kept only where no reading dissents:
    # 35 of these 40 fully right, the others a value dropped with a warning or failed with the reason.
    assert right >= 0.85 * len(cases), {case: result for case, result in results.items() if result[0] != "right"}
