"""How one object's processing ends when it does not end in a stored report.

Every stage maps an exception to exactly one outcome: `Ignored` (not a dose object, said
why), `Failed` (a permanent fault: unreadable, malformed, refused; replayable once the cause
is fixed). Transient faults (broker, database) are not outcomes: they are retried.
"""
from __future__ import annotations


class Ignored(Exception):
    """The object carries no dose data doseflow takes; `reason` says why."""

    @property
    def reason(self) -> str:
        return str(self)


class Failed(Exception):
    """A permanent fault for this object; `reason` names the field, tag or rule."""

    @property
    def reason(self) -> str:
        return str(self)
