"""The configuration reference: README's table is the one rendered from the settings model, and
`doseflow config` shows this process's settings without passwords or keys."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from doseflow.configuration import effective, markdown_table, readme_table
from shared.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def test_the_readme_configuration_table_is_the_one_generated_from_the_settings():
    # On failure: doseflow config --markdown, and paste it between README's settings-table markers.
    assert readme_table((REPO / "README.md").read_text()) == markdown_table()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_has_a_description_and_a_row(field):
    assert Settings.model_fields[field].description
    assert f"| `DOSEFLOW_{field.upper()}` |" in markdown_table()


def test_the_table_shows_defaults_as_they_are_written_in_the_environment():
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ")[1] for line in markdown_table().splitlines()[2:]}
    assert rows["DOSEFLOW_PREFETCH"] == "`16`"
    assert rows["DOSEFLOW_DATABASE_URL"] == "unset"
    assert rows["DOSEFLOW_PATH_MAP"] == "empty"
    assert rows["DOSEFLOW_TOSHIBA_MODELS"].startswith("`Toshiba/Aquilion,")
    assert rows["DOSEFLOW_METRICS_PORT"] == "`0` (off)"


def test_a_pipe_in_a_description_does_not_break_the_table():
    for line in markdown_table().splitlines():
        assert line.replace("\\|", "").count("|") == 4, line


def test_doseflow_config_hides_passwords_and_keys(monkeypatch):
    monkeypatch.setenv("DOSEFLOW_AMQP_URL", "amqps://doseflow:s3cret@broker.example.org:5671/%2F")
    monkeypatch.setenv("DOSEFLOW_DATABASE_URL", "postgresql://doseflow_app:pg-secret@db/doseflow?sslmode=verify-full")
    monkeypatch.setenv("DOSEFLOW_PATIENT_HASH_KEY", "hash-secret")
    monkeypatch.setenv("DOSEFLOW_PATH_MAP", "/mnt/pacs=/data/incoming")
    shown = dict(effective(Settings()))
    assert shown["DOSEFLOW_AMQP_URL"] == "amqps://doseflow:***@broker.example.org:5671/%2F"
    assert shown["DOSEFLOW_DATABASE_URL"] == "postgresql://doseflow_app:***@db/doseflow?sslmode=verify-full"
    assert shown["DOSEFLOW_PATIENT_HASH_KEY"] == "***"
    assert shown["DOSEFLOW_PATH_MAP"] == "/mnt/pacs=/data/incoming"
    assert not any("secret" in v for v in shown.values())
    assert set(shown) == {f"DOSEFLOW_{f.upper()}" for f in Settings.model_fields}


def test_doseflow_config_markdown_prints_the_table():
    result = subprocess.run([sys.executable, "-m", "doseflow", "config", "--markdown"], capture_output=True,
                            text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout == markdown_table()
