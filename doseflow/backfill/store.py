"""The backfill's record in PostgreSQL (migration 008): runs, slices, every request sent, and every
study, series and instance considered with its decision and reason. Each write commits at once,
so an interrupted run leaves an exact account to resume from."""
from __future__ import annotations

import datetime as dt
import json
from typing import Iterable, Optional

import psycopg
from psycopg.types.json import Jsonb

from doseflow.backfill.plan import Filters, Node, Profile, Slice


class Record:
    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.conn.autocommit = True
        self.run_id: Optional[int] = None

    # --- nodes ------------------------------------------------------------------------------------

    def profile(self, node: Node) -> Optional[Profile]:
        row = self.conn.execute("SELECT profile FROM backfill_node WHERE ae_title = %s AND host = %s AND port = %s",
                                (node.ae_title, node.host, node.port)).fetchone()
        return Profile.from_dict(row[0]) if row else None

    def save_profile(self, node: Node, profile: Profile) -> None:
        import dataclasses

        self.conn.execute(
            "INSERT INTO backfill_node (ae_title, host, port, profile) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (ae_title, host, port) DO UPDATE SET profile = EXCLUDED.profile, probed_at = now()",
            (node.ae_title, node.host, node.port, Jsonb(dataclasses.asdict(profile))))

    # --- runs -------------------------------------------------------------------------------------

    def start_run(self, node: Node, date_from: dt.date, date_to: dt.date, groups: Iterable[str], filters: Filters,
                  dry_run: bool) -> int:
        self.run_id = self.conn.execute(
            "INSERT INTO backfill_run (ae_title, host, port, date_from, date_to, modalities, filters, dry_run)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (node.ae_title, node.host, node.port, date_from, date_to, list(groups), Jsonb(filters.as_dict()),
             dry_run)).fetchone()[0]
        return self.run_id

    def resumable(self, node: Optional[Node]) -> Optional[dict]:
        """The latest run that did not complete (of this node when given)."""
        sql = ("SELECT id, ae_title, host, port, date_from, date_to, modalities, filters, dry_run, status"
               " FROM backfill_run WHERE status IN ('running', 'interrupted', 'object_cap') AND NOT dry_run")
        args: tuple = ()
        if node is not None:
            sql += " AND ae_title = %s AND host = %s AND port = %s"
            args = (node.ae_title, node.host, node.port)
        row = self.conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        keys = ("id", "ae_title", "host", "port", "date_from", "date_to", "modalities", "filters", "dry_run", "status")
        return dict(zip(keys, row))

    def resume_run(self, run_id: int) -> None:
        self.run_id = run_id
        self.conn.execute("UPDATE backfill_run SET status = 'running', reason = NULL, resumed_at = now(),"
                          " finished_at = NULL WHERE id = %s", (run_id,))

    def finish_run(self, status: str, reason: Optional[str] = None) -> None:
        self.conn.execute("UPDATE backfill_run SET status = %s, reason = %s, finished_at = now() WHERE id = %s",
                          (status, reason, self.run_id))

    # --- slices -----------------------------------------------------------------------------------

    def slices_done(self) -> set[Slice]:
        rows = self.conn.execute("SELECT study_date, time_from, time_to FROM backfill_slice WHERE run_id = %s"
                                 " AND status = 'done'", (self.run_id,))
        return {Slice(d, f, t) for d, f, t in rows}

    def slice_finished(self, s: Slice, status: str, studies: int = 0) -> None:
        self.conn.execute(
            "INSERT INTO backfill_slice (run_id, study_date, time_from, time_to, status, studies)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, study_date, time_from, time_to)"
            " DO UPDATE SET status = EXCLUDED.status, studies = EXCLUDED.studies, finished_at = now()",
            (self.run_id, s.study_date, s.time_from, s.time_to, status, studies))

    # --- requests ---------------------------------------------------------------------------------

    def request(self, command: str, level: Optional[str], keys: dict, status: Optional[int], counts: dict,
                elapsed_s: float) -> None:
        self.conn.execute(
            "INSERT INTO backfill_request (run_id, command, level, keys, status, answers, completed, failed, warning,"
            " elapsed_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self.run_id, command, level, Jsonb(keys), status, counts.get("answers"), counts.get("completed"),
             counts.get("failed"), counts.get("warning"), int(elapsed_s * 1000)))

    # --- studies, series, instances ---------------------------------------------------------------

    def studies_done(self) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT study_instance_uid FROM backfill_study WHERE run_id = %s AND done", (self.run_id,))}

    def study(self, uid: str, study_date: Optional[dt.date], modalities: list[str], description: Optional[str],
              decision: str, reason: str, done: bool = False, elapsed_s: Optional[float] = None) -> None:
        self.conn.execute(
            "INSERT INTO backfill_study (run_id, study_instance_uid, study_date, modalities, description, decision,"
            " reason, done, elapsed_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id, study_instance_uid) DO UPDATE SET decision = EXCLUDED.decision,"
            " reason = EXCLUDED.reason, done = EXCLUDED.done, modalities = EXCLUDED.modalities,"
            " elapsed_ms = COALESCE(EXCLUDED.elapsed_ms, backfill_study.elapsed_ms)",
            (self.run_id, uid, study_date, modalities, description, decision, reason, done,
             None if elapsed_s is None else int(elapsed_s * 1000)))

    def series(self, study_uid: str, s, decision: str, reason: str) -> None:
        self.conn.execute(
            "INSERT INTO backfill_series (run_id, series_instance_uid, study_instance_uid, modality, series_number,"
            " description, station_name, instances, sop_class_uid, decision, reason)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, series_instance_uid)"
            " DO UPDATE SET decision = EXCLUDED.decision, reason = EXCLUDED.reason",
            (self.run_id, s.uid, study_uid, s.modality, s.number, s.description, s.station, s.instance_count,
             s.sop_class, decision, reason))

    def instance(self, study_uid: str, series_uid: str, inst, decision: str, reason: str) -> None:
        self.conn.execute(
            "INSERT INTO backfill_instance (run_id, sop_instance_uid, series_instance_uid, study_instance_uid,"
            " sop_class_uid, instance_number, decision, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run_id, sop_instance_uid) DO UPDATE SET decision = EXCLUDED.decision,"
            " reason = EXCLUDED.reason",
            (self.run_id, inst.uid, series_uid, study_uid, inst.sop_class, inst.number, decision, reason))

    def held(self, sop_uids: list[str]) -> dict[str, str]:
        """Which of these objects doseflow already holds, and why: in the ledger (stored or
        ignored: a failed one is retrieved again), built into a legacy CT study, or retrieved by
        a backfill run (it may still be on its way through the pipeline)."""
        if not sop_uids:
            return {}
        out: dict[str, str] = {}
        for uid, status in self.conn.execute(
                "SELECT sop_instance_uid, status FROM object_ledger WHERE sop_instance_uid = ANY(%s)"
                " AND status IN ('stored', 'ignored')", (sop_uids,)):
            out[uid] = f"already held: {status} in the ledger"
        for (uid,) in self.conn.execute("SELECT sop_instance_uid FROM source_object WHERE sop_instance_uid = ANY(%s)",
                                        (sop_uids,)):
            out.setdefault(uid, "already held: stored")
        for (uid,) in self.conn.execute("SELECT sop_instance_uid FROM toshiba_object WHERE sop_instance_uid = ANY(%s)",
                                        (sop_uids,)):
            out.setdefault(uid, "already held: collected for a legacy CT study")
        for uid, run in self.conn.execute(
                "SELECT sop_instance_uid, min(run_id) FROM backfill_instance WHERE sop_instance_uid = ANY(%s)"
                " AND decision = 'retrieved' GROUP BY sop_instance_uid", (sop_uids,)):
            out.setdefault(uid, f"already retrieved by backfill run {run}")
        return out

    # --- summaries --------------------------------------------------------------------------------

    def counts(self) -> dict:
        requests = dict(self.conn.execute("SELECT command, count(*) FROM backfill_request WHERE run_id = %s"
                                          " GROUP BY command", (self.run_id,)).fetchall())
        decisions = dict(self.conn.execute("SELECT decision, count(*) FROM backfill_instance WHERE run_id = %s"
                                           " GROUP BY decision", (self.run_id,)).fetchall())
        studies = self.conn.execute("SELECT count(*) FROM backfill_study WHERE run_id = %s",
                                    (self.run_id,)).fetchone()[0]
        return {"requests": requests, "instances": decisions, "studies": studies}
