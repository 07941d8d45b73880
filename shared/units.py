"""Units: every unit spelling an extractor accepts, in one table, and the one conversion.

A NUM content item of a dose SR carries its unit as a UCUM code (MeasurementUnitsCodeSequence).
Each quantity doseflow stores has one unit (the one in its field name) and accepts the unit
codes listed here, each with the factor that converts it. A unit code not in the table is not
guessed at: the value is dropped with a warning, because a dose in the wrong unit is worse than
no dose.

The table holds the UCUM spelling and the non-UCUM spellings vendors are known to send for the
same unit: Siemens "Gym2", Siemens Arcadis "Gy.cm^2", Canon "uA.s", GE "pulse/s" and "mGycm".
Separators of a product are read alike ("mGy*cm", "mGy cm", "mGy·cm" are "mGy.cm").
"""
from __future__ import annotations

from typing import NamedTuple, Optional


class Unit(NamedTuple):
    name: str  # the stored unit, as written in field names
    factors: Optional[dict[str, float]]  # accepted unit code -> factor to `name`; None: a count


def normalised(code: str) -> str:
    """A unit code with a product's separator written as UCUM's '.'."""
    return code.strip().replace("*", ".").replace("·", ".").replace(" ", ".")


def _product(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    # "mGy.cm" is UCUM; GE writes "mGycm". Both split one way only, so both are safe to read.
    return {f"{a}{sep}{b}": fa * fb for a, fa in left.items() for b, fb in right.items() for sep in (".", "")}


_DOSE_TO_MGY = {"mGy": 1.0, "Gy": 1e3, "dGy": 1e2, "cGy": 1e1, "uGy": 1e-3}
_LENGTH_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1e3}
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}

# Dose area product, stored in Gy·m². 1 dGy·cm² = 0.1 Gy × 1e-4 m² = 1e-5 Gy·m².
DAP_GYM2 = Unit("Gy.m2", {
    "Gy.m2": 1.0, "Gym2": 1.0, "Gy.m^2": 1.0,
    "dGy.m2": 1e-1, "cGy.m2": 1e-2, "mGy.m2": 1e-3, "uGy.m2": 1e-6,
    "Gy.cm2": 1e-4, "Gy.cm^2": 1e-4,
    "dGy.cm2": 1e-5, "dGy.cm^2": 1e-5,
    "cGy.cm2": 1e-6, "cGy.cm^2": 1e-6,
    "mGy.cm2": 1e-7, "mGy.cm^2": 1e-7,
    "uGy.cm2": 1e-10,
})
# Air kerma / dose, stored in Gy (dose at the reference point) or mGy (CTDIvol, AGD, entrance dose).
DOSE_GY = Unit("Gy", {code: factor * 1e-3 for code, factor in _DOSE_TO_MGY.items()})
DOSE_MGY = Unit("mGy", dict(_DOSE_TO_MGY))
# Dose length product, stored in mGy·cm.
DLP_MGYCM = Unit("mGy.cm", _product(_DOSE_TO_MGY, {k: v / 10.0 for k, v in _LENGTH_TO_MM.items()}))
EFFECTIVE_DOSE_MSV = Unit("mSv", {"mSv": 1.0, "Sv": 1e3, "uSv": 1e-3})
KV = Unit("kV", {"kV": 1.0, "kVp": 1.0, "V": 1e-3})
MA = Unit("mA", {"mA": 1.0, "A": 1e3, "uA": 1e-3})
UAS = Unit("uAs", {"uAs": 1.0, "uA.s": 1.0, "mAs": 1e3, "mA.s": 1e3, "As": 1e6, "A.s": 1e6})
SECONDS = Unit("s", dict(_TIME_TO_S))
MS = Unit("ms", {code: factor * 1e3 for code, factor in _TIME_TO_S.items()})
MM = Unit("mm", dict(_LENGTH_TO_MM))
M2 = Unit("m2", {"m2": 1.0, "cm2": 1e-4, "mm2": 1e-6})
DEG = Unit("deg", {"deg": 1.0})
NEWTON = Unit("N", {"N": 1.0, "daN": 10.0, "dN": 0.1})
PER_S = Unit("/s", {"{pulse}/s": 1.0, "pulse/s": 1.0, "{pulses}/s": 1.0, "/s": 1.0, "1/s": 1.0,
                    "Hz": 1.0, "{frame}/s": 1.0})
# Counts and ratios: UCUM annotations ("{events}", "{ratio}", "{X-Ray sources}"), "1", none, or
# an annotation written without braces (GE: "X-ray sources"). Only a physical unit is refused.
COUNT = Unit("count", None)

UNITS = (DAP_GYM2, DOSE_GY, DOSE_MGY, DLP_MGYCM, EFFECTIVE_DOSE_MSV, KV, MA, UAS, SECONDS, MS, MM, M2, DEG,
         NEWTON, PER_S)
PHYSICAL = frozenset(code for unit in UNITS for code in unit.factors)


def factor(code: str, unit: Unit) -> Optional[float]:
    """The factor from unit `code` to `unit`; None when `unit` does not accept that code."""
    if unit.factors is None:
        return None
    return unit.factors.get(code, unit.factors.get(normalised(code)))


def is_physical(code: str) -> bool:
    return code in PHYSICAL or normalised(code) in PHYSICAL


def convert(value: float, unit_code: Optional[str], unit: Unit) -> tuple[Optional[float], Optional[str]]:
    """`value` in `unit_code` converted to `unit`; (None, why) when the unit is missing, not one
    this quantity accepts, or (for a count) a physical unit."""
    if unit.factors is None:
        if unit_code and is_physical(unit_code):
            return None, f"has unit {unit_code!r}, which is not a count or ratio"
        return value, None
    if not unit_code:
        return None, f"has no unit (expected {unit.name})"
    f = factor(unit_code, unit)
    if f is None:
        return None, f"has unit {unit_code!r}, which is not a unit of {unit.name} doseflow converts"
    return value * f, None
