"""Readiness file: touched while every check passes, removed as soon as one fails, so the compose
healthcheck (`find FILE -mmin -1`) tells a working service from a merely running one."""
from __future__ import annotations

import os
import time

from shared.readiness import Readiness, folder_writable


def test_the_file_is_touched_while_the_checks_pass_and_removed_when_one_fails(tmp_path):
    ready = tmp_path / "ready"
    problem = {"now": None}
    readiness = Readiness(ready, [lambda: problem["now"]], every=0)
    readiness.beat()
    assert ready.exists()
    os.utime(ready, (0, 0))
    readiness.beat()
    assert ready.stat().st_mtime > time.time() - 60  # fresh again: the healthcheck's test
    problem["now"] = "broker unreachable"
    readiness.beat()
    assert not ready.exists()
    problem["now"] = None
    readiness.beat()
    assert ready.exists()
    readiness.clear()
    assert not ready.exists()


def test_checks_run_at_most_every_interval(tmp_path):
    calls = []
    readiness = Readiness(tmp_path / "ready", [lambda: calls.append(1)], every=3600)
    for _ in range(5):
        readiness.beat()
    assert len(calls) == 1


def test_without_a_path_nothing_is_checked_or_written(tmp_path):
    calls = []
    Readiness(None, [lambda: calls.append(1)], every=0).beat()
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_take_a_file_is_named(tmp_path):
    assert folder_writable(tmp_path)() is None
    assert list(tmp_path.iterdir()) == []  # the probe file is gone again
    missing = tmp_path / "not-there"
    problem = folder_writable(missing)()
    assert problem and str(missing) in problem and "write permission" in problem
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert folder_writable(not_a_folder)() is not None
