"""Plots of accuracy and calibration results.

Every function takes what :mod:`jmlkit.metrics` produces (the dicts of ``compute()``, the
reliability table, the per-distance table) and returns a :class:`matplotlib.figure.Figure`.
Figures are created without pyplot (``matplotlib.figure.Figure``), so nothing is kept in a
global registry, nothing is shown by itself and no backend is needed: in a notebook make
the figure the last expression of a cell (or ``display(fig)``); in a batch run
``fig.savefig(path)``. Functions drawing a single panel accept ``ax=`` to draw into an
existing axes (the returned figure is then ``ax.figure``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional, Union

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

__all__ = [
    "reliability_diagram",
    "per_class_iou",
    "segmentation_panel",
    "calibration_vs_boundary_distance",
]

_GAP_COLOR = "#d62728"
_BAR_COLOR = "#1f77b4"


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _reliability_frame(data) -> tuple[pd.DataFrame, Optional[float]]:
    if isinstance(data, pd.DataFrame):
        df, ece = data, None
    elif isinstance(data, Mapping) and "reliability" in data:
        df, ece = data["reliability"], data.get("ECE_D")
    else:
        raise TypeError(
            "Expected `data` to be a reliability table (DataFrame) or the dict of "
            f"CalibrationMetrics.compute(), but got {type(data).__name__}."
        )
    need = {"lower", "upper", "count", "confidence", "accuracy"}
    if not need <= set(df.columns):
        raise ValueError(f"Expected a reliability table with columns {sorted(need)}, but got {list(df.columns)}.")
    return df, ece


def reliability_diagram(
    data,
    *,
    title: Optional[str] = None,
    log_counts: bool = True,
    figsize: tuple[float, float] = (4.5, 5.5),
) -> Figure:
    """Reliability diagram: accuracy per confidence bin with the gap to the diagonal, and the counts.

    Top panel: bars of the accuracy of each bin, red bars from the accuracy to the mean
    confidence of the bin (the gap), and the diagonal of perfect calibration; the legend
    gives the ECE when ``data`` is a ``CalibrationMetrics`` result. Bottom panel: the
    number of pixels per bin (log scale by default). Empty bins are left blank.

    Args:
        data: ``CalibrationMetrics.compute()`` dict or its ``"reliability"`` DataFrame.
        title: figure title.
        log_counts: log scale for the counts.
        figsize: figure size in inches.

    Example:
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
    acc, conf = df["accuracy"].to_numpy(float), df["confidence"].to_numpy(float)
    ax.bar(centre[ok], acc[ok], width=width[ok], color=_BAR_COLOR, edgecolor="black", linewidth=0.5, label="accuracy")
    ax.bar(
        centre[ok], (conf - acc)[ok], bottom=acc[ok], width=width[ok], color=_GAP_COLOR, alpha=0.35,
        edgecolor=_GAP_COLOR, hatch="//", linewidth=0.5, label="gap" if ece is None else f"gap (ECE {100 * ece:.2f}%)",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    ax.legend(loc="upper left", fontsize="small")
    ax_n.bar(centre, df["count"].to_numpy(float), width=width, color="gray", edgecolor="black", linewidth=0.5)
    if log_counts and ok.any():
        ax_n.set_yscale("log")
    ax_n.set(xlabel="confidence", ylabel="pixels", xlim=(0, 1))
    if title:
        fig.suptitle(title)
    return fig


def _iou_vector(x) -> np.ndarray:
    if isinstance(x, Mapping):
        if "IoU_per_class" not in x:
            raise ValueError("Expected a SegmentationMetrics result with key 'IoU_per_class'.")
        x = x["IoU_per_class"]
    return _to_numpy(x).astype(float).reshape(-1)


def per_class_iou(
    data,
    *,
    class_names: Optional[Sequence[str]] = None,
    sort: bool = False,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
) -> Figure:
    """Bars of the IoU of every class, with the mean IoU as a line.

    Args:
        data: a ``SegmentationMetrics.compute()`` dict, a vector of per-class IoUs (tensor,
            array, list), or a mapping ``{label: one of those}`` for grouped bars of several runs.
            Classes with NaN IoU (never present) are shown as an empty slot.
        class_names: tick labels; defaults to ``0 .. C-1``.
        sort: order classes by the IoU of the first run.
        ax: draw into this axes.
        title: axes title.

    Example:
        >>> fig = per_class_iou({"a": [0.5, 0.7], "b": torch.tensor([0.6, float("nan")])}, class_names=["x", "y"])
        >>> fig.axes[0].get_ylabel()
        'IoU'
    """
    if isinstance(data, Mapping) and "IoU_per_class" not in data:
        runs = {str(k): _iou_vector(v) for k, v in data.items()}
    else:
        runs = {"": _iou_vector(data)}
    sizes = {len(v) for v in runs.values()}
    if len(sizes) != 1:
        raise ValueError(f"Expected the same number of classes in every run, but got {sorted(sizes)}.")
    n = sizes.pop()
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"Expected {n} `class_names`, but got {len(names)}.")
    order = np.arange(n)
    if sort:
        first = next(iter(runs.values()))
        order = np.argsort(np.nan_to_num(first, nan=-1.0))[::-1]
    if ax is None:
        fig = Figure(figsize=(max(4.0, 0.45 * n * max(1, len(runs)) ** 0.5 + 1.5), 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    k = len(runs)
    width = 0.8 / k
    x = np.arange(n)
    for i, (label, iou) in enumerate(runs.items()):
        vals = iou[order]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(vals, nan=0.0), width=width,
                      label=(label or None) if k > 1 else None)
        mean = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
        if np.isfinite(mean):
            ax.axhline(mean, color=bars.patches[0].get_facecolor(), linestyle="--", linewidth=1,
                       label=f"mIoU {label} {100 * mean:.1f}%".replace("  ", " "))
    ax.set_xticks(x, [names[j] for j in order], rotation=45 if n > 8 else 0, ha="right" if n > 8 else "center")
    ax.set(ylim=(0, 1), ylabel="IoU", xlabel="class")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def _batched(x, ndim: int, name: str) -> np.ndarray:
    a = _to_numpy(x)
    if a.ndim == ndim - 1:
        a = a[None]
    if a.ndim != ndim:
        raise ValueError(f"Expected `{name}` with {ndim - 1} or {ndim} dims, but got shape {a.shape}.")
    return a


def segmentation_panel(
    image,
    target,
    probs,
    *,
    ignore_index: Optional[int] = None,
    class_names: Optional[Sequence[str]] = None,
    max_images: int = 4,
    cmap: str = "tab20",
    title: Optional[str] = None,
) -> Figure:
    """One row per image: image | target | prediction | confidence | error.

    Args:
        image: ``(B, Cin, H, W)``, ``(Cin, H, W)`` or ``(H, W)`` (1 or 3 channels; min-max scaled for display).
        target: class indices ``(B, H, W)`` or ``(H, W)``.
        probs: probabilities ``(B, C, H, W)`` or ``(C, H, W)``; prediction = argmax, confidence = max.
        ignore_index: target value drawn black and left out of the error map.
        class_names: legend entries for the label colours.
        max_images: show at most this many rows.
        cmap: qualitative colormap of the labels.
        title: figure title.

    The error column is 1 (red) where prediction and target differ, grey where ignored.

    Example:
        >>> target = torch.zeros(8, 8, dtype=torch.long)
        >>> fig = segmentation_panel(torch.rand(3, 8, 8), target, torch.full((2, 8, 8), 0.5))
        >>> [ax.get_title() for ax in fig.axes[:5]]
        ['image', 'target', 'prediction', 'confidence', 'error']
    """
    tgt = _batched(target, 3, "target").astype(np.int64)
    pr = _batched(probs, 4, "probs")
    img = _to_numpy(image)
    if img.ndim == 2:
        img = img[None, None]
    elif img.ndim == 3:
        img = img[None]
    if img.ndim != 4 or img.shape[0] != tgt.shape[0] or img.shape[2:] != tgt.shape[1:] or pr.shape[0] != tgt.shape[0] \
            or pr.shape[2:] != tgt.shape[1:]:
        raise ValueError(
            f"Expected `image` (B, Cin, H, W), `target` (B, H, W) and `probs` (B, C, H, W) with the same B, H, W, "
            f"but got {tuple(img.shape)}, {tuple(tgt.shape)}, {tuple(pr.shape)}."
        )
    num_classes = pr.shape[1]
    n = min(max_images, tgt.shape[0])
    pred, conf = pr.argmax(1), pr.max(1)
    ignored = tgt == ignore_index if ignore_index is not None else np.zeros_like(tgt, dtype=bool)
    base = ListedColormap(
        [__import__("matplotlib").colormaps[cmap](i % 20) for i in range(num_classes)] + [(0.0, 0.0, 0.0, 1.0)]
    )
    norm = BoundaryNorm(np.arange(num_classes + 2) - 0.5, base.N)
    fig = Figure(figsize=(11, 2.3 * n + (0.4 if title else 0)), layout="constrained")
    axes = np.asarray(fig.subplots(n, 5, squeeze=False))
    for r in range(n):
        im = img[r]
        im = np.moveaxis(im[:3] if im.shape[0] >= 3 else im[:1].repeat(3, 0), 0, -1).astype(float)
        lo, hi = np.nanmin(im), np.nanmax(im)
        im = (im - lo) / (hi - lo) if hi > lo else np.zeros_like(im)
        t_show = np.where(ignored[r], num_classes, tgt[r])
        err = np.where(ignored[r], 0.5, (pred[r] != tgt[r]).astype(float))
        axes[r, 0].imshow(im)
        axes[r, 1].imshow(t_show, cmap=base, norm=norm, interpolation="nearest")
        axes[r, 2].imshow(pred[r], cmap=base, norm=norm, interpolation="nearest")
        c = axes[r, 3].imshow(conf[r], cmap="viridis", vmin=0, vmax=1)
        axes[r, 4].imshow(err, cmap=ListedColormap(["white", "lightgray", _GAP_COLOR]),
                          norm=BoundaryNorm([-0.25, 0.25, 0.75, 1.25], 3), interpolation="nearest")
        for j, name in enumerate(("image", "target", "prediction", "confidence", "error")):
            if r == 0:
                axes[r, j].set_title(name)
            axes[r, j].set_xticks([]), axes[r, j].set_yticks([])
        if r == n - 1:
            fig.colorbar(c, ax=axes.ravel().tolist(), shrink=0.8, label="confidence (max probability)")
    if class_names is not None:
        from matplotlib.patches import Patch

        handles = [Patch(color=base(i), label=str(nm)) for i, nm in enumerate(class_names)]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def calibration_vs_boundary_distance(
    data: Union[pd.DataFrame, Mapping[str, pd.DataFrame]],
    *,
    title: Optional[str] = None,
    figsize: tuple[float, float] = (8.5, 3.4),
) -> Figure:
    """ECE, and accuracy against confidence, as functions of the distance to the nearest label change.

    Args:
        data: the table of :func:`jmlkit.metrics.calibration_by_boundary_distance` /
            :class:`jmlkit.metrics.BoundaryCalibration`, or ``{label: table}`` to compare runs.
            The last row (``max_distance + 1``) gathers all farther pixels and is labelled ``>max``.
        title: figure title.
        figsize: figure size in inches.

    Example:
        >>> import jmlkit.metrics as M
        >>> target = torch.eye(6, dtype=torch.long)[None]
        >>> df = M.calibration_by_boundary_distance(torch.full((1, 2, 6, 6), 0.5), target, 2)
        >>> fig = calibration_vs_boundary_distance(df)
        >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
        ('distance to boundary (px)', 'ECE')
    """
    runs = {"": data} if isinstance(data, pd.DataFrame) else dict(data)
    if not runs or not all(isinstance(v, pd.DataFrame) for v in runs.values()):
        raise TypeError("Expected `data` to be a per-distance DataFrame or a mapping of label -> DataFrame.")
    for df in runs.values():
        need = {"distance", "count", "ECE", "accuracy", "confidence"}
        if not need <= set(df.columns):
            raise ValueError(f"Expected columns {sorted(need)}, but got {list(df.columns)}.")
    fig = Figure(figsize=figsize, layout="constrained")
    ax_e, ax_a = fig.subplots(1, 2)
    for i, (label, df) in enumerate(runs.items()):
        d = df["distance"].to_numpy()
        color = f"C{i}"
        ax_e.plot(d, df["ECE"].to_numpy(float), "o-", color=color, label=label or None)
        ax_a.plot(d, df["accuracy"].to_numpy(float), "o-", color=color, label=f"{label} accuracy".strip())
        ax_a.plot(d, df["confidence"].to_numpy(float), "s--", color=color, label=f"{label} confidence".strip())
    d = next(iter(runs.values()))["distance"].to_numpy()
    ticks = [str(int(x)) for x in d[:-1]] + [f">{int(d[-2])}" if len(d) > 1 else str(int(d[-1]))]
    for ax in (ax_e, ax_a):
        ax.set_xticks(d, ticks)
        ax.set_xlabel("distance to boundary (px)")
    ax_e.set_ylabel("ECE")
    ax_e.set_ylim(bottom=0)
    ax_a.set_ylabel("accuracy / confidence")
    ax_a.set_ylim(0, 1.02)
    ax_a.legend(fontsize="small")
    if len(runs) > 1:
        ax_e.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
