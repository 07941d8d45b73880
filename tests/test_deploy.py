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
TLS = REPO / "docker-compose.tls.yml"
WORKER_HOST_ENV = {
    "DOSEFLOW_AMQP_URL": "amqps://doseflow@main.example.org:5671/%2F",
    "DOSEFLOW_DATABASE_URL": "postgresql://doseflow_app@main.example.org/doseflow?sslmode=verify-full",
    "DOSEFLOW_INGEST_HOST_DIR": "/mnt/share/incoming",
    "DOSEFLOW_BUILT_RDSR_HOST_DIR": "/mnt/share/toshiba-rdsr",
    "DOSEFLOW_TLS_CA_FILE": "/etc/doseflow/ca.pem",
}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}")


def config(tmp_path: Path, file: Path | list[Path], env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    clean = {k: v for k, v in os.environ.items()
             if k not in DUMMY_ENV and k not in WORKER_HOST_ENV and not k.startswith(("DOSEFLOW_", "RABBITMQ_"))}
    files = [a for f in (file if isinstance(file, list) else [file]) for a in ("-f", str(f))]
    return subprocess.run([docker_compose(), "--env-file", str(env_file), *files, "--project-directory",
                           str(REPO), "config", *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)


def variables(*files: Path) -> dict[str, str | None]:
    """Variables compose files read -> the default they write for them (None: none)."""
    found: dict[str, str | None] = {}
    for file in files:
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
    assert set(services) == {"classifier", "extractor", "ct-dw", "toshiba-builder", "writer"}
    for name in services:
        block = service_block(result.stdout, name)
        assert f"- worker\n    - {name}" in block
        assert "ports:" not in block and "container_name" not in services[name]
        assert "main.example.org:5671" in block and "main.example.org/doseflow?sslmode=verify-full" in block
        assert "DOSEFLOW_TLS_CA_FILE: /run/secrets/tls_ca" in block and "source: tls_ca" in block
        assert "/mnt/share/incoming:/data/incoming:ro" in block
        built = "/mnt/share/toshiba-rdsr:/var/lib/doseflow/toshiba-rdsr:" + ("rw" if name == "toshiba-builder" else "ro")
        assert built in block, name


def test_the_main_host_can_put_built_rdsrs_on_a_shared_folder(tmp_path):
    default = config(tmp_path, MAIN, DUMMY_ENV)
    shared = config(tmp_path, MAIN, {**DUMMY_ENV, "DOSEFLOW_BUILT_RDSR_HOST_DIR": "/srv/share/toshiba-rdsr"})
    assert default.returncode == 0 and shared.returncode == 0, default.stderr + shared.stderr
    assert "built-rdsr:/var/lib/doseflow/toshiba-rdsr" in service_block(default.stdout, "toshiba-builder")
    assert "/srv/share/toshiba-rdsr:/var/lib/doseflow/toshiba-rdsr" in service_block(shared.stdout, "toshiba-builder")


@pytest.mark.parametrize("compose_files, example", [
    ((MAIN, TLS), REPO / "deploy" / ".env.example"),
    ((WORKER_HOST,), REPO / "deploy" / "worker-host.env.example"),
])
def test_the_env_example_lists_every_variable_the_compose_file_reads(compose_files, example):
    assert set(variables(*compose_files)) == env_example(example)


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


def test_rabbitmq_loads_doseflow_definitions_with_an_administrator_and_the_services_user(tmp_path):
    result = config(tmp_path, MAIN, DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    rabbitmq = service_block(result.stdout, "rabbitmq")
    assert "deploy/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-doseflow.conf:ro" in rabbitmq
    assert "rabbitmq-definitions:/etc/rabbitmq/doseflow:ro" in rabbitmq
    assert "RABBITMQ_DEFAULT_PASS" not in rabbitmq  # RabbitMQ would ignore it: the users come from the definitions
    # A fixed node name: a recreated container keeps the queues (rabbit@rabbitmq).
    assert "hostname: rabbitmq" in rabbitmq
    step = service_block(result.stdout, "rabbitmq-definitions")
    assert "deploy/rabbitmq/definitions.json:/etc/doseflow/definitions.json:ro" in step
    assert "rabbitmq-definitions:/definitions" in step
    assert "RABBITMQ_ADMIN_PASSWORD_FILE: /run/secrets/rabbitmq_admin_password" in step
    assert "RABBITMQ_PASSWORD_FILE: /run/secrets/rabbitmq_password" in step
    assert "--users-from-env" in step
    # The services log in as the user without management rights, never as the administrator.
    for name in ("classifier", "extractor", "toshiba-builder", "writer", "receiver"):
        block = service_block(result.stdout, name)
        assert "DOSEFLOW_AMQP_URL: amqp://doseflow@rabbitmq:5672/%2F" in block, name
        assert "rabbitmq_admin_password" not in block, name


def test_no_password_or_key_is_in_any_services_environment(tmp_path):
    result = config(tmp_path, [MAIN, TLS], DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        key, _, value = line.strip().partition(": ")
        if any(word in key for word in ("PASSWORD", "PASS", "HASH_KEY")):
            assert key.endswith("_FILE") and (value.startswith("/run/secrets/") or value == "''"), line
        assert "@postgres" not in line or "postgresql://doseflow_app@" in line or "postgresql://doseflow@" in line, line


def test_every_doseflow_service_is_ready_checked_drained_limited_and_rotated(tmp_path):
    result = config(tmp_path, MAIN, DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    for name in ("classifier", "extractor", "toshiba-builder", "writer", "receiver", "alerts"):
        block = service_block(result.stdout, name)
        assert "DOSEFLOW_READY_FILE: /tmp/doseflow.ready" in block, name
        assert "find /tmp/doseflow.ready -mmin -1" in block, name
        assert "kill -0" not in block, name
        # Longer than the receiver's 30 s drain and the Toshiba builder's 30 s join.
        grace = re.search(r"stop_grace_period: (\d+)s", block)
        assert grace and int(grace.group(1)) > 30, name
        assert re.search(r"mem_limit: '?\d+[mg]'?", block) or "mem_limit:" in block, name
        assert "max-size: 10m" in block and "max-file: '5'" in block, name
    migrate = service_block(result.stdout, "migrate")
    assert "DOSEFLOW_LOG_FORMAT: json" in migrate  # its environment extends the shared one
    assert "DOSEFLOW_DATABASE_PASSWORD_FILE: /run/secrets/postgres_password" in migrate
    postgres = service_block(result.stdout, "postgres")
    assert "pg_isready -h 127.0.0.1" in postgres  # TCP, not the init server's socket


def test_the_image_is_tagged_with_the_projects_version_and_the_commit(tmp_path):
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    result = config(tmp_path, MAIN, {**DUMMY_ENV, "DOSEFLOW_COMMIT": "abc1234"})
    assert result.returncode == 0, result.stderr
    assert f"image: doseflow:{version}-abc1234" in service_block(result.stdout, "writer")
    assert f'org.opencontainers.image.version="{version}"' in (REPO / "deploy" / "Dockerfile").read_text()


def test_the_lock_file_pins_every_runtime_dependency_with_hashes():
    import tomllib

    from packaging.requirements import Requirement

    lock = (REPO / "deploy" / "requirements.lock").read_text()
    pinned = {m.group(1).lower().replace("_", "-"): m.group(2)
              for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^ \\\n]+)", lock, re.M)}
    for dependency in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = requirement.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is not in deploy/requirements.lock: run scripts/lock-dependencies"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])
    # Every pinned package carries at least one hash (pip's --require-hashes needs them all).
    assert all("--hash=sha256:" in block for block in lock.split("==")[1:])
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes -r deploy/requirements.lock" in dockerfile


def test_deployment_secrets_are_kept_out_of_git_and_out_of_the_image():
    ignored = (REPO / ".gitignore").read_text().splitlines()
    for path in ("/deploy/.env", "/deploy/worker-host.env", "/deploy/secrets/", "/deploy/tls/"):
        assert path in ignored, path
    dockerignore = (REPO / ".dockerignore").read_text().splitlines()
    assert dockerignore[dockerignore.index("*") if "*" in dockerignore else 0] == "*"
    assert not any(line.startswith("!deploy/secrets") or line.startswith("!deploy/.env") for line in dockerignore)


def test_the_example_env_files_hold_no_password():
    # Passwords are secret files (DOSEFLOW_SECRETS_DIR), never variables.
    for example in ("deploy/.env.example", "deploy/worker-host.env.example"):
        for line in (REPO / example).read_text().splitlines():
            if not line.startswith("#"):
                assert not re.match(r"^[A-Z_]*(PASSWORD|PASS|HASH_KEY)=", line), line
                assert not re.search(r"://[^/@\s]+:[^/@\s]+@", line), line
