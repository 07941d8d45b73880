"""PostgreSQL: connections, migrations, and the embedded server for a first run.

With no DOSEFLOW_DATABASE_URL, `doseflow import` / `studies` / `status` start an embedded
PostgreSQL (pgserver: a real PostgreSQL from a wheel) with its data under the user's data
directory, so a first run needs no server.
"""
from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

_embedded = None  # keep the server object alive for the life of the process


def embedded_url(data_dir: Path) -> str:
    global _embedded
    if _embedded is None:
        import warnings

        # pgserver asks platformdirs for a runtime dir it does not need; the warning is noise.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

        pgdata = data_dir / "pgdata"
        pgdata.mkdir(parents=True, exist_ok=True)
        _embedded = pgserver.get_server(pgdata, cleanup_mode="stop")
        log.info("embedded PostgreSQL at %s", pgdata)
    return _embedded.get_uri()


def resolve_url(settings) -> str:
    return settings.database_url or embedded_url(settings.data_dir)


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url, **kwargs)


def migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("shared") / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(out)


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations not applied yet, each in its own transaction; safe to run from
    several processes at once (an advisory lock serialises them). Returns the names applied."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7423001)")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migration ("
                     " version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migration")}
        for version, name, sql in migration_files():
            if version in done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migration (version, name) VALUES (%s, %s)", (version, name))
            applied_now.append(name)
    for name in applied_now:
        log.info("applied migration %s", name)
    return applied_now
