"""SSDE from a study's CT images, end to end with real RabbitMQ, PostgreSQL and worker processes:
CT axial images and the study's RDSR arrive in any order (images first, the RDSR, then one more
image, and one image twice); the classifier routes the images to the Dw stage, which measures
the sampled ones; the writer keeps each measurement and rebuilds the study's events' Dw and
SSDE whenever either side arrives. `doseflow import` of the same files stores the same study.

The RDSR is the corpus's Siemens Flash study (event 4: spiral, Abdomen, body32, 9.91 mGy). The
images are the corpus's CT image headers moved into that study and event, with 512 x 512 phantom
slices of known Dw (tests/ct_images.py); one corpus image keeps its own pixel data."""
from __future__ import annotations

import json
import shutil

import psycopg
import pydicom
import pytest

from services.audit.indices import ssde_factor
from tests.conftest import corpus_file
from tests.ct_images import CORPUS_CT_IMAGE, phantom_image
from tests.integration.conftest import doseflow, fresh_database, ledger, wait_until

pytestmark = pytest.mark.integration

FLASH = "CT-RDSR-Siemens_Flash-TAP-SS.dcm"
STUDY = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.3.0"
SPIRAL = "1.3.6.1.4.1.5962.99.1.2662687737.2058515598.1471541535737.7.0"
SERIES = "1.2.826.0.1.3680043.8.498.7001"


def make_files(folder):
    """(images first, the RDSR, one late image, expected Dw of the first and of all sampled)."""
    folder.mkdir()
    dws, first = [], []
    for k, (z, target) in enumerate([(0.0, 230.0), (20.0, 240.0), (40.0, 250.0)]):
        path = folder / f"img{k}.dcm"
        dws.append(phantom_image(path, study_uid=STUDY, event_uid=SPIRAL, z_mm=z, series_uid=SERIES,
                                 dw_target_mm=target))
        first.append(path)
    for k, z in enumerate((5.0, 10.0)):  # between grid lines: ignored unread
        path = folder / f"skip{k}.dcm"
        phantom_image(path, study_uid=STUDY, event_uid=SPIRAL, z_mm=z, series_uid=SERIES)
        first.append(path)
    corpus_ct = folder / "corpus-ct.dcm"  # its own 16 x 16 water pixels: cut by the field of view
    ds = pydicom.dcmread(corpus_file(CORPUS_CT_IMAGE))
    ds.Manufacturer, ds.ManufacturerModelName, ds.StudyInstanceUID = "SIEMENS", "SOMATOM Definition Flash", STUDY
    ds.save_as(corpus_ct)
    first.append(corpus_ct)
    rdsr = folder / "rdsr.dcm"
    shutil.copy(corpus_file(FLASH), rdsr)
    late = folder / "late.dcm"
    dws.append(phantom_image(late, study_uid=STUDY, event_uid=SPIRAL, z_mm=60.0, series_uid=SERIES,
                             dw_target_mm=260.0))
    return first, rdsr, late, dws[:3], dws


def spiral(env):
    [study] = json.loads(doseflow(env, "studies", "--json", "--study", STUDY).stdout)
    return study, study["ct"]["events"][3]


def test_images_and_rdsr_in_any_order_give_the_events_ssde(workers, doseflow_env, database_url, service_urls,
                                                          tmp_path):
    first, rdsr, late, dws3, dws4 = make_files(tmp_path / "in")
    workers.start_pipeline()

    # Images before their RDSR: measured and kept, no study yet
    doseflow(doseflow_env, "publish", *map(str, first))
    wait_until(lambda: all(str(p) in ledger(database_url) for p in first), timeout=120, what="images ended")
    rows = ledger(database_url)
    for k in range(3):
        assert rows[str(first[k])][0] == "stored"
        assert rows[str(first[k])][1] == f"water-equivalent diameter {dws3[k]:.1f} mm measured"
    for k in (3, 4):
        assert rows[str(first[k])] == ("ignored", "not sampled: Dw is measured on one image per 20 mm of table "
                                       f"travel (slice at z {(5, 10)[k - 3]} mm, spacing 5 mm)")
    assert rows[str(first[5])] == ("ignored", "patient cut by the field of view (100% of the image edge is inside "
                                   "the patient): its Dw (17.7 mm) would be too small")
    assert json.loads(doseflow(doseflow_env, "studies", "--json").stdout) == []

    # The RDSR: its spiral event takes the mean Dw of the three images and an SSDE from it
    doseflow(doseflow_env, "publish", str(rdsr))
    wait_until(lambda: ledger(database_url).get(str(rdsr), ("",))[0] == "stored", timeout=120, what="RDSR stored")
    study, event = spiral(doseflow_env)
    mean3 = sum(dws3) / 3
    assert event["water_equivalent_diameter_mm"] == pytest.approx(mean3, rel=1e-9)
    assert event["ssde_mGy"] == pytest.approx(ssde_factor(mean3 / 10, "body32") * 9.91, rel=1e-9)
    assert event["water_equivalent_diameter_method"].startswith(
        "AAPM 220 from axial images: mean Dw of 3 images sampled every 20 mm")
    assert event["ssde_method"].startswith("DCM 113988 Estimated from Water Equivalent Diameter: AAPM 204 32 cm")
    assert [e["ssde_mGy"] for e in study["ct"]["events"][:3]] == [None] * 3
    assert study["ct"]["events"][0]["ssde_reason"].startswith("no water-equivalent diameter")

    # One more image after the RDSR, and an image sent again: the event is recomputed once
    doseflow(doseflow_env, "publish", str(late), str(first[0]))
    wait_until(lambda: spiral(doseflow_env)[1]["water_equivalent_diameter_mm"] != event["water_equivalent_diameter_mm"],
               timeout=120, what="event recomputed with the late image")
    _, event = spiral(doseflow_env)
    mean4 = sum(dws4) / 4
    assert event["water_equivalent_diameter_mm"] == pytest.approx(mean4, rel=1e-9)
    assert event["ssde_mGy"] == pytest.approx(ssde_factor(mean4 / 10, "body32") * 9.91, rel=1e-9)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM ct_image_measurement").fetchone()[0] == 4
        [(method, ssde)] = conn.execute("SELECT water_equivalent_diameter_method, ssde_mgy FROM ct_event "
                                        "WHERE study_instance_uid = %s AND event_index = 3", (STUDY,)).fetchall()
        assert ssde == pytest.approx(event["ssde_mGy"]) and method.startswith("AAPM 220")
        timings = [r[0] for r in conn.execute("SELECT measure_ms FROM ct_image_measurement")]
    print(f"Dw stage, read + measure per 512 x 512 image: {sorted(timings)} ms")
    status = json.loads(doseflow(doseflow_env, "status", "--json").stdout)
    assert status["dead_letters"] == 0 and status["objects"]["failed"] == 0
    broker_study, _ = spiral(doseflow_env)

    # `doseflow import` of the same files, RDSR in the middle, stores the same study
    with fresh_database(service_urls["pg"]) as url:
        env = {**doseflow_env, "DOSEFLOW_DATABASE_URL": url}
        result = doseflow(env, "import", str(late), str(rdsr), *map(str, first))
        assert result.stdout.strip().endswith("stored 5, ignored 3, failed 0")
        imported, _ = spiral(env)
    assert imported == broker_study
