"""Ingest paths must lie under the configured ingest roots; anything else is refused unopened.

A path in a message is the path where the producer saw the file. A worker on another host may
have the same share mounted elsewhere: DOSEFLOW_PATH_MAP rewrites the path's prefix first
(`/mnt/pacs=/data/incoming`), then the ingest-root check applies to the rewritten path, which
is the one opened. The message, the ledger and the dead letters keep the path as published.
"""
from __future__ import annotations

import os
import posixpath
from typing import Iterable, Sequence

from shared.outcome import Failed

PathMap = Sequence[tuple[str, str]]


def _folder(text: str, entry: str) -> str:
    folder = text.strip()
    if not folder.startswith("/"):
        raise ValueError(f"path map entry {entry!r}: {folder!r} is not an absolute path")
    return posixpath.normpath(folder) if folder != "/" else folder


def parse_path_map(entries: Iterable[str]) -> list[tuple[str, str]]:
    """`["/mnt/pacs=/data/incoming", ...]` -> `[("/mnt/pacs", "/data/incoming"), ...]`; both sides
    absolute, trailing slashes dropped. Raises ValueError naming a malformed entry."""
    pairs = []
    for entry in entries:
        if not entry.strip():
            continue
        source, sep, target = entry.partition("=")
        if not sep:
            raise ValueError(f"path map entry {entry!r} is not FROM=TO")
        pairs.append((_folder(source, entry), _folder(target, entry)))
    return pairs


def map_path(path: str, path_map: PathMap) -> str:
    """`path` with its longest mapped prefix replaced. A prefix matches whole path components
    only (`/mnt/pacs` maps `/mnt/pacs/a.dcm`, never `/mnt/pacs2/a.dcm`); no match: unchanged."""
    best = None
    for source, target in path_map:
        if source == "/" or path == source or path.startswith(source + "/"):
            if best is None or len(source) > len(best[0]):
                best = (source, target)
    if best is None:
        return path
    source, target = best
    rest = path[len(source):] if source != "/" else path[1:]
    rest = rest.lstrip("/")
    return posixpath.join(target, rest) if rest else target


def check_ingest_path(path: str, roots: list[str], path_map: PathMap = ()) -> str:
    """The real path of `path` (after `path_map`) when it lies under one of `roots` (symlinks
    resolved, so a link escaping a root is refused). With no roots configured every absolute
    path is accepted."""
    if path and path_map:
        path = map_path(path, path_map)
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
