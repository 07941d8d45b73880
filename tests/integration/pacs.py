"""Real test PACSes for the backfill tests: Orthanc (Debian package, a plain process with a test
config) and dcmtk's dcmqrscp (a weaker PACS), on free ports, each accepting only the test AE
titles (spec openrem-qr.md §7.2 B), with a throw-away storage folder; and the corpus study set
they are loaded with.

The study set is corpus objects with their StudyDate moved into January 2024 (so a 30-day window
holds them), and a few objects made from corpus files where the corpus has no such object: CT
images in an RDSR study, an MG and a DX image in studies that have an RDSR, and a fake PET
raw-data object (SOP class Raw Data, modality PT) in the Philips study.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.conftest import CORPUS, corpus_file

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DCMQRSCP = shutil.which("dcmqrscp")
RAW_DATA = "1.2.840.10008.5.1.4.1.1.66"
WINDOW = (dt.date(2024, 1, 1), dt.date(2024, 1, 30))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo(port: int, called: str, calling: str = "ECHOTEST") -> bool:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.connection_timeout = 2
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return False
    try:
        return getattr(assoc.send_c_echo(), "Status", None) == 0x0000
    finally:
        assoc.release()


def _wait_echo(proc: subprocess.Popen, port: int, called: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{called} exited: {log.read_text(errors='replace')[-2000:]}")
        if echo(port, called):
            return
        time.sleep(0.1)
    raise AssertionError(f"{called} did not answer C-ECHO: {log.read_text(errors='replace')[-2000:]}")


@dataclass
class TestPacs:
    kind: str
    ae_title: str
    port: int
    proc: subprocess.Popen
    folder: Path
    http_port: int = 0

    @property
    def node(self) -> str:
        return f"{self.ae_title}@127.0.0.1:{self.port}"

    def load(self, datasets: list[Dataset]) -> None:
        if self.kind == "orthanc":
            for ds in datasets:
                req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/instances", data=_bytes(ds),
                                             method="POST")
                urllib.request.urlopen(req, timeout=30).read()
        else:
            ae = AE(ae_title="LOADER")
            for uid in {ds.SOPClassUID for ds in datasets}:
                ae.add_requested_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
            assoc = ae.associate("127.0.0.1", self.port, ae_title=self.ae_title)
            assert assoc.is_established
            try:
                for ds in datasets:
                    assert assoc.send_c_store(ds).Status == 0x0000
            finally:
                assoc.release()

    def stop(self) -> None:
        if self.proc.poll() is None:
            # A throw-away folder: SIGKILL is enough (SIGTERM costs Orthanc 2-3 s).
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def _bytes(ds: Dataset) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def start_orthanc(folder: Path, receiver_port: int, *, our_ae: str = "DOSEFLOW", limit_find: int = 0) -> TestPacs:
    if not os.path.exists(ORTHANC):
        if os.environ.get("CI"):
            pytest.fail("Orthanc is not installed and CI is set (scripts/bootstrap --services installs it)")
        pytest.skip("Orthanc not installed (apt-get install orthanc)")
    folder.mkdir(parents=True, exist_ok=True)
    port, http = free_port(), free_port()
    config = {
        "Name": "DOSEFLOWTEST", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
        "Plugins": [], "HttpServerEnabled": True, "HttpPort": http, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomServerEnabled": True, "DicomAet": "TESTPACS", "DicomPort": port,
        "DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowMove": False, "DicomAlwaysAllowGet": False,
        "DicomCheckModalityHost": True,
        # Only doseflow's receiver is known: query, retrieve and the move destination.
        "DicomModalities": {"doseflow": [our_ae, "127.0.0.1", receiver_port]},
        "DicomScuTimeout": 10, "DicomAssociationCloseDelay": 0,
        "LimitFindResults": limit_find, "LimitFindInstances": limit_find,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = folder / "orthanc.log"
    proc = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    pacs = TestPacs("orthanc", "TESTPACS", port, proc, folder, http)
    try:
        _wait_echo(proc, port, "TESTPACS", log)
    except BaseException:
        pacs.stop()
        raise
    return pacs


def start_dcmqrscp(folder: Path, receiver_port: int, *, move_destination: bool = True) -> TestPacs:
    if not DCMQRSCP:
        if os.environ.get("CI"):
            pytest.fail("dcmqrscp is not installed and CI is set")
        pytest.skip("dcmtk not installed")
    (folder / "db").mkdir(parents=True, exist_ok=True)
    port = free_port()
    hosts = "loader = (LOADER, localhost, 1)\n" + (
        f"doseflow = (DOSEFLOW, localhost, {receiver_port})\n" if move_destination else "")
    # Only the loader and doseflow's AE may associate (peers: dcmqrscp compares the host as it
    # resolves the caller, "localhost"), and only DOSEFLOW is a destination.
    peers = "loader, doseflow" if move_destination else "ANY"
    (folder / "dcmqrscp.cfg").write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        f"HostTable BEGIN\n{hosts}HostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nTESTQR {folder / 'db'} RW (200, 1024mb) {peers}\nAETable END\n")
    log = folder / "dcmqrscp.log"
    # Fork mode (the default): dcmtk 3.6.7's single-process mode crashes after the first release.
    proc = subprocess.Popen([DCMQRSCP, "-c", str(folder / "dcmqrscp.cfg")], stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    pacs = TestPacs("dcmqrscp", "TESTQR", port, proc, folder)
    try:
        deadline = time.monotonic() + 20
        while not echo(port, "TESTQR", calling="LOADER"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
    except BaseException:
        pacs.stop()
        raise
    return pacs


# --- the study set ---------------------------------------------------------------------------------


@dataclass
class Item:
    ds: Dataset
    dose: bool  # a dose object the backfill must retrieve from a PACS that answers everything
    label: str


def _redate(ds: Dataset, day: int) -> Dataset:
    ds.StudyDate = (WINDOW[0] + dt.timedelta(days=day - 1)).strftime("%Y%m%d")
    return ds


def _copy_into(src: str, study: Dataset, label: str, **changes) -> Dataset:
    """A corpus object re-filed into `study` as a new object of a new series."""
    ds = pydicom.dcmread(corpus_file(src))
    ds.StudyInstanceUID = study.StudyInstanceUID
    ds.StudyDate = study.StudyDate
    if "StudyTime" in study:
        ds.StudyTime = study.StudyTime
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[label, "series"])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[label, "instance"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for k, v in changes.items():
        setattr(ds, k, v)
    if "SOPClassUID" in changes:
        ds.file_meta.MediaStorageSOPClassUID = changes["SOPClassUID"]
    return ds


def study_set() -> list[Item]:
    items: list[Item] = []

    def add(name: str, day: int, dose: bool = True) -> Dataset:
        ds = _redate(pydicom.dcmread(corpus_file(name)), day)
        items.append(Item(ds, dose, name))
        return ds

    ct = add("CT-RDSR-Siemens_Flash-TAP-SS.dcm", 1)
    toshiba_ct = "toshiba/toshiba_cx_head_scanogram/IM00004.dcm"
    for k in (1, 2):  # CT images beside the RDSR: never retrieved
        items.append(Item(_copy_into(toshiba_ct, ct, f"flash-ct-{k}", Manufacturer="SIEMENS",
                                     ManufacturerModelName="SOMATOM Definition Flash", SeriesNumber=k,
                                     SeriesDescription="Thorax 1.0"), False, f"CT image {k} in the RDSR study"))
    for k in (1, 2, 3):
        add(f"CT-RDSR-Siemens-Multi-{k}.dcm", 3)
    for name in ("MG-Im-GE_Seno_1_ForPresentation.dcm", "MG-Im-GE_Seno_2_ForPresentation.dcm"):
        add(name, 5)
    add("MG-Im-GE_Seno_1_ForProcessing.dcm", 5, dose=False)  # the For Presentation copy carries the exposure
    mg_rdsr = add("MG-RDSR-Hologic_2D.dcm", 7)
    items.append(Item(_copy_into("MG-Im-GE_Seno_2_ForPresentation.dcm", mg_rdsr, "mg-beside-rdsr"), False,
                      "MG image in a study with an RDSR"))
    for k in (1, 2, 3):
        add(f"DX-Im-GE_XR220-{k}.dcm", 9)
    dx_rdsr = add("DX-RDSR-Canon_CXDI.dcm", 11)
    items.append(Item(_copy_into("DX-Im-GE_XR220-1.dcm", dx_rdsr, "dx-beside-rdsr"), False,
                      "DX image in a study with an RDSR"))
    philips = add("CT-SC-Philips_Brilliance16P.dcm", 13)
    items.append(Item(_copy_into("CT-SC-Philips_Brilliance16P.dcm", philips, "pet-raw", SOPClassUID=RAW_DATA,
                                 Modality="PT", SeriesDescription="PET RAW", SeriesNumber=900), False,
                      "fake PET raw data"))
    items.append(Item(_copy_into(toshiba_ct, philips, "philips-ct", Manufacturer="Philips",
                                 ManufacturerModelName="Brilliance 16P", SeriesNumber=2,
                                 SeriesDescription="Abdomen 5mm"), False, "CT image in the Philips study"))
    for path in sorted((CORPUS / "toshiba" / "toshiba_cx_head_scanogram").glob("*.dcm")):
        ds = _redate(pydicom.dcmread(path), 15)
        first_ct = ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and int(ds.InstanceNumber) == 1
        screen = ds.SeriesNumber == 9000
        items.append(Item(ds, first_ct or screen, f"toshiba {path.name}"))
    add("RF-RDSR-Siemens-Zee.dcm", 17)
    add("ESR_non-dose.dcm", 19, dose=False)
    add("CT-ESR-GE_Optima.dcm", 21)
    return items
