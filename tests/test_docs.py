"""Documentation and deployment files kept honest: every setting is documented in README, and
docker-compose.yml is valid, refuses to run without its secrets, and lets every worker scale."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
WORKERS = ("classifier", "extractor", "toshiba-builder", "writer", "ct-dw")
DUMMY_ENV = {
    "DOSEFLOW_INGEST_HOST_DIR": "/srv/doseflow/incoming",
}


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_readme(field):
    assert f"DOSEFLOW_{field.upper()}" in (REPO / "README.md").read_text()


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (required in CI; scripts/bootstrap installs it)")
        pytest.skip("docker-compose is not installed")
    return path


def compose(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # An empty --env-file so that a developer's own .env cannot fill in what the test leaves out.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    clean = {k: v for k, v in os.environ.items() if k not in DUMMY_ENV and not k.startswith("DOSEFLOW_")}
    return subprocess.run(
        [docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE), "--project-directory", str(REPO),
         "config", *args],
        env={**clean, **env}, capture_output=True, text=True, timeout=60)


def services_of(config: str) -> dict[str, set[str]]:
    """Service name -> its keys, from the normalized YAML `docker-compose config` prints
    (two-space indentation: services at 2, their keys at 4, list items at their key's level)."""
    services: dict[str, set[str]] = {}
    in_services, current = False, None
    for line in config.splitlines():
        if not line.startswith(" "):
            in_services = line.rstrip() == "services:"
            current = None
            continue
        if not in_services:
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 2 and line.rstrip().endswith(":"):
            current = line.strip()[:-1]
            services[current] = set()
        elif indent == 4 and current is not None and ":" in line and not line.lstrip().startswith("-"):
            services[current].add(line.strip().split(":")[0])
    return services


def test_compose_file_is_valid_with_its_required_values_set(tmp_path):
    result = compose(tmp_path, "-q", env=DUMMY_ENV)
    assert result.returncode == 0, result.stderr


def test_compose_file_refuses_to_run_without_its_secrets(tmp_path):
    # One run with none set (each docker-compose run costs a second): the first missing one is named.
    result = compose(tmp_path, "-q", env={})
    assert result.returncode != 0
    assert any(name in result.stderr for name in DUMMY_ENV), result.stderr


@pytest.fixture(scope="module")
def resolved_config(tmp_path_factory) -> str:
    """`docker-compose config` output: the file with anchors merged and values filled in."""
    result = compose(tmp_path_factory.mktemp("compose"), env=DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_workers_have_no_fixed_name_and_no_ports_so_they_can_scale(resolved_config):
    services = services_of(resolved_config)
    assert set(WORKERS) <= set(services), f"services found: {sorted(services)}"
    for worker in WORKERS:
        assert "command" in services[worker], worker  # the parser did see the service's keys
        assert "container_name" not in services[worker], worker
        assert "ports" not in services[worker], worker


@pytest.mark.parametrize("worker", WORKERS)
def test_each_worker_runs_its_own_service(resolved_config, worker):
    assert f"    command:\n    - worker\n    - {worker}\n" in resolved_config


def test_the_config_reader_sees_ports_and_container_names():
    # The check above must be able to fail: a worker published on a fixed port and name.
    config = ("services:\n  writer:\n    command:\n    - worker\n    - writer\n    container_name: w\n"
              "    ports:\n    - 8080:8080\nvolumes:\n  pgdata: {}\n")
    assert services_of(config) == {"writer": {"command", "container_name", "ports"}}
