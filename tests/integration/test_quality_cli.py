"""`doseflow quality` against a real PostgreSQL: corpus objects (some edited with pydicom into
the placeholder, drifting-UID and unit-slip cases) imported with `doseflow import`, then the
per-device report read back as JSON, CSV and the terminal table."""
from __future__ import annotations

import csv
import io
import json

import pydicom
import pytest
from pydicom.uid import generate_uid

from shared import sr
from shared.codes import DCM
from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, imported_database

pytestmark = pytest.mark.integration

OBJECTS = [
    "CT-RDSR-Siemens_Flash-TAP-SS.dcm",  # 1997-01-01
    "CT-RDSR-Siemens-Continued-1.dcm", "CT-RDSR-Siemens-Continued-2.dcm",  # 2018-04-27, one study, two objects
    "RF-RDSR-Philips_Allura.dcm",
    "DX-Im-GE_XR220-1.dcm", "DX-Im-GE_XR220-2.dcm", "DX-Im-GE_XR220-3.dcm",
    "MG-Im-GE_Seno_1_ForPresentation.dcm",
]


def as_new_study(ds, study_uid=None):
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    if "file_meta" in dir(ds):
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def edited_objects(folder):
    """Corpus objects edited into the cases the corpus lacks, written to a temporary folder."""
    paths = []
    # A GE XR220 image with the Agfa CR placeholders (kVp 0, 0 µAs) and a DAP 10⁵× too large, as
    # a second study of the same device.
    ds = as_new_study(pydicom.dcmread(corpus_file("DX-Im-GE_XR220-1.dcm")))
    ds.KVP, ds.ExposureInuAs, ds.Exposure, ds.PatientWeight = "0", 0, 0, "0"
    ds.ImageAndFluoroscopyAreaDoseProduct = "210000"
    paths.append(folder / "xr220-placeholders.dcm")
    ds.save_as(paths[-1])
    # Two studies of a GE C-arm that writes its StudyInstanceUID as Device Observer UID (the GE OEC
    # Fluorostar) and no serial number: still one device.
    for n in (1, 2):
        ds = as_new_study(pydicom.dcmread(corpus_file("RF-RDSR-GE.dcm")))
        del ds.DeviceSerialNumber
        observer = sr.find(ds, (DCM("121012"),))
        observer.ValueType = "UIDREF"
        observer.UID = ds.StudyInstanceUID
        if "TextValue" in observer:
            del observer.TextValue
        serial = sr.find(ds, (DCM("121016"),))
        if serial is not None:
            ds.ContentSequence.remove(serial)
        ds.StudyDate = f"2020010{n}"
        for event in sr.find_all(ds, (DCM("113706"),)):
            sr.find(event, (DCM("113769"),)).UID = generate_uid()
        paths.append(folder / f"fluorostar-{n}.dcm")
        ds.save_as(paths[-1])
    return paths


@pytest.fixture(scope="module")
def imported(service_urls, tmp_path_factory):
    edited = edited_objects(tmp_path_factory.mktemp("edited"))
    with imported_database(service_urls["pg"], tmp_path_factory.mktemp("data"),
                           [*map(corpus_file, OBJECTS), *edited]) as env:
        yield env


def quality(env, *args):
    return json.loads(doseflow(env, "quality", "--json", *args).stdout)


def by_model(devices, model):
    found = [d for d in devices if d["model"] == model]
    assert len(found) == 1, [d["device_key"] for d in devices]
    return found[0]


def test_one_row_per_device_key(imported):
    devices = quality(imported)
    keys = [d["device_key"] for d in devices]
    assert len(keys) == len(set(keys))
    # Two SOMATOM Definition Flash scanners: one by its serial, one (serial SN000000) by its UID.
    flash = sorted(d["device_key"] for d in devices if d["model"] == "SOMATOM Definition Flash")
    assert flash == ["serial:siemens|somatom definition flash|54321",
                     "uid:1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.2.0"]
    assert sum(d["studies"] for d in devices) == 8  # 6 corpus studies, the edited XR220, 2 C-arm


def test_objects_count_every_stored_object_of_the_device(imported):
    devices = quality(imported)
    cont = next(d for d in devices if d["device_key"] == "serial:siemens|somatom definition flash|54321")
    assert (cont["objects"], cont["studies"]) == (2, 1)
    assert cont["first_seen"] == cont["last_seen"] == "2018-04-27"


def test_missing_shares_are_over_the_items_each_field_belongs_to(imported):
    xr220 = by_model(quality(imported), "Optima XR220")
    # the corpus images and the edited one: two studies; kVp 0 became absent in one of the events
    assert xr220["studies"] == 2
    events = xr220["objects"]
    assert xr220["missing_percent"]["kvp"] == pytest.approx(round(100 / events, 1))
    assert xr220["missing_percent"]["ctdivol"] is None and xr220["missing_percent"]["agd"] is None
    assert xr220["missing_percent"]["dap"] == 0.0
    assert xr220["missing_percent"]["weight"] == 100.0  # the corpus images give none, the edited one 0


def test_placeholders_and_unit_slips_are_counted_per_device(imported):
    xr220 = by_model(quality(imported), "Optima XR220")
    assert xr220["warnings"]["placeholder"] >= 3  # kVp, µAs, weight
    assert xr220["out_of_range"] == {"DAP": 1, "DAP total": 1}


def test_a_device_observer_uid_that_is_the_study_uid_does_not_split_the_device(imported):
    devices = quality(imported)
    arm = by_model(devices, "ESP 21 cm FPD Super-C")
    assert arm["studies"] == 2 and arm["device_key"].startswith("station:")
    assert arm["first_seen"] == "2020-01-01" and arm["last_seen"] == "2020-01-02"


def test_dates_bound_the_report(imported):
    devices = quality(imported, "--from", "2018-01-01", "--to", "2019-12-31")
    assert {d["first_seen"][:4] for d in devices} == {"2018"}
    assert all(d["model"] != "ESP 21 cm FPD Super-C" for d in devices)


def test_csv_has_one_row_per_device_with_units_in_headers(imported):
    rows = list(csv.DictReader(io.StringIO(doseflow(imported, "quality", "--csv").stdout)))
    assert len(rows) == len(quality(imported))
    assert "CTDIvol missing (%)" in rows[0] and "Device key" in rows[0]


def test_terminal_table_names_every_device_and_its_warnings(imported):
    text = doseflow(imported, "quality").stdout
    assert "Optima XR220" in text and "placeholder" in text and "out of range: DAP" in text
    for d in quality(imported):
        assert d["device_key"] in text
