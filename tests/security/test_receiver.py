"""Attacks on the DICOM receiver (`doseflow worker receiver`, a real process on a free port), and
what must hold: bounded time, bounded memory (peak RSS read from /proc), the right status."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, ledger, wait_until
from tests.security import attacks
from tests.security.measure import free_port

pytestmark = pytest.mark.integration

CT_RDSR = "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
# Far above the receiver's ~80 MB at rest, far below the 1.1 GB a 500 MB object cost before.
RSS_BOUND_MB = 400


@pytest.fixture
def receiver(workers, doseflow_env, tmp_path):
    """Start a receiver (and the pipeline when asked) with extra settings; returns (port, root, process)."""
    def start(pipeline: bool = False, **settings):
        root = tmp_path / "incoming"
        port = free_port()
        workers.env = {**doseflow_env, "DOSEFLOW_INGEST_ROOTS": str(root), "DOSEFLOW_RECEIVER_PORT": str(port),
                       **{f"DOSEFLOW_{k.upper()}": str(v) for k, v in settings.items()}}
        if pipeline:
            workers.start_pipeline()
        proc = workers.start("receiver")
        wait_until(lambda: proc.poll() is not None or attacks.echo_status(port) == 0, timeout=60,
                   what="receiver answering C-ECHO")
        assert proc.poll() is None, workers.logs()
        return port, root, proc
    return start


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_stalled_connections_do_not_lock_modalities_out_and_are_dropped(receiver):
    """Attacker: 10 TCP connections each send the first 6 bytes of an A-ASSOCIATE-RQ and stall
    (before: every association slot taken, C-ECHO refused for 330 s and more).
    Must hold: C-ECHO answers Success while they stall; each is dropped after the ACSE timeout;
    the receiver's memory stays bounded."""
    port, _, proc = receiver(receiver_acse_timeout_s=3)
    socks = attacks.stall(port, 10)
    try:
        assert attacks.echo_status(port) == 0x0000
        # ACSE timeout 3 s, checked every 0.5 s: dropped well within the wait.
        wait_until(lambda: all(attacks.dropped(s) for s in socks), timeout=30, what="stalled peers dropped")
        assert proc.poll() is None
        assert attacks.peak_rss_mb(proc.pid) < RSS_BOUND_MB
    finally:
        for s in socks:
            s.close()


def test_one_calling_ae_cannot_take_every_association(receiver):
    """Attacker: one calling AE opens associations and keeps them idle.
    Must hold: beyond DOSEFLOW_RECEIVER_MAX_ASSOCIATIONS_PER_AE it is rejected, another AE is not."""
    port, _, _ = receiver(receiver_max_associations_per_ae=2, receiver_max_associations=3)
    held = []
    try:
        for _ in range(2):
            ae = AE(ae_title="GREEDY")
            ae.add_requested_context(Verification)
            held.append(ae.associate("127.0.0.1", port, ae_title="DOSEFLOW"))
            assert held[-1].is_established
        ae = AE(ae_title="GREEDY")
        ae.add_requested_context(Verification)
        third = ae.associate("127.0.0.1", port, ae_title="DOSEFLOW")
        assert third.is_rejected
        assert attacks.echo_status(port, calling_ae="MODALITY") == 0x0000
    finally:
        for assoc in held:
            assoc.release()


def test_a_deflate_bomb_is_refused_without_inflating_it(receiver, tmp_path):
    """Attacker: a 500 kB Deflated Explicit VR object holding 500 MB of zeros (before: Success,
    stored, 1.1 GB in the receiver, classifier and extractor each).
    Must hold: refused with 0xA701 (out of resources); receiver memory bounded; nothing kept."""
    port, root, proc = receiver()
    bomb = tmp_path / "bomb.dcm"
    ds = attacks.write_deflate_bomb(bomb)
    status = attacks.send_file(port, bomb, ds.SOPClassUID, DeflatedExplicitVRLittleEndian)
    assert status == 0xA701
    assert attacks.peak_rss_mb(proc.pid) < RSS_BOUND_MB
    assert files_under(root) == []


def test_an_object_beyond_the_size_limit_streams_to_disk_and_is_refused(receiver, tmp_path):
    """Attacker: a data set larger than DOSEFLOW_RECEIVER_MAX_OBJECT_MB (here 1 MB: 40 MB sent).
    Must hold: 0xA701, never held in memory (peak RSS far below the size sent), nothing kept."""
    port, root, proc = receiver(receiver_max_object_mb=1)
    big = tmp_path / "big.dcm"
    ds = attacks.small_dataset()
    ds.PixelData = bytes(40 << 20)
    ds["PixelData"].VR = "OB"
    attacks.write_plain(big, ds)
    del ds
    status = attacks.send_file(port, big, attacks.DX_FOR_PRESENTATION, ExplicitVRLittleEndian)
    assert status == 0xA701
    assert files_under(root) == []
    assert attacks.peak_rss_mb(proc.pid) < 200


def test_random_bytes_are_not_success(receiver):
    """Attacker: 4 kB of random bytes as the data set (before: Success, written and announced).
    Must hold: 0xC000 (cannot understand), nothing written."""
    import os

    port, root, _ = receiver()
    assert attacks.send_raw_dataset(port, attacks.XRAY_RADIATION_DOSE_SR, "1.2.3.4", os.urandom(4096)) == 0xC000
    assert files_under(root) == []


def test_a_symlinked_study_folder_is_never_followed_out_of_the_root(receiver, tmp_path):
    """Attacker (with write access to the ingest share): plants `<root>/<StudyUID>` as a link to
    another folder (before: the object was written there and Success answered).
    Must hold: a failure status; nothing written outside the root."""
    port, root, _ = receiver()
    outside = tmp_path / "outside"
    outside.mkdir()
    ds = pydicom.dcmread(corpus_file(CT_RDSR))
    (root / ds.StudyInstanceUID).symlink_to(outside)
    status = attacks.send_file(port, corpus_file(CT_RDSR), ds.SOPClassUID, ExplicitVRLittleEndian)
    assert status == 0xA700
    assert list(outside.iterdir()) == []


def test_a_missing_broker_vhost_gets_a_failure_status_well_within_a_modality_timeout(receiver, doseflow_env):
    """Fault: the broker's virtual host is gone (before: failure status after ~35 s, past a
    modality's typical 30 s C-STORE timeout). Must hold: 0xA700 in well under 30 s."""
    base = doseflow_env["DOSEFLOW_AMQP_URL"].rsplit("/", 1)[0]
    port, root, _ = receiver(amqp_url=f"{base}/no-such-vhost-{time.monotonic_ns()}")
    ds = pydicom.dcmread(corpus_file(CT_RDSR))
    started = time.monotonic()
    status = attacks.send_file(port, corpus_file(CT_RDSR), ds.SOPClassUID, ExplicitVRLittleEndian)
    took = time.monotonic() - started
    assert status == 0xA700
    assert took < 25, took  # the bound is DOSEFLOW_RECEIVER_ANNOUNCE_TIMEOUT_S (10 s); a modality waits 30 s


def test_a_sop_uid_sent_again_with_other_content_is_kept_and_failed_naming_both_studies(
        receiver, doseflow_env, database_url, tmp_path):
    """Attacker or broken device: the same SOP Instance UID again with other content, in the same
    study and in another study (before: the file was overwritten, the ledger said "already
    stored", and the second study was said stored but never existed).
    Must hold: every version is kept under its own name; the first stays stored; the others are
    failed with a reason naming the UID and both studies."""
    port, root, _ = receiver(pipeline=True)
    original = pydicom.dcmread(corpus_file(CT_RDSR))
    first = tmp_path / "first.dcm"
    attacks.write_plain(first, original)
    changed = copy.deepcopy(original)
    changed.StudyDescription = "ANOTHER VERSION"
    second = tmp_path / "second.dcm"
    attacks.write_plain(second, changed)
    other_study = copy.deepcopy(original)
    other_study.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    third = tmp_path / "third.dcm"
    attacks.write_plain(third, other_study)
    for path in (first, second, third):
        assert attacks.send_file(port, path, original.SOPClassUID, ExplicitVRLittleEndian) == 0x0000
    kept = files_under(root / original.StudyInstanceUID) + files_under(root / "1.2.826.0.1.3680043.8.498.1")
    kept = [p for p in kept if not p.name.startswith(".")]
    assert len(kept) == 3
    wait_until(lambda: len(ledger(database_url)) == 3, timeout=90, what="three ledger rows")
    rows = ledger(database_url)
    statuses = sorted(status for status, _ in rows.values())
    assert statuses == ["failed", "failed", "stored"], rows
    for status, reason in rows.values():
        if status == "failed":
            assert original.SOPInstanceUID in reason and original.StudyInstanceUID in reason, reason
    other = next(r for s, r in rows.values() if s == "failed" and "1.2.826.0.1.3680043.8.498.1" in r)
    assert "conflict" in other
    [study] = json.loads(doseflow(doseflow_env, "studies", "--json").stdout)
    assert study["study"]["study_instance_uid"] == original.StudyInstanceUID
    assert study["study"]["study_description"] != "ANOTHER VERSION"
