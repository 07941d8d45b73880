"""`python -m tests.reliability [--objects 2000] [--outage 60] [--scenario NAME ...] [--json-out F]`

Runs each fault scenario against the local RabbitMQ and PostgreSQL (fresh vhost and database
per scenario, real worker processes, real faults: it stops and starts the local broker and
database, so run it where nothing else depends on them) and prints one table.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from tests.reliability import scenarios
from tests.reliability.harness import Pipeline, Row

AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def run_scenario(name: str, args, work: Path) -> Row:
    env_extra = {}
    if name == "roots":
        env_extra["DOSEFLOW_INGEST_ROOTS"] = str(work / "incoming")
    with ExitStack() as stack:
        p = Pipeline(stack, work, args.amqp_url, args.pg_url, env_extra)
        started = time.monotonic()
        if name == "kill9":
            row = scenarios.kill9(p, work, args.objects, args.kill_interval)
        elif name == "broker":
            row = scenarios.broker_restart(p, work, max(50, args.objects // 4))
        elif name == "postgres":
            row = scenarios.postgres_outage(p, work, max(50, args.objects // 4), args.outage)
        elif name == "redelivery":
            row = scenarios.redelivery(p, work, args.copies)
        elif name == "poison":
            row = scenarios.poison(p, work)
        elif name == "roots":
            row = scenarios.outside_roots(p, work)
        else:
            raise SystemExit(f"unknown scenario {name}")
        row.notes.append(f"scenario took {time.monotonic() - started:.0f} s")
        return row


def table(rows: list[Row]) -> str:
    head = f"{'scenario':38} {'in':>6} {'stored':>6} {'ignored':>7} {'failed':>6} {'dups':>5} {'lost':>5} " \
           f"{'recovery':>9} {'dead':>5} {'alive':>5}"
    lines = [head, "-" * len(head)]
    for r in rows:
        rec = "-" if r.recovery_s is None or math.isnan(r.recovery_s) else f"{r.recovery_s:.1f} s"
        lines.append(f"{r.scenario:38} {r.objects_in:>6} {r.stored:>6} {r.ignored:>7} {r.failed:>6} "
                     f"{r.duplicates:>5} {r.lost:>5} {rec:>9} {r.dead_letters:>5} {'yes' if r.workers_alive else 'NO':>5}")
        for note in r.notes:
            lines.append(f"    {note}")
    return "\n".join(lines)


ALL = ["kill9", "broker", "postgres", "redelivery", "poison", "roots"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=2000, help="objects in the kill -9 scenario (others use 1/4)")
    ap.add_argument("--outage", type=float, default=60.0, help="seconds PostgreSQL stays down")
    ap.add_argument("--kill-interval", type=float, default=2.0, help="seconds between kill -9s")
    ap.add_argument("--copies", type=int, default=1000, help="deliveries of the same message")
    ap.add_argument("--scenario", action="append", choices=ALL, help="run only these (repeatable)")
    ap.add_argument("--amqp-url", default=AMQP)
    ap.add_argument("--pg-url", default=PG)
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    rows = []
    for name in args.scenario or ALL:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f"doseflow-{name}-") as tmp:
            rows.append(run_scenario(name, args, Path(tmp)))
        print(table(rows[-1:]), file=sys.stderr, flush=True)
    print(table(rows))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([r.__dict__ | {"ok": r.ok} for r in rows], indent=2, default=str))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
