"""The route registry: every way a dose object can go, written once.

A route is the classifier's verdict for one object: the name it publishes with (routing key on
`doseflow.extract`, `Source.route` in a report, the ledger's route), the queue its stage
consumes, the name `doseflow import/extract --as` accepts, and the function that extracts it.
The broker topology (shared/broker.py), the generated deploy/rabbitmq/definitions.json, the CLI
choices and the report's `Route` type are all derived from this table, so a new modality is
one row here, one extractor module and one classifier rule. The stage that consumes a route's
queue is named here too (`stage`), so the route's worker and the in-process import build it the
same way.

The extractor is named as "module:function" and imported when first used: `shared/` holds the
contracts and never imports a service.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Literal, Optional


@dataclass(frozen=True)
class Route:
    name: str
    queue: str
    cli_name: str
    # "module:function" of the pure extractor (Dataset, ExtractOptions) -> DoseReport; None for
    # a route whose objects are built into a report per study (the legacy Toshiba screens) or
    # give no report of their own (CT images measured for their water-equivalent diameter).
    extractor: Optional[str]
    description: str
    # "module:function" of the factory of the stage that consumes the route's queue,
    # (Route, shared.broker.StageContext) -> shared.broker.Stage: the route's worker and
    # `doseflow import` both build the route's stage with it.
    stage: str = "services.extractors.worker:route_stage"

    def extract_function(self) -> Callable:
        if self.extractor is None:
            raise LookupError(f"route {self.name!r} has no per-object extractor")
        return _function(self.extractor)

    def stage_function(self) -> Callable:
        return _function(self.stage)


def _function(name: str) -> Callable:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


RDSR = Route("rdsr", "extract.rdsr", "rdsr", "services.extractors.rdsr:extract",
             "RDSRs, GE CT enhanced SR, Siemens Varic summary")
MG_IMAGE = Route("mg_image", "extract.mg_image", "mg", "services.extractors.mg_image:extract",
                 "mammography images, Hologic DBT projection SC")
DX_IMAGE = Route("dx_image", "extract.dx_image", "dx", "services.extractors.dx_image:extract",
                 "CR / DX / PX images")
CT_PHILIPS = Route("ct_philips", "extract.ct_philips", "ctphilips", "services.extractors.ct_philips:extract",
                   'Philips CT "Dose Info" secondary captures')
TOSHIBA = Route("toshiba", "toshiba.collect", "toshiba", None,
                "legacy Toshiba CT (dose screen + image headers), built per study",
                stage="services.toshiba_builder.worker:collect_stage")
# Not a dose object: a CT axial image of a study whose dose comes in its RDSR. Its patient
# contour gives a water-equivalent diameter (AAPM 220) for the SSDE of its irradiation event.
CT_DW = Route("ct_dw", "measure.ct_dw", "ctdw", None,
              "CT axial images: water-equivalent diameter (AAPM 220) for SSDE",
              stage="services.ct_dw.worker:route_stage")

ROUTES: tuple[Route, ...] = (RDSR, MG_IMAGE, DX_IMAGE, CT_PHILIPS, TOSHIBA, CT_DW)
BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}
BY_CLI_NAME: dict[str, Route] = {r.cli_name: r for r in ROUTES}
# Routes whose objects are extracted one by one (the extractor worker's queues).
EXTRACTED: tuple[Route, ...] = tuple(r for r in ROUTES if r.extractor is not None)

RouteName = Literal[tuple(r.name for r in ROUTES)]  # the report's `Source.route`
