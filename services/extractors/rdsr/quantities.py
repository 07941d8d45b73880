"""Units of the numbers in a dose SR, and their conversion to the units doseflow stores.

A NUM content item carries its unit as a UCUM code (MeasurementUnitsCodeSequence). Each
quantity doseflow stores has one unit (the one in its field name) and a table of the unit
codes it accepts, with the factor that converts each one. A unit code not in the table is not
guessed at: the value is dropped with a warning, because a dose in the wrong unit is worse than
no dose.

The tables hold the UCUM spelling and the non-UCUM spellings vendors are known to send for
the same unit (Siemens "Gym2", Siemens Arcadis "Gy.cm^2", Canon "uA.s", GE "pulse/s").
"""
from __future__ import annotations

from typing import NamedTuple, Optional


class Unit(NamedTuple):
    name: str  # the stored unit, as written in field names
    factors: Optional[dict[str, float]]  # accepted unit code -> factor to `name`; None: any unit


def _unit(name: str, factors: dict[str, float]) -> Unit:
    return Unit(name, factors)


# Dose area product, stored in Gy·m². 1 dGy·cm² = 0.1 Gy × 1e-4 m² = 1e-5 Gy·m².
DAP_GYM2 = _unit("Gy.m2", {
    "Gy.m2": 1.0, "Gym2": 1.0, "Gy.m^2": 1.0,
    "dGy.m2": 1e-1, "cGy.m2": 1e-2, "mGy.m2": 1e-3, "uGy.m2": 1e-6,
    "Gy.cm2": 1e-4, "Gy.cm^2": 1e-4,
    "dGy.cm2": 1e-5, "dGy.cm^2": 1e-5,
    "cGy.cm2": 1e-6, "cGy.cm^2": 1e-6,
    "mGy.cm2": 1e-7, "mGy.cm^2": 1e-7,
    "uGy.cm2": 1e-10,
})

# Air kerma / dose, stored in Gy (dose at the reference point) or mGy (AGD, entrance exposure).
DOSE_GY = _unit("Gy", {"Gy": 1.0, "dGy": 1e-1, "cGy": 1e-2, "mGy": 1e-3, "uGy": 1e-6})
DOSE_MGY = _unit("mGy", {"mGy": 1.0, "Gy": 1e3, "dGy": 1e2, "cGy": 1e1, "uGy": 1e-3})

KV = _unit("kV", {"kV": 1.0, "kVp": 1.0, "V": 1e-3})
MA = _unit("mA", {"mA": 1.0, "A": 1e3, "uA": 1e-3})
UAS = _unit("uAs", {"uAs": 1.0, "uA.s": 1.0, "mAs": 1e3, "mA.s": 1e3, "As": 1e6, "A.s": 1e6})
MS = _unit("ms", {"ms": 1.0, "s": 1e3, "us": 1e-3})
SECONDS = _unit("s", {"s": 1.0, "ms": 1e-3, "min": 60.0})
MM = _unit("mm", {"mm": 1.0, "cm": 10.0, "m": 1e3})
M2 = _unit("m2", {"m2": 1.0, "cm2": 1e-4, "mm2": 1e-6})
DEG = _unit("deg", {"deg": 1.0})
NEWTON = _unit("N", {"N": 1.0, "daN": 10.0, "dN": 0.1})
PER_S = _unit("/s", {"{pulse}/s": 1.0, "pulse/s": 1.0, "{pulses}/s": 1.0, "/s": 1.0, "1/s": 1.0,
                     "Hz": 1.0, "{frame}/s": 1.0})

# Counts and indices: the unit ("1", "{pulse}", none at all) does not change the number.
COUNT = Unit("count", None)


def convert(value: float, unit_code: Optional[str], unit: Unit) -> tuple[Optional[float], Optional[str]]:
    """`value` in `unit_code` converted to `unit`; (None, why) when the unit is missing or
    not one this quantity accepts."""
    if unit.factors is None:
        return value, None
    if not unit_code:
        return None, f"has no unit (expected {unit.name})"
    factor = unit.factors.get(unit_code)
    if factor is None:
        return None, f"has unit {unit_code!r}, which is not a unit of {unit.name} doseflow converts"
    return value * factor, None
