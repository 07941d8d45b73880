"""Throwaway services for a benchmark run — a fresh RabbitMQ virtual host, a fresh PostgreSQL
database, real `doseflow worker` processes — and what /proc says about a process.

Everything made here is registered with the caller's ExitStack the moment it exists, so an
interrupted run (Ctrl-C, SIGTERM, an exception) still deletes it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import psycopg

from shared import broker

PREFIX = "doseflow_bench_"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- /proc -----------------------------------------------------------------------------------


def peak_rss_bytes(pid: int) -> int | None:
    """The process' high-water resident set size (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def rabbitmq_server_pids() -> list[int]:
    """The RabbitMQ server's Erlang VM (not the short-lived VMs that rabbitmqctl runs)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp" and \
                        b"rabbit boot" in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def total_cpu(pids) -> float:
    return sum(c for c in (cpu_seconds(p) for p in pids) if c is not None)


# --- PostgreSQL and RabbitMQ -----------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def fresh_database(stack: ExitStack, admin_url: str, prefix: str = PREFIX) -> str:
    name = prefix + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")

    def drop():
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    stack.callback(drop)
    return with_database(admin_url, name)


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")


def _delete_vhost(vhost: str) -> None:
    for attempt in range(3):
        try:
            _rabbitmqctl("delete_vhost", vhost)
            return
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            problem = exc
            time.sleep(1)
    print(f"could not delete RabbitMQ vhost {vhost} ({problem}); `rabbitmqctl delete_vhost {vhost}` removes it",
          file=sys.stderr)


def fresh_vhost(stack: ExitStack, amqp_url: str, prefix: str = PREFIX) -> str:
    """A new virtual host on the local broker, so the run consumes nobody else's messages.
    Other tools reusing this pass their own `prefix`, so leftovers say whose they are."""
    parts = urlsplit(amqp_url)
    vhost = prefix + uuid.uuid4().hex[:10]
    _rabbitmqctl("add_vhost", vhost)
    stack.callback(_delete_vhost, vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
    return urlunsplit(parts._replace(path="/" + vhost))


def consumer_counts(amqp_url: str, queues: list[str]) -> dict[str, int]:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        out = {}
        for queue in queues:
            ch = conn.channel()
            try:
                out[queue] = ch.queue_declare(queue, passive=True).method.consumer_count
                ch.close()
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                out[queue] = 0
        return out
    finally:
        conn.close()


# --- worker processes ------------------------------------------------------------------------


class Workers:
    """`doseflow worker KIND` processes in their own sessions (a Ctrl-C at the terminal reaches
    the benchmark only, which then stops them in order)."""

    def __init__(self, stack: ExitStack, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []
        log_dir.mkdir(parents=True, exist_ok=True)
        stack.callback(self.stop)

    def start(self, kind: str, count: int = 1) -> None:
        for _ in range(count):
            log = open(self.log_dir / f"{kind}-{len(self.procs)}.log", "wb")
            proc = subprocess.Popen([sys.executable, "-m", "doseflow", "worker", kind], env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            self.procs.append((kind, proc))

    def wait_ready(self, amqp_url: str, consumers: dict[str, int], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            counts = consumer_counts(amqp_url, list(consumers))
            if all(counts[q] >= n for q, n in consumers.items()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not consuming after {timeout}s: {counts}\n{self.logs()}")
            time.sleep(0.2)

    def check_alive(self) -> None:
        dead = [(kind, p.returncode) for kind, p in self.procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"worker processes exited: {dead}\n{self.logs()}")

    def stats(self) -> list[dict]:
        return [{"kind": kind, "pid": p.pid, "peak_rss_bytes": peak_rss_bytes(p.pid),
                 "cpu_s": cpu_seconds(p.pid)} for kind, p in self.procs]

    def logs(self, tail: int = 2000) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-tail:]}"
                         for f in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                p.terminate()  # SIGTERM: the worker finishes the message in hand
        deadline = time.monotonic() + 15
        for _, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
