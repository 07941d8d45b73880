"""The backfill's DICOM side: one association with the PACS (Study Root C-FIND and C-MOVE), the
capability probe, and errors that name the setting to fix. No decisions are made here
(doseflow/backfill/plan.py), and nothing is recorded here: each request is reported to
`on_request` (store.py writes it down).
"""
from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind as FIND,
    StudyRootQueryRetrieveInformationModelMove as MOVE,
    Verification,
)

from doseflow.backfill.plan import PENDING, Instance, MoveResult, Node, Profile, Series, Slice, status_text
from shared.dicom import text

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10  # TCP connect and association negotiation
DIMSE_TIMEOUT_S = 120  # one C-FIND answer or C-MOVE response; a C-MOVE of a series sends pending responses
NETWORK_TIMEOUT_S = 300  # silence on an established association
MAX_ANSWERS = 100_000  # answers read from one C-FIND before the rest is cancelled (a bound on memory)


class IncompleteAnswer(Exception):
    """A series or image C-FIND the PACS cut short (a cap): its study cannot be judged."""


class PacsError(Exception):
    """The PACS cannot be used as configured; the message says what to fix. `outage`: the PACS went
    away (a resumable interruption) rather than refusing our configuration."""

    def __init__(self, message: str, outage: bool = False):
        super().__init__(message)
        self.outage = outage


@dataclass
class FindResult:
    answers: list[Dataset]
    status: Optional[int]  # final status; None: no final answer (timeout, abort)


RequestHook = Callable[[str, Optional[str], dict, Optional[int], dict, float], None]


class Pacs:
    """One association at a time with one PACS node, re-opened once when the PACS dropped it."""

    def __init__(self, node: Node, our_ae_title: str, on_request: Optional[RequestHook] = None,
                 pace_s: float = 0.0, should_stop: Callable[[], bool] = lambda: False):
        self.node, self.our_ae_title = node, our_ae_title
        self.on_request = on_request or (lambda *a: None)
        self.pace_s, self.should_stop = pace_s, should_stop
        self.ae = AE(ae_title=our_ae_title)
        for context in (FIND, MOVE, Verification):
            self.ae.add_requested_context(context)
        self.ae.acse_timeout = CONNECT_TIMEOUT_S
        self.ae.connection_timeout = CONNECT_TIMEOUT_S
        self.ae.dimse_timeout = DIMSE_TIMEOUT_S
        self.ae.network_timeout = NETWORK_TIMEOUT_S
        self.assoc = None
        self._last_request = 0.0
        self.max_answers = 0  # the profile's cap, once known

    def _complete(self, level: str, found: FindResult) -> list[Dataset]:
        if found.status in (0xFE00, 0xA700) or (self.max_answers and len(found.answers) >= self.max_answers):
            raise IncompleteAnswer(f"the PACS cut the {level} answer short at {len(found.answers)} "
                                   f"({status_text(found.status)}): this study cannot be judged completely")
        return found.answers

    # --- association ------------------------------------------------------------------------------

    def _reachable(self) -> None:
        try:
            with socket.create_connection((self.node.host, self.node.port), timeout=CONNECT_TIMEOUT_S):
                pass
        except OSError as exc:
            raise PacsError(f"cannot reach the PACS {self.node} ({exc.strerror or type(exc).__name__}): check the "
                            "host and port in --pacs / DOSEFLOW_BACKFILL_NODES, and that it listens", outage=True) from None

    def open(self) -> None:
        self._reachable()
        assoc = self.ae.associate(self.node.host, self.node.port, ae_title=self.node.ae_title)
        if assoc.is_established:
            self.assoc = assoc
            return
        if assoc.is_rejected:
            rsp = assoc.acceptor.primitive
            reason = getattr(rsp, "reason_str", "") or ""
            diag = getattr(rsp, "result_str", "") or ""
            if getattr(rsp, "source", None) == 1 and getattr(rsp, "diagnostic", None) == 7:
                raise PacsError(f"the PACS {self.node} rejected the called AE title {self.node.ae_title!r}: "
                                "correct the AE title in --pacs / DOSEFLOW_BACKFILL_NODES")
            if getattr(rsp, "source", None) == 1 and getattr(rsp, "diagnostic", None) == 3:
                raise PacsError(self._not_known(f"rejected our calling AE title ({diag} {reason})".strip()))
            raise PacsError(f"the PACS {self.node} rejected the association ({diag} {reason}): check the called AE "
                            f"title in --pacs and that it knows our AE title {self.our_ae_title!r} "
                            "(DOSEFLOW_RECEIVER_AE_TITLE)")
        raise PacsError(f"the PACS {self.node} aborted the association request: check that it knows our AE title "
                        f"{self.our_ae_title!r} (DOSEFLOW_RECEIVER_AE_TITLE) and the called AE title in --pacs",
                        outage=True)

    def _not_known(self, what: str) -> str:
        return (f"the PACS {self.node} {what}: register our AE title {self.our_ae_title!r} "
                "(DOSEFLOW_RECEIVER_AE_TITLE) on the PACS with this host and the receiver's port "
                "(DOSEFLOW_RECEIVER_PORT), or set DOSEFLOW_RECEIVER_AE_TITLE to the AE title the PACS knows")

    def _ensure(self) -> None:
        if self.assoc is None or not self.assoc.is_established:
            self.open()

    def _drop(self) -> None:
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.abort()
        self.assoc = None

    def close(self) -> None:
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.release()
        self.assoc = None
        self.ae.shutdown()

    def _pace(self) -> None:
        wait = self.pace_s - (time.monotonic() - self._last_request)
        while wait > 0 and not self.should_stop():
            time.sleep(min(wait, 0.2))
            wait = self.pace_s - (time.monotonic() - self._last_request)

    # --- C-ECHO, C-FIND, C-MOVE -------------------------------------------------------------------

    def echo(self) -> None:
        start = time.monotonic()
        self._ensure()
        status = self.assoc.send_c_echo()
        code = status.get("Status") if status is not None else None
        self.on_request("C-ECHO", None, {}, code, {}, time.monotonic() - start)
        if code is None:
            raise PacsError(f"the PACS {self.node} did not answer a C-ECHO: {self._not_known('may not know us')}",
                            outage=True)

    def find(self, level: str, keys: dict) -> FindResult:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        for k, v in keys.items():
            setattr(ds, k, v)
        start = time.monotonic()
        for attempt in (0, 1):
            answers, final = [], None
            self._pace()
            self._ensure()
            try:
                for status, ident in self.assoc.send_c_find(ds, FIND):
                    code = status.get("Status") if status is not None else None
                    if code in PENDING:
                        if ident is not None and len(answers) < MAX_ANSWERS:
                            answers.append(ident)
                    else:
                        final = code
            finally:
                self._last_request = time.monotonic()
            if final is None and attempt == 0 and not self.should_stop():
                # No final status: the association dropped, or (seen under load with pynetdicom 3)
                # the answer went astray. A C-FIND can be asked again on a fresh association.
                log.warning("no final answer to a C-FIND (%d answers so far); asking again on a new association",
                            len(answers))
                self._drop()
                continue
            break
        self.on_request("C-FIND", level, _loggable(keys), final, {"answers": len(answers)}, time.monotonic() - start)
        if final is None:
            if not answers and (self.assoc is None or not self.assoc.is_established):
                raise PacsError(self._not_known("aborted our C-FIND (a PACS does so for a calling AE title it does not "
                                                "know, or when it fails)"), outage=True)
            raise PacsError(f"the PACS {self.node} gave no answer to a C-FIND ({status_text(None)})", outage=True)
        if final in (0xA700, 0xFE00, 0x0000) or answers:
            return FindResult(answers, final)
        raise PacsError(f"the PACS {self.node} refused a {level} C-FIND with {status_text(final)}: "
                        + ("it may not allow queries from our AE title " if final in (0xA900, 0xC000, 0x0122, 0x0124) else "")
                        + f"{self.our_ae_title!r} (DOSEFLOW_RECEIVER_AE_TITLE)")

    def move(self, level: str, keys: dict) -> MoveResult:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        for k, v in keys.items():
            setattr(ds, k, v)
        start = time.monotonic()
        result = MoveResult(status=None)
        self._pace()
        self._ensure()
        try:
            for status, ident in self.assoc.send_c_move(ds, self.our_ae_title, MOVE):
                code = status.get("Status") if status is not None else None
                result.completed = int(status.get("NumberOfCompletedSuboperations", result.completed) or 0) \
                    if status is not None else result.completed
                if code in PENDING:
                    continue
                result.status = code
                if status is not None:
                    result.failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                    result.warning = int(status.get("NumberOfWarningSuboperations", 0) or 0)
                if ident is not None and "FailedSOPInstanceUIDList" in ident:
                    value = ident.FailedSOPInstanceUIDList
                    result.failed_uids = [str(v) for v in (value if isinstance(value, (list, tuple)) or
                                                           type(value).__name__ == "MultiValue" else [value]) if v]
        finally:
            self._last_request = time.monotonic()
        self.on_request("C-MOVE", level, _loggable(keys), result.status,
                        {"completed": result.completed, "failed": result.failed, "warning": result.warning},
                        time.monotonic() - start)
        if result.status is None and (self.assoc is None or not self.assoc.is_established):
            self.assoc = None  # re-opened by the next request
        return result

    # --- queries the backfill uses ----------------------------------------------------------------

    def find_studies(self, s: Slice, modality: Optional[str]) -> FindResult:
        keys = {"StudyDate": s.study_date.strftime("%Y%m%d"), "StudyTime": s.study_time(), "StudyInstanceUID": "",
                "ModalitiesInStudy": modality or "", "StudyDescription": "", "StationName": "",
                "NumberOfStudyRelatedSeries": "", "SpecificCharacterSet": ""}
        return self.find("STUDY", keys)

    def find_series(self, study_uid: str) -> list[Series]:
        keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": "", "Modality": "", "SeriesNumber": "",
                "SeriesDescription": "", "StationName": "", "NumberOfSeriesRelatedInstances": "", "SOPClassUID": "",
                "SpecificCharacterSet": ""}
        out = []
        for a in self._complete("SERIES", self.find("SERIES", keys)):
            uid = text(a, "SeriesInstanceUID")
            if uid:
                out.append(Series(uid=uid, modality=(text(a, "Modality") or "").upper(), number=_int(a, "SeriesNumber"),
                                  description=text(a, "SeriesDescription"), station=text(a, "StationName"),
                                  instance_count=_int(a, "NumberOfSeriesRelatedInstances"),
                                  sop_class=text(a, "SOPClassUID")))
        return out

    def find_instances(self, study_uid: str, series_uid: str, first_only: bool = False) -> list[Instance]:
        """Every instance of a series, or its first (InstanceNumber 1, else 0, for old systems that
        count from 0, else all of them and the lowest number is taken by the caller)."""
        base = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SOPInstanceUID": "",
                "SOPClassUID": "", "InstanceNumber": ""}
        if first_only:
            for number in ("1", "0"):
                found = self._instances({**base, "InstanceNumber": number})
                if found:
                    return found
        keys = dict(base)
        keys["ConceptNameCodeSequence"] = [Dataset()]
        return self._instances(keys)

    def _instances(self, keys: dict) -> list[Instance]:
        out = []
        for a in self._complete("IMAGE", self.find("IMAGE", keys)):
            uid = text(a, "SOPInstanceUID")
            if uid:
                out.append(Instance(uid=uid, sop_class=text(a, "SOPClassUID"), number=_int(a, "InstanceNumber"),
                                    concept=_concept(a)))
        return out


def _int(ds: Dataset, keyword: str) -> Optional[int]:
    value = text(ds, keyword)
    try:
        return int(float(value.split("\\")[0])) if value else None
    except ValueError:
        return None


def _concept(ds: Dataset) -> Optional[tuple[str, str]]:
    try:
        seq = ds.get("ConceptNameCodeSequence")
        if seq:
            value, scheme = text(seq[0], "CodeValue"), text(seq[0], "CodingSchemeDesignator")
            if value:
                return value, scheme or ""
    except Exception:  # a malformed answer is an answer without a title
        return None
    return None


def _loggable(keys: dict) -> dict:
    """A request's keys as recorded: UIDs, dates, levels; sequences as their keyword only."""
    return {k: (v if isinstance(v, (str, int)) else "(sequence)") for k, v in keys.items() if v not in ("", None)}


# --- the capability probe --------------------------------------------------------------------------

PROBE_OTHER_MODALITIES = ("NM", "US", "MR", "OT")


def probe_profile(pacs: Pacs, slices: Iterable[Slice], max_slices: int = 31, max_studies: int = 5) -> Optional[Profile]:
    """Probe what the PACS answers, on the first study found in the run's first slices (at most
    `max_slices` study C-FINDs), and on the first SR series among the first `max_studies` studies
    (for the image-level answers in SR series). None when no study was found (nothing to probe on:
    the run uses a cautious profile and probes again next time)."""
    studies: list[Dataset] = []
    for i, s in enumerate(slices):
        if i >= max_slices or len(studies) >= max_studies:
            break
        studies += pacs.find_studies(s, None).answers[:max_studies - len(studies)]
    if not studies:
        return None
    study = studies[0]
    uid = text(study, "StudyInstanceUID")
    returned = [m.strip().upper() for m in (text(study, "ModalitiesInStudy") or "").split("\\") if m.strip()]
    series = pacs.find_series(uid)
    series_mods = sorted({s.modality for s in series if s.modality})
    present = returned or series_mods
    absent = next((m for m in PROBE_OTHER_MODALITIES if m not in present), "OT")
    matches = False
    if present:
        date = {"StudyDate": text(study, "StudyDate") or ""}
        hit = pacs.find("STUDY", {"StudyInstanceUID": uid, "ModalitiesInStudy": present[0], **date}).answers
        miss = pacs.find("STUDY", {"StudyInstanceUID": uid, "ModalitiesInStudy": absent, **date}).answers
        matches = bool(hit) and not miss
    sr = next((s for s in series if s.modality == "SR"), None)
    sr_study = uid
    for other in studies[1:]:
        if sr is not None:
            break
        sr_study = text(other, "StudyInstanceUID")
        sr = next((s for s in pacs.find_series(sr_study) if s.modality == "SR"), None) if sr_study else None
    sample_study, sample = (sr_study, sr) if sr is not None else (uid, series[0] if series else None)
    instances = pacs.find_instances(sample_study, sample.uid) if sample else []
    return Profile(
        matches_modalities_in_study=matches,
        returns_modalities_in_study=bool(returned),
        series_sop_class=any(s.sop_class for s in series),
        series_instance_count=any(s.instance_count is not None for s in series),
        series_station_name=any(s.station for s in series),
        series_description=any(s.description for s in series),
        # Without an SR series to try, assume it answers (most do; OpenREM #732 is the exception).
        image_level_in_sr=bool(instances) if sr is not None else True,
        image_sop_class=any(i.sop_class for i in instances),
        image_concept_name=any(i.concept for i in instances) if sr is not None else False,
    )
