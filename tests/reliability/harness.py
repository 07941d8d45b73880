"""Fault-injection harness: one scenario's throwaway services, real worker processes, faults,
and the reconciliation every scenario ends with.

Each scenario gets a fresh RabbitMQ virtual host and PostgreSQL database (deleted afterwards)
and `doseflow worker` processes; faults are real: SIGKILL, `rabbitmqctl stop_app/start_app`,
stopping the PostgreSQL cluster. Reconciliation reads the ledger and the event tables:
objects in = stored + ignored + failed, lost = objects with no outcome, duplicates = events or
objects stored more than once.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import psycopg

from benchmarks import services
from shared import broker
from shared.broker import Publish, Publisher
from shared.dead_letters import queue_depths
from shared.messages import ObjectReceived
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EVENT_TABLES = ("ct_event", "projection_event", "mammography_event")


@dataclass
class Row:
    scenario: str
    objects_in: int
    stored: int = 0
    ignored: int = 0
    failed: int = 0
    duplicates: int = 0
    lost: int = 0
    recovery_s: Optional[float] = None
    dead_letters: int = 0
    workers_alive: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.workers_alive


class Pipeline:
    """Workers on a fresh vhost and database; a watcher connection; a publisher."""

    def __init__(self, stack: ExitStack, work: Path, amqp_url: str, pg_admin: str, env_extra: Optional[dict] = None):
        self.stack, self.work = stack, work
        self.amqp = services.fresh_vhost(stack, amqp_url, prefix="doseflow_rel_")
        self.db = services.fresh_database(stack, pg_admin, prefix="doseflow_rel_")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEFLOW_")}
        env.update(DOSEFLOW_DATABASE_URL=self.db, DOSEFLOW_AMQP_URL=self.amqp, DOSEFLOW_DATA_DIR=str(work / "data"),
                   DOSEFLOW_LOG_LEVEL="WARNING", DOSEFLOW_PREFETCH="8", PYTHONUNBUFFERED="1",
                   PYTHONPATH=str(REPO), **(env_extra or {}))
        self.env = env
        self.workers = services.Workers(stack, env, work / f"logs-{os.path.basename(self.amqp)}")
        self.publisher = Publisher(self.amqp)
        stack.callback(self.publisher.close)
        self.settings = Settings(amqp_url=self.amqp, database_url=self.db)

    def start(self, kind: str, count: int = 1) -> None:
        self.workers.start(kind, count)

    def start_all(self, extractors: int = 2, writers: int = 1, classifiers: int = 1) -> None:
        self.start("writer", writers)
        self.start("classifier", classifiers)
        self.start("extractor", extractors)
        self.start("toshiba-builder")
        self.start("alerts")  # the writer's StudyStored messages: the queues drain only with it
        wanted = {"ingest": classifiers, "writer": writers}
        self.workers.wait_ready(self.amqp, wanted)

    def publish(self, paths: list[str]) -> None:
        for path in paths:
            self.publisher.publish(Publish(broker.INGEST_EXCHANGE, "ingest", ObjectReceived(path=path).encode()))

    def publish_raw(self, body: bytes) -> None:
        self.publisher.publish(Publish(broker.INGEST_EXCHANGE, "ingest", body))

    # --- reconciliation -------------------------------------------------------------------

    def _query(self, sql: str, args: tuple = ()) -> list:
        with psycopg.connect(self.db, connect_timeout=5) as conn:
            try:
                return conn.execute(sql, args).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def outcomes(self) -> dict[str, int]:
        counts = {"stored": 0, "ignored": 0, "failed": 0}
        for status, n in self._query("SELECT status, count(*) FROM object_ledger GROUP BY status"):
            counts[status] = n
        return counts

    def recorded_paths(self) -> set[str]:
        return {r[0] for r in self._query("SELECT path FROM object_ledger")}

    def duplicates(self) -> int:
        """Events stored twice (same Irradiation Event UID in one study's tables more than once,
        or one UID in two studies)."""
        total = 0
        for table in EVENT_TABLES:
            rows = self._query(f"SELECT count(*) - count(DISTINCT irradiation_event_uid) FROM {table}"
                               " WHERE irradiation_event_uid IS NOT NULL")
            total += rows[0][0] if rows else 0
        return total

    def depths(self) -> tuple[dict[str, int], int]:
        queues, dead = queue_depths(self.settings)
        return queues, sum((dead or {}).values())

    def settle(self, expected_paths: set[str], timeout: float) -> float:
        """Wait until every expected path has an outcome and the queues are empty; returns the
        seconds it took (the recovery time when called right after a fault ends)."""
        started = time.monotonic()
        expected = {storable(p) for p in expected_paths}
        while time.monotonic() - started < timeout:
            try:
                done = expected <= self.recorded_paths()
                queues, _ = self.depths() if done else ({}, 0)
            except (psycopg.OperationalError, *broker.TRANSIENT_AMQP):
                done, queues = False, {}
            if done and queues and all(v == 0 for v in queues.values()):
                return time.monotonic() - started
            time.sleep(0.25)
        return float("nan")

    def row(self, scenario: str, paths: list[str], recovery_s: Optional[float], **extra) -> Row:
        counts = self.outcomes()
        recorded = self.recorded_paths()
        expected = {storable(p) for p in paths}
        _, dead = self.depths()
        return Row(scenario=scenario, objects_in=len(expected), stored=counts["stored"], ignored=counts["ignored"],
                   failed=counts["failed"], duplicates=self.duplicates(), lost=len(expected - recorded),
                   recovery_s=recovery_s, dead_letters=dead, workers_alive=self.alive(), **extra)

    def alive(self) -> bool:
        return all(p.poll() is None for _, p in self.workers.procs)


def storable(path: str) -> str:
    from shared.ledger import storable_path

    return storable_path(path)


class Chaos:
    """Kills a random worker with SIGKILL every `interval` seconds and starts a new one of the
    same kind at once, as a container restart policy would."""

    def __init__(self, pipeline: Pipeline, interval: float, seed: int = 7):
        self.pipeline, self.interval = pipeline, interval
        self.rng = random.Random(seed)
        self.kills: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def _run(self):
        while not self.stop.wait(self.interval):
            procs = self.pipeline.workers.procs
            live = [(i, kind, p) for i, (kind, p) in enumerate(procs) if p.poll() is None
                    and kind in ("classifier", "extractor", "writer")]
            if not live:
                continue
            i, kind, proc = self.rng.choice(live)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            procs.pop(i)
            self.kills.append(kind)
            self.pipeline.start(kind)


# --- local service faults ----------------------------------------------------------------------


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def postgres_cluster(action: str) -> None:
    """Stop or start the local PostgreSQL cluster(s) (this machine kind's service command)."""
    for version in sorted(os.listdir("/etc/postgresql")):
        args = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
        if action == "stop":
            args += ["--", "-m", "fast"]
        subprocess.run(args, check=False, capture_output=True, timeout=120)


def port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port: int, up: bool, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} in {timeout}s")
        time.sleep(0.2)
