"""`doseflow backfill`: walk a date range on a PACS slice by slice, choose the dose objects of each
study and C-MOVE them to doseflow's own receiver, recording every decision (store.py).

The sequence per slice: study C-FINDs (one per modality where the PACS matches ModalitiesInStudy);
a capped answer splits the slice. Per study: series C-FIND, image C-FINDs in SR series, then in the
series the image fallbacks need, the choice (plan.py), the ledger check, the C-MOVEs. A study is
marked done only after its moves, so an interrupted run (Ctrl-C, SIGTERM, PACS outage, object
cap) resumes at the first study not done, and objects already moved are skipped as held.
"""
from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, TextIO

from doseflow.backfill import plan
from doseflow.backfill.plan import (EXCLUDED, FILTERED, HELD, NOT_DOSE, RETRIEVE, MoveResult, Node, Profile,
                                    Series, SeriesChoice, Slice)
from doseflow.backfill.scu import IncompleteAnswer, Pacs, PacsError, probe_profile
from doseflow.backfill.store import Record
from shared.dicom import iso_date, text

log = logging.getLogger(__name__)

COMPLETED, INTERRUPTED, OBJECT_CAP = "completed", "interrupted", "object_cap"


@dataclass
class Options:
    node: Node
    date_from: dt.date
    date_to: dt.date
    groups: tuple[str, ...]
    filters: plan.Filters = field(default_factory=plan.Filters)
    dry_run: bool = False
    pace_s: float = 1.0
    max_objects: int = 5000
    our_ae_title: str = "DOSEFLOW"
    profile_overrides: dict = field(default_factory=dict)
    reprobe: bool = False


class Progress:
    """One line on a terminal: the slice, the studies and the objects so far; silent otherwise."""

    def __init__(self, total_slices: int, stream: TextIO = sys.stderr):
        self.total, self.stream = total_slices, stream
        self.enabled = hasattr(stream, "isatty") and stream.isatty()
        self.slice_no, self.slice, self.studies, self.objects = 0, "", 0, 0

    def show(self) -> None:
        if self.enabled:
            width = 20
            filled = width * self.slice_no // max(self.total, 1)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] slice {self.slice_no}/{self.total} "
                              f"{self.slice:<24} studies {self.studies}  objects {self.objects}   ")
            self.stream.flush()

    def end(self) -> None:
        if self.enabled:
            self.stream.write("\n")


class Backfill:
    def __init__(self, record: Record, options: Options, stop: threading.Event, out: TextIO = sys.stdout,
                 progress: Optional[Progress] = None):
        self.record, self.o, self.stop, self.out = record, options, stop, out
        self.progress = progress
        self.profile = Profile()
        self.retrieved = 0
        self.failed = 0
        self.capped_slices = 0
        self.moved_ok = False
        self.unexplained = 0  # C-MOVEs failed with nothing sent before any success
        self.pacs = Pacs(options.node, options.our_ae_title, on_request=record.request, pace_s=options.pace_s,
                         should_stop=stop.is_set)

    # --- the run ----------------------------------------------------------------------------------

    def connect(self) -> None:
        self.pacs.open()
        self.pacs.echo()

    def choose_profile(self, slices: list[Slice]) -> None:
        stored = None if self.o.reprobe else self.record.profile(self.o.node)
        if stored is None:
            try:
                probed = probe_profile(self.pacs, slices)
            except IncompleteAnswer:
                probed = None  # a PACS capping even one study's series: no sure answer to keep
            if probed is not None:
                self.record.save_profile(self.o.node, probed)
                stored = probed
            else:
                log.warning("no study in the first days of the range to probe the PACS on: assuming the least")
        self.profile = (stored or Profile()).overridden(self.o.profile_overrides)
        self.pacs.max_answers = self.profile.max_answers

    def walk(self) -> str:
        """Every slice not done yet; returns the run's end status."""
        done = self.record.slices_done()
        todo = [s for s in plan.day_slices(self.o.date_from, self.o.date_to) if s not in done]
        if self.progress:
            self.progress.total = len(todo)
        while todo:
            if self.stop.is_set():
                return INTERRUPTED
            s = todo.pop(0)
            if self.progress:
                self.progress.slice_no += 1 if s.whole_day else 0
                self.progress.slice = str(s)
                self.progress.show()
            status = self.slice(s)
            if status == "split":
                halves = plan.split(s)
                if halves is None:
                    self.record.slice_finished(s, "capped")
                    self.capped_slices += 1
                    self.out.write(f"slice {s}: the PACS caps its answers even for one minute; not complete\n")
                    continue
                self.record.slice_finished(s, "split")
                todo[:0] = [h for h in halves if h not in done]  # a resumed run skips the parts done
            elif status != "done":
                return status
        return COMPLETED

    def slice(self, s: Slice) -> str:
        studies: dict[str, object] = {}
        for modality in plan.study_query_modalities(self.o.groups, self.profile):
            found = self.pacs.find_studies(s, modality)
            if plan.capped(len(found.answers), found.status, self.profile):
                return "split"
            for a in found.answers:
                uid = text(a, "StudyInstanceUID")
                if uid:
                    studies.setdefault(uid, a)
        already = self.record.studies_done()
        for uid, answer in studies.items():
            if uid in already:
                continue
            if self.stop.is_set():
                return INTERRUPTED
            status = self.study(uid, answer)
            if status != "done":
                return status
        self.record.slice_finished(s, "done", len(studies))
        return "done"

    # --- one study --------------------------------------------------------------------------------

    def study(self, uid: str, answer) -> str:
        try:
            return self._study(uid, answer)
        except IncompleteAnswer as exc:
            self.failed += 1
            self.record.study(uid, iso_date(text(answer, "StudyDate")), [], text(answer, "StudyDescription"),
                              "failed", str(exc), done=True)
            return "done"

    def _study(self, uid: str, answer) -> str:
        start = time.monotonic()
        date = iso_date(text(answer, "StudyDate"))
        description = text(answer, "StudyDescription")
        returned = [m.strip().upper() for m in (text(answer, "ModalitiesInStudy") or "").split("\\") if m.strip()]

        def finish(decision: str, reason: str, modalities=returned) -> str:
            self.record.study(uid, date, modalities, description, decision, reason, done=True,
                              elapsed_s=time.monotonic() - start)
            if self.progress:
                self.progress.studies += 1
                self.progress.show()
            return "done"

        refused = plan.description_refused(description, self.o.filters)
        if refused:
            return finish(FILTERED, refused)
        if returned and not plan.wanted_study(returned, self.o.groups):
            return finish(NOT_DOSE, f"modalities {'/'.join(returned)}: none requested")
        if not self.profile.series_station_name:
            refused = plan.station_refused(text(answer, "StationName"), self.o.filters)
            if refused:
                return finish(FILTERED, refused)
        series = self.pacs.find_series(uid)
        modalities = sorted({s.modality for s in series if s.modality})
        if not plan.wanted_study(modalities, self.o.groups):
            for s in series:
                self.record.series(uid, s, NOT_DOSE, "the study has no requested modality")
            return finish(NOT_DOSE, f"modalities {'/'.join(modalities) or '(none)'}: none requested", modalities)

        # SR series first: a dose report makes every image fallback unnecessary.
        choices = plan.triage(series, self.o.groups, self.o.filters, self.profile)
        inspected: dict[str, list] = {}
        dose_sr = False
        for s in series:
            c = choices.get(s.uid)
            if c and c.inspect:
                inspected[s.uid] = self.pacs.find_instances(uid, s.uid)
            if c and c.take == "whole":
                dose_sr = True
        for s in series:
            c = choices.get(s.uid)
            if c and c.take == "dose_sr":
                verdicts = plan.instances_to_take(c, inspected[s.uid], self.profile, set())
                dose_sr = dose_sr or any(d == RETRIEVE for _, d, _ in verdicts)
        choices = plan.choose(series, choices, dose_sr, self.o.groups, self.profile)
        for s in series:
            c = choices[s.uid]
            if c.inspect and s.uid not in inspected:
                inspected[s.uid] = self.pacs.find_instances(uid, s.uid, first_only=c.inspect == "first")
        classes = {i.sop_class for found in inspected.values() for i in found if i.sop_class}

        # Decisions, the ledger check, then the moves.
        moves: list[tuple[Series, SeriesChoice, list]] = []
        for s in series:
            c = choices[s.uid]
            self.record.series(uid, s, c.decision, c.reason)
            if c.decision != RETRIEVE:
                continue
            if c.take == "whole":
                moves.append((s, c, []))
                continue
            verdicts = plan.instances_to_take(c, inspected.get(s.uid, []), self.profile, classes)
            held = self.record.held([i.uid for i, d, _ in verdicts if d == RETRIEVE])
            final = [(i, HELD if d == RETRIEVE and i.uid in held else d, held.get(i.uid, r)) for i, d, r in verdicts]
            for i, d, r in final:
                self.record.instance(uid, s.uid, i, "would_retrieve" if d == RETRIEVE and self.o.dry_run else d, r)
            moves.append((s, c, final))
        wanted = sum(1 for _, c, f in moves for _, d, _ in f if d == RETRIEVE) + \
            sum(1 for _, c, f in moves if c.take == "whole")
        if not self.o.dry_run and wanted and self.retrieved + wanted > self.o.max_objects:
            self.record.study(uid, date, modalities, description, RETRIEVE, "left for the next run: object cap")
            self.out.write(f"object cap reached ({self.o.max_objects} objects this run; DOSEFLOW_BACKFILL_MAX_OBJECTS "
                           "or --max-objects): `doseflow backfill --resume` continues\n")
            return OBJECT_CAP
        for s, c, final in moves:
            if self.stop.is_set():
                return INTERRUPTED
            self.move_series(uid, s, c, final)
            if not self.moved_ok and self.unexplained >= 2:
                raise self._destination_error(self.last_failure)
        if wanted:
            return finish(RETRIEVE, f"{wanted} dose object(s) " + ("would be retrieved" if self.o.dry_run else "chosen"),
                          modalities)
        held = any(d == HELD for _, _, f in moves for _, d, _ in f)
        return finish(HELD if held else NOT_DOSE, "every dose object already held" if held else
                      "no dose object: " + "; ".join(sorted({choices[s.uid].reason for s in series})[:3]), modalities)

    # --- moves ------------------------------------------------------------------------------------

    def move_series(self, study_uid: str, s: Series, c: SeriesChoice, final: list) -> None:
        wanted = [i for i, d, _ in final if d == RETRIEVE]
        if self.o.dry_run:
            for i in wanted:
                self.out.write(f"would retrieve {study_uid} series {s.number} {s.modality} {i.uid} "
                               f"({_class_name(i.sop_class)}): {c.reason}\n")
            if c.take == "whole":
                self.out.write(f"would retrieve {study_uid} series {s.number} {s.modality} (whole series): {c.reason}\n")
            return
        keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": s.uid}
        if c.take == "whole" or (c.inspect == "all" and wanted and len(wanted) == len(final)):
            result = self._move("SERIES", keys)
            if result.status == plan.SUCCESS:
                self._retrieved(study_uid, s.uid, wanted, c.reason)
                if c.take == "whole":
                    self.record.series(study_uid, s, "retrieved", f"{c.reason}; {result.completed} object(s) sent")
                    self.retrieved += result.completed
                return
            log.warning("C-MOVE of series %s: %s; retrying its objects once", s.uid, plan.status_text(result.status))
            retry = [i for i in wanted if not result.failed_uids or i.uid in result.failed_uids]
            if not retry:  # a whole SR series: once more as it is
                again = self._move("SERIES", keys)
                decision = "retrieved" if again.status == plan.SUCCESS else "failed"
                self.record.series(study_uid, s, decision, f"{c.reason}; C-MOVE {plan.status_text(again.status)}")
                self.failed += decision == "failed"
                return
            self._retrieved(study_uid, s.uid, [i for i in wanted if i not in retry], c.reason)
            for i in retry:
                self._move_instance(study_uid, s.uid, i, c.reason, retries=0, first=result)
            return
        for i in wanted:
            if self.stop.is_set():
                return
            self._move_instance(study_uid, s.uid, i, c.reason, retries=1)

    def _move_instance(self, study_uid: str, series_uid: str, inst, reason: str, retries: int,
                       first: Optional[MoveResult] = None) -> None:
        keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SOPInstanceUID": inst.uid}
        result = self._move("IMAGE", keys)
        if result.status != plan.SUCCESS and retries:
            result = self._move("IMAGE", keys)
        if result.status == plan.SUCCESS and result.failed == 0:
            self._retrieved(study_uid, series_uid, [inst], reason)
        else:
            self.failed += 1
            self.record.instance(study_uid, series_uid, inst, "failed",
                                 f"C-MOVE {plan.status_text(result.status)} (after one retry)")

    def _move(self, level: str, keys: dict) -> MoveResult:
        result = self.pacs.move(level, keys)
        self.last_failure = result
        if result.status == plan.DESTINATION_UNKNOWN:
            raise self._destination_error(result)
        if result.status is None:
            raise PacsError(f"the PACS {self.o.node} gave no answer to a C-MOVE (timeout or association aborted)",
                            outage=True)
        if result.status == plan.SUCCESS:
            self.moved_ok = True
        elif plan.destination_refused(result, self.moved_ok):
            # Orthanc answers an unknown destination, and an object our receiver refuses, with
            # 0xC000 and nothing sent: only a failure that a retry object by object does not
            # explain (move_series) is taken for a refused destination.
            self.unexplained += 1
        return result

    def _destination_error(self, result: MoveResult) -> PacsError:
        return PacsError(
            f"the PACS {self.o.node} refused to send to our AE title {self.o.our_ae_title!r} "
            f"({plan.status_text(result.status)}): configure {self.o.our_ae_title} (DOSEFLOW_RECEIVER_AE_TITLE) "
            "as a DICOM move destination on the PACS, with this host and the receiver's port (DOSEFLOW_RECEIVER_PORT)"
            + ("; or our receiver refused every object so far (its log says)" if result.status != plan.DESTINATION_UNKNOWN
               else ""))

    def _retrieved(self, study_uid: str, series_uid: str, instances: list, reason: str) -> None:
        for i in instances:
            self.record.instance(study_uid, series_uid, i, "retrieved", reason)
        self.retrieved += len(instances)
        if self.progress:
            self.progress.objects = self.retrieved
            self.progress.show()


def _class_name(uid: Optional[str]) -> str:
    if not uid:
        return "SOP class not answered"
    from pydicom.uid import UID

    return UID(uid).name


def run(record: Record, options: Options, stop: threading.Event, resume: bool = False,
        out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The whole command; returns the exit status (0 completed, 1 objects failed or a slice left
    capped, 2 PACS or configuration error, 130 interrupted)."""
    progress = Progress(0, err)
    bf = Backfill(record, options, stop, out, progress)
    try:
        try:
            bf.connect()
        except PacsError as exc:
            err.write(f"doseflow backfill: {exc}\n")
            return 2
        if resume:
            record.resume_run(record.run_id)
        else:
            record.start_run(options.node, options.date_from, options.date_to, options.groups, options.filters,
                             options.dry_run)
        try:
            bf.choose_profile(plan.day_slices(options.date_from, options.date_to))
            status = bf.walk()
        except PacsError as exc:
            progress.end()
            record.finish_run(INTERRUPTED, str(exc))
            err.write(f"doseflow backfill: {exc}\n" + ("the run stopped here; `doseflow backfill --resume` continues\n"
                                                       if exc.outage else ""))
            return 2
        progress.end()
        record.finish_run(status, None if status == COMPLETED else status)
    finally:
        bf.pacs.close()
    counts = record.counts()
    req, inst = counts["requests"], counts["instances"]
    out.write(f"run {record.run_id}: {status}; studies {counts['studies']}; "
              f"C-FIND {req.get('C-FIND', 0)}, C-MOVE {req.get('C-MOVE', 0)}; objects "
              + ", ".join(f"{k} {v}" for k, v in sorted(inst.items())) + "\n")
    if status == INTERRUPTED:
        err.write("interrupted: `doseflow backfill --resume` continues where it stopped\n")
        return 130
    return 1 if bf.failed or bf.capped_slices else 0
