"""RabbitMQ definitions: doseflow's exchanges, queues and bindings as a definitions file that
RabbitMQ loads at start (`load_definitions`, deploy/rabbitmq/).

The topology is not written twice: it is recorded from `shared.broker.declare_topology` itself
(the very calls every service makes at start, with pika's defaults filled in), so the file
declares each queue with exactly the arguments the services declare it with — a difference
would make their declarations fail (PRECONDITION_FAILED). tests/test_broker_definitions.py fails
when deploy/rabbitmq/definitions.json drifts from the code.

    python -m doseflow.broker_definitions > deploy/rabbitmq/definitions.json

The committed file holds no users: RabbitMQ skips its default user when it loads definitions
at start, so docker-compose.yml's `rabbitmq-definitions` step adds the users (`--users-from-env`:
an administrator, and the services' least-privilege user; passwords from secret files, stored as
RabbitMQ's salted SHA-256 hash, never in clear) and writes the file RabbitMQ loads.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Optional

from pika.adapters.blocking_connection import BlockingChannel

from shared import broker

# What a definitions file's queue and exchange entries say, from the declare calls' arguments.
_EXCHANGE_KEYS = ("durable", "auto_delete", "internal")
_QUEUE_KEYS = ("durable", "auto_delete")


class _Recorder:
    """Stands in for a pika channel and records the declarations, pika's defaults included."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def _record(self, method: str, args, kwargs) -> None:
        bound = inspect.signature(getattr(BlockingChannel, method)).bind(None, *args, **kwargs)
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop("self")
        if params.get("passive"):
            raise ValueError(f"{method}: a passive declaration is not a definition")
        self.calls.append((method, params))

    def __getattr__(self, method):
        if method not in ("exchange_declare", "queue_declare", "queue_bind"):
            raise AttributeError(f"declare_topology called {method}, which a definitions file cannot hold")
        return lambda *args, **kwargs: self._record(method, args, kwargs)


def topology(delivery_limit: int = 5, vhost: str = "/") -> dict:
    """The definitions of `vhost` with doseflow's exchanges, queues and bindings."""
    recorder = _Recorder()
    broker.declare_topology(recorder, delivery_limit)
    exchanges, queues, bindings = [], [], []
    for method, p in recorder.calls:
        if method == "exchange_declare":
            exchanges.append({"name": p["exchange"], "vhost": vhost, "type": p["exchange_type"],
                              **{k: bool(p[k]) for k in _EXCHANGE_KEYS}, "arguments": p["arguments"] or {}})
        elif method == "queue_declare":
            queues.append({"name": p["queue"], "vhost": vhost, **{k: bool(p[k]) for k in _QUEUE_KEYS},
                           "arguments": p["arguments"] or {}})
        else:
            bindings.append({"source": p["exchange"], "vhost": vhost, "destination": p["queue"],
                             "destination_type": "queue", "routing_key": p["routing_key"],
                             "arguments": p["arguments"] or {}})
    return {"vhosts": [{"name": vhost}], "exchanges": exchanges, "queues": queues, "bindings": bindings}


def password_hash(password: str, salt: Optional[bytes] = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + SHA-256(salt + password)),
    with a 4-byte random salt."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def with_user(definitions: dict, user: str, password: str) -> dict:
    """`definitions` plus an administrator user with every permission on their virtual hosts
    (what RabbitMQ's default user would have been)."""
    if not user or not password:
        raise ValueError("the broker user and password must not be empty")
    vhosts = [v["name"] for v in definitions.get("vhosts", [])]
    return {
        **definitions,
        "users": [{"name": user, "password_hash": password_hash(password),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
        "permissions": [{"user": user, "vhost": v, "configure": ".*", "write": ".*", "read": ".*"} for v in vhosts],
    }


def doseflow_names() -> str:
    """A permission pattern matching exactly doseflow's exchanges and queues (nothing else on the
    virtual host, and not RabbitMQ's own `amq.*` ones)."""
    names = {p["exchange"] for _, p in _recorded("exchange_declare")} | {p["queue"] for _, p in _recorded("queue_declare")}
    return "^(" + "|".join(re.escape(n) for n in sorted(names)) + ")$"


def _recorded(method: str) -> list[tuple[str, dict]]:
    recorder = _Recorder()
    broker.declare_topology(recorder, 5)
    return [(m, p) for m, p in recorder.calls if m == method]


def with_users(definitions: dict, admin: tuple[str, str], worker: tuple[str, str]) -> dict:
    """`definitions` plus two users: `admin` (administrator: the management UI, definitions,
    policies) and `worker`, the services' login, with no tags (no management access) and rights
    on doseflow's own exchanges and queues only: declare them (every service declares the
    topology at start), publish to them and consume from them."""
    for name, password in (admin, worker):
        if not name or not password:
            raise ValueError("the broker users and passwords must not be empty")
    if admin[0] == worker[0]:
        raise ValueError("the administrator and the services' user must be different users")
    vhosts = [v["name"] for v in definitions.get("vhosts", [])]
    ours = doseflow_names()
    return {
        **definitions,
        "users": [{"name": admin[0], "password_hash": password_hash(admin[1]),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]},
                  {"name": worker[0], "password_hash": password_hash(worker[1]),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}],
        "permissions": [{"user": admin[0], "vhost": v, "configure": ".*", "write": ".*", "read": ".*"} for v in vhosts]
        + [{"user": worker[0], "vhost": v, "configure": ours, "write": ours, "read": ours} for v in vhosts],
    }


def _secret(variable: str) -> str:
    """The value of the file named by VARIABLE_FILE, else of VARIABLE; placeholder refused."""
    from shared.connection_urls import refuse_placeholder

    path = os.environ.get(f"{variable}_FILE")
    if path:
        try:
            value = Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"cannot read {variable}_FILE ({path}): {exc.strerror or exc}") from None
    else:
        value = os.environ.get(variable, "")
    refuse_placeholder(f"{variable}_FILE" if path else variable, value)
    return value


def render(definitions: dict) -> str:
    return json.dumps(definitions, indent=2) + "\n"


def write(path: Path, text: str) -> None:
    """Write atomically, readable by the broker's own user (a salted hash, no password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m doseflow.broker_definitions", description=__doc__.split("\n\n")[0])
    p.add_argument("--delivery-limit", type=int, default=5, help="x-delivery-limit of every queue (default 5, "
                   "DOSEFLOW_DELIVERY_LIMIT's default: the services must use the same)")
    p.add_argument("--vhost", default="/")
    p.add_argument("--topology", type=Path, help="start from this definitions file instead of the code's topology")
    p.add_argument("--user-from-env", action="store_true",
                   help="add the user RABBITMQ_DEFAULT_USER with password RABBITMQ_DEFAULT_PASS (as a hash)")
    p.add_argument("--users-from-env", action="store_true",
                   help="add the administrator RABBITMQ_ADMIN_USER (password RABBITMQ_ADMIN_PASSWORD_FILE or "
                   "RABBITMQ_ADMIN_PASSWORD) and the services' least-privilege user RABBITMQ_USER (password "
                   "RABBITMQ_PASSWORD_FILE or RABBITMQ_PASSWORD), as hashes")
    p.add_argument("--output", type=Path, help="write here (default: standard output)")
    args = p.parse_args(argv)
    definitions = (json.loads(args.topology.read_text()) if args.topology
                   else topology(args.delivery_limit, args.vhost))
    if args.user_from_env:
        try:
            definitions = with_user(definitions, os.environ.get("RABBITMQ_DEFAULT_USER", ""),
                                    os.environ.get("RABBITMQ_DEFAULT_PASS", ""))
        except ValueError as exc:
            print(f"broker definitions: {exc} (set RABBITMQ_DEFAULT_USER and RABBITMQ_DEFAULT_PASS)", file=sys.stderr)
            return 2
    if args.users_from_env:
        try:
            definitions = with_users(definitions,
                                     (os.environ.get("RABBITMQ_ADMIN_USER", ""), _secret("RABBITMQ_ADMIN_PASSWORD")),
                                     (os.environ.get("RABBITMQ_USER", ""), _secret("RABBITMQ_PASSWORD")))
        except ValueError as exc:
            print(f"broker definitions: {exc}", file=sys.stderr)
            return 2
    text = render(definitions)
    if args.output:
        write(args.output, text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
