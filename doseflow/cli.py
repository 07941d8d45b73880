"""The `doseflow` command (DESIGN §4)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Optional

from shared import routes as registry
from shared.settings import Settings, load

log = logging.getLogger("doseflow")


def _setup_logging(settings: Settings, service: str) -> None:
    from shared import logs

    logs.setup(settings.log_level, settings.log_format, service)


def _database(settings: Settings):
    from shared.database import connect_waiting, migrate, resolve_url

    conn = connect_waiting(resolve_url(settings), settings.connect_wait_seconds)
    migrate(conn)
    return conn


def _rules(settings: Settings):
    from services.classifier.rules import RoutingRules

    return RoutingRules(tuple(settings.toshiba_models), settings.dw_from_images)


def _options(settings: Settings):
    from services.extractors.common import ExtractOptions

    return ExtractOptions.from_settings(settings)


def _alert_rules(settings: Settings):
    """The configured alert rules, or None after saying on stderr why the file was refused."""
    from services.alerts.rules import RulesError, load_configured

    try:
        return load_configured(settings)
    except RulesError as exc:
        print(f"doseflow: the alert rules file is refused, nothing started:\n{exc}", file=sys.stderr)
        return None


# --- commands ------------------------------------------------------------------------------------


def cmd_import(args, settings: Settings) -> int:
    from doseflow.importer import Progress, expand_paths, import_paths
    from services.extractors.routes import ROUTE_ALIASES

    unreadable: list[tuple[str, str]] = []
    paths = expand_paths(args.paths, unreadable)
    if not paths and not unreadable:
        print("doseflow import: no files found", file=sys.stderr)
        return 2
    route = ROUTE_ALIASES[args.route] if args.route else None
    alert_rules = _alert_rules(settings)
    if alert_rules is None:
        return 2
    with _database(settings) as conn:
        from services.toshiba_builder.worker import output_dir

        summary = import_paths(conn, paths, rules=_rules(settings), options=_options(settings), route=route,
                               toshiba_output=output_dir(settings), progress=Progress(len(paths)),
                               alert_rules=alert_rules, roots=settings.ingest_roots, unreadable=unreadable,
                               dw_interval_mm=settings.dw_sample_interval_mm)
    for path, status, reason in summary.problems:
        if status == "failed" or args.verbose:
            print(f"{status}: {path}: {reason}", file=sys.stderr)
    print(summary.line())
    if summary.alerts:
        print(f"alerts raised {len(summary.alerts)} (doseflow alerts list; notifications wait for "
              "doseflow worker notifier)")
    return 1 if summary.failed else 0


def cmd_extract(args, settings: Settings) -> int:
    from doseflow.extract import extract_object
    from shared.outcome import Failed, Ignored

    try:
        report = extract_object(args.file, args.route, _rules(settings), _options(settings))
    except Ignored as exc:
        print(json.dumps({"outcome": "ignored", "reason": exc.reason}))
        return 0
    except Failed as exc:
        print(f"doseflow extract: {args.file}: {exc.reason}", file=sys.stderr)
        return 1
    data = report.model_dump(mode="json")
    print(json.dumps(data, indent=None if args.json else 2, ensure_ascii=False))
    return 0


def cmd_studies(args, settings: Settings) -> int:
    from services.writer.store import stored_studies

    with _database(settings) as conn:
        studies = stored_studies(conn, args.study)
    if args.json:
        print(json.dumps(studies, ensure_ascii=False))
    else:
        for s in studies:
            st = s["study"]
            total = (s.get("ct") or {}).get("total_dlp_mGycm")
            print(f"{st.get('study_date') or '-':10} {st.get('modality') or '-':3} {st['study_instance_uid']}"
                  f"  {st.get('study_description') or ''}" + (f"  DLP {total:.6g} mGy.cm" if total is not None else ""))
    return 0


def cmd_export(args, settings: Settings) -> int:
    from doseflow.export import export
    from services.writer.store import stored_studies

    with _database(settings) as conn:
        studies = stored_studies(conn, date_from=args.date_from, date_to=args.date_to)
    return export(studies, args.modality, args.format, args.output)


def cmd_protocols(args, settings: Settings) -> int:
    from doseflow.audit import protocols

    with _database(settings) as conn:
        return protocols(conn, settings, args.json)


def cmd_audit(args, settings: Settings) -> int:
    from doseflow.audit import run_audit

    if not args.output and not args.remap:
        print("doseflow audit: give --output FILE (and/or --remap)", file=sys.stderr)
        return 2
    with _database(settings) as conn:
        return run_audit(conn, settings, args)


def cmd_quality(args, settings: Settings) -> int:
    from doseflow import quality

    with _database(settings) as conn:
        found = quality.devices(quality.stored_rows(conn, args.date_from, args.date_to))
    if args.json:
        sys.stdout.write(quality.as_json(found) + "\n")
    elif args.csv:
        sys.stdout.write(quality.as_csv(found))
    else:
        sys.stdout.write(quality.as_table(found))
    return 0


def cmd_publish(args, settings: Settings) -> int:
    from doseflow.importer import expand_paths
    from shared.broker import INGEST_EXCHANGE, Publish, Publisher
    from shared.messages import ObjectReceived

    paths = expand_paths(args.paths)
    publisher = Publisher(settings.amqp_url, settings.delivery_limit)
    try:
        for path in paths:
            publisher.publish(Publish(INGEST_EXCHANGE, "ingest", ObjectReceived(path=path).encode()))
    finally:
        publisher.close()
    print(f"published {len(paths)}")
    return 0


def cmd_worker(args, settings: Settings) -> int:
    import signal
    import threading

    from shared import lifecycle

    # SIGTERM (docker stop, systemd) finishes the message in hand, then stops consuming; a
    # retry wait (broker or database down) ends at once.
    stop = threading.Event()

    def on_sigterm(*_):
        stop.set()
        lifecycle.stopping.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    kind = args.kind
    if settings.metrics_port:
        from importlib.metadata import version

        from shared import metrics

        try:
            metrics.serve(settings.metrics_port, kind, version("doseflow"))
        except OSError as exc:
            log.error("cannot serve metrics on port %d: %s", settings.metrics_port, exc.strerror or exc)
            return 2
        log.info("metrics on port %d", settings.metrics_port)
    if kind in ("alerts", "notifier"):
        # Configuration first: a bad rules file or missing secret stops the service before it
        # consumes anything (it does not start half-configured).
        alert_rules = _alert_rules(settings)
        if alert_rules is None:
            return 2
    if kind == "alerts":
        from services.alerts.worker import run

        run(settings, stop=stop, rules=alert_rules)
    elif kind == "notifier":
        from services.notifier.worker import ConfigurationError, run

        try:
            run(settings, stop=stop, rules=alert_rules)
        except ConfigurationError as exc:
            print(f"doseflow worker notifier: {exc}", file=sys.stderr)
            return 2
    elif kind == "classifier":
        from services.classifier.worker import run

        run(settings, stop=stop)
    elif kind == "extractor":
        from services.extractors.routes import EXTRACT_ROUTES
        from services.extractors.worker import run as run_extractor

        unknown = [r for r in args.routes if r not in EXTRACT_ROUTES]
        if unknown:
            print(f"unknown routes {unknown}; choose from {list(EXTRACT_ROUTES)}", file=sys.stderr)
            return 2
        run_extractor(settings, args.routes or None, stop=stop)
    elif kind == "writer":
        from services.writer.worker import run

        run(settings, stop=stop)
    elif kind == "ct-dw":
        from services.ct_dw.worker import run

        run(settings, stop=stop)
    elif kind == "toshiba-builder":
        from services.toshiba_builder.worker import run

        run(settings, stop=stop)
    elif kind == "receiver":
        from services.receiver.worker import run

        return run(settings, stop=stop)
    return 0


def cmd_db(args, settings: Settings) -> int:
    from shared.database import connect_waiting, migrate, resolve_url

    with connect_waiting(resolve_url(settings), settings.connect_wait_seconds) as conn:
        applied = migrate(conn)
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_status(args, settings: Settings) -> int:
    from services.writer.store import study_count
    from shared.ledger import ledger_totals
    from shared.dead_letters import queue_depths

    from services.toshiba_builder.state import legacy_study_counts

    with _database(settings) as conn:
        objects, studies, legacy = ledger_totals(conn), study_count(conn), legacy_study_counts(conn)
    queues, dead = queue_depths(settings)
    status = {"objects": objects, "studies": studies, "queues": queues,
              "dead_letters": sum(dead.values()) if dead is not None else None, "legacy_ct_studies": legacy}
    if dead is None:
        status["broker"] = "unreachable"
    if args.json:
        print(json.dumps(status))
    else:
        print(f"objects: stored {objects['stored']}, ignored {objects['ignored']}, failed {objects['failed']}")
        print(f"studies: {studies}")
        print(f"legacy CT studies: {legacy['waiting']} waiting, {legacy['without_summary']} ended without a "
              "dose summary page")
        if dead is None:
            print("broker: unreachable")
        else:
            for name, depth in queues.items():
                print(f"queue {name}: {depth} waiting, {dead.get(name, 0)} dead-lettered")
    return 0


def cmd_dead_letters(args, settings: Settings) -> int:
    from shared import dead_letters

    if args.action == "list":
        letters = dead_letters.list_letters(settings)
        if args.json:
            print(json.dumps([l.__dict__ for l in letters]))
        for l in letters if not args.json else []:
            print(f"{l.id}  {l.queue}  {l.at or '-'}  {l.path or '-'}\n    {l.reason}")
        if not args.json:
            print(f"{len(letters)} dead letters")
    else:
        if not args.all and not args.id:
            print("replay needs --id ID... or --all", file=sys.stderr)
            return 2
        n = dead_letters.replay(settings, None if args.all else set(args.id))
        print(f"replayed {n}")
    return 0


def cmd_alerts(args, settings: Settings) -> int:
    if args.action == "rules":
        from services.alerts.rules import RulesError, load, protocol_categories

        try:
            rules = load(args.file, protocol_categories(settings))
        except RulesError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{args.file}: {len(rules.rules)} rules ({len(rules.active)} enabled), {len(rules.categories)} "
              f"categories, {len(rules.subscriptions)} subscriptions: valid")
        needs = rules.needs_patient_pseudonym()
        if needs:
            print(f"per-patient rules ({', '.join(needs)}) need DOSEFLOW_PATIENT_HASH_KEY"
                  + ("" if settings.patient_key() else ", which is not set here: they would never fire"))
        return 0
    from services.alerts.store import UnknownAlert, acknowledge, list_alerts

    with _database(settings) as conn:
        if args.action == "list":
            alerts = list_alerts(conn, args.study)
            if args.json:
                print(json.dumps(alerts, ensure_ascii=False))
            else:
                for a in alerts:
                    ack = f"  acknowledged by {a['acknowledged_by']}" if a["acknowledged_by"] else ""
                    print(f"{a['id']:>6} {a['raised_at'][:19]} {a['level']:8} {a['rule']} v{a['rule_version']}  "
                          f"{a['study_instance_uid']}{ack}\n       {a['title']}: {json.dumps(a['values'])}")
                print(f"{len(alerts)} alerts")
            return 0
        try:
            done = acknowledge(conn, args.id, args.by)
        except UnknownAlert as exc:
            print(f"doseflow alerts ack: {exc}", file=sys.stderr)
            return 1
    if done["already"]:
        print(f"alert {args.id} was already acknowledged by {done['acknowledged_by']} at {done['acknowledged_at']}")
    else:
        print(f"alert {args.id} acknowledged by {done['acknowledged_by']} at {done['acknowledged_at']}")
    return 0


def cmd_config(args, settings: Settings) -> int:
    from doseflow import configuration

    if args.markdown:
        sys.stdout.write(configuration.markdown_table())
    else:
        for name, value in configuration.effective(settings):
            print(f"{name}={value}")
    return 0


def cmd_backfill(args, settings: Settings) -> int:
    import signal
    import threading

    from doseflow.backfill import plan
    from doseflow.backfill.run import Options, run
    from doseflow.backfill.store import Record

    def usage(message: str) -> int:
        print(f"doseflow backfill: {message}", file=sys.stderr)
        return 2

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # per-request dumps of identifiers otherwise
    stop = threading.Event()

    def on_signal(*_):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()  # finish the request in hand, record, stop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        node = plan.resolve_node(args.pacs, settings.backfill_nodes) if args.pacs else None
        with _database(settings) as conn:
            record = Record(conn)
            if args.resume:
                previous = record.resumable(node)
                if previous is None:
                    return usage("nothing to resume" + (f" for {node}" if node else ""))
                record.run_id = previous["id"]
                node = plan.Node(previous["ae_title"], previous["host"], previous["port"])
                date_from, date_to = previous["date_from"], previous["date_to"]
                groups, filters = tuple(previous["modalities"]), plan.Filters.from_dict(previous["filters"])
                print(f"resuming run {record.run_id}: {node} {date_from}..{date_to} {','.join(groups)}", file=sys.stderr)
            else:
                if node is None or args.date_from is None or args.date_to is None:
                    return usage("--pacs, --from and --to are required (or --resume)")
                date_from, date_to = args.date_from, args.date_to
                plan.day_slices(date_from, date_to)
                groups = plan.parse_modalities(args.modality)
                filters = plan.Filters(*(plan.Filters.terms(t) for t in (
                    args.description_include, args.description_exclude, args.station_include, args.station_exclude)))
            overrides = plan.profile_overrides(settings.backfill_profile, node,
                                               next((e.partition("=")[0].strip() for e in settings.backfill_nodes
                                                     if e.partition("=")[2].strip() == str(node)), None))
            plan.Profile().overridden(overrides)
            options = Options(node=node, date_from=date_from, date_to=date_to, groups=groups, filters=filters,
                              dry_run=args.dry_run and not args.resume,
                              pace_s=settings.backfill_pace_seconds if args.pace is None else args.pace,
                              max_objects=args.max_objects or settings.backfill_max_objects,
                              our_ae_title=settings.receiver_ae_title, profile_overrides=overrides,
                              reprobe=args.reprobe)
            return run(record, options, stop, resume=args.resume)
    except ValueError as exc:
        return usage(str(exc))


def _iso_date(value: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="doseflow", description="Collect radiation-dose data from DICOM objects.")
    sub = p.add_subparsers(dest="command", required=True)
    routes = [route.cli_name for route in registry.ROUTES]

    s = sub.add_parser("import", help="import files, folders or globs in one process (no broker)")
    s.add_argument("paths", nargs="+")
    s.add_argument("--as", dest="route", choices=routes, help="force a route, like the reference's per-type scripts")
    s.add_argument("-v", "--verbose", action="store_true", help="also list ignored objects and why")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("extract", help="print one object's DoseReport, no database")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="compact JSON (default: indented)")
    s.add_argument("--as", dest="route", choices=routes)
    s.set_defaults(func=cmd_extract)

    s = sub.add_parser("studies", help="print stored studies")
    s.add_argument("--json", action="store_true", help="DoseReport JSON array")
    s.add_argument("--study", help="only this StudyInstanceUID")
    s.set_defaults(func=cmd_studies)

    s = sub.add_parser("export", help="stored studies of one modality as a CSV or XLSX table, one row per event")
    s.add_argument("--modality", required=True, choices=["CT", "RF", "DX", "MG"],
                   help="DX includes CR and PX; RF includes XA")
    s.add_argument("--from", dest="date_from", type=_iso_date, help="first study date, YYYY-MM-DD (inclusive)")
    s.add_argument("--to", dest="date_to", type=_iso_date, help="last study date, YYYY-MM-DD (inclusive)")
    s.add_argument("--format", required=True, choices=["csv", "xlsx"])
    s.add_argument("--output", "-o", help="file to write (default: standard output; required for xlsx)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("protocols", help="local study and protocol names of stored CT studies with their "
                       "examination category and count, unmapped first")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_protocols)

    s = sub.add_parser("audit", help="DRL audit of stored studies: one self-contained HTML report and a CSV twin")
    s.add_argument("--modality", default="CT", choices=["CT"], help="CT (the DRL sets shipped are for CT)")
    s.add_argument("--from", dest="date_from", type=_iso_date, help="first study date, YYYY-MM-DD (inclusive)")
    s.add_argument("--to", dest="date_to", type=_iso_date, help="last study date, YYYY-MM-DD (inclusive)")
    s.add_argument("--drl-set", help="DRL set id (default DOSEFLOW_DRL_SET): UK-2024, ARPANSA-2018 or a site set")
    s.add_argument("--k-set", help="k-factor set id (default DOSEFLOW_K_SET)")
    s.add_argument("--output", "-o", help="HTML report to write")
    s.add_argument("--csv", help="CSV of the same table (default: the --output path with .csv)")
    s.add_argument("--remap", action="store_true", help="first recompute every stored study's category, "
                   "estimates and DRL ratios with the current mapping and reference data (no re-import)")
    s.set_defaults(func=cmd_audit)

    s = sub.add_parser("quality", help="per device: objects, studies, missing values, warnings, values out of range")
    s.add_argument("--from", dest="date_from", type=_iso_date, help="first study date, YYYY-MM-DD (inclusive)")
    s.add_argument("--to", dest="date_to", type=_iso_date, help="last study date, YYYY-MM-DD (inclusive)")
    form = s.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="a JSON array, one object per device")
    form.add_argument("--csv", action="store_true", help="CSV, one row per device")
    s.set_defaults(func=cmd_quality)

    s = sub.add_parser("publish", help="put ObjectReceived messages on the broker (with confirms)")
    s.add_argument("paths", nargs="+")
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("worker", help="run one service against the broker")
    s.add_argument("kind", choices=["classifier", "extractor", "ct-dw", "toshiba-builder", "writer", "receiver",
                                    "alerts", "notifier"])
    s.add_argument("routes", nargs="*", help="extractor only: rdsr mg_image dx_image ct_philips (default all)")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("alerts", help="raised high-dose alerts: list, acknowledge; check a rules file")
    alerts = s.add_subparsers(dest="action", required=True)
    a = alerts.add_parser("list", help="raised alerts, oldest first")
    a.add_argument("--json", action="store_true", help="a JSON array, one object per alert")
    a.add_argument("--study", help="only this StudyInstanceUID")
    a = alerts.add_parser("ack", help="acknowledge an alert (who and when)")
    a.add_argument("id", type=int)
    a.add_argument("--by", required=True, help="who acknowledges it")
    a = alerts.add_parser("rules", help="alert rules files")
    a.add_argument("check", choices=["check"])
    a.add_argument("file", help="the rules file to validate")
    s.set_defaults(func=cmd_alerts)

    s = sub.add_parser("backfill", help="retrieve the dose objects of a date range from a PACS (C-FIND, C-MOVE to "
                       "our receiver)")
    s.add_argument("--pacs", help="AET@HOST:PORT, or a node name from DOSEFLOW_BACKFILL_NODES")
    s.add_argument("--from", dest="date_from", type=_iso_date, help="first study date, YYYY-MM-DD (required)")
    s.add_argument("--to", dest="date_to", type=_iso_date, help="last study date, YYYY-MM-DD (required)")
    s.add_argument("--modality", help="comma-separated: CT,MG,DX,RF (default all; DX includes CR and PX, RF XA)")
    s.add_argument("--dry-run", action="store_true", help="query and print what would be retrieved; move nothing")
    s.add_argument("--resume", action="store_true", help="continue the last run that did not complete")
    s.add_argument("--description-include", help="comma-separated terms; keep studies whose description has one")
    s.add_argument("--description-exclude", help="comma-separated terms; skip studies whose description has one")
    s.add_argument("--station-include", help="comma-separated terms; keep series whose station name has one")
    s.add_argument("--station-exclude", help="comma-separated terms; skip series whose station name has one")
    s.add_argument("--pace", type=float, help="seconds between requests (default DOSEFLOW_BACKFILL_PACE_SECONDS)")
    s.add_argument("--max-objects", type=int, help="objects per run at most (default DOSEFLOW_BACKFILL_MAX_OBJECTS)")
    s.add_argument("--reprobe", action="store_true", help="probe the PACS's capabilities again")
    s.set_defaults(func=cmd_backfill)

    s = sub.add_parser("config", help="this process's settings (passwords and keys hidden), or the reference table")
    s.add_argument("--markdown", action="store_true",
                   help="every setting with its variable, default and meaning, as README's table")
    s.set_defaults(func=cmd_config)

    s = sub.add_parser("db", help="database administration")
    s.add_argument("action", choices=["migrate"])
    s.set_defaults(func=cmd_db)

    s = sub.add_parser("status", help="ledger totals, studies, queue depths and dead letters")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("dead-letters", help="list or replay dead-lettered messages")
    s.add_argument("action", choices=["list", "replay"])
    s.add_argument("--id", nargs="+", help="replay these dead letters (ids from `list`)")
    s.add_argument("--all", action="store_true", help="replay every dead letter")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_dead_letters)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    import os

    from pydantic import ValidationError

    from shared import dicom
    from shared.database import DatabaseUnreachable
    from shared.lifecycle import ConfigurationError

    args = build_parser().parse_args(argv)
    try:
        settings = load()
    except ValidationError as exc:
        errors = "; ".join(f"DOSEFLOW_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        print(f"doseflow: invalid configuration: {errors}", file=sys.stderr)
        return 2
    _setup_logging(settings, args.kind if args.command == "worker" else args.command)
    dicom.configure(settings.max_inflated_mb)
    # Expected faults end in one line and a status, never a traceback: a refused login
    # (configuration, exit 3), a service that is down (exit 3), a closed pipe (`| head`).
    try:
        return args.func(args, settings) or 0
    except DatabaseUnreachable as exc:
        log.error("database unavailable: %s", exc)
        return 3
    except KeyboardInterrupt:
        return 130
    except ConfigurationError as exc:
        log.error("configuration error: %s", exc)
        return 3
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except Exception as exc:  # noqa: BLE001 - only the service faults below; the rest re-raised
        import psycopg
        import pika.exceptions

        if isinstance(exc, psycopg.OperationalError):
            log.error("database unavailable: %s", str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc)
        elif isinstance(exc, (pika.exceptions.AMQPError, ConnectionError)):
            log.error("broker unavailable: %s", type(exc).__name__)
        else:
            raise
        return 3


if __name__ == "__main__":
    sys.exit(main())
