"""The result tables of the README, written from the committed result files (:func:`results_markdown`).

For each result notebook's file ``DIR/<notebook>.csv`` (:data:`NOTEBOOKS`, written by
:func:`jmlkit.runner.results.collect_results`) and each ``(table, regime)`` group in it, one markdown table with one
row per configuration: the number of seeds, the mean ± sample standard deviation (``ddof=1``) over the seeds of
each metric of :data:`METRICS` in percent with one decimal, and the difference to the group's baseline
(:data:`BASELINES`) paired by seed, as :func:`~jmlkit.experiments.stats.format_difference` writes it (percentage
points, 95 % t-interval, verdict), for the metrics of :data:`DIFFERENCES`. The baseline's row says ``baseline``;
a group without its baseline has ``—`` there.

A configuration is the ``config`` column's value, or the ``method`` column's when every row of the group has one
(notebook 04, the ε sweep of 02, the temperature sweep of 03), together with the ``fraction``, ``epsilon``,
``temperature`` and ``kept`` columns where the group has them (``pseudo_soft_jml @ 1/8``, ``jml_bls @ ε = 0.1``,
``kd_kl @ T = 2``, ``teacher (kept)``). A row is paired with the baseline row that has the same values of these
columns except those the baseline fixes: notebook 04 compares each method with ``labeled_only`` at the same
labelled fraction, the ε sweep each ε with ε = 0 of the same method, the temperature sweep each T with T = 1 of
the same method; the teachers of 03 have no baseline.

Order (deterministic): notebooks as in :data:`NOTEBOOKS`; tables ``main``, ``ablation``, ``sweep``, then the others
sorted; regimes as :data:`jmlkit.experiments.claims.REGIME_ORDER`, then the others sorted; within a group the rows by
fraction and ε, the baseline first, then the configurations sorted by name.

Example:
    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> results = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"table": "main", "regime": "large", "config": ["jml_bls"] * 3 + ["ce_hard"] * 3,
    ...               "seed": [0, 1, 2] * 2, "mIoU_D": [0.62, 0.65, 0.63, 0.60, 0.62, 0.61],
    ...               "ECE_D": [0.05, 0.04, 0.05, 0.05, 0.05, 0.04]}).to_csv(results / "02_label_smoothing.csv", index=False)
    >>> print(results_markdown(results), end="")
    **02 label smoothing — main comparison, regime large**
    <BLANKLINE>
    | config | label | n | mIoU_D (%) | ECE_D (%) | Δ mIoU_D vs `ce_hard` |
    |---|---|---:|---:|---:|---|
    | `ce_hard` | CE, hard labels | 3 | 61.0 ± 1.0 | 4.7 ± 0.6 | baseline |
    | `jml_bls` | CE+JML + boundary LS (paper's recipe) | 3 | 63.3 ± 1.5 | 4.7 ± 0.6 | +2.3 [0.9, 3.8] points (3 seeds): gain |
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd

from jmlkit.experiments.claims import REGIME_ORDER
from jmlkit.experiments.recipes import label
from jmlkit.experiments.stats import format_difference, higher_is_better, paired_difference

__all__ = ["NOTEBOOKS", "TABLE_TITLES", "NOTEBOOK_TABLE_TITLES", "TABLE_ORDER", "METRICS", "DIFFERENCES", "BASELINES", "ResultGroup",
           "result_groups", "group_markdown", "results_markdown"]

#: The result notebooks whose files ``DIR/<notebook>.csv`` get tables, in this order, with their titles.
NOTEBOOKS = {
    "02_label_smoothing": "02 label smoothing",
    "02b_smoothing_ablation": "02b label smoothing",
    "02c_smoothing_strength": "02c label smoothing",
    "03_distillation": "03 distillation",
    "04_semi_supervised": "04 semi-supervised",
    "05_soft_labels": "05 soft labels",
}
#: The ``table`` values of a results file in words (others are shown as they are).
TABLE_TITLES = {"main": "main comparison", "ablation": "ablation", "sweep": "ε sweep",
                "teacher": "teachers (every seed; the kept one teaches)", "temperature": "temperature sweep"}
#: The title of a notebook's own table where the notebook's main table is not a comparison with a baseline run.
NOTEBOOK_TABLE_TITLES = {("02b_smoothing_ablation", "main"): "ablation (one change of the recipe at a time)",
                         ("02c_smoothing_strength", "main"): "ε sweep of the recipe"}
#: Tables first in this order (others follow, sorted).
TABLE_ORDER = ("main", "teacher", "ablation", "sweep", "temperature")
#: Metrics shown as mean ± std over seeds, in percent (notebooks not listed: ``"*"``).
METRICS = {
    "*": ("mIoU_D", "ECE_D"),
    "05_soft_labels": ("MAE_band", "extreme_band", "soft_mIoU", "mIoU_D", "ECE_D"),
}
#: Metrics compared with the baseline, paired by seed, with the direction of the verdict (None: by the metric's
#: name, :func:`~jmlkit.experiments.stats.higher_is_better`).
DIFFERENCES: dict[str, tuple[tuple[str, bool | None], ...]] = {
    "*": (("mIoU_D", None),),
    "05_soft_labels": (("MAE_band", False), ("mIoU_D", None)),
}
#: The baseline of each (notebook, table): the key values that the baseline row has (``name`` is the ``config``
#: or ``method`` column, see the module docs); the other key columns are those of the row compared.
BASELINES: dict[tuple[str, str], dict[str, Any]] = {
    ("02_label_smoothing", "main"): {"name": "ce_hard"},
    ("02b_smoothing_ablation", "main"): {"name": "jml_bls"},
    ("02c_smoothing_strength", "main"): {"epsilon": 0.0},
    ("03_distillation", "main"): {"name": "hard_ce"},
    ("03_distillation", "ablation"): {"name": "hard_ce"},
    ("03_distillation", "temperature"): {"temperature": 1.0},
    ("04_semi_supervised", "main"): {"name": "labeled_only"},
    ("05_soft_labels", "main"): {"name": "ce_soft"},
}
#: The key columns besides the name, in the order of the configuration's text.
_EXTRAS = ("fraction", "epsilon", "temperature", "kept")
_DASH = "—"


@dataclass(frozen=True)
class ResultGroup:
    """One ``(table, regime)`` group of a results file, ready to print.

    Attributes:
        notebook, table, regime: where the group comes from.
        title: the heading ("02 label smoothing — main comparison, regime large").
        columns: the header cells; ``rows``: the cells of each row (strings, not escaped).
    """

    notebook: str
    table: str
    regime: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _order(value: str, first: tuple[str, ...]) -> tuple[int, str]:
    return (first.index(value) if value in first else len(first), value)


def _fraction_text(value: float) -> str:
    frac = Fraction(float(value)).limit_denominator(1000)
    return f"{frac.numerator}/{frac.denominator}" if frac.denominator != 1 else f"{frac.numerator}"


def _clean(value: Any) -> Any:
    """NaN → None, numpy scalars → Python scalars (keys compare and sort as plain values)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def _mean_std(values: pd.Series) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return _DASH
    mean = 100.0 * float(values.mean())
    if len(values) < 2:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100.0 * float(values.std(ddof=1)):.1f}"


def _config_text(key: dict[str, Any]) -> str:
    text = f"`{key['name']}`"
    if key.get("fraction") is not None:
        text += f" @ {_fraction_text(key['fraction'])}"
    if key.get("epsilon") is not None:
        text += f" @ ε = {key['epsilon']:g}"
    if key.get("temperature") is not None:
        text += f" @ T = {key['temperature']:g}"
    if key.get("kept") is not None:
        text += " (kept)" if str(key["kept"]) == "True" else " (not kept)"
    return text


def _baseline_text(spec: dict[str, Any], extras: list[str]) -> str:
    parts = [f"`{spec['name']}`"] if "name" in spec else []
    words = {"epsilon": lambda v: f"ε = {v:g}", "temperature": lambda v: f"T = {v:g}",
             "fraction": lambda v: f"fraction {_fraction_text(v)}", "kept": lambda v: f"kept {v}"}
    parts += [words[c](spec[c]) for c in _EXTRAS if c in spec]
    same = [{"fraction": "fraction", "epsilon": "ε", "temperature": "T", "kept": "kept"}[c] for c in extras if c not in spec]
    if "name" not in spec:
        same.insert(0, "method")
    return " ".join(parts) + (f" (same {', '.join(same)})" if same else "")


def _group(notebook: str, table: str, regime: str, data: pd.DataFrame) -> ResultGroup:
    name_col = "method" if "method" in data.columns and data["method"].notna().all() else "config"
    extras = [c for c in _EXTRAS if c in data.columns and data[c].notna().any()]
    keys = pd.DataFrame({"name": data[name_col].astype(str)}, index=data.index)
    for c in extras:
        keys[c] = data[c]
    runs = data.assign(_row=[tuple(_clean(v) for v in row) for row in keys.itertuples(index=False)])
    columns = ["name", *extras]
    spec = BASELINES.get((notebook, table))
    metrics = METRICS.get(notebook, METRICS["*"])
    differences = DIFFERENCES.get(notebook, DIFFERENCES["*"])

    def baseline_of(row: tuple) -> tuple | None:
        if spec is None or any(c not in columns for c in spec):
            return None
        return tuple(spec.get(c, v) for c, v in zip(columns, row))

    def is_baseline(row: tuple) -> bool:
        return baseline_of(row) == row

    present = set(runs["_row"])
    order = sorted(present, key=lambda r: (tuple((v is None, v if v is not None else 0) for v in r[1:]),
                                            not is_baseline(r), r[0]))
    header = ["config", "label", "n", *[f"{m} (%)" for m in metrics]]
    header += [f"Δ {m} vs {_baseline_text(spec, extras) if spec else 'baseline'}" for m, _ in differences]
    rows = []
    for row in order:
        in_row = runs[runs["_row"] == row]
        seeds = in_row["seed"]
        if seeds.duplicated().any():
            raise ValueError(f"{notebook}.csv: expected one run per seed of {_config_text(dict(zip(columns, row)))} "
                             f"(table {table!r}, regime {regime!r}), but seeds "
                             f"{sorted(seeds[seeds.duplicated()].tolist())} appear more than once.")
        name = row[0]
        shown = label(name)
        cells = [_config_text(dict(zip(columns, row))), shown if shown != name else "", str(seeds.nunique())]
        cells += [_mean_std(in_row[m]) if m in in_row.columns else _DASH for m in metrics]
        base = baseline_of(row)
        for metric, direction in differences:
            if base == row:
                cells.append("baseline")
            elif base is None or base not in present or metric not in runs.columns:
                cells.append(_DASH)
            else:
                pair = runs[runs["_row"].isin([row, base])]
                d = paired_difference(pair, row, base, metric, key="_row", seed="seed",
                                      higher_is_better=higher_is_better(metric) if direction is None else direction)
                cells.append(format_difference(d))
        rows.append(tuple(cells))
    words = NOTEBOOK_TABLE_TITLES.get((notebook, table), TABLE_TITLES.get(table, table))
    title = f"{NOTEBOOKS.get(notebook, notebook)} — {words}, regime {regime}"
    return ResultGroup(notebook, table, regime, title, tuple(header), tuple(rows))


def result_groups(results_dir: str | os.PathLike) -> list[ResultGroup]:
    """Every ``(table, regime)`` group of the files ``results_dir/<notebook>.csv`` of :data:`NOTEBOOKS` (see the
    module docs); notebooks without a file are left out.

    Raises:
        TypeError: ``results_dir`` not a path.
        ValueError: ``results_dir`` exists but is not a folder; a file without ``config`` or ``seed``; a
            configuration run twice with one seed.
    """
    if not isinstance(results_dir, (str, os.PathLike)):
        raise TypeError(f"Expected `results_dir` to be a path, but got {results_dir!r} ({type(results_dir).__name__}).")
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise ValueError(f"Expected `results_dir` to be a folder, but got {str(results_dir)!r} (a file).")
    groups = []
    for notebook in NOTEBOOKS:
        path = results_dir / f"{notebook}.csv"
        if not path.is_file():
            continue
        data = pd.read_csv(path)
        missing = [c for c in ("config", "seed") if c not in data.columns]
        if missing:
            raise ValueError(f"Expected {path} to have the columns config and seed, but it lacks {missing}.")
        data = data.assign(table=data["table"].astype(str) if "table" in data.columns else "main",
                           regime=data["regime"].astype(str) if "regime" in data.columns else "main")
        tables = sorted(set(data["table"]), key=lambda t: _order(t, TABLE_ORDER))
        for table in tables:
            in_table = data[data["table"] == table]
            for regime in sorted(set(in_table["regime"]), key=lambda r: _order(r, REGIME_ORDER)):
                groups.append(_group(notebook, table, regime, in_table[in_table["regime"] == regime]))
    return groups


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def group_markdown(group: ResultGroup) -> str:
    """One group: its bold heading, a blank line and its markdown table (numbers right-aligned), ending with a
    newline."""
    if not isinstance(group, ResultGroup):
        raise TypeError(f"Expected `group` to be a ResultGroup, but got {type(group).__name__}.")
    align = ["---:" if c == "n" or c.endswith("(%)") else "---" for c in group.columns]
    lines = [f"**{group.title}**", "", "| " + " | ".join(_cell(c) for c in group.columns) + " |",
             "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in group.rows]
    return "\n".join(lines) + "\n"


def results_markdown(results_dir: str | os.PathLike) -> str:
    """The tables of every group of :func:`result_groups`, separated by blank lines (a sentence when there is no
    file); ends with a newline."""
    groups = result_groups(results_dir)
    if not groups:
        return f"No result file of the notebooks {', '.join(n[:2] for n in NOTEBOOKS)} in this folder.\n"
    return "\n".join(group_markdown(g) for g in groups)
