"""What is stored about people, through the real `doseflow import`, database, `studies --json`
and `export` (a fresh database per test): the age to 0.1 year (or whole years), staff names and
the accession number hashed or dropped when configured."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.conftest import corpus_file
from tests.integration.conftest import doseflow

pytestmark = pytest.mark.integration

# GE Optima CT dose report: birth date and study date give 49.4 years (reference value).
CT_WITH_BIRTH_DATE = "CT-ESR-GE_Optima.dcm"
# GE CT RDSR whose header names two operators ("Dundee^James | Notting^Sally").
CT_WITH_OPERATORS = "CT-RDSR-GEPixelMed.dcm"
DIGEST = re.compile(r"[0-9a-f]{64}")


def stored(env) -> dict:
    [study] = json.loads(doseflow(env, "studies", "--json").stdout)
    return study


def test_the_stored_age_gives_no_birth_date_back(doseflow_env):
    """Attacker with read access to the data: study date minus the stored age (before: the exact
    birth date, from days/365.25 at full precision). Must hold: the age is stored, shown and
    exported to 0.1 year; with DOSEFLOW_AGE_PRECISION_YEARS=1, in whole years."""
    doseflow(doseflow_env, "import", str(corpus_file(CT_WITH_BIRTH_DATE)))
    assert stored(doseflow_env)["patient"]["age_years"] == 49.4
    table = doseflow(doseflow_env, "export", "--modality", "CT", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(table.lstrip("\ufeff"))))
    ages = {v for row in rows for k, v in row.items() if k and "age" in k.lower()}
    assert ages == {"49.4"}, ages


def test_whole_years_when_configured(doseflow_env):
    env = {**doseflow_env, "DOSEFLOW_AGE_PRECISION_YEARS": "1"}
    doseflow(env, "import", str(corpus_file(CT_WITH_BIRTH_DATE)))
    assert stored(env)["patient"]["age_years"] == 49.0


def test_staff_names_and_accession_are_hashed_with_the_key(doseflow_env):
    env = {**doseflow_env, "DOSEFLOW_STAFF_NAMES": "hash", "DOSEFLOW_ACCESSION_NUMBER": "hash",
           "DOSEFLOW_PATIENT_HASH_KEY": "site secret"}
    doseflow(env, "import", str(corpus_file(CT_WITH_OPERATORS)))
    study = stored(env)["study"]
    assert DIGEST.fullmatch(study["operator_name"]), study["operator_name"]
    dump = doseflow(env, "studies", "--json").stdout + doseflow(env, "export", "--modality", "CT", "--format",
                                                               "csv").stdout
    assert "Dundee" not in dump and "Notting" not in dump
    if study.get("accession_number") is not None:
        assert DIGEST.fullmatch(study["accession_number"])


def test_staff_names_dropped(doseflow_env):
    env = {**doseflow_env, "DOSEFLOW_STAFF_NAMES": "drop", "DOSEFLOW_ACCESSION_NUMBER": "drop"}
    doseflow(env, "import", str(corpus_file(CT_WITH_OPERATORS)))
    study = stored(env)["study"]
    assert study["operator_name"] is None and study["accession_number"] is None
