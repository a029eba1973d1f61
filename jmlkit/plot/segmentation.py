"""Segmentation figures: images with their targets and predictions, per-class IoU, soft predictions of one class,
and the targets that label smoothing asks the network to predict.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (see :mod:`jmlkit.plot`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from torch import Tensor

from ._common import GAP_COLOR, _to_numpy

__all__ = ["per_class_iou", "segmentation_panel", "plot_soft_predictions", "target_panel"]


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
    """The IoU of every class (in %), a dot per class and run, with each run's mean IoU as a dashed line, on an axis
    around the data (the legend, below the axes, gives the mean).

    Args:
        data: a ``SegmentationMetrics.compute()`` dict, a vector of per-class IoUs (tensor,
            array, list), or a mapping ``{label: one of those}`` for several runs side by side.
            Classes with NaN IoU (never present) are shown as an empty slot.
        class_names: tick labels; defaults to ``0 .. C-1``.
        sort: order classes by the IoU of the first run.
        ax: draw into this axes.
        title: axes title.

    Example:
        >>> fig = per_class_iou({"a": [0.5, 0.7], "b": torch.tensor([0.6, float("nan")])}, class_names=["x", "y"])
        >>> fig.axes[0].get_ylabel()
        'IoU (%)'
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
    own = ax is None
    if ax is None:
        fig = Figure(figsize=(max(4.5, 0.5 * n + 1.5), 3.2 + 0.25 * len(runs)), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    k = len(runs)
    x = np.arange(n)
    offsets = (np.arange(k) - (k - 1) / 2) * min(0.8 / k, 0.22)
    for i, (label, iou) in enumerate(runs.items()):
        vals = iou[order] * 100
        mean = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
        name = label or "IoU"
        ax.plot(x + offsets[i], vals, "o", color=f"C{i % 10}", markersize=5,
                label=f"{name} (mIoU {mean:.1f} %)" if np.isfinite(mean) else name)
        if np.isfinite(mean):
            ax.axhline(mean, color=f"C{i % 10}", linestyle="--", linewidth=0.8, alpha=0.7)
    ax.set_xticks(x, [names[j] for j in order], rotation=45 if n > 8 else 0, ha="right" if n > 8 else "center")
    ax.set(ylabel="IoU (%)", xlabel="class")
    ax.margins(y=0.1)
    ax.grid(axis="y", alpha=0.3)
    if own:
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(k, 2), fontsize="small",
                   frameon=False)
    else:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
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
    base = ListedColormap([matplotlib.colormaps[cmap](i % 20) for i in range(num_classes)] + [(0.0, 0.0, 0.0, 1.0)])
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
        axes[r, 4].imshow(err, cmap=ListedColormap(["white", "lightgray", GAP_COLOR]),
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


def plot_soft_predictions(
    image: Tensor,
    soft: Tensor,
    probs: Mapping[str, Tensor],
    *,
    class_index: int,
    class_name: str | None = None,
    title: str | None = None,
) -> Figure:
    """One image: the input, the soft target of one class, and each run's predicted probability of
    that class, on the same colour scale; the last row shows ``p - y`` per run.

    Args:
        image: ``(C_in, H, W)``.
        soft: ``(K, H, W)`` soft labels.
        probs: ``{label: (K, H, W)}`` predicted probabilities.
        class_index: the class shown.
        class_name: its name for the titles.
        title: figure title.

    Example:
        >>> y = torch.softmax(torch.randn(3, 8, 8), 0)
        >>> fig = plot_soft_predictions(torch.rand(1, 8, 8), y, {"a": y}, class_index=1)
        >>> [ax.get_title() for ax in fig.axes[:3]]
        ['image', 'target y (class 1)', 'p: a']
    """
    if not isinstance(probs, Mapping) or not probs:
        raise ValueError("Expected `probs` to be a non-empty mapping label -> (K, H, W) probabilities.")
    if soft.ndim != 3 or not 0 <= class_index < soft.shape[0]:
        raise ValueError(f"Expected `soft` (K, H, W) and 0 <= class_index < K, but got shape {tuple(soft.shape)} "
                         f"and class_index={class_index}.")
    name = class_name or f"class {class_index}"
    n = len(probs) + 2
    fig = Figure(figsize=(2.3 * n, 4.6 + (0.3 if title else 0)), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    img = image.detach().float().cpu()
    img = img[0] if img.ndim == 3 else img
    y = soft[class_index].detach().float().cpu()
    axes[0, 0].imshow(img.numpy(), cmap="gray")
    axes[0, 0].set_title("image")
    im = axes[0, 1].imshow(y.numpy(), cmap="magma", vmin=0, vmax=1)
    axes[0, 1].set_title(f"target y ({name})")
    band = ((y > 0.2) & (y < 0.8)).float().numpy()
    axes[1, 1].imshow(band, cmap="gray_r", vmin=0, vmax=1)
    axes[1, 1].set_title("band 0.2 < y < 0.8")
    axes[1, 0].set_visible(False)
    for j, (label, p) in enumerate(probs.items(), start=2):
        pk = p[class_index].detach().float().cpu()
        axes[0, j].imshow(pk.numpy(), cmap="magma", vmin=0, vmax=1)
        axes[0, j].set_title(f"p: {label}")
        err = axes[1, j].imshow((pk - y).numpy(), cmap="RdBu_r", vmin=-0.5, vmax=0.5)
        axes[1, j].set_title(f"p - y: {label}")
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="probability")
    fig.colorbar(err, ax=axes[1, :].tolist(), shrink=0.8, label="p - y")
    if title:
        fig.suptitle(title)
    return fig


def target_panel(labels, num_classes: int, epsilon: float, *, kernel_size: int = 3, max_images: int = 2,
                 ignore_index: int | None = None) -> Figure:
    """What the network is asked to predict: the probability of the labelled class under hard labels,
    uniform label smoothing and boundary label smoothing (one row per image; ``ignore_index`` pixels blank).

    Example:
        >>> fig = target_panel(torch.zeros(1, 8, 8, dtype=torch.long), 3, 0.2)
        >>> [ax.get_title() for ax in fig.axes[:4]]
        ['label', 'hard: p(y)', 'uniform LS: p(y)', 'boundary LS: p(y)']
    """
    from jmlkit import targets as T

    labels = torch.as_tensor(labels).long()
    if labels.ndim == 2:
        labels = labels[None]
    labels = labels[:max_images]
    rows = [
        ("hard", T.one_hot(labels, num_classes, ignore_index=ignore_index)),
        ("uniform LS", T.label_smoothing(labels, num_classes, epsilon, ignore_index=ignore_index)),
        ("boundary LS", T.boundary_label_smoothing(labels, num_classes, epsilon, kernel_size=kernel_size,
                                                   ignore_index=ignore_index)),
    ]
    valid = rows[0][1].mask
    shown = torch.where(valid, labels, torch.zeros_like(labels))
    fig = Figure(figsize=(9.5, 2.4 * labels.shape[0] + 0.3), layout="constrained")
    axes = np.asarray(fig.subplots(labels.shape[0], 4, squeeze=False))
    for r in range(labels.shape[0]):
        axes[r, 0].imshow(np.ma.masked_where(~valid[r].numpy(), labels[r].numpy()), cmap="tab20", vmin=0, vmax=19,
                          interpolation="nearest")
        for c, (name, st) in enumerate(rows, start=1):
            p_y = np.ma.masked_where(~valid[r].numpy(), st.soft[r].gather(0, shown[r][None]).squeeze(0).numpy())
            im = axes[r, c].imshow(p_y, cmap="viridis", vmin=1 - epsilon, vmax=1.0, interpolation="nearest")
        for c, name in enumerate(["label"] + [f"{n}: p(y)" for n, _ in rows]):
            if r == 0:
                axes[r, c].set_title(name)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="target probability of the labelled class")
    return fig
