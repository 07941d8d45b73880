"""The Dw stage (services/ct_dw, services/audit/water_equivalent.py) and how a study's events
take their Dw and SSDE from its images (services/audit/indices.py `enrich`): routing, sampling
on real corpus headers, measurement of images with known Dw, the choice of one Dw per event,
and the spec's SSDE vectors (dose-references §5) reached through image measurements."""
from __future__ import annotations

import time

import pydicom
import pytest

from services.audit.config import load_config
from services.audit.indices import enrich, ssde_factor
from services.audit.water_equivalent import (IMAGE_METHOD_PREFIX, Measurement, dw_from_dataset, event_dw,
                                             measure_hu, not_sampled)
from services.classifier.rules import RoutingRules, classify
from services.ct_dw.stage import measure_file
from services.extractors.routes import extract
from shared import routes
from shared.outcome import Ignored
from shared.report import REPORTED_DW, REPORTED_SSDE, Ct, CtEvent, DoseReport, Patient, Study
from shared.settings import Settings
from tests.conftest import corpus_file
from tests.ct_images import CORPUS_CT_IMAGE, phantom_image, phantom_pixels

REL = 1e-4
FLASH = "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
FLASH_STUDY = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.3.0"
FLASH_SPIRAL = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.7.0"  # event 4: Abdomen, body32, 9.91 mGy


@pytest.fixture(scope="module")
def cfg():
    return load_config(Settings(_env_file=None))


def header(name: str):
    return pydicom.dcmread(corpus_file(name), stop_before_pixels=True)


# --- routing (header only) -----------------------------------------------------------------------


def test_a_ct_axial_image_goes_to_the_dw_stage_and_a_localizer_does_not():
    ds = header(CORPUS_CT_IMAGE)
    ds.Manufacturer, ds.ManufacturerModelName = "SIEMENS", "SOMATOM Definition Flash"
    assert classify(ds) == routes.CT_DW.name
    with pytest.raises(Ignored, match="no dose route takes CT Image Storage"):  # DOSEFLOW_DW_FROM_IMAGES=false
        classify(ds, RoutingRules(measure_ct_images=False))
    localizer = header("toshiba/toshiba_cxl_cap_contrast/IM00005.dcm")
    localizer.Manufacturer = "SIEMENS"
    with pytest.raises(Ignored, match="no dose route"):
        classify(localizer)


def test_a_legacy_toshiba_studys_images_stay_with_the_toshiba_builder():
    assert classify(header(CORPUS_CT_IMAGE)) == routes.TOSHIBA.name


# --- sampling on the corpus's real headers ------------------------------------------------------------


@pytest.mark.parametrize("name, sampled", [
    ("toshiba/toshiba_cxl_cap_contrast/IM00001.dcm", True),   # z -20 mm, 5 mm slices: on the 20 mm grid
    ("toshiba/toshiba_cxl_cap_contrast/IM00003.dcm", False),  # z -10 mm
    ("toshiba/toshiba_cxl_cap_contrast/IM00004.dcm", True),   # z -20 mm, 1 mm slices
    ("toshiba/toshiba_cx_head_scanogram/IM00010.dcm", False),  # z -30 mm
])
def test_one_image_per_20_mm_of_table_travel_is_sampled(name, sampled):
    why = not_sampled(header(name))
    assert (why is None) == sampled
    if not sampled:
        assert why.startswith("not sampled: Dw is measured on one image per 20 mm")


def test_a_contiguous_series_gives_one_sample_per_grid_line_in_any_order():
    ds = header(CORPUS_CT_IMAGE)
    for spacing in (0.625, 1.0, 2.5, 5.0):
        ds.SliceThickness = spacing
        hits = []
        for k in reversed(range(int(400 / spacing))):  # 400 mm, last image first
            ds.ImagePositionPatient = [-250, -250, -100.3 + k * spacing]
            if not_sampled(ds) is None:
                hits.append(k)
        assert len(hits) == 20, spacing


# --- measuring ----------------------------------------------------------------------------------------


def test_a_corpus_ct_image_is_ignored_with_its_numbers(tmp_path):
    # The corpus image is sampled (z -20 mm) and read, but it holds no patient inside a field
    # of view: 16 x 16 pixels of water, every edge pixel inside.
    path = str(corpus_file(CORPUS_CT_IMAGE))
    with pytest.raises(Ignored) as exc:
        measure_file(path, path)
    assert exc.value.reason == ("patient cut by the field of view (100% of the image edge is inside the patient): "
                                "its Dw (17.7 mm) would be too small")
    localizer = str(corpus_file("toshiba/toshiba_cxl_cap_contrast/IM00005.dcm"))
    with pytest.raises(Ignored, match="^localizer"):
        measure_file(localizer, localizer)


def test_the_phantom_slice_measures_its_own_dw(tmp_path):
    path = tmp_path / "slice.dcm"
    expected = phantom_image(path, study_uid=FLASH_STUDY, event_uid=FLASH_SPIRAL, z_mm=40.0, series_uid="1.2.3.1")
    assert expected == pytest.approx(240.0, rel=2e-3)
    measured = measure_file(str(path), str(path))
    # lungs filled in as holes, the table and the -3024 padding left out
    assert measured.dw_mm == pytest.approx(expected, rel=1e-9)
    assert measured.edge_share == 0.0 and measured.mean_hu < 0
    assert (measured.irradiation_event_uid, measured.study_instance_uid, measured.z_mm) == (
        FLASH_SPIRAL, FLASH_STUDY, 40.0)


def test_measuring_one_512_slice_is_bounded(tmp_path):
    hu, _ = phantom_pixels()
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        measure_hu(hu, 0.78125 ** 2)
        timings.append((time.perf_counter() - started) * 1000)
    print(f"Dw of a 512 x 512 slice: median {sorted(timings)[2]:.1f} ms")
    assert sorted(timings)[2] < 500  # a few tens of ms on a shared machine; seconds would mean Python loops


def test_an_image_without_pixel_data_is_ignored(tmp_path):
    ds = pydicom.dcmread(corpus_file(CORPUS_CT_IMAGE))
    del ds.PixelData
    assert dw_from_dataset(ds) == (None, "no pixel data")


@pytest.mark.parametrize("attrs, reason", [
    (dict(Rows=4096, Columns=4096), "image of 4096 x 4096 pixels is larger than measured"),
    (dict(NumberOfFrames=400), "400 frames: Dw is measured on single axial slices"),
    (dict(BitsAllocated=64), "64 bits allocated per pixel"),
    (dict(PixelSpacing=None), "no pixel spacing"),
])
def test_the_header_bounds_the_work_before_any_pixel_is_read(tmp_path, attrs, reason):
    path = tmp_path / "big.dcm"
    phantom_image(path, study_uid="1.2.3", event_uid=None, z_mm=0.0, series_uid="1.2.3.1")
    ds = pydicom.dcmread(path)
    for name, value in attrs.items():
        if value is None:
            delattr(ds, name)
        else:
            setattr(ds, name, value)
    ds.save_as(path)
    with pytest.raises(Ignored) as exc:
        measure_file(str(path), str(path))
    assert exc.value.reason.startswith(reason)


def test_a_file_too_large_for_a_slice_is_not_read(tmp_path):
    path = tmp_path / "huge.dcm"
    phantom_image(path, study_uid="1.2.3", event_uid=None, z_mm=0.0, series_uid="1.2.3.1")
    with open(path, "ab") as f:
        f.truncate(path.stat().st_size + (65 << 20))  # sparse: 65 MB of nothing after the 0.5 MB slice
    with pytest.raises(Ignored, match=r"^file of 66 MB is larger than one CT slice \(64 MB at most\)"):
        measure_file(str(path), str(path))


# --- one Dw per event ---------------------------------------------------------------------------------


def m(dw, series="1.2.2", event=FLASH_SPIRAL, z=0.0, sop=None):
    return Measurement(sop or f"sop{dw}{series}{z}", series, event, z, dw)


def test_the_event_dw_is_the_mean_of_the_series_with_most_samples():
    thick = [m(220, "1.5", z=0), m(240, "1.5", z=20), m(260, "1.5", z=40)]
    thin = [m(300, "1.1", z=0), m(310, "1.1", z=20)]
    dw, method = event_dw(thin + thick)
    assert dw == pytest.approx(240.0)
    assert method.startswith(IMAGE_METHOD_PREFIX) and "mean Dw of 3 images" in method and "series 1.5" in method
    # arrival order does not matter; a tie goes to the smaller series UID
    assert event_dw(list(reversed(thick + thin)))[0] == pytest.approx(240.0)
    assert event_dw([m(200, "1.9"), m(300, "1.10")])[0] == 300.0
    assert event_dw([]) == (None, None)


def flash_report():
    return extract(pydicom.dcmread(corpus_file(FLASH)), "rdsr")


def test_tv_ssde_1_through_images_the_flash_spiral_gets_its_ssde(cfg):
    # Images of the spiral event with Dw 230, 240, 250 mm: Dw 240 mm, f(24 cm) 1.5346 (TV-SSDE-1)
    report = enrich(flash_report(), cfg, [m(230, z=0), m(240, z=20), m(250, z=40)])
    event = report.ct.events[3]
    assert event.water_equivalent_diameter_mm == pytest.approx(240.0)
    assert event.water_equivalent_diameter_method.startswith(IMAGE_METHOD_PREFIX)
    assert event.ssde_mGy == pytest.approx(1.5346 * 9.91, rel=REL)  # 15.208 mGy
    assert event.ssde_method.startswith("DCM 113988 Estimated from Water Equivalent Diameter: AAPM 204 32 cm fit")
    assert IMAGE_METHOD_PREFIX in event.ssde_method and event.ssde_reason is None
    # the other events have no images: null, with the reason
    assert [e.ssde_mGy for e in report.ct.events[:3]] == [None] * 3
    assert report.ct.events[0].ssde_reason.startswith("no water-equivalent diameter")


def test_tv_ssde_2_3_4_through_images(cfg):
    def one_event(dw_mm, phantom="body32", region="Abdomen"):
        r = DoseReport(study=Study(study_instance_uid="1.2"), patient=Patient(age_years=40), ct=Ct(events=[
            CtEvent(irradiation_event_uid="9.9", target_region=region, ctdiw_phantom=phantom, ctdivol_mGy=10,
                    dlp_mGycm=100)]))
        return enrich(r, cfg, [m(dw_mm, event="9.9")]).ct.events[0]

    assert one_event(160, "head16").ssde_mGy == pytest.approx(10.091, rel=REL)  # TV-SSDE-2
    big = one_event(500)  # TV-SSDE-3: Dw 50 cm
    assert big.ssde_mGy is None and "outside the AAPM 204 range 8-45 cm" in big.ssde_reason
    assert big.water_equivalent_diameter_mm == 500
    assert one_event(177.48307205659782).ssde_mGy == pytest.approx(19.3055, rel=REL)  # TV-SSDE-4
    head = one_event(160, "head16", "Head")  # TV-SSDE-6: the Dw is kept, the SSDE is not for heads
    assert head.ssde_mGy is None and head.water_equivalent_diameter_mm == 160
    assert head.ssde_reason == "head CT is outside AAPM Report 204 (body CT only)"


def test_tv_ssde_5_images_never_replace_what_the_scanner_reported(cfg):
    report = flash_report()
    event = report.ct.events[3]
    for name, value in dict(ssde_mGy=12.0, water_equivalent_diameter_mm=300.0, ssde_method=REPORTED_SSDE,
                            water_equivalent_diameter_method=REPORTED_DW).items():
        setattr(event, name, value)
    out = enrich(report, cfg, [m(240)]).ct.events[3]
    assert (out.ssde_mGy, out.ssde_method, out.water_equivalent_diameter_mm) == (12.0, REPORTED_SSDE, 300.0)
    # a reported Dw without an SSDE: the SSDE is computed from the scanner's Dw, not the images'
    event.ssde_mGy = event.ssde_method = None
    out = enrich(report, cfg, [m(240)]).ct.events[3]
    assert out.water_equivalent_diameter_mm == 300.0 and out.water_equivalent_diameter_method == REPORTED_DW
    assert out.ssde_mGy == pytest.approx(ssde_factor(30, "body32") * 9.91, rel=REL)
    assert out.ssde_method.endswith(f"({REPORTED_DW})")


def test_images_without_an_event_uid_go_to_the_studys_only_scan_event(cfg):
    out = enrich(flash_report(), cfg, [m(240, event=None)]).ct.events
    # events 2 and 3 are stationary (bolus tracking) scans too: three scan events, so no guess
    assert [e.water_equivalent_diameter_mm for e in out] == [None] * 4
    report = flash_report()
    report.ct.events = [report.ct.events[0], report.ct.events[3]]  # a localizer and one spiral
    out = enrich(report, cfg, [m(240, event=None)]).ct.events
    assert out[1].water_equivalent_diameter_mm == pytest.approx(240)
    assert "images without an irradiation event UID" in out[1].water_equivalent_diameter_method
    assert out[0].water_equivalent_diameter_mm is None


def test_enriching_a_stored_report_again_keeps_its_image_dw(cfg):
    stored = enrich(flash_report(), cfg, [m(240)])
    again = enrich(DoseReport.model_validate(stored.model_dump(mode="json")), cfg)
    assert again.ct.events[3].water_equivalent_diameter_mm == pytest.approx(240)
    assert again.ct.events[3].ssde_mGy == pytest.approx(stored.ct.events[3].ssde_mGy)
    # but a rebuild with the (now empty) measurements drops it
    assert enrich(stored, cfg, []).ct.events[3].water_equivalent_diameter_mm is None


def test_doseflow_extract_on_a_ct_image_says_its_dw(tmp_path):
    import json
    import subprocess
    import sys

    path = tmp_path / "slice.dcm"
    expected = phantom_image(path, study_uid="1.2.3", event_uid=None, z_mm=7.0, series_uid="1.2.3.1")
    out = subprocess.run([sys.executable, "-m", "doseflow", "extract", str(path), "--json"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    # not on the sampling grid, but `extract` measures any image it is given
    assert answer["outcome"] == "ignored"
    assert answer["reason"].startswith(f"CT image without dose data: water-equivalent diameter {expected:.1f} mm")
