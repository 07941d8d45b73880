"""CT axial images for the Dw stage's tests, made from a corpus CT image's header.

The corpus's CT images carry 16 x 16 pixels of water (a synthetic Toshiba study): real headers,
but no patient inside a field of view. `phantom_image` keeps such a header and puts a 512 x 512
slice in it: a water body with two lungs, a table under it (not touching) and the -3024 padding a
scanner writes outside its round reconstruction field; `expected_dw_mm` is that slice's Dw worked
out from its own pixel counts (AAPM 220), independently of doseflow's segmentation.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from tests.conftest import corpus_file

CORPUS_CT_IMAGE = "toshiba/toshiba_cxl_cap_contrast/IM00001.dcm"  # axial, z -20 mm, 5 mm slices
SIZE = 512
SPACING_MM = 0.78125  # a 400 mm display field of view


def phantom_pixels(dw_target_mm: float = 240.0) -> tuple[np.ndarray, float]:
    """(HU image, its Dw from pixel counts): a water disc sized for `dw_target_mm` with two
    -800 HU lungs inside it."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    centre = SIZE / 2
    hu = np.full((SIZE, SIZE), -1000.0)
    hu[(yy - centre) ** 2 + (xx - centre) ** 2 > (SIZE / 2) ** 2] = -3024.0  # outside the reconstruction
    # The lungs make the body's mean CT number < 0, so its outline must be larger than Dw: solve
    # for the radius that gives the target with lungs of a fixed share of the area.
    lung_share = 0.12
    radius_px = dw_target_mm / 2 / SPACING_MM / math.sqrt(1 - 0.8 * lung_share)
    body = (yy - centre) ** 2 + (xx - centre) ** 2 <= radius_px ** 2
    hu[body] = 0.0
    lung_r = radius_px * math.sqrt(lung_share / 2)
    for side in (-1, 1):
        hu[(yy - centre) ** 2 + (xx - centre - side * radius_px / 2) ** 2 <= lung_r ** 2] = -800.0
    table_row = int(centre + radius_px + 12)
    hu[table_row:table_row + 6, 60:SIZE - 60] = 300.0
    area = body.sum() * SPACING_MM ** 2
    mean = hu[body].mean()
    return hu, 2 * math.sqrt((mean / 1000 + 1) * area / math.pi)


def phantom_image(path: Path, *, study_uid: str, event_uid: str | None, z_mm: float, series_uid: str,
                  dw_target_mm: float = 240.0, manufacturer: str = "SIEMENS",
                  model: str = "SOMATOM Definition Flash") -> float:
    """Write a CT image (the corpus header, the phantom slice) to `path`; returns its expected Dw."""
    ds = pydicom.dcmread(corpus_file(CORPUS_CT_IMAGE))
    hu, dw = phantom_pixels(dw_target_mm)
    stored = np.round(hu - float(ds.RescaleIntercept)).astype(np.int16)
    ds.PixelRepresentation = 1  # signed: the padding is below the intercept
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.Rows, ds.Columns = SIZE, SIZE
    ds.PixelSpacing = [SPACING_MM, SPACING_MM]
    ds.PixelData = stored.tobytes()
    ds.Manufacturer, ds.ManufacturerModelName = manufacturer, model
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    if event_uid is None:
        if "IrradiationEventUID" in ds:
            del ds.IrradiationEventUID
    else:
        ds.IrradiationEventUID = event_uid
    ds.ImagePositionPatient = [-200.0, -200.0, z_mm]
    ds.SliceLocation = z_mm
    ds.save_as(path, enforce_file_format=True)
    return dw
