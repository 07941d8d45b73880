"""DICOM value helpers (shared/dicom.py): dates, times, date-times, numbers and person names as
vendors really write them, and as they should not (empty, garbage, impossible dates, NaN,
VR UN bytes, multi-values). Invalid gives None, never a crash and never an invented value."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import DSfloat, IS

from shared.dicom import date_time, iso_date, iso_datetime, iso_time, number, person_name, text

# --- DA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,want", [
    ("20240131", "2024-01-31"),
    (" 20240131 ", "2024-01-31"),
    ("2024.01.31", "2024-01-31"),  # ACR-NEMA 2.0
    ("20240229", "2024-02-29"),  # a leap day
    (b"20240131", "2024-01-31"),  # VR UN
])
def test_dates_become_iso(value, want):
    assert iso_date(value) == want


@pytest.mark.parametrize("value", [
    None, "", "   ", "garbage", "2024013", "202401311", "20241301", "20240132", "00000000",
    "20240230",  # February 30th
    "20230229",  # not a leap year
    "20240431",  # April has 30 days
])
def test_impossible_or_malformed_dates_are_none(value):
    assert iso_date(value) is None


# --- TM ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,want,with_fraction", [
    ("123045", "12:30:45", "12:30:45"),
    ("1230", "12:30:00", "12:30:00"),  # HHMM
    ("12", "12:00:00", "12:00:00"),  # HH
    ("12:30:45", "12:30:45", "12:30:45"),  # ACR-NEMA 2.0
    ("123045.5", "12:30:45", "12:30:45.500000"),
    ("123045.123456", "12:30:45", "12:30:45.123456"),
    ("235959.999999", "23:59:59", "23:59:59.999999"),
    ("123060", "12:30:59", "12:30:59"),  # a leap second is clamped, not rolled into the next minute
    (" 123045 ", "12:30:45", "12:30:45"),
    (b"123045", "12:30:45", "12:30:45"),
])
def test_times_become_iso_with_the_fraction_only_when_asked(value, want, with_fraction):
    assert iso_time(value) == want
    assert iso_time(value, keep_fraction=True) == with_fraction


@pytest.mark.parametrize("value", [None, "", "ab", "2400", "1260", "123045.1234567", "12345", "12:3"])
def test_malformed_times_are_none(value):
    assert iso_time(value) is None
    assert iso_time(value, keep_fraction=True) is None


# --- DT ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,want", [
    ("20240131123045", "2024-01-31T12:30:45"),
    ("20240131123045.1", "2024-01-31T12:30:45.100000"),
    ("20240131123045.123456", "2024-01-31T12:30:45.123456"),
    ("202401311230", "2024-01-31T12:30:00"),
    # a timezone suffix is dropped, not converted: the local time as the device wrote it
    ("20240131123045+0100", "2024-01-31T12:30:45"),
    ("20240131123045.123-0500", "2024-01-31T12:30:45.123000"),
    (b"20240131123045", "2024-01-31T12:30:45"),
])
def test_date_times_become_iso(value, want):
    assert iso_datetime(value) == want


@pytest.mark.parametrize("value", [
    None, "", "x", "20241331", "20240131 123045", "20240131126045", "20240131250000",
    "20240230120000",  # February 30th
])
def test_malformed_date_times_are_none(value):
    assert iso_datetime(value) is None


@pytest.mark.parametrize("date,time,want", [
    ("20240131", "1230", "2024-01-31T12:30:00"),
    ("20240131", "123045.25", "2024-01-31T12:30:45.250000"),
    ("20240131", None, None),
    ("20240131", "", None),
    (None, "1230", None),
    ("x", "1230", None),
    ("20240230", "1230", None),
])
def test_date_and_time_join_only_when_both_are_valid(date, time, want):
    assert date_time(date, time) == want


# --- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value,want", [
    ("1.5", 1.5),
    (" 2 ", 2.0),
    ("1e3", 1000.0),
    ("-0.25", -0.25),
    ("0", 0.0),  # present as 0 stays 0
    (0, 0.0),
    (DSfloat("2.5"), 2.5),
    (IS("3"), 3.0),
    (b"12.5", 12.5),  # VR UN holds the DS text
    (b"12.5 ", 12.5),
    (b"12.5\x00", 12.5),
    (b"12.5\\13", 12.5),  # a multi-valued UN: its first value
    (["3", "4"], 3.0),
    (MultiValue(DSfloat, ["1.5", "2"]), 1.5),
])
def test_numbers_become_floats(value, want):
    assert number(value) == want
    assert isinstance(number(value), float)


@pytest.mark.parametrize("value", [
    None, "", "  ", "abc", "1,5", b"", b"  ", b"\x00\x00", [], MultiValue(DSfloat, []),
    "nan", "NaN", "inf", "-inf", "Infinity", float("nan"), float("inf"), b"nan",
])
def test_absent_malformed_or_non_finite_numbers_are_none(value):
    assert number(value) is None


# --- person names and text ---------------------------------------------------------------------


def names(**attrs) -> Dataset:
    ds = Dataset()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def test_a_person_name_drops_trailing_empty_components():
    assert person_name(names(OperatorsName="Doe^John^^^"), "OperatorsName") == "Doe^John"


def test_several_person_names_are_joined_with_a_bar():
    ds = names(OperatorsName=["Dundee^James", "Notting^Sally"])
    assert person_name(ds, "OperatorsName") == "Dundee^James | Notting^Sally"


def test_empty_members_of_a_multi_valued_name_are_skipped():
    assert person_name(names(OperatorsName=["", "Smith^Sally", "^^"]), "OperatorsName") == "Smith^Sally"


@pytest.mark.parametrize("value", ["", "^^^^", ["", ""]])
def test_an_empty_person_name_is_none(value):
    assert person_name(names(OperatorsName=value), "OperatorsName") is None


def test_an_absent_person_name_is_none():
    assert person_name(Dataset(), "PerformingPhysicianName") is None


def test_ideographic_and_phonetic_name_groups_are_kept_as_written():
    ds = names(PerformingPhysicianName="Yamada^Tarou=山田^太郎=やまだ^たろう")
    assert person_name(ds, "PerformingPhysicianName") == "Yamada^Tarou=山田^太郎=やまだ^たろう"


def test_text_joins_multi_values_and_strips_padding():
    ds = names(ImageType=["ORIGINAL", "PRIMARY"], StationName=" CT1 ", StudyDescription="")
    assert text(ds, "ImageType") == "ORIGINAL\\PRIMARY"
    assert text(ds, "StationName") == "CT1"
    assert text(ds, "StudyDescription") is None
    assert text(ds, "Manufacturer") is None
