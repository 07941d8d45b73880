"""Before/after figures for the three high-severity attacks of issue 20, against real processes:

    python -m tests.security.measure [--tree DIR]

`--tree` runs the workers from another checkout of doseflow (e.g. an export of an older main)
with this virtual environment, so the same attacks measure the code before and after a change.
It makes a fresh database and RabbitMQ virtual host (local services, `rabbitmqctl`), starts
`doseflow worker receiver|classifier|extractor|writer`, and prints one row per attack: what was
answered, how long it took, the ledger row, and each process' peak RSS (VmHWM from /proc).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.security import attacks

PG = os.environ.get("DOSEFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, tree: Path, work: Path):
        self.tree, self.work = tree, work
        self.db = "doseflow_sec_" + uuid.uuid4().hex[:8]
        self.vhost = "doseflow_sec_" + uuid.uuid4().hex[:8]
        self.root = work / "incoming"
        self.root.mkdir()
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}

    def __enter__(self):
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {self.db}")
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True)
        self.db_url = PG.rsplit("/", 1)[0] + "/" + self.db
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEFLOW_")}
        self.env.update(DOSEFLOW_DATABASE_URL=self.db_url, DOSEFLOW_AMQP_URL=AMQP + self.vhost,
                        DOSEFLOW_INGEST_ROOTS=str(self.root), DOSEFLOW_RECEIVER_PORT=str(self.port),
                        DOSEFLOW_DATA_DIR=str(self.work / "data"), PYTHONUNBUFFERED="1")
        return self

    def start(self, kind: str) -> subprocess.Popen:
        log = open(self.work / f"{kind}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "doseflow", "worker", kind], cwd=self.tree, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs[kind] = proc
        return proc

    def doseflow(self, *args, timeout=60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "doseflow", *args], cwd=self.tree, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def wait_consuming(self, *kinds: str, timeout: float = 120) -> None:
        """Until each worker says it consumes (so timings start from a running pipeline)."""
        def ready():
            return all("consuming" in (self.work / f"{k}.log").read_text(errors="replace") for k in kinds)
        if not attacks.wait_for(ready, timeout):
            raise RuntimeError(f"workers not consuming after {timeout} s")

    def ledger(self) -> dict:
        try:
            with psycopg.connect(self.db_url) as conn:
                return {p: (s, r) for p, s, r in conn.execute("SELECT path, status, reason FROM object_ledger")}
        except psycopg.Error:
            return {}

    def rss(self, kind: str) -> str:
        proc = self.procs.get(kind)
        if proc is None:
            return "-"
        if proc.poll() is not None:
            return f"died ({proc.returncode})"
        return f"{attacks.peak_rss_mb(proc.pid):.0f} MB"

    def __exit__(self, *exc):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True)


def wait_echo(stack: Stack, timeout: float = 60) -> None:
    if attacks.wait_for(lambda: attacks.echo_status(stack.port) == 0, timeout, interval=0.5) is None:
        raise RuntimeError("receiver never answered C-ECHO:\n" + (stack.work / "receiver.log").read_text()[-2000:])


def stalled_connections(tree: Path, limit_s: float) -> list[str]:
    with tempfile.TemporaryDirectory() as work, Stack(tree, Path(work)) as stack:
        stack.start("receiver")
        wait_echo(stack)
        started = time.monotonic()
        socks = attacks.stall(stack.port, 10)
        refused_at_2s = attacks.echo_status(stack.port) != 0
        ok = attacks.wait_for(lambda: attacks.echo_status(stack.port) == 0, limit_s, interval=2)
        took = time.monotonic() - started
        all_dropped = attacks.wait_for(lambda: all(attacks.dropped(s) for s in socks), limit_s, interval=0.5)
        dropped_after = time.monotonic() - started
        dropped = sum(attacks.dropped(s) for s in socks)
        for s in socks:
            s.close()
        answer = f"C-ECHO Success after {took:.0f} s" if ok else f"C-ECHO still refused after {took:.0f} s"
        drops = f"all 10 dropped after {dropped_after:.0f} s" if all_dropped else \
            f"{dropped}/10 dropped after {dropped_after:.0f} s"
        return ["10 stalled connections (6 bytes of A-ASSOCIATE-RQ)",
                f"{'refused at 2 s; ' if refused_at_2s else 'answered at 2 s; '}{answer}; {drops}",
                f"receiver {stack.rss('receiver')}"]


def deflate_bomb(tree: Path, limit_s: float) -> list[str]:
    with tempfile.TemporaryDirectory() as work, Stack(tree, Path(work)) as stack:
        for kind in ("receiver", "classifier", "extractor", "writer"):
            stack.start(kind)
        stack.wait_consuming("classifier", "extractor", "writer")
        wait_echo(stack)
        bomb = Path(work) / "bomb.dcm"
        ds = attacks.write_deflate_bomb(bomb)
        size_kb = bomb.stat().st_size / 1024
        started = time.monotonic()
        status = attacks.send_file(stack.port, bomb, ds.SOPClassUID, attacks.DeflatedExplicitVRLittleEndian)
        answered = time.monotonic() - started
        row = attacks.wait_for(lambda: next(iter(stack.ledger().values()), None), limit_s)
        took = time.monotonic() - started
        # The bomb sent as a file straight into the ingest folder too, past the receiver.
        direct = stack.root / "direct-bomb.dcm"
        attacks.write_deflate_bomb(direct)
        stack.doseflow("publish", str(direct))
        direct_row = attacks.wait_for(lambda: stack.ledger().get(str(direct)), limit_s)
        status_text = "no answer" if status is None else f"0x{status:04X}"
        return [f"deflate bomb ({size_kb:.0f} KB -> 500 MB zeros)",
                f"receiver answered {status_text} in {answered:.1f} s; ledger "
                f"{row[0] + ': ' + (row[1] or '')[:70] if row else 'nothing'} after {took:.0f} s; published file: "
                f"{direct_row[0] + ': ' + (direct_row[1] or '')[:60] if direct_row else 'nothing'}",
                f"receiver {stack.rss('receiver')}, classifier {stack.rss('classifier')}, "
                f"extractor {stack.rss('extractor')}"]


def fifo(tree: Path, limit_s: float) -> list[str]:
    with tempfile.TemporaryDirectory() as work, Stack(tree, Path(work)) as stack:
        for kind in ("classifier", "extractor", "writer"):
            stack.start(kind)
        stack.wait_consuming("classifier", "extractor", "writer")
        pipe = attacks.make_fifo(stack.root / "pipe.dcm")
        started = time.monotonic()
        stack.doseflow("publish", str(pipe))
        row = attacks.wait_for(lambda: stack.ledger().get(str(pipe)), limit_s)
        took = time.monotonic() - started
        classifier = stack.rss("classifier")
        started = time.monotonic()
        try:
            result = stack.doseflow("import", str(stack.root), timeout=limit_s)
            imported = f"import exited {result.returncode} in {time.monotonic() - started:.1f} s"
        except subprocess.TimeoutExpired:
            imported = f"import still hanging after {limit_s:.0f} s (killed)"
        ledger = f"ledger {row[0]}: {(row[1] or '')[:60]} after {took:.1f} s" if row else \
            f"no ledger row after {took:.0f} s (classifier stuck)"
        return ["FIFO in the ingest root", f"{ledger}; {imported}", f"classifier {classifier}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", type=Path, default=Path.cwd(), help="doseflow checkout to run the workers from")
    p.add_argument("--limit", type=float, default=60, help="seconds to wait for an answer before giving up")
    p.add_argument("--only", choices=["stall", "bomb", "fifo"], action="append")
    args = p.parse_args(argv)
    rows = []
    for name, attack in (("stall", stalled_connections), ("bomb", deflate_bomb), ("fifo", fifo)):
        if args.only and name not in args.only:
            continue
        rows.append(attack(args.tree.resolve(), args.limit))
        print(" | ".join(rows[-1]), flush=True)
    print("\n| attack | outcome | peak RSS |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
