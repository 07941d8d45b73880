"""Readiness: a file a worker touches while it can do its work, so a container healthcheck can
tell "running" from "working" (a `kill -0 1` check calls a worker healthy while it loops on a
refused login, or a receiver that refuses every object because it cannot write its folder).

The worker's loop calls `beat()` often; every `every` seconds it runs the checks (connected to the
broker and consuming is implied by the caller; the database answers; the folder takes a file)
and touches the file when all pass, or removes it. The healthcheck asks that the file was touched
within the last minute, so a hung process turns unhealthy too:

    test -n "$(find /tmp/doseflow.ready -mmin -1)"
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

log = logging.getLogger(__name__)

Check = Callable[[], Optional[str]]  # None when fine, else what is wrong


class Readiness:
    def __init__(self, path: Optional[Path], checks: Sequence[Check] = (), every: float = 5.0):
        self.path, self.checks, self.every = path, list(checks), every
        self._last = float("-inf")
        self._problem: Optional[str] = None

    def beat(self) -> None:
        if self.path is None or time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        problem = next((p for p in (check() for check in self.checks) if p), None)
        if problem != self._problem:
            if problem:
                log.warning("not ready: %s", problem)
            elif self._problem:
                log.info("ready again")
        self._problem = problem
        if problem:
            self.clear()
        else:
            self.path.touch()  # sets the time of an existing file too

    def clear(self) -> None:
        if self.path is not None:
            self._last = float("-inf")
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def folder_writable(folder: Path) -> Check:
    """A check that creates and removes a hidden file in `folder`."""
    def check() -> Optional[str]:
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doseflow-ready-"):
                pass
        except OSError as exc:
            return (f"cannot write to {folder} ({exc.strerror or exc}; uid {os.getuid()} needs write "
                    "permission there)")
        return None
    return check


def database_answers(url: str, every: float = 15.0) -> Check:
    """A check that runs `SELECT 1` on a connection of its own (not the worker's, which may be in
    a transaction on another thread), at most every `every` seconds."""
    from shared.database import connect

    state = {"conn": None, "at": float("-inf"), "problem": None}

    def check() -> Optional[str]:
        if time.monotonic() - state["at"] < every:
            return state["problem"]
        state["at"] = time.monotonic()
        try:
            if state["conn"] is None or state["conn"].closed or state["conn"].broken:
                state["conn"] = connect(url, connect_timeout=5, autocommit=True)
            state["conn"].execute("SELECT 1")
            state["problem"] = None
        except Exception as exc:  # any failure means "not ready", with the reason
            if state["conn"] is not None:
                try:
                    state["conn"].close()
                except Exception:
                    pass
                state["conn"] = None
            state["problem"] = f"database does not answer ({str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__})"
        return state["problem"]
    return check
