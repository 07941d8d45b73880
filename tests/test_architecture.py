"""The layout's rules, read from the package's source (ASTs, nothing imported), so an import or a
bare route name that breaks them fails here:

- `shared/` (contracts and plumbing) never imports `services/` (the stages);
- no service imports another service's `worker` module (workers are shells; what two stages
  share lives in `shared/`);
- route and extractor-queue names are written once, in the registry `shared/routes.py`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PRODUCT = ("shared", "services", "doseflow")
REGISTRY = Path("shared/routes.py")


def _modules() -> dict[Path, ast.Module]:
    out = {}
    for top in PRODUCT:
        for path in sorted((REPO / top).rglob("*.py")):
            out[path.relative_to(REPO)] = ast.parse(path.read_text(), filename=str(path))
    assert len(out) > 40, "the package's modules were not found"
    return out


MODULES = _modules()


def _imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, dotted name) of every import, `from a.b import c` giving both `a.b` and `a.b.c`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def test_shared_never_imports_a_service():
    offenders = [f"{path}:{line} imports {name}" for path, tree in MODULES.items() if path.parts[0] == "shared"
                 for line, name in _imports(tree) if name == "services" or name.startswith("services.")]
    assert offenders == []


def test_no_service_imports_another_services_worker():
    offenders = []
    for path, tree in MODULES.items():
        if path.parts[0] != "services":
            continue
        for line, name in _imports(tree):
            parts = name.split(".")
            if len(parts) >= 3 and parts[0] == "services" and parts[1] != path.parts[1] and parts[2] == "worker":
                offenders.append(f"{path}:{line} imports {name}")
    assert offenders == []


def _route_names() -> set[str]:
    # The names as the registry holds them: routes, extractor queues, `--as` choices.
    import shared.routes as routes

    return {r.name for r in routes.ROUTES} | {r.queue for r in routes.ROUTES} | {r.cli_name for r in routes.ROUTES}


# "toshiba" is also a vendor's name: the screen parsers' family and a Manufacturer test use it as
# such. The builder's modules that publish, record or build (worker, study, build, state) may not.
VENDOR_NAME_USERS = {Path("services/toshiba_builder") / f for f in ("pages.py", "reading.py", "headers.py",
                                                                      "ocr.py", "screen.py", "toshiba_screen.py")}


def test_route_names_are_written_once_in_the_registry():
    names = _route_names()
    offenders = [f"{path}:{node.lineno} {node.value!r}" for path, tree in MODULES.items() if path != REGISTRY
                 for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in names
                 and not (path in VENDOR_NAME_USERS and node.value == "toshiba")]
    assert offenders == []


def test_the_rules_see_a_violation():
    # The checks themselves can fail: a module written the wrong way round is caught.
    bad = ast.parse("from services.classifier.worker import read_header\nROUTE = 'rdsr'\n")
    assert ("services.classifier.worker.read_header" in {n for _, n in _imports(bad)})
    assert any(isinstance(n, ast.Constant) and n.value in _route_names() for n in ast.walk(bad))
