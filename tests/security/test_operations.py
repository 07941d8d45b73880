"""Operational faults a hostile or broken environment causes, against real `doseflow` processes:
refused logins, SIGTERM during a wait, services down, a closed pipe, hostile dead letters.
(The machine's RabbitMQ and PostgreSQL are never stopped: wrong credentials, a missing virtual
host or database, and a closed port stand in for them.)"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pika
import pytest

from tests.integration.conftest import doseflow, wait_until
from tests.security.measure import free_port

pytestmark = pytest.mark.integration


def start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "doseflow", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_refused_broker_login_is_a_configuration_error_not_a_ten_minute_retry(doseflow_env):
    """Fault: a wrong broker password (before: retried for 10 minutes as if transient).
    Must hold: one clear line and exit status 3 at once, so compose restarts it with backoff."""
    base = doseflow_env["DOSEFLOW_AMQP_URL"]
    env = {**doseflow_env, "DOSEFLOW_AMQP_URL": base.replace("guest:guest@", "guest:wrong@")}
    proc = start(env, "worker", "classifier")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert "configuration error" in err and "user name or password" in err and "Traceback" not in err


def test_a_missing_database_is_a_configuration_error(doseflow_env):
    """Fault: the database in DOSEFLOW_DATABASE_URL does not exist. Must hold: exit 3, one line."""
    url = doseflow_env["DOSEFLOW_DATABASE_URL"].rsplit("/", 1)[0] + "/no_such_doseflow_db"
    proc = start({**doseflow_env, "DOSEFLOW_DATABASE_URL": url}, "worker", "writer")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert "database does not exist" in err and "Traceback" not in err


def test_sigterm_ends_a_worker_waiting_for_an_unreachable_broker(doseflow_env):
    """Fault: the broker is unreachable (a closed port) and the worker is told to stop (before:
    SIGTERM ignored for the 10 minutes of retries). Must hold: exits within seconds."""
    env = {**doseflow_env, "DOSEFLOW_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"}
    proc = start(env, "worker", "classifier")
    time.sleep(3)  # importing, first attempts, into the backoff
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    proc.communicate(timeout=30)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("command", [["status"], ["studies"], ["status", "--json"]])
def test_cli_commands_with_the_database_down_print_one_line_not_a_traceback(doseflow_env, command):
    env = {**doseflow_env, "DOSEFLOW_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    result = doseflow(env, *command, check=False)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and "database unavailable" in result.stderr


def test_a_closed_pipe_is_not_a_traceback(doseflow_env):
    """`doseflow config --markdown | head -c0`: the reader goes away before the output is written."""
    proc = subprocess.Popen([sys.executable, "-m", "doseflow", "config", "--markdown"], env=doseflow_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err


def test_config_hides_passwords_in_every_form(doseflow_env):
    env = {**doseflow_env, "DOSEFLOW_DATABASE_URL": "host=db user=app password=s3cret dbname=doseflow",
           "DOSEFLOW_AMQP_URL": "amqp://user:s3cret@broker/%2F?password=s3cret"}
    out = doseflow(env, "config").stdout
    assert "s3cret" not in out and "***" in out


def test_dead_letters_list_and_replay_survive_a_deeply_nested_body(workers, doseflow_env):
    """Attacker: a message body of JSON nested 50,000 deep on the ingest queue (before: the
    classifier dead-lettered it and `dead-letters list/replay` crashed with RecursionError).
    Must hold: the worker lives, the letter is listed with its reason, replay works."""
    workers.start("classifier")
    body = b"[" * 50_000 + b"]" * 50_000
    conn = pika.BlockingConnection(pika.URLParameters(doseflow_env["DOSEFLOW_AMQP_URL"]))
    try:
        ch = conn.channel()
        from shared import broker

        broker.declare_topology(ch, 5)
        ch.basic_publish(broker.INGEST_EXCHANGE, "ingest", body)
    finally:
        conn.close()

    def listed():
        result = doseflow(doseflow_env, "dead-letters", "list", check=False)
        return result if "1 dead letters" in result.stdout else None

    result = wait_until(listed, timeout=60, what="the nested body dead-lettered")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    replay = doseflow(doseflow_env, "dead-letters", "replay", "--all", check=False)
    assert replay.returncode == 0 and "replayed 1" in replay.stdout
    assert workers.alive() == ["classifier"]
