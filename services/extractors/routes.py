"""The extractor routes: one pure function per route, Dataset -> DoseReport.

The same table serves `doseflow extract`, `doseflow import` and the extractor worker.
"""
from __future__ import annotations

import functools
import math
from typing import Callable

from pydantic import BaseModel
from pydicom.dataset import Dataset

from services.extractors.common import DEFAULT_OPTIONS, ExtractOptions
from services.extractors.privacy import protect
from shared import device, plausibility
from shared.outcome import Failed
from shared.report import DoseReport
from shared import routes

Extractor = Callable[[Dataset, ExtractOptions], DoseReport]


@functools.cache
def _table() -> dict[str, Extractor]:
    return {route.name: route.extract_function() for route in routes.EXTRACTED}


# Names users give to `doseflow import --as`, as in the reference system's scripts.
ROUTE_ALIASES = {route.cli_name: route.name for route in routes.ROUTES}
EXTRACT_ROUTES = tuple(route.name for route in routes.EXTRACTED)


def extract(ds: Dataset, route: str, options: ExtractOptions = DEFAULT_OPTIONS) -> DoseReport:
    try:
        extractor = _table()[route]
    except KeyError:
        raise Failed(f"no extractor for route {route!r}") from None
    report = extractor(ds, options)
    drop_impossible_numbers(report, report, "")
    plausibility.check(report)
    protect(report, options)
    report.equipment.device_key = device.key_of(report)
    return report


# No dose, time, length or count an X-ray system reports comes near this; a value beyond it is a
# corrupt number, and summing two such values into a study total would overflow to infinity,
# which neither JSON nor the database can hold.
LARGEST_PLAUSIBLE = 1e100


def drop_impossible_numbers(report: DoseReport, model: BaseModel, where: str) -> None:
    """Set to None, with a warning naming the field, every number that is infinite or NaN (a
    huge value that overflowed in a unit conversion: 1.8e308 dGy × 100 mGy/dGy) or beyond
    LARGEST_PLAUSIBLE. One place after every route, instead of a check after every product."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{where}.{name}" if where else name
        if isinstance(value, BaseModel):
            drop_impossible_numbers(report, value, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    drop_impossible_numbers(report, item, f"{path}[{i}]")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and not (
                math.isfinite(value) and abs(value) <= LARGEST_PLAUSIBLE):
            setattr(model, name, None)
            report.warnings.append(f"{path}: {value:g} is not a plausible number (corrupt or overflowed "
                                   "in unit conversion); left empty")
