"""Figures of notebook 02's ablation: the regime of label smoothing on a data set, and the tug of war between the
CE and JML terms of the paper's soft-label loss on each class's logits.

:func:`smoothing_regime` draws :func:`jmlkit.targets.smoothing_shares` reports; :func:`gradient_tug_of_war`
draws :func:`jmlkit.lessons.gradient_split` tables. Every function returns a :class:`matplotlib.figure.Figure`
built without pyplot (see :mod:`jmlkit.plot`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["smoothing_regime", "gradient_tug_of_war"]

#: Colours of the two terms of the paper's soft-label loss.
TERM_COLORS = {"ce": "#1f77b4", "jml": "#ff7f0e"}


def _class_names(n: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(c) for c in range(n)]
    names = [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"Expected {n} class names, one per class, but got {len(names)}.")
    return names


def smoothing_regime(shares_by_setting: Mapping[str, Any], *, class_names: Sequence[str] | None = None,
                     title: str | None = None) -> Figure:
    """Per class, the share of its pixels that smoothing touches and the floor's share of its L1 target mass,
    one bar per setting (data set × smoothing).

    Args:
        shares_by_setting: ``{label: SmoothingShares}`` of :func:`jmlkit.targets.smoothing_shares` (or its
            ``per_class`` table), all with the same classes.
        class_names: tick labels (default: the class indices).
        title: figure title.

    Left panel: ``share_smoothed``, the share of the class's pixels whose target is smoothed (1 for uniform
    smoothing; for an object class under boundary smoothing, the part of the object inside the band). Right
    panel: ``floor_share``, the part of the class's target mass :math:`\\sum_i y_{c,i}` that is the
    :math:`\\varepsilon / C` floor other classes' smoothed pixels give it, i.e. mass where the class is not.
    The legend (below the panels) gives each setting's share of object pixels smoothed.

    Example:
        >>> import torch
        >>> from jmlkit.targets import smoothing_shares
        >>> y = torch.zeros(1, 7, 7, dtype=torch.long); y[0, 2:5, 2:5] = 1
        >>> fig = smoothing_regime({"boundary": smoothing_shares(y, 2), "uniform": smoothing_shares(y, 2, smoothing="uniform")})
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['share of its pixels smoothed', "floor's share of its target mass"]
    """
    if not isinstance(shares_by_setting, Mapping) or not shares_by_setting:
        raise ValueError("Expected `shares_by_setting` to be a non-empty mapping {label: SmoothingShares}.")
    tables, notes = {}, {}
    for name, shares in shares_by_setting.items():
        table = shares if isinstance(shares, pd.DataFrame) else getattr(shares, "per_class", None)
        if not isinstance(table, pd.DataFrame) or not {"share_smoothed", "floor_share"} <= set(table.columns):
            raise TypeError(f"Expected a SmoothingShares (or its per_class table) for {name!r}, "
                            f"but got {type(shares).__name__}.")
        tables[str(name)] = table
        share = getattr(shares, "object_share_smoothed", None)
        notes[str(name)] = f"{name} (objects: {share:.0%} smoothed)" if share is not None and np.isfinite(share) else str(name)
    sizes = {len(t) for t in tables.values()}
    if len(sizes) != 1:
        raise ValueError(f"Expected every setting to have the same classes, but got class counts {sorted(sizes)}.")
    n = sizes.pop()
    names = _class_names(n, class_names)
    k = len(tables)
    width = 0.8 / k
    fig = Figure(figsize=(max(7.0, 0.5 * n * 2 + 1.5), 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    x = np.arange(n)
    for i, (name, table) in enumerate(tables.items()):
        offset = (i - (k - 1) / 2) * width
        for ax, column in zip(axes, ("share_smoothed", "floor_share")):
            values = np.nan_to_num(table[column].to_numpy(float) * 100)
            ax.bar(x + offset, values, width=width, color=f"C{i}", edgecolor="black", linewidth=0.4,
                   label=notes[name])
    for ax, ylabel, panel in zip(axes, ("share of its pixels smoothed", "floor's share of its target mass"),
                                 ("pixels of the class whose target is smoothed",
                                  "target mass of the class that sits where it is not")):
        ax.set_ylabel(ylabel)
        ax.set_title(panel, fontsize="medium")
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0f}%")
        ax.set_xticks(x, names, rotation=45 if max(len(s) for s in names) > 2 else 0,
                      ha="right" if max(len(s) for s in names) > 2 else "center")
        ax.set_xlabel("class")
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncol=min(k, 3), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def gradient_tug_of_war(splits: Mapping[str, Any], *, scale: float = 1e3, title: str | None = None) -> Figure:
    """The push of the two terms of the paper's soft-label loss on each class's logits: one panel per model.

    Args:
        splits: ``{label: GradientSplit}`` of :func:`jmlkit.lessons.gradient_split` (or its ``per_class``
            table), e.g. the paper's recipe run and the CE + boundary LS run on the same batch.
        scale: the pushes are shown multiplied by this.
        title: figure title.

    For each class two columns, the CE term (0.25) and the JML term (0.75): a light bar up to the push of the
    pixels where the target exceeds the prediction (pull-up, positive), a hatched bar down to the push of the
    pixels where the prediction exceeds the target (push-down, negative), and a black bar for their sum (the
    net push: what a gradient step adds to the class's logits, summed over the batch). Classes labelled in the
    batch but predicted nowhere are written in red.

    Example:
        >>> import torch
        >>> from jmlkit.lessons import gradient_split
        >>> y = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
        >>> fig = gradient_tug_of_war({"a": gradient_split(torch.zeros(1, 2, 1, 2), y)})
        >>> len(fig.axes), fig.axes[0].get_title()
        (1, 'a')
    """
    if not isinstance(splits, Mapping) or not splits:
        raise ValueError("Expected `splits` to be a non-empty mapping {label: GradientSplit}.")
    tables = {}
    for name, split in splits.items():
        table = split if isinstance(split, pd.DataFrame) else getattr(split, "per_class", None)
        need = {"name", "pixels", "predicted", "ce_up", "ce_down", "jml_up", "jml_down"}
        if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
            raise TypeError(f"Expected a GradientSplit (or its per_class table) for {name!r}, "
                            f"but got {type(split).__name__}.")
        tables[str(name)] = table
    n = max(len(t) for t in tables.values())
    fig = Figure(figsize=(max(7.0, 0.62 * n + 1.5), 2.9 * len(tables) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(tables), 1, squeeze=False)[:, 0])
    width = 0.38
    for ax, (name, table) in zip(axes, tables.items()):
        x = np.arange(len(table))
        for j, term in enumerate(("ce", "jml")):
            pos = x + (j - 0.5) * width
            up, down = table[f"{term}_up"].to_numpy(float) * scale, table[f"{term}_down"].to_numpy(float) * scale
            color = TERM_COLORS[term]
            what = "CE (0.25)" if term == "ce" else "JML (0.75)"
            ax.bar(pos, up, width=width, color=color, alpha=0.35, edgecolor=color, label=f"{what}: pull-up")
            ax.bar(pos, down, width=width, color="white", hatch="///", edgecolor=color, label=f"{what}: push-down")
            ax.bar(pos, up + down, width=width * 0.45, color=color, edgecolor="black", linewidth=0.6,
                   label=f"{what}: net")
        ax.axhline(0, color="black", linewidth=0.8)
        collapsed = (table["pixels"].to_numpy() > 0) & (table["predicted"].to_numpy() == 0)
        ax.set_xticks(x, [str(v) for v in table["name"]], rotation=45, ha="right")
        for tick, bad in zip(ax.get_xticklabels(), collapsed):
            if bad:
                tick.set_color("#d62728")
                tick.set_fontweight("bold")
        ax.set_title(name)
        ax.set_ylabel(f"push on the logits (x{1 / scale:g})" if scale != 1 else "push on the logits")
    axes[-1].set_xlabel("class (red: labelled in the batch, predicted nowhere)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize="x-small",
               frameon=False)
    if title:
        fig.suptitle(title)
    return fig
