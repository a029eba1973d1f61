"""The committed result files of a batch: ``jmlkit run ... --results DIR`` (:func:`collect_results`).

Each result notebook writes, into its run folder, tidy run tables: ``runs.csv`` (its main comparison) and
optionally ``<table>_runs.csv`` (``ablation_runs.csv``, ``sweep_runs.csv``, ...), one row per training run with
the columns ``regime``, ``config``, ``seed``, optional extra keys (``epsilon``, ``fraction``, ``method``),
``cached``, ``run_dir`` and scalar metrics. :func:`collect_results` turns every run folder of a batch that has a
``runs.csv`` into one file ``DIR/<run>.csv``:

* the rows of ``runs.csv`` (column ``table`` = ``"main"``) followed by those of each ``<table>_runs.csv``
  (``table`` = ``<table>``); a file without a ``regime`` column (a notebook of one regime) gets ``regime`` = ``"main"``;
* without ``run_dir``, ``cached`` and every column whose name contains ``time`` (timings and folders differ
  between two runs of the same batch, the results do not);
* columns ``table, regime, config, seed``, the extra keys, then the metrics; rows sorted by
  ``table`` (``main`` first), ``regime``, ``config``, ``seed`` and the extra keys; floats written with
  :data:`FLOAT_FORMAT`, so that two identical batches give byte-identical files.

A run folder whose ``run.json`` says the notebook did not finish (``failed``, ``interrupted``;
:func:`jmlkit.layout.notebook_run_status`) is skipped, as is a folder without ``runs.csv`` and a hidden folder (a
previous run kept aside during a rerun). Every file is written with :func:`jmlkit.io.atomic_write_text`.

Example:
    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> nb = root / "runs" / "02_label_smoothing"; nb.mkdir(parents=True)
    >>> pd.DataFrame({"config": ["ce", "jml"], "seed": [0, 0], "cached": [False, True], "run_dir": ["/a", "/b"],
    ...               "mIoU_D": [0.5, 0.625], "train_time_s": [3.2, 4.1]}).to_csv(nb / "runs.csv", index=False)
    >>> [p.name for p in collect_results(root / "runs", root / "results")]
    ['02_label_smoothing.csv']
    >>> print((root / "results" / "02_label_smoothing.csv").read_text(), end="")
    table,regime,config,seed,mIoU_D
    main,main,ce,0,0.5
    main,main,jml,0,0.625
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pandas as pd

from jmlkit.io import atomic_write_text, visible_folders
from jmlkit.layout import METRICS_FILE, notebook_run_status, read_run_record

__all__ = ["MAIN_TABLE", "RUNS_FILE", "FLOAT_FORMAT", "KEY_COLUMNS", "EXTRA_KEYS", "DROPPED_COLUMNS",
           "read_run_tables", "tidy_results", "collect_results"]

#: The main run table of a notebook's run folder.
RUNS_FILE = "runs.csv"
#: The ``table`` value of the rows of ``runs.csv``.
MAIN_TABLE = "main"
#: How floats are written: 10 significant digits (exact for the values the tables hold, stable across runs).
FLOAT_FORMAT = "%.10g"
#: The columns that name a run, first in every results file.
KEY_COLUMNS = ("table", "regime", "config", "seed")
#: Known extra key columns (any other non-numeric column is a key as well), after :data:`KEY_COLUMNS`.
EXTRA_KEYS = ("method", "fraction", "epsilon")
#: Columns never written (besides every column whose name contains ``time``).
DROPPED_COLUMNS = ("run_dir", "cached")


def _dropped(column: str) -> bool:
    return column in DROPPED_COLUMNS or "time" in column.lower()


def read_run_tables(run_dir: str | os.PathLike) -> dict[str, pd.DataFrame]:
    """The run tables of one notebook's run folder: ``{"main": runs.csv, <table>: <table>_runs.csv, ...}``.

    Empty when the folder has no ``runs.csv``. The other tables come sorted by name.
    """
    run_dir = Path(run_dir)
    main = run_dir / RUNS_FILE
    if not main.is_file():
        return {}
    tables = {MAIN_TABLE: pd.read_csv(main)}
    suffix = "_" + RUNS_FILE
    for path in sorted(run_dir.glob("*" + suffix)):
        name = path.name[: -len(suffix)]
        if name and name != MAIN_TABLE and path.is_file():
            tables[name] = pd.read_csv(path)
    return tables


def tidy_results(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One tidy table from the run tables of :func:`read_run_tables` (see the module docs for the rules).

    >>> t = tidy_results({"main": pd.DataFrame({"config": ["b", "a"], "seed": [1, 0], "mIoU_D": [0.5, 0.25],
    ...                                         "epoch_time_s": [1.0, 2.0]}),
    ...                   "sweep": pd.DataFrame({"regime": ["small"], "config": ["a"], "seed": [0], "epsilon": [0.1],
    ...                                          "mIoU_D": [0.75]})})
    >>> t.to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
    {'table': ['main', 'main', 'sweep'], 'regime': ['main', 'main', 'small'], 'config': ['a', 'b', 'a'],
     'seed': [0, 1, 0], 'epsilon': [nan, nan, 0.1], 'mIoU_D': [0.25, 0.5, 0.75]}
    """
    if not isinstance(tables, dict):
        raise TypeError(f"Expected `tables` to be a dict of DataFrames, but got {type(tables).__name__}.")
    frames = []
    for name, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"Expected `tables[{name!r}]` to be a pandas DataFrame, but got {type(frame).__name__}.")
        for column in ("config", "seed"):
            if column not in frame.columns:
                raise ValueError(f"Expected `tables[{name!r}]` to have a column {column!r}, but its columns are "
                                 f"{list(frame.columns)}.")
        frame = frame.drop(columns=[c for c in frame.columns if _dropped(str(c))])
        frame = frame.drop(columns=[c for c in KEY_COLUMNS[:2] if c in frame.columns])
        frame.insert(0, "regime", tables[name]["regime"].astype(str) if "regime" in tables[name] else MAIN_TABLE)
        frame.insert(0, "table", str(name))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(KEY_COLUMNS))
    data = pd.concat(frames, ignore_index=True, sort=False)
    rest = [c for c in data.columns if c not in KEY_COLUMNS]
    extras = [c for c in EXTRA_KEYS if c in rest]
    extras += [c for c in rest if c not in extras and not pd.api.types.is_numeric_dtype(data[c])
               and not pd.api.types.is_bool_dtype(data[c])]
    metrics = [c for c in rest if c not in extras]
    data = data[[*KEY_COLUMNS, *extras, *metrics]]
    order = pd.DataFrame({"_main": data["table"] != MAIN_TABLE})
    by = ["_main", *KEY_COLUMNS, *extras]
    ordered = pd.concat([order, data], axis=1).sort_values(by, kind="mergesort", na_position="last")
    return ordered.drop(columns="_main").reset_index(drop=True)


def _csv_text(frame: pd.DataFrame) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return buf.getvalue()


def collect_results(runs_dir: str | os.PathLike, results_dir: str | os.PathLike) -> list[Path]:
    """Write ``results_dir/<run>.csv`` for each finished run folder of ``runs_dir`` that has a ``runs.csv``, and
    ``results_dir/<run>.metrics.json``, a copy of its headline numbers (``metrics.json``), for each that has them
    (notebook 01 has no run table: its measured properties reach the README this way), and ``times.csv``: each
    notebook's last run that finished ok (from its runner record), the rows of notebooks not in this batch kept.

    Args:
        runs_dir: the ``--out`` folder of a batch (one subfolder per run).
        results_dir: where the result files go (created if needed).

    Returns:
        The files written, sorted: the tidy tables (:func:`tidy_results`).

    Raises:
        TypeError: a folder that is not a path.
        ValueError: ``runs_dir`` is not a folder, or a run table without ``config`` or ``seed``.
    """
    for name, value in (("runs_dir", runs_dir), ("results_dir", results_dir)):
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"Expected `{name}` to be a path, but got {value!r} ({type(value).__name__}).")
    runs_dir, results_dir = Path(runs_dir), Path(results_dir)
    if not runs_dir.is_dir():
        raise ValueError(f"Expected `runs_dir` to be a folder, but got {str(runs_dir)!r} (not a folder).")
    written: list[Path] = []
    for run_dir in visible_folders(runs_dir):
        if notebook_run_status(run_dir) not in (None, "ok"):  # no record: a notebook run outside the runner
            continue
        tables = read_run_tables(run_dir)
        if tables:
            try:
                tidy = tidy_results(tables)
            except ValueError as err:
                raise ValueError(f"{run_dir}: {err}") from None
            written.append(atomic_write_text(results_dir / f"{run_dir.name}.csv", _csv_text(tidy)))
        metrics = run_dir / METRICS_FILE
        if metrics.is_file():
            try:
                data = json.loads(metrics.read_text(encoding="utf-8"))
            except ValueError as err:
                raise ValueError(f"{metrics}: not JSON ({err})") from None
            scalars = {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}
            written.append(atomic_write_text(results_dir / f"{run_dir.name}.metrics.json",
                                             json.dumps(scalars, indent=1, sort_keys=True) + "\n"))
    times = _times(runs_dir, results_dir / TIMES_FILE)
    if times is not None:
        written.append(atomic_write_text(results_dir / TIMES_FILE, _csv_text(times)))
    return sorted(written)


#: Each notebook's last finished run of the batches collected into a results folder (README's times).
TIMES_FILE = "times.csv"
_TIME_COLUMNS = ["run", "status", "duration_s", "started", "finished"]


def _times(runs_dir: Path, path: Path) -> pd.DataFrame | None:
    """``times.csv``: the rows already there, each replaced by the notebook's run in ``runs_dir`` when that one
    finished ok (its runner record: duration, start, end); ``None`` when there is nothing to write."""
    rows = {}
    if path.is_file():
        for row in pd.read_csv(path).to_dict("records"):
            rows[str(row["run"])] = {c: row.get(c) for c in _TIME_COLUMNS}
    for run_dir in visible_folders(runs_dir):
        record = read_run_record(run_dir)
        if record and record.get("status") == "ok" and isinstance(record.get("duration_s"), (int, float)):
            rows[run_dir.name] = {"run": run_dir.name, "status": "ok", "duration_s": round(float(record["duration_s"]), 3),
                                  "started": record.get("started"), "finished": record.get("finished")}
    return pd.DataFrame([rows[k] for k in sorted(rows)], columns=_TIME_COLUMNS) if rows else None
