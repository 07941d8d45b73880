"""The Toshiba builder's per-study state in PostgreSQL (migration 003)."""
from __future__ import annotations

from typing import Optional

import psycopg
from psycopg.types.json import Jsonb

from services.toshiba_builder.study import Collected


def collect_object(conn: psycopg.Connection, obj: Collected) -> bool:
    """Keep one object for its study (one transaction). A new object re-opens a study that was
    already built, skipped or failed, so it is built again with everything; the same object
    again changes nothing — except for a failed study, which a re-delivery (a replay) re-opens."""
    with conn.transaction():
        conn.execute("INSERT INTO toshiba_study (study_instance_uid) VALUES (%s) ON CONFLICT DO NOTHING",
                     (obj.study_instance_uid,))
        new = conn.execute(
            "INSERT INTO toshiba_object (sop_instance_uid, study_instance_uid, path, kind, collected)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sop_instance_uid) DO NOTHING RETURNING 1",
            (obj.sop_instance_uid, obj.study_instance_uid, obj.path, obj.kind, Jsonb(obj.model_dump(mode="json"))),
        ).fetchone() is not None
        conn.execute(
            "UPDATE toshiba_study SET last_seen = now(), status = 'collecting', reason = NULL"
            " WHERE study_instance_uid = %s AND (%s OR status = 'failed' OR status = 'collecting')",
            (obj.study_instance_uid, new))
    return new


def claim_due_study(conn: psycopg.Connection, quiet_seconds: float, study: Optional[str] = None) -> Optional[str]:
    """Lock one study that has been quiet long enough and is not waiting out a retry (caller
    holds the transaction); other builders skip it, so each study is built by one of them.
    `study`: that one if it is still collecting, quiet or not, retry due or not (the in-process
    import at the end of its input, where there is no later to wait for)."""
    if study is not None:
        row = conn.execute("SELECT study_instance_uid FROM toshiba_study WHERE status = 'collecting'"
                           " AND study_instance_uid = %s FOR UPDATE SKIP LOCKED", (study,)).fetchone()
        return row[0] if row else None
    row = conn.execute(
        "SELECT study_instance_uid FROM toshiba_study WHERE status = 'collecting'"
        " AND last_seen <= now() - make_interval(secs => %s) AND (retry_after IS NULL OR retry_after <= now())"
        " ORDER BY last_seen LIMIT 1 FOR UPDATE SKIP LOCKED", (quiet_seconds,)).fetchone()
    return row[0] if row else None


def study_objects(conn: psycopg.Connection, study_uid: str) -> list[Collected]:
    rows = conn.execute("SELECT collected FROM toshiba_object WHERE study_instance_uid = %s"
                        " ORDER BY received_at, sop_instance_uid", (study_uid,)).fetchall()
    return [Collected.model_validate(r[0]) for r in rows]


def built_uids(conn: psycopg.Connection, study_uid: str) -> set[str]:
    row = conn.execute("SELECT built_sop_instance_uids FROM toshiba_study WHERE study_instance_uid = %s",
                       (study_uid,)).fetchone()
    return set(row[0]) if row else set()


def mark(conn: psycopg.Connection, study_uid: str, status: str, reason: str,
         built_uid: Optional[str] = None) -> None:
    conn.execute(
        "UPDATE toshiba_study SET status = %s, reason = %s, builds = builds + 1, attempts = 0, retry_after = NULL,"
        " built_at = CASE WHEN %s = 'built' THEN now() ELSE built_at END,"
        " built_sop_instance_uids = CASE WHEN %s::text IS NULL OR %s::text = ANY(built_sop_instance_uids)"
        "   THEN built_sop_instance_uids ELSE built_sop_instance_uids || %s::text END"
        " WHERE study_instance_uid = %s",
        (status, reason, status, built_uid, built_uid, built_uid, study_uid))


# A deployment fault is retried after 5 s, 10 s, 20 s ... up to 10 minutes.
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 600.0


def postpone(conn: psycopg.Connection, study_uid: str, reason: str) -> float:
    """Set a study aside after a deployment fault (caller holds the transaction): it stays
    `collecting` and is claimed again after a backoff; returns the delay in seconds."""
    attempts = conn.execute(
        "UPDATE toshiba_study SET attempts = attempts + 1, reason = %s WHERE study_instance_uid = %s"
        " RETURNING attempts", (reason, study_uid)).fetchone()[0]
    delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempts - 1))
    conn.execute("UPDATE toshiba_study SET retry_after = now() + make_interval(secs => %s)"
                 " WHERE study_instance_uid = %s", (delay, study_uid))
    return delay


def legacy_study_counts(conn: psycopg.Connection) -> dict[str, int]:
    """For `doseflow status`: legacy studies still collecting (waiting to be quiet, or for a
    retry) and studies that ended with images only, no dose summary page."""
    counts = dict(conn.execute(
        "SELECT status, count(*) FROM toshiba_study WHERE status IN ('collecting', 'no_summary') GROUP BY status"
    ).fetchall())
    return {"waiting": counts.get("collecting", 0), "without_summary": counts.get("no_summary", 0)}
