"""A worker's life: faults that retrying cannot mend, and waits that SIGTERM cuts short.

- `ConfigurationError`: the broker or the database refused the login (wrong user or password, no
  such virtual host or database). Retrying for ten minutes would only hide it: the process logs
  one line and exits non-zero, so compose or systemd restarts it with their own backoff and the
  operator sees why.
- `stopping` / `sleep`: every retry backoff waits on this event, which SIGTERM sets, so a worker
  told to stop while it waits for the broker or the database stops at once.
"""
from __future__ import annotations

import threading

stopping = threading.Event()


class ConfigurationError(Exception):
    """A refused login or a missing virtual host/database: not transient."""


class Stopped(SystemExit):
    """SIGTERM arrived during a retry wait."""

    def __init__(self):
        super().__init__(0)


def sleep(seconds: float) -> None:
    """tenacity's sleep: returns after `seconds`, or raises Stopped as soon as SIGTERM is received."""
    if stopping.wait(seconds):
        raise Stopped()
