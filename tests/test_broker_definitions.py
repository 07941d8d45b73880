"""deploy/rabbitmq/definitions.json is what shared/broker.py declares, and holds no credentials."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from doseflow.broker_definitions import main, password_hash, topology, with_user
from shared import broker

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "deploy" / "rabbitmq" / "definitions.json"
CONF = REPO / "deploy" / "rabbitmq" / "rabbitmq.conf"


def test_the_committed_definitions_are_the_topology_the_services_declare():
    # On failure: python -m doseflow.broker_definitions > deploy/rabbitmq/definitions.json
    assert json.loads(COMMITTED.read_text()) == topology()


def test_every_queue_is_a_quorum_queue_with_delivery_limit_and_dead_letter_exchange():
    queues = {q["name"]: q for q in topology()["queues"]}
    assert set(queues) == set(broker.QUEUES) | {broker.dead_queue(q) for q in broker.QUEUES}
    for name in broker.QUEUES:
        assert queues[name]["durable"] is True
        assert queues[name]["arguments"] == {
            "x-queue-type": "quorum", "x-delivery-limit": 5, "x-dead-letter-exchange": broker.DEAD_EXCHANGE,
            "x-dead-letter-routing-key": name, "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish"}
        assert queues[broker.dead_queue(name)]["arguments"] == {"x-queue-type": "quorum"}


def test_every_queue_is_bound_to_its_exchange_and_every_dead_letter_queue_to_the_dead_exchange():
    bindings = {(b["source"], b["routing_key"], b["destination"]) for b in topology()["bindings"]}
    for queue, (exchange, key) in broker.QUEUES.items():
        assert (exchange, key, queue) in bindings
        assert (broker.DEAD_EXCHANGE, queue, broker.dead_queue(queue)) in bindings


def test_the_delivery_limit_in_the_definitions_follows_the_argument():
    assert {q["arguments"].get("x-delivery-limit") for q in topology(delivery_limit=9)["queues"]} == {9, None}


def test_the_committed_definitions_hold_no_users_or_passwords():
    committed = json.loads(COMMITTED.read_text())
    assert "users" not in committed and "permissions" not in committed
    assert "password" not in COMMITTED.read_text()


def test_rabbitmq_loads_the_definitions_file_the_compose_step_writes():
    assert "load_definitions = /etc/rabbitmq/doseflow/definitions.json" in CONF.read_text().splitlines()


def test_the_user_is_added_as_a_salted_sha256_hash_rabbitmq_can_check():
    added = with_user(topology(), "doseflow", "pa\"ss wörd")
    [user] = added["users"]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    raw = base64.b64decode(user["password_hash"])
    salt, digest = raw[:4], raw[4:]
    assert digest == hashlib.sha256(salt + "pa\"ss wörd".encode()).digest()
    assert password_hash("x", salt=b"\0\0\0\0") == password_hash("x", salt=b"\0\0\0\0")
    assert added["permissions"] == [{"user": "doseflow", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
    assert "pa\"ss" not in json.dumps(added)


def test_the_compose_step_writes_topology_and_user_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RABBITMQ_DEFAULT_USER", "doseflow")
    monkeypatch.setenv("RABBITMQ_DEFAULT_PASS", "secret")
    out = tmp_path / "out" / "definitions.json"
    assert main(["--topology", str(COMMITTED), "--user-from-env", "--output", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["queues"] == topology()["queues"]
    assert [u["name"] for u in written["users"]] == ["doseflow"]
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    monkeypatch.setenv("RABBITMQ_DEFAULT_PASS", "")
    assert main(["--user-from-env", "--output", str(out)]) == 2
    assert "RABBITMQ_DEFAULT_PASS" in capsys.readouterr().err
