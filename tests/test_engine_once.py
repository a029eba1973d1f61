"""The engine checks a run once and loads its teacher once; no engine module imports one that imports it back.

* Import graph: every ``import`` of ``jmlkit/engine/*.py`` (at module level and inside functions), read with
  :mod:`ast`, makes a graph without a cycle; the label-mode registry imports nothing of jmlkit.
* Once: ``python -m jmlkit train --labels kd --teacher RUN`` (in process) and ``fit(config)`` run
  :func:`~jmlkit.engine.preflight` once, read the teacher's ``model.pt`` once (``torch.load`` counted) and list
  each split's data once; ``fit(config, checked=preflight(config))`` trains exactly as ``fit(config)`` does, and a
  ``checked`` of another config is a ``ValueError`` naming ``checked``.
"""
from __future__ import annotations

import ast
import copy
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from torch import nn

import jmlkit.data
import jmlkit.engine
import jmlkit.engine.checks as checks
from jmlkit.__main__ import main
from jmlkit.engine import Preflight, TrainConfig, fit, preflight

ENGINE = Path(jmlkit.engine.__file__).parent
SMOKE = ["--profile", "smoke", "--no-progress", "--quiet"]


# ------------------------------------------------------------------------------ the import graph
def import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for the ``*.py`` files of ``folder`` (the package ``package``),
    counting every import statement, at module level or in a function; ``from package import name`` is the
    submodule ``name`` when there is one, else the package itself (its ``__init__``)."""
    modules = {package if p.stem == "__init__" else f"{package}.{p.stem}": p for p in sorted(folder.glob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules and "." in target:  # `import jmlkit.engine.x.y` -> x
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


@pytest.mark.parametrize("files, cycle", [
    ({"a.py": "import pkg.b\n", "b.py": "def f():\n    from pkg.a import x\n"}, ["pkg.a", "pkg.b", "pkg.a"]),
    ({"a.py": "from . import b\n", "b.py": "from .c import y\n", "c.py": "from pkg import a\n"},
     ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]),
    ({"__init__.py": "from pkg.a import x\n", "a.py": "from pkg import x\n"}, ["pkg", "pkg.a", "pkg"]),
    ({"__init__.py": "from pkg.a import x\n", "a.py": "from pkg import b\n", "b.py": "import os\n"}, None),
    ({"a.py": "import pkg.b.c\n", "b.py": "import pkg\n"}, None),
])
def test_the_cycle_finder_finds_known_cycles(tmp_path, files, cycle):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert find_cycle(import_graph(tmp_path, "pkg")) == cycle


def test_no_engine_module_imports_one_that_imports_it_back():
    graph = import_graph(ENGINE, "jmlkit.engine")
    assert {"jmlkit.engine.config", "jmlkit.engine.objectives", "jmlkit.engine.checkpoints"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    assert "jmlkit.engine.objectives" not in graph["jmlkit.engine.config"]
    assert "jmlkit.engine.checkpoints" not in graph["jmlkit.engine.objectives"]


def test_the_label_mode_registry_imports_nothing_of_jmlkit():
    tree = ast.parse((ENGINE / "registry.py").read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [("." * node.level) + (node.module or "") for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith(("jmlkit", "."))], imported
    from jmlkit.engine import OBJECTIVES, label_modes, registry

    assert registry.OBJECTIVES is OBJECTIVES and registry.label_modes() == label_modes() == ("hard", "ls", "kd", "ssl", "soft")


# ------------------------------------------------------------------------------ preflight once, teacher once
@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> Path:
    """A complete run folder of the smoke profile (its model.pt is the teacher)."""
    out = tmp_path_factory.mktemp("teacher") / "run"
    fit(TrainConfig.from_profile("smoke", out=str(out)), progress=False)
    return out


@pytest.fixture()
def counted(monkeypatch) -> dict:
    """Count :func:`preflight` calls (under every name a jmlkit module binds it to), ``torch.load`` calls by resolved
    file, and :func:`jmlkit.data.check_dataset_options` calls (the split listing of the folder data sets) by split."""
    calls: dict = {"preflight": 0, "load": Counter(), "listed": Counter()}
    original = checks.preflight

    def counting_preflight(*args, **kwargs):
        calls["preflight"] += 1
        return original(*args, **kwargs)

    bound = [m for name, m in list(sys.modules.items())
             if name.startswith("jmlkit") and getattr(m, "preflight", None) is original]
    assert checks in bound and jmlkit.engine in bound
    for module in bound:
        monkeypatch.setattr(module, "preflight", counting_preflight)
    torch_load = torch.load

    def counting_load(f, *args, **kwargs):
        calls["load"][Path(f).resolve() if isinstance(f, (str, os.PathLike)) else type(f).__name__] += 1
        return torch_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    check_options = jmlkit.data.check_dataset_options

    def counting_check(name, split="train", **kwargs):
        calls["listed"][split] += 1
        return check_options(name, split, **kwargs)

    monkeypatch.setattr(jmlkit.data, "check_dataset_options", counting_check)
    return calls


def test_cli_train_kd_checks_once_and_reads_the_teacher_once(teacher_run, counted, tmp_path):
    assert main(["train", *SMOKE, "--labels", "kd", "--teacher", str(teacher_run), "--out", str(tmp_path / "kd")]) == 0
    assert (tmp_path / "kd" / "model.pt").is_file()
    assert counted["preflight"] == 1
    assert counted["load"] == Counter({(teacher_run / "model.pt").resolve(): 1})
    assert counted["listed"] == Counter({"train": 1, "test": 1})


@pytest.mark.parametrize("source", ["folder", "file"])
def test_fit_checks_once_and_reads_the_teacher_once(teacher_run, counted, source):
    teacher = teacher_run if source == "folder" else teacher_run / "model.pt"
    result = fit(TrainConfig.from_profile("smoke", labels="kd", teacher=str(teacher)), progress=False)
    assert result.history.step.iloc[-1] >= 1
    assert counted["preflight"] == 1
    assert counted["load"] == Counter({(teacher_run / "model.pt").resolve(): 1})
    assert counted["listed"] == Counter({"train": 1, "test": 1})


def _same_run(a, b) -> None:
    """Two fit results trained the same: history (but its times) and metrics (but the wall time) equal, same weights."""
    cols = [c for c in a.history.columns if c != "time_s"]
    assert a.history[cols].equals(b.history[cols])
    assert {k: v for k, v in a.metrics.items() if k != "train_time_s"} == {k: v for k, v in b.metrics.items() if k != "train_time_s"}
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), name


def test_fit_with_its_preflight_trains_as_fit_alone_and_loads_nothing_again(teacher_run, counted):
    config = TrainConfig.from_profile("smoke", labels="kd", teacher=str(teacher_run), epochs=2)
    alone = fit(config, progress=False)
    assert (counted["preflight"], sum(counted["load"].values())) == (1, 1)
    checked = checks.preflight(config)  # counted
    teacher = checked.teacher
    assert isinstance(teacher, nn.Module) and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert checked.config == config and checked.config is not config
    again = fit(config, checked=checked, progress=False)
    assert (counted["preflight"], sum(counted["load"].values())) == (2, 2)  # fit added neither
    _same_run(alone, again)


def test_fit_with_a_preflight_given_a_teacher_model_uses_that_model(counted):
    config = TrainConfig.from_profile("smoke", labels="kd")
    teacher = nn.Conv2d(3, 11, 1)
    twin = copy.deepcopy(teacher)
    checked = checks.preflight(config, teacher=teacher)  # counted
    assert checked.teacher is teacher
    with_checked = fit(config, checked=checked, progress=False)
    alone = fit(config, teacher=twin, progress=False)
    assert counted["preflight"] == 2 and not counted["load"]
    _same_run(with_checked, alone)


class _Items(torch.utils.data.Dataset):
    num_classes = 11

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        return {"image": torch.zeros(3, 16, 16), "label": torch.zeros(16, 16, dtype=torch.long)}


#: id -> (the `checked` to pass (from the smoke config), fit's other arguments, error, needles of the message).
BAD_CHECKED = {
    "another-config": (lambda c: preflight(c.replace(epochs=2)), {}, ValueError,
                       ["Expected `checked` to be the preflight of this config", "epochs"]),
    "another-out": (lambda c: preflight(c.replace(out=None)), {}, ValueError, ["`checked`", "out"]),
    "a-teacher-too": (lambda c: preflight(c), {"teacher": nn.Conv2d(3, 11, 1)}, ValueError,
                      ["Expected `teacher` to be None when `checked` is given", "Conv2d"]),
    "checked-with-a-model": (lambda c: preflight(c, model=nn.Conv2d(3, 11, 1)), {}, ValueError,
                             ["`checked`", "`model`", "not checked"]),
    "checked-with-train-data": (lambda c: preflight(c, train_data=_Items()), {}, ValueError,
                                ["`checked`", "`train_data`", "not checked"]),
    "not-a-preflight": (lambda c: c, {}, TypeError, ["Expected `checked` to be a Preflight", "TrainConfig"]),
}


@pytest.mark.parametrize("case", list(BAD_CHECKED))
def test_a_checked_of_another_run_is_refused_before_any_work(case, tmp_path, counted):
    make, kwargs, error, needles = BAD_CHECKED[case]
    config = TrainConfig.from_profile("smoke", out=str(tmp_path / "run"))
    checked = make(config)
    listed = sum(counted["listed"].values())
    with pytest.raises(error) as info:
        fit(config, checked=checked, progress=False, **kwargs)
    for needle in needles:
        assert needle in str(info.value)
    assert sum(counted["listed"].values()) == listed  # refused before checking anything again
    assert list(tmp_path.iterdir()) == []


def test_preflight_without_a_teacher_mode_loads_no_teacher(teacher_run, counted):
    checked = preflight(TrainConfig.from_profile("smoke", labels="ls", teacher=str(teacher_run)))
    assert checked.teacher is None and not counted["load"]
