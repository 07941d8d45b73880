"""What a hostile or broken device on the hospital network sends, as small functions the
security tests and the before/after measurement (`python -m tests.security.measure`) share.

Nothing here mocks doseflow: the attacks go to real `doseflow worker ...` processes over TCP or
through the ingest folder, and are measured from outside (/proc, the ledger, the clock).
"""
from __future__ import annotations

import io
import os
import socket
import struct
import time
import zlib
from pathlib import Path
from typing import Optional

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
XRAY_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
MB = 1 << 20


def peak_rss_mb(pid: int) -> float:
    """The process' peak resident set (VmHWM) in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def small_dataset(sop_class: str = DX_FOR_PRESENTATION, *, study_uid: Optional[str] = None,
                  sop_uid: Optional[str] = None) -> Dataset:
    """A minimal DX image header with the UIDs doseflow files an object under."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.Manufacturer = "ATTACKER"
    ds.StudyDate = "20240101"
    return ds


def _file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    return meta


def write_deflate_bomb(path: Path, inflated_bytes: int = 500 * MB, ds: Optional[Dataset] = None) -> Dataset:
    """A Deflated Explicit VR Little Endian DX image whose pixel data is `inflated_bytes` of zeros:
    about 1/1000 of that on disk (500 MB -> ~510 KB). Written in chunks, never held whole."""
    ds = ds or small_dataset()
    body = io.BytesIO()
    dcmwrite(body, ds, enforce_file_format=False, implicit_vr=False, little_endian=True)
    meta = DicomBytesIO()
    meta.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(meta, _file_meta(ds, DeflatedExplicitVRLittleEndian), enforce_standard=True)
    head = meta.getvalue()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    with open(path, "wb") as f:
        f.write(head)
        f.write(compressor.compress(body.getvalue()))
        # (7FE0,0010) OB, explicit VR: tag, VR, 2 reserved bytes, 4-byte length.
        f.write(compressor.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, inflated_bytes)))
        zeros = bytes(MB)
        left = inflated_bytes
        while left:
            n = min(left, MB)
            f.write(compressor.compress(zeros[:n]))
            left -= n
        f.write(compressor.flush())
    return ds


def write_plain(path: Path, ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> None:
    ds = ds.copy()
    ds.file_meta = _file_meta(ds, transfer_syntax)
    dcmwrite(path, ds, enforce_file_format=True)


# The first 6 bytes of an A-ASSOCIATE-RQ PDU: type 0x01, reserved, and a 4-byte length promising
# the rest, which never comes.
ASSOCIATE_RQ_START = bytes([0x01, 0x00]) + struct.pack(">I", 2000)


def stall(port: int, n: int = 10, host: str = "127.0.0.1") -> list[socket.socket]:
    """`n` TCP connections that each send the first 6 bytes of an A-ASSOCIATE-RQ and then nothing."""
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(ASSOCIATE_RQ_START)
        socks.append(s)
    return socks


def dropped(s: socket.socket, wait: float = 0.0) -> bool:
    """True when the peer closed or reset this connection."""
    s.settimeout(wait or 0.001)
    try:
        return s.recv(1) == b""
    except (socket.timeout, BlockingIOError):
        return False
    except OSError:
        return True


def echo_status(port: int, calling_ae: str = "MODALITY", called_ae: str = "DOSEFLOW") -> Optional[int]:
    """A modality's "test connection" (C-ECHO): the status, or None when no association was made."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.network_timeout = 10
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_echo()
        return int(status.Status) if "Status" in status else None
    finally:
        assoc.release()


def send_file(port: int, path: Path, sop_class: str, transfer_syntax: str, *, calling_ae: str = "MODALITY",
              timeout: float = 120) -> Optional[int]:
    """C-STORE the file at `path` as it is on disk (no decoding on our side): the status, or None."""
    from pynetdicom import AE, _config

    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = timeout
    ae.add_requested_context(sop_class, [transfer_syntax])
    assoc = ae.associate("127.0.0.1", port, ae_title="DOSEFLOW")
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_store(str(path))
        return int(status.Status) if "Status" in status else None
    finally:
        if assoc.is_established:
            assoc.release()


def send_raw_dataset(port: int, sop_class: str, sop_uid: str, payload: bytes, *,
                     calling_ae: str = "MODALITY", transfer_syntax: str = ExplicitVRLittleEndian) -> Optional[int]:
    """C-STORE `payload` as the data set bytes, whatever they are (random bytes, a cut data set)."""
    import tempfile

    meta = Dataset()
    meta.file_meta = FileMetaDataset()
    meta.file_meta.MediaStorageSOPClassUID = sop_class
    meta.file_meta.MediaStorageSOPInstanceUID = sop_uid
    meta.file_meta.TransferSyntaxUID = transfer_syntax
    with tempfile.NamedTemporaryFile(suffix=".dcm") as f:
        dcmwrite(f, meta, enforce_file_format=True)
        f.write(payload)
        f.flush()
        return send_file(port, Path(f.name), sop_class, transfer_syntax, calling_ae=calling_ae)


def wait_for(predicate, timeout: float, interval: float = 0.2):
    """The predicate's first true value within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path
