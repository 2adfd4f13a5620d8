"""The layers and the one direction of imports between them (an AST walk, imports inside functions too).

    sim            the domain                     imports no other project package
    engine         the application layer          sim
    localservers   local PostgreSQL / Redis        nothing of ours
    storage        adapters: PostgreSQL, Redis     sim, engine
    actors         Ray shells                      sim, engine
    serve          the HTTP / WebSocket API        sim, engine
    runtime        the composition root            everything above
    loadtest       Locust, benchmarks, chaos       everything above
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED: dict[str, set[str]] = {
    "sim": set(),
    "engine": {"sim"},
    "localservers": set(),
    "storage": {"sim", "engine"},
    "actors": {"sim", "engine"},
    "serve": {"sim", "engine"},
    "runtime": {"sim", "engine", "localservers", "storage", "actors", "serve"},
    "loadtest": {"sim", "engine", "localservers", "storage", "actors", "serve", "runtime"},
}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def project_imports(path: Path) -> set[str]:
    """Top-level project packages this file imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {name.split(".")[0] for name in names} & set(ALLOWED)
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for package in ALLOWED:
        for path in modules(package):
            for target in project_imports(path) - {package}:
                graph[package][target].append(str(path.relative_to(ROOT)))
    return graph


def test_every_layer_exists() -> None:
    assert all((ROOT / package / "__init__.py").exists() for package in ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {target: files for target, files in import_graph()[package].items() if target not in ALLOWED[package]}
    assert wrong == {}, f"{package} must not import {sorted(wrong)}: {wrong}"


def test_there_is_no_import_cycle_between_packages() -> None:
    graph = {package: set(targets) for package, targets in import_graph().items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert [p for p in ALLOWED if reaches(p, p, set())] == []


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from actors.system import start_actors\n    import storage.db\n")
    assert project_imports(probe) == {"actors", "storage"}


def _sizes() -> tuple[list[str], list[str]]:
    long_modules, long_functions = [], []
    for package in ALLOWED:
        for path in modules(package):
            text = path.read_text()
            name = str(path.relative_to(ROOT))
            if len(text.splitlines()) > MAX_MODULE_LINES:
                long_modules.append(f"{name}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        long_functions.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    return long_modules, long_functions


def test_no_module_or_function_is_too_long_to_read() -> None:
    long_modules, long_functions = _sizes()
    assert long_modules == [], f"modules over {MAX_MODULE_LINES} lines"
    assert long_functions == [], f"functions over {MAX_FUNCTION_LINES} lines"
