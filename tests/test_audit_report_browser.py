"""The audit report in a real browser: the HTML for the corpus's CT studies opened in headless
Chromium (Debian `chromium` + `chromium-driver`, through selenium), screenshotted, every chart
rendered with its DRL line, numbers shown with units, no console errors. The screenshots stay in
pytest's temporary folder (e.g. /tmp/pytest-of-$USER/pytest-current/...) as this run's artifact."""
from __future__ import annotations

import os
import shutil
from collections import defaultdict

import pydicom
import pytest

from services.audit.config import load_config
from services.audit.html_report import render
from services.audit.statistics import audit, table_rows
from services.writer.assembly import assemble
from shared.settings import Settings
from tests.conftest import CT_SR_CASES, corpus_file, report_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def corpus_studies() -> list[dict]:
    """The corpus's CT dose objects, assembled per study as the writer stores them."""
    from services.extractors.routes import extract

    reports = [report_of(case) for case in CT_SR_CASES]
    reports.append(extract(pydicom.dcmread(corpus_file("CT-SC-Philips_Brilliance16P.dcm")), "ct_philips"))
    by_study = defaultdict(list)
    for r in reports:
        by_study[r.study.study_instance_uid].append(r)
    return [assemble(objs).model_dump(mode="json") for objs in by_study.values()]


def room_of_twelve() -> list[dict]:
    """Twelve copies of the Flash TAP study with spread-out DLPs (one far out), so that a box,
    whiskers and an outlier are drawn too."""
    base = report_of("CT-RDSR-Siemens_Flash-TAP-SS").model_dump(mode="json")
    out = []
    for i, scale in enumerate([0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 2.5]):
        r = {**base, "study": {**base["study"], "study_instance_uid": f"1.2.826.0.1.3680043.99.{i}",
                               "accession_number": f"ROOM12-{i:02d}"}}
        r["ct"] = {**base["ct"], "total_dlp_mGycm": base["ct"]["total_dlp_mGycm"] * scale,
                   "events": [{**e, "dlp_mGycm": e["dlp_mGycm"] * scale} for e in base["ct"]["events"]]}
        out.append(r)
    return out


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are needed (scripts/bootstrap --services)")
        pytest.skip("chromium or chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    import tempfile

    profile = tempfile.mkdtemp(prefix="doseflow-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(browser, path, screenshot=None) -> list[dict]:
    """Load a file, screenshot the whole page, return the console messages."""
    browser.get_log("browser")  # drop what an earlier page left
    browser.get(path.as_uri())
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(max(height, 800), 16000))
    if screenshot is not None:
        assert browser.save_screenshot(str(screenshot))
    return browser.get_log("browser")


def charts(browser) -> list[dict]:
    return browser.execute_script("""
        return Array.from(document.querySelectorAll('svg.boxplot')).map(svg => {
          const r = svg.getBoundingClientRect();
          return {width: r.width, height: r.height, n: +svg.dataset.n,
                  dots: svg.querySelectorAll('circle.study').length,
                  medians: svg.querySelectorAll('line.median').length,
                  drl: svg.querySelectorAll('line.drl').length,
                  boxes: Array.from(svg.querySelectorAll('rect.box')).map(b => b.getBBox().width),
                  text: svg.textContent};
        });""")


def test_the_corpus_audit_report_renders_in_chromium(browser, tmp_path):
    cfg = load_config(Settings(_env_file=None))
    result = audit(corpus_studies() + room_of_twelve(), cfg)
    page = tmp_path / "audit.html"
    page.write_text(render(result, date_from=None, date_to=None), encoding="utf-8")
    shot = tmp_path / "audit.png"
    console = open_page(browser, page, shot)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert [m for m in console if m["level"] in ("SEVERE", "WARNING")] == []

    drawn = charts(browser)
    assert len(drawn) == 2 * len(result.groups) >= 6  # CTDIvol and DLP per device and category
    for chart in drawn:
        assert chart["width"] > 300 and chart["height"] > 50
        assert chart["dots"] == chart["n"] > 0 and chart["medians"] == 1
        assert ("mGy" in chart["text"]) and ("n = " in chart["text"])
    with_drl = [c for c in drawn if c["drl"]]
    assert with_drl and all("DRL" in c["text"] for c in with_drl)
    boxes = [c for c in drawn if c["n"] >= 4]
    assert boxes and all(len(c["boxes"]) == 1 for c in boxes)  # CTDIvol: all 9.91, a box 1 px wide
    assert any(c["boxes"][0] > 20 for c in boxes)  # DLP spread out

    text = browser.find_element("tag name", "body").text
    for header in ("Median CTDIvol (mGy)", "P75 DLP (mGy·cm)", "DRL DLP (mGy·cm)",
                   "Median effective dose estimate (mSv)"):
        assert header in text
    assert "DRL 660 mGy·cm" in text  # UK-CT-08, chest-abdomen-pelvis
    assert "UK-2024 v2024-11-20" in text and "k-factor AAPM96 (ICRP 60) v2008" in text
    rows = {(r[0], r[1]): r for r in table_rows(result)}
    flash = next(r for k, r in rows.items() if "CTAWP00001" in k[0] and k[1] == "chest_abdomen_pelvis")
    assert flash[4] == 13 and flash[5] == "median above DRL"  # the corpus study + the room of twelve
    # an outlier is linked by its accession number to its row in the study list
    link = browser.find_element("link text", "ROOM12-11")
    target = link.get_attribute("href").split("#")[1]
    assert browser.find_element("id", target).text.startswith("ROOM12-11")


def test_the_console_check_would_see_an_error(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom'); undefinedCall();</script></body></html>")
    console = open_page(browser, page)
    assert [m for m in console if m["level"] == "SEVERE"], console


def test_print_layout_keeps_the_table(browser, tmp_path):
    """Printed (A4 landscape, print CSS) the report still holds every group; Chromium prints it
    to PDF through the DevTools protocol."""
    import base64

    cfg = load_config(Settings(_env_file=None))
    result = audit(corpus_studies(), cfg)
    page = tmp_path / "audit-print.html"
    page.write_text(render(result, date_from=None, date_to=None), encoding="utf-8")
    browser.get(page.as_uri())
    pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {"landscape": True, "preferCSSPageSize": True})["data"])
    (tmp_path / "audit.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
