"""The DICOM C-STORE receiver's pieces: what it accepts, where an object goes, how it is written,
and the C-STORE handler that writes, announces, and only then answers Success.

A modality retries a C-STORE that did not end in Success, so the handler answers Success only
once the object is safely on disk (written under a temporary name, fsynced, renamed) and its
ObjectReceived message was confirmed by the broker. Anything less is a failure status, and the
modality keeps the object.

Every input has a bound (`Limits`): a peer that does not finish its association request within
the ACSE timeout is dropped, and so is one silent beyond the network timeout; associations are
limited overall and per calling AE; a data set is written to a spool file as it arrives (never
held in memory) and refused beyond the maximum object size; a data set is only ever read
through shared.dicom (header only, deflated data inflated with a cap).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    UID,
)
from pynetdicom import AE, _config, dimse_messages, evt
from pynetdicom.acse import ACSE
from pynetdicom.sop_class import Verification

from shared import dicom, metrics

log = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # could not write or announce: the modality should retry later
TOO_LARGE = 0xA701  # "Refused: Out of Resources" too: beyond the maximum object size
CANNOT_UNDERSTAND = 0xC000  # the data set does not decode
STATUS_NAMES = {SUCCESS: "success", OUT_OF_RESOURCES: "out_of_resources", TOO_LARGE: "too_large",
                CANNOT_UNDERSTAND: "cannot_understand"}
SPOOL = ".receiving"  # folder under the root where data sets are written as they arrive

# Every SCP must support Implicit VR Little Endian; Explicit VR Little Endian is offered first
# because the acceptor picks the first of its syntaxes that the modality proposed.
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                ExplicitVRBigEndian)
# Compressed pixel data is accepted only for images whose dose data doseflow reads from the
# header alone (CR, DX, MG). CT images and secondary captures may be dose screens whose pixels
# are read (Toshiba builder), so they are taken uncompressed, which every modality can send.
COMPRESSED = (JPEGLosslessSV1, JPEGBaseline8Bit, JPEGExtended12Bit, JPEG2000Lossless, JPEG2000,
              JPEGLSLossless, RLELossless)

# SOP class -> transfer syntaxes offered for it.
STORAGE_CLASSES: dict[str, tuple[str, ...]] = {
    dicom.XRAY_RADIATION_DOSE_SR: UNCOMPRESSED,
    dicom.ENHANCED_SR: UNCOMPRESSED,  # GE CT dose reports, Siemens fluoroscopy summaries
    dicom.RADIOPHARMACEUTICAL_RADIATION_DOSE_SR: UNCOMPRESSED,
    dicom.CT_IMAGE: UNCOMPRESSED,
    dicom.ENHANCED_CT_IMAGE: UNCOMPRESSED,
    dicom.SECONDARY_CAPTURE: UNCOMPRESSED,
    dicom.MG_FOR_PRESENTATION: UNCOMPRESSED + COMPRESSED,
    dicom.MG_FOR_PROCESSING: UNCOMPRESSED + COMPRESSED,
    dicom.CR_IMAGE: UNCOMPRESSED + COMPRESSED,
    dicom.DX_FOR_PRESENTATION: UNCOMPRESSED + COMPRESSED,
    dicom.DX_FOR_PROCESSING: UNCOMPRESSED + COMPRESSED,
}

# A UID is digits and dots (PS3.5 §9.1), at most 64 characters, no empty component; only such a
# string is used as a file or folder name as it is ('..' and '/' never are).
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
NO_STUDY_UID = "no-study-uid"


def name_for_uid(uid: Optional[str], missing: str = "no-uid") -> str:
    """A safe file-system name for a UID: the UID itself when it is a well-formed UID, else a
    hash of it (a malformed or hostile value never becomes a path component); `missing` when
    there is none."""
    if uid and len(uid) <= 64 and _UID.fullmatch(uid):
        return uid
    if not uid:
        return missing
    return "x" + hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def object_path(root: Path, study_instance_uid: Optional[str], sop_instance_uid: str) -> Path:
    """`<root>/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, each part made safe."""
    return Path(root) / name_for_uid(study_instance_uid, NO_STUDY_UID) / (name_for_uid(sop_instance_uid) + ".dcm")


@dataclass(frozen=True)
class Limits:
    """The receiver's bounds (DOSEFLOW_RECEIVER_* settings)."""
    acse_timeout_s: float = 10
    dimse_timeout_s: float = 30
    network_timeout_s: float = 60
    max_associations: int = 10
    max_associations_per_ae: int = 4
    max_object_bytes: int = 2048 << 20


class SpoolFile:
    """What pynetdicom writes an arriving C-STORE data set into (STORE_RECV_CHUNKED_DATASET: the
    data set streams to disk, never into memory): a file in the spool folder that stops growing
    at the size limit and remembers that it was too large."""

    def __init__(self, folder: Path, limit: int):
        fd, self.name = tempfile.mkstemp(prefix=".", suffix=".part", dir=folder)
        os.fchmod(fd, 0o640)  # readable by the other doseflow services (same user or group)
        self.file = os.fdopen(fd, "wb")
        self.limit, self.size, self.too_large = limit, 0, False

    def write(self, data) -> int:
        self.size += len(data)
        if self.size > self.limit:
            if not self.too_large:
                self.too_large = True
                self.file.truncate(0)  # the rest is read off the network and dropped
            return len(data)
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()


def stream_to_spool(folder: Path, limit: int) -> None:
    """Make pynetdicom write every received data set into a SpoolFile under `folder` (it asks for a
    NamedTemporaryFile(delete=False, mode="wb", suffix=".dcm") and uses .name, .write, .file)."""
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_spool_files(folder)
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = lambda *args, **kwargs: SpoolFile(folder, limit)


# A spool file this old belongs to no transfer in progress (the network timeout ends those
# within minutes): a receiver killed mid-transfer left it. Another receiver may share the root.
STALE_SPOOL_S = 24 * 3600


def remove_stale_spool_files(folder: Path, older_than_s: float = STALE_SPOOL_S) -> int:
    """Remove spool files left by a receiver that died mid-transfer; returns how many."""
    removed, now = 0, time.time()
    for entry in os.scandir(folder):
        if entry.name.endswith(".part") and entry.is_file(follow_symlinks=False) \
                and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    if removed:
        log.info("removed %d partial data set(s) left in %s by an interrupted receiver", removed, folder)
    return removed


def _open_folder(name: str, dir_fd: int, create: bool) -> int:
    """A folder inside `dir_fd`, never through a symbolic link (O_NOFOLLOW: a planted link
    raises ELOOP/ENOTDIR instead of leading out of the root)."""
    if create:
        try:
            os.mkdir(name, 0o750, dir_fd=dir_fd)
        except FileExistsError:
            pass
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _digest(name: str, dir_fd: int) -> Optional[str]:
    """SHA-256 of a regular file in `dir_fd` (read in chunks), None when it is absent."""
    try:
        with dicom.open_regular_at(name, dir_fd) as f:
            h = hashlib.sha256()
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            return h.hexdigest()
    except FileNotFoundError:
        return None


def place(spool_path: str, root: Path, study_name: str, file_name: str) -> Path:
    """Move the spooled file to `<root>/<study_name>/<file_name>`: fsynced, renamed within the
    root's file system, the folder fsynced; never through a symbolic link. When a different
    object already has that name (the same SOP Instance UID with other content), the new one is
    kept beside it as `<name>.<sha256 prefix>.dcm` and that path is returned; the same content
    again simply replaces it."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        spool_fd = _open_folder(SPOOL, root_fd, create=False)
        study_fd = None
        try:
            study_fd = _open_folder(study_name, root_fd, create=True)
            with open(spool_path, "rb") as f:
                os.fsync(f.fileno())
            name = file_name
            existing = _digest(file_name, study_fd)
            if existing is not None:
                new = _digest(os.path.basename(spool_path), spool_fd)
                if new != existing:
                    name = f"{file_name[:-len('.dcm')]}.{new[:12]}.dcm"
            os.rename(os.path.basename(spool_path), name, src_dir_fd=spool_fd, dst_dir_fd=study_fd)
            os.fsync(study_fd)  # the rename itself must survive a power cut
            return root / study_name / name
        finally:
            if study_fd is not None:
                os.close(study_fd)
            os.close(spool_fd)
    finally:
        os.close(root_fd)


def _sop_class_name(uid: str) -> str:
    name = UID(uid).name
    return name if name and name != uid else uid


class StoreHandler:
    """The C-STORE handler: check the spooled data set, move it to
    `<root>/<StudyInstanceUID>/<SOPInstanceUID>.dcm`, call `announce(path)` (which must raise
    unless the broker confirmed the message; it may return the object's correlation id, for the
    log), then answer Success."""

    def __init__(self, root: Path, announce: Callable[[str], Optional[str]]):
        self.root = Path(root)
        self.announce = announce

    def __call__(self, event) -> int:
        status = self._store(event)
        metrics.dicom_store(STATUS_NAMES.get(status, hex(status)))
        return status

    def _store(self, event) -> int:
        request = event.request
        sop_class = str(request.AffectedSOPClassUID)
        sop_uid = str(request.AffectedSOPInstanceUID).strip().rstrip("\x00")
        what = f"C-STORE of {_sop_class_name(sop_class)} from {event.assoc.requestor.ae_title}"
        spool = getattr(request, "_dataset_file", None)
        if not isinstance(spool, SpoolFile):
            log.error("%s failed: the data set was not spooled to disk", what)
            return OUT_OF_RESOURCES
        if spool.too_large:
            log.warning("%s refused: %d bytes, beyond the maximum object size of %d MB "
                        "(DOSEFLOW_RECEIVER_MAX_OBJECT_MB)", what, spool.size, spool.limit >> 20)
            return TOO_LARGE
        try:
            ds = dicom.parse_file(spool.name, header_only=True)
            study_uid = dicom.text(ds, "StudyInstanceUID")
            own_uid = ds.get("SOPInstanceUID")
        except dicom.InflationLimit as exc:
            log.warning("%s refused: %s", what, exc)
            return TOO_LARGE
        except Exception as exc:  # noqa: BLE001 - whatever the bytes make pydicom raise
            # The exception type only: a decoding message could quote element values.
            log.warning("%s refused: data set does not decode (%s)", what, type(exc).__name__)
            return CANNOT_UNDERSTAND
        if not own_uid or str(own_uid).strip().rstrip("\x00") != sop_uid:
            # Random bytes, or a data set that is not the object the command announces.
            log.warning("%s refused: the data set does not decode to the SOP instance announced", what)
            return CANNOT_UNDERSTAND
        try:
            path = place(spool.name, self.root, name_for_uid(study_uid, NO_STUDY_UID), name_for_uid(sop_uid) + ".dcm")
        except OSError as exc:
            log.error("C-STORE of %s failed: cannot write under %s (%s)", what, self.root, dicom.os_reason(exc))
            return OUT_OF_RESOURCES
        try:
            correlation_id = self.announce(str(path))
        except Exception as exc:
            # The file stays: the modality re-sends it and it is rewritten under the same name.
            log.error("%s failed: written to %s but not announced on the broker (%s: %s)",
                      what, path, type(exc).__name__, exc)
            return OUT_OF_RESOURCES
        log.info("received %s from %s: %s", _sop_class_name(sop_class), event.assoc.requestor.ae_title, path,
                 extra={"correlation_id": correlation_id} if isinstance(correlation_id, str) else None)
        return SUCCESS


class LimitedACSE(ACSE):
    """pynetdicom's association negotiation plus the receiver's limits: at most
    `max_associations` established associations, and `max_per_ae` per calling AE title; beyond
    them the request is rejected as transient, local limit exceeded (the modality retries)."""

    lock = threading.Lock()

    def __init__(self, assoc, limits: Limits):
        super().__init__(assoc)
        self.limits = limits

    def _negotiate_as_acceptor(self) -> None:
        calling = str(self.requestor.primitive.calling_ae_title).strip()
        with self.lock:
            others = [a for a in self.assoc.ae.active_associations
                      if a is not self.assoc and a.is_acceptor and a.is_established]
            same_ae = [a for a in others if str(a.requestor.ae_title).strip() == calling]
            if len(others) >= self.limits.max_associations or len(same_ae) >= self.limits.max_associations_per_ae:
                log.warning("association from %s (%s) rejected: %d associations open, %d from this AE "
                            "(limits %d and %d)", calling, self.assoc.requestor.address, len(others),
                            len(same_ae), self.limits.max_associations, self.limits.max_associations_per_ae)
                self.requestor.ae_title = calling
                self.send_reject(0x02, 0x03, 0x02)  # transient, service provider (presentation), local limit
                evt.trigger(self.assoc, evt.EVT_REJECTED, {})
                self.assoc.kill()
                return
            super()._negotiate_as_acceptor()


_opened_at: dict[int, float] = {}


def _on_connection(limits: Limits):
    def handle(event) -> None:
        assoc = event.assoc
        _opened_at[id(assoc)] = time.monotonic()
        assoc.acse = LimitedACSE(assoc, limits)
        # pynetdicom leaves an accepted socket blocking with no timeout: a peer that stops
        # mid-PDU would hold its thread and its association slot for ever.
        sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            sock.settimeout(limits.network_timeout_s)
        connections = len(assoc.ae.active_associations)
        if connections > 4 * limits.max_associations and sock is not None:
            log.warning("connection from %s dropped: %d connections open", event.address[0], connections)
            _shutdown(sock)
    return handle


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in recv (close would not)
    except OSError:
        pass


def drop_stalled(ae: AE, acse_timeout_s: float) -> int:
    """Drop every connection that has not completed its association request within the ACSE
    timeout (a peer that sent part of an A-ASSOCIATE-RQ and stopped); returns how many. Run
    periodically: a stalled peer otherwise holds a thread for ever."""
    now, dropped = time.monotonic(), 0
    for assoc in ae.active_associations:
        opened = _opened_at.get(id(assoc))
        if opened is None or assoc.is_established or assoc.is_released or assoc.is_aborted:
            continue
        if now - opened > acse_timeout_s:
            sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
            if sock is not None:
                log.warning("connection from %s dropped: no association within %g s (DOSEFLOW_RECEIVER_ACSE_TIMEOUT_S)",
                            assoc.requestor.address, acse_timeout_s)
                _shutdown(sock)
                dropped += 1
            _opened_at.pop(id(assoc), None)
    live = {id(a) for a in ae.active_associations}
    for key in [k for k in _opened_at if k not in live]:
        _opened_at.pop(key, None)
    return dropped


def application_entity(ae_title: str, allowed_calling_aes: Iterable[str] = (), limits: Limits = Limits()) -> AE:
    """The receiver's AE: the dose-relevant storage classes and Verification (C-ECHO, so a
    modality's "test connection" works); associations only from `allowed_calling_aes` when any
    are given; the timeouts of `limits`."""
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = limits.acse_timeout_s
    ae.dimse_timeout = limits.dimse_timeout_s
    ae.network_timeout = limits.network_timeout_s
    # Connections still negotiating count for pynetdicom's own limit: LimitedACSE counts the
    # established ones, so stalled peers cannot lock a modality out (they are dropped anyway).
    ae.maximum_associations = 4 * limits.max_associations
    for sop_class, syntaxes in STORAGE_CLASSES.items():
        ae.add_supported_context(sop_class, list(syntaxes))
    ae.add_supported_context(Verification)
    ae.require_calling_aet = list(allowed_calling_aes)
    return ae


def _log_rejected(event) -> None:
    log.warning("association from %s (%s) rejected", event.assoc.requestor.ae_title,
                event.assoc.requestor.address)


def start(ae: AE, port: int, handler: StoreHandler, limits: Limits = Limits(), host: str = "0.0.0.0"):
    """Listen in background threads, data sets spooled under the handler's root; returns the
    server (`.shutdown()` stops listening)."""
    stream_to_spool(handler.root / SPOOL, limits.max_object_bytes)
    return ae.start_server((host, port), block=False,
                           evt_handlers=[(evt.EVT_C_STORE, handler), (evt.EVT_REJECTED, _log_rejected),
                                         (evt.EVT_CONN_OPEN, _on_connection(limits))])
