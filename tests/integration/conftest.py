"""Real services for integration tests: RabbitMQ and PostgreSQL.

Where they come from, in order: DOSEFLOW_TEST_AMQP_URL / DOSEFLOW_TEST_DATABASE_URL (or the
local defaults below) when reachable; else testcontainers where a Docker engine exists; else
the tests skip — except under CI (env CI set), where a missing service fails the run.
Each test gets a fresh database and a broker whose doseflow queues were deleted, and real
`doseflow worker ...` processes.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import psycopg
import pytest

from shared import broker

LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _unavailable(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not reachable and CI is set: integration tests must run in CI")
    pytest.skip(f"{what} not reachable (set DOSEFLOW_TEST_* URLs or run a Docker engine)")


@pytest.fixture(scope="session")
def service_urls():
    amqp = os.environ.get("DOSEFLOW_TEST_AMQP_URL", LOCAL_AMQP)
    pg = os.environ.get("DOSEFLOW_TEST_DATABASE_URL", LOCAL_PG)
    containers = []
    if not (_reachable(amqp, 5672) and _reachable(pg, 5432)):
        if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
            from testcontainers.postgres import PostgresContainer
            from testcontainers.rabbitmq import RabbitMqContainer

            rabbit = RabbitMqContainer("rabbitmq:3.13-management").start()
            postgres = PostgresContainer("postgres:16", driver=None).start()
            containers = [rabbit, postgres]
            amqp = (f"amqp://guest:guest@{rabbit.get_container_host_ip()}:"
                    f"{rabbit.get_exposed_port(5672)}/%2F")
            pg = postgres.get_connection_url()
        else:
            _unavailable("RabbitMQ/PostgreSQL")
    yield {"amqp": amqp, "pg": pg}
    for c in containers:
        c.stop()


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def fresh_database(server_url: str):
    """A new, empty database on the server of `server_url` (its URL), dropped afterwards."""
    name = "doseflow_test_" + uuid.uuid4().hex[:10]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield _with_db(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def imported_database(server_url: str, data_dir, paths):
    """A fresh database with `paths` imported by `doseflow import` (none of them failing); the
    environment to run doseflow against it."""
    with fresh_database(server_url) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEFLOW_")}
        env.update(DOSEFLOW_DATABASE_URL=url, DOSEFLOW_DATA_DIR=str(data_dir))
        result = doseflow(env, "import", *map(str, paths))
        assert "failed 0" in result.stdout, result.stdout + result.stderr
        yield env


@pytest.fixture
def database_url(service_urls):
    """A fresh, empty database for one test."""
    with fresh_database(service_urls["pg"]) as url:
        yield url


def delete_doseflow_queues(amqp_url: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        for queue in broker.QUEUES:
            ch.queue_delete(queue)
            ch.queue_delete(broker.dead_queue(queue))
    finally:
        conn.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def clean_broker(service_urls):
    """An empty broker for one test: a fresh virtual host where `rabbitmqctl` can make one (so
    test runs on one machine cannot consume each other's messages), else the default vhost with
    doseflow's queues deleted."""
    parts = urlsplit(service_urls["amqp"])
    if shutil.which("rabbitmqctl") and parts.hostname in ("127.0.0.1", "localhost"):
        vhost = "doseflow_test_" + uuid.uuid4().hex[:10]
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        yield urlunsplit(parts._replace(path="/" + vhost))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
    else:
        delete_doseflow_queues(service_urls["amqp"])
        yield service_urls["amqp"]


# One worker of each stage an object can pass through on its way to the database.
PIPELINE = ("classifier", "extractor", "writer", "toshiba-builder", "ct-dw")


class Workers:
    """Real `doseflow worker` processes with the test's configuration."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, kind: str, *args: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{kind}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "doseflow", "worker", kind, *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((kind, proc))
        return proc

    def start_pipeline(self) -> None:
        for kind in PIPELINE:
            self.start(kind)

    def alive(self) -> list[str]:
        return [kind for kind, p in self.procs if p.poll() is None]

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}"
                         for f in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                p.terminate()
        for _, p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def doseflow_env(database_url, clean_broker, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEFLOW_")}
    env.update(DOSEFLOW_DATABASE_URL=database_url, DOSEFLOW_AMQP_URL=clean_broker,
               DOSEFLOW_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def workers(doseflow_env, tmp_path, request):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    w = Workers(doseflow_env, log_dir)
    yield w
    w.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(w.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def doseflow(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doseflow", *args], env=env, capture_output=True,
                          text=True, check=check, timeout=300)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ledger(database_url: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        try:
            return {p: (s, r) for p, s, r in conn.execute("SELECT path, status, reason FROM object_ledger")}
        except psycopg.errors.UndefinedTable:
            return {}
