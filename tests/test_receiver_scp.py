"""The receiver's pieces without a broker: safe names, atomic writes, and the C-STORE handler
behind a real pynetdicom association on the loopback interface (the announcement is a stub)."""
from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import (
    ComprehensiveSRStorage,
    CTImageStorage,
    UltrasoundImageStorage,
    Verification,
    XRayRadiationDoseSRStorage,
)

from services.receiver import scp
from services.receiver.scp import name_for_uid, object_path
from tests.conftest import corpus_file

CT_RDSR = "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
CT_STUDY = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.3.0"


# --- names -----------------------------------------------------------------------------------


def test_a_well_formed_uid_is_its_own_name():
    assert name_for_uid(CT_STUDY) == CT_STUDY


@pytest.mark.parametrize("hostile", ["..", ".", "1..2", "../../etc/passwd", "1.2/3", "1.2\x00", ".1.2", "1.2.",
                                     "1.2 ", "１.２", "9" * 65])
def test_a_malformed_uid_becomes_a_hash_never_a_path_component(hostile):
    name = name_for_uid(hostile)
    assert name != hostile
    assert name.startswith("x") and len(name) == 41
    assert all(c in "0123456789abcdefx" for c in name)


def test_the_hash_of_a_malformed_uid_is_stable_and_distinct():
    assert name_for_uid("abc") == name_for_uid("abc")
    assert name_for_uid("abc") != name_for_uid("abd")


def test_a_missing_study_uid_gets_a_readable_folder_name(tmp_path):
    assert object_path(tmp_path, None, "1.2.3") == tmp_path / "no-study-uid" / "1.2.3.dcm"
    assert object_path(tmp_path, "", "1.2.3") == tmp_path / "no-study-uid" / "1.2.3.dcm"


def test_the_object_path_is_root_study_sop_dcm_and_stays_under_the_root(tmp_path):
    assert object_path(tmp_path, "1.2.3", "1.2.3.4") == tmp_path / "1.2.3" / "1.2.3.4.dcm"
    escaping = object_path(tmp_path, "../..", "../../../tmp/evil")
    assert escaping.parent.parent == tmp_path
    assert ".." not in escaping.parts


# --- placing a spooled object ----------------------------------------------------------------


def spooled(root: Path, data: bytes) -> str:
    (root / scp.SPOOL).mkdir(parents=True, exist_ok=True)
    path = root / scp.SPOOL / ".x.part"
    path.write_bytes(data)
    return str(path)


def test_a_spooled_object_is_moved_under_its_study_and_nothing_is_left_behind(tmp_path):
    path = scp.place(spooled(tmp_path, b"DICM data"), tmp_path, "1.2", "1.2.3.dcm")
    assert path == tmp_path / "1.2" / "1.2.3.dcm"
    assert path.read_bytes() == b"DICM data"
    assert os.listdir(tmp_path / scp.SPOOL) == []


def test_the_same_object_again_replaces_it_and_a_different_one_is_kept_beside_it(tmp_path):
    first = scp.place(spooled(tmp_path, b"first"), tmp_path, "1.2", "1.2.3.dcm")
    assert scp.place(spooled(tmp_path, b"first"), tmp_path, "1.2", "1.2.3.dcm") == first
    other = scp.place(spooled(tmp_path, b"other content"), tmp_path, "1.2", "1.2.3.dcm")
    assert other != first and other.name.startswith("1.2.3.") and other.suffix == ".dcm"
    assert first.read_bytes() == b"first" and other.read_bytes() == b"other content"


def test_spool_files_left_by_a_dead_receiver_are_removed_at_start_and_fresh_ones_kept(tmp_path):
    spool = tmp_path / scp.SPOOL
    spool.mkdir()
    (spool / ".old.part").write_bytes(b"half a data set")
    os.utime(spool / ".old.part", (0, 0))
    (spool / ".new.part").write_bytes(b"arriving now")
    assert scp.remove_stale_spool_files(spool) == 1
    assert os.listdir(spool) == [".new.part"]


def test_import_never_reads_the_receivers_spool(tmp_path):
    from doseflow.importer import expand_paths

    (tmp_path / scp.SPOOL).mkdir()
    (tmp_path / scp.SPOOL / ".x.part").write_bytes(b"arriving")
    (tmp_path / "1.2").mkdir()
    (tmp_path / "1.2" / "1.2.3.dcm").write_bytes(b"stored")
    assert expand_paths([str(tmp_path)]) == [str(tmp_path / "1.2" / "1.2.3.dcm")]


def test_a_study_folder_that_is_a_symlink_out_of_the_root_is_never_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "1.2").symlink_to(outside)
    with pytest.raises(OSError):
        scp.place(spooled(root, b"data"), root, "1.2", "1.2.3.dcm")
    assert os.listdir(outside) == []


# --- the handler behind a real association ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, root: Path, announce, allowed=()):
        self.port = free_port()
        self.ae = scp.application_entity("DOSEFLOW", allowed)
        self.server = scp.start(self.ae, self.port, scp.StoreHandler(root, announce), host="127.0.0.1")

    def close(self):
        self.server.shutdown()
        self.ae.shutdown()


@pytest.fixture
def receiver(tmp_path):
    made = []

    def make(announce=None, allowed=(), root=None):
        announced = []
        r = Receiver(root or tmp_path / "incoming", announce or announced.append, allowed)
        r.announced = announced
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def send(port: int, path: Path, calling_ae: str = "MODALITY", contexts=None):
    """C-STORE one file with pynetdicom's SCU; returns (association, status or None)."""
    ds = pydicom.dcmread(path)
    ae = AE(ae_title=calling_ae)
    for sop_class in contexts or [ds.SOPClassUID]:
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="DOSEFLOW")
    if not assoc.is_established:
        return assoc, None
    try:
        status = assoc.send_c_store(ds)
        return assoc, status.Status if status else None
    finally:
        assoc.release()


def test_a_stored_rdsr_is_written_under_study_and_sop_uid_then_announced(receiver, tmp_path):
    r = receiver()
    _, status = send(r.port, corpus_file(CT_RDSR))
    assert status == scp.SUCCESS
    sent = pydicom.dcmread(corpus_file(CT_RDSR))
    path = tmp_path / "incoming" / CT_STUDY / f"{sent.SOPInstanceUID}.dcm"
    assert r.announced == [str(path)]
    written = pydicom.dcmread(path)
    assert written.file_meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert written.StudyInstanceUID == CT_STUDY
    assert written.ContentSequence == sent.ContentSequence


def test_a_failed_announcement_answers_out_of_resources_so_the_modality_retries(receiver, tmp_path):
    def broker_down(path):
        raise ConnectionError("broker unreachable")

    r = receiver(announce=broker_down)
    _, status = send(r.port, corpus_file(CT_RDSR))
    assert status == scp.OUT_OF_RESOURCES == 0xA700
    # The object stays on disk; the modality's retry rewrites it under the same name.
    assert len(list((tmp_path / "incoming" / CT_STUDY).glob("*.dcm"))) == 1


def test_an_unwritable_study_folder_answers_out_of_resources_and_announces_nothing(receiver, tmp_path):
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / CT_STUDY).write_text("a file where the study folder should be")
    r = receiver()
    _, status = send(r.port, corpus_file(CT_RDSR))
    assert status == scp.OUT_OF_RESOURCES
    assert r.announced == []


def test_a_calling_ae_not_in_the_allowed_list_is_rejected(receiver):
    r = receiver(allowed=["CT_SCANNER"])
    assoc, status = send(r.port, corpus_file(CT_RDSR), calling_ae="INTRUDER")
    assert assoc.is_rejected and status is None
    assert r.announced == []
    _, status = send(r.port, corpus_file(CT_RDSR), calling_ae="CT_SCANNER")
    assert status == scp.SUCCESS


@pytest.mark.parametrize("sop_class", [UltrasoundImageStorage, ComprehensiveSRStorage])
def test_a_storage_class_without_dose_data_is_refused_in_negotiation(receiver, sop_class):
    r = receiver()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(sop_class, [ExplicitVRLittleEndian])
    ae.add_requested_context(XRayRadiationDoseSRStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", r.port, ae_title="DOSEFLOW")
    try:
        assert assoc.is_established
        accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
        assert accepted == {XRayRadiationDoseSRStorage}
        assert sop_class in {cx.abstract_syntax for cx in assoc.rejected_contexts}
    finally:
        assoc.release()


def test_the_dose_relevant_storage_classes_are_all_offered():
    ae = scp.application_entity("DOSEFLOW")
    offered = {str(cx.abstract_syntax) for cx in ae.supported_contexts}
    assert {XRayRadiationDoseSRStorage, CTImageStorage, "1.2.840.10008.5.1.4.1.1.88.22",
            "1.2.840.10008.5.1.4.1.1.88.68", "1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.1",
            "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.7", Verification} <= offered
    assert "1.2.840.10008.5.1.4.1.1.13.1.3" not in offered  # breast tomosynthesis: not needed


def test_a_verification_echo_succeeds(receiver):
    r = receiver()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", r.port, ae_title="DOSEFLOW")
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_an_unreachable_broker_fails_the_announcement_within_the_bounded_wait():
    import time

    from services.receiver.worker import Announcer

    closed_port = free_port()  # nothing listens there
    announcer = Announcer(f"amqp://guest:guest@127.0.0.1:{closed_port}/%2F", 5, connect_within=1.0)
    started = time.monotonic()
    with pytest.raises(Exception):
        announcer("/data/incoming/1.2/1.2.3.dcm")
    assert time.monotonic() - started < 15  # not the 10-minute backoff of background producers
    announcer.close()



def test_random_bytes_as_a_data_set_answer_cannot_understand(receiver, tmp_path):
    # pynetdicom's SCU sends a file's bytes as they are (chunked): 4 kB of random bytes after
    # a valid file meta is what a broken or hostile device may send.
    from tests.security.attacks import send_raw_dataset

    r = receiver()
    status = send_raw_dataset(r.port, XRayRadiationDoseSRStorage, "1.2.3.4", os.urandom(4096))
    assert status == scp.CANNOT_UNDERSTAND == 0xC000
    assert r.announced == []
    assert not [p for p in (tmp_path / "incoming").rglob("*") if p.is_file()]
