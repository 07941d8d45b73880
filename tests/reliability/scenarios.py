"""The fault-injection scenarios of issue 7. Each takes a fresh Pipeline and returns a Row."""
from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from benchmarks.objects import corpus_folder, load_templates, make_copies, make_large_multiframe
from shared import dead_letters
from tests.reliability.harness import Chaos, Pipeline, Row, postgres_cluster, rabbitmqctl, wait_port

SETTLE_S = 600


def unique_objects(work: Path, n: int, seed: int, prefix: str = "") -> list[str]:
    """`n` unique copies of corpus objects (CT and RF RDSRs, DX and MG images, in turn)."""
    templates = load_templates(corpus_folder())
    return [path for path, _ in make_copies(templates, n, work / "objects", seed, prefix)]


def _replay_dead_letters(p: Pipeline, paths: list[str], row_notes: list[str]) -> None:
    """What an operator does after a fault: replay what was dead-lettered, then wait again."""
    _, dead = p.depths()
    if dead:
        replayed = dead_letters.replay(p.settings, None)
        row_notes.append(f"{replayed} dead-lettered during the fault, replayed")
        p.settle({*paths}, SETTLE_S)


def kill9(p: Pipeline, work: Path, n: int, interval: float = 2.0) -> Row:
    """kill -9 of a random classifier/extractor/writer every `interval` s while objects flow."""
    paths = unique_objects(work, n, seed=1)
    p.start_all(extractors=2, writers=2)
    notes: list[str] = []
    with Chaos(p, interval) as chaos:
        p.publish(paths)
        p.settle(set(paths), SETTLE_S)
    recovery = p.settle(set(paths), SETTLE_S)
    _replay_dead_letters(p, paths, notes)
    notes.insert(0, f"{len(chaos.kills)} workers killed ({', '.join(sorted(set(chaos.kills)))})")
    return p.row("kill -9 workers", paths, recovery, notes=notes)


def broker_restart(p: Pipeline, work: Path, n: int, down_s: float = 5.0) -> Row:
    """The broker stops mid-flow and comes back; publishers and consumers reconnect."""
    paths = unique_objects(work, n, seed=2)
    p.start_all()
    half = len(paths) // 2
    p.publish(paths[:half])
    time.sleep(0.5)
    rabbitmqctl("stop_app")
    try:
        time.sleep(down_s)
    finally:
        rabbitmqctl("start_app")
        wait_port(5672, True)
    started = time.monotonic()
    p.publish(paths[half:])  # the publisher reconnects with backoff
    p.settle(set(paths), SETTLE_S)
    recovery = time.monotonic() - started
    notes: list[str] = [f"broker down {down_s:.0f} s"]
    _replay_dead_letters(p, paths, notes)
    return p.row("broker restart", paths, recovery, notes=notes)


def postgres_outage(p: Pipeline, work: Path, n: int, outage_s: float = 60.0) -> Row:
    """PostgreSQL goes away for `outage_s` while objects flow: the writer retries, messages
    wait in the queue, nothing is acked before it is committed."""
    paths = unique_objects(work, n, seed=3)
    p.start_all()
    third = len(paths) // 3
    p.publish(paths[:third])
    postgres_cluster("stop")
    try:
        wait_port(5432, False)
        p.publish(paths[third:])
        time.sleep(outage_s)
    finally:
        postgres_cluster("start")
        wait_port(5432, True)
    started = time.monotonic()
    p.settle(set(paths), SETTLE_S)
    recovery = time.monotonic() - started
    notes: list[str] = [f"database down {outage_s:.0f} s"]
    _replay_dead_letters(p, paths, notes)
    return p.row("PostgreSQL outage", paths, recovery, notes=notes)


def redelivery(p: Pipeline, work: Path, copies: int = 1000) -> Row:
    """One message delivered `copies` times, and two writers racing on the objects of studies
    made of several objects (cumulative and continued CT reports, multi-image DX)."""
    corpus = corpus_folder()
    folder = work / "race"
    folder.mkdir(parents=True, exist_ok=True)
    names = ["CT-RDSR-Siemens-Multi-1.dcm", "CT-RDSR-Siemens-Multi-2.dcm", "CT-RDSR-Siemens-Multi-3.dcm",
             "CT-RDSR-Siemens-Continued-1.dcm", "CT-RDSR-Siemens-Continued-2.dcm",
             "DX-Im-GE_XR220-1.dcm", "DX-Im-GE_XR220-2.dcm", "DX-Im-GE_XR220-3.dcm"]
    paths = []
    for name in names:
        shutil.copy(corpus / name, folder / name)
        paths.append(str(folder / name))
    p.start_all(extractors=2, writers=2)
    order = [paths[0]] * copies + paths * 20
    random.Random(4).shuffle(order)
    p.publish(order)
    recovery = p.settle(set(paths), SETTLE_S)
    row = p.row("same message ×%d, 2 writers racing" % copies, paths, recovery)
    studies = p._query("SELECT study_instance_uid, jsonb_array_length(report->'ct'->'events'),"
                       " jsonb_array_length(report->'projection'->'events') FROM study")
    events = sorted((ct or 0) + (proj or 0) for _, ct, proj in studies)
    row.notes.append(f"{len(order)} messages; {len(studies)} studies with {events} events")
    # Multi: 3 events (its fullest report), DX: 3 images, Continued: 2 + 2 events.
    if events != [3, 3, 4]:
        row.duplicates += abs(sum(events) - 10)
        row.notes.append("unexpected event counts: expected Multi 3, DX 3, Continued 4")
    return row


def _write(ds: Dataset, path: Path) -> str:
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def _deeply_nested_sr(template: Path, path: Path, depth: int) -> str:
    """The template RDSR with its content tree replaced by `depth` nested containers, written
    as raw undefined-length items (pydicom's writer does not cope with such depth)."""
    import struct

    ds = pydicom.dcmread(template)
    del ds.ContentSequence
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "2.25.1003"
    ds.StudyInstanceUID = "2.25.2003"
    assert max(ds.keys()) < 0x0040A730, "ContentSequence must be the dataset's last element"
    ds.save_as(path, enforce_file_format=True)

    def element(group, elem, vr, value: bytes) -> bytes:
        return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value

    level = element(0x0040, 0xA010, b"CS", b"CONTAINS") + element(0x0040, 0xA040, b"CS", b"CONTAINER")
    open_seq = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\x00\x00" + b"\xff\xff\xff\xff"
    open_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close_item = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    close_seq = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    with open(path, "ab") as f:
        f.write((open_seq + open_item + level) * depth + (close_item + close_seq) * depth)
    return str(path)


def poison(p: Pipeline, work: Path) -> Row:
    """Inputs that must each end ignored or failed with a reason (or dead-lettered, for bodies
    that are not messages), without blocking a queue or killing a worker."""
    corpus = corpus_folder()
    folder = work / "poison"
    folder.mkdir(parents=True, exist_ok=True)
    ct = corpus / "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
    files: dict[str, str] = {}

    data = ct.read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 3])
    files["truncated file"] = str(folder / "truncated.dcm")
    (folder / "empty.dcm").write_bytes(b"")
    files["zero-byte file"] = str(folder / "empty.dcm")
    (folder / "notes.txt").write_text("not DICOM at all\n" * 100)
    files["non-DICOM"] = str(folder / "notes.txt")

    image = pydicom.dcmread(corpus / "DX-Im-GE_XR220-1.dcm", stop_before_pixels=True)
    image.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage: no dose route
    image.file_meta.MediaStorageSOPClassUID = image.SOPClassUID
    image.SOPInstanceUID = image.file_meta.MediaStorageSOPInstanceUID = "2.25.1001"
    files["wrong SOP class"] = _write(image, folder / "mr.dcm")

    absurd = pydicom.dcmread(ct)
    absurd.SOPInstanceUID = absurd.file_meta.MediaStorageSOPInstanceUID = "2.25.1002"
    absurd.StudyInstanceUID = "2.25.2002"
    for n, item in enumerate(e for e in absurd.iterall() if e.keyword == "UID" and e.value):
        item.value = f"2.25.{3000 + n}"  # its own events, not the template's
    values = [item for item in absurd.iterall() if item.keyword == "NumericValue"]
    for item, bad in zip(values, ["-724.52", "NaN", "twelve", "1e400", "inf"]):
        item.VR = "LO"  # pydicom will not put text in a DS; a wrong VR is part of the poison
        item.value = bad
    files["absurd values (negative, NaN, text, huge)"] = _write(absurd, folder / "absurd.dcm")

    files["deeply nested SR (1000 levels)"] = _deeply_nested_sr(ct, folder / "nested.dcm", 1000)

    big = folder / "big-multiframe.dcm"
    make_large_multiframe(corpus / "DX-Im-GE_XR220-1.dcm", big, 500 * 1024 * 1024, random.Random(5))
    files["500 MB multi-frame object"] = str(big)

    odd = os.fsdecode(bytes(folder) + b"/caf\xe9-latin1.dcm")
    shutil.copy(corpus / "DX-Im-GE_XR220-2.dcm", os.fsencode(odd))
    files["non-UTF-8 file name"] = odd
    deep = folder / ("d" * 200) / ("e" * 200) / ("f" * 200)
    deep.mkdir(parents=True)
    shutil.copy(corpus / "DX-Im-GE_XR220-3.dcm", deep / ("g" * 200 + ".dcm"))
    files["very long path"] = str(deep / ("g" * 200 + ".dcm"))

    # A file deleted between publish and extract: classified, then gone before extraction.
    vanishing = folder / "vanishing.dcm"
    shutil.copy(corpus / "CT-RDSR-Siemens-Continued-1.dcm", vanishing)
    files["file deleted before extraction"] = str(vanishing)

    p.start("writer")
    p.start("classifier")
    p.workers.wait_ready(p.amqp, {"ingest": 1, "writer": 1})
    p.publish([str(vanishing)])
    _wait(lambda: p.depths()[0].get("extract.rdsr", 0) >= 1, 60)
    vanishing.unlink()
    p.start("extractor", 2)
    p.start("toshiba-builder")
    p.start("alerts")  # the writer's StudyStored messages: the queues drain only with it

    p.publish([v for k, v in files.items() if k != "file deleted before extraction"])
    p.publish_raw(b"\xff\xfe this is not JSON")
    p.publish_raw(json.dumps({"schema": 99, "path": "/x"}).encode())
    recovery = p.settle(set(files.values()), SETTLE_S)
    _wait(lambda: p.depths()[1] >= 2, 30)
    row = p.row("poison inputs", list(files.values()), recovery)
    ledger = {path: (status, reason) for path, status, reason in
              p._query("SELECT path, status, reason FROM object_ledger")}
    from tests.reliability.harness import storable

    for what, path in files.items():
        status, reason = ledger.get(storable(path), ("missing", ""))
        row.notes.append(f"{what}: {status}" + (f" ({reason[:70]})" if reason else ""))
    row.notes.append("2 undecodable messages dead-lettered" if row.dead_letters >= 2 else
                     f"only {row.dead_letters} dead letters for 2 undecodable messages")
    return row


def outside_roots(p: Pipeline, work: Path) -> Row:
    """Paths outside DOSEFLOW_INGEST_ROOTS (absolute, '..', a symlink escaping the root) are
    refused and recorded, and never opened: each points at a FIFO, which would block any
    worker that opened it."""
    root = Path(p.env["DOSEFLOW_INGEST_ROOTS"])
    root.mkdir(parents=True, exist_ok=True)
    outside = work / "outside"
    outside.mkdir()
    fifo = outside / "trap.dcm"
    os.mkfifo(fifo)
    (root / "link.dcm").symlink_to(fifo)
    inside = root / "good.dcm"
    shutil.copy(corpus_folder() / "CT-RDSR-Siemens-Continued-2.dcm", inside)
    paths = [str(fifo), f"{root}/../outside/trap.dcm", str(root / "link.dcm"), str(inside)]
    p.start_all()
    p.publish(paths)
    recovery = p.settle(set(paths), 120)
    row = p.row("paths outside ingest roots", paths, recovery)
    for path, status, reason in p._query("SELECT path, status, reason FROM object_ledger ORDER BY path"):
        row.notes.append(f"{os.path.relpath(path, work)}: {status}" + (f" ({reason})" if reason else ""))
    return row


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False
