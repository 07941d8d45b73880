"""The `extract.rdsr` route: X-Ray Radiation Dose SRs and dose Enhanced SRs (GE CT ESR,
Siemens Arcadis Varic summary) to a DoseReport.

`extract(ds, options)` is the route's one entry point; this module reads the root (template,
observer, header), and hands the content tree to the section readers: `ct.py` (TID 10011),
`projection.py` (TID 10001 projection X-ray), `mammography.py` (TID 10001 mammography),
`varic.py` (Siemens proprietary summary).
"""
from __future__ import annotations

from pydicom.dataset import Dataset

from services.extractors.common import DEFAULT_OPTIONS, ExtractOptions
from shared.outcome import Failed, Ignored
from shared import routes

ROUTE = routes.RDSR.name


def extract(ds: Dataset, options: ExtractOptions = DEFAULT_OPTIONS):
    from services.extractors.rdsr.report import extract_report

    return extract_report(ds, options)


__all__ = ["extract", "ROUTE", "Failed", "Ignored"]
