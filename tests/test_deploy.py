"""The deployment files agree with each other and with the code: the worker-host compose file is
valid and runs only workers, the env examples list every variable the compose files read,
defaults written in compose are the settings' defaults, and RabbitMQ loads doseflow's definitions."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.test_docs import DUMMY_ENV, docker_compose, services_of
from tests.test_receiver_compose import service_block

REPO = Path(__file__).resolve().parent.parent
MAIN = REPO / "docker-compose.yml"
WORKER_HOST = REPO / "docker-compose.worker-host.yml"
WORKER_HOST_ENV = {
    "DOSEFLOW_AMQP_URL": "amqps://doseflow:pw@main.example.org:5671/%2F",
    "DOSEFLOW_DATABASE_URL": "postgresql://doseflow_app:pw@main.example.org/doseflow?sslmode=verify-full",
    "DOSEFLOW_INGEST_HOST_DIR": "/mnt/share/incoming",
    "DOSEFLOW_BUILT_RDSR_HOST_DIR": "/mnt/share/toshiba-rdsr",
}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}")


def config(tmp_path: Path, file: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    clean = {k: v for k, v in os.environ.items()
             if k not in DUMMY_ENV and k not in WORKER_HOST_ENV and not k.startswith(("DOSEFLOW_", "RABBITMQ_"))}
    return subprocess.run([docker_compose(), "--env-file", str(env_file), "-f", str(file), "--project-directory",
                           str(REPO), "config", *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)


def variables(file: Path) -> dict[str, str | None]:
    """Variables a compose file reads -> the default it writes for them (None: none)."""
    found: dict[str, str | None] = {}
    for name, default in VARIABLE.findall(file.read_text()):
        found.setdefault(name, default if "${" + name + ":-" in file.read_text() else None)
    return found


def env_example(path: Path) -> set[str]:
    return {line.split("=", 1)[0] for line in path.read_text().splitlines()
            if line and not line.startswith("#") and "=" in line}


def test_the_worker_host_compose_file_is_valid_with_its_required_values(tmp_path):
    result = config(tmp_path, WORKER_HOST, WORKER_HOST_ENV, "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(WORKER_HOST_ENV))
def test_the_worker_host_compose_file_names_each_missing_value(tmp_path, missing):
    env = {k: v for k, v in WORKER_HOST_ENV.items() if k != missing}
    result = config(tmp_path, WORKER_HOST, env, "-q")
    assert result.returncode != 0
    assert missing in result.stderr


def test_the_worker_host_runs_only_workers_against_the_remote_broker_and_database(tmp_path):
    result = config(tmp_path, WORKER_HOST, WORKER_HOST_ENV)
    assert result.returncode == 0, result.stderr
    services = services_of(result.stdout)
    assert set(services) == {"classifier", "extractor", "toshiba-builder", "writer"}
    for name in services:
        block = service_block(result.stdout, name)
        assert f"- worker\n    - {name}" in block
        assert "ports:" not in block and "container_name" not in services[name]
        assert "main.example.org:5671" in block and "main.example.org/doseflow?sslmode=verify-full" in block
        assert "/mnt/share/incoming:/data/incoming:ro" in block
        built = "/mnt/share/toshiba-rdsr:/var/lib/doseflow/toshiba-rdsr:" + ("rw" if name == "toshiba-builder" else "ro")
        assert built in block, name


def test_the_main_host_can_put_built_rdsrs_on_a_shared_folder(tmp_path):
    default = config(tmp_path, MAIN, DUMMY_ENV)
    shared = config(tmp_path, MAIN, {**DUMMY_ENV, "DOSEFLOW_BUILT_RDSR_HOST_DIR": "/srv/share/toshiba-rdsr"})
    assert default.returncode == 0 and shared.returncode == 0, default.stderr + shared.stderr
    assert "built-rdsr:/var/lib/doseflow/toshiba-rdsr" in service_block(default.stdout, "toshiba-builder")
    assert "/srv/share/toshiba-rdsr:/var/lib/doseflow/toshiba-rdsr" in service_block(shared.stdout, "toshiba-builder")


@pytest.mark.parametrize("compose_file, example", [
    (MAIN, REPO / "deploy" / ".env.example"),
    (WORKER_HOST, REPO / "deploy" / "worker-host.env.example"),
])
def test_the_env_example_lists_every_variable_the_compose_file_reads(compose_file, example):
    assert set(variables(compose_file)) == env_example(example)


@pytest.mark.parametrize("compose_file", [MAIN, WORKER_HOST])
def test_defaults_written_in_compose_are_the_settings_defaults(compose_file):
    checked = 0
    for name, default in variables(compose_file).items():
        field = name.removeprefix("DOSEFLOW_").lower()
        if default is None or field not in Settings.model_fields:
            continue
        value = Settings.model_fields[field].get_default(call_default_factory=True)
        assert (str(value) if value not in (None, []) else "") == default, name
        checked += 1
    assert checked >= 4


def test_rabbitmq_loads_doseflow_definitions_written_with_the_env_files_user(tmp_path):
    result = config(tmp_path, MAIN, DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    rabbitmq = service_block(result.stdout, "rabbitmq")
    assert "deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-doseflow.conf:ro" in rabbitmq
    assert "rabbitmq-definitions:/etc/rabbitmq/doseflow:ro" in rabbitmq
    assert "RABBITMQ_DEFAULT_PASS" not in rabbitmq  # RabbitMQ would ignore it: the user comes from the definitions
    step = service_block(result.stdout, "rabbitmq-definitions")
    assert "deploy/rabbitmq/definitions.json:/etc/doseflow/definitions.json:ro" in step
    assert "rabbitmq-definitions:/definitions" in step
    assert "RABBITMQ_DEFAULT_PASS: test-password" in step
    assert "--user-from-env" in step


def test_the_example_env_files_ship_no_real_secret():
    for example in ("deploy/.env.example", "deploy/worker-host.env.example"):
        for line in (REPO / example).read_text().splitlines():
            if re.match(r"^[A-Z_]*(PASSWORD|PASS)=", line):
                assert "change-me" in line, line
