"""Figures of finished training runs: a sweep per line, the training histories (a configuration per row:
:mod:`jmlkit.plot.comparison`).

The tables are the summaries of the experiment recipes: one row per configuration (or per configuration and
swept value) with ``<metric>_mean`` and ``<metric>_std`` columns. Known configuration names are shown by their
display names (:data:`jmlkit.plot.LABELS`). Every function returns a :class:`matplotlib.figure.Figure` built
without pyplot (see :mod:`jmlkit.plot`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from jmlkit.layout import HISTORY_FILE

from ._common import LABELS, _label

__all__ = ["sweep_plot", "sweep_or_comparison_chart", "history_plot"]


def sweep_plot(summary: pd.DataFrame, x: str, metrics: Sequence[str], *, hue: str = "method", percent: bool = True,
               logx: bool = False, title: str | None = None) -> Figure:
    """One panel per metric: mean ± std against ``x`` (e.g. ``epsilon`` or ``fraction``), a line per ``hue``.

    ``summary`` has one row per ``(hue, x)`` pair with ``<metric>_mean`` and ``<metric>_std`` columns.

    Example:
        >>> s = pd.DataFrame({"method": ["a", "a"], "epsilon": [0.0, 0.1], "ECE_D_mean": [0.1, 0.05],
        ...                   "ECE_D_std": [float("nan")] * 2})
        >>> sweep_plot(s, "epsilon", ["ECE_D"]).axes[0].get_xlabel()
        'epsilon'
    """
    metrics = list(metrics)
    scale = 100.0 if percent else 1.0
    fig = Figure(figsize=(3.6 * len(metrics) + 0.6, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, m in zip(axes, metrics):
        for i, (name, part) in enumerate(summary.groupby(hue, sort=False)):
            part = part.sort_values(x)
            mean = part[f"{m}_mean"].to_numpy(float) * scale
            std = np.nan_to_num(part[f"{m}_std"].to_numpy(float) * scale)
            ax.errorbar(part[x].to_numpy(float), mean, yerr=std, marker="o", capsize=3, color=f"C{i}",
                        label=_label(name, LABELS))
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
        ax.set_ylabel(f"{m} (%)" if percent else m)
        ax.set_title(m)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def sweep_or_comparison_chart(summary: pd.DataFrame, x: str, metrics: Sequence[str], *, hue: str = "method",
                              percent: bool = True, logx: bool = False, title: str | None = None) -> Figure:
    """:func:`sweep_plot` against ``x`` when the summary has several values of ``x``; with one value a line would be
    a single point, so then :func:`~jmlkit.plot.comparison_chart`: a row per ``hue`` (mean ± std over seeds),
    titled with the value.

    Args:
        summary: one row per ``(hue, x)`` pair with ``<metric>_mean`` and ``<metric>_std`` columns.
        x: the swept column (e.g. ``fraction``); hue: the column naming the lines or bars.
        metrics, percent: as in :func:`sweep_plot`; logx: of the sweep.
        title: the figure title; with one value of ``x``, followed by the value (``"<title> <value>"``, default
            ``"<x> = <value>"``).

    Example:
        >>> s = pd.DataFrame({"method": ["a", "b"], "fraction": [0.125, 0.125], "mIoU_D_mean": [0.5, 0.6],
        ...                   "mIoU_D_std": [0.01, 0.02]})
        >>> fig = sweep_or_comparison_chart(s, "fraction", ["mIoU_D"], title="labelled fraction")
        >>> fig.get_suptitle(), len(fig.axes[0].get_yticklabels())
        ('labelled fraction 0.125', 2)
    """
    if not isinstance(x, str) or x not in summary.columns:
        raise ValueError(f"Expected `x` to be a column of the summary {list(summary.columns)}, but got {x!r}.")
    values = summary[x].dropna().unique()
    if len(values) > 1:
        return sweep_plot(summary, x, metrics, hue=hue, percent=percent, logx=logx, title=title)
    value = f"{float(values[0]):g}" if len(values) else "none"
    from .comparison import comparison_chart

    return comparison_chart(summary, metrics, key=hue, percent=percent,
                            title=f"{title} {value}" if title else f"{x} = {value}")


def history_plot(runs: Mapping[str, str | os.PathLike | pd.DataFrame], columns: Sequence[str], *, title: str | None = None) -> Figure:
    """Training curves: one panel per ``history.csv`` column (e.g. ``train_loss``, ``mask_ratio``), a line per run.

    Args:
        runs: ``{label: history}``: a run's history as a DataFrame (``FitResult.history``, ``RunResult.history``)
            or its run folder (its ``history.csv``).
        columns: history columns; a run without a column is left out of that panel.
        title: figure title.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> pd.DataFrame({"epoch": [1, 2], "train_loss": [0.9, 0.5]}).to_csv(folder / "history.csv", index=False)
        >>> [ax.get_title() for ax in history_plot({"run": folder}, ["train_loss"]).axes]
        ['train_loss']
    """
    columns = list(columns)
    fig = Figure(figsize=(3.8 * len(columns) + 0.4, 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    for i, (label, folder) in enumerate(runs.items()):
        history = folder if isinstance(folder, pd.DataFrame) else pd.read_csv(Path(folder) / HISTORY_FILE)
        for ax, col in zip(axes, columns):
            if col in history.columns:
                ax.plot(history["epoch"], history[col], marker=".", color=f"C{i}", label=_label(label, LABELS))
    for ax, col in zip(axes, columns):
        ax.set_xlabel("epoch")
        ax.set_title(col)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
