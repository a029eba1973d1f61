"""Outputs of a batch: ``summary.csv`` (one row per run) and the figures of the successful runs.

``summary.csv`` columns: ``run``, ``notebook``, ``status`` (ok | failed | interrupted | pending),
``cached`` (skipped because already done), ``duration_s``, ``started``, ``finished``, ``error``, one
column per injected parameter (``profile``, the ``-p`` names; a name clashing with a fixed column
gets a ``p.`` prefix), one column ``m.<key>`` per headline metric found in ``OUT/<run>/metrics.json``
(a flat JSON object of numbers written by the notebook), ``executed_notebook`` and ``n_figures``.

Every ``*.png`` and ``*.svg`` under a *successful* run folder is copied to the figures folder as
``<run>__<relative path with / -> __>`` (failed runs' partial figures stay in their run folder only,
so the figures folder never mixes in figures of broken runs).
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jmlkit.io import atomic_write_text
from jmlkit.runner.plan import RunResult

__all__ = ["FIGURE_SUFFIXES", "SUMMARY_FILE", "FIXED_COLUMNS", "TAIL_COLUMNS", "collect_figures", "summary_rows",
           "write_summary"]

FIGURE_SUFFIXES = (".png", ".svg")
SUMMARY_FILE = "summary.csv"
FIXED_COLUMNS = ("run", "notebook", "status", "cached", "duration_s", "started", "finished", "error")
TAIL_COLUMNS = ("executed_notebook", "n_figures")


def _find_figures(run_dir: Path) -> list[Path]:
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.rglob("*") if p.suffix.lower() in FIGURE_SUFFIXES and p.is_file())


def collect_figures(results: Sequence[RunResult], figures_dir: str | os.PathLike) -> list[Path]:
    """Copy each successful run's ``*.png``/``*.svg`` to ``figures_dir/<run>__<path>``; returns the copies.

    Also fills ``result.figures``. Failed, interrupted and pending runs are skipped.
    """
    dest_dir = Path(figures_dir)
    copied: list[Path] = []
    for res in results:
        res.figures = []
        if res.status != "ok":
            continue
        for fig in _find_figures(res.run.run_dir):
            rel = fig.relative_to(res.run.run_dir)
            dest = dest_dir / f"{res.run.name}__{'__'.join(rel.parts)}"
            dest_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fig, dest)
            res.figures.append(dest)
            copied.append(dest)
    return copied


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, default=repr)


def summary_rows(results: Sequence[RunResult], *, relative_to: str | os.PathLike | None = None) -> tuple[
        list[str], list[dict[str, Any]]]:
    """Columns and rows of ``summary.csv`` (see the module docs for the columns)."""
    param_cols: list[str] = []
    metric_cols: list[str] = []
    for res in results:
        for k in res.run.parameters:
            if k not in param_cols:
                param_cols.append(k)
        for k in res.metrics:
            if k not in metric_cols:
                metric_cols.append(k)
    if "profile" in param_cols:
        param_cols.insert(0, param_cols.pop(param_cols.index("profile")))

    def pcol(k: str) -> str:
        return f"p.{k}" if k in FIXED_COLUMNS or k in TAIL_COLUMNS else k

    base = Path(relative_to).resolve() if relative_to is not None else None

    def rel(p: Path) -> str:
        if base is not None:
            try:
                return os.path.relpath(p, base)
            except ValueError:
                pass
        return str(p)

    columns = [*FIXED_COLUMNS, *map(pcol, param_cols), *(f"m.{k}" for k in metric_cols), *TAIL_COLUMNS]
    rows = []
    for res in results:
        row: dict[str, Any] = {
            "run": res.run.name, "notebook": res.run.notebook.name, "status": res.status, "cached": res.cached,
            "duration_s": res.duration_s, "started": res.started, "finished": res.finished, "error": res.error,
            "executed_notebook": rel(res.run.executed_notebook) if res.run.executed_notebook.exists() else None,
            "n_figures": len(res.figures)}
        row.update({pcol(k): v for k, v in res.run.parameters.items()})
        row.update({f"m.{k}": v for k, v in res.metrics.items()})
        rows.append({c: _cell(row.get(c)) for c in columns})
    return columns, rows


def write_summary(results: Sequence[RunResult], path: str | os.PathLike) -> Path:
    """Write ``summary.csv`` atomically (one row per run); returns its path."""
    path = Path(path)
    columns, rows = summary_rows(results, relative_to=path.parent)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return path
