"""DOSEFLOW_PATH_MAP with real workers: a path published as another host sees the file is read
through this host's mount, and the ledger keeps the path as published."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow, ledger, wait_until

pytestmark = pytest.mark.integration


def test_a_path_published_under_another_hosts_mount_is_read_through_the_path_map(
        workers, doseflow_env, database_url, tmp_path):
    share = tmp_path / "share"  # this host's mount of the share the producer sees at /mnt/pacs
    (share / "1.2").mkdir(parents=True)
    shutil.copy(corpus_file("CT-RDSR-Siemens_Flash-TAP-SS.dcm"), share / "1.2" / "ct.dcm")
    workers.env = {**doseflow_env, "DOSEFLOW_INGEST_ROOTS": str(share),
                   "DOSEFLOW_PATH_MAP": f"/mnt/pacs={share},/mnt/pacs/other=/nowhere"}
    workers.start_pipeline()

    doseflow(workers.env, "publish", "/mnt/pacs/1.2/ct.dcm", "/mnt/pacs2/1.2/ct.dcm")

    wait_until(lambda: len(ledger(database_url)) == 2, timeout=60, what="two ledger rows")
    rows = ledger(database_url)
    assert rows["/mnt/pacs/1.2/ct.dcm"][0] == "stored"
    # Not a whole-component match: left as published, so outside the ingest roots and refused.
    assert rows["/mnt/pacs2/1.2/ct.dcm"] == ("failed", "refused: path is outside DOSEFLOW_INGEST_ROOTS")
