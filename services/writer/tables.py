"""The normalized tables a physicist queries with plain SQL, derived from the DoseReport model.

Each report section maps to one table; nested single objects become prefixed columns
(`dose_check_dlp_alert_value_mgycm`), lists become child tables keyed by the parent's position.
Column names are the report's field names in lower case (PostgreSQL folds unquoted names), so
`ct_event.ctdivol_mgy` is the report's `ct.events[i].ctdivol_mGy`.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, Optional, get_args, get_origin

from pydantic import BaseModel

from shared.report import (
    CtEvent,
    CtSource,
    DoseReport,
    Filter,
    MammographyEvent,
    ProjectionEvent,
    ProjectionPlane,
)


@dataclass
class Table:
    name: str
    model: type[BaseModel]
    parent_keys: tuple[str, ...]  # columns identifying the row's parent, before its own position
    position: Optional[str] = None  # this row's index among its siblings
    children: dict[str, "Table"] = field(default_factory=dict)  # list field -> child table


def _scalar_type(annotation) -> Optional[str]:
    args = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    base = args[0]
    if get_origin(base) is typing.Literal:
        return "text"
    return {str: "text", float: "double precision", int: "integer", bool: "boolean"}.get(base)


def _nested_model(annotation) -> Optional[type[BaseModel]]:
    for a in get_args(annotation) or (annotation,):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


# ISO text in the report, typed columns in the database so SQL can compare and filter them.
TEMPORAL = {"study_date": "date", "study_time": "time", "datetime_started": "timestamp",
            "start_of_xray_irradiation": "timestamp", "end_of_xray_irradiation": "timestamp"}


def columns(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """Column name -> SQL type for the model's scalar fields, nested objects flattened."""
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        if get_origin(info.annotation) is list:
            continue
        sql = _scalar_type(info.annotation)
        if sql == "text" and name in TEMPORAL:
            sql = TEMPORAL[name]
        if sql:
            out[(prefix + name).lower()] = sql
        elif (nested := _nested_model(info.annotation)) is not None:
            out.update(columns(nested, prefix + name + "_"))
    return out


def flatten(obj: Optional[BaseModel], model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if get_origin(info.annotation) is list:
            continue
        value = getattr(obj, name) if obj is not None else None
        if _scalar_type(info.annotation):
            out[(prefix + name).lower()] = value
        elif (nested := _nested_model(info.annotation)) is not None:
            out.update(flatten(value, nested, prefix + name + "_"))
    return out


STUDY_KEY = ("study_instance_uid",)

CT_EVENT = Table("ct_event", CtEvent, STUDY_KEY, "event_index",
                 {"sources": Table("ct_event_source", CtSource, STUDY_KEY + ("event_index",), "source_index")})
PROJECTION_PLANE = Table("projection_plane", ProjectionPlane, STUDY_KEY, "plane_index")
PROJECTION_EVENT = Table("projection_event", ProjectionEvent, STUDY_KEY, "event_index",
                         {"filters": Table("projection_event_filter", Filter, STUDY_KEY + ("event_index",),
                                           "filter_index")})
MAMMOGRAPHY_EVENT = Table("mammography_event", MammographyEvent, STUDY_KEY, "event_index")

# report section attribute -> list field -> table
SECTION_TABLES = {
    ("ct", "events"): CT_EVENT,
    ("projection", "planes"): PROJECTION_PLANE,
    ("projection", "events"): PROJECTION_EVENT,
    ("mammography", "events"): MAMMOGRAPHY_EVENT,
}


def all_tables() -> list[Table]:
    out = []

    def walk(t: Table):
        out.append(t)
        for child in t.children.values():
            walk(child)

    for t in SECTION_TABLES.values():
        walk(t)
    return out


def study_row(report: DoseReport) -> dict[str, Any]:
    """The `study` table row: study, patient_*, equipment, ct_* totals, mammography_* totals."""
    row = flatten(report.study, type(report.study))
    row.update(flatten(report.patient, type(report.patient), "patient_"))
    row.update(flatten(report.equipment, type(report.equipment)))
    from shared.report import Ct, Mammography

    row.update(flatten(report.ct, Ct, "ct_"))
    row.update(flatten(report.mammography, Mammography, "mammography_"))
    return row


def child_rows(report: DoseReport) -> dict[str, list[dict[str, Any]]]:
    """Rows for every child table, keyed by table name."""
    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in all_tables()}
    uid = report.study.study_instance_uid

    def emit(table: Table, items: list, keys: dict[str, Any]):
        for i, item in enumerate(items):
            row = dict(keys)
            row[table.position] = i
            row.update(flatten(item, table.model))
            rows[table.name].append(row)
            for field_name, child in table.children.items():
                emit(child, getattr(item, field_name), {**keys, table.position: i})

    for (section, list_field), table in SECTION_TABLES.items():
        sec = getattr(report, section)
        if sec is not None:
            emit(table, getattr(sec, list_field), {"study_instance_uid": uid})
    return rows


def create_table_sql() -> str:
    """DDL for the report tables (used to write the first migration; a test keeps them in step)."""
    from shared.report import Ct, Equipment, Mammography, Patient, Study

    study_cols = columns(Study)
    study_cols.update(columns(Patient, "patient_"))
    study_cols.update(columns(Equipment))
    study_cols.update(columns(Ct, "ct_"))
    study_cols.update(columns(Mammography, "mammography_"))
    lines = []
    body = ",\n".join(f"    {c} {t}" + (" PRIMARY KEY" if c == "study_instance_uid" else "")
                      for c, t in study_cols.items())
    lines.append(f"CREATE TABLE study (\n{body},\n    warnings jsonb NOT NULL DEFAULT '[]',\n"
                 "    report jsonb NOT NULL,\n    updated_at timestamptz NOT NULL DEFAULT now()\n);")
    for t in all_tables():
        keys = [f"    {k} {'text' if k == 'study_instance_uid' else 'integer'} NOT NULL" for k in t.parent_keys]
        keys.append(f"    {t.position} integer NOT NULL")
        cols = [f"    {c} {typ}" for c, typ in columns(t.model).items()]
        pk = ", ".join(t.parent_keys + (t.position,))
        if t.parent_keys == STUDY_KEY:
            fk = "    FOREIGN KEY (study_instance_uid) REFERENCES study ON DELETE CASCADE"
        else:
            parent = next(p for p in all_tables() if t in p.children.values())
            fk = (f"    FOREIGN KEY ({', '.join(t.parent_keys)}) REFERENCES {parent.name} "
                  f"({', '.join(parent.parent_keys + (parent.position,))}) ON DELETE CASCADE")
        lines.append(f"CREATE TABLE {t.name} (\n" + ",\n".join(keys + cols) +
                     f",\n    PRIMARY KEY ({pk}),\n{fk}\n);")
    return "\n\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m services.writer.tables > shared/migrations/...
    print(create_table_sql())
