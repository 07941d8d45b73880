"""deploy/rabbitmq's definitions against a real RabbitMQ: imported into a fresh virtual host with
a user added as docker-compose's rabbitmq-definitions step adds it, the user can log in and every
service's declaration of the topology is accepted (same arguments), while one with different
arguments is refused — so a drift between the file and shared/broker.py would show here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import pika
import pika.exceptions
import pytest

from doseflow.broker_definitions import with_user
from shared import broker
from tests.test_broker_definitions import COMMITTED

pytestmark = pytest.mark.integration


@pytest.fixture
def local_rabbitmqctl(service_urls):
    parts = urlsplit(service_urls["amqp"])
    if not shutil.which("rabbitmqctl") or parts.hostname not in ("127.0.0.1", "localhost"):
        if os.environ.get("CI"):
            pytest.fail("rabbitmqctl and a local RabbitMQ are required in CI")
        pytest.skip("needs rabbitmqctl for the local RabbitMQ")
    return parts.hostname, parts.port or 5672


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)


def test_the_committed_definitions_load_and_match_what_the_services_declare(local_rabbitmqctl):
    host, port = local_rabbitmqctl
    suffix = uuid.uuid4().hex[:10]
    vhost, user, password = f"doseflow_defs_{suffix}", f"doseflow_defs_{suffix}", 'pa"ss\\wörd=1'
    definitions = json.loads(COMMITTED.read_text())
    # The committed file is for the default virtual host; the test's own keeps runs apart.
    for key in ("vhosts", "exchanges", "queues", "bindings"):
        for entry in definitions[key]:
            entry["name" if key == "vhosts" else "vhost"] = vhost
    # In a folder the broker's own user can read (rabbitmqctl may run as that user); a test user's
    # salted hash is all it holds.
    folder = tempfile.mkdtemp(prefix="doseflow-definitions-")
    os.chmod(folder, 0o755)
    path = Path(folder) / "definitions.json"
    path.write_text(json.dumps(with_user(definitions, user, password)))
    path.chmod(0o644)
    try:
        result = rabbitmqctl("import_definitions", str(path))
        assert result.returncode == 0, result.stderr
        url = f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{vhost}"

        # The user logs in, and the file declared every queue and dead-letter queue.
        connection = pika.BlockingConnection(pika.URLParameters(url))
        ch = connection.channel()
        for queue in broker.QUEUES:
            assert ch.queue_declare(queue, passive=True).method.queue == queue
            assert ch.queue_declare(broker.dead_queue(queue), passive=True)
        connection.close()

        channel = broker.Channel(pika.BlockingConnection(pika.URLParameters(url)), delivery_limit=5)

        assert channel.channel.is_open
        channel.connection.close()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="PRECONDITION_FAILED"):
            broker.Channel(pika.BlockingConnection(pika.URLParameters(url)), delivery_limit=6)
    finally:
        rabbitmqctl("delete_vhost", vhost)
        rabbitmqctl("delete_user", user)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_services_user_may_run_doseflow_but_nothing_else(local_rabbitmqctl):
    """with_users (compose's rabbitmq-definitions step): the services' user, with a password of
    URL-hostile characters given through the settings' percent-encoding, declares the topology,
    publishes and consumes; it may not declare anything else, and has no management tag."""
    from doseflow.broker_definitions import with_users
    from shared.connection_urls import amqp_url

    host, port = local_rabbitmqctl
    suffix = uuid.uuid4().hex[:10]
    vhost, admin, worker = f"doseflow_lp_{suffix}", f"doseflow_adm_{suffix}", f"doseflow_wrk_{suffix}"
    password = "a/b#c@d:e%f?g&h+i j"
    definitions = json.loads(COMMITTED.read_text())
    for key in ("vhosts", "exchanges", "queues", "bindings"):
        for entry in definitions[key]:
            entry["name" if key == "vhosts" else "vhost"] = vhost
    folder = tempfile.mkdtemp(prefix="doseflow-definitions-")
    os.chmod(folder, 0o755)
    path = Path(folder) / "definitions.json"
    path.write_text(json.dumps(with_users(definitions, (admin, "admin-" + password), (worker, password))))
    path.chmod(0o644)
    try:
        result = rabbitmqctl("import_definitions", str(path))
        assert result.returncode == 0, result.stderr
        url = amqp_url(f"amqp://{worker}@{host}:{port}/{quote(vhost, safe='')}", password)
        channel = broker.Channel(pika.BlockingConnection(pika.URLParameters(url)), delivery_limit=5)
        channel.publish(broker.Publish(broker.INGEST_EXCHANGE, "ingest", b"{}"))
        method, _, body = channel.channel.basic_get("ingest", auto_ack=True)
        assert method is not None and body == b"{}"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
            channel.channel.queue_declare("not-doseflows", durable=True)
        channel.connection.close()
        users = {line.split("\t")[0]: line.split("\t")[1] for line in rabbitmqctl("list_users").stdout.splitlines()
                 if "\t" in line}
        assert "administrator" in users[admin] and users[worker].strip("[] ") == ""
    finally:
        rabbitmqctl("delete_vhost", vhost)
        rabbitmqctl("delete_user", admin)
        rabbitmqctl("delete_user", worker)
        shutil.rmtree(folder, ignore_errors=True)
