"""Ingest paths must lie under the configured ingest roots; anything else is refused unopened."""
from __future__ import annotations

import os

from shared.outcome import Failed


def check_ingest_path(path: str, roots: list[str]) -> str:
    """The real path of `path` when it lies under one of `roots` (symlinks resolved, so a link
    escaping a root is refused). With no roots configured every absolute path is accepted."""
    if not path or "\x00" in path:
        raise Failed("refused: empty path or NUL byte in path")
    if not os.path.isabs(path):
        raise Failed("refused: ingest paths must be absolute")
    real = os.path.realpath(path)
    if not roots:
        return real
    for root in roots:
        real_root = os.path.realpath(root)
        if os.path.commonpath([real, real_root]) == real_root:
            return real
    raise Failed("refused: path is outside DOSEFLOW_INGEST_ROOTS")
