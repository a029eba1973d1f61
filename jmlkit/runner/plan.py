"""Runs: planning notebooks × parameter grid in dependency order, and each run's record (``run.json``,
:data:`jmlkit.layout.RUN_RECORD`, read by :func:`jmlkit.layout.read_run_record`).

A run is one notebook with one parameter combination; its folder is ``OUT/<stem>`` or, with ``-p``
overrides, ``OUT/<stem>__k=v,k2=v2`` (keys sorted). ``OUT/<run>/run.json`` records the notebook, its
sha256, the parameters, status, timings, an id of that execution (``run_id``) and the ids of the
runs it required (``requires``); a rerun reuses a run whose ``run.json`` says ``ok`` for the same
notebook content and parameters (:func:`cached_result`) and whose requirements are still the very
executions it read (:func:`reusable_result`).

**Requirements.** A notebook lists the notebooks it reads in ``metadata["jmlkit"]["requires"]``
(:func:`~jmlkit.runner.notebooks.notebook_requires`); :func:`plan_runs` adds them to the batch and
gives each run the names of the runs it waits for (``Run.requires``). With a parameter grid, a run
requires *every* run of the batch of each notebook it requires, whatever their parameters: with
``-p seed=0,1``, ``06__seed=1`` waits for ``02__seed=0`` and ``02__seed=1``. Notebook 06 reads every
finished run of 02-05 it finds in the batch folder (:func:`jmlkit.experiments.find_runs`), so
waiting only for ``02__seed=1`` would let its result depend on whether ``02__seed=0`` had finished.
:func:`execution_order` is the order of a batch (each run after its requirements, otherwise as planned).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jmlkit._checks import check_choice
from jmlkit.io import atomic_write_text
from jmlkit.layout import METRICS_FILE, RUN_RECORD, read_run_record
from jmlkit.profiles import PROFILE_NAMES
from jmlkit.runner.notebooks import notebook_error, with_requirements
from jmlkit.runner.params import (
    RUNNER_PARAMETERS,
    canonical,
    expand_grid,
    notebook_parameters,
    parameter_choices,
    parameter_problem,
    parameters_cells,
    read_notebook,
    run_name,
)

__all__ = [
    "Run",
    "RunResult",
    "plan_runs",
    "execution_order",
    "cached_result",
    "reusable_result",
    "predict_reuse",
    "read_metrics",
    "write_run_json",
]


@dataclasses.dataclass(frozen=True)
class Run:
    """One planned execution: a notebook with one parameter combination.

    ``parameters`` are the injected values except ``output_dir`` (``profile``
    if declared, then the declared ``-p`` overrides); ``run_dir`` is the run folder.
    ``requires``: names of the runs that must finish ok first. ``selected``: False for a run added
    only because another one requires it (``force`` does not rerun it). ``error``: why the notebook
    cannot be read (not JSON, not a notebook), for a run that fails without executing; ``None`` otherwise.
    """

    name: str
    notebook: Path
    parameters: dict[str, Any]
    run_dir: Path
    declares_output_dir: bool = True
    requires: tuple[str, ...] = ()
    selected: bool = True
    error: str | None = None

    @property
    def executed_notebook(self) -> Path:
        return self.run_dir / f"{self.notebook.stem}.ipynb"

    def papermill_parameters(self) -> dict[str, Any]:
        params = dict(self.parameters)
        if self.declares_output_dir:
            params["output_dir"] = str(self.run_dir)
        return params


@dataclasses.dataclass
class RunResult:
    """Outcome of a run.

    ``status`` is ``ok``, ``failed``, ``skipped`` (a requirement did not finish ok), ``interrupted``
    or ``pending`` (never started). ``run_id`` identifies the execution that produced the run folder;
    ``required_ids`` are the ``run_id`` of each requirement that execution read. ``kept_previous``: the run
    was interrupted while executing again, and its folder holds the previous run again (its ``run.json``,
    not this result, describes the folder).
    """

    run: Run
    status: str
    duration_s: float | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    cached: bool = False
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[Path] = dataclasses.field(default_factory=list)
    run_id: str | None = None
    required_ids: dict[str, str | None] = dataclasses.field(default_factory=dict)
    kept_previous: bool = False


def plan_runs(
    notebooks: Sequence[str | os.PathLike],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    profile: str = "quick",
    out_dir: str | os.PathLike = "runs",
    warn: Callable[[str], None] | None = None,
) -> list[Run]:
    """Expand notebooks (and the notebooks they require) x parameter grid into runs, in dependency order.

    ``profile`` is one of :data:`jmlkit.profiles.PROFILE_NAMES` (``smoke``, ``quick``, ``full``).
    Each notebook gets only the grid entries it declares (the product of those),
    plus ``profile`` if it declares it. Notebooks required by the given ones
    (``metadata["jmlkit"]["requires"]``) are added before them, with ``selected=False``;
    each run's ``requires`` names every run of those notebooks (see the module docs).
    A notebook file that cannot be read (not JSON, not a notebook) becomes one run with ``error`` set
    (its reason), which fails without executing. ``warn`` receives a message for each notebook that
    has no parameters cell or several.

    Raises ``ValueError`` for an unknown profile, an unknown required notebook, a cycle of requirements,
    a grid name that no (readable) notebook declares (that message lists each notebook's parameters), or
    a grid value that a notebook's parameter cannot take: not the type of its default, or not one of its
    declared choices (:func:`~jmlkit.runner.params.parameter_problem`), named with the notebook.
    """
    check_choice("profile", profile, PROFILE_NAMES)
    grid = dict(grid or {})
    out = Path(out_dir).resolve()
    runs: list[Run] = []
    by_stem: dict[str, list[Run]] = {}
    declared_by: dict[str, dict[str, dict[str, str]]] = {}
    for nb_path, required, selected in with_requirements(notebooks):
        mine = by_stem.setdefault(nb_path.stem, [])
        needs = tuple(r.name for stem in required for r in by_stem[stem])
        problem = notebook_error(nb_path)
        if problem is not None:
            mine.append(Run(name=nb_path.stem, notebook=nb_path.resolve(), parameters={"profile": profile},
                            run_dir=out / nb_path.stem, requires=needs, selected=selected, error=problem))
            runs.extend(mine)
            continue
        nb = read_notebook(nb_path)
        if warn is not None and len(parameters_cells(nb)) != 1:
            warn(f"{nb_path.name} has {len(parameters_cells(nb))} cells tagged 'parameters' (expected 1)")
        declared = declared_by[nb_path.name] = notebook_parameters(nb)
        own = {k: v for k, v in grid.items() if k in declared}
        _check_values(nb_path, nb, declared, own)
        fixed = {"profile": profile} if "profile" in declared else {}
        for combo in expand_grid(own):
            name = run_name(nb_path.stem, combo)
            params = {**fixed, **combo}
            mine.append(Run(name=name, notebook=nb_path.resolve(), parameters=params, run_dir=out / name,
                            declares_output_dir="output_dir" in declared, requires=needs, selected=selected))
        runs.extend(mine)
    unknown = [k for k in grid if not any(k in declared for declared in declared_by.values())]
    if unknown:
        raise ValueError(f"Expected each `-p` name to be a parameter of a selected notebook, but no notebook declares "
                         f"{', '.join(map(repr, unknown))}; their parameters: {_parameters_text(declared_by)}.")
    return runs


def _check_values(nb_path: Path, nb: Any, declared: Mapping[str, Mapping[str, str]],
                  own: Mapping[str, Sequence[Any]]) -> None:
    """A ``ValueError`` for the first ``-p`` value that the notebook's parameter cannot take (:func:`parameter_problem`)."""
    try:
        choices = parameter_choices(nb)
    except ValueError as err:
        raise ValueError(f"Expected {nb_path.name} to declare its parameters' choices as a mapping: {err}") from None
    for name, values in own.items():
        for value in values:
            problem = parameter_problem(name, value, declared[name]["default"], help=declared[name]["help"],
                                        choices=choices.get(name))
            if problem is not None:
                raise ValueError(f"Expected `-p {name}` of {nb_path.name} to be {problem}.")


def _parameters_text(declared_by: Mapping[str, Mapping[str, Mapping[str, str]]]) -> str:
    """``01_a.ipynb: seed = 0, lr = 1e-3; 02_b.ipynb: (none)``: the parameters ``-p`` can set, per notebook."""
    parts = []
    for name, declared in declared_by.items():
        settable = [f"{k} = {v['default']}" for k, v in declared.items() if k not in RUNNER_PARAMETERS]
        parts.append(f"{name}: {', '.join(settable) if settable else '(none)'}")
    return "; ".join(parts) if parts else "(no readable notebook)"


def execution_order(runs: Sequence[Run]) -> list[Run]:
    """``runs`` ordered so that each run comes after the runs it requires, otherwise in the given order.

    Raises ``ValueError`` (naming the runs) for duplicate names, a requirement that is not among ``runs``,
    or runs that require each other in a cycle.

    >>> from pathlib import Path
    >>> a, b = (Run(n, Path(n + ".ipynb"), {}, Path(n), requires=r) for n, r in (("06", ("02",)), ("02", ())))
    >>> [r.name for r in execution_order([a, b])]
    ['02', '06']
    """
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"Expected runs with distinct names, but got duplicates in {names}.")
    by_name = {r.name: r for r in runs}
    for run in runs:
        missing = [req for req in run.requires if req not in by_name]
        if missing:
            raise ValueError(f"Expected the runs that {run.name!r} requires to be in the batch, but got {missing} "
                             f"missing from {names}.")
    placed: set[str] = set()
    order: list[Run] = []
    while len(order) < len(runs):
        ready = next((r for r in runs if r.name not in placed and all(q in placed for q in r.requires)), None)
        if ready is None:
            stuck = [r.name for r in runs if r.name not in placed]
            raise ValueError(f"Expected runs whose requirements have no cycle, but got a cycle among {stuck}.")
        placed.add(ready.name)
        order.append(ready)
    return order


# --------------------------------------------------------------------------- run records
def now() -> str:
    """The local time, ISO 8601 to the second, with its UTC offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The scalar entries of the notebook's headline numbers (:data:`jmlkit.layout.METRICS_FILE`); ``{}`` when they
    are missing or not a JSON object."""
    path = run_dir / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if v is None or isinstance(v, (int, float, str, bool))}


def write_run_json(result: RunResult, sha: str | None, kernel: str | None) -> None:
    """Write the run's ``run.json`` (atomically) from its current result."""
    run = result.run
    record = {
        "run_id": result.run_id,
        "run": run.name,
        "notebook": str(run.notebook),
        "notebook_sha256": sha,
        "parameters": json.loads(canonical(run.parameters)),
        "output_dir": str(run.run_dir),
        "executed_notebook": run.executed_notebook.name,
        "kernel": kernel,
        "status": result.status,
        "duration_s": result.duration_s,
        "started": result.started,
        "finished": result.finished,
        "error": result.error,
        "requires": dict(result.required_ids),
    }
    atomic_write_text(run.run_dir / RUN_RECORD, json.dumps(record, indent=2) + "\n")


def cached_result(run: Run) -> RunResult | None:
    """The previous result of ``run`` if it finished ``ok`` with the same notebook and parameters.

    Its requirements are not looked at: see :func:`reusable_result`.
    """
    if run.error is not None:
        return None
    record = read_run_record(run.run_dir)
    if not (record is not None and record.get("status") == "ok"
            and record.get("notebook_sha256") == sha256(run.notebook)
            and canonical(record.get("parameters", {})) == canonical(json.loads(canonical(run.parameters)))
            and run.executed_notebook.is_file()):
        return None
    required = record.get("requires")
    return RunResult(run=run, status="ok", duration_s=record.get("duration_s"), started=record.get("started"),
                     finished=record.get("finished"), cached=True, metrics=read_metrics(run.run_dir),
                     run_id=record.get("run_id"), required_ids=dict(required) if isinstance(required, dict) else {})


def reusable_result(run: Run, finished: Mapping[str, RunResult | None]) -> RunResult | None:
    """The previous result of ``run`` (:func:`cached_result`) if it read the current executions of its requirements.

    ``finished`` maps run names to their results in this batch (``None``: not available). The previous
    result is reused only when each requirement finished ok with the ``run_id`` recorded when ``run``
    executed: a requirement executed again since (in this batch or another) makes ``run`` execute again.
    """
    result = cached_result(run)
    if result is None:
        return None
    for req in run.requires:
        got = finished.get(req)
        if got is None or got.status != "ok" or got.run_id != result.required_ids.get(req):
            return None
    return result


def predict_reuse(runs: Sequence[Run], *, force: bool = False) -> dict[str, RunResult | None]:
    """For each run name, the result a batch would reuse, or ``None`` if the run would execute.

    ``force`` executes every selected run (``Run.selected``) again; runs added as requirements are still reused.
    Raises ``ValueError`` as :func:`execution_order`.
    """
    predicted: dict[str, RunResult | None] = {}
    for run in execution_order(runs):
        predicted[run.name] = None if run.error is not None or (force and run.selected) else reusable_result(
            run, predicted)
    return predicted
