"""`doseflow protocols` and `doseflow audit`: thin shells over services/audit (read stored
studies, run the pure audit, write the files)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from doseflow.export import csv_cell, export_modality
from services.audit.config import load_config
from services.audit.html_report import render
from services.audit.mapping import load_map, protocol_listing
from services.audit.references import ReferenceError
from services.audit.statistics import TABLE_HEADERS, audit, table_rows


def protocols(conn, settings, as_json: bool) -> int:
    from services.writer.store import stored_studies

    try:
        pmap = load_map(settings.protocol_map)
    except ReferenceError as exc:
        print(f"doseflow protocols: {exc}", file=sys.stderr)
        return 2
    reports = [r for r in stored_studies(conn) if export_modality(r) == "CT"]
    listing = protocol_listing(reports, pmap)
    if as_json:
        print(json.dumps([x.__dict__ for x in listing], ensure_ascii=False))
        return 0
    print(f"{'studies':>7}  {'category':<28} {'field':<20} name   (mapping: {pmap.source})")
    for x in listing:
        print(f"{x.studies:>7}  {x.category or '-- unmapped --':<28} {x.field:<20} {x.name}")
    unmapped = sum(1 for x in listing if x.category is None)
    print(f"{len(listing)} local names, {unmapped} unmapped, in {len(reports)} CT studies")
    return 0


def remap(conn) -> int:
    """Recompute every stored study's derived values with the current mapping and reference data
    (re-assembled from its stored objects; no DICOM file is read). Returns the number of studies."""
    from services.writer.store import rebuild_study

    uids = [r[0] for r in conn.execute("SELECT study_instance_uid FROM study ORDER BY 1").fetchall()]
    for uid in uids:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (uid,))
            rebuild_study(conn, uid)
    return len(uids)


def run_audit(conn, settings, args) -> int:
    from services.writer.store import stored_studies

    try:
        cfg = load_config(settings, drl_set=args.drl_set, k_set=args.k_set)
    except ReferenceError as exc:
        print(f"doseflow audit: {exc}", file=sys.stderr)
        return 2
    if args.remap:
        print(f"recomputed {remap(conn)} stored studies with {cfg.protocol_map.source}, "
              f"{cfg.drl.provenance.label}, {cfg.k.method}", file=sys.stderr)
    if not args.output:
        return 0
    reports = [r for r in stored_studies(conn, date_from=args.date_from, date_to=args.date_to)
               if export_modality(r) == args.modality]
    result = audit(reports, cfg)
    output = Path(args.output)
    output.write_text(render(result, date_from=args.date_from, date_to=args.date_to), encoding="utf-8")
    csv_path = Path(args.csv) if args.csv else output.with_suffix(".csv")
    with open(csv_path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(TABLE_HEADERS)
        for row in table_rows(result):
            writer.writerow([csv_cell(v) for v in row])
    print(f"audit of {result.studies} CT studies: {len(result.groups)} device/category groups, "
          f"{len(result.unmatched)} studies not compared; wrote {output} and {csv_path}", file=sys.stderr)
    return 0
