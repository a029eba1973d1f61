"""Runs: planning notebooks × parameter grid, and each run's record (``run.json``) that makes reruns resume.

A run is one notebook with one parameter combination; its folder is ``OUT/<stem>`` or, with ``-p``
overrides, ``OUT/<stem>__k=v,k2=v2`` (keys sorted). ``OUT/<run>/run.json`` records the notebook, its
sha256, the parameters, status and timings; a rerun skips a run whose ``run.json`` says ``ok`` for
the same notebook content and parameters (:func:`cached_result`).
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
from jmlkit.profiles import PROFILE_NAMES
from jmlkit.runner.params import canonical, expand_grid, notebook_parameters, parameters_cells, read_notebook, run_name

__all__ = [
    "RUN_FILE",
    "METRICS_FILE",
    "Run",
    "RunResult",
    "plan_runs",
    "cached_result",
    "read_metrics",
    "write_run_json",
]

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"


@dataclasses.dataclass(frozen=True)
class Run:
    """One planned execution: a notebook with one parameter combination.

    ``parameters`` are the injected values except ``output_dir`` (``profile``
    if declared, then the declared ``-p`` overrides); ``run_dir`` is the run folder.
    """

    name: str
    notebook: Path
    parameters: dict[str, Any]
    run_dir: Path
    declares_output_dir: bool = True

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
    """Outcome of a run; ``status`` is ``ok``, ``failed``, ``interrupted`` or ``pending`` (never started)."""

    run: Run
    status: str
    duration_s: float | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    cached: bool = False
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[Path] = dataclasses.field(default_factory=list)


def plan_runs(
    notebooks: Sequence[str | os.PathLike],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    profile: str = "quick",
    out_dir: str | os.PathLike = "runs",
    warn: Callable[[str], None] | None = None,
) -> list[Run]:
    """Expand notebooks x parameter grid into runs.

    ``profile`` is one of :data:`jmlkit.profiles.PROFILE_NAMES` (``smoke``, ``quick``, ``full``).
    Each notebook gets only the grid entries it declares (the product of those),
    plus ``profile`` if it declares it. ``warn`` receives a message for each grid
    name that no notebook declares and for notebooks without a parameters cell.
    """
    check_choice("profile", profile, PROFILE_NAMES)
    grid = dict(grid or {})
    out = Path(out_dir).resolve()
    runs: list[Run] = []
    used: set[str] = set()
    for nb_path in map(Path, notebooks):
        nb = read_notebook(nb_path)
        if warn is not None and len(parameters_cells(nb)) != 1:
            warn(f"{nb_path.name} has {len(parameters_cells(nb))} cells tagged 'parameters' (expected 1)")
        declared = notebook_parameters(nb)
        own = {k: v for k, v in grid.items() if k in declared}
        used.update(own)
        fixed = {"profile": profile} if "profile" in declared else {}
        for combo in expand_grid(own):
            name = run_name(nb_path.stem, combo)
            runs.append(Run(name=name, notebook=nb_path.resolve(), parameters={**fixed, **combo},
                            run_dir=out / name, declares_output_dir="output_dir" in declared))
    unused = [k for k in grid if k not in used]
    if unused and warn is not None:
        warn(f"-p {', '.join(unused)}: not a parameter of any selected notebook; ignored")
    return runs


# --------------------------------------------------------------------------- run records
def now() -> str:
    """The local time, ISO 8601 to the second, with its UTC offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The scalar entries of ``run_dir/metrics.json``; ``{}`` when it is missing or not a JSON object."""
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
    }
    atomic_write_text(run.run_dir / RUN_FILE, json.dumps(record, indent=2) + "\n")


def cached_result(run: Run) -> RunResult | None:
    """The previous result of ``run`` if it finished ``ok`` with the same notebook and parameters."""
    try:
        record = json.loads((run.run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and record.get("status") == "ok"
            and record.get("notebook_sha256") == sha256(run.notebook)
            and canonical(record.get("parameters", {})) == canonical(json.loads(canonical(run.parameters)))
            and run.executed_notebook.is_file()):
        return None
    return RunResult(run=run, status="ok", duration_s=record.get("duration_s"), started=record.get("started"),
                     finished=record.get("finished"), cached=True, metrics=read_metrics(run.run_dir))
