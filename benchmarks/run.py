"""doseflow's throughput, memory, I/O and latency, against what pydicom itself costs.

    python -m benchmarks.run --objects 2000 --json-out bench.json

(a) the limit for a pydicom-based importer: `pydicom.dcmread` of every file with every
    element's value decoded (the whole dataset walked, SR content tree included), one process;
(b) `doseflow import` in-process (doseflow.importer.import_paths) into a fresh database;
(c) the broker pipeline end to end — publish every path, time until the ledger holds every
    object — with 1, 2 and 4 extractor processes (and one classifier and one writer), each run
    on a fresh RabbitMQ virtual host and a fresh database;
(d) the peak RSS of each worker kind over those runs;
(e) the bytes the classifier (and the extractor) read of a ~500 MB multi-frame object;
(f) publish -> stored latency, p50 / p95, at a low steady rate.

The objects are unique copies of corpus objects (objects.py), made in a temporary folder that
is deleted at the end, like the virtual hosts, databases and worker processes — also on Ctrl-C.
Targets are reported, never asserted: the figures depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pydicom

from benchmarks import objects, services
from shared import routes

REPO = Path(__file__).resolve().parent.parent
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
EXTRACT_QUEUES = tuple(route.queue for route in routes.EXTRACTED)

RSS_TARGET = "every worker's peak RSS <= 150 MB"
TARGETS = {
    "import_ratio": 2.0,         # (b)/(a) (issue 18)
    "pipeline_ratio": 1.5,       # (c) with as many extractors as cores, / (a) (issue 18)
    "two_extractor_speedup": 1.6,
    "peak_rss_bytes": 150 * 2**20,
    "classifier_bytes": 2**20,
    "latency_p95_s": 1.0,
    "backlog_hours": 1.0,        # 1,000,000 objects of the same mix on PROJECTED_CORES cores
}
PROJECTED_CORES = 16
BACKLOG_OBJECTS = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- (a) pydicom, every value decoded --------------------------------------------------------


def decode_everything(path: str) -> int:
    ds = pydicom.dcmread(path)
    n = 0
    for element in ds.iterall():  # converts each raw element, recursing into sequences
        element.value
        n += 1
    return n


def stage_pydicom(paths: list[str]) -> dict:
    started, cpu0 = time.perf_counter(), time.process_time()
    elements = sum(decode_everything(p) for p in paths)
    seconds = time.perf_counter() - started
    return {"objects": len(paths), "seconds": seconds, "objects_per_s": len(paths) / seconds,
            "cpu_s": time.process_time() - cpu0, "elements": elements}


# --- (b) in-process import -------------------------------------------------------------------


def stage_import(paths: list[str], pg_admin: str, work: Path) -> dict:
    import inspect

    from doseflow.importer import import_paths
    from services.classifier.rules import RoutingRules
    from services.extractors.common import ExtractOptions
    from shared.database import migrate

    with ExitStack() as stack:
        url = services.fresh_database(stack, pg_admin)
        with psycopg.connect(url) as conn:
            migrate(conn)
            backend = [conn.info.backend_pid]
            db_cpu0, cpu0 = services.total_cpu(backend), time.process_time()
            started = time.perf_counter()
            extra = {}
            if "toshiba_output" in inspect.signature(import_paths).parameters:  # where built RDSRs go
                extra["toshiba_output"] = work / "toshiba-rdsr"
            summary = import_paths(conn, paths, rules=RoutingRules(), options=ExtractOptions(), **extra)
            seconds = time.perf_counter() - started
            cpu, db_cpu = time.process_time() - cpu0, services.total_cpu(backend) - db_cpu0
    return {"objects": len(paths), "seconds": seconds, "objects_per_s": len(paths) / seconds,
            "cpu_s": cpu, "postgres_backend_cpu_s": db_cpu,
            "stored": summary.stored, "ignored": summary.ignored, "failed": summary.failed,
            "problems": summary.problems[:5]}


# --- where the import's CPU goes: reading, extracting ----------------------------------------


def stage_split(paths: list[str]) -> dict:
    """CPU ms/object of each step of an import, on the same objects, by kind: the reader
    (shared.dicom read of the header, the SR content tree walked into items: shared/sr_tree.py),
    then classification and extraction on what was read (values decoded when asked, doseflow's
    logic, the report validated). The rest of (b)'s CPU is storing, the ledger and the messages
    between the stages."""
    from services.classifier.rules import RoutingRules, classify
    from services.extractors.common import ExtractOptions
    from services.extractors.worker import extract_file
    from shared import sr
    from shared.dicom import read_header
    from shared.outcome import Failed, Ignored

    rules, options = RoutingRules(), ExtractOptions()
    read_s = extract_s = 0.0
    for path in paths:
        t0 = time.process_time()
        ds = read_header(path)
        if "ContentSequence" in ds:
            try:
                sr.children(ds)  # the walk (cached on the dataset, so extraction does not pay it again)
            except Failed:
                pass
        t1 = time.process_time()
        try:
            extract_file(path, classify(ds, rules), options, ds)
        except (Ignored, Failed):
            pass
        t2 = time.process_time()
        read_s, extract_s = read_s + t1 - t0, extract_s + t2 - t1
    n = max(1, len(paths))
    return {"objects": len(paths), "read_ms": read_s / n * 1e3, "extract_ms": extract_s / n * 1e3}


# --- (c), (d), (f) the broker pipeline -------------------------------------------------------


class Pipeline:
    """Workers on a fresh vhost and database, and a connection to watch the ledger."""

    def __init__(self, stack: ExitStack, amqp: str, pg_admin: str, work: Path, extractors: int,
                 classifiers: int = 1, writers: int = 1):
        self.amqp = services.fresh_vhost(stack, amqp)
        self.db = services.fresh_database(stack, pg_admin)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEFLOW_")}
        env.update(DOSEFLOW_DATABASE_URL=self.db, DOSEFLOW_AMQP_URL=self.amqp,
                   DOSEFLOW_DATA_DIR=str(work / "data"), DOSEFLOW_LOG_LEVEL="WARNING",
                   PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
        self.workers = services.Workers(stack, env, work / f"logs-{os.path.basename(self.amqp)}")
        self.workers.start("writer", writers)
        self.workers.start("classifier", classifiers)
        self.workers.start("extractor", extractors)
        wanted = {"ingest": classifiers, "writer": writers, "outcomes": writers}
        wanted.update({q: extractors for q in EXTRACT_QUEUES})
        self.workers.wait_ready(self.amqp, wanted)
        self.conn = psycopg.connect(self.db, autocommit=True)
        stack.callback(self.conn.close)
        from shared.broker import Publisher

        self.publisher = Publisher(self.amqp)
        stack.callback(self.publisher.close)

    def publish(self, path: str) -> None:
        from shared.broker import INGEST_EXCHANGE, Publish
        from shared.messages import ObjectReceived

        self.publisher.publish(Publish(INGEST_EXCHANGE, "ingest", ObjectReceived(path=path).encode()))

    def ledger_counts(self) -> tuple[int, int]:
        return self.conn.execute("SELECT count(*), count(*) FILTER (WHERE status = 'stored') "
                                 "FROM object_ledger").fetchone()

    def problems(self) -> list:
        return self.conn.execute("SELECT path, status, reason FROM object_ledger WHERE status <> 'stored' "
                                 "LIMIT 5").fetchall()

    def database_backends(self) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]


def stage_pipeline(paths: list[str], extractors: int, args, work: Path) -> dict:
    with ExitStack() as stack:
        log(f"  starting 1 classifier, {extractors} extractor(s), 1 writer")
        p = Pipeline(stack, args.amqp_url, args.pg_url, work, extractors)
        before = {s["pid"]: s["cpu_s"] or 0.0 for s in p.workers.stats()}
        backends = p.database_backends()
        rabbit = services.rabbitmq_server_pids()
        db_cpu0, rabbit_cpu0 = services.total_cpu(backends), services.total_cpu(rabbit)

        started = time.perf_counter()
        for path in paths:
            p.publish(path)
        published = time.perf_counter() - started
        deadline = time.monotonic() + args.timeout
        done = stored = 0
        while time.monotonic() < deadline:
            done, stored = p.ledger_counts()
            if done >= len(paths):
                break
            p.workers.check_alive()
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        timed_out = done < len(paths)

        per_kind: dict[str, dict] = {}
        for s in p.workers.stats():
            k = per_kind.setdefault(s["kind"], {"processes": 0, "cpu_s": 0.0, "peak_rss_bytes": 0})
            k["processes"] += 1
            k["cpu_s"] += (s["cpu_s"] or 0.0) - before.get(s["pid"], 0.0)
            k["peak_rss_bytes"] = max(k["peak_rss_bytes"], s["peak_rss_bytes"] or 0)
        db_cpu = services.total_cpu(backends) - db_cpu0
        rabbit_cpu = services.total_cpu(rabbit) - rabbit_cpu0
        problems = p.problems()
    return {"extractors": extractors, "objects": len(paths), "completed": done, "stored": stored,
            "timed_out": timed_out, "seconds": seconds, "publish_seconds": published,
            "objects_per_s": done / seconds, "workers": per_kind,
            "postgres_backend_cpu_s": db_cpu, "rabbitmq_cpu_s": rabbit_cpu, "problems": problems}


def stage_latency(paths: list[str], extractors: int, rate: float, args, work: Path) -> dict:
    with ExitStack() as stack:
        log(f"  starting 1 classifier, {extractors} extractor(s), 1 writer")
        p = Pipeline(stack, args.amqp_url, args.pg_url, work, extractors)
        seen: dict[str, float] = {}
        stop = threading.Event()

        def watch():
            with psycopg.connect(p.db, autocommit=True) as conn:
                while not stop.is_set():
                    now = time.perf_counter()
                    for (path,) in conn.execute("SELECT path FROM object_ledger WHERE status = 'stored'"):
                        seen.setdefault(path, now)
                    time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        stack.callback(stop.set)
        sent: dict[str, float] = {}
        t0 = time.perf_counter()
        for i, path in enumerate(paths):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[path] = time.perf_counter()
            p.publish(path)
        deadline = time.monotonic() + 60
        while len(seen) < len(paths) and time.monotonic() < deadline:
            p.workers.check_alive()
            time.sleep(0.05)
        stop.set()
        watcher.join(5)
        stats = p.workers.stats()
    latencies = sorted(seen[path] - sent[path] for path in sent if path in seen)
    return {"objects": len(paths), "rate_per_s": rate, "extractors": extractors, "stored": len(latencies),
            "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95),
            "max_s": latencies[-1] if latencies else None,
            "peak_rss_bytes": {s["kind"]: s["peak_rss_bytes"] for s in stats}}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# --- (e) bytes read of a large object --------------------------------------------------------


def stage_bytes_read(warmup: str, big: str, size: int) -> dict:
    out = {"object_bytes": size}
    for stage in ("classifier", "extractor"):
        done = subprocess.run([sys.executable, "-m", "benchmarks.probe", stage, warmup, big], cwd=REPO,
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"probe {stage} failed: {done.stderr[-2000:]}")
        out[stage] = json.loads(done.stdout)
    return out


# --- the table -------------------------------------------------------------------------------


def mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f} MB"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def summarise(results: dict) -> dict:
    """Ratios, scaling and target verdicts from the raw figures."""
    a = results.get("pydicom", {}).get("objects_per_s")
    s: dict = {}
    if a and "import" in results:
        s["import_ratio"] = results["import"]["objects_per_s"] / a
    runs = {r["extractors"]: r for r in results.get("pipeline", [])}
    if a:
        s["pipeline_ratio"] = {k: r["objects_per_s"] / a for k, r in runs.items()}
    if 1 in runs:
        one = runs[1]["objects_per_s"]
        s["speedup"] = {k: r["objects_per_s"] / one for k, r in runs.items()}
        s["efficiency"] = {k: r["objects_per_s"] / one / k for k, r in runs.items()}
    cores = os.cpu_count() or 1
    at_cores = max((k for k in runs if k <= cores), default=None)
    s["extractors_at_cores"] = at_cores
    peaks: dict[str, int] = {}
    for r in results.get("pipeline", []):
        for kind, w in r["workers"].items():
            peaks[kind] = max(peaks.get(kind, 0), w["peak_rss_bytes"])
    for kind, peak in (results.get("latency", {}).get("peak_rss_bytes") or {}).items():
        peaks[kind] = max(peaks.get(kind, 0), peak or 0)
    s["peak_rss_bytes"] = peaks
    s["projection"] = projection(results, at_cores)
    t = TARGETS
    s["targets"] = {
        "import >= 200% of (a)": s["import_ratio"] >= t["import_ratio"] if "import_ratio" in s else None,
        f"pipeline ({at_cores} extractors = cores) >= 150% of (a)":
            s["pipeline_ratio"][at_cores] >= t["pipeline_ratio"] if at_cores and a else None,
        "2 extractors >= 1.6x one": s["speedup"][2] >= t["two_extractor_speedup"]
            if "speedup" in s and 2 in s["speedup"] else None,
        RSS_TARGET: all(v <= t["peak_rss_bytes"] for v in peaks.values()) if peaks else None,
        "classifier and extractor read < 1 MB of the large object":
            max(results["bytes_read"][k]["bytes_read"] for k in ("classifier", "extractor")) < t["classifier_bytes"]
            if "bytes_read" in results else None,
        "p95 latency < 1 s": (results["latency"]["p95_s"] or 1e9) < t["latency_p95_s"] if "latency" in results else None,
        f"{BACKLOG_OBJECTS:,} objects < 1 h on {PROJECTED_CORES} cores":
            s["projection"]["backlog_hours"] < t["backlog_hours"] if s["projection"] else None,
    }
    return s


def projection(results: dict, at_cores) -> dict | None:
    """Objects/hour on a PROJECTED_CORES-core host, on paper, from the CPU each object costs
    every process it passes through (workers, PostgreSQL backends, RabbitMQ), measured in the
    broker run with extractors = cores (else in the in-process import): stages are competing
    consumers, so cores divide the work as long as no one process is the limit — the writer's
    own per-process rate is given for that check (several writers may run)."""
    runs = {r["extractors"]: r for r in results.get("pipeline", [])}
    if at_cores in runs and runs[at_cores]["completed"]:
        r = runs[at_cores]
        n = r["completed"]
        parts = {kind: w["cpu_s"] / n * 1e3 for kind, w in r["workers"].items()}
        parts["postgres"] = r["postgres_backend_cpu_s"] / n * 1e3
        parts["rabbitmq"] = r["rabbitmq_cpu_s"] / n * 1e3
        source = f"broker pipeline, {at_cores} extractors"
    elif "import" in results and results["import"].get("cpu_s") is not None:
        r = results["import"]
        parts = {"import": r["cpu_s"] / r["objects"] * 1e3,
                 "postgres": r["postgres_backend_cpu_s"] / r["objects"] * 1e3}
        source = "in-process import"
    else:
        return None
    total_ms = sum(parts.values())
    per_hour = PROJECTED_CORES * 3600e3 / total_ms
    out = {"source": source, "cpu_ms_per_object": parts, "total_cpu_ms_per_object": total_ms,
           "cores": PROJECTED_CORES, "objects_per_hour": per_hour,
           "backlog_objects": BACKLOG_OBJECTS, "backlog_hours": BACKLOG_OBJECTS / per_hour}
    if "writer" in parts and parts["writer"] > 0:
        out["writer_objects_per_s_per_process"] = 1e3 / parts["writer"]
    return out


def table(results: dict, s: dict) -> str:
    lines = []
    env = results["environment"]
    mix = ", ".join(f"{n} {kind}" for kind, n in results["mix"].items())
    lines.append(f"doseflow benchmark: {results['objects']} objects ({mix}); {env['cores']} cores, "
                 f"load {env['load_before'][0]:.1f} before / {env['load_after'][0]:.1f} after")
    lines.append(f"{'stage':<52}{'objects/s':>10}{'vs (a)':>9}  note")
    row = lambda name, ops, ratio, note="": lines.append(
        f"{name:<52}{ops:>10.1f}{'' if ratio is None else f'{ratio:>8.0%}':>9}  {note}".rstrip())
    if "pydicom" in results:
        row("(a) pydicom dcmread, every value decoded", results["pydicom"]["objects_per_s"], 1.0)
    if "import" in results:
        r = results["import"]
        row("(b) doseflow import, in-process", r["objects_per_s"], s.get("import_ratio"),
            f"target >= 200%: {verdict(s['targets']['import >= 200% of (a)'])}; "
            f"stored {r['stored']}, ignored {r['ignored']}, failed {r['failed']}")
    for r in results.get("pipeline", []):
        k = r["extractors"]
        note = []
        if k != 1 and "speedup" in s:
            note.append(f"x{s['speedup'][k]:.2f} of 1 extractor, efficiency {s['efficiency'][k]:.0%}")
        if k == 2 and "speedup" in s:
            note.append(f"target >= x1.6: {verdict(s['speedup'][2] >= TARGETS['two_extractor_speedup'])}")
        if k == s.get("extractors_at_cores") and "pipeline_ratio" in s:
            note.append(f"= cores, target >= 150%: {verdict(s['pipeline_ratio'][k] >= TARGETS['pipeline_ratio'])}")
        if r["timed_out"] or r["stored"] != r["objects"]:
            note.append(f"ONLY {r['stored']}/{r['objects']} stored" + (" (timed out)" if r["timed_out"] else ""))
        row(f"(c) broker pipeline, {k} extractor{'s' if k > 1 else ''}", r["objects_per_s"],
            s.get("pipeline_ratio", {}).get(k), "; ".join(note))
    for r in results.get("pipeline", []):
        per = lambda seconds: seconds / max(1, r["completed"]) * 1e3
        cpu = ", ".join(f"{kind} {per(w['cpu_s']):.1f}" for kind, w in r["workers"].items())
        total = per(sum(w["cpu_s"] for w in r["workers"].values()) + r["postgres_backend_cpu_s"]
                    + r["rabbitmq_cpu_s"])
        # What the machine's cores could do if the pipeline had them to itself.
        ceiling = f"; all {env['cores']} cores' worth: {env['cores'] * 1e3 / total:.1f} obj/s" if total > 0 else ""
        lines.append(f"    CPU ms/object with {r['extractors']} extractor(s): {cpu}, postgres backend "
                     f"{per(r['postgres_backend_cpu_s']):.1f}, rabbitmq (whole server) "
                     f"{per(r['rabbitmq_cpu_s']):.1f}; total {total:.1f}{ceiling}")
    if "cpu_s" in results.get("pydicom", {}) and "cpu_s" in results.get("import", {}):
        a_ms = results["pydicom"]["cpu_s"] / results["pydicom"]["objects"] * 1e3
        r = results["import"]
        b_ms = (r["cpu_s"] + r["postgres_backend_cpu_s"]) / r["objects"] * 1e3
        lines.append(f"    by CPU, less exposed to the host's load: (a) {a_ms:.1f} ms/object, (b) {b_ms:.1f} ms/object "
                     f"with its postgres backend: {a_ms / b_ms:.2f}x (a)")
    if "split" in results and "import" in results:
        sp, r = results["split"], results["import"]
        total = r["cpu_s"] / r["objects"] * 1e3
        store = max(0.0, total - sp["read_ms"] - sp["extract_ms"])
        lines.append(f"    CPU ms/object of (b): {total:.1f} in the import process = reader {sp['read_ms']:.1f} "
                     f"({sp['read_ms'] / total:.0%}: header read, SR content tree walked), classify + extract "
                     f"{sp['extract_ms']:.1f} ({sp['extract_ms'] / total:.0%}: values decoded when asked, "
                     f"doseflow's logic), the rest {store:.1f} ({store / total:.0%}: store, ledger, messages "
                     f"between the stages); postgres backend "
                     f"{r['postgres_backend_cpu_s'] / r['objects'] * 1e3:.1f}  (reader and extract over "
                     f"{sp['objects']} of the objects)")
    if s.get("peak_rss_bytes"):
        peaks = ", ".join(f"{kind} {mb(v)}" for kind, v in sorted(s["peak_rss_bytes"].items()))
        lines.append(f"(d) peak RSS: {peaks}  (target <= 150 MB: "
                     f"{verdict(s['targets'][RSS_TARGET])})")
    if "bytes_read" in results:
        b = results["bytes_read"]
        lines.append(f"(e) bytes read of a {mb(b['object_bytes'])} multi-frame object: classifier "
                     f"{b['classifier']['bytes_read']:,} B, extractor {b['extractor']['bytes_read']:,} B  "
                     f"(target both < 1 MB: {verdict(s['targets']['classifier and extractor read < 1 MB of the large object'])})")
    if "latency" in results:
        r = results["latency"]
        p50 = "-" if r["p50_s"] is None else f"{r['p50_s'] * 1e3:.0f} ms"
        p95 = "-" if r["p95_s"] is None else f"{r['p95_s'] * 1e3:.0f} ms"
        lines.append(f"(f) publish -> stored at {r['rate_per_s']:g}/s, {r['extractors']} extractors: p50 {p50}, "
                     f"p95 {p95} ({r['stored']}/{r['objects']} stored)  (target p95 < 1 s: "
                     f"{verdict(s['targets']['p95 latency < 1 s'])})")
    pr = s.get("projection")
    if pr:
        parts = " + ".join(f"{kind} {ms:.1f}" for kind, ms in pr["cpu_ms_per_object"].items())
        lines.append(f"(g) projection for a {pr['cores']}-core host, from the CPU per object of the {pr['source']}:")
        lines.append(f"    {parts} = {pr['total_cpu_ms_per_object']:.1f} CPU ms/object; "
                     f"{pr['cores']} cores x 3,600,000 ms/h / {pr['total_cpu_ms_per_object']:.1f} ms = "
                     f"{pr['objects_per_hour']:,.0f} objects/h")
        lines.append(f"    {pr['backlog_objects']:,} objects / {pr['objects_per_hour']:,.0f} per h = "
                     f"{pr['backlog_hours']:.2f} h  (target < 1 h: "
                     f"{verdict(pr['backlog_hours'] < TARGETS['backlog_hours'])})")
        if "writer_objects_per_s_per_process" in pr:
            need = pr["objects_per_hour"] / 3600 / pr["writer_objects_per_s_per_process"]
            lines.append(f"    one writer process stores {pr['writer_objects_per_s_per_process']:.0f} objects/s "
                         f"of CPU: {pr['objects_per_hour'] / 3600:.0f} objects/s needs {need:.1f} writer(s) "
                         "of the 16 cores' share")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--objects", type=int, default=300, help="unique objects per stage (default 300; 2000 for a "
                                                          "release figure)")
    p.add_argument("--extractors", default="1,2,4", help="extractor process counts for (c) (default 1,2,4)")
    p.add_argument("--stages", default="abcef", help="which of a b c e f to run ((d) comes with c and f)")
    p.add_argument("--large-mb", type=int, default=500, help="size of the large multi-frame object for (e)")
    p.add_argument("--latency-rate", type=float, default=5.0, help="objects/s for (f) (default 5)")
    p.add_argument("--latency-seconds", type=float, default=20.0, help="duration of (f) (default 20)")
    p.add_argument("--timeout", type=float, default=600.0, help="longest wait for one pipeline run, s")
    p.add_argument("--corpus", help="corpus folder (default $DOSEFLOW_CORPUS or ../shared/corpus)")
    p.add_argument("--amqp-url", default=os.environ.get("DOSEFLOW_BENCH_AMQP_URL", LOCAL_AMQP),
                   help="local RabbitMQ (a fresh vhost is made with rabbitmqctl)")
    p.add_argument("--pg-url", default=os.environ.get("DOSEFLOW_BENCH_DATABASE_URL", LOCAL_PG),
                   help="PostgreSQL admin URL (fresh databases are created and dropped)")
    p.add_argument("--tmp", help="parent folder for the temporary objects (default: the system's)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json-out", help="write every figure as JSON here")
    return p.parse_args(argv)


def run(args, stack: ExitStack) -> dict:
    work = Path(tempfile.mkdtemp(prefix="doseflow-bench-", dir=args.tmp))
    stack.callback(shutil.rmtree, work, ignore_errors=True)
    corpus = objects.corpus_folder(args.corpus)
    templates = objects.load_templates(corpus)
    log(f"making {args.objects} unique objects in {work}")
    made = objects.make_copies(templates, args.objects, work / "objects", args.seed)
    paths = [p for p, _ in made]
    results: dict = {
        "objects": len(paths),
        "mix": {kind: sum(1 for _, k in made if k == kind) for kind in templates},
        "templates": {kind: [t.name for t in ts] for kind, ts in templates.items()},
        "environment": {"cores": os.cpu_count(), "load_before": os.getloadavg(), "python": platform.python_version(),
                        "pydicom": pydicom.__version__, "platform": platform.platform()},
    }
    # Warm-up outside the timings: imports, pydicom's dictionaries, first-use caches.
    from services.classifier.rules import RoutingRules
    from services.classifier.worker import classify_file
    from services.extractors.common import ExtractOptions
    from services.extractors.worker import extract_file

    for ts in templates.values():
        for t in ts:
            path = str(corpus / f"{t.name}.dcm")
            decode_everything(path)
            route, ds = classify_file(path, RoutingRules(), roots=[])
            extract_file(path, route, ExtractOptions(), ds)

    stages = set(args.stages)
    if "a" in stages:
        log("(a) pydicom read, every value decoded")
        results["pydicom"] = stage_pydicom(paths)
    if "b" in stages:
        log("(b) doseflow import, in-process")
        results["import"] = stage_import(paths, args.pg_url, work)
        results["split"] = stage_split(paths[:min(len(paths), 400)])
    if "e" in stages:
        log(f"(e) bytes read of a {args.large_mb} MB object")
        big = work / "large-multiframe.dcm"
        dx = templates["DX image"][0]
        size = objects.make_large_multiframe(corpus / f"{dx.name}.dcm", big, args.large_mb * 2**20,
                                             random.Random(args.seed))
        results["bytes_read"] = stage_bytes_read(paths[0], str(big), size)
        big.unlink()
    if "c" in stages:
        results["pipeline"] = []
        for k in (int(x) for x in args.extractors.split(",") if x.strip()):
            log(f"(c) broker pipeline with {k} extractor(s)")
            results["pipeline"].append(stage_pipeline(paths, k, args, work))
    if "f" in stages:
        n = max(1, round(args.latency_rate * args.latency_seconds))
        log(f"(f) latency at {args.latency_rate:g}/s for {args.latency_seconds:g} s")
        latency_paths = [p for p, _ in objects.make_copies(templates, n, work / "latency", args.seed + 1)]
        results["latency"] = stage_latency(latency_paths, os.cpu_count() or 1, args.latency_rate, args, work)
    results["environment"]["load_after"] = os.getloadavg()
    return results


def main(argv=None) -> int:
    args = parse_args(argv)

    def terminate(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    status = 0
    with ExitStack() as stack:
        try:
            results = run(args, stack)
        except KeyboardInterrupt:
            log("interrupted: stopping workers, deleting the vhost, databases and objects")
            return 130
        finally:
            # No second interrupt half-way through the clean-up.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    summary = summarise(results)
    results["summary"] = summary
    print(table(results, summary))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
