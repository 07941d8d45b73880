"""`doseflow extract FILE [--as ROUTE]`: one object's DoseReport, as the writer would store it
alone, without a database or broker. The command prints what this returns or raises; the fuzz
suite runs it in-process and checks the command says the same."""
from __future__ import annotations

import os
from typing import Optional

from services.audit.indices import enrich
from services.classifier.rules import RoutingRules
from services.classifier.worker import classify_file
from services.extractors.common import ExtractOptions
from services.extractors.routes import ROUTE_ALIASES
from services.extractors.worker import extract_file
from shared import routes
from shared.dicom import read_header
from shared.outcome import Ignored
from shared.report import DoseReport

LEGACY_TOSHIBA = ("legacy Toshiba CT object: a Toshiba study is built from all its objects "
                  "(doseflow import --as toshiba FOLDER)")


def extract_object(path: str, cli_route: Optional[str], rules: RoutingRules,
                   options: ExtractOptions) -> DoseReport:
    """The report of the object at `path` (the route the classifier chooses, or the forced
    `--as` name), with doseflow's own audit values. Raises Ignored or Failed with the reason."""
    if cli_route:
        route, ds = ROUTE_ALIASES[cli_route], read_header(path)
    else:
        route, ds = classify_file(os.path.abspath(path), rules, roots=[])
    if route == routes.TOSHIBA.name:
        raise Ignored(LEGACY_TOSHIBA)
    if route == routes.CT_DW.name:
        from services.ct_dw.stage import measure_file

        m = measure_file(path, path, sample=False, header=ds)
        raise Ignored(f"CT image without dose data: water-equivalent diameter {m.dw_mm:.1f} mm (AAPM 220: patient "
                      f"area {m.area_mm2:.0f} mm², mean {m.mean_hu:.0f} HU), for the SSDE of its irradiation event "
                      "when imported with the study's RDSR")
    from services.writer.store import audit_config

    return enrich(extract_file(path, route, options, ds), audit_config())
