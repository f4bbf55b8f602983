"""The architecture in code: what a fingerprint covers, and which way imports point."""

from __future__ import annotations

import ast
import shutil
import tomllib
from pathlib import Path

import pytest

from benchmark.core.registry import METHODS, PROTOCOLS
from benchmark.run.provenance import REPO_ROOT, code_fingerprint, prediction_modules

#: the harness's layers, top to bottom: a module may import its own layer and the ones below it
LAYERS = (
    ("benchmark.cli", "benchmark.__main__"),
    ("benchmark.report",),
    ("benchmark.run",),
    ("benchmark.evaluate", "benchmark.seeds"),
    ("methods",),
    ("benchmark.core",),
    ("benchmark.ui",),
)


def _layer(module: str) -> int | None:
    for depth, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(f"{p}.") for p in prefixes):
            return depth
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The harness modules a file imports (at the top or inside functions), resolved to modules."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if _file(name) is not None}


def _file(name: str) -> Path | None:
    base = REPO_ROOT.joinpath(*name.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


SOURCES = sorted(p for folder in ("benchmark", "methods") for p in (REPO_ROOT / folder).rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    assert [m for p in SOURCES if _layer(m := _module_name(p)) is None] == ["benchmark"]


def test_imports_point_down_never_up():
    upward = []
    for path in SOURCES:
        here = _module_name(path)
        for imported in _imports(path):
            if (mine := _layer(here)) is not None and (theirs := _layer(imported)) is not None and theirs < mine:
                upward.append(f"{here} -> {imported}")
    assert upward == []


def test_no_import_circle_between_modules():
    graph = {_module_name(p): {m for m in _imports(p) if m != _module_name(p)} for p in SOURCES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                circles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_methods_reach_other_methods_only_through_their_public_method_module():
    for path in (REPO_ROOT / "methods").rglob("*.py"):
        own = path.relative_to(REPO_ROOT).parts[1]
        for imported in _imports(path):
            parts = imported.split(".")
            if parts[0] == "methods" and len(parts) > 1 and parts[1] != own:
                assert parts[2:] == ["method"], f"{path}: imports {imported}"


def test_a_fingerprint_covers_the_method_its_parts_and_the_core_it_imports():
    modules = prediction_modules("methods.eigproj.method")
    assert {"methods.eigproj.projection", "methods.tagger.method", "benchmark.core.encoders"} <= set(modules)
    assert "benchmark.core.fit" in modules  # the harness's own part of every prediction
    for shown in ("benchmark.evaluate", "benchmark.run.tracking", "benchmark.core.registry", "methods.cofee.method"):
        assert shown not in modules
    assert not any(m.startswith(("benchmark.ui", "benchmark.report", "benchmark.run")) for m in modules)


def test_ruff_bans_every_other_methods_modules_but_their_method():
    """The lint twin of the test above: the ruff config of each method folder (its own ruff.toml,
    else methods/ruff.toml) bans exactly the other methods' modules besides ``method``."""
    internals = {
        f"methods.{p.parent.name}.{p.stem}"
        for p in (REPO_ROOT / "methods").glob("*/*.py")
        if p.stem not in ("method", "__init__")
    }
    for folder in sorted(p.parent for p in (REPO_ROOT / "methods").glob("*/method.py")):
        config = next(c for c in (folder / "ruff.toml", REPO_ROOT / "methods" / "ruff.toml") if c.is_file())
        banned = tomllib.loads(config.read_text())["lint"]["flake8-tidy-imports"]["banned-api"]
        others = {m for m in internals if not m.startswith(f"methods.{folder.name}.")}
        assert {name for name in banned if name.startswith("methods.")} == others, config


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the harness's code, to edit."""
    for folder in ("benchmark", "methods"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _fingerprints(root: Path) -> dict[str, str]:
    return {
        f"{name}:{p}": code_fingerprint(METHODS.get(name).__module__, PROTOCOLS[p], root)
        for name in METHODS.names()
        for p in sorted(METHODS.get(name).protocols)
    }


def test_adding_a_method_protocol_metric_or_report_feature_keeps_every_fingerprint(checkout):
    before = _fingerprints(checkout)
    (checkout / "methods" / "newcomer").mkdir()
    (checkout / "methods" / "newcomer" / "method.py").write_text("from benchmark.core.method import Method\n")
    registry = checkout / "benchmark" / "core" / "registry.py"
    registry.write_text(
        registry.read_text().replace('"cofee": ', '"newcomer": "methods.newcomer.method:New",\n"cofee": ')
    )
    (checkout / "benchmark" / "evaluate.py").write_text(
        (checkout / "benchmark" / "evaluate.py").read_text() + "\nX = 1\n"
    )
    (checkout / "benchmark" / "report" / "extra.py").write_text("FEATURE = 1\n")
    (checkout / "benchmark" / "ui" / "progress.py").write_text("# the bars look different\n")
    (checkout / "benchmark" / "run" / "plan.py").write_text("# another orchestration\n")
    assert _fingerprints(checkout) == before


def test_editing_what_a_method_imports_changes_its_fingerprint_and_only_its(checkout):
    before = _fingerprints(checkout)
    encoders = checkout / "benchmark" / "core" / "encoders.py"
    encoders.write_text(encoders.read_text() + "\n# a change\n")
    after = _fingerprints(checkout)
    changed = {case for case in before if before[case] != after[case]}
    assert {"tagger:ner", "eigproj:weak-typing", "gazetteer:ner"} <= changed  # the cache imports the encoders
    tagger = checkout / "methods" / "tagger" / "method.py"
    tagger.write_text(tagger.read_text() + "\n# a change\n")
    again = _fingerprints(checkout)
    changed = {case.split(":")[0] for case in after if after[case] != again[case]}
    assert changed == {"tagger", "eigproj"}  # eigproj trains its coarse tagger through Tagger


def test_a_protocols_definition_is_part_of_the_fingerprint_of_its_runs():
    module = METHODS.get("tagger").__module__
    assert code_fingerprint(module, PROTOCOLS["ner"]) != code_fingerprint(module, PROTOCOLS["typing"])
