"""Routing rules (services/classifier/rules.py): every corpus object, read as the classifier
reads it (header only), goes to the route its expected file names; the legacy Toshiba folders go
to the Toshiba builder; make/model pairs are configurable; objects no route takes are ignored
with a reason that says what they are."""
from __future__ import annotations

import json

import pydicom
import pytest
from pydicom.dataset import Dataset

from services.classifier.rules import RoutingRules, classify
from shared import dicom
from shared.outcome import Ignored
from tests.conftest import CORPUS, corpus_file

# expected/<case>.json "route" -> classifier route ("ignore": the classifier raises Ignored)
ROUTES = {"rdsr": "rdsr", "mg": "mg_image", "dx": "dx_image", "ctphilips": "ct_philips", "toshiba": "toshiba",
          "ignore": None}


def corpus_objects() -> list[tuple[str, str]]:
    """(file, expected route) for every .dcm of the single-object and multi-object cases."""
    routes: dict[str, str] = {}
    for path in sorted((CORPUS / "expected").glob("*.json")):
        case = json.loads(path.read_text())
        if case["route"] == "toshiba":
            continue  # the folders are checked file by file below
        for name in case["files"]:
            routes[name] = case["route"]
    return sorted(routes.items()) or [("corpus-missing", "ignore")]


def toshiba_objects() -> list[str]:
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.glob("toshiba/*/*.dcm")) or ["corpus-missing"]


def header(name: str) -> Dataset:
    return pydicom.dcmread(corpus_file(name), stop_before_pixels=True)


def test_every_corpus_dcm_has_an_expected_route():
    listed = {name for name, _ in corpus_objects()}
    on_disk = {p.name for p in CORPUS.glob("*.dcm")}
    if not on_disk:
        corpus_file("CT-RDSR-Siemens-Multi-1.dcm")  # skips (or fails in CI) without a corpus
    assert on_disk <= listed, f"corpus objects without an expected route: {sorted(on_disk - listed)}"


@pytest.mark.parametrize("name,route", corpus_objects())
def test_corpus_object_goes_to_its_expected_route(name, route):
    # Given a corpus object's header (never its pixel data)
    ds = header(name)
    assert "PixelData" not in ds
    # When it is classified with the default rules
    want = ROUTES[route]
    if want is None:
        # Then an object no route takes is ignored, saying why
        with pytest.raises(Ignored) as caught:
            classify(ds, RoutingRules())
        assert caught.value.reason
    else:
        # Then it goes to the route its expected file names
        assert classify(ds, RoutingRules()) == want


def test_non_dose_enhanced_sr_is_ignored_naming_its_class_and_root_concept():
    with pytest.raises(Ignored) as caught:
        classify(header("ESR_non-dose.dcm"), RoutingRules())
    reason = caught.value.reason
    assert "Enhanced SR" in reason and dicom.ENHANCED_SR in reason
    assert "18748-4" in reason  # the root concept it does have
    assert "not an X-Ray Radiation Dose Report" in reason


@pytest.mark.parametrize("name", toshiba_objects())
def test_legacy_toshiba_ct_objects_go_to_the_toshiba_builder(name):
    assert classify(header(name), RoutingRules()) == "toshiba"


def test_a_toshiba_rdsr_goes_to_the_rdsr_route_not_the_builder():
    # The RDSR test comes first: a Toshiba scanner that writes RDSRs needs no builder.
    ds = header("CT-RDSR-ToshibaPixelMed.dcm")
    assert ds.Manufacturer.upper().startswith("TOSHIBA")
    assert classify(ds, RoutingRules()) == "rdsr"


# --- configurable make/model pairs -------------------------------------------------------------


def toshiba_ct_image() -> Dataset:
    return header("toshiba/toshiba_cx_head_scanogram/IM00002.dcm")  # a CT Image Storage object


def test_make_and_model_pairs_match_case_insensitively():
    ds = toshiba_ct_image()
    assert ds.Manufacturer == "TOSHIBA" and ds.ManufacturerModelName == "Aquilion"
    assert classify(ds, RoutingRules(toshiba_models=("toshiba/AQUILION",))) == "toshiba"
    assert classify(ds, RoutingRules(toshiba_models=(" Toshiba / aquilion ",))) == "toshiba"


def test_a_configured_model_is_a_prefix_of_the_device_model():
    ds = toshiba_ct_image()
    ds.ManufacturerModelName = "Aquilion ONE"
    assert classify(ds, RoutingRules(toshiba_models=("Toshiba/Aquilion",))) == "toshiba"


def test_a_model_not_configured_is_ignored():
    ds = toshiba_ct_image()
    with pytest.raises(Ignored) as caught:
        classify(ds, RoutingRules(toshiba_models=("Toshiba/Asteion", "GE Medical Systems/LightSpeed Plus"),
                                  measure_ct_images=False))
    assert "CT Image Storage" in caught.value.reason or "Secondary Capture" in caught.value.reason
    assert "TOSHIBA Aquilion" in caught.value.reason


def test_no_configured_models_sends_nothing_to_the_toshiba_builder():
    with pytest.raises(Ignored):
        classify(toshiba_ct_image(), RoutingRules(toshiba_models=(), measure_ct_images=False))
    # with the Dw stage on (the default) the axial image is measured for its SSDE instead
    assert classify(toshiba_ct_image(), RoutingRules(toshiba_models=())) == "ct_dw"


def test_another_configured_make_goes_to_the_toshiba_builder():
    ds = toshiba_ct_image()
    ds.Manufacturer, ds.ManufacturerModelName = "GE MEDICAL SYSTEMS", "LightSpeed Plus"
    assert classify(ds, RoutingRules()) == "toshiba"


def test_a_ct_image_without_manufacturer_or_model_is_ignored():
    ds = toshiba_ct_image()
    del ds.ManufacturerModelName
    with pytest.raises(Ignored) as caught:
        classify(ds, RoutingRules(measure_ct_images=False))
    assert "TOSHIBA" in caught.value.reason


# --- synthetic objects no route takes ----------------------------------------------------------


def minimal(sop_class: str, modality: str, **attrs) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.543.10"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.543.11"
    ds.Modality = modality
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def with_root_concept(ds: Dataset, scheme: str, value: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodingSchemeDesignator, code.CodeValue, code.CodeMeaning = scheme, value, meaning
    ds.ConceptNameCodeSequence = [code]
    ds.ValueType = "CONTAINER"
    return ds


def reason_for(ds: Dataset, rules: RoutingRules = RoutingRules()) -> str:
    with pytest.raises(Ignored) as caught:
        classify(ds, rules)
    return caught.value.reason


def test_radiopharmaceutical_dose_sr_is_ignored_as_nuclear_medicine():
    ds = with_root_concept(minimal(dicom.RADIOPHARMACEUTICAL_RADIATION_DOSE_SR, "NM"),
                           "DCM", "113500", "Radiopharmaceutical Radiation Dose Report")
    assert "Radiopharmaceutical Radiation Dose SR" in reason_for(ds)


def test_comprehensive_sr_is_ignored_even_with_a_dose_report_root():
    # The reference importer does not take Comprehensive SR, whatever template it carries.
    ds = with_root_concept(minimal(dicom.COMPREHENSIVE_SR, "SR"), "DCM", "113701", "X-Ray Radiation Dose Report")
    reason = reason_for(ds)
    assert "Comprehensive SR" in reason and dicom.COMPREHENSIVE_SR in reason


def test_dose_sr_class_whose_root_is_not_a_dose_report_is_ignored():
    ds = with_root_concept(minimal(dicom.XRAY_RADIATION_DOSE_SR, "SR"), "DCM", "126000", "Imaging Measurement Report")
    reason = reason_for(ds)
    assert "DCM/126000" in reason and "not an X-Ray Radiation Dose Report" in reason


def test_dose_root_concept_is_matched_by_code_not_by_meaning():
    ds = with_root_concept(minimal(dicom.XRAY_RADIATION_DOSE_SR, "SR"), "DCM", "113701", "x-ray dose rpt")
    assert classify(ds, RoutingRules()) == "rdsr"
    ds = with_root_concept(minimal(dicom.ENHANCED_SR, "SR"), "99SMS_RADSUM", "C-10", "anything")
    assert classify(ds, RoutingRules()) == "rdsr"
    ds = with_root_concept(minimal(dicom.ENHANCED_SR, "SR"), "LN", "113701", "X-Ray Radiation Dose Report")
    assert "LN/113701" in reason_for(ds)


def test_sr_without_a_root_concept_is_ignored_saying_so():
    assert "missing" in reason_for(minimal(dicom.ENHANCED_SR, "SR"))


def test_ct_image_of_another_make_is_ignored_naming_class_and_device():
    ds = minimal(dicom.CT_IMAGE, "CT", Manufacturer="SIEMENS", ManufacturerModelName="SOMATOM Force")
    reason = reason_for(ds)
    assert "CT Image Storage" in reason and "modality CT" in reason and "SIEMENS SOMATOM Force" in reason


def test_philips_secondary_capture_that_is_not_dose_info_is_ignored():
    ds = minimal(dicom.SECONDARY_CAPTURE, "CT", Manufacturer="Philips", SeriesDescription="Scout")
    assert "Secondary Capture" in reason_for(ds)
    ds.SeriesDescription = "Dose Info"
    assert classify(ds, RoutingRules()) == "ct_philips"


def test_mg_secondary_capture_needs_original_in_image_type():
    ds = minimal(dicom.SECONDARY_CAPTURE, "MG", Manufacturer="HOLOGIC, Inc.", ImageType=["DERIVED", "SECONDARY"])
    assert "Secondary Capture" in reason_for(ds)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    assert classify(ds, RoutingRules()) == "mg_image"


def test_mg_secondary_capture_with_a_single_valued_image_type_is_still_read_as_a_list():
    # ImageType has VM 2-n, but a single value reaches pydicom as a plain string, not a list.
    ds = minimal(dicom.SECONDARY_CAPTURE, "MG", Manufacturer="HOLOGIC, Inc.", ImageType="ORIGINAL")
    assert classify(ds, RoutingRules()) == "mg_image"


def test_object_without_sop_class_is_ignored_saying_so():
    ds = Dataset()
    ds.Modality = "OT"
    assert "no SOP Class UID" in reason_for(ds)


@pytest.mark.parametrize("sop_class,modality,route", [
    (dicom.MG_FOR_PRESENTATION, "MG", "mg_image"),
    (dicom.MG_FOR_PROCESSING, "MG", "mg_image"),
    (dicom.CR_IMAGE, "CR", "dx_image"),
    (dicom.DX_FOR_PRESENTATION, "DX", "dx_image"),
    (dicom.DX_FOR_PROCESSING, "PX", "dx_image"),
])
def test_image_classes_go_to_their_image_route(sop_class, modality, route):
    assert classify(minimal(sop_class, modality), RoutingRules()) == route
