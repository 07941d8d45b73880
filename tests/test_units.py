"""The one units table (shared/units.py): every spelling converts to the stored unit with the
right factor, product separators read alike, a count refuses a physical unit, and the spellings
the two former tables disagreed on (us, min, mGy*cm) now mean the same for every route."""
from __future__ import annotations

import pytest

from shared import units
from shared.units import convert


@pytest.mark.parametrize("value, code, unit, expected", [
    (1.0, "dGy.cm2", units.DAP_GYM2, 1e-5),
    (2.0, "Gym2", units.DAP_GYM2, 2.0),
    (3.0, "cGy.cm^2", units.DAP_GYM2, 3e-6),
    (1.5, "mGy", units.DOSE_GY, 1.5e-3),
    (1.5, "Gy", units.DOSE_MGY, 1500.0),
    (100.0, "mGy.cm", units.DLP_MGYCM, 100.0),
    (100.0, "mGycm", units.DLP_MGYCM, 100.0),  # GE
    (100.0, "mGy*cm", units.DLP_MGYCM, 100.0),
    (100.0, "mGy cm", units.DLP_MGYCM, 100.0),
    (1.0, "Gy.mm", units.DLP_MGYCM, 100.0),
    (2.0, "Sv", units.EFFECTIVE_DOSE_MSV, 2000.0),
    (120.0, "kVp", units.KV, 120.0),
    (500.0, "uA", units.MA, 0.5),
    (2.0, "mAs", units.UAS, 2000.0),
    (2.0, "uA.s", units.UAS, 2.0),  # Canon
    (250.0, "us", units.MS, 0.25),
    (250.0, "us", units.SECONDS, 2.5e-4),
    (2.0, "min", units.MS, 120_000.0),
    (2.0, "min", units.SECONDS, 120.0),
    (0.5, "s", units.MS, 500.0),
    (3.0, "cm", units.MM, 30.0),
    (4.0, "cm2", units.M2, 4e-4),
    (12.0, "daN", units.NEWTON, 120.0),
    (15.0, "pulse/s", units.PER_S, 15.0),  # GE
])
def test_each_spelling_converts_to_the_stored_unit(value, code, unit, expected):
    converted, problem = convert(value, code, unit)
    assert problem is None
    assert converted == pytest.approx(expected)


def test_a_unit_not_in_the_table_or_missing_is_refused_with_the_reason():
    assert convert(1.0, "mGy", units.DAP_GYM2) == (None, "has unit 'mGy', which is not a unit of Gy.m2 doseflow "
                                                        "converts")
    assert convert(1.0, None, units.MM) == (None, "has no unit (expected mm)")


@pytest.mark.parametrize("code", [None, "1", "{events}", "{ratio}", "X-ray sources"])
def test_a_count_takes_any_annotation(code):
    assert convert(7.0, code, units.COUNT) == (7.0, None)


@pytest.mark.parametrize("code", ["mGy", "mGy*cm", "s"])
def test_a_count_refuses_a_physical_unit(code):
    value, problem = convert(7.0, code, units.COUNT)
    assert value is None and "not a count" in problem
