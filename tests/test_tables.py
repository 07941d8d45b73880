"""The normalized report tables (services/writer/tables.py): the committed migration is exactly
what the DoseReport model generates, so the two never drift apart, and the rows the writer
inserts for real reports have exactly the columns of their tables."""
from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest

from services.extractors.routes import extract
from services.writer.tables import all_tables, child_rows, create_table_sql, study_row
from shared.report import DoseReport

MIGRATION = Path(__file__).resolve().parent.parent / "shared" / "migrations" / "002_report_tables.sql"
# Written by store.py next to study_row(): not report fields.
STUDY_EXTRA = {"warnings", "report", "updated_at"}


def migration_body() -> str:
    first, _, body = MIGRATION.read_text().partition("\n")
    assert first.startswith("--"), "the migration starts with a comment line saying it is generated"
    return body


def migration_columns() -> dict[str, list[str]]:
    """Table -> column names, in order, from the committed migration's CREATE TABLE statements."""
    tables = {}
    for name, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", migration_body(), flags=re.S):
        cols = []
        for line in body.split("\n"):
            line = line.strip().rstrip(",")
            if line and not line.startswith(("PRIMARY KEY", "FOREIGN KEY")):
                cols.append(line.split()[0])
        tables[name] = cols
    return tables


def test_the_committed_migration_is_what_the_report_model_generates():
    # `python -m services.writer.tables > ...` prints one more newline than the DDL ends with
    assert migration_body().rstrip("\n") == create_table_sql().rstrip("\n"), (
        "shared/report.py and shared/migrations/002_report_tables.sql differ: regenerate with "
        "`python -m services.writer.tables` (and add a new migration for an existing database)")


def test_the_migration_creates_the_study_table_and_every_child_table():
    assert set(migration_columns()) == {"study"} | {t.name for t in all_tables()}


def test_column_names_are_lower_case_report_field_names_with_units():
    cols = migration_columns()
    assert "ctdivol_mgy" in cols["ct_event"] and "dlp_mgycm" in cols["ct_event"]
    assert "dap_gym2" in cols["projection_event"]
    assert "dap_total_gym2" in cols["projection_plane"]
    assert "agd_mgy" in cols["mammography_event"]
    assert all(c == c.lower() for table in cols.values() for c in table)


@pytest.fixture(scope="module")
def reports() -> dict[str, DoseReport]:
    from tests.conftest import corpus_file

    return {name: extract(pydicom.dcmread(corpus_file(f"{name}.dcm")), "rdsr")
            for name in ("CT-RDSR-Toshiba_DoseCheck", "RF-RDSR-Philips_Allura", "MG-RDSR-Hologic_2D")}


@pytest.mark.parametrize("name", ["CT-RDSR-Toshiba_DoseCheck", "RF-RDSR-Philips_Allura", "MG-RDSR-Hologic_2D"])
def test_study_row_has_exactly_the_study_columns(reports, name):
    row = study_row(reports[name])
    assert set(row) == set(migration_columns()["study"]) - STUDY_EXTRA
    assert row["study_instance_uid"] == reports[name].study.study_instance_uid


@pytest.mark.parametrize("name", ["CT-RDSR-Toshiba_DoseCheck", "RF-RDSR-Philips_Allura", "MG-RDSR-Hologic_2D"])
def test_child_rows_have_exactly_their_tables_columns(reports, name):
    columns = migration_columns()
    rows = child_rows(reports[name])
    assert set(rows) == {t.name for t in all_tables()}
    for table, table_rows in rows.items():
        for row in table_rows:
            # the writer inserts a table's rows with the first row's keys: every row has them all
            assert list(row) == list(table_rows[0])
            assert set(row) == set(columns[table]), table


def test_ct_report_rows_carry_events_sources_and_dose_check_values(reports):
    report = reports["CT-RDSR-Toshiba_DoseCheck"]
    rows = child_rows(report)
    events = rows["ct_event"]
    assert len(events) == len(report.ct.events)
    assert [r["event_index"] for r in events] == list(range(len(events)))
    assert [r["ctdivol_mgy"] for r in events] == [e.ctdivol_mGy for e in report.ct.events]
    assert len(rows["ct_event_source"]) == sum(len(e.sources) for e in report.ct.events)
    assert all(r["study_instance_uid"] == report.study.study_instance_uid for r in rows["ct_event_source"])
    checked = [(i, e.dose_check) for i, e in enumerate(report.ct.events) if e.dose_check is not None]
    assert checked, "the Toshiba dose-check RDSR has dose check details"
    i, check = checked[0]
    assert events[i]["dose_check_dlp_alert_value_configured"] == check.dlp_alert_value_configured
    assert events[i]["dose_check_ctdivol_notification_value_mgy"] == check.ctdivol_notification_value_mGy
    assert rows["projection_event"] == [] and rows["mammography_event"] == []
    assert study_row(report)["ct_total_dlp_mgycm"] == report.ct.total_dlp_mGycm


def test_rf_report_rows_carry_planes_events_and_filters(reports):
    report = reports["RF-RDSR-Philips_Allura"]
    rows = child_rows(report)
    assert len(rows["projection_plane"]) == len(report.projection.planes)
    assert len(rows["projection_event"]) == len(report.projection.events)
    filters = [(i, j) for i, e in enumerate(report.projection.events) for j, _ in enumerate(e.filters)]
    assert filters, "the Allura events have filters"
    assert [(r["event_index"], r["filter_index"]) for r in rows["projection_event_filter"]] == filters
    assert rows["projection_event"][0]["dap_gym2"] == report.projection.events[0].dap_Gym2
    assert rows["ct_event"] == []
    # no CT or mammography section: their study columns are None, not 0
    row = study_row(report)
    assert row["ct_total_dlp_mgycm"] is None and row["mammography_accumulated_agd_mgy_left"] is None
