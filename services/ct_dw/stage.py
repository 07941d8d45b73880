"""The Dw stage's one step, shared by the worker and `doseflow import`: a CT image's path in,
an ImageMeasured for the writer out, or Ignored with the reason.

The header decides first (sampled? measurable?), so an image that is not measured costs a
header read; only a sampled image's pixel data are read and measured (bounded by
water_equivalent.MAX_PIXELS). The measurement itself is pure (services/audit/water_equivalent.py).
"""
from __future__ import annotations

import os
import time

from pydicom.dataset import Dataset

from services.audit.water_equivalent import (MAX_FILE_BYTES, SAMPLE_INTERVAL_MM, dw_from_dataset, not_measurable, not_sampled,
                                             slice_z_mm)
from shared.dicom import read_header, read_object, text
from shared.messages import ImageMeasured
from shared.outcome import Failed, Ignored


def measure_file(path: str, real_path: str, *, interval_mm: float = SAMPLE_INTERVAL_MM, sample: bool = True,
                 header: Dataset | None = None, correlation_id: str | None = None) -> ImageMeasured:
    """The measurement of the CT image at `real_path` (`path` as published, for the ledger);
    raises Ignored (not sampled, not measurable, no patient) or Failed (unreadable).
    `sample=False` measures the image whatever its position (`doseflow extract`)."""
    ds = header if header is not None else read_header(real_path)
    study, sop = text(ds, "StudyInstanceUID"), text(ds, "SOPInstanceUID")
    if not study or not sop:
        raise Failed("no StudyInstanceUID or SOPInstanceUID: the image cannot be matched with its study")
    why = not_measurable(ds) or (not_sampled(ds, interval_mm) if sample else None)
    if why:
        raise Ignored(why)
    try:
        size = os.stat(real_path).st_size
    except OSError:
        size = 0  # read_object says what is wrong with the file
    if size > MAX_FILE_BYTES:
        raise Ignored(f"file of {size / (1 << 20):.0f} MB is larger than one CT slice ({MAX_FILE_BYTES >> 20} MB at "
                      "most): not read")
    started = time.perf_counter()
    full = read_object(real_path)
    measured, why = dw_from_dataset(full)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if measured is None:
        raise Ignored(why)
    return ImageMeasured(path=path, sop_instance_uid=sop, study_instance_uid=study,
                         series_instance_uid=text(ds, "SeriesInstanceUID"),
                         irradiation_event_uid=text(ds, "IrradiationEventUID"), z_mm=slice_z_mm(ds),
                         dw_mm=measured.dw_mm, area_mm2=measured.area_mm2, mean_hu=measured.mean_hu,
                         edge_share=measured.edge_share, measure_ms=elapsed_ms, correlation_id=correlation_id)
