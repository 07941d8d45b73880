"""The object ledger: how every ingested object ended (stored, ignored, failed, with reason)."""
from __future__ import annotations

from typing import Optional

import os

import psycopg


def storable_path(path: str) -> str:
    """The path as database text: a file name that is not valid UTF-8 (bytes shown by Python
    as surrogate escapes) is kept with its odd bytes written as \\xNN, and so is a NUL (which
    no file name holds, but a hostile message may, and PostgreSQL text cannot)."""
    return os.fsencode(path.replace("\x00", "\\x00")).decode("utf-8", "backslashreplace")


def storable_text(value: Optional[str]) -> Optional[str]:
    """Free text (a reason, a UID from a message) as database text: NUL becomes U+FFFD."""
    return None if value is None else value.replace("\x00", "\ufffd")


def record_outcome(conn: psycopg.Connection, *, path: str, status: str, stage: str,
                   reason: Optional[str] = None, route: Optional[str] = None,
                   sop_instance_uid: Optional[str] = None, study_instance_uid: Optional[str] = None) -> None:
    """Upsert the object's ledger row. A stored object is never marked ignored or failed later
    (a re-delivery that fails after the commit must not hide the stored study)."""
    conn.execute(
        """
        INSERT INTO object_ledger AS l (path, status, stage, reason, route, sop_instance_uid,
                                        study_instance_uid)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (path) DO UPDATE SET
            status = EXCLUDED.status, stage = EXCLUDED.stage, reason = EXCLUDED.reason,
            route = COALESCE(EXCLUDED.route, l.route),
            sop_instance_uid = COALESCE(EXCLUDED.sop_instance_uid, l.sop_instance_uid),
            study_instance_uid = COALESCE(EXCLUDED.study_instance_uid, l.study_instance_uid),
            updated_at = now()
        WHERE l.status <> 'stored' OR EXCLUDED.status = 'stored'
        """,
        (storable_path(path), status, storable_text(stage), storable_text(reason), storable_text(route),
         storable_text(sop_instance_uid), storable_text(study_instance_uid)),
    )


def ledger_totals(conn: psycopg.Connection) -> dict[str, int]:
    totals = {"stored": 0, "ignored": 0, "failed": 0}
    for status, n in conn.execute("SELECT status, count(*) FROM object_ledger GROUP BY status"):
        totals[status] = n
    return totals
