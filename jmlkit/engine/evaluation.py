"""Evaluation: streaming accuracy and calibration metrics of a model on a data set, extra evaluators computed in the
same pass, and predictions for plots.

An *extra evaluator* is any ``torchmetrics.Metric`` updated with ``(probs, labels)`` on every evaluation batch
(one whose class says ``needs_soft_labels = True`` gets ``(probs, soft, mask)`` instead, on data sets with soft
labels), e.g. :class:`~jmlkit.metrics.BoundaryCalibration`, :class:`~jmlkit.metrics.ClasswiseCalibration`,
:class:`~jmlkit.metrics.SoftLabelStats`. It is given as an instance, or as a factory built once the run knows its
data: a ``Metric`` class or a :func:`functools.partial` of one, called with ``num_classes`` and those of
``ignore_index`` and ``class_names`` that it accepts and the partial does not set. A factory is identified by
:func:`describe_evaluator` (class and options), which the run cache compares before reusing a stored value.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from jmlkit._checks import check_int
from jmlkit.engine.data import base_dataset, num_classes_of, stacked_tensors, take_rows
from jmlkit.engine.distributed import ShardSampler, unwrap
from jmlkit.engine.runtime import autocast, resolve_device
from jmlkit.engine.runtime import progress as progress_bar
from jmlkit.metrics import SegmentationMetrics
from jmlkit.metrics.functional import check_labels, class_argmax
from jmlkit.metrics.tables import to_python

__all__ = ["evaluate", "evaluation_pass", "Evaluation", "build_evaluators", "describe_evaluator", "check_evaluators",
           "predict", "Prediction"]


class Prediction(NamedTuple):
    """Images, labels and predicted probabilities of :func:`predict` (CPU tensors)."""

    images: torch.Tensor  # (N, C_in, H, W)
    labels: torch.Tensor  # (N, H, W) int64
    probs: torch.Tensor  # (N, K, H, W)
    soft: torch.Tensor | None  # (N, K, H, W) when the data set has soft labels


def _make_metrics(num_classes: int, ignore_index: int | None, n_bins: int, device: torch.device) -> list[Any]:
    from jmlkit import metrics as jm

    # checked once per batch by the pass (labels, finite probabilities of its own softmax)
    seg = jm.SegmentationMetrics(num_classes, ignore_index=ignore_index, validate_args=False)
    cal = jm.CalibrationMetrics(num_classes, n_bins=n_bins, ignore_index=ignore_index, validate_args=False)
    return [cal.to(device), seg.to(device)]  # seg last: its `Acc`, `n_pixels` win the merge


Factory = Callable[..., Any]


def _factory_target(spec: Any) -> Any:
    while isinstance(spec, functools.partial):
        spec = spec.func
    return spec


def check_evaluators(evaluators: Any) -> dict[str, Any]:
    """``evaluators`` as a dict ``{name: Metric or factory}`` (``None``: empty); a ``TypeError`` naming the bad entry."""
    from torchmetrics import Metric

    if evaluators is None:
        return {}
    if not isinstance(evaluators, Mapping):
        raise TypeError(f"Expected `evaluators` to be a dict of name -> torchmetrics Metric (or a factory of one), "
                        f"but got {type(evaluators).__name__}.")
    out = {}
    for name, spec in evaluators.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"Expected the names of `evaluators` to be non-empty strings, but got {name!r}.")
        target = _factory_target(spec)
        if not (isinstance(spec, Metric) or (isinstance(target, type) and issubclass(target, Metric))):
            raise TypeError(f"Expected `evaluators[{name!r}]` to be a torchmetrics Metric, a Metric class or a "
                            f"functools.partial of one, but got {type(spec).__name__}.")
        out[name] = spec
    return out


def describe_evaluator(spec: Any) -> str:
    """What identifies an evaluator: its class and options, e.g. ``"jmlkit.metrics.calibration.BoundaryCalibration(
    max_distance=6)"``. An instance is described by its class alone (give a factory to have its options count).

    >>> from functools import partial
    >>> from jmlkit.metrics import BoundaryCalibration
    >>> describe_evaluator(partial(BoundaryCalibration, max_distance=6, n_bins=15))
    'jmlkit.metrics.calibration.BoundaryCalibration(max_distance=6, n_bins=15)'
    """
    parts: list[str] = []
    target = spec
    while isinstance(target, functools.partial):
        parts = [*map(repr, target.args), *(f"{k}={v!r}" for k, v in sorted(target.keywords.items())), *parts]
        target = target.func
    cls = target if isinstance(target, type) else type(target)
    return f"{cls.__module__}.{cls.__qualname__}({', '.join(parts)})"


def build_evaluators(evaluators: Mapping[str, Any] | None, *, num_classes: int, ignore_index: int | None = None,
                     class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Instances of ``evaluators`` (see the module docstring): a factory is called with ``num_classes`` and those of
    ``ignore_index``, ``class_names`` that it accepts and does not set itself; an instance is used as given."""
    from torchmetrics import Metric

    out = {}
    for name, spec in check_evaluators(evaluators).items():
        if isinstance(spec, Metric):
            out[name] = spec
            continue
        given = dict(spec.keywords) if isinstance(spec, functools.partial) else {}
        params = inspect.signature(_factory_target(spec)).parameters
        options = {k: v for k, v in (("ignore_index", ignore_index), ("class_names", class_names))
                   if k in params and k not in given and (k != "class_names" or v is not None)}
        out[name] = spec(num_classes, **options)
    return out


class Evaluation(NamedTuple):
    """What :func:`evaluation_pass` returns: the standard ``metrics`` and the ``evaluations`` of the extra evaluators
    (python types: tables as dicts of lists, NaN as ``None``; ``None`` for a soft-label evaluator on data without soft
    labels)."""

    metrics: dict[str, Any]
    evaluations: dict[str, Any]


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
    return evaluation_pass(model, data, num_classes=num_classes, ignore_index=ignore_index, n_bins=n_bins,
                           batch_size=batch_size, device=device, amp=amp, progress=progress).metrics


#: Probabilities (elements) that the evaluation pass gathers before it updates the standard metrics.
PENDING_ELEMENTS = 2**22


class _PendingBatches:
    """The standard metrics' batches, gathered up to :data:`PENDING_ELEMENTS` probabilities of one spatial shape and
    given to the metrics at once, with one argmax for both (the accuracy metrics take class indices): at 16 x 16
    a metric update's fixed cost per call is the size of the network's own work on a batch."""

    def __init__(self, metrics: list[Any]):
        self.metrics, self.probs, self.labels, self.size = metrics, [], [], 0

    def add(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        if self.probs and probs.shape[1:] != self.probs[0].shape[1:]:
            self.flush()
        self.probs.append(probs)
        self.labels.append(labels)
        self.size += probs.numel()
        if self.size >= PENDING_ELEMENTS:
            self.flush()

    def flush(self) -> None:
        if not self.probs:
            return
        probs = self.probs[0] if len(self.probs) == 1 else torch.cat(self.probs)
        labels = self.labels[0] if len(self.labels) == 1 else torch.cat(self.labels)
        self.probs, self.labels, self.size = [], [], 0
        preds = class_argmax(probs)
        for metric in self.metrics:
            if isinstance(metric, SegmentationMetrics):
                metric.update(preds, labels)
            else:
                metric.update(probs, labels, preds=preds)


def _sliced_batches(n: int, batch_size: int, tensors: dict[str, torch.Tensor],
                    index: torch.Tensor | None) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of ``DataLoader(data, batch_size)`` (in order, the last one short) from :func:`stacked_tensors`:
    views of the stacked tensors where the items are consecutive rows (the whole set, a first-``k`` limit), else
    copies of their rows."""
    first = int(index[0]) if index is not None and len(index) else 0
    if index is None or torch.equal(index, torch.arange(first, first + len(index))):
        for start in range(0, n, batch_size):
            yield {key: value[first + start:first + min(start + batch_size, n)] for key, value in tensors.items()}
        return
    for chunk in index.split(batch_size):
        yield take_rows(tensors, chunk)


@torch.no_grad()
def evaluation_pass(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    evaluators: Mapping[str, Any] | None = None,
    standard: bool = True,
    num_classes: int | None = None,
    ignore_index: int | None = 255,
    n_bins: int = 15,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp: bool = False,
    progress: bool = False,
) -> Evaluation:
    """One pass of ``model`` over ``data``: the metrics of :func:`evaluate` (``standard=False``: none) and the
    ``evaluators`` (instances, or factories built with the data's ``num_classes``, ``ignore_index`` and class
    names), each updated with every batch's probabilities. Other arguments as in :func:`evaluate`.

    Example:
        >>> from functools import partial
        >>> from jmlkit.data import DigitScenes
        >>> from jmlkit.metrics import BoundaryCalibration
        >>> from jmlkit.models import build_model
        >>> net = build_model("tiny", num_classes=11, in_channels=3)
        >>> ev = evaluation_pass(net, DigitScenes("test", num_scenes=2, size=32, digit_size=12),
        ...                      evaluators={"near": partial(BoundaryCalibration, max_distance=2)})
        >>> sum(ev.evaluations["near"]["count"]) == ev.metrics["n_pixels"]
        True
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
    base = base_dataset(data)
    ignore_index = getattr(base, "ignore_index", ignore_index)
    extra = build_evaluators(evaluators, num_classes=num_classes, ignore_index=ignore_index,
                             class_names=getattr(base, "class_names", None))
    if isinstance(data, DataLoader):
        loader = data
    else:
        if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
            raise TypeError(f"Expected `data` to be a Dataset or DataLoader, but got {type(data).__name__}.")
        sampler = None
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            sampler = ShardSampler(len(data), dist.get_rank(), dist.get_world_size())
        stacked = stacked_tensors(data) if sampler is None else None
        if stacked is not None:  # the loader's batches, sliced from the stacked items (no per-item dicts)
            tensors, index = stacked
            if not any(getattr(metric, "needs_soft_labels", False) for metric in extra.values()):
                tensors = {key: value for key, value in tensors.items() if key != "soft"}  # read by nothing
            loader = _sliced_batches(len(data), batch_size, tensors, index)
        else:
            loader = DataLoader(data, batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=0)
    metrics = _make_metrics(num_classes, ignore_index, n_bins, device) if standard else []
    extra = {name: metric.to(device) for name, metric in extra.items()}
    soft_seen = dict.fromkeys(extra, True)
    pending = _PendingBatches(metrics)
    was_training = model_.training
    model_.eval()
    try:
        for batch in progress_bar(loader, progress, desc="eval", leave=False):
            images = batch["image"].to(device, non_blocking=True)
            labels = batch["label"].to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model_(images)
            probs = torch.softmax(logits.float(), dim=1)
            if metrics:  # the standard metrics skip their own checks (validate_args=False): one check of each here
                check_labels(labels, num_classes, ignore_index)
                if not bool(torch.isfinite(probs.sum())):
                    raise ValueError("Expected the model to give finite logits, but its softmax holds NaN or Inf.")
                pending.add(probs, labels)
            for name, metric in extra.items():
                if not getattr(metric, "needs_soft_labels", False):
                    metric.update(probs, labels)
                elif "soft" in batch and soft_seen[name]:
                    metric.update(probs, batch["soft"].to(device).float(),
                                  labels != ignore_index if ignore_index is not None else None)
                else:  # a batch without soft labels: this evaluator has no value
                    soft_seen[name] = False
        pending.flush()
        results: dict[str, Any] = {}
        for metric in metrics:
            results.update(metric.compute())
        evaluations = {name: to_python(metric.compute()) if soft_seen[name] and metric.update_count else None
                       for name, metric in extra.items()}
    finally:
        model_.train(was_training)
    return Evaluation({key: to_python(value) for key, value in results.items()}, evaluations)


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
