"""The DICOM receiver as a real `doseflow worker receiver` process in front of the real pipeline:
a modality (pynetdicom's SCU) sends objects, and they end stored."""
from __future__ import annotations

import json
import socket

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import UltrasoundImageStorage, Verification

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, ledger, wait_until

pytestmark = pytest.mark.integration

OBJECTS = ["CT-RDSR-Siemens_Flash-TAP-SS.dcm", "DX-Im-GE_XR220-1.dcm", "MG-Im-GE_Seno_1_ForPresentation.dcm"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_echo(port: int) -> bool:
    """A modality's "test connection": C-ECHO."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="DOSEFLOW")
    if not assoc.is_established:
        return False
    try:
        return assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


@pytest.fixture
def receiver(workers, doseflow_env, tmp_path):
    """The pipeline plus a receiver that accepts associations from MODALITY only."""
    root = tmp_path / "incoming"
    port = free_port()
    workers.env = {**doseflow_env, "DOSEFLOW_INGEST_ROOTS": str(root), "DOSEFLOW_RECEIVER_PORT": str(port),
                   "DOSEFLOW_RECEIVER_AE_TITLE": "DOSEFLOW", "DOSEFLOW_RECEIVER_ALLOWED_CALLING_AES": "MODALITY,OTHER"}
    workers.start_pipeline()
    proc = workers.start("receiver")
    wait_until(lambda: proc.poll() is not None or answers_echo(port), timeout=60, what="receiver answering C-ECHO")
    assert proc.poll() is None, workers.logs()
    return port, root


def store(port: int, ds, calling_ae: str = "MODALITY"):
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ds.SOPClassUID, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="DOSEFLOW")
    if not assoc.is_established:
        return assoc, None
    try:
        return assoc, assoc.send_c_store(ds).Status
    finally:
        assoc.release()


def test_objects_sent_by_a_modality_are_written_announced_and_stored(receiver, doseflow_env, database_url):
    port, root = receiver
    paths = []
    for name in OBJECTS:
        ds = pydicom.dcmread(corpus_file(name))
        _, status = store(port, ds)
        assert status == 0x0000, name
        path = root / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        assert path.is_file(), name  # written before Success was answered
        paths.append(str(path))
    wait_until(lambda: all(ledger(database_url).get(p, ("",))[0] == "stored" for p in paths), timeout=60,
               what="all received objects stored")
    studies = {s["study"]["study_instance_uid"]: s for s in
               json.loads(doseflow(doseflow_env, "studies", "--json").stdout)}
    assert len(studies) == 3
    for name, path in zip(OBJECTS, paths):
        # The stored study is the report of the object as received, and of the original file.
        expected = json.loads(doseflow(doseflow_env, "extract", str(corpus_file(name)), "--json").stdout)
        assert studies[expected["study"]["study_instance_uid"]] == expected, name
    ct = studies[pydicom.dcmread(corpus_file(OBJECTS[0])).StudyInstanceUID]
    assert ct["ct"]["total_dlp_mGycm"] == pytest.approx(724.52)


def test_the_same_object_sent_twice_is_one_stored_study(receiver, doseflow_env, database_url):
    port, root = receiver
    ds = pydicom.dcmread(corpus_file(OBJECTS[0]))
    assert store(port, ds)[1] == 0x0000
    assert store(port, ds, calling_ae="OTHER")[1] == 0x0000
    path = str(root / ds.StudyInstanceUID / f"{ds.SOPInstanceUID}.dcm")
    wait_until(lambda: ledger(database_url).get(path, ("",))[0] == "stored", what="stored")
    [study] = json.loads(doseflow(doseflow_env, "studies", "--json").stdout)
    assert len(study["ct"]["events"]) == 4 and len(study["sources"]) == 1


def test_a_calling_ae_not_allowed_is_rejected_and_nothing_is_written(receiver, database_url):
    port, root = receiver
    assoc, status = store(port, pydicom.dcmread(corpus_file(OBJECTS[0])), calling_ae="UNKNOWN_AE")
    assert assoc.is_rejected and status is None
    assert not root.exists() or not any(root.rglob("*.dcm"))
    assert ledger(database_url) == {}


def test_an_unsupported_storage_class_is_refused_in_negotiation(receiver):
    port, _ = receiver
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(UltrasoundImageStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="DOSEFLOW")
    try:
        assert not assoc.accepted_contexts
        assert [cx.abstract_syntax for cx in assoc.rejected_contexts] == [UltrasoundImageStorage]
        ds = pydicom.dcmread(corpus_file(OBJECTS[0]))
        ds.SOPClassUID = UltrasoundImageStorage
        if assoc.is_established:
            with pytest.raises(ValueError):
                assoc.send_c_store(ds)
    finally:
        if assoc.is_established:
            assoc.release()


def test_the_receiver_refuses_to_start_without_a_folder(workers, doseflow_env):
    workers.env = {**doseflow_env, "DOSEFLOW_RECEIVER_PORT": str(free_port())}
    proc = workers.start("receiver")
    assert proc.wait(timeout=60) == 2
    assert "DOSEFLOW_RECEIVER_ROOT" in workers.logs()
