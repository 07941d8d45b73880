"""Water-equivalent diameter Dw of a CT axial image, AAPM Report 220 (spec dose-references §4.1):
the patient is the pixels above a CT-number threshold (the largest connected region, so the table
and other objects apart from the patient are left out), with the holes inside it (lungs, bowel gas)
filled; Aw = (mean CT number of that region / 1000 + 1) x its area, Dw = 2 sqrt(Aw / pi).

Pure functions of a pixel array; `dw_from_dataset` adds the DICOM edge (rescale to HU, pixel spacing).
Localizer (projection) images need a calibration of attenuation to water (AAPM 220 §3) that no
scanner states in its headers, so they are not measured here.
"""
from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np

from services.audit.indices import water_equivalent_area_mm2, water_equivalent_diameter_mm

# CT number separating patient from air [doseflow convention: between air (-1000) and lung
# (about -800 .. -500 is filled in anyway as a hole) and fat (about -100)].
THRESHOLD_HU = -400.0
MAX_PIXELS = 4096 * 4096  # a bound on the work per image


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    best_label, best_size, current = 0, 0, 0
    rows, cols = mask.shape
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        current += 1
        labels[start] = current
        size, queue = 0, deque([start])
        while queue:
            r, c = queue.popleft()
            size += 1
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < rows and 0 <= nc < cols and mask[nr, nc] and not labels[nr, nc]:
                    labels[nr, nc] = current
                    queue.append((nr, nc))
        if size > best_size:
            best_label, best_size = current, size
    return labels == best_label if best_size else np.zeros_like(mask)


def _fill_holes(region: np.ndarray) -> np.ndarray:
    """The region with every part not reachable from the image border through non-region pixels."""
    outside = np.zeros(region.shape, dtype=bool)
    rows, cols = region.shape
    queue = deque()
    for r in range(rows):
        for c in (0, cols - 1):
            if not region[r, c] and not outside[r, c]:
                outside[r, c] = True
                queue.append((r, c))
    for c in range(cols):
        for r in (0, rows - 1):
            if not region[r, c] and not outside[r, c]:
                outside[r, c] = True
                queue.append((r, c))
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < rows and 0 <= nc < cols and not region[nr, nc] and not outside[nr, nc]:
                outside[nr, nc] = True
                queue.append((nr, nc))
    return ~outside


def dw_from_hu(hu: np.ndarray, pixel_area_mm2: float, threshold_hu: float = THRESHOLD_HU) -> Optional[float]:
    """Dw in mm of one axial image in Hounsfield units; None when no patient is found."""
    if hu.ndim != 2 or hu.size == 0 or hu.size > MAX_PIXELS:
        return None
    patient = _fill_holes(_largest_component(hu > threshold_hu))
    pixels = int(patient.sum())
    if pixels == 0:
        return None
    aw = water_equivalent_area_mm2(float(hu[patient].mean()), pixels * pixel_area_mm2)
    return water_equivalent_diameter_mm(aw) if aw > 0 else None


def dw_from_dataset(ds) -> tuple[Optional[float], Optional[str]]:
    """(Dw in mm, None) or (None, why not) for a CT Image Storage object with pixel data."""
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if "LOCALIZER" in image_type:
        return None, "localizer: Dw from a projection image needs a calibration the headers do not give"
    if "AXIAL" not in image_type:
        return None, "not an axial image"
    spacing = ds.get("PixelSpacing")
    if not spacing or len(spacing) != 2 or not all(float(s) > 0 for s in spacing):
        return None, "no pixel spacing"
    if "PixelData" not in ds:
        return None, "no pixel data"
    try:
        pixels = ds.pixel_array.astype(np.float64)
    except Exception as exc:  # pydicom raises many kinds for pixel data it cannot decode
        return None, f"pixel data cannot be decoded ({type(exc).__name__})"
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    dw = dw_from_hu(pixels * slope + intercept, float(spacing[0]) * float(spacing[1]))
    return (dw, None) if dw is not None else (None, "no patient above the threshold")
