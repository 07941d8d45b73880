"""The services' database role may write rows but not change the schema (issue 7)."""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pydicom
import pytest

from services.extractors.routes import extract
from services.writer.store import store_report
from shared.database import migrate
from tests.conftest import corpus_file

pytestmark = pytest.mark.integration


def test_a_service_role_stores_reports_but_cannot_change_the_schema(database_url):
    # Given a database migrated by its owner, and a login role that is only a doseflow_service member
    with psycopg.connect(database_url) as owner:
        migrate(owner)
    role = "doseflow_app_" + uuid.uuid4().hex[:8]
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN IN ROLE doseflow_service")
    parts = urlsplit(database_url)
    app_url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
    try:
        with psycopg.connect(app_url) as app:
            # When the service starts (it checks migrations) and stores a report
            assert migrate(app) == []
            report = extract(pydicom.dcmread(corpus_file("CT-RDSR-Siemens-Continued-1.dcm")), "rdsr")
            assert store_report(app, report, "/data/incoming/a.dcm") is True
            # Then the rows are there, and schema changes are refused
            assert app.execute("SELECT count(*) FROM ct_event").fetchone()[0] == 2
            for ddl in ("CREATE TABLE intruder (x int)", "DROP TABLE study", "ALTER TABLE study ADD COLUMN x int",
                        "TRUNCATE object_ledger"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(ddl)
                app.rollback()
    finally:
        with psycopg.connect(database_url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")
