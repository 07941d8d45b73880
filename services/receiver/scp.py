"""The DICOM C-STORE receiver's pieces: what it accepts, where an object goes, how it is written,
and the C-STORE handler that writes, announces, and only then answers Success.

A modality retries a C-STORE that did not end in Success, so the handler answers Success only
once the object is safely on disk (written under a temporary name, fsynced, renamed) and its
ObjectReceived message was confirmed by the broker. Anything less is a failure status, and the
modality keeps the object.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
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
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from shared import dicom, metrics

log = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # could not write or announce: the modality should retry later
CANNOT_UNDERSTAND = 0xC000  # the data set does not decode
STATUS_NAMES = {SUCCESS: "success", OUT_OF_RESOURCES: "out_of_resources", CANNOT_UNDERSTAND: "cannot_understand"}

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


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent, the old file, or the whole new
    file — never a partial one, even after a crash: write a temporary file in the same folder,
    fsync it, rename it over `path`, fsync the folder."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        # Readable by the other doseflow services (same user or group), not by everyone.
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a power cut
    finally:
        os.close(dir_fd)


def _sop_class_name(uid: str) -> str:
    name = UID(uid).name
    return name if name and name != uid else uid


class StoreHandler:
    """The C-STORE handler: write the object under `root`, call `announce(path)` (which must
    raise unless the broker confirmed the message; it may return the object's correlation id,
    for the log), then answer Success."""

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
        sop_uid = str(request.AffectedSOPInstanceUID)
        calling_ae = event.assoc.requestor.ae_title
        try:
            study_uid = event.dataset.get("StudyInstanceUID")
            study_uid = str(study_uid).strip() if study_uid else None
        except Exception as exc:  # pydicom decodes lazily: any decoding error lands here
            # The exception type only: a decoding message could quote element values.
            log.warning("C-STORE of %s from %s refused: data set does not decode (%s)",
                        _sop_class_name(sop_class), calling_ae, type(exc).__name__)
            return CANNOT_UNDERSTAND
        path = object_path(self.root, study_uid, sop_uid)
        try:
            write_atomically(path, event.encoded_dataset(include_meta=True))
        except OSError as exc:
            log.error("C-STORE of %s from %s failed: cannot write %s (%s)", _sop_class_name(sop_class),
                      calling_ae, path, exc.strerror or type(exc).__name__)
            return OUT_OF_RESOURCES
        try:
            correlation_id = self.announce(str(path))
        except Exception as exc:
            # The file stays: the modality re-sends it and it is rewritten under the same name.
            log.error("C-STORE of %s from %s failed: written to %s but not announced on the broker (%s: %s)",
                      _sop_class_name(sop_class), calling_ae, path, type(exc).__name__, exc)
            return OUT_OF_RESOURCES
        log.info("received %s from %s: %s", _sop_class_name(sop_class), calling_ae, path,
                 extra={"correlation_id": correlation_id} if isinstance(correlation_id, str) else None)
        return SUCCESS


def application_entity(ae_title: str, allowed_calling_aes: Iterable[str] = ()) -> AE:
    """The receiver's AE: the dose-relevant storage classes and Verification (C-ECHO, so a
    modality's "test connection" works); associations only from `allowed_calling_aes` when any
    are given."""
    ae = AE(ae_title=ae_title)
    for sop_class, syntaxes in STORAGE_CLASSES.items():
        ae.add_supported_context(sop_class, list(syntaxes))
    ae.add_supported_context(Verification)
    ae.require_calling_aet = list(allowed_calling_aes)
    return ae


def _log_rejected(event) -> None:
    log.warning("association from %s (%s) rejected", event.assoc.requestor.ae_title,
                event.assoc.requestor.address)


def start(ae: AE, port: int, handler: StoreHandler, host: str = "0.0.0.0"):
    """Listen in background threads; returns the server (`.shutdown()` stops listening)."""
    return ae.start_server((host, port), block=False,
                           evt_handlers=[(evt.EVT_C_STORE, handler), (evt.EVT_REJECTED, _log_rejected)])
