"""Persisting reports and outcomes: one transaction per report, idempotent.

A report is stored as its object's row in `source_object`; the study's report is then
re-assembled from all its objects (services/writer/assembly.py) and the study's normalized rows are
replaced, all in the same transaction, under a per-study advisory lock, so several writers
racing on one study serialise and build it once. The same object delivered again changes
nothing.
"""
from __future__ import annotations

import datetime
import functools
from typing import Optional

import psycopg
from psycopg.types.json import Jsonb

from services.audit.config import load_config
from services.audit.indices import AuditConfig, enrich
from services.audit.water_equivalent import Measurement
from services.writer import tables
from services.writer.assembly import assemble
from shared.ledger import record_outcome, storable_path
from shared.messages import ImageMeasured
from shared.outcome import Failed
from shared.report import DoseReport
from shared import routes


def store_report(conn: psycopg.Connection, report: DoseReport, path: str) -> bool:
    """Store one object's report and rebuild its study. Returns False when the object was
    already stored (nothing changed). Commits before returning. Raises Failed (its ledger row
    committed) when another file already stored this SOP Instance UID with other content — a
    device reusing a UID, or a second version of an object: the first stays, nothing is merged."""
    uid = report.study.study_instance_uid
    source = report.sources[0]
    content = report.model_dump(mode="json")
    conflict = None
    # Pipeline mode: statements whose results are not needed before the next one goes out
    # (the lock, the delete, every insert, the ledger row, the commit) travel together; only
    # the source row's insert and the study's reports wait for an answer. Three round trips a
    # report instead of one per statement (issue 18).
    with conn.pipeline(), conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (uid,))
        new = conn.execute(
            "INSERT INTO source_object (sop_instance_uid, study_instance_uid, route, sop_class_uid, path, report)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (sop_instance_uid) DO NOTHING RETURNING 1",
            (source.sop_instance_uid, uid, source.route, source.sop_class_uid, storable_path(path),
             Jsonb(content)),
        ).fetchone() is not None
        if new:
            rebuild_study(conn, uid)
        else:
            conflict = _conflict(conn, source.sop_instance_uid, uid, storable_path(path), content)
        record_outcome(conn, path=path, status="failed" if conflict else "stored", stage="writer",
                       route=source.route, reason=conflict or (None if new else "already stored (same SOP Instance UID)"),
                       sop_instance_uid=source.sop_instance_uid, study_instance_uid=uid)
    if conflict:
        raise Failed(conflict)
    return new


def _conflict(conn: psycopg.Connection, sop_uid: str, study_uid: str, path: str, content: dict) -> Optional[str]:
    """Why an object whose SOP Instance UID is stored already cannot be the same object, or None."""
    row = conn.execute("SELECT study_instance_uid, path, report FROM source_object WHERE sop_instance_uid = %s",
                       (sop_uid,)).fetchone()
    if row is None or row[1] == path or (row[0] == study_uid and row[2] == content):
        return None  # the same file again, or an identical copy
    return (f"SOP Instance UID {sop_uid} conflict: already stored in study {row[0]} from {row[1]}; this object "
            f"(study {study_uid}) has other content, so it was not stored (kept as received)")


def rebuild_study(conn: psycopg.Connection, uid: str) -> DoseReport:
    """Re-assemble the study from its objects and replace its normalized rows (caller holds
    the transaction and the study lock)."""
    rows = conn.execute("SELECT report FROM source_object WHERE study_instance_uid = %s ORDER BY arrival",
                        (uid,)).fetchall()
    merged = enrich(assemble([DoseReport.model_validate(r[0]) for r in rows]), audit_config(),
                    image_measurements(conn, uid))
    conn.execute("DELETE FROM study WHERE study_instance_uid = %s", (uid,))
    study = tables.study_row(merged)
    study["warnings"] = Jsonb(merged.warnings)
    study["report"] = Jsonb(merged.model_dump(mode="json"))
    _insert(conn, "study", [study])
    for table, table_rows in tables.child_rows(merged).items():
        _insert(conn, table, table_rows)
    return merged


def store_measurement(conn: psycopg.Connection, measured: ImageMeasured) -> bool:
    """Keep one CT image's Dw and, when the study's dose report is stored already, rebuild the
    study so its events take their Dw and SSDE from the images (when the report comes later,
    its own rebuild reads the rows). Same lock and transaction as `store_report`; the same image
    again changes nothing. Returns False when the image was measured before."""
    uid = measured.study_instance_uid
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (uid,))
        new = conn.execute(
            "INSERT INTO ct_image_measurement (sop_instance_uid, study_instance_uid, series_instance_uid,"
            " irradiation_event_uid, z_mm, dw_mm, area_mm2, mean_hu, edge_share, measure_ms, path)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (sop_instance_uid) DO NOTHING"
            " RETURNING 1",
            (measured.sop_instance_uid, uid, measured.series_instance_uid, measured.irradiation_event_uid,
             measured.z_mm, measured.dw_mm, measured.area_mm2, measured.mean_hu, measured.edge_share,
             measured.measure_ms, storable_path(measured.path)),
        ).fetchone() is not None
        if new and conn.execute("SELECT 1 FROM study WHERE study_instance_uid = %s", (uid,)).fetchone():
            rebuild_study(conn, uid)
        record_outcome(conn, path=measured.path, status="stored", stage="writer", route=routes.CT_DW.name,
                       reason=f"water-equivalent diameter {measured.dw_mm:.1f} mm measured" if new
                       else "already measured (same SOP Instance UID)",
                       sop_instance_uid=measured.sop_instance_uid, study_instance_uid=uid)
    return new


def image_measurements(conn: psycopg.Connection, uid: str) -> list[Measurement]:
    """The study's measured CT images (what `enrich` makes the events' Dw from)."""
    return [Measurement(*row) for row in conn.execute(
        "SELECT sop_instance_uid, series_instance_uid, irradiation_event_uid, z_mm, dw_mm"
        " FROM ct_image_measurement WHERE study_instance_uid = %s ORDER BY sop_instance_uid", (uid,))]


@functools.cache
def audit_config() -> AuditConfig:
    """The protocol mapping and reference data derived values are computed with, read once per
    process from the settings (the writer loads it at start, so a broken site file stops it there)."""
    from shared.settings import load

    return load_config(load())


def _insert(conn: psycopg.Connection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
    with conn.cursor() as cur:
        cur.executemany(sql, [[r[c] for c in cols] for r in rows])


def stored_studies(conn: psycopg.Connection, study_uid: Optional[str] = None, *,
                   date_from: Optional[datetime.date] = None, date_to: Optional[datetime.date] = None) -> list[dict]:
    """Stored study reports in study date order; `date_from`/`date_to` bound the study date
    (inclusive), and a study without a date is left out when either bound is given."""
    where, args = [], []
    if study_uid:
        where.append("study_instance_uid = %s")
        args.append(study_uid)
    if date_from is not None:
        where.append("study_date >= %s")
        args.append(date_from)
    if date_to is not None:
        where.append("study_date <= %s")
        args.append(date_to)
    sql = "SELECT report FROM study" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY study_date NULLS LAST, study_time NULLS LAST, study_instance_uid"
    return [r[0] for r in conn.execute(sql, args).fetchall()]


def stored_objects(conn: psycopg.Connection, study_uid: str) -> list[tuple[str, str, str]]:
    """(route, SOP Instance UID, path) of each object stored for the study: what another stage
    may know of the writer's tables (the Toshiba builder asks whether a study has its own RDSR)."""
    return [tuple(row) for row in conn.execute(
        "SELECT route, sop_instance_uid, path FROM source_object WHERE study_instance_uid = %s"
        " ORDER BY arrival", (study_uid,))]


def study_count(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM study").fetchone()[0]
