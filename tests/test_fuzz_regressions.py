"""Inputs the fuzz test (tests/test_fuzz_extract.py) found crashing a route, each pinned down:
it must now end as a report (the unreadable value None, with a warning where the reader names
the concept) or as `Failed` with a reason — never as another exception."""
from __future__ import annotations

import io
import struct
import warnings

import pydicom
import pytest
from pydicom.tag import Tag

from services.classifier.rules import RoutingRules
from services.classifier.worker import classify_file
from services.extractors.routes import extract
from services.extractors.worker import extract_file
from shared import sr
from shared.outcome import Failed
from tests import fuzz
from tests.conftest import corpus_file

CT_RDSR = "CT-RDSR-Siemens-Continued-1.dcm"
DEVICE_OBSERVER_UID_ITEM = 2  # root ContentSequence item DCM 121012 of CT_RDSR
FIRST_ACQUISITION_ITEM = 12  # root ContentSequence item DCM 113819 of CT_RDSR


@pytest.fixture(autouse=True)
def _quiet_pydicom():
    # pydicom warns about every malformed value these objects are made of.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _reread(ds) -> pydicom.Dataset:
    """Through bytes, as a worker would read the file."""
    return pydicom.dcmread(io.BytesIO(fuzz.encode(ds)))


def _ct_rdsr():
    return pydicom.dcmread(corpus_file(CT_RDSR))


def _written(tmp_path, data: bytes):
    path = tmp_path / "mutant.dcm"
    path.write_bytes(data)
    return str(path)


# --- reading the file -------------------------------------------------------------------------


def test_a_file_cut_short_inside_a_sequence_fails_as_unreadable(tmp_path):
    # An undefined-length sequence cut off mid-item: pydicom raised OSError "No tag to read",
    # which escaped the reader.
    data = corpus_file("RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP.dcm").read_bytes()[:26605]
    with pytest.raises(Failed, match="not a readable DICOM object: OSError"):
        classify_file(_written(tmp_path, data), RoutingRules(), roots=[])


def test_a_deflated_transfer_syntax_over_bytes_that_are_not_deflated_fails_as_unreadable(tmp_path):
    # pydicom raised zlib.error, which escaped the reader.
    data = fuzz.declare_transfer_syntax(pydicom.dcmread(corpus_file("DX-Im-GE_XR220-1.dcm")),
                                        "1.2.840.10008.1.2.1.99")
    with pytest.raises(Failed, match="not a readable DICOM object: error"):
        classify_file(_written(tmp_path, data), RoutingRules(), roots=[])


def test_a_dose_report_cut_short_inside_its_content_tree_fails_instead_of_losing_events(tmp_path):
    # Cut inside the (defined-length) root ContentSequence: pydicom kept the bytes that were
    # left without a word, and the report came out with events missing and no warning.
    data = corpus_file("CT-RDSR-GEPixelMed.dcm").read_bytes()
    path = _written(tmp_path, data[:9813])
    with pytest.raises(Failed, match=r"cut short inside \(0040,A730\), which declares 13956 bytes and holds 8181"):
        route, header = classify_file(path, RoutingRules(), roots=[])
        extract_file(path, route, fuzz_options(), header)


def test_an_image_cut_inside_its_pixel_data_still_gives_its_dose_from_the_header(tmp_path):
    # The header is whole and the header is all a dose route reads (never pixel data).
    data = corpus_file("DX-Im-Carestream_DR7500-1.dcm").read_bytes()
    path = _written(tmp_path, data[:-4])
    route, header = classify_file(path, RoutingRules(), roots=[])
    assert extract_file(path, route, fuzz_options(), header).projection.events[0].dap_Gym2 is not None


# --- reading the SR content tree ---------------------------------------------------------------


def test_a_uid_written_as_vr_ul_leaves_the_device_observer_uid_empty_and_the_report_intact():
    # 58 bytes of UID text under VR UL: pydicom's BytesLengthException escaped sr.uid().
    original = extract(_ct_rdsr(), "rdsr")
    ds = _ct_rdsr()
    item = ds.ContentSequence[DEVICE_OBSERVER_UID_ITEM]
    fuzz.put_raw(item, Tag("UID"), "UL", item.UID.encode())
    report = extract(_reread(ds), "rdsr")
    assert original.equipment.device_observer_uid is not None
    assert report.equipment.device_observer_uid is None
    assert report.ct == original.ct


@pytest.mark.parametrize("vr", ["CS", "DS", "AT", "UL"])
def test_a_concept_name_sequence_written_as_another_vr_counts_as_no_concept_name(vr):
    # The sequence's bytes read as text, numbers or tags: sr.code_of() called .get() on a str
    # or a BaseTag (AttributeError), or pydicom raised BytesLengthException.
    ds = _ct_rdsr()
    item = ds.ContentSequence[DEVICE_OBSERVER_UID_ITEM]
    fuzz.put_raw(item, Tag("ConceptNameCodeSequence"), vr, fuzz.value_bytes(item["ConceptNameCodeSequence"]))
    reread = _reread(ds)
    assert sr.concept_name(reread.ContentSequence[DEVICE_OBSERVER_UID_ITEM]) is None
    report = extract(reread, "rdsr")
    assert report.equipment.device_observer_uid is None
    assert report.ct.total_dlp_mGycm == extract(_ct_rdsr(), "rdsr").ct.total_dlp_mGycm


def test_a_code_value_written_as_vr_fd_loses_only_that_concept():
    # "125203" (6 bytes) under VR FD: BytesLengthException escaped sr.code_of().
    original = extract(_ct_rdsr(), "rdsr")
    ds = _ct_rdsr()
    protocol = ds.ContentSequence[FIRST_ACQUISITION_ITEM].ContentSequence[0]
    assert protocol.ConceptNameCodeSequence[0].CodeValue == "125203"
    fuzz.put_raw(protocol.ConceptNameCodeSequence[0], Tag("CodeValue"), "FD", b"125203")
    report = extract(_reread(ds), "rdsr")
    assert original.ct.events[0].acquisition_protocol is not None
    assert report.ct.events[0].acquisition_protocol is None
    assert report.ct.events[1] == original.ct.events[1]
    assert report.ct.total_dlp_mGycm == original.ct.total_dlp_mGycm


def test_a_numeric_value_whose_bytes_do_not_fit_its_vr_is_no_number_with_a_warning():
    # "12.5" (4 bytes) under VR FD (8 bytes a value): BytesLengthException is not a ValueError,
    # and escaped sr.measured().
    ds = _ct_rdsr()
    acquisition = ds.ContentSequence[FIRST_ACQUISITION_ITEM]
    ct_dose = next(c for c in acquisition.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "113829")
    ctdivol = next(c for c in ct_dose.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == "113830")
    fuzz.put_raw(ctdivol.MeasuredValueSequence[0], Tag("NumericValue"), "FD", b"12.5")
    report = extract(_reread(ds), "rdsr")
    assert report.ct.events[0].ctdivol_mGy is None
    assert any("CTDIvol" in w for w in report.warnings), report.warnings
    assert report.ct.events[1].ctdivol_mGy == extract(_ct_rdsr(), "rdsr").ct.events[1].ctdivol_mGy


def test_a_content_tree_nested_500_levels_deep_fails_with_a_reason(tmp_path):
    # 500 CONTAINERs of undefined length inside the root ContentSequence: reading it recursed
    # past Python's limit and the RecursionError escaped sr.children().
    ds = _ct_rdsr()
    fuzz.nest(ds, ds, 3, 500, undefined=True)
    path = _written(tmp_path, fuzz.encode(ds))
    with pytest.raises(Failed, match="nested too deeply|RecursionError"):
        route, header = classify_file(path, RoutingRules(), roots=[])
        extract_file(path, route, fuzz_options(), header)


def test_a_content_sequence_written_as_text_fails_naming_where_it_is():
    # ContentSequence under VR LO reads as a str; iterating it gave characters, not items.
    # Reading on without that container's content would silently drop an event.
    ds = _ct_rdsr()
    acquisition = ds.ContentSequence[FIRST_ACQUISITION_ITEM]
    fuzz.put_raw(acquisition, Tag("ContentSequence"), "LO", b"not items")
    with pytest.raises(Failed, match=r"ContentSequence \(0040,A730\) under concept DCM 113819 is not a sequence"):
        extract(_reread(ds), "rdsr")


def fuzz_options():
    from services.extractors.common import ExtractOptions

    return ExtractOptions()


# --- text PostgreSQL cannot store --------------------------------------------------------------


def test_a_nul_inside_a_person_name_becomes_a_replacement_character():
    # "1.2\x003" in OperatorsName reached the report as is; PostgreSQL text and jsonb cannot
    # hold NUL, so the writer would fail on it.
    ds = _ct_rdsr()
    fuzz.put_raw(ds, Tag("OperatorsName"), "PN", b"Smith\x00Jones ")
    report = extract(_reread(ds), "rdsr")
    assert report.study.operator_name == "Smith\ufffdJones"


def test_a_nul_inside_an_sr_uid_becomes_a_replacement_character_and_trailing_padding_is_dropped():
    ds = _ct_rdsr()
    item = ds.ContentSequence[DEVICE_OBSERVER_UID_ITEM]
    fuzz.put_raw(item, Tag("UID"), "UI", b"1.2\x003\x00")
    assert extract(_reread(ds), "rdsr").equipment.device_observer_uid == "1.2\ufffd3"


def test_a_nul_inside_an_image_code_meaning_becomes_a_replacement_character():
    ds = pydicom.dcmread(corpus_file("DX-Im-GE_XR220-2.dcm"))
    fuzz.put_raw(ds.ViewCodeSequence[0], Tag("CodeMeaning"), "LO", b"1.2\x003 ")
    report = extract(_reread(ds), "dx_image")
    assert report.projection.events[0].image_view == "1.2\ufffd3"


# --- counts PostgreSQL cannot store -------------------------------------------------------------


def _num_item(container, code_value: str):
    return next(c for c in container.ContentSequence if c.ConceptNameCodeSequence[0].CodeValue == code_value)


def test_a_total_number_of_events_beyond_any_count_is_left_empty_with_a_warning():
    # 9999999999999999 events reached ct.total_events and the writer's integer column
    # (NumericValueOutOfRange: the whole study failed to store, as an internal error).
    ds = _ct_rdsr()
    accumulated = _num_item(ds, "113811")
    fuzz.put_raw(_num_item(accumulated, "113812").MeasuredValueSequence[0], Tag("NumericValue"), "DS",
                 b"9999999999999999")
    report = extract(_reread(ds), "rdsr")
    assert report.ct.total_events is None
    assert any("Total Number of Irradiation Events" in w and "too large" in w for w in report.warnings)
    assert report.ct.total_dlp_mGycm == extract(_ct_rdsr(), "rdsr").ct.total_dlp_mGycm


@pytest.mark.parametrize("frames, why", [(b"1e12", "too large"), (b"-3", "negative")])
def test_a_total_number_of_radiographic_frames_that_is_no_count_is_left_empty_with_a_warning(frames, why):
    ds = pydicom.dcmread(corpus_file("RF-RDSR-Philips_Allura.dcm"))
    frames_item = ds.ContentSequence[8].ContentSequence[10]
    assert frames_item.ConceptNameCodeSequence[0].CodeValue == "113731"
    fuzz.put_raw(frames_item.MeasuredValueSequence[0], Tag("NumericValue"), "DS", frames)
    report = extract(_reread(ds), "rdsr")
    assert extract(pydicom.dcmread(corpus_file("RF-RDSR-Philips_Allura.dcm")), "rdsr") \
        .projection.planes[0].total_radiographic_frames == 27
    assert report.projection.planes[0].total_radiographic_frames is None
    assert any("Radiographic Frames" in w and why in w for w in report.warnings), report.warnings


def test_a_philips_total_number_of_exposures_that_is_no_count_is_left_empty_with_a_warning():
    ds = pydicom.dcmread(corpus_file("CT-SC-Philips_Brilliance16P.dcm"))
    fuzz.put_raw(ds, Tag("TotalNumberOfExposures"), "US", b"\xff\xff")  # 65535: still a count
    assert extract(_reread(ds), "ct_philips").ct.total_events == 65535
    fuzz.put_raw(ds, Tag("TotalNumberOfExposures"), "DS", b"1e12")
    report = extract(_reread(ds), "ct_philips")
    assert report.ct.total_events is None
    assert any("TotalNumberOfExposures" in w for w in report.warnings)


# --- sequences under another VR outside the content tree --------------------------------------


def test_an_mg_view_code_sequence_written_as_a_person_name_leaves_the_view_empty():
    # ViewCodeSequence under VR PN reads as a PersonName: first_code_meaning() indexed it
    # (TypeError: 'PersonName' object is not subscriptable).
    ds = pydicom.dcmread(corpus_file("MG-Im-Hologic-PropProj.dcm"))
    original = extract(_reread(ds), "mg_image")
    fuzz.put_raw(ds, Tag("ViewCodeSequence"), "PN", b"not^a^sequence")
    report = extract(_reread(ds), "mg_image")
    assert original.mammography.events[0].view is not None
    assert report.mammography.events[0].view is None
    assert report.mammography.events[0].agd_mGy == original.mammography.events[0].agd_mGy


@pytest.mark.parametrize("route, name, keyword, vr, value", [
    ("dx_image", "DX-Im-Carestream_DR7500-1.dcm", "RequestAttributesSequence", "FD", struct.pack("<d", 1.0)),
    ("rdsr", CT_RDSR, "RequestAttributesSequence", "FD", struct.pack("<d", 1.0)),
    ("rdsr", CT_RDSR, "ContentTemplateSequence", "UL", b"10011"),
    ("rdsr", CT_RDSR, "PatientWeight", "FD", b"70"),
])
def test_a_header_element_under_a_vr_its_bytes_do_not_fit_is_read_as_absent(route, name, keyword, vr, value):
    # Read as a float (then indexed: TypeError) or refused by pydicom (BytesLengthException)
    # where the header readers called ds.get() directly.
    ds = pydicom.dcmread(corpus_file(name))
    fuzz.put_raw(ds, Tag(keyword), vr, value)
    report = extract(_reread(ds), route)
    assert report.sources[0].sop_instance_uid


# --- numbers no measurement can be -------------------------------------------------------------


def test_an_organ_dose_that_overflows_in_conversion_is_left_empty_with_a_warning():
    # 1.7976931e308 dGy × 100 mGy/dGy is infinity: agd_mGy and the accumulated AGD were inf,
    # which JSON and the database cannot hold.
    ds = pydicom.dcmread(corpus_file("MG-Im-GE_Seno_1_ForPresentation.dcm"))
    fuzz.put_raw(ds, Tag("OrganDose"), "DS", b"1.7976931e308")
    report = extract(_reread(ds), "mg_image")
    assert report.mammography.events[0].agd_mGy is None
    assert report.mammography.accumulated_agd_mGy.left is None
    assert any(w.startswith("mammography.events[0].agd_mGy: inf is not a plausible number") for w in report.warnings)


def test_a_dlp_beyond_any_measurement_is_left_empty_so_study_totals_cannot_overflow():
    ds = _ct_rdsr()
    accumulated = _num_item(ds, "113811")
    fuzz.put_raw(_num_item(accumulated, "113813").MeasuredValueSequence[0], Tag("NumericValue"), "DS", b"1e300 ")
    report = extract(_reread(ds), "rdsr")
    assert report.ct.total_dlp_mGycm is None
    assert any(w.startswith("ct.total_dlp_mGycm: 1e+300 is not a plausible number") for w in report.warnings)
    assert report.ct.events == extract(_ct_rdsr(), "rdsr").ct.events
