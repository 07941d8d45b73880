"""Fault-injection suite (issue 7): `python -m tests.reliability --objects 2000` prints the
table; `pytest tests/reliability` runs a shortened form (also in CI)."""
