"""Outputs of a batch: ``summary.csv`` (one short row per run folder), ``metrics.csv`` (long) and the figures.

Both tables describe the *output folder*, not only the batch that just ran: every run folder of ``OUT``
with a ``run.json`` gets its row, so ``jmlkit run 01`` after a full batch keeps the rows of the other
notebooks. A run of the current batch replaces the row of its folder, except a run that never started
(``pending``) or whose interrupted rerun gave its folder back to the previous run (``kept_previous``):
the folder's own record stays (a pending run without a folder gets its row from the batch's results).
Before reading, what a killed batch left aside is recovered (:func:`jmlkit.runner.outdir.recover`);
hidden folders are never run folders.

* ``summary.csv``: ``run``, ``status`` (ok | failed | skipped | interrupted | pending), ``duration_s``,
  ``error``, then one column per parameter whose value is not the same in every row (a ``-p`` grid;
  a name clashing with those four gets a ``p.`` prefix). Rows sorted by run.
* ``metrics.csv``: ``run``, ``metric``, ``value``: one row per scalar entry of ``OUT/<run>/metrics.json``
  (a flat JSON object written by the notebook) of each run whose status is ``ok``, except timings
  (:func:`is_timing`: they differ between two runs of the same batch and stay in ``metrics.json``);
  rows sorted by run, then metric. Numbers are written as Python's shortest round-trip text, booleans as 1/0, null as an
  empty field; ``pandas.read_csv`` reads the file as it is. Two batches with the same metrics give
  byte-identical files.

Both are written atomically (:func:`jmlkit.io.atomic_write_text`). A ``summary.csv`` or ``metrics.csv`` already
in ``OUT`` that the runner did not write (its header is not the runner's, or it is a link or a folder) is
never replaced unless asked (``force=True``, ``jmlkit run --force``): :func:`foreign_tables`.

Every ``*.png`` and ``*.svg`` under a *successful* run folder is copied to the figures folder as
``<run>__<relative path with / -> __>`` (failed runs' partial figures stay in their run folder only,
so the figures folder never mixes in figures of broken runs). Copies are atomic
(:func:`jmlkit.io.atomic_copy`): a link in the figures folder is replaced, its target never written.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp())
    >>> for name, status in (("01_a", "ok"), ("02_b", "failed")):
    ...     (out / name).mkdir()
    ...     _ = (out / name / "run.json").write_text(json.dumps({"status": status, "duration_s": 2.5,
    ...         "parameters": {"profile": "quick"}, "error": None if status == "ok" else "ValueError: x"}))
    >>> _ = (out / "01_a" / "metrics.json").write_text('{"mIoU": 0.5, "n": 3}')
    >>> print(write_summary(out).read_text(), end="")
    run,status,duration_s,error
    01_a,ok,2.5,
    02_b,failed,2.5,ValueError: x
    >>> print(write_metrics_table(out).read_text(), end="")
    run,metric,value
    01_a,mIoU,0.5
    01_a,n,3
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jmlkit.io import atomic_copy, atomic_write_text, visible_folders
from jmlkit.layout import read_run_record
from jmlkit.runner.outdir import recover
from jmlkit.runner.params import canonical
from jmlkit.runner.plan import RunResult, read_metrics

__all__ = ["FIGURE_SUFFIXES", "SUMMARY_FILE", "METRICS_TABLE_FILE", "SUMMARY_COLUMNS", "METRICS_COLUMNS",
           "collect_figures", "foreign_tables", "is_timing", "run_records", "summary_rows", "metrics_rows",
           "write_summary", "write_metrics_table"]

FIGURE_SUFFIXES = (".png", ".svg")
SUMMARY_FILE = "summary.csv"
METRICS_TABLE_FILE = "metrics.csv"
SUMMARY_COLUMNS = ("run", "status", "duration_s", "error")
METRICS_COLUMNS = ("run", "metric", "value")


def is_timing(metric: str) -> bool:
    """Whether a metric name denotes a timing: it contains ``time`` or ends in ``_s`` or ``_seconds`` (any case).

    >>> [is_timing(m) for m in ("train_time_s", "slider_curves_wall_s", "mIoU_D", "ECE_D.ce_ls")]
    [True, True, False, False]
    """
    name = str(metric).lower()
    return "time" in name or name.endswith(("_s", "_seconds"))


def _find_figures(run_dir: Path) -> list[Path]:
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.rglob("*") if p.suffix.lower() in FIGURE_SUFFIXES and p.is_file())


def collect_figures(results: Sequence[RunResult], figures_dir: str | os.PathLike) -> list[Path]:
    """Copy each successful run's ``*.png``/``*.svg`` to ``figures_dir/<run>__<path>``; returns the copies.

    Also fills ``result.figures``. Failed, skipped, interrupted and pending runs are skipped.
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
            atomic_copy(fig, dest)  # a link already at `dest` is replaced, never written through
            res.figures.append(dest)
            copied.append(dest)
    return copied


def _check_out_dir(out_dir: Any) -> Path:
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"Expected `out_dir` to be a path, but got {out_dir!r} ({type(out_dir).__name__}).")
    return Path(out_dir)


def run_records(out_dir: str | os.PathLike, results: Sequence[RunResult] = ()) -> dict[str, dict[str, Any]]:
    """The newest record of each run of ``out_dir``, by run name, sorted.

    A run folder is a sub-folder (not hidden) with a readable ``run.json`` object; the record of a run of
    ``results`` (this batch) replaces the one on disk, unless it is ``pending`` or ``kept_previous`` (see the
    module docs), and a run of ``results`` without a folder is added. Each record has at least ``run``,
    ``status``, ``duration_s``, ``error``, ``parameters`` and ``run_dir``. A killed batch's aside folders are
    recovered first (:func:`jmlkit.runner.outdir.recover`).
    """
    out = _check_out_dir(out_dir)
    recover(out)
    records: dict[str, dict[str, Any]] = {}
    folders = visible_folders(out) if out.is_dir() else []
    for folder in folders:
        record = read_run_record(folder)
        if record is not None:
            params = record.get("parameters")
            records[folder.name] = {"run": folder.name, "status": record.get("status"),
                                    "duration_s": record.get("duration_s"), "error": record.get("error"),
                                    "parameters": params if isinstance(params, dict) else {}, "run_dir": folder}
    for res in results:
        if not isinstance(res, RunResult):
            raise TypeError(f"Expected `results` to hold RunResult objects, but got {type(res).__name__}.")
        if (res.status == "pending" or res.kept_previous) and res.run.name in records:
            continue  # the folder was not touched, or holds the previous run again: its own record describes it
        records[res.run.name] = {"run": res.run.name, "status": res.status, "duration_s": res.duration_s,
                                 "error": res.error, "parameters": dict(res.run.parameters), "run_dir": res.run.run_dir}
    return dict(sorted(records.items()))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int)):
        return value
    return json.dumps(value, sort_keys=True, default=repr)


def summary_rows(out_dir: str | os.PathLike, results: Sequence[RunResult] = ()) -> tuple[
        list[str], list[dict[str, Any]]]:
    """Columns and rows of ``summary.csv`` for the runs of :func:`run_records` (see the module docs)."""
    records = list(run_records(out_dir, results).values())
    names: list[str] = []
    for record in records:
        names += [k for k in record["parameters"] if k not in names]
    missing = object()
    varying = [k for k in names
               if len({canonical({"v": r["parameters"].get(k, missing)}) for r in records}) > 1]

    def pcol(k: str) -> str:
        return f"p.{k}" if k in SUMMARY_COLUMNS else k

    columns = [*SUMMARY_COLUMNS, *map(pcol, varying)]
    rows = []
    for record in records:
        row = {c: _cell(record.get(c)) for c in SUMMARY_COLUMNS}
        row.update({pcol(k): _cell(record["parameters"].get(k)) for k in varying})
        rows.append(row)
    return columns, rows


def metrics_rows(out_dir: str | os.PathLike, results: Sequence[RunResult] = ()) -> list[dict[str, Any]]:
    """Rows of ``metrics.csv``: ``{run, metric, value}`` per scalar metric (not timings) of each ``ok`` run, sorted."""
    rows = []
    for name, record in run_records(out_dir, results).items():
        if record["status"] != "ok":
            continue
        metrics = read_metrics(Path(record["run_dir"]))
        rows += [{"run": name, "metric": key, "value": _cell(metrics[key])} for key in sorted(metrics)
                 if not is_timing(key)]
    return rows


def _is_ours(path: Path, columns: Sequence[str]) -> bool:
    """Whether the file ``path`` is a table the runner wrote: a plain file whose header starts with ``columns``."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader([fh.readline()]), [])
    except (OSError, UnicodeDecodeError):
        return False
    return header[:len(columns)] == list(columns)


def foreign_tables(out_dir: str | os.PathLike) -> list[Path]:
    """The ``summary.csv`` and ``metrics.csv`` of ``out_dir`` that the runner did not write (any other header,
    a link or a folder under that name): :func:`write_summary` and :func:`write_metrics_table` leave them
    alone unless ``force``. Missing ones are not listed.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> _ = (out / "summary.csv").write_text("name,grade\\nada,A\\n")
    >>> [p.name for p in foreign_tables(out)]
    ['summary.csv']
    """
    out = _check_out_dir(out_dir)
    tables = ((SUMMARY_FILE, SUMMARY_COLUMNS), (METRICS_TABLE_FILE, METRICS_COLUMNS))
    return [out / name for name, columns in tables
            if ((out / name).exists() or (out / name).is_symlink()) and not _is_ours(out / name, columns)]


def _check_ours(path: Path, columns: Sequence[str], force: bool) -> Path:
    """``path``, or a ``ValueError`` naming it when it is a table the runner did not write and not ``force``."""
    if not force and path in foreign_tables(path.parent):
        raise ValueError(f"Expected {str(path)!r} to be a table written by `jmlkit run` (header "
                         f"{','.join(columns)}), but it holds something else; it is left as it is: move it, "
                         "choose another `--out`, or pass --force to replace it.")
    return path


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def write_summary(out_dir: str | os.PathLike, results: Sequence[RunResult] = (), *, force: bool = False) -> Path:
    """Write ``out_dir/summary.csv`` atomically (one row per run folder, see the module docs); returns its path.

    A ``summary.csv`` the runner did not write (:func:`foreign_tables`) is a ``ValueError`` unless ``force``.
    """
    path = _check_ours(_check_out_dir(out_dir) / SUMMARY_FILE, SUMMARY_COLUMNS, force)
    columns, rows = summary_rows(out_dir, results)
    return _write_csv(path, columns, rows)


def write_metrics_table(out_dir: str | os.PathLike, results: Sequence[RunResult] = (), *,
                        force: bool = False) -> Path:
    """Write ``out_dir/metrics.csv`` atomically (``run, metric, value``, see the module docs); returns its path.

    A ``metrics.csv`` the runner did not write (:func:`foreign_tables`) is a ``ValueError`` unless ``force``.
    """
    path = _check_ours(_check_out_dir(out_dir) / METRICS_TABLE_FILE, METRICS_COLUMNS, force)
    return _write_csv(path, METRICS_COLUMNS, metrics_rows(out_dir, results))
