"""Calibration figures: reliability diagrams (one run, or a grid of runs), calibration against the distance to
the nearest boundary, class-wise calibration, the calibration-accuracy trade-off, and how predicted probabilities
follow soft labels.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (see :mod:`jmlkit.plot`).
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from typing import Any, Optional, Union

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._common import _frames, _is_table, _label, _reliability_bars, _reliability_frame

__all__ = [
    "reliability_diagram",
    "plot_reliability_grid",
    "calibration_vs_boundary_distance",
    "plot_per_class_calibration",
    "plot_tradeoff",
    "plot_soft_target_curves",
    "plot_band_histograms",
]


def reliability_diagram(
    data,
    *,
    title: Optional[str] = None,
    log_counts: bool = True,
    figsize: tuple[float, float] = (4.5, 5.5),
) -> Figure:
    """Reliability diagram: accuracy per confidence bin with the gap to the diagonal, and the counts.

    Top panel: bars of the accuracy of each bin, an outlined red hatched box from the accuracy to the mean
    confidence of the bin (the gap: above the bar when over-confident, inside it when under-confident), and
    the diagonal of perfect calibration; the legend (below the panels) gives the ECE when ``data`` is a
    ``CalibrationMetrics`` result. Bottom panel: the number of pixels per bin (log scale by default). Empty
    bins are left blank.

    Args:
        data: ``CalibrationMetrics.compute()`` dict or its ``"reliability"`` table (a dict of 1-d tensors as
            ``compute()`` returns it, the dict-of-lists form stored in ``metrics.json``, or a DataFrame).
        title: figure title.
        log_counts: log scale for the counts.
        figsize: figure size in inches.

    Example:
        >>> import torch
        >>> import jmlkit.metrics as M
        >>> out = M.calibration_metrics(torch.full((1, 2, 4, 4), 0.5), torch.zeros(1, 4, 4, dtype=torch.long), 2)
        >>> fig = reliability_diagram(out)
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['accuracy', 'pixels']
    """
    df, ece = _reliability_frame(data)
    fig = Figure(figsize=figsize, layout="constrained")
    ax, ax_n = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    lower, upper = df["lower"].to_numpy(float), df["upper"].to_numpy(float)
    width, centre = upper - lower, (lower + upper) / 2
    ok = df["count"].to_numpy() > 0
    _reliability_bars(ax, df, linewidth=0.5, gap_label="gap" if ece is None else f"gap (ECE {100 * ece:.2f}%)")
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    ax_n.bar(centre, df["count"].to_numpy(float), width=width, color="gray", edgecolor="black", linewidth=0.5)
    if log_counts and ok.any():
        ax_n.set_yscale("log")
    ax_n.set(xlabel="confidence", ylabel="pixels", xlim=(0, 1))
    if title:
        fig.suptitle(title)
    return fig


def plot_reliability_grid(
    tables: Mapping[Any, Any],
    *,
    ncols: int | None = None,
    title: str | None = None,
    panel_size: tuple[float, float] = (2.8, 3.0),
) -> Figure:
    """Reliability diagrams side by side, one panel per run (or group of seeds).

    Args:
        tables: ``{label: reliability DataFrame or {"reliability": DataFrame, "ECE_D": float}}``
            (e.g. pooled over the seeds of each configuration); tuple labels are joined with ``" / "``.
        ncols: panels per row (default: all in one row, at most 4).
        title: figure title.
        panel_size: inches per panel.

    Each panel: accuracy per confidence bin (bars), the gap to the diagonal (red outline, hatched) and the
    diagonal; the title (wrapped to the panel's width) gives the ECE and the share of pixels in the most confident
    bin.

    Example:
        >>> t = {"lower": [0.0, 0.5], "upper": [0.5, 1.0], "count": [1, 3], "confidence": [0.4, 0.9],
        ...      "accuracy": [0.0, 1.0]}
        >>> fig = plot_reliability_grid({("02", "ce"): {"reliability": t, "ECE_D": 0.1}, "b": t})
        >>> [ax.get_title().splitlines()[0] for ax in fig.axes]
        ['02 / ce', 'b']
    """
    if not isinstance(tables, Mapping) or not tables:
        raise ValueError("Expected `tables` to be a non-empty mapping label -> reliability table.")
    n = len(tables)
    ncols = min(n, 4) if ncols is None else ncols
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"Expected `ncols` to be a positive int, but got {ncols!r}.")
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)).ravel()
    for ax, (key, data) in zip(axes, tables.items()):
        df, ece = _reliability_frame(data)
        _reliability_bars(ax, df, linewidth=0.4)
        ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1)
        top = float(df["count"].to_numpy(float)[-1] / max(df["count"].sum(), 1))
        ece_text = "" if ece is None else f"ECE {100 * ece:.2f}%, "
        name = "\n".join(textwrap.wrap(_label(key), width=max(12, int(9 * panel_size[0]))))
        ax.set_title(f"{name}\n{ece_text}{100 * top:.0f}% px in top bin", fontsize="small", pad=8)
        ax.set(xlim=(0, 1), ylim=(0, 1))
    for ax in axes[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:n]):
        if i % ncols == 0:
            ax.set_ylabel("accuracy")
        if i + ncols >= n:  # nothing drawn below this panel
            ax.set_xlabel("confidence")
            ax.xaxis.set_tick_params(labelbottom=True)
    if title:
        fig.suptitle(title)
    return fig


def calibration_vs_boundary_distance(
    data: Union[pd.DataFrame, Mapping[str, Any]],
    *,
    title: Optional[str] = None,
    figsize: tuple[float, float] = (8.5, 3.4),
) -> Figure:
    """ECE, and accuracy against confidence, as functions of the distance to the nearest label change.

    Args:
        data: the table of :func:`jmlkit.metrics.calibration_by_boundary_distance` /
            :class:`jmlkit.metrics.BoundaryCalibration` (as ``compute()`` returns it, a dict of lists or a
            DataFrame), or ``{label: table}`` to compare runs.
            The last row (``max_distance + 1``) gathers all farther pixels and is labelled ``>max``.
        title: figure title.
        figsize: figure size in inches.

    Example:
        >>> import torch
        >>> import jmlkit.metrics as M
        >>> target = torch.eye(6, dtype=torch.long)[None]
        >>> df = M.calibration_by_boundary_distance(torch.full((1, 2, 6, 6), 0.5), target, 2)
        >>> fig = calibration_vs_boundary_distance(df)
        >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
        ('distance to boundary (px)', 'ECE (%)')
    """
    runs = _frames(data, "data")
    for df in runs.values():
        need = {"distance", "count", "ECE", "accuracy", "confidence"}
        if not need <= set(df.columns):
            raise ValueError(f"Expected columns {sorted(need)}, but got {list(df.columns)}.")
    fig = Figure(figsize=figsize, layout="constrained")
    ax_e, ax_a = fig.subplots(1, 2)
    for i, (label, df) in enumerate(runs.items()):
        d = df["distance"].to_numpy()
        color = f"C{i % 10}"
        ax_e.plot(d, 100 * df["ECE"].to_numpy(float), "o-", color=color, label=label or None)
        ax_a.plot(d, 100 * df["accuracy"].to_numpy(float), "o-", color=color)
        ax_a.plot(d, 100 * df["confidence"].to_numpy(float), "s--", color=color, markerfacecolor="none")
    d = next(iter(runs.values()))["distance"].to_numpy()
    ticks = [str(int(x)) for x in d[:-1]] + [f">{int(d[-2])}" if len(d) > 1 else str(int(d[-1]))]
    for ax in (ax_e, ax_a):
        ax.set_xticks(d, ticks)
        ax.set_xlabel("distance to boundary (px)")
    ax_e.set_ylabel("ECE (%)")
    ax_e.set_ylim(bottom=0)
    ax_a.set_ylabel("accuracy / confidence (%)")
    ax_a.margins(y=0.08)  # around the data: the gap between the two curves is what matters
    # One legend entry per run (colour), one per quantity (line style): not one per curve.
    styles = [Line2D([], [], color="0.3", marker="o", linestyle="-", label="accuracy"),
              Line2D([], [], color="0.3", marker="s", linestyle="--", markerfacecolor="none", label="confidence")]
    handles, labels = ax_e.get_legend_handles_labels() if len(runs) > 1 else ([], [])
    fig.legend([*handles, *styles], [*labels, "accuracy", "confidence"], loc="outside lower center",
               fontsize="small", ncols=min(len(handles) + 2, 3), frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_per_class_calibration(per_class: pd.DataFrame, *, by: str = "config", value: str = "ECE_class",
                               title: str | None = None, ax=None) -> Figure:
    """A per-class value (default the class-wise calibration error, in %) as one dot per class and run, mean over
    seeds with the standard deviation as error bars, on an axis around the data; ``per_class`` has one row per
    (run, class) with the columns ``by``, ``class``, ``class_name`` and ``value``. The legend is below the axes.

    Example:
        >>> pc = pd.DataFrame({"config": ["a", "a", "b", "b"], "class": [0, 1, 0, 1], "class_name": ["bg", "fg"] * 2,
        ...                    "ECE_class": [0.1, 0.2, 0.05, 0.1]})
        >>> [c.lines[0].get_ydata().tolist() for c in plot_per_class_calibration(pc).axes[0].containers]
        [[10.0, 20.0], [5.0, 10.0]]
    """
    need = {by, "class", "class_name", value}
    if not isinstance(per_class, pd.DataFrame) or not need <= set(per_class.columns):
        raise ValueError(f"Expected a per-class DataFrame with columns {sorted(need)}.")
    stats = per_class.groupby([by, "class", "class_name"], sort=False)[value].agg(["mean", "std"]).reset_index()
    groups = list(dict.fromkeys(stats[by]))
    classes = stats[["class", "class_name"]].drop_duplicates().sort_values("class")
    n, k = len(classes), len(groups)
    if ax is None:
        fig = Figure(figsize=(min(11.0, max(5.0, 0.22 * n * k + 2.0)), 3.4), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    x = np.arange(n)
    offsets = (np.arange(k) - (k - 1) / 2) * min(0.8 / max(k, 1), 0.22)
    percent = value == "ECE_class"
    scale = 100.0 if percent else 1.0
    for i, g in enumerate(groups):
        s = stats[stats[by] == g].set_index("class").reindex(classes["class"])
        ax.errorbar(x + offsets[i], s["mean"].to_numpy(float) * scale, fmt="o", markersize=5, color=f"C{i % 10}",
                    yerr=np.nan_to_num(s["std"].to_numpy(float)) * scale if s["std"].notna().any() else None,
                    capsize=2, label=str(g))
    ax.set_xticks(x, classes["class_name"].astype(str).tolist(), rotation=45 if n > 6 else 0,
                  ha="right" if n > 6 else "center")
    ax.set(ylabel="class-wise calibration error (%)" if percent else value, xlabel="class")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(k, 3), fontsize="small",
               frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_tradeoff(
    summary: pd.DataFrame,
    *,
    x: str = "mIoU_D",
    y: str = "ECE_D",
    label: str = "config",
    group: str | None = "notebook",
    percent: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] = (5.5, 4.2),
) -> Figure:
    """Scatter of two metrics of a summary table (``<metric>_mean`` columns, with ``<metric>_std`` error bars when
    there are several seeds), one point per row, labelled by ``label``, one colour per ``group``.

    Example:
        >>> s = pd.DataFrame({"notebook": ["02", "03"], "config": ["a", "b"], "mIoU_D_mean": [0.5, 0.6],
        ...                   "ECE_D_mean": [0.05, 0.03]})
        >>> plot_tradeoff(s).axes[0].get_xlabel()
        'mIoU_D (%)'
    """
    need = {f"{x}_mean", f"{y}_mean", label} | ({group} if group else set())
    if not isinstance(summary, pd.DataFrame) or not need <= set(summary.columns):
        raise ValueError(f"Expected a summary table with columns {sorted(need)}.")
    f = 100.0 if percent else 1.0
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    groups = list(dict.fromkeys(summary[group])) if group else [None]
    for i, g in enumerate(groups):
        rows = summary[summary[group] == g] if group else summary
        xe = rows.get(f"{x}_std", pd.Series(np.nan, index=rows.index)).fillna(0).to_numpy(float) * f
        ye = rows.get(f"{y}_std", pd.Series(np.nan, index=rows.index)).fillna(0).to_numpy(float) * f
        ax.errorbar(rows[f"{x}_mean"].to_numpy(float) * f, rows[f"{y}_mean"].to_numpy(float) * f, xerr=xe, yerr=ye,
                    fmt="o", color=f"C{i}", capsize=2, label=str(g) if g is not None else None)
        for _, r in rows.iterrows():
            ax.annotate(str(r[label]), (r[f"{x}_mean"] * f, r[f"{y}_mean"] * f), textcoords="offset points",
                        xytext=(4, 3), fontsize="x-small")
    unit = " (%)" if percent else ""
    ax.set(xlabel=f"{x}{unit}", ylabel=f"{y}{unit}")
    if group:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def plot_soft_target_curves(curves: Mapping[str, pd.DataFrame], *, title: str | None = None,
                            band: tuple[float, float] | None = (0.2, 0.8), figsize=(4.6, 4.2)) -> Figure:
    """Mean predicted probability (± one std, shaded) against the target probability, one line per
    run; the diagonal is "predicts the soft label exactly". ``curves``: ``{label: curve}`` with the columns
    ``target``, ``predicted``, ``predicted_std`` and ``count`` (one row per bin of the target probability): the
    ``curve`` of :class:`jmlkit.metrics.SoftLabelStats` as ``compute()`` returns it, a dict of lists or a DataFrame.

    Example:
        >>> c = pd.DataFrame({"target": [0.25, 0.75], "predicted": [0.3, 0.7], "predicted_std": [0.1, 0.1],
        ...                   "count": [4, 4]})
        >>> plot_soft_target_curves({"a": c}).axes[0].get_xlabel()
        'target probability y (soft label)'
    """
    if not isinstance(curves, Mapping) or not curves or _is_table(curves):
        raise ValueError("Expected `curves` to be a non-empty mapping label -> curve DataFrame.")
    curves = _frames(curves, "curves")
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    if band is not None:
        ax.axvspan(*band, color="0.92", zorder=0, label=f"band {band[0]:g} < y < {band[1]:g}")
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="p = y")
    for i, (label, df) in enumerate(curves.items()):
        ok = df["count"].to_numpy() > 0
        x = df["target"].to_numpy(float)[ok]
        y = df["predicted"].to_numpy(float)[ok]
        s = df["predicted_std"].to_numpy(float)[ok]
        ax.plot(x, y, "o-", color=f"C{i}", label=str(label), markersize=4)
        ax.fill_between(x, np.clip(y - s, 0, 1), np.clip(y + s, 0, 1), color=f"C{i}", alpha=0.15, linewidth=0)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="target probability y (soft label)", ylabel="predicted probability p")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    return fig


def plot_band_histograms(hists: Mapping[str, pd.DataFrame], *, title: str | None = None,
                         panel_size: tuple[float, float] = (3.0, 2.6)) -> Figure:
    """Histograms (densities) of the predicted probabilities at band entries, one panel per run; ``hists``:
    ``{label: table}`` with the columns ``lower``, ``upper`` and ``density`` (the ``band_hist`` of
    :class:`jmlkit.metrics.SoftLabelStats` as ``compute()`` returns it, a dict of lists or a DataFrame).

    Example:
        >>> h = pd.DataFrame({"lower": [0.0, 0.5], "upper": [0.5, 1.0], "density": [1.2, 0.8]})
        >>> len(plot_band_histograms({"a": h, "b": h}).axes)
        2
    """
    if not isinstance(hists, Mapping) or not hists or _is_table(hists):
        raise ValueError("Expected `hists` to be a non-empty mapping label -> band_hist DataFrame.")
    hists = _frames(hists, "hists")
    n = len(hists)
    fig = Figure(figsize=(panel_size[0] * n, panel_size[1] + (0.4 if title else 0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True, squeeze=False)).ravel()
    for i, (ax, (label, df)) in enumerate(zip(axes, hists.items())):
        lower, upper = df["lower"].to_numpy(float), df["upper"].to_numpy(float)
        ax.bar((lower + upper) / 2, df["density"].to_numpy(float), width=upper - lower, color=f"C{i}",
               edgecolor="black", linewidth=0.4)
        ax.set(xlim=(0, 1), xlabel="predicted probability p", title=str(label))
    axes[0].set_ylabel("density")
    if title:
        fig.suptitle(title)
    return fig
