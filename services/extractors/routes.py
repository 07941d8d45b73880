"""The extractor routes: one pure function per route, Dataset -> DoseReport.

The same table serves `doseflow extract`, `doseflow import` and the extractor worker.
"""
from __future__ import annotations

from typing import Callable

from pydicom.dataset import Dataset

from services.extractors.common import DEFAULT_OPTIONS, ExtractOptions
from shared.outcome import Failed
from shared.report import DoseReport

Extractor = Callable[[Dataset, ExtractOptions], DoseReport]


def _table() -> dict[str, Extractor]:
    from services.extractors import ct_philips, dx_image, mg_image, rdsr

    return {
        "rdsr": rdsr.extract,
        "mg_image": mg_image.extract,
        "dx_image": dx_image.extract,
        "ct_philips": ct_philips.extract,
    }


# Names users give to `doseflow import --as`, as in the reference system's scripts.
ROUTE_ALIASES = {"rdsr": "rdsr", "mg": "mg_image", "dx": "dx_image", "ctphilips": "ct_philips",
                 "toshiba": "toshiba"}
EXTRACT_ROUTES = ("rdsr", "mg_image", "dx_image", "ct_philips")


def extract(ds: Dataset, route: str, options: ExtractOptions = DEFAULT_OPTIONS) -> DoseReport:
    try:
        extractor = _table()[route]
    except KeyError:
        raise Failed(f"no extractor for route {route!r}") from None
    return extractor(ds, options)
