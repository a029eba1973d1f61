"""Comparisons as what they are: each run's seeds over its mean, and paired differences with their 95 % intervals.

* :func:`comparison_chart`: one row per configuration, its seeds as points and its mean ± standard deviation over
  them, on an axis around the data (a bar from 0 hides a difference of 3 points at 90 %), in %;
* :func:`forest_plot`: the paired differences of :func:`jmlkit.experiments.regime_differences` (or the claims
  table of :func:`jmlkit.experiments.claims.claims_table`): a dot per comparison at ``a − b`` with its interval,
  a line at 0, coloured by verdict (a gain or a loss only when the interval excludes 0), one panel per data regime.

Both draw with seaborn where it helps (the seed points) and return a :class:`matplotlib.figure.Figure` built
without pyplot. Long display names sit on the y axis, where they have room.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._common import LABELS, _label

__all__ = ["comparison_chart", "forest_plot", "VERDICT_COLORS"]

#: Colour of each verdict (of a paired difference, or of a claim against the paper's direction).
VERDICT_COLORS = {"gain": "#1a7f37", "reproduced": "#1a7f37", "loss": "#c62828", "opposite": "#c62828",
                  "no measurable difference": "#6b7280", "inconclusive": "#6b7280"}
_NOT_MEASURABLE_COLOR = "#9ca3af"


def _display(name: Any) -> str:
    from jmlkit.experiments.recipes import run_label

    return run_label(name) if isinstance(name, str) else _label(name, LABELS)


def comparison_chart(data: pd.DataFrame, metrics: Sequence[str], *, key: str = "config", percent: bool = True,
                     title: str | None = None, reference: Mapping[str, float | None] | None = None,
                     reference_label: str = "teacher") -> Figure:
    """One panel per metric, one row per configuration: its seeds (points) and their mean ± standard deviation.

    Args:
        data: the runs, one row per configuration and seed with a column per metric (a ``run_configs`` table), or
            a summary with ``<metric>_mean`` and ``<metric>_std`` columns (then no seed points).
        metrics: the metrics, one panel each.
        key: the column naming the configurations (shown by their display names).
        percent: values ×100 (axis in %).
        title: figure title.
        reference: ``{metric: value}`` drawn as a dashed vertical line (e.g. the teacher's), named
            ``reference_label`` in the legend.

    Example:
        >>> runs = pd.DataFrame({"config": ["ce_hard"] * 3 + ["jml_bls"] * 3, "seed": [0, 1, 2] * 2,
        ...                      "mIoU_D": [0.93, 0.94, 0.935, 0.90, 0.91, 0.905]})
        >>> fig = comparison_chart(runs, ["mIoU_D"])
        >>> fig.axes[0].get_xlabel(), [t.get_text() for t in fig.axes[0].get_yticklabels()]
        ('mIoU_D (%)', ['CE, hard labels', "CE+JML + boundary LS (paper's recipe)"])
    """
    import seaborn as sns

    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"Expected `data` to be a pandas DataFrame, but got {type(data).__name__}.")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("Expected at least one metric in `metrics`, but got none.")
    if key not in data.columns:
        raise ValueError(f"Expected `key`={key!r} to be a column of `data`, but its columns are {list(data.columns)}.")
    per_run = all(m in data.columns for m in metrics)
    for m in metrics:
        if not per_run and f"{m}_mean" not in data.columns:
            raise ValueError(f"Expected a column {m!r} (runs) or {m + '_mean'!r} (a summary) in `data`, but its "
                             f"columns are {list(data.columns)}.")
    scale = 100.0 if percent else 1.0
    order = list(dict.fromkeys(data[key]))
    names = [_display(n) for n in order]
    fig = Figure(figsize=(1.2 + 0.12 * max(len(n) for n in names) + 3.0 * len(metrics), 0.9 + 0.42 * len(order)),
                 layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    y = np.arange(len(order))
    palette = {name: f"C{i % 10}" for i, name in enumerate(order)}
    for ax, m in zip(axes, metrics):
        if per_run:
            frame = pd.DataFrame({"row": data[key].map({n: i for i, n in enumerate(order)}),
                                  "value": data[m].to_numpy(float) * scale, "name": data[key]})
            frame = frame[np.isfinite(frame["value"])].sort_values(["row", "value"], kind="stable")
            state = np.random.get_state()  # seaborn jitters with numpy's global generator: the same figure every time
            np.random.seed(0)
            try:
                sns.stripplot(frame, x="value", y="row", hue="name", palette=palette, orient="h", native_scale=True,
                              jitter=0.12, size=4, alpha=0.6, legend=False, ax=ax)
            finally:
                np.random.set_state(state)
            grouped = frame.groupby("row")["value"]
            mean, std = grouped.mean().reindex(y), grouped.std(ddof=1).reindex(y)
        else:
            mean = pd.Series(data[f"{m}_mean"].to_numpy(float) * scale, index=y)
            std = pd.Series(data[f"{m}_std"].to_numpy(float) * scale if f"{m}_std" in data else np.nan, index=y)
        ax.errorbar(mean.to_numpy(), y, xerr=np.nan_to_num(std.to_numpy()), fmt="D", color="black", markersize=5,
                    capsize=3, linewidth=1.2, zorder=3)
        for yi, (mu, sd) in enumerate(zip(mean.to_numpy(), np.nan_to_num(std.to_numpy()))):
            if np.isfinite(mu):
                ax.annotate(f"{mu:.1f}" if percent else f"{mu:.3f}", (mu, yi), xytext=(0, 6),
                            textcoords="offset points", ha="center", va="bottom", fontsize="x-small")
        if reference and reference.get(m) is not None:
            ax.axvline(float(reference[m]) * scale, color="0.4", linestyle="--", linewidth=1)
        ax.set_yticks(y, names)
        ax.set_ylim(len(order) - 0.4, -0.7)  # first configuration on top, room for the value labels
        ax.set_ylabel("")
        ax.set_xlabel(f"{m} (%)" if percent else m)
        ax.margins(x=0.12)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(m)
    handles = [Line2D([], [], marker="D", color="black", linestyle="-", label="mean ± std over seeds")]
    if per_run:
        handles.append(Line2D([], [], marker="o", color="0.5", alpha=0.6, linestyle="none", label="one seed"))
    if reference and any(v is not None for v in reference.values()):
        handles.append(Line2D([], [], color="0.4", linestyle="--", label=reference_label))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small", frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def forest_plot(differences: pd.DataFrame, *, metric: str | None = None, by: str | None = "regime",
                label: str = "a", verdict: str | None = None, percent: bool = True, title: str | None = None,
                xlabel: str | None = None) -> Figure:
    """Paired differences as dots with their 95 % intervals, a panel per ``by`` value (e.g. data regime).

    Args:
        differences: one row per comparison with ``delta``, ``low``, ``high`` (metric units) and ``n`` (paired
            seeds): :func:`jmlkit.experiments.regime_differences` (``a``, ``b``, ``metric``, ``verdict``) or the
            claims table (``claim``, ``regime``, ``outcome``).
        metric: keep the rows of this metric (needed when ``differences`` holds several).
        by: the column of the panels (``None``: one panel).
        label: the column naming each row (display names for configurations).
        verdict: the column colouring each row (default: ``verdict``, else ``outcome``); see :data:`VERDICT_COLORS`.
        percent: differences ×100, in points.
        title, xlabel: figure title; x-axis label (default ``Δ <metric> vs <b> (points)``).

    A row measured with fewer than two seeds has no interval: its dot is hollow.

    Example:
        >>> d = pd.DataFrame({"regime": ["large", "small"], "a": ["jml_bls"] * 2, "b": ["ce_hard"] * 2,
        ...                   "metric": ["mIoU_D"] * 2, "n": [5, 5], "delta": [-0.034, -0.02],
        ...                   "low": [-0.046, -0.05], "high": [-0.022, 0.01],
        ...                   "verdict": ["loss", "no measurable difference"]})
        >>> fig = forest_plot(d)
        >>> [ax.get_title() for ax in fig.axes], fig.axes[0].get_xlabel()
        (['large', 'small'], 'Δ mIoU_D vs CE, hard labels (points)')
    """
    if not isinstance(differences, pd.DataFrame):
        raise TypeError(f"Expected `differences` to be a pandas DataFrame, but got {type(differences).__name__}.")
    need = {"delta", "low", "high", label}
    if not need <= set(differences.columns):
        raise ValueError(f"Expected columns {sorted(need)} in `differences`, but got {list(differences.columns)}.")
    frame = differences
    if metric is not None:
        if "metric" not in frame.columns:
            raise ValueError("Expected a `metric` column in `differences` to select metric "
                             f"{metric!r}, but it has none.")
        frame = frame[frame["metric"] == metric]
    elif "metric" in frame.columns and frame["metric"].nunique() > 1:
        raise ValueError(f"Expected one metric in `differences` or `metric=`, but got {sorted(frame['metric'].unique())}.")
    if not len(frame):
        raise ValueError("Expected at least one row in `differences` (for the metric asked), but got none.")
    verdict = verdict or ("verdict" if "verdict" in frame.columns else "outcome" if "outcome" in frame.columns
                          else None)
    groups = [(None, frame)] if by is None or by not in frame.columns else list(frame.groupby(by, sort=False))
    rows = list(dict.fromkeys(frame[label]))
    names = [_display(r) if label in ("a", "config", "method") else str(r) for r in rows]
    scale = 100.0 if percent else 1.0
    width = 1.0 + 0.11 * max(len(n) for n in names) + 2.6 * len(groups)
    fig = Figure(figsize=(width, 1.0 + 0.38 * len(rows)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(groups), sharey=True))
    seen: dict[str, str] = {}
    for ax, (group, part) in zip(axes, groups):
        ax.axvline(0.0, color="black", linewidth=0.8)
        for _, row in part.iterrows():
            yi = rows.index(row[label])
            d, lo, hi = (float(row[c]) * scale for c in ("delta", "low", "high"))
            measured = np.isfinite(lo) and np.isfinite(hi) and int(row.get("n", 2)) >= 2
            word = str(row[verdict]) if verdict else ("measured" if measured else "")
            color = VERDICT_COLORS.get(word, _NOT_MEASURABLE_COLOR)
            if measured:
                ax.plot([lo, hi], [yi, yi], color=color, linewidth=2, solid_capstyle="butt")
            if np.isfinite(d):
                ax.plot([d], [yi], "o", color=color, markersize=6, markerfacecolor=color if measured else "white")
                ax.annotate(f"{d:+.1f}" if percent else f"{d:+.3f}", (d, yi), xytext=(0, 5),
                            textcoords="offset points", ha="center", va="bottom", fontsize="x-small")
            seen.setdefault(word if measured else "one seed: no interval", color)
        ax.set_yticks(range(len(rows)), names)
        ax.set_ylim(len(rows) - 0.5, -0.8)
        ax.margins(x=0.15)
        ax.grid(axis="x", alpha=0.3)
        if group is not None:
            ax.set_title(str(group))
        base = frame["b"].iloc[0] if "b" in frame.columns and frame["b"].nunique() == 1 else None
        m = metric or (frame["metric"].iloc[0] if "metric" in frame.columns else "")
        unit = "points" if percent else "difference"
        ax.set_xlabel(xlabel or (f"Δ {m} vs {_display(base)} ({unit})" if base is not None else f"Δ {m} ({unit})"))
    handles = [Line2D([], [], marker="o", color=c, linewidth=2, label=w,
                      markerfacecolor="white" if w.startswith("one seed") else c) for w, c in seen.items() if w]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize="small",
                   frameon=False)
    if title:
        fig.suptitle(title)
    return fig
