"""Evaluation: streaming accuracy and calibration metrics of a model on a data set, and predictions for plots."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from jmlkit._checks import check_int
from jmlkit.engine.data import base_dataset, num_classes_of
from jmlkit.engine.distributed import ShardSampler, unwrap
from jmlkit.engine.runtime import autocast, resolve_device
from jmlkit.engine.runtime import progress as progress_bar

__all__ = ["evaluate", "predict", "Prediction"]


def _plain(value: Any) -> Any:
    """A metric value as python types: tensors as numbers or lists, tables as dicts of lists, NaN as None."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="list")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


class Prediction(NamedTuple):
    """Images, labels and predicted probabilities of :func:`predict` (CPU tensors)."""

    images: torch.Tensor  # (N, C_in, H, W)
    labels: torch.Tensor  # (N, H, W) int64
    probs: torch.Tensor  # (N, K, H, W)
    soft: torch.Tensor | None  # (N, K, H, W) when the data set has soft labels


def _make_metrics(num_classes: int, ignore_index: int | None, n_bins: int, device: torch.device) -> list[Any]:
    from jmlkit import metrics as jm

    seg = jm.SegmentationMetrics(num_classes, ignore_index=ignore_index)
    cal = jm.CalibrationMetrics(num_classes, n_bins=n_bins, ignore_index=ignore_index)
    return [cal.to(device), seg.to(device)]  # seg last: its `Acc`, `n_pixels` win the merge


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = 255,
    n_bins: int = 15,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy and calibration of ``model`` on ``data``: :class:`~jmlkit.metrics.SegmentationMetrics`
    and :class:`~jmlkit.metrics.CalibrationMetrics` computed over the whole set, their dicts merged.

    Scalars (``Acc``, ``mIoU_D``, ``mIoU_I``, ``ECE_D``, ``Brier``, ``NLL``, …) are python floats;
    per-class values are lists. Inside an initialised process group the data set is sharded
    across ranks (a :class:`~torch.utils.data.DataLoader` is used as given) and the metric
    states are reduced, so every rank gets the metrics of the whole set.

    Args:
        model: maps ``(B, C_in, H, W)`` to logits ``(B, K, H, W)``; evaluated in eval mode
            (its training mode is restored after).
        data: a data set of ``{"image", "label", ...}`` items or a loader of such batches.
        num_classes: ``K`` (default: the data set's or the model's ``num_classes``).
        ignore_index: label value that does not count (the data set's ``ignore_index`` wins).
        n_bins: confidence bins of the calibration metrics.
        batch_size: batch size when ``data`` is a data set.
        device: default: the model's device.
        amp: autocast on CUDA.
        progress: show a progress bar.

    Example:
        >>> from jmlkit.data import DigitScenes
        >>> from jmlkit.models import build_model
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = build_model("tiny", num_classes=11, in_channels=3)
        >>> m = evaluate(net, DigitScenes("test", num_scenes=4, size=32, digit_size=12))
        >>> 0.0 <= m["mIoU_D"] <= 1.0, 0.0 <= m["ECE_D"] <= 1.0
        (True, True)
    """
    model_ = unwrap(model)
    if device is None:
        try:
            device = next(model_.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    device = resolve_device(device)
    if num_classes is None:
        num_classes = num_classes_of(model_, data)
        if num_classes is None:
            raise ValueError("Expected `num_classes` (the data set and model do not say), but got None.")
    num_classes = check_int("num_classes", num_classes, low=1)
    n_bins = check_int("n_bins", n_bins, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    ignore_index = getattr(base_dataset(data), "ignore_index", ignore_index)
    if isinstance(data, DataLoader):
        loader = data
    else:
        if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
            raise TypeError(f"Expected `data` to be a Dataset or DataLoader, but got {type(data).__name__}.")
        sampler = None
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            sampler = ShardSampler(len(data), dist.get_rank(), dist.get_world_size())
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=0)
    metrics = _make_metrics(num_classes, ignore_index, n_bins, device)
    was_training = model_.training
    model_.eval()
    try:
        for batch in progress_bar(loader, progress, desc="eval", leave=False):
            images = batch["image"].to(device, non_blocking=True)
            labels = batch["label"].to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model_(images)
            probs = torch.softmax(logits.float(), dim=1)
            for metric in metrics:
                metric.update(probs, labels)
        results: dict[str, Any] = {}
        for metric in metrics:
            results.update(metric.compute())
    finally:
        model_.train(was_training)
    return {key: _plain(value) for key, value in results.items()}


@torch.no_grad()
def predict(
    model: nn.Module,
    data: Dataset,
    n: int = 8,
    *,
    indices: Sequence[int] | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 32,
) -> Prediction:
    """Images, labels, softmax probabilities (and soft labels, if any) of ``n`` items, for plots.

    Args:
        model: the segmentation model (evaluated in eval mode).
        data: a data set of ``{"image", "label", ["soft"]}`` items.
        n: number of items (the first ``n``) when ``indices`` is not given.
        indices: explicit item indices.
        device: default: the model's device.
        batch_size: forward-pass batch size.

    Returns:
        :class:`Prediction` of CPU tensors: ``images (N, C_in, H, W)``, ``labels (N, H, W)``,
        ``probs (N, K, H, W)``, ``soft (N, K, H, W)`` or ``None``.

    Example:
        >>> from jmlkit.data import DigitScenes
        >>> from jmlkit.models import build_model
        >>> p = predict(build_model("tiny", num_classes=11, in_channels=3), DigitScenes("test", num_scenes=4, size=32, digit_size=12), n=2)
        >>> p.images.shape, p.probs.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 11, 32, 32]))
    """
    model_ = unwrap(model)
    if indices is None:
        n = check_int("n", n, low=1)
        indices = list(range(min(n, len(data))))
    indices = [int(i) for i in indices]
    if device is None:
        try:
            device = next(model_.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    items = [data[i] for i in indices]
    images = torch.stack([it["image"] for it in items])
    labels = torch.stack([torch.as_tensor(it["label"]) for it in items]).long()
    soft = torch.stack([it["soft"] for it in items]) if all("soft" in it for it in items) and items else None
    was_training = model_.training
    model_.eval()
    try:
        probs = torch.cat(
            [torch.softmax(model_(images[i : i + batch_size].to(device)).float(), dim=1).cpu() for i in range(0, len(images), batch_size)]
        ) if len(images) else torch.empty(0)
    finally:
        model_.train(was_training)
    return Prediction(images, labels, probs, soft)
