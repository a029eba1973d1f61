r"""Tables of runs: mean ± std over seeds and comparisons in words (the findings of the notebooks:
:mod:`jmlkit.experiments.findings`).

:func:`summarize` reduces a tidy table of runs (one row per run) to ``<metric>_mean``,
``<metric>_std`` (sample standard deviation over seeds, NaN for one seed) and ``n_seeds`` per
configuration; :func:`format_table` prints ``mean ± std``; :func:`headline` flattens means into
the ``metrics.json`` of a notebook; :func:`compare` writes one sentence about two configurations.

Example:
    >>> runs = pd.DataFrame({"config": ["a", "a", "b"], "seed": [0, 1, 0], "mIoU_D": [0.5, 0.7, 0.4]})
    >>> summarize(runs, "mIoU_D")
      config  n_seeds  mIoU_D_mean  mIoU_D_std
    0      a        2          0.6    0.141421
    1      b        1          0.4         NaN
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from jmlkit.experiments.recipes import label

__all__ = [
    "summarize",
    "format_table",
    "headline",
    "compare",
    "per_config_means",
    "per_class_means",
]


# ============================================================================ summaries


def _metric_list(runs: pd.DataFrame, metrics: Sequence[str] | str | None) -> list[str]:
    if metrics is None:
        skip = {"seed", "cached", "epochs", "steps", "n_images", "n_pixels", "train_time_s", "epoch_time_s"}
        return [c for c in runs.columns if pd.api.types.is_float_dtype(runs[c]) and c not in skip]
    if isinstance(metrics, str):
        metrics = [metrics]
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise ValueError(f"Expected metric columns among {list(runs.columns)}, but got unknown {missing}.")
    return list(metrics)


def summarize(runs: pd.DataFrame, metrics: Sequence[str] | str | None = None, *, by: str | Sequence[str] = "config") -> pd.DataFrame:
    r"""Mean and standard deviation over seeds, per configuration.

    Args:
        runs: a tidy table of runs (one row per run, e.g. :func:`~jmlkit.experiments.run_configs`).
        metrics: metric columns (default: every float column).
        by: grouping column(s); groups keep the order in which they first appear.

    Returns:
        One row per group: the ``by`` columns, ``n_seeds``, then ``<metric>_mean`` and
        ``<metric>_std`` for each metric (``std`` is the sample standard deviation,
        :math:`\sqrt{\sum (x-\bar x)^2/(n-1)}`, NaN for a single seed).
    """
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"Expected `runs` to be a pandas DataFrame, but got {type(runs).__name__}.")
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in runs.columns]
    if missing:
        raise ValueError(f"Expected grouping columns among {list(runs.columns)}, but got unknown {missing}.")
    names = _metric_list(runs, metrics)
    grouped = runs.groupby(keys, sort=False, dropna=False)
    out = grouped.size().rename("n_seeds").reset_index()
    for m in names:
        stats = grouped[m].agg(["mean", "std"]).reset_index(drop=True)
        out[f"{m}_mean"] = stats["mean"].to_numpy()
        out[f"{m}_std"] = stats["std"].to_numpy()
    return out


def format_table(summary: pd.DataFrame, metrics: Sequence[str] | str, *, percent: bool = True, digits: int = 1,
                 index: str | Sequence[str] = "config") -> pd.DataFrame:
    """``mean ± std`` strings (only ``mean`` for one seed) of a :func:`summarize` table, for display.

    Example:
        >>> s = pd.DataFrame({"config": ["a"], "n_seeds": [2], "mIoU_D_mean": [0.6], "mIoU_D_std": [0.1414]})
        >>> format_table(s, ["mIoU_D"])
                mIoU_D
        config
        a       60.0 ± 14.1
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    scale = 100.0 if percent else 1.0
    table = summary.set_index(index)
    out = pd.DataFrame(index=table.index)
    for m in metrics:
        if f"{m}_mean" not in table.columns:
            raise ValueError(f"Expected `{m}_mean` in the summary, but its columns are {list(summary.columns)}.")
        mean, std = table[f"{m}_mean"] * scale, table[f"{m}_std"] * scale
        out[m] = [f"{a:.{digits}f}" if not np.isfinite(b) else f"{a:.{digits}f} ± {b:.{digits}f}" for a, b in zip(mean, std)]
    return out


def headline(summary: pd.DataFrame, metrics: Sequence[str], *, key: str = "config", prefix: str = "") -> dict[str, float]:
    """Flat ``{"<prefix><metric>.<config>": mean}`` dict for :func:`jmlkit.io.write_metrics`.

    Example:
        >>> s = pd.DataFrame({"config": ["ce"], "n_seeds": [1], "ECE_D_mean": [0.05], "ECE_D_std": [float("nan")]})
        >>> headline(s, ["ECE_D"])
        {'ECE_D.ce': 0.05}
    """
    out = {}
    for _, row in summary.iterrows():
        for m in metrics:
            value = row[f"{m}_mean"]
            out[f"{prefix}{m}.{row[key]}"] = None if value is None or not math.isfinite(float(value)) else float(value)
    return out


def compare(summary: pd.DataFrame, a: str, b: str, metric: str, *, key: str = "config", percent: bool = True,
            digits: int = 1) -> str:
    """A sentence comparing two configurations on one metric, written from the numbers.

    Equal when the means agree to ``digits`` decimals (of percent); "within one standard deviation
    over seeds" when the difference is no larger than the larger of the two standard deviations.

    Example:
        >>> s = pd.DataFrame({"config": ["a", "b"], "n_seeds": [1, 1], "ECE_D_mean": [0.02, 0.05],
        ...                   "ECE_D_std": [float("nan")] * 2})
        >>> compare(s, "a", "b", "ECE_D")
        'a has a lower ECE_D than b (2.0 vs 5.0)'
    """
    table = summary.set_index(key)
    for name in (a, b):
        if name not in table.index:
            raise ValueError(f"Expected `{name}` among the configurations {list(table.index)}, but it is not there.")
    scale = 100.0 if percent else 1.0
    ma, mb = float(table.at[a, f"{metric}_mean"]), float(table.at[b, f"{metric}_mean"])
    sa, sb = float(table.at[a, f"{metric}_std"]), float(table.at[b, f"{metric}_std"])

    def fmt(m: float, s: float) -> str:
        return f"{m * scale:.{digits}f}" + (f" ± {s * scale:.{digits}f}" if math.isfinite(s) else "")

    if round(ma * scale, digits) == round(mb * scale, digits):
        text = f"{label(a)} and {label(b)} have the same {metric} ({fmt(ma, sa)})"
    else:
        rel = "higher" if ma > mb else "lower"
        text = f"{label(a)} has a {rel} {metric} than {label(b)} ({fmt(ma, sa)} vs {fmt(mb, sb)})"
    if math.isfinite(sa) and math.isfinite(sb) and abs(ma - mb) <= max(sa, sb):
        text += ", within one standard deviation over seeds"
    return text


def per_config_means(table: pd.DataFrame, on: Sequence[str], columns: Sequence[str], *,
                     by: str = "config") -> dict[Any, pd.DataFrame]:
    """``{config: table of the mean of columns over seeds, per on-row}`` (e.g. the bins of a curve).

    >>> t = pd.DataFrame({"config": ["a", "a"], "seed": [0, 1], "bin": [0, 0], "p": [0.2, 0.4]})
    >>> per_config_means(t, ["bin"], ["p"])["a"].values.tolist()
    [[0.0, 0.30000000000000004]]
    """
    return {c: g.groupby(list(on), as_index=False)[list(columns)].mean() for c, g in table.groupby(by, sort=False)}


def per_class_means(metrics: pd.DataFrame, column: str = "IoU_per_class", *, by: str = "config") -> dict[Any, np.ndarray]:
    """``{config: mean over seeds of a per-class list}``: the ``column`` of the table (e.g. of
    :func:`~jmlkit.experiments.load_metrics` with ``extra``), or, for a table of runs without it, that metric of each
    run's result (:func:`~jmlkit.experiments.results.run_results`: from memory for the runs this process trained).

    >>> t = pd.DataFrame({"config": ["a", "a"], "IoU_per_class": [[0.5, 1.0], [0.7, 0.0]]})
    >>> per_class_means(t)["a"].tolist()
    [0.6, 0.5]
    """
    if column not in metrics.columns:
        from jmlkit.experiments.results import run_results

        metrics = metrics.assign(**{column: [r.metrics[column] for r in run_results(metrics)]})
    return {c: np.mean(np.array(g[column].tolist(), dtype=float), axis=0) for c, g in metrics.groupby(by, sort=False)}
