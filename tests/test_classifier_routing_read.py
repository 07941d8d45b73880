"""The classifier service reads only what routing needs (up to an SR's root concept name), and
routes every object exactly as it would from the whole header."""
from __future__ import annotations

import json
import os

import pytest

from services.classifier.rules import RoutingRules
from services.classifier.worker import classify_file, make_handler
from shared.dicom import read_header
from shared.messages import ExtractRequest, ObjectReceived, Outcome
from shared.outcome import Failed, Ignored
from tests.conftest import CORPUS, corpus_file

# The 3 MB RF report takes seconds to parse whole; its route is covered by the other RF reports.
SLOW = {"RF-Pat-Orientation-Modifier-Missing.dcm"}
OBJECTS = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.dcm") if p.name not in SLOW)


def route_or_reason(path: str, routing_only: bool) -> str:
    try:
        return classify_file(path, RoutingRules(), roots=[], routing_only=routing_only)[0]
    except (Ignored, Failed) as exc:
        return f"{type(exc).__name__}: {exc.reason}"


def test_the_corpus_has_objects_to_compare():
    if not CORPUS.exists():
        if os.environ.get("CI"):
            pytest.fail(f"corpus missing in CI: {CORPUS}")
        pytest.skip(f"corpus not present: {CORPUS}")
    assert len(OBJECTS) >= 30


@pytest.mark.parametrize("name", OBJECTS)
def test_the_routing_read_routes_every_corpus_object_like_the_whole_header(name):
    path = str(corpus_file(name))
    assert route_or_reason(path, routing_only=True) == route_or_reason(path, routing_only=False)


def test_the_routing_read_of_a_dose_report_leaves_the_content_tree_to_the_extractor():
    path = str(corpus_file("RF-RDSR-Canon-Ultimaxi-mGyDoseAtRP.dcm"))
    routing = read_header(path, routing_only=True)
    assert "ContentSequence" not in routing
    assert routing.ConceptNameCodeSequence[0].CodeValue == "113701"
    assert "ContentSequence" in read_header(path)


def test_an_image_routing_read_keeps_what_the_extract_request_carries():
    path = str(corpus_file("DX-Im-GE_XR220-1.dcm"))
    routing, whole = read_header(path, routing_only=True), read_header(path)
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "Modality", "Manufacturer"):
        assert routing.get(keyword) == whole.get(keyword)


def test_an_object_without_a_sop_class_is_read_whole_and_ignored_saying_so(tmp_path):
    import pydicom

    ds = pydicom.dcmread(corpus_file("DX-Im-GE_XR220-1.dcm"))
    del ds.SOPClassUID
    path = tmp_path / "no-class.dcm"
    ds.save_as(path)
    assert "no SOP Class UID" in route_or_reason(str(path), routing_only=True)


def test_the_classifier_handler_sends_a_dose_report_to_the_rdsr_queue_with_its_uids(tmp_path):
    path = str(corpus_file("CT-RDSR-Siemens_Flash-TAP-SS.dcm"))
    result = make_handler(RoutingRules(), roots=[])(ObjectReceived(path=path).encode(), {})
    [publish] = result.publishes
    request = ExtractRequest.model_validate(json.loads(publish.body))
    whole = read_header(path)
    assert (publish.routing_key, request.route) == ("rdsr", "rdsr")
    assert request.sop_instance_uid == whole.SOPInstanceUID
    assert request.study_instance_uid == whole.StudyInstanceUID
    assert request.sop_class_uid == whole.SOPClassUID


def test_the_classifier_handler_fails_a_file_that_is_not_dicom(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not DICOM\n" * 20)
    result = make_handler(RoutingRules(), roots=[])(ObjectReceived(path=str(junk)).encode(), {})
    assert result.dead_letter_reason and "not a readable DICOM object" in result.dead_letter_reason
    [publish] = result.publishes
    assert Outcome.model_validate(json.loads(publish.body)).status == "failed"
