"""Siemens Arcadis Varic "Radiation Summary Report" (Enhanced SR, root 99SMS_RADSUM C-10).

A proprietary summary with study totals only, no events: one single-plane row. Its dose
area product is written in Gy·cm², converted like any other unit. The start/end times
(C-206/C-208) have no place in the report; the cumulative air kerma (C-210) is not stored
either, because the summary does not say at which reference point it applies.
"""
from __future__ import annotations

from pydicom.dataset import Dataset

from services.extractors.rdsr.irradiation import Problems, Reader
from shared.units import DAP_GYM2, SECONDS
from shared.outcome import Ignored
from shared.report import Projection, ProjectionPlane
from shared.codes import VARIC_CUMULATIVE_DAP, VARIC_CUMULATIVE_FLUORO_TIME, VARIC_TOTAL_EXPOSURES

def read_varic(ds: Dataset, warnings: list[str]) -> Projection:
    problems = Problems("Varic summary")
    root = Reader(ds, problems)
    if not any(root.has(c) for c in (VARIC_TOTAL_EXPOSURES, VARIC_CUMULATIVE_FLUORO_TIME, VARIC_CUMULATIVE_DAP)):
        raise Ignored("Siemens radiation summary report without exposures, fluoro time or dose area product")
    plane = ProjectionPlane(
        plane="single",
        dap_total_Gym2=root.number(VARIC_CUMULATIVE_DAP, DAP_GYM2),
        total_fluoro_time_s=root.number(VARIC_CUMULATIVE_FLUORO_TIME, SECONDS),
        total_radiographic_frames=root.whole_number(VARIC_TOTAL_EXPOSURES),
    )
    problems.flush(warnings)
    return Projection(planes=[plane], events=[])
