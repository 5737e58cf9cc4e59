"""The layout rules, checked on the source: layers point down, no import cycle, no module
over 400 lines, no package of more than 12 modules.

Layers, lowest first: the ``kdtune`` base (``kdtune/*.py``), ``kdtune.storage``,
``kdtune.objectives``, ``kdtune.study`` (the CLI lives in the study layer). A module may import
its own layer and the ones below; every import counts, function-local ones included, so a
cycle cannot hide inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"kdtune": "kdtune", "storage": "kdtune.storage",
           "objectives": "kdtune.objectives", "study": "kdtune.study"}
RANK = {"kdtune": 0, "kdtune.storage": 1, "kdtune.objectives": 2, "kdtune.study": 3}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in RANK else "kdtune"


def _from_target(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from ... import`` statement in ``package`` imports from."""
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The kdtune modules ``module`` imports (absolute or relative, anywhere in the file)."""
    package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def test_layers_only_import_downwards():
    upward = [
        f"{m} -> {t}"
        for m, targets in _graph().items()
        for t in targets
        if RANK[_layer(t)] > RANK[_layer(m)]
    ]
    assert upward == []


def test_no_import_cycle():
    graph = _graph()
    # a package's __init__ only names its public objects lazily: leave it out of cycles
    inits = {m for m, p in _modules().items() if p.stem == "__init__"}
    graph = {m: {t for t in ts if t not in inits} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]))
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


@pytest.mark.parametrize("folder", [*FOLDERS, "bench", "tests"])
def test_no_module_over_400_lines(folder):
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_cycle_between_packages():
    """Sub-packages import one another one way (data -> teacher -> ... -> search): a
    package-level cycle would make a pipeline stage depend on a later one."""
    def node(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:3]) if len(parts) > 3 else module

    inits = {m for m, p in _modules().items() if p.stem == "__init__"}
    edges: dict[str, set[str]] = {}
    for m, targets in _graph().items():
        for t in targets - inits:
            if node(t) != node(m):
                edges.setdefault(node(m), set()).add(node(t))

    def reaches(start: str, goal: str) -> bool:
        todo, seen = [start], set()
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    assert len(edges) > 8
    assert sorted(n for n in edges if reaches(n, n)) == []


MAX_PACKAGE_MODULES = 12


def test_no_package_over_12_modules():
    """A folder holds one concept: past 12 modules it hides sub-concepts (make packages)."""
    big = {}
    for folder in FOLDERS:
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            modules = [p for p in init.parent.glob("*.py") if p.name != "__init__.py"]
            if len(modules) > MAX_PACKAGE_MODULES:
                big[str(init.parent.relative_to(ROOT))] = len(modules)
    # test folders have no __init__.py: count every folder (conftest.py holds fixtures)
    for folder in ("tests", "bench"):
        for sub in [ROOT / folder, *sorted(p for p in (ROOT / folder).rglob("*") if p.is_dir())]:
            modules = [p for p in sub.glob("*.py") if p.name not in ("__init__.py", "conftest.py")]
            if len(modules) > MAX_PACKAGE_MODULES:
                big[str(sub.relative_to(ROOT))] = len(modules)
    assert big == {}


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule is live: an objectives module importing the study layer is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from kdtune.study.config import StudyConfig\n")
    known = set(_modules())
    found = _imports("kdtune.objectives.bad", bad, known)
    assert "kdtune.study.config" in found
    assert RANK[_layer("kdtune.study.config")] > RANK[_layer("kdtune.objectives.bad")]


def test_every_from_import_names_something_that_exists():
    """Every ``from X import name`` of the package, function-local ones included, resolves:
    a moved module or function cannot leave a stale import in a code path no test runs."""
    import importlib
    import importlib.util

    missing = []
    scripts = {".".join(p.relative_to(ROOT).with_suffix("").parts): p
               for folder in ("bench", "tests")
               for p in sorted((ROOT / folder).rglob("*.py"))}  # their absolute imports
    for module, path in {**_modules(), **scripts}.items():
        package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            target = _from_target(node, package)
            if not target.startswith("kdtune"):
                continue
            imported = importlib.import_module(target)
            for alias in node.names:
                if not (hasattr(imported, alias.name)
                        or importlib.util.find_spec(f"{target}.{alias.name}") is not None):
                    missing.append(f"{module}: from {target} import {alias.name}")
    assert missing == []


def test_no_exported_name_is_also_a_submodule():
    """A package's lazy export must not share its name with one of its submodules: once the
    submodule is imported, the package attribute is the module, not the exported object
    (``kdtune.study.cli:main``, the entry point, would then be a module)."""
    import importlib
    import pkgutil

    packages = sorted({m for m, p in _modules().items() if p.stem == "__init__"})
    clashes = []
    for name in packages:
        package = importlib.import_module(name)
        submodules = {info.name for info in pkgutil.iter_modules(package.__path__)}
        clashes += [f"{name}.{n}" for n in getattr(package, "__all__", []) if n in submodules]
    assert len(packages) > 10
    assert clashes == []
