"""Water-equivalent diameter Dw of CT axial images, AAPM Report 220 (spec dose-references §4.1),
and how one Dw per irradiation event is made from several images.

One image: the patient is the pixels above a CT-number threshold (the largest connected region,
so the table and other objects apart from the patient are left out), with the holes inside it
(lungs, bowel gas) filled; Aw = (mean CT number of that region / 1000 + 1) x its area,
Dw = 2 sqrt(Aw / pi).

One event: AAPM 220 defines Dw at each table position z, Dw(z), and notes that it varies along
the patient (small at the neck, large at the abdomen; the thorax is lighter than its outline).
A single image at the centre of the scan range stands for the event only where the patient is
alike along it; the mean of Dw(z) at positions spread evenly over the whole range is the
representative value for any region (what CID 10024 calls "integrated across scan range"). So
images are sampled on a fixed z grid (`SAMPLE_INTERVAL_MM`, decided from the header alone, the
same decision whatever order the images come in) and an event's Dw is the mean over the sampled
images of one series of that event: evenly spaced samples make the mean an average over z.

Pure functions of pixel arrays and headers; the I/O is the Dw stage's (services/ct_dw).
Localizer (projection) images need a calibration of attenuation to water (AAPM 220 §3) that no
scanner states in its headers, so they are not measured here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage


# CT number separating patient from air [doseflow convention: between air (-1000) and lung
# (about -800 .. -500, filled in anyway as a hole) and fat (about -100); AAPM 220 Fig. 2 used -383].
THRESHOLD_HU = -400.0
# Bounds on the work per image: rows x columns (a CT slice is 512 x 512, some 1024 x 1024) and
# the bytes of pixel data decoded.
MAX_PIXELS = 2048 * 2048
# A file larger than this is not one CT slice (2048 x 2048 x 32 bits is 16 MB): not read.
MAX_FILE_BYTES = 64 << 20
# One image per this much table travel is measured [doseflow convention]: AAPM 220 Fig. 2
# sampled every 10th image; 20 mm gives 5 to 25 samples over a 100 to 500 mm scan range.
SAMPLE_INTERVAL_MM = 20.0
# A patient reaching the image edge along more than this share of it is cut by the field of
# view: the part outside is missing, Dw would be too small and SSDE too large [doseflow convention].
MAX_EDGE_SHARE = 0.10
METHOD = ("AAPM 220 from axial images: mean Dw of {n} image{s} sampled every {interval:g} mm over the event's "
          "scan range (series {series}), patient above {threshold:g} HU")
IMAGE_METHOD_PREFIX = "AAPM 220 from axial images"


def water_equivalent_area_mm2(mean_hu: float, area_mm2: float) -> float:
    """AAPM 220: Aw = (mean CT number / 1000 + 1) x ROI area."""
    return (mean_hu / 1000.0 + 1.0) * area_mm2


def water_equivalent_diameter_mm(aw_mm2: float) -> float:
    """AAPM 220: Dw = 2 sqrt(Aw / pi)."""
    return 2.0 * math.sqrt(aw_mm2 / math.pi)


@dataclass(frozen=True)
class ImageDw:
    """One image's patient contour measured (AAPM 220)."""

    dw_mm: float
    area_mm2: float  # area of the patient contour, holes filled
    mean_hu: float  # mean CT number inside it
    edge_share: float  # share of the image border inside the patient (0 = not cut by the field of view)


def patient_region(hu: np.ndarray, threshold_hu: float = THRESHOLD_HU) -> np.ndarray:
    """The largest 4-connected region above the threshold, holes filled (boolean mask)."""
    labels, count = ndimage.label(hu > threshold_hu)
    if count == 0:
        return np.zeros(hu.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # the background is not a region
    region = labels == int(sizes.argmax())
    # Holes: the parts of the rest that do not reach the image edge (one labelling pass; scipy's
    # binary_fill_holes dilates until nothing changes, twice as slow on a 512 x 512 slice).
    rest, _ = ndimage.label(~region)
    reaches_edge = np.zeros(int(rest.max()) + 1, dtype=bool)
    reaches_edge[np.concatenate([rest[0, :], rest[-1, :], rest[:, 0], rest[:, -1]])] = True
    reaches_edge[0] = False  # label 0 is the region itself
    return ~reaches_edge[rest]


def measure_hu(hu: np.ndarray, pixel_area_mm2: float, threshold_hu: float = THRESHOLD_HU) -> Optional[ImageDw]:
    """The patient contour of one axial image in Hounsfield units; None when there is none."""
    if hu.ndim != 2 or hu.size == 0 or hu.size > MAX_PIXELS:
        return None
    patient = patient_region(hu, threshold_hu)
    pixels = int(patient.sum())
    if pixels == 0:
        return None
    area = pixels * pixel_area_mm2
    mean = float(hu[patient].mean())
    aw = water_equivalent_area_mm2(mean, area)
    if aw <= 0:
        return None
    border = np.concatenate([patient[0, :], patient[-1, :], patient[1:-1, 0], patient[1:-1, -1]])
    return ImageDw(water_equivalent_diameter_mm(aw), area, mean, float(border.mean()))


def dw_from_hu(hu: np.ndarray, pixel_area_mm2: float, threshold_hu: float = THRESHOLD_HU) -> Optional[float]:
    """Dw in mm of one axial image in Hounsfield units; None when no patient is found."""
    measured = measure_hu(hu, pixel_area_mm2, threshold_hu)
    return measured.dw_mm if measured else None


# --- which images, from the header ------------------------------------------------------------


def _numbers(value) -> list[float]:
    try:
        return [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__iter__")
                                   and not isinstance(value, (str, bytes)) else [value])]
    except (TypeError, ValueError):
        return []


def image_type(ds) -> list[str]:
    value = ds.get("ImageType") or []
    values = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().upper() for v in values]


def slice_z_mm(ds) -> Optional[float]:
    """The table position of an axial slice: ImagePositionPatient z, else SliceLocation."""
    position = _numbers(ds.get("ImagePositionPatient"))
    if len(position) == 3:
        return position[2]
    location = _numbers(ds.get("SliceLocation"))
    return location[0] if len(location) == 1 else None


def slice_spacing_mm(ds) -> Optional[float]:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _numbers(ds.get(keyword))
        if len(value) == 1 and value[0] > 0:
            return value[0]
    return None


def not_measurable(ds) -> Optional[str]:
    """Why a CT image (header) gives no Dw, or None."""
    kinds = image_type(ds)
    if "LOCALIZER" in kinds:
        return "localizer: Dw from a projection image needs a calibration the headers do not give"
    if "AXIAL" not in kinds:
        return "not an axial image"
    spacing = _numbers(ds.get("PixelSpacing"))
    if len(spacing) != 2 or not all(s > 0 for s in spacing):
        return "no pixel spacing"
    rows, columns = _numbers(ds.get("Rows")), _numbers(ds.get("Columns"))
    if not rows or not columns:
        return "no image size (Rows, Columns)"
    if rows[0] * columns[0] > MAX_PIXELS:
        return f"image of {rows[0]:g} x {columns[0]:g} pixels is larger than measured ({MAX_PIXELS} pixels at most)"
    frames = _numbers(ds.get("NumberOfFrames"))
    if frames and frames[0] > 1:  # a CT Image Storage slice is one frame; decoding more is unbounded work
        return f"{frames[0]:g} frames: Dw is measured on single axial slices"
    bits = _numbers(ds.get("BitsAllocated"))
    if bits and bits[0] not in (8, 16, 32):
        return f"{bits[0]:g} bits allocated per pixel: not a CT slice this stage decodes"
    return None


def not_sampled(ds, interval_mm: float = SAMPLE_INTERVAL_MM) -> Optional[str]:
    """Why this image is not one of the sampled ones, or None. The slice whose half-spacing
    window holds a multiple of `interval_mm` is sampled: for a contiguous series one image per
    grid line, decided per image, whatever order the images come in."""
    z = slice_z_mm(ds)
    if z is None:
        return "no slice position (ImagePositionPatient, SliceLocation)"
    # Without a spacing the window is 1 mm: images within 0.5 mm of a grid line.
    spacing = slice_spacing_mm(ds) or 1.0
    if (z + spacing / 2) % interval_mm < spacing:
        return None
    return (f"not sampled: Dw is measured on one image per {interval_mm:g} mm of table travel "
            f"(slice at z {z:g} mm, spacing {spacing:g} mm)")


def dw_from_dataset(ds) -> tuple[Optional[ImageDw], Optional[str]]:
    """(the image's measurement, None) or (None, why not) for a CT Image Storage object with
    pixel data (header checks of `not_measurable` included; sampling is the caller's)."""
    why = not_measurable(ds)
    if why:
        return None, why
    if "PixelData" not in ds:
        return None, "no pixel data"
    try:
        pixels = ds.pixel_array.astype(np.float64)
    except Exception as exc:  # pydicom raises many kinds for pixel data it cannot decode
        return None, f"pixel data cannot be decoded ({type(exc).__name__})"
    if pixels.ndim != 2:
        return None, f"pixel data of {pixels.ndim} dimensions, not one slice"
    slope = _numbers(ds.get("RescaleSlope")) or [1.0]
    intercept = _numbers(ds.get("RescaleIntercept")) or [0.0]
    spacing = _numbers(ds.get("PixelSpacing"))
    measured = measure_hu(pixels * (slope[0] or 1.0) + intercept[0], spacing[0] * spacing[1])
    if measured is None:
        return None, f"no patient above {THRESHOLD_HU:g} HU"
    if measured.edge_share > MAX_EDGE_SHARE:
        return None, (f"patient cut by the field of view ({measured.edge_share:.0%} of the image edge is inside "
                      f"the patient): its Dw ({measured.dw_mm:.1f} mm) would be too small")
    return measured, None


# --- one Dw per event ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """A sampled image's Dw as the writer keeps it (table ct_image_measurement)."""

    sop_instance_uid: str
    series_instance_uid: Optional[str]
    irradiation_event_uid: Optional[str]
    z_mm: Optional[float]
    dw_mm: float


def event_dw(measurements: Sequence[Measurement],
             interval_mm: float = SAMPLE_INTERVAL_MM) -> tuple[Optional[float], Optional[str]]:
    """(Dw in mm, method) of one event from its images' measurements, or (None, None).

    One series only: an acquisition is often reconstructed twice (5 mm and 1 mm, soft tissue
    and lung), and both series sample the same positions. The series with most sampled images
    (the one covering most of the range; ties to the smallest UID, so the choice does not depend
    on arrival order) gives the mean."""
    if not measurements:
        return None, None
    series: dict[str, list[Measurement]] = {}
    for m in measurements:
        series.setdefault(m.series_instance_uid or "", []).append(m)
    uid, chosen = min(series.items(), key=lambda item: (-len(item[1]), item[0]))
    dw = sum(m.dw_mm for m in chosen) / len(chosen)
    method = METHOD.format(n=len(chosen), s="" if len(chosen) == 1 else "s", interval=interval_mm,
                           series=uid or "unknown", threshold=THRESHOLD_HU)
    return dw, method
