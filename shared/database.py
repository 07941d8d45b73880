"""PostgreSQL: connections, migrations, and the embedded server for a first run.

With no DOSEFLOW_DATABASE_URL, `doseflow import` / `studies` / `status` start an embedded
PostgreSQL (pgserver: a real PostgreSQL from a wheel) with its data under the user's data
directory, so a first run needs no server.
"""
from __future__ import annotations

import logging
import time
from importlib import resources
from pathlib import Path
from typing import Callable, TypeVar

import psycopg
import psycopg.conninfo
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from shared import lifecycle, metrics
from shared.lifecycle import ConfigurationError

log = logging.getLogger(__name__)
T = TypeVar("T")

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


# SQLSTATEs of a login the server refuses for good: wrong password, no such role or database.
REFUSED = {"28P01": "the database refused the password", "28000": "the database refused the login (no such role?)",
           "3D000": "the database does not exist"}
_REFUSED_TEXT = (("password authentication failed", "28P01"), ("does not exist", "3D000"),
                 ("no pg_hba.conf entry", "28000"))


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A connection; a refused login raises ConfigurationError (psycopg reports it as an
    OperationalError like a server that is down, which is worth waiting for)."""
    kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        state = getattr(exc, "sqlstate", None)
        if state not in REFUSED:
            text = str(exc)
            state = next((code for words, code in _REFUSED_TEXT if words in text), None)
        if state in REFUSED:
            raise ConfigurationError(f"{REFUSED[state]}: check DOSEFLOW_DATABASE_URL") from None
        raise


class DatabaseUnreachable(RuntimeError):
    pass


def where(url: str) -> str:
    """host:port/dbname of a libpq URL, for messages (never the password)."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"


def connect_waiting(url: str, wait_s: float, **kwargs) -> psycopg.Connection:
    """connect(), retried while the server is unreachable (starting, restarting, refusing TCP
    while it initialises) for up to `wait_s` seconds; then DatabaseUnreachable with the reason.
    A refused password or a missing database fails at once: waiting would not change them."""
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            return connect(url, **kwargs)
        except psycopg.OperationalError as exc:
            reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            if _permanent(exc) or time.monotonic() + delay > deadline:
                raise DatabaseUnreachable(f"cannot connect to the database at {where(url)} "
                                          f"(waited {wait_s:.0f} s): {reason}") from None
            log.warning("database at %s not reachable yet (%s); retrying", where(url), reason[:200])
            metrics.retried("database")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _permanent(exc: psycopg.OperationalError) -> bool:
    text = str(exc)
    return any(s in text for s in ("password authentication failed", "does not exist",
                                   "no pg_hba.conf entry", "certificate verify failed"))


def migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("shared") / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(out)


class MigrationsPending(RuntimeError):
    pass


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations not applied yet; safe to run from several processes at once (an
    advisory lock serialises them). Returns the names applied. A service connected with the
    least-privilege role cannot change the schema: for it this only checks that the owner has
    applied every migration, and raises MigrationsPending otherwise."""
    try:
        return _apply(conn)
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migration")}
        conn.rollback()
        missing = [name for version, name, _ in migration_files() if version not in done]
        if missing:
            raise MigrationsPending(f"database migrations {', '.join(missing)} are not applied and this role may "
                                    "not apply them: run `doseflow db migrate` with the owner's URL") from None
        return []


def _apply(conn: psycopg.Connection) -> list[str]:
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


# A database outage is waited out: messages stay unacked in the queue meanwhile.
DATABASE_PATIENCE_S = 600


class Database:
    """One connection, reopened when the server went away."""

    def __init__(self, url: str, patience_s: float = DATABASE_PATIENCE_S):
        self.url, self.patience_s = url, patience_s
        self.conn: psycopg.Connection | None = None

    @classmethod
    def over(cls, conn: psycopg.Connection) -> "Database":
        """The stages' Database on a connection the caller holds (`doseflow import`): one try,
        no reconnecting; a lost connection ends in RetryError like an outage outlasting a
        service's patience."""
        db = cls("", patience_s=0)
        db.conn = conn
        return db

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        @retry(retry=retry_if_exception_type(psycopg.OperationalError), sleep=lifecycle.sleep,
               wait=wait_exponential_jitter(multiplier=0.5, max=10), stop=stop_after_delay(self.patience_s),
               before_sleep=lambda rs: (metrics.retried("database"),
                                        log.warning("database unavailable (%s); retrying",
                                                    str(rs.outcome.exception()).strip()[:200])))
        def attempt():
            if self.conn is None or self.conn.closed or self.conn.broken:
                if not self.url:
                    raise psycopg.OperationalError("the database connection was lost")
                self.conn = connect(self.url)
            try:
                return work(self.conn)
            except psycopg.OperationalError:
                try:
                    self.conn.close()
                finally:
                    self.conn = None
                raise

        return attempt()
