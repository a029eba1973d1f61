"""The layers of jmlkit (../shared/DESIGN.md): no import runs upward and none circles.

Bottom to top: (1) ground: ``_checks``, ``layout``, ``io``; (2) the library: ``losses``, ``targets``, ``metrics``,
``data``, ``models``, ``parallel``, ``profiles`` (the table of profiles that ``engine`` reads); (3) ``engine``;
(4) ``experiments``; (5) ``plot``, ``lessons``; (6) ``runner``; (7) ``__main__``. A module may import from its own
layer or below. Two checks: each layer imported in a fresh interpreter loads no jmlkit module of a higher layer
(what a user pays for ``import jmlkit.losses``), and a static check of every ``import`` statement of every module
(at module level and inside functions, since a function's import runs upward as well when it runs), whose graph
must have no cycle.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jmlkit

PACKAGE = Path(jmlkit.__file__).resolve().parent
ROOT = PACKAGE.parent

#: The layer of each top-level module or package of jmlkit (``jmlkit`` itself imports nothing).
LAYERS = {
    "jmlkit": 0,
    "jmlkit._checks": 1, "jmlkit.layout": 1, "jmlkit.io": 1,
    "jmlkit.losses": 2, "jmlkit.targets": 2, "jmlkit.metrics": 2, "jmlkit.data": 2, "jmlkit.models": 2,
    "jmlkit.parallel": 2, "jmlkit.profiles": 2,
    "jmlkit.engine": 3,
    "jmlkit.experiments": 4,
    "jmlkit.plot": 5, "jmlkit.lessons": 5,
    "jmlkit.runner": 6,
    "jmlkit.__main__": 7,
}


def _top(module: str) -> str:
    """``jmlkit.engine.loop`` -> ``jmlkit.engine``: the key of :data:`LAYERS`."""
    return ".".join(module.split(".")[:2])


def layer(module: str) -> int:
    top = _top(module)
    if top not in LAYERS:
        raise AssertionError(f"{module} is in no layer: add {top!r} to LAYERS here and to ../shared/DESIGN.md's map")
    return LAYERS[top]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(target: str) -> str:
    """The module of ``MODULES`` that an import of ``target`` (a module, or a name in a module) loads."""
    while target not in MODULES and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def imports(module: str) -> dict[str, int]:
    """``{imported jmlkit module: line}`` of every import statement in ``module`` (module level and in functions)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        for target in targets:
            if target == "jmlkit" or target.startswith("jmlkit."):
                target = _resolve(target)
                if target != module:
                    found.setdefault(target, node.lineno)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if _top(m) not in LAYERS] == []


def test_the_static_scan_sees_relative_and_function_level_imports():
    assert "jmlkit.plot._common" in GRAPH["jmlkit.plot.runs"]  # from ._common import ...
    assert "jmlkit.runner.readme" in GRAPH["jmlkit.__main__"]  # inside a function


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{MODULES[m].relative_to(ROOT)}:{line}: {m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
              for m, targets in GRAPH.items() for t, line in targets.items() if layer(t) > layer(m)]
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_experiments_import_nothing_of_the_runner():
    assert [(m, t) for m, targets in GRAPH.items() for t in targets
            if _top(m) == "jmlkit.experiments" and _top(t) == "jmlkit.runner"] == []


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b": 1}, "b": {"c": 1}, "c": {}}, []),
    ({"a": {"b": 1}, "b": {"a": 1}}, [["a", "b"]]),
    ({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}, [["a", "b", "c"]]),
    ({"a": {"b": 1}, "b": {"a": 1}, "c": {"d": 1}, "d": {"c": 1}}, [["a", "b"], ["c", "d"]]),
])
def test_cycles_finds_every_circle(graph, expected):
    assert cycles(graph) == expected


def _package_graph() -> dict[str, dict[str, int]]:
    """The graph between top-level modules and packages (``jmlkit.engine`` for all of ``jmlkit/engine/``)."""
    out: dict[str, dict[str, int]] = {}
    for m, targets in GRAPH.items():
        for t in targets:
            if _top(t) != _top(m) and _top(t) != "jmlkit":
                out.setdefault(_top(m), {})[_top(t)] = 1
    return out


def test_no_import_cycle_between_modules():
    assert cycles(GRAPH) == []


def test_no_import_cycle_between_packages():
    assert cycles(_package_graph()) == []


def test_the_engine_config_no_longer_reaches_checkpoints_or_objectives():
    """The circle that was: config -> objectives (label names) -> checkpoints -> config."""
    assert "jmlkit.engine.objectives" not in GRAPH["jmlkit.engine.config"]
    assert "jmlkit.engine.checkpoints" not in GRAPH["jmlkit.engine.objectives"]


def test_lessons_import_nothing_of_plot():
    assert not [t for m, targets in GRAPH.items() if m.startswith("jmlkit.lessons") for t in targets
                if t.startswith("jmlkit.plot")]


# --------------------------------------------------------------------------- what an import loads
def _loaded(module: str) -> list[str]:
    """The jmlkit modules that ``import <module>`` loads in a fresh interpreter."""
    code = (f"import json, sys\nimport {module}\n"
            "print(json.dumps(sorted(m for m in sys.modules if m == 'jmlkit' or m.startswith('jmlkit.'))))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    env.pop("JMLKIT_SCHEDULER", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", [m for m in LAYERS if m != "jmlkit"])
def test_importing_a_layer_loads_nothing_above_it(module):
    loaded = _loaded(module)
    assert module in loaded
    above = [m for m in loaded if layer(m) > layer(module)]
    assert above == [], f"import {module} (layer {layer(module)}) loads {above}"


def test_the_math_loads_no_engine_experiments_or_runner():
    loaded = _loaded("jmlkit.losses, jmlkit.metrics, jmlkit.targets")
    assert [m for m in loaded if _top(m) in ("jmlkit.engine", "jmlkit.experiments", "jmlkit.runner")] == []


def test_plot_loads_no_runner_module():
    loaded = _loaded("jmlkit.plot")
    assert "jmlkit.plot" in loaded
    assert [m for m in loaded if _top(m) == "jmlkit.runner"] == []
