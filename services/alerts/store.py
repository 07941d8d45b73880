"""Alerts in the database: evaluate a stored study, keep each new alert once, and write its
notifications to the outbox in the same transaction.

Idempotent: evaluating a study again (a re-delivered message, the same study published three
times, a continued RDSR) raises nothing already raised — the table's unique key is (study, rule,
rule version, level) — so a notification is written exactly once per alert, recipient and
channel.
"""
from __future__ import annotations

import hashlib
import datetime as dt
from typing import Optional

import psycopg
from psycopg.types.json import Jsonb

from services.alerts.evaluate import RaisedAlert, categories_of, device_matches, evaluate
from services.alerts.rules import LEVEL_ORDER, RuleSet, Subscription, ThresholdRule
from shared.report import DoseReport


def _report(row) -> DoseReport:
    return DoseReport.model_validate(row)


def patient_studies(conn: psycopg.Connection, pseudonym: Optional[str]) -> list[DoseReport]:
    if not pseudonym:
        return []
    rows = conn.execute("SELECT report FROM study WHERE patient_id_hash = %s", (pseudonym,)).fetchall()
    return [_report(r[0]) for r in rows]


def _longest_window(rules: RuleSet) -> int:
    return max((r.window_days for r in rules.active if isinstance(r, ThresholdRule) and r.window_days), default=0)


def evaluate_stored(conn: psycopg.Connection, study_instance_uid: str, rules: RuleSet) -> list[tuple[int, RaisedAlert]]:
    """Evaluate the stored study, and the same patient's later studies inside the longest
    window (their per-patient sums now include this one); store what is new. Returns the new
    alerts with their ids. Commits."""
    with conn.transaction():
        row = conn.execute("SELECT report FROM study WHERE study_instance_uid = %s",
                           (study_instance_uid,)).fetchone()
        if row is None:
            return []
        report = _report(row[0])
        # One evaluation per patient at a time: per-patient sums of two studies evaluated at
        # once must see each other, and their inserts must not deadlock.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))",
                     (report.patient.id_hash or study_instance_uid,))
        others = patient_studies(conn, report.patient.id_hash)
        targets = [report]
        window = _longest_window(rules)
        if window and report.study.study_date:
            last = (dt.date.fromisoformat(report.study.study_date) + dt.timedelta(days=window)).isoformat()
            targets += [o for o in others if o.study.study_instance_uid != study_instance_uid
                        and o.study.study_date and report.study.study_date <= o.study.study_date <= last]
        new = []
        for target in targets:
            for alert in evaluate(target, others, rules):
                alert_id = record(conn, alert, target, rules)
                if alert_id is not None:
                    new.append((alert_id, alert))
    return new


def record(conn: psycopg.Connection, alert: RaisedAlert, report: DoseReport, rules: RuleSet) -> Optional[int]:
    """Keep the alert unless it was raised before; a new alert gets its outbox rows. Returns the
    new alert's id, or None. Caller holds the transaction."""
    row = conn.execute(
        "INSERT INTO alert (study_instance_uid, rule_id, rule_version, level, title, source, details)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (study_instance_uid, rule_id, rule_version, level) DO NOTHING RETURNING id, raised_at",
        (alert.study_instance_uid, alert.rule_id, alert.rule_version, alert.level, alert.title, alert.source,
         Jsonb(alert.values))).fetchone()
    if row is None:
        return None
    alert_id, raised_at = row
    categories = categories_of(report, rules)
    for sub in rules.subscriptions:
        if not subscribed(sub, alert, report, categories):
            continue
        key = idempotency_key(alert, sub)
        conn.execute(
            "INSERT INTO notification (alert_id, subscription, channel, address, idempotency_key, payload)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING",
            (alert_id, sub.name, sub.channel, sub.address, key,
             Jsonb(payload(alert, alert_id, raised_at.isoformat(), report, key))))
    return alert_id


def subscribed(sub: Subscription, alert: RaisedAlert, report: DoseReport, categories: set[str]) -> bool:
    if LEVEL_ORDER[alert.level] < LEVEL_ORDER[sub.min_level]:
        return False
    if sub.rules and alert.rule_id not in sub.rules:
        return False
    if sub.modalities and report.study.modality not in sub.modalities:
        return False
    if sub.categories and not categories & set(sub.categories):
        return False
    return device_matches(sub.devices, report)


def idempotency_key(alert: RaisedAlert, sub: Subscription) -> str:
    """The same for every attempt to tell this recipient on this channel about this alert."""
    text = "\x1f".join([*map(str, alert.key), sub.name, sub.channel, sub.address])
    return "doseflow-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def payload(alert: RaisedAlert, alert_id: int, raised_at: str, report: DoseReport, key: str) -> dict:
    """What a recipient is told. Never a patient name or ID (nor their hashes): the study by its
    accession number, date and UID, the device, the rule and the values."""
    s, e = report.study, report.equipment
    return {
        "idempotency_key": key,
        "alert_id": alert_id,
        "raised_at": raised_at,
        "level": alert.level,
        "rule": {"id": alert.rule_id, "version": alert.rule_version, "title": alert.title, "source": alert.source},
        "values": alert.values,
        "study": {"study_instance_uid": s.study_instance_uid, "accession_number": s.accession_number,
                  "study_date": s.study_date, "modality": s.modality, "study_description": s.study_description},
        "device": {"station_name": e.station_name, "manufacturer": e.manufacturer, "model": e.model,
                   "institution_name": e.institution_name, "department": e.department},
    }


# --- reading and acknowledging -----------------------------------------------------------------


def list_alerts(conn: psycopg.Connection, study_instance_uid: Optional[str] = None) -> list[dict]:
    sql = ("SELECT a.id, a.study_instance_uid, a.rule_id, a.rule_version, a.level, a.title, a.details, a.raised_at,"
           " a.acknowledged_by, a.acknowledged_at,"
           " count(n.id) FILTER (WHERE n.status = 'delivered'), count(n.id) FILTER (WHERE n.status = 'pending'),"
           " count(n.id) FILTER (WHERE n.status = 'failed')"
           " FROM alert a LEFT JOIN notification n ON n.alert_id = a.id")
    args: list = []
    if study_instance_uid:
        sql += " WHERE a.study_instance_uid = %s"
        args.append(study_instance_uid)
    sql += " GROUP BY a.id ORDER BY a.id"
    out = []
    for (id_, uid, rule, version, level, title, details, raised, by, at, delivered, pending, failed) \
            in conn.execute(sql, args):
        out.append({"id": id_, "study_instance_uid": uid, "rule": rule, "rule_version": version, "level": level,
                    "title": title, "values": details, "raised_at": raised.isoformat(),
                    "acknowledged_by": by, "acknowledged_at": at.isoformat() if at else None,
                    "notifications": {"delivered": delivered, "pending": pending, "failed": failed}})
    return out


class UnknownAlert(LookupError):
    pass


def acknowledge(conn: psycopg.Connection, alert_id: int, by: str) -> dict:
    """Record who acknowledged the alert and when; an alert already acknowledged keeps its first
    acknowledgement. Returns {acknowledged_by, acknowledged_at, already}."""
    with conn.transaction():
        row = conn.execute("SELECT acknowledged_by, acknowledged_at FROM alert WHERE id = %s FOR UPDATE",
                           (alert_id,)).fetchone()
        if row is None:
            raise UnknownAlert(f"no alert with id {alert_id}")
        if row[0] is not None:
            return {"acknowledged_by": row[0], "acknowledged_at": row[1].isoformat(), "already": True}
        at = conn.execute("UPDATE alert SET acknowledged_by = %s, acknowledged_at = now() WHERE id = %s"
                          " RETURNING acknowledged_at", (by, alert_id)).fetchone()[0]
    return {"acknowledged_by": by, "acknowledged_at": at.isoformat(), "already": False}
