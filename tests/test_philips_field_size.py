"""Philips Allura Xper collimated field from the private "Wedges and Shutters" (spec §3):
height = (right + left) × SID[m], width = (bottom + top) × SID[m], area = h × w; a field larger
than the geometry allows is left empty with a warning naming the values."""
from __future__ import annotations

import pytest

from services.extractors.routes import extract
from shared import sr
from shared.codes import DCM, Code
from tests.conftest import read

PHI = "99PHI-IXR-XPER"


def events(ds):
    return sr.find_all(ds, (DCM("113706"),))


def set_num(item, code, value):
    sr.find(item, (code,)).MeasuredValueSequence[0].NumericValue = str(value)


def set_shutters(event, right, left, bottom, top):
    shutters = sr.find(event, (Code(PHI, "005"),))
    for code, value in (("008", right), ("007", left), ("006", bottom), ("009", top)):
        set_num(shutters, Code(PHI, code), value)


def test_corpus_allura_shutters_open_past_the_detector_give_no_field_and_a_warning():
    # 164.5 + 164.5 mm and 131 + 131 mm at 1 m, × SID 1.194 m = 392.8 × 312.8 mm: more than the
    # 380 × 300 mm detector field the same object states. Expected values leave the field out.
    report = extract(read("RF-RDSR-Philips_Allura.dcm"), "rdsr")
    for e in report.projection.events:
        assert e.collimated_field_height_mm is None and e.collimated_field_width_mm is None
        assert e.collimated_field_area_m2 is None
    warning = [w for w in report.warnings if "Wedges and Shutters" in w]
    assert len(warning) == 1 and "events 1-3" in warning[0]
    assert "392.8 × 312.8 mm" in warning[0] and "380 × 300 mm" in warning[0] and "SID 1194 mm" in warning[0]


def test_allura_clarity_like_field_is_computed_from_shutters_and_sid():
    # The real Allura Clarity field: 187.4 × 187.4 mm at SID 1209 mm.
    ds = read("RF-RDSR-Philips_Allura.dcm")
    first = events(ds)[0]
    set_shutters(first, 77.5, 77.5, 77.5, 77.5)
    set_num(first, DCM("113750"), 1209)
    report = extract(ds, "rdsr")
    e = report.projection.events[0]
    assert e.collimated_field_height_mm == pytest.approx(187.395)
    assert e.collimated_field_width_mm == pytest.approx(187.395)
    assert e.collimated_field_area_m2 == pytest.approx(0.187395 ** 2)
    # the other events (shutters past the detector) stay empty, with their own warning
    assert report.projection.events[1].collimated_field_area_m2 is None
    assert any("events 2-3" in w and "Wedges and Shutters" in w for w in report.warnings)


def test_height_comes_from_right_and_left_width_from_bottom_and_top():
    ds = read("RF-RDSR-Philips_Allura.dcm")
    first = events(ds)[0]
    set_shutters(first, right=100, left=50, bottom=40, top=60)  # 150 and 100 mm at 1 m
    set_num(first, DCM("113750"), 1000)
    e = extract(ds, "rdsr").projection.events[0]
    assert e.collimated_field_height_mm == pytest.approx(150.0)
    assert e.collimated_field_width_mm == pytest.approx(100.0)
    assert e.collimated_field_area_m2 == pytest.approx(0.015)


def test_without_a_stated_detector_size_the_largest_detector_bounds_the_field():
    ds = read("RF-RDSR-Philips_Allura.dcm")
    for event in events(ds):
        event.ContentSequence = [c for c in event.ContentSequence if sr.concept_name(c) != Code(PHI, "023")]
    first, second = events(ds)[:2]
    set_shutters(second, 300, 300, 100, 100)  # 716 mm high at SID 1.194 m: no detector is that large
    report = extract(ds, "rdsr")
    e0, e1 = report.projection.events[:2]
    assert e0.collimated_field_height_mm == pytest.approx(392.826)  # fits a 450 mm detector
    assert e1.collimated_field_height_mm is None
    assert any("event 2" in w and "largest detector (450 mm a side)" in w for w in report.warnings)


def test_without_any_sid_there_is_no_field():
    ds = read("RF-RDSR-Philips_Allura.dcm")
    for event in events(ds):
        event.ContentSequence = [c for c in event.ContentSequence
                                 if sr.concept_name(c) not in (DCM("113750"), Code(PHI, "018"))]
    report = extract(ds, "rdsr")
    assert all(e.collimated_field_area_m2 is None for e in report.projection.events)
    assert any("no source-to-detector distance" in w for w in report.warnings)


def test_standard_field_items_win_over_the_shutters():
    # An RDSR stating Collimated Field Area (113790) keeps it; the shutters are not consulted.
    ds = read("RF-RDSR-Philips_Allura.dcm")
    first = events(ds)[0]
    area = sr.find(first, (DCM("113750"),))  # a NUM item to copy the shape of
    import copy
    item = copy.deepcopy(area)
    item.ConceptNameCodeSequence[0].CodeValue = "113790"
    item.MeasuredValueSequence[0].NumericValue = "0.05"
    item.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue = "m2"
    first.ContentSequence.append(item)
    e = extract(ds, "rdsr").projection.events[0]
    assert e.collimated_field_area_m2 == pytest.approx(0.05)
    assert e.collimated_field_height_mm is None
