"""The layout's rules, read from the package's source (ASTs, nothing imported), so an import or a
bare route name that breaks them fails here:

- `shared/` (contracts and plumbing) never imports `services/` (the stages);
- no service imports another service's `worker` module (workers are shells; what two stages
  share lives in `shared/`);
- route and extractor-queue names are written once, in the registry `shared/routes.py`;
- coded concepts have one type and one home: `shared/codes.py` declares every code value and
  the `Code` type; no other module builds a code from literals, writes a declared code value or
  a coding scheme as a string, or declares a second coded-concept class;
- header attributes are read through one accessor, `shared/header.py`: no other module builds a
  tag from a group and an element number or shifts a private block into place (how a private
  tag gets found by hand).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PRODUCT = ("shared", "services", "doseflow")
REGISTRY = Path("shared/routes.py")
CODES = Path("shared/codes.py")
HEADER = Path("shared/header.py")


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


# --- coded concepts ---------------------------------------------------------------------------

CODE_MAKERS = {"Code", "DCM", "SCT", "SRT", "UCUM"}
SCHEMES = {"DCM", "SCT", "SRT", "UCUM", "UMLS", "LN"}


def _declared_code_values() -> set[str]:
    """The code values shared/codes.py declares that cannot be mistaken for ordinary text: every
    one but the units (UCUM 's', 'mm' are also unit spellings) and the short private numbers
    (Philips '003'; a Code built from literals is caught by the call rule)."""
    import shared.codes as codes

    found = set()
    for value in vars(codes).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) \
            and not isinstance(value, codes.Code) else [value]
        for item in items:
            if isinstance(item, codes.Code):
                found |= {c.value for c in item.codes if c.scheme != "UCUM" and len(c.value) >= 4}
    return found


def _code_offences(path: Path, tree: ast.Module, values: set[str]) -> list[str]:
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else \
                node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name in CODE_MAKERS and any(isinstance(a, ast.Constant) for a in node.args):
                offenders.append(f"{path}:{node.lineno} builds a code from literals ({name}(...))")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in values:
                offenders.append(f"{path}:{node.lineno} writes the code value {node.value!r}")
            elif node.value in SCHEMES or (node.value.startswith("99") and node.value[2:3].isalpha()):
                offenders.append(f"{path}:{node.lineno} writes the coding scheme {node.value!r}")
        elif isinstance(node, ast.ClassDef):
            fields = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
            if fields & {"scheme", "codes", "coding_scheme"} or {"code", "meaning"} <= fields:
                offenders.append(f"{path}:{node.lineno} declares a coded-concept class {node.name} "
                                 "(use shared.codes.Code)")
    return offenders


def test_code_values_and_the_code_type_live_only_in_shared_codes():
    values = _declared_code_values()
    assert {"113811", "373066001", "G-C171", "C-10"} <= values  # the rule sees the codes module
    offenders = [o for path, tree in MODULES.items() if path != CODES for o in _code_offences(path, tree, values)]
    assert offenders == []


def test_the_code_rules_see_a_violation():
    bad = ast.parse('from shared.sr import Code\nX = DCM("113811")\nY = ("DCM", "113811")\n'
                    'class Coded(NamedTuple):\n    value: str\n    scheme: str\n    meaning: str\n')
    found = _code_offences(Path("bad.py"), bad, _declared_code_values())
    assert len(found) == 5, found  # the call, the value twice, the scheme, the class


# --- one composition -------------------------------------------------------------------------

# The caller's configuration, passed through to the stages unread.
CONFIGURATION_TYPES = {"services.classifier.rules.RoutingRules", "services.extractors.common.ExtractOptions",
                       "services.alerts.rules.RuleSet"}


def _import_offenders(tree: ast.Module) -> list[str]:
    import importlib
    import inspect

    offenders = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("services.")):
            continue
        for alias in node.names:
            name = f"{node.module}.{alias.name}"
            if name in CONFIGURATION_TYPES:
                continue
            value = getattr(importlib.import_module(node.module), alias.name, None)
            factory = node.module.endswith(".worker") and callable(value) and \
                "Stage" in str(inspect.signature(value).return_annotation)
            if not factory:
                offenders.append(f"line {node.lineno} imports {name}")
    return offenders


def test_the_import_composes_the_services_stages_and_holds_no_stage_logic_of_its_own():
    # One wiring of the pipeline: `doseflow import` takes the stages from the services'
    # workers (and each route's stage from the registry), never a classifier, extractor,
    # builder or store function, so it cannot drift from what the services do.
    assert _import_offenders(MODULES[Path("doseflow/importer.py")]) == []
    # The rule sees a second wiring: the functions the import used to call itself.
    before = ast.parse("from services.classifier.worker import classify_file\n"
                       "from services.toshiba_builder.study import finish\n"
                       "from services.writer.store import store_report\n")
    assert len(_import_offenders(before)) == 3


def test_every_route_names_a_stage_that_takes_its_queue():
    # A new route (or a new stage on one) plugs into the workers and the import alike through
    # its registry row; the factory is found and builds a stage on the route's own queue.
    import shared.routes as routes
    from services.extractors.common import ExtractOptions
    from shared.broker import Stage, StageContext
    from shared.messages import ExtractRequest

    for in_process in (False, True):
        context = StageContext(ExtractOptions(), [], output_dir=Path("/nonexistent"), in_process=in_process)
        for route in routes.ROUTES:
            stage = route.stage_function()(route, context)
            assert isinstance(stage, Stage) and (stage.queue, stage.model) == (route.queue, ExtractRequest), route
            assert stage.records, route  # each object it ends has its outcome recorded


# --- header accessor ----------------------------------------------------------------------------


def _private_tag_offences(path: Path, tree: ast.Module) -> list[str]:
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Tag" \
                and len(node.args) >= 2:
            offenders.append(f"{path}:{node.lineno} builds a tag from group and element (use shared.header)")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.LShift) \
                and isinstance(node.right, ast.Constant) and node.right.value == 8:
            offenders.append(f"{path}:{node.lineno} shifts a private block into place (use shared.header)")
    return offenders


def test_private_tags_are_found_only_by_the_header_accessor():
    offenders = [o for path, tree in MODULES.items() if path != HEADER for o in _private_tag_offences(path, tree)]
    assert offenders == []
    assert _private_tag_offences(HEADER, MODULES[HEADER])  # the rule sees the one place that may


def test_the_header_rule_sees_a_violation():
    bad = ast.parse("t = ds.get(Tag(0x7005, (block << 8) | 0x40))\n")
    assert len(_private_tag_offences(Path("bad.py"), bad)) == 2
