"""Legacy CT dose screens: how reliably and how fast they read.

    python -m benchmarks.legacy_screens [--fonts DejaVuSansMono,LiberationMono] [--threads 2]

(a) the robustness table: every rendered layout (tests/toshiba_layouts.py: the nine Toshiba
    detail-page layouts of spec §2.5 and the GE Dose Report) x fonts x sizes x grey/white text,
    each read through the real OCR and sorted into fully right / value dropped with a warning /
    failed with the reason / wrong value stored (which must be 0);
(b) OCR time per page (one tesseract run, one preparation) and per summary (all preparations
    needed until two readings agree);
(c) a whole study's build time for the corpus' legacy studies (read, OCR, parse, enrich, RDSR).
Figures are printed, never asserted: they depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pydicom

from services.toshiba_builder import ocr
from services.toshiba_builder.build import build_report
from services.toshiba_builder.headers import StudyHeader
from services.toshiba_builder.pages import find_dose_summaries
from services.toshiba_builder.reading import read_summary
from services.toshiba_builder.study import build, collect
from shared.outcome import Failed
from shared.report import Study
from tests import toshiba_layouts as fixtures
from tests.conftest import CORPUS

HEADER = StudyHeader(study=Study(study_instance_uid="1.2.3"))


def read_one(case):
    layout, font, size, ink = case
    [summary] = find_dose_summaries(fixtures.summary_pages(layout, font, size, ink))
    started = time.perf_counter()
    try:
        result = fixtures.sort_reading(layout, build_report(read_summary(summary), [], HEADER))
    except Failed as exc:
        result = ("failed", [exc.reason[:160]])
    return case, result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fonts", default=",".join(fixtures.FONT_FILES))
    parser.add_argument("--sizes", default=",".join(str(s) for s in fixtures.SIZES_PX))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    fonts = args.fonts.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = [(layout, font, size, ink) for layout in fixtures.layouts() for font in fonts
             for size in sizes for ink in (fixtures.WHITE, fixtures.GREY)]
    results = []
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for (layout, font, size, ink), (kind, detail), seconds in pool.map(read_one, cases):
            results.append(((layout, font, size, ink), (kind, detail), seconds))
            print(f"  {layout.name} {font} {size}px {'white' if ink == fixtures.WHITE else 'grey'}: {kind} "
                  f"{seconds:.1f} s", flush=True)
    print(f"(a) {len(cases)} summaries: {len(fixtures.layouts())} layouts x {len(fonts)} fonts x "
          f"{len(sizes)} sizes x grey/white")
    print(f"{'layout':32} {'right':>6} {'dropped':>8} {'failed':>7} {'wrong':>6}")
    totals: Counter = Counter()
    for layout in fixtures.layouts():
        counts = Counter(result[0] for (case, result, _) in results if case[0].name == layout.name)
        totals.update(counts)
        print(f"{layout.name:32} {counts['right']:>6} {counts['dropped']:>8} {counts['failed']:>7} {counts['wrong']:>6}")
    print(f"{'all':32} {totals['right']:>6} {totals['dropped']:>8} {totals['failed']:>7} {totals['wrong']:>6}")
    for (layout, font, size, ink), (kind, detail), _ in results:
        if kind != "right":  # what went wrong, for the closing table
            print(f"  {kind}: {layout.name} {font} {size}px {'white' if ink == fixtures.WHITE else 'grey'}: "
                  f"{'; '.join(detail)[:200]}")
    per_summary = [seconds for _, _, seconds in results]
    print(f"(b) per summary (all preparations, {args.threads} threads): median {statistics.median(per_summary):.2f} s, "
          f"max {max(per_summary):.2f} s")
    page = fixtures.summary_pages(fixtures.layouts()[0], fonts[0], fixtures.SIZES_PX[0], fixtures.WHITE)[1]
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        ocr.read_screen_text(page, ocr.PREPARATIONS[0])
        runs.append(time.perf_counter() - started)
    print(f"    one page, one tesseract run ({ocr.PREPARATIONS[0]}): median {statistics.median(runs):.2f} s")
    for case in ("toshiba_cx_head_scanogram", "toshiba_cxl_cap_contrast", "ge_lightspeed_head_chest"):
        paths = sorted((CORPUS / "toshiba" / case).glob("*.dcm"))
        objects = [collect(pydicom.dcmread(p, stop_before_pixels=True), str(p)) for p in paths]
        started = time.perf_counter()
        build(objects, pydicom.dcmread)
        print(f"(c) {case}: {len(paths)} objects built in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
