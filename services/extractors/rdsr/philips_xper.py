"""The collimated field of a Philips Allura Xper event, from its private "Wedges and Shutters".

The Allura sends no Collimated Field Height/Width/Area (113788/113789/113790). Its private
container (scheme 99PHI-IXR-XPER) holds the four shutter positions in mm at 1 m from the focal
spot (spec §3): projected to the detector at the source-to-detector distance (SID),

    height = (right + left) × SID[m],  width = (bottom + top) × SID[m],  area = height × width.

A field the geometry cannot give is not stored: larger than the detector field the object
states (its private "Detector Field Size", X and Y side, compared side for side whichever way
round, since the shutters' axes are not named against the detector's), or, without one, larger
than DETECTOR_SIDE_LIMIT_MM; or zero. Such a field (shutters open past the detector: the beam
is clipped by the detector's housing, so the shutters do not say what was irradiated) is left
empty with a note naming the values, and the other events keep theirs.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from services.extractors.rdsr.irradiation import Reader
from shared.units import MM
from shared.codes import (
    PHILIPS_BOTTOM_SHUTTER,
    PHILIPS_DETECTOR_FIELD_SIZE,
    PHILIPS_DETECTOR_X_SIDE,
    PHILIPS_DETECTOR_Y_SIDE,
    PHILIPS_FINAL_SOURCE_TO_DETECTOR,
    PHILIPS_LEFT_SHUTTER,
    PHILIPS_RIGHT_SHUTTER,
    PHILIPS_TOP_SHUTTER,
    PHILIPS_WEDGES_AND_SHUTTERS,
)

# Without a stated detector size: the largest flat-panel detectors on projection systems are
# 43 × 43 cm (image intensifiers reach 40 cm), so no field at the detector is wider than this.
DETECTOR_SIDE_LIMIT_MM = 450.0
# Shutter positions come rounded to 0.5 mm at 1 m and the SID to 1 mm: a field up to 2 % over
# the detector is the detector's own size.
ROUNDING = 1.02


class Field(NamedTuple):
    height_mm: Optional[float]
    width_mm: Optional[float]
    area_m2: Optional[float]


NO_FIELD = Field(None, None, None)


def collimated_field(event: Reader, sid_mm: Optional[float]) -> Field:
    """The field from the shutters, or NO_FIELD (noted when the shutters are there but unusable)."""
    shutters = event.child(PHILIPS_WEDGES_AND_SHUTTERS)
    if shutters is None:
        return NO_FIELD
    right, left, bottom, top = (shutters.number(c, MM) for c in (PHILIPS_RIGHT_SHUTTER, PHILIPS_LEFT_SHUTTER, PHILIPS_BOTTOM_SHUTTER,
                                                                  PHILIPS_TOP_SHUTTER))
    if None in (right, left, bottom, top):
        event.note(PHILIPS_WEDGES_AND_SHUTTERS, "lacks one of the four shutter positions, so there is no field size")
        return NO_FIELD
    if sid_mm is None:
        sid_mm = event.number(PHILIPS_FINAL_SOURCE_TO_DETECTOR, MM)
    if not sid_mm:
        event.note(PHILIPS_WEDGES_AND_SHUTTERS, "has no source-to-detector distance to project the shutters with, "
                                        "so there is no field size")
        return NO_FIELD
    height = (right + left) * sid_mm / 1000.0
    width = (bottom + top) * sid_mm / 1000.0
    shutters_text = (f"right {right:g} + left {left:g} mm, bottom {bottom:g} + top {top:g} mm at 1 m, "
                     f"× SID {sid_mm:g} mm")
    if height <= 0 or width <= 0:
        event.note(PHILIPS_WEDGES_AND_SHUTTERS, f"give no field ({shutters_text})")
        return NO_FIELD
    detector = _detector_sides(event)
    if detector is not None:
        limits, what = sorted(detector), f"the detector field {detector[0]:g} × {detector[1]:g} mm the object states"
    else:
        limits, what = [DETECTOR_SIDE_LIMIT_MM] * 2, f"the largest detector ({DETECTOR_SIDE_LIMIT_MM:g} mm a side)"
    if any(side > limit * ROUNDING for side, limit in zip(sorted((height, width)), limits)):
        event.note(PHILIPS_WEDGES_AND_SHUTTERS, f"give a field of {height:.1f} × {width:.1f} mm ({shutters_text}), "
                                        f"larger than {what}")
        return NO_FIELD
    return Field(height, width, height * width / 1e6)


def _detector_sides(event: Reader) -> Optional[tuple[float, float]]:
    size = event.child(PHILIPS_DETECTOR_FIELD_SIZE)
    if size is None:
        return None
    x, y = size.number(PHILIPS_DETECTOR_X_SIDE, MM), size.number(PHILIPS_DETECTOR_Y_SIDE, MM)
    return (x, y) if x and y else None
