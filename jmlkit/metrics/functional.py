r"""Functional (one-shot) segmentation accuracy and calibration metrics.

Every metric here is computed in two steps, and the streaming classes in
:mod:`jmlkit.metrics` use the same two steps:

1. a *statistics* function turns one batch into small sufficient statistics
   (a confusion matrix, per-image per-class counts, histograms of confidences);
   statistics of several batches (or of several processes) are combined by
   summation or concatenation;
2. a *scores* function turns accumulated statistics into the figures.

Memory is therefore independent of the number of pixels: ``O(C^2)`` for the
confusion matrix, ``O(images x C)`` for the per-image (``_I``) and per-class-over-images
(``_C``) figures, ``O(fine_bins + C x n_bins)`` for the calibration histograms
and ``O(images)`` for the per-image calibration errors.

Shapes
------
``preds``/``probs``: ``(B, C, *spatial)`` float, or for :func:`segmentation_stats`
also class indices ``(B, *spatial)``; ``target``: integer class indices ``(B, *spatial)``,
where ``ignore_index`` marks pixels that are left out of every figure.

References
----------
Wang, Blaschko et al., "Revisiting Evaluation Metrics for Semantic Segmentation:
Optimization and Evaluation of Fine-grained Intersection over Union", NeurIPS 2023
(the ``_D``, ``_I``, ``_C`` variants). Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017 (ECE, MCE). Nixon et al., "Measuring Calibration in Deep
Learning", CVPR-W 2019 (static class-wise SCE, adaptive ACE).
"""
from __future__ import annotations

import math
import warnings
from typing import Literal, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from jmlkit._checks import check_choice, check_ignore_index, check_int, check_real

__all__ = [
    "DEFAULT_FINE_BINS",
    "NLL_EPS",
    "SUM_ATOL",
    "boundary_mask",
    "boundary_distance",
    "region_mask",
    "segmentation_stats",
    "segmentation_scores",
    "segmentation_metrics",
    "calibration_stats",
    "calibration_scores",
    "calibration_metrics",
    "top_label_calibration_error",
    "reliability_table",
    "boundary_distance_stats",
    "boundary_distance_table",
    "calibration_by_boundary_distance",
    "fine_bins_for",
]

#: Target number of fine confidence bins used for the adaptive (equal-mass) ACE.
DEFAULT_FINE_BINS = 10_000
#: Lower clamp of the probability of the true class in the NLL: ``-log(max(p_y, NLL_EPS))``.
NLL_EPS = 1e-12
#: Tolerance of the "probabilities sum to one" check: ``|sum_k p_k - 1| <= SUM_ATOL``.
SUM_ATOL = 1e-3

Region = Literal["all", "boundary", "interior"]
Present = Literal["union", "target"]


# --------------------------------------------------------------------------------------
# argument checks (jmlkit._checks) and the metrics' tensor contracts
# --------------------------------------------------------------------------------------
_REGIONS = ("all", "boundary", "interior")
_PRESENTS = ("union", "target")
_NORMS = ("l1", "l2", "max")


def _check_region(region, boundary_width) -> tuple[str, int]:
    """``(region, boundary_width)`` checked: a region of :data:`Region` and a band half-width >= 1."""
    return check_choice("region", region, _REGIONS), check_int("boundary_width", boundary_width, low=1)


def _check_target(target, num_classes: int, ignore_index: Optional[int], validate: bool) -> None:
    if not isinstance(target, Tensor):
        raise TypeError(f"Expected `target` to be a torch.Tensor, but got {type(target).__name__}.")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(
            f"Expected `target` to hold integer class indices (e.g. torch.int64) of shape (B, *spatial), "
            f"but got dtype {target.dtype}."
        )
    if target.ndim < 1:
        raise ValueError(f"Expected `target` of shape (B, *spatial), but got a 0-d tensor.")
    if validate and target.numel():
        lo, hi = (int(v) for v in torch.aminmax(target))
        if (lo < 0 or hi >= num_classes) and ignore_index is not None:  # look again without the ignored pixels
            lo, hi = (int(v) for v in torch.aminmax(target.masked_fill(target == ignore_index, 0)))
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            extra = "" if ignore_index is None else f" or `ignore_index`={ignore_index}"
            raise ValueError(
                f"Expected `target` values in [0, {num_classes - 1}] (num_classes={num_classes}){extra}, "
                f"but found {bad}."
            )


def _check_probs_shape(name: str, probs, target: Tensor, num_classes: int) -> None:
    if not isinstance(probs, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but got {type(probs).__name__}.")
    if not probs.is_floating_point():
        raise ValueError(f"Expected `{name}` to be a floating-point tensor, but got dtype {probs.dtype}.")
    expected = (target.shape[0], num_classes, *target.shape[1:])
    if tuple(probs.shape) != expected:
        raise ValueError(
            f"Expected `{name}` of shape (B, C, *spatial) = {expected} to match `target` of shape "
            f"{tuple(target.shape)} with num_classes={num_classes}, but got {tuple(probs.shape)}."
        )


def _check_probs_values(probs3: Tensor, valid: Tensor) -> None:
    """probs3 (B, C, S) float32, valid (B, S) bool."""
    if not probs3.numel():
        return
    lo, hi = torch.aminmax(probs3)
    lo, hi = float(lo), float(hi)
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise ValueError(
            f"Expected `probs` to be probabilities in [0, 1] (pass from_logits=True for logits), "
            f"but got values in [{lo:.4g}, {hi:.4g}]."
        )
    lo, hi = (float(v) for v in torch.aminmax(probs3.sum(1)))
    if lo >= 1.0 - SUM_ATOL and hi <= 1.0 + SUM_ATOL:
        return
    dev = (probs3.sum(1) - 1.0).abs().masked_fill_(~valid, 0.0)  # ignored pixels may hold anything
    worst = float(dev.max())
    if worst > SUM_ATOL:
        raise ValueError(
            f"Expected `probs` to sum to 1 over the class dimension (dim 1) within {SUM_ATOL}, "
            f"but found a pixel whose sum is off by {worst:.4g}. Pass from_logits=True for logits."
        )


# --------------------------------------------------------------------------------------
# boundary regions
# --------------------------------------------------------------------------------------
_POOLS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _pool(x: Tensor, width: int) -> Tensor:
    return _POOLS[x.ndim - 2](x, kernel_size=2 * width + 1, stride=1, padding=width)


def _spatial_check(target: Tensor) -> None:
    if target.ndim - 1 not in _POOLS:
        raise ValueError(
            f"Boundary regions need `target` of shape (B, *spatial) with 1 to 3 spatial dims, "
            f"but got shape {tuple(target.shape)}."
        )


def boundary_mask(target: Tensor, width: int = 3) -> Tensor:
    r"""Pixels within Chebyshev distance ``width`` of a label change.

    A pixel is *boundary* when its :math:`(2w+1)^d` window holds more than one label
    value, i.e. some pixel with a different label lies within Chebyshev (chessboard)
    distance :math:`w`. The window is clipped at the image border (the border itself is
    not a label change). ``ignore_index`` values count as a label, so pixels next to an
    ignored band (VOC's 255 outlines) are boundary pixels.

    Args:
        target: integer labels ``(B, *spatial)`` with 1 to 3 spatial dims.
        width: band half-width :math:`w \ge 1` in pixels.

    Returns:
        bool tensor of the shape of ``target``.

    Example:
        >>> t = torch.tensor([[[0, 0, 0, 1, 1, 1]]])
        >>> boundary_mask(t, width=1).int()
        tensor([[[0, 0, 1, 1, 0, 0]]], dtype=torch.int32)
    """
    width = check_int("width", width, low=1)
    _spatial_check(target)
    t = target.unsqueeze(1).to(torch.float32)
    return (_pool(t, width) != -_pool(-t, width)).squeeze(1)


def boundary_distance(target: Tensor, max_distance: int = 10) -> Tensor:
    r"""Chebyshev distance from each pixel to the nearest pixel with a different label.

    Distances are capped: pixels farther than ``max_distance`` (and images with a
    single label) get ``max_distance + 1``. ``d = 1`` is a pixel touching a label change.

    Args:
        target: integer labels ``(B, *spatial)``, 1 to 3 spatial dims.
        max_distance: largest distance resolved.

    Returns:
        int64 tensor of the shape of ``target`` with values in ``[1, max_distance + 1]``.

    Example:
        >>> boundary_distance(torch.tensor([[0, 0, 0, 1, 1]]).unsqueeze(0), max_distance=2)
        tensor([[[3, 2, 1, 1, 2]]])
    """
    max_distance = check_int("max_distance", max_distance, low=1)
    _spatial_check(target)
    t = target.unsqueeze(1).to(torch.float32)
    hi, lo = t, -t
    dist = torch.full(target.shape, max_distance + 1, dtype=torch.int64, device=target.device)
    for d in range(1, max_distance + 1):
        hi, lo = _pool(hi, 1), _pool(lo, 1)  # iterated 3x3 max == (2d+1) window max
        newly = (hi != -lo).squeeze(1) & (dist > d)
        dist.masked_fill_(newly, d)
    return dist


def region_mask(target: Tensor, region: Region = "all", boundary_width: int = 3) -> Optional[Tensor]:
    """Mask of the pixels measured for ``region`` ('all' -> None, 'boundary', 'interior')."""
    region, boundary_width = _check_region(region, boundary_width)
    if region == "all":
        return None
    band = boundary_mask(target, boundary_width)
    return band if region == "boundary" else ~band


# --------------------------------------------------------------------------------------
# segmentation accuracy
# --------------------------------------------------------------------------------------
def _pred_labels(preds: Tensor, target: Tensor, num_classes: int, validate: bool) -> Tensor:
    if not isinstance(preds, Tensor):
        raise TypeError(f"Expected `preds` to be a torch.Tensor, but got {type(preds).__name__}.")
    if preds.ndim == target.ndim + 1:
        _check_probs_shape("preds", preds, target, num_classes)
        return preds.argmax(dim=1)
    if preds.ndim == target.ndim:
        if preds.is_floating_point() or preds.dtype == torch.bool:
            raise ValueError(
                f"Expected `preds` of shape (B, *spatial) to hold integer class indices, but got dtype "
                f"{preds.dtype}; pass scores of shape (B, C, *spatial) instead."
            )
        if preds.shape != target.shape:
            raise ValueError(
                f"Expected `preds` of shape {tuple(target.shape)} (the shape of `target`), "
                f"but got {tuple(preds.shape)}."
            )
        if validate and preds.numel():
            lo, hi = int(preds.min()), int(preds.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"Expected `preds` class indices in [0, {num_classes - 1}], but found {lo if lo < 0 else hi}."
                )
        return preds
    raise ValueError(
        f"Expected `preds` of shape (B, C, *spatial) or (B, *spatial) for `target` of shape "
        f"{tuple(target.shape)}, but got {tuple(preds.shape)}."
    )


def segmentation_stats(
    preds: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    ignore_index: Optional[int] = None,
    validate_args: bool = True,
) -> tuple[Tensor, Tensor]:
    r"""Confusion matrix and per-image per-class counts of one batch.

    Args:
        preds: scores (probabilities or logits) ``(B, C, *spatial)``, or class indices ``(B, *spatial)``.
        target: class indices ``(B, *spatial)``; ``ignore_index`` pixels are left out.
        num_classes: number of classes ``C``.
        ignore_index: label value to leave out.
        validate_args: check shapes, dtypes and value ranges.

    Returns:
        ``(confmat, per_image)``: ``confmat`` int64 ``(C, C)`` with rows = target and
        columns = prediction; ``per_image`` int64 ``(B, 3, C)`` holding, per image and class,
        the true positives, the target pixel count and the predicted pixel count.

    Example:
        >>> cm, per_image = segmentation_stats(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 1, 0]]), 2)
        >>> cm
        tensor([[1, 1],
                [0, 1]])
        >>> per_image[0]
        tensor([[1, 1],
                [2, 1],
                [1, 2]])
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    ignore_index = check_ignore_index(ignore_index)
    _check_target(target, num_classes, ignore_index, validate_args)
    labels = _pred_labels(preds, target, num_classes, validate_args)
    B, C = target.shape[0], num_classes
    t = target.reshape(B, -1).long()
    p = labels.reshape(B, -1).long()
    valid = None if ignore_index is None else t != ignore_index
    dev = target.device
    if B * C * C <= 2**22:
        key = (torch.arange(B, device=dev).unsqueeze(1) * C + t) * C + p
        n = B * C * C
        if valid is not None:
            key = key.masked_fill(~valid, n)
        per = torch.bincount(key.reshape(-1), minlength=n + 1)[:n].view(B, C, C)
        confmat = per.sum(0)
        per_image = torch.stack([per.diagonal(dim1=1, dim2=2), per.sum(2), per.sum(1)], dim=1)
    else:  # large C: avoid a (B, C, C) histogram
        img = torch.arange(B, device=dev).unsqueeze(1) * C
        n = B * C
        k_t, k_p = img + t, img + p
        k_c = (t * C + p).reshape(-1)
        hit = p == t
        if valid is not None:
            k_t, k_p = k_t.masked_fill(~valid, n), k_p.masked_fill(~valid, n)
            k_c = k_c.masked_fill(~valid.reshape(-1), C * C)
            hit = hit & valid
        tp = torch.bincount(k_t.masked_fill(~hit, n).reshape(-1), minlength=n + 1)[:n]
        tc = torch.bincount(k_t.reshape(-1), minlength=n + 1)[:n]
        pc = torch.bincount(k_p.reshape(-1), minlength=n + 1)[:n]
        confmat = torch.bincount(k_c, minlength=C * C + 1)[: C * C].view(C, C)
        per_image = torch.stack([tp.view(B, C), tc.view(B, C), pc.view(B, C)], dim=1)
    return confmat, per_image


def _nanmean(x: Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if x.numel() else float("nan")


def segmentation_scores(
    confmat: Tensor,
    per_image: Tensor,
    *,
    present: Present = "union",
    worst_fraction: float = 0.05,
) -> dict:
    r"""Accuracy figures from accumulated :func:`segmentation_stats`.

    With :math:`TP, FP, FN` counted over the dataset (``_D``), per image (``_I``) or per
    image then averaged per class (``_C``):

    .. math::
        \mathrm{IoU} = \frac{TP}{TP+FP+FN}, \qquad \mathrm{Dice} = \frac{2\,TP}{2\,TP+FP+FN}.

    * ``Acc`` = :math:`\sum_c TP_c / N`; ``mAcc_D`` = mean over classes of the recall
      :math:`TP_c / (TP_c + FN_c)`, over classes present in the target.
    * ``mIoU_D``/``mDice_D``: per-class scores from the dataset confusion matrix,
      averaged over the classes that occur (``TP+FP+FN > 0``: in the target or the prediction).
      ``IoU_per_class``/``Dice_per_class`` hold NaN for classes that never occur.
    * ``mIoU_I``/``mDice_I``: per image, average over the classes *present* in that image,
      then average over images. ``mIoU_C``/``mDice_C``: per class, average over the images
      in which it is *present*, then average over classes. ``present="union"`` (default)
      means in the target or the prediction (a false-positive class scores 0), ``"target"``
      means in the target only (Wang et al.).
    * ``mIoU_I_worst5``: mean of the per-image mIoU over the worst ``ceil(5 %)`` of images
      (at least one image).

    Edge cases: an image whose pixels are all ignored (or that has no present class) is
    left out of the ``_I`` and worst-case figures and of ``n_images``; classes that never
    occur are left out of the means. When there is no valid pixel at all every figure is
    NaN (with a ``UserWarning``), since there is nothing to measure.

    Example:
        >>> cm, per = segmentation_stats(torch.tensor([[0, 1, 1, 1]]), torch.tensor([[0, 1, 0, 1]]), 2)
        >>> s = segmentation_scores(cm, per)
        >>> s["Acc"], s["mIoU_D"], s["mDice_D"]
        (0.75, 0.58333..., 0.73333...)
    """
    present = check_choice("present", present, _PRESENTS)
    worst_fraction = check_real("worst_fraction", worst_fraction, low=0.0, high=1.0, low_open=True)
    cm = confmat.double()
    tp = cm.diagonal()
    t_count, p_count = cm.sum(1), cm.sum(0)
    total = float(cm.sum())
    union = t_count + p_count - tp
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=cm.device)
    iou_c = torch.where(union > 0, tp / union.clamp(min=1), nan)
    dice_c = torch.where(union > 0, 2 * tp / (t_count + p_count).clamp(min=1), nan)
    acc_c = torch.where(t_count > 0, tp / t_count.clamp(min=1), nan)
    out: dict = {}
    if total == 0:
        warnings.warn("SegmentationMetrics: no valid pixel was seen; every figure is NaN.", UserWarning, stacklevel=2)
    out["Acc"] = float(tp.sum() / total) if total > 0 else float("nan")
    out["mAcc_D"] = _nanmean(acc_c)
    out["mIoU_D"] = _nanmean(iou_c)
    out["mDice_D"] = _nanmean(dice_c)

    per = per_image.double()
    i_tp, i_t, i_p = per[:, 0], per[:, 1], per[:, 2]
    i_union = i_t + i_p - i_tp
    pres = (i_union > 0) if present == "union" else (i_t > 0)
    i_iou = torch.where(pres, i_tp / i_union.clamp(min=1), nan)
    i_dice = torch.where(pres, 2 * i_tp / (i_t + i_p).clamp(min=1), nan)
    n_pres = pres.sum(1)
    img_ok = (n_pres > 0) & (i_t.sum(1) > 0)
    img_iou = torch.where(img_ok, torch.nansum(i_iou, 1) / n_pres.clamp(min=1), nan)
    img_dice = torch.where(img_ok, torch.nansum(i_dice, 1) / n_pres.clamp(min=1), nan)
    out["mIoU_I"] = _nanmean(img_iou)
    out["mDice_I"] = _nanmean(img_dice)
    i_iou_c = i_iou.masked_fill(~img_ok.unsqueeze(1), float("nan"))
    i_dice_c = i_dice.masked_fill(~img_ok.unsqueeze(1), float("nan"))
    out["mIoU_C"] = _nanmean(torch.nanmean(i_iou_c, 0)) if i_iou_c.numel() else float("nan")
    out["mDice_C"] = _nanmean(torch.nanmean(i_dice_c, 0)) if i_dice_c.numel() else float("nan")
    vals = img_iou[img_ok]
    if vals.numel():
        k = max(1, math.ceil(worst_fraction * vals.numel()))
        out["mIoU_I_worst5"] = float(torch.sort(vals).values[:k].mean())
    else:
        out["mIoU_I_worst5"] = float("nan")
    out["n_images"] = int(img_ok.sum())
    out["n_pixels"] = int(total)
    out["IoU_per_class"] = iou_c.float()
    out["Dice_per_class"] = dice_c.float()
    out["Acc_per_class"] = acc_c.float()
    return out


def segmentation_metrics(
    preds: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    ignore_index: Optional[int] = None,
    present: Present = "union",
    validate_args: bool = True,
) -> dict:
    """One-shot :class:`~jmlkit.metrics.SegmentationMetrics` (see :func:`segmentation_scores`).

    Example:
        >>> preds = torch.tensor([[[0, 1], [1, 1]]])
        >>> target = torch.tensor([[[0, 1], [0, 1]]])
        >>> round(segmentation_metrics(preds, target, 2)["mIoU_I"], 4)
        0.5833
    """
    cm, per = segmentation_stats(preds, target, num_classes, ignore_index=ignore_index, validate_args=validate_args)
    return segmentation_scores(cm, per, present=present)


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------
def fine_bins_for(n_bins: int, fine_bins: int = DEFAULT_FINE_BINS) -> int:
    """Number of fine bins actually used: the smallest multiple of ``n_bins`` >= ``fine_bins``."""
    n_bins, fine_bins = check_int("n_bins", n_bins, low=1), check_int("fine_bins", fine_bins, low=1)
    return n_bins * max(1, math.ceil(fine_bins / n_bins))


def _prepare_probs(probs, target, num_classes, ignore_index, from_logits, validate, mask=None):
    """Validate and flatten. Returns probs3 (B, C, S) float32/64, t (B, S) int64, valid (B, S) bool or None.

    ``num_classes`` and ``ignore_index`` are checked by the caller."""
    _check_target(target, num_classes, ignore_index, validate)
    _check_probs_shape("probs", probs, target, num_classes)
    B = target.shape[0]
    if probs.dtype not in (torch.float32, torch.float64):
        probs = probs.float()
    p3 = probs.reshape(B, num_classes, -1)
    if from_logits:
        p3 = p3.softmax(dim=1)
    t = target.reshape(B, -1).long()
    valid = None if ignore_index is None else t != ignore_index
    if mask is not None:
        if mask.shape != target.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"Expected `mask` to be a bool tensor of shape {tuple(target.shape)}, but got "
                f"{mask.dtype} {tuple(mask.shape)}."
            )
        m = mask.reshape(B, -1)
        valid = m if valid is None else valid & m
    if validate and not from_logits:
        _check_probs_values(p3, valid if valid is not None else torch.ones_like(t, dtype=torch.bool))
    return p3, t, valid


def _top_label_correct(p3: Tensor, conf: Tensor, p_y: Tensor, t: Tensor) -> Tensor:
    """``argmax_k p_k == t`` as int64 (B, S), without the slow ``max(dim=1)`` with indices.

    A pixel is correct when its true class attains the maximum ``conf``; where the maximum
    could be tied (``conf <= 0.5 + SUM_ATOL``), ``argmax`` (first maximal index) decides, as in
    ``torch.max``. Only those few pixels are re-examined.
    """
    correct = p_y >= conf
    amb = correct & (conf <= 0.5 + SUM_ATOL)
    if bool(amb.any()):
        b, s = amb.nonzero(as_tuple=True)
        correct[b, s] = p3[b, :, s].argmax(dim=1) == t[b, s]
    return correct.long()


def _top_label_hist(conf: Tensor, correct: Tensor, valid: Optional[Tensor], group: Optional[Tensor],
                    n_groups: int, n_bins: int) -> Tensor:
    """(n_groups, n_bins, 3) float64 histogram [count, sum conf, sum correct] of top-label confidences."""
    n = n_groups * n_bins
    key = (conf * n_bins).long().clamp_(0, n_bins - 1)
    if group is not None:
        key.add_(group * n_bins)
    key = key.mul_(2).add_(correct)  # 2 * bin + correct
    if valid is not None:
        key.masked_fill_(~valid, 2 * n)
    key = key.reshape(-1)
    cc = torch.bincount(key, minlength=2 * n + 1)[: 2 * n].view(n, 2)
    s = torch.bincount(key, weights=conf.reshape(-1).double(), minlength=2 * n + 1)[: 2 * n].view(n, 2).sum(1)
    count = (cc[:, 0] + cc[:, 1]).double()
    return torch.stack([count, s, cc[:, 1].double()], dim=1).view(n_groups, n_bins, 3)


def _ece_from_hist(h: Tensor, norm: str = "l1") -> Tensor:
    """Calibration error per leading index of a (..., n_bins, 3) histogram; 0 where empty."""
    count, s_conf, s_acc = h.unbind(-1)
    n = count.sum(-1)
    gap = (s_acc - s_conf).abs() / count.clamp(min=1)
    w = count / n.clamp(min=1).unsqueeze(-1)
    if norm == "l1":
        return (w * gap).sum(-1)
    if norm == "l2":
        return (w * gap**2).sum(-1).sqrt()
    return gap.amax(-1)


def calibration_stats(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    n_bins: int = 15,
    fine_bins: int = DEFAULT_FINE_BINS,
    ignore_index: Optional[int] = None,
    mask: Optional[Tensor] = None,
    from_logits: bool = False,
    classwise: bool = True,
    scores: bool = True,
    per_image: bool = True,
    validate_args: bool = True,
) -> dict:
    r"""Histogram statistics of one batch for :func:`calibration_scores`.

    Args:
        probs: probabilities ``(B, C, *spatial)`` (logits with ``from_logits=True``).
        target: class indices ``(B, *spatial)``.
        num_classes: ``C``.
        n_bins: equal-width bins of the reported ECE/RMSCE/MCE/SCE.
        fine_bins: resolution of the top-label histogram (rounded up to a multiple of
            ``n_bins``, see :func:`fine_bins_for`); it yields the equal-mass bins of ACE.
        ignore_index: label value left out.
        mask: optional bool ``(B, *spatial)``, True = measured (e.g. a boundary band).
        from_logits: apply a softmax over dim 1 first.
        classwise: also build the class-wise histogram (SCE); costs a pass over ``B x C x pixels``.
        scores: also accumulate the Brier score and the NLL.
        per_image: also compute per-image ECE (and SCE) values.
        validate_args: check shapes, dtypes, ranges and that probabilities sum to one.

    Returns:
        dict of float64 tensors:

        * ``"top"`` ``(fine, 3)``: [count, sum of confidence, number correct] per fine bin;
        * ``"classwise"`` ``(C, n_bins, 2)``: [sum of :math:`p_k`, number with :math:`y = k`]
          over the pixels whose :math:`p_k` falls in the bin;
        * ``"scores"`` ``(3,)``: [pixels, sum of Brier, sum of NLL];
        * ``"image"`` ``(B, 3)``: [valid pixels, ECE, SCE] per image.

    A pixel is correct when the argmax of its probabilities is its label (ties go to the
    lowest class index, as ``torch.argmax``). Cost: a few passes over the ``B x C x pixels``
    probabilities (range and sum checks, max, and with ``classwise`` the class-wise binning);
    everything else is per pixel. Sums are accumulated in float64.
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    n_bins = check_int("n_bins", n_bins, low=1)
    fine_bins = check_int("fine_bins", fine_bins, low=1)
    ignore_index = check_ignore_index(ignore_index)
    p3, t, valid = _prepare_probs(probs, target, num_classes, ignore_index, from_logits, validate_args, mask)
    B, C, S = p3.shape
    fb = fine_bins_for(n_bins, fine_bins)
    k = fb // n_bins
    dev = p3.device
    conf = p3.amax(dim=1)
    t_safe = t if valid is None else t.masked_fill(~valid, 0)
    p_y = p3.gather(1, t_safe.unsqueeze(1)).squeeze(1)
    correct = _top_label_correct(p3, conf, p_y, t_safe)
    out: dict = {}
    if per_image:
        img = torch.arange(B, device=dev).unsqueeze(1).expand(B, S)
        h = _top_label_hist(conf, correct, valid, img, B, fb)  # (B, fb, 3)
        out["top"] = h.sum(0)
        ece_i = _ece_from_hist(h.view(B, n_bins, k, 3).sum(2))
        n_i = h[:, :, 0].sum(1)
    else:
        out["top"] = _top_label_hist(conf, correct, valid, None, 1, fb)[0]
    if classwise:
        # Only the signed residual per (class, bin) is needed:
        # (|B|/N) |mean(y) - mean(p)| = |sum(y) - sum(p)| / N.
        nc = C * n_bins
        cls_off = (torch.arange(C, device=dev) * n_bins).view(C, 1)
        y_key = (t_safe * n_bins + (p_y * n_bins).long().clamp_(0, n_bins - 1)).add_(
            torch.arange(B, device=dev).unsqueeze(1) * nc
        )
        if valid is not None:
            y_key.masked_fill_(~valid, B * nc)
        s_y = torch.bincount(y_key.reshape(-1), minlength=B * nc + 1)[: B * nc].view(B, nc).double()
        s_p = torch.zeros(B, nc + 1, dtype=torch.float64, device=dev)
        for b in range(B):  # a loop over images keeps the (C x pixels) temporaries small
            pb = p3[b]
            key = (pb * n_bins).long().clamp_(0, n_bins - 1).add_(cls_off)
            if valid is not None:
                key.masked_fill_(~valid[b].unsqueeze(0), nc)
            s_p[b].index_add_(0, key.reshape(-1), pb.reshape(-1).double())
        cw = torch.stack([s_p[:, :nc], s_y], dim=-1).view(B, C, n_bins, 2)
        out["classwise"] = cw.sum(0)
        if per_image:
            sce_i = (cw[..., 1] - cw[..., 0]).abs().sum(-1).mean(-1) / n_i.clamp(min=1)
    if scores:
        sq = torch.linalg.vector_norm(p3, dim=1).double().square_()  # sum_k p_k^2 without a (C x pixels) temporary
        brier = sq - 2 * p_y.double() + 1.0
        nll = -torch.log(p_y.double().clamp(min=NLL_EPS))
        if valid is not None:
            brier, nll = brier.masked_fill_(~valid, 0.0), nll.masked_fill_(~valid, 0.0)
            n = valid.sum().double()
        else:
            n = torch.tensor(float(t.numel()), dtype=torch.float64, device=dev)
        out["scores"] = torch.stack([n, brier.sum(), nll.sum()])
    if per_image:
        sce_col = sce_i if classwise else torch.zeros_like(ece_i)
        out["image"] = torch.stack([n_i, ece_i, sce_col], dim=1)
    return out


def _ace_from_fine(top: Tensor, n_bins: int) -> tuple[float, float]:
    """Adaptive calibration error with equal-mass bins from a fine histogram, and its error bound."""
    count, s_conf, s_acc = top.double().unbind(-1)
    total = float(count.sum())
    if total == 0:
        return float("nan"), float("nan")
    zero = torch.zeros(1, dtype=torch.float64, device=top.device)
    cum = [torch.cat([zero, x.cumsum(0)]) for x in (count, s_conf, s_acc)]
    cuts = torch.linspace(0.0, total, n_bins + 1, dtype=torch.float64, device=top.device)
    # fine bin j covers cumulative counts (cum_n[j], cum_n[j+1]]; split it linearly at each cut
    j = torch.searchsorted(cum[0], cuts, right=False).clamp_(1, count.numel()) - 1
    frac = ((cuts - cum[0][j]) / count[j].clamp(min=1e-300)).clamp_(0, 1)
    at = [c[j] + frac * x[j] for c, x in zip(cum, (count, s_conf, s_acc))]
    d_conf, d_acc = at[1].diff(), at[2].diff()
    ace = float((d_acc - d_conf).abs().sum() / total)
    split = j[1:-1][(frac[1:-1] > 0) & (frac[1:-1] < 1)]  # one entry per cut that splits a fine bin
    bound = float(2 * count[split].sum() / total)
    return ace, bound


def reliability_table(top: Tensor, n_bins: int) -> pd.DataFrame:
    """Reliability-diagram table from a (fine, 3) or (n_bins, 3) top-label histogram.

    Columns: ``bin``, ``lower``, ``upper``, ``count``, ``fraction``, ``confidence`` (mean),
    ``accuracy``, ``gap`` (= accuracy - confidence). Empty bins have ``count`` 0 and NaN
    confidence, accuracy and gap.
    """
    n_bins = check_int("n_bins", n_bins, low=1)
    h = top.double().cpu().view(n_bins, -1, 3).sum(1)
    count, s_conf, s_acc = h.unbind(-1)
    total = float(count.sum())
    c = count.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(c > 0, s_conf.numpy() / c, np.nan)
        acc = np.where(c > 0, s_acc.numpy() / c, np.nan)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": c.astype(np.int64),
            "fraction": c / total if total > 0 else np.zeros(n_bins),
            "confidence": conf,
            "accuracy": acc,
            "gap": acc - conf,
        }
    )


def calibration_scores(
    top: Tensor,
    n_bins: int,
    *,
    classwise: Optional[Tensor] = None,
    scores: Optional[Tensor] = None,
    image: Optional[Tensor] = None,
) -> dict:
    r"""Calibration figures from accumulated :func:`calibration_stats`.

    With top-label confidence :math:`c_i = \max_k p_{ik}`, correctness :math:`a_i`,
    :math:`B_b` the pixels whose confidence falls in bin :math:`[b/M, (b+1)/M)`
    (confidence 1 falls in the last bin) and :math:`N` valid pixels:

    * ``ECE_D`` :math:`= \sum_b \frac{|B_b|}{N} |\bar a_b - \bar c_b|` (L1),
      ``RMSCE_D`` :math:`= \sqrt{\sum_b \frac{|B_b|}{N} (\bar a_b - \bar c_b)^2}` (L2),
      ``MCE_D`` :math:`= \max_{b: |B_b|>0} |\bar a_b - \bar c_b|`.
    * ``ACE_D``: the same L1 sum over :math:`M` equal-mass bins (quantiles of the
      confidence). It is computed from the fine histogram, splitting the fine bin that
      straddles each quantile linearly; ``ACE_D_error_bound`` bounds the difference to
      the exact equal-mass ACE (confidences sorted, cut into :math:`M` chunks of :math:`N/M`):
      :math:`|\Delta| \le 2 \sum_{\text{cuts}} n_{j(\text{cut})} / N`, where :math:`n_{j(\text{cut})}`
      is the count of the fine bin (width :math:`1/\text{fine}`) that a cut splits. Only the
      pixels of that bin can be on the wrong side of the cut, and each changes the sum by
      at most :math:`2/N`. With 10^4 fine bins and smooth confidences the bound is ~1e-3 or less.
    * ``SCE_D``: static class-wise ECE, :math:`\frac1C\sum_k \sum_b \frac{|B_{kb}|}{N}|\bar y_{kb} - \bar p_{kb}|`,
      binning :math:`p_{ik}` of every pixel against :math:`1[y_i = k]`.
    * ``ECE_I``/``SCE_I``: the same per image, averaged over images with a valid pixel.
    * ``Brier`` :math:`= \frac1N \sum_i \sum_k (p_{ik} - 1[y_i=k])^2` (multi-class, in [0, 2],
      the convention of ``sklearn.metrics.brier_score_loss`` for 2-D probabilities);
      ``NLL`` :math:`= -\frac1N \sum_i \log \max(p_{i y_i}, 10^{-12})`.
    * ``Acc`` and ``Confidence``: top-label accuracy and mean confidence; ``n_pixels``.
    * ``reliability``: :func:`reliability_table`.

    Edge cases: confidence 0 and 1 fall in the first and last bin; empty bins do not
    contribute (and are skipped by the max); an image with no valid pixel is left out of
    ``ECE_I``/``SCE_I``. Without any valid pixel all figures are NaN (with a ``UserWarning``).
    """
    n_bins = check_int("n_bins", n_bins, low=1)
    top = top.double()
    total = float(top[:, 0].sum())
    nan = float("nan")
    out: dict = {}
    if total == 0:
        warnings.warn("CalibrationMetrics: no valid pixel was seen; every figure is NaN.", UserWarning, stacklevel=2)
    coarse = top.view(n_bins, -1, 3).sum(1)
    ok = total > 0
    out["ECE_D"] = float(_ece_from_hist(coarse, "l1")) if ok else nan
    out["RMSCE_D"] = float(_ece_from_hist(coarse, "l2")) if ok else nan
    out["MCE_D"] = float(_ece_from_hist(coarse, "max")) if ok else nan
    out["ACE_D"], out["ACE_D_error_bound"] = _ace_from_fine(top, n_bins)
    out["Acc"] = float(top[:, 2].sum() / total) if ok else nan
    out["Confidence"] = float(top[:, 1].sum() / total) if ok else nan
    if classwise is not None:
        cw = classwise.double()
        out["SCE_D"] = float((cw[..., 1] - cw[..., 0]).abs().sum(-1).mean() / total) if ok else nan
    if image is not None:
        image = image.double()
        good = image[:, 0] > 0
        out["ECE_I"] = float(image[good, 1].mean()) if bool(good.any()) else nan
        if classwise is not None:
            out["SCE_I"] = float(image[good, 2].mean()) if bool(good.any()) else nan
        out["n_images"] = int(good.sum())
    if scores is not None:
        n = float(scores[0])
        out["Brier"] = float(scores[1] / n) if n > 0 else nan
        out["NLL"] = float(scores[2] / n) if n > 0 else nan
    out["n_pixels"] = int(total)
    out["reliability"] = reliability_table(top, n_bins)
    return out


def calibration_metrics(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    n_bins: int = 15,
    ignore_index: Optional[int] = None,
    region: Region = "all",
    boundary_width: int = 3,
    from_logits: bool = False,
    fine_bins: int = DEFAULT_FINE_BINS,
    validate_args: bool = True,
) -> dict:
    """One-shot :class:`~jmlkit.metrics.CalibrationMetrics` (figures: :func:`calibration_scores`).

    Example:
        >>> probs = torch.tensor([[[0.9, 0.6], [0.1, 0.4]]])  # (B=1, C=2, 2 pixels)
        >>> target = torch.tensor([[0, 1]])
        >>> m = calibration_metrics(probs, target, 2, n_bins=10)
        >>> round(m["ECE_D"], 4), round(m["Brier"], 4)
        (0.35, 0.37)
    """
    region, boundary_width = _check_region(region, boundary_width)
    mask = region_mask(target, region, boundary_width) if region != "all" else None
    st = calibration_stats(
        probs, target, num_classes, n_bins=n_bins, fine_bins=fine_bins, ignore_index=ignore_index,
        mask=mask, from_logits=from_logits, validate_args=validate_args,
    )
    return calibration_scores(st["top"], n_bins, classwise=st["classwise"], scores=st["scores"], image=st["image"])


def top_label_calibration_error(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    n_bins: int = 15,
    norm: Literal["l1", "l2", "max"] = "l1",
    ignore_index: Optional[int] = None,
    from_logits: bool = False,
    validate_args: bool = True,
) -> float:
    """Top-label ECE (``l1``), RMSCE (``l2``) or MCE (``max``) alone, as a float.

    Example:
        >>> probs = torch.tensor([[[0.9, 0.6], [0.1, 0.4]]])
        >>> top_label_calibration_error(probs, torch.tensor([[0, 1]]), 2, n_bins=10)
        0.35
    """
    norm = check_choice("norm", norm, _NORMS)
    st = calibration_stats(
        probs, target, num_classes, n_bins=n_bins, fine_bins=n_bins, ignore_index=ignore_index,
        from_logits=from_logits, classwise=False, scores=False, per_image=False, validate_args=validate_args,
    )
    if float(st["top"][:, 0].sum()) == 0:
        return float("nan")
    return float(_ece_from_hist(st["top"], norm))


def boundary_distance_stats(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    max_distance: int = 10,
    n_bins: int = 15,
    ignore_index: Optional[int] = None,
    from_logits: bool = False,
    validate_args: bool = True,
) -> Tensor:
    """(max_distance + 1, n_bins, 3) float64 top-label histogram per boundary distance 1..max_distance+1."""
    num_classes = check_int("num_classes", num_classes, low=2)
    n_bins = check_int("n_bins", n_bins, low=1)
    max_distance = check_int("max_distance", max_distance, low=1)
    ignore_index = check_ignore_index(ignore_index)
    p3, t, valid = _prepare_probs(probs, target, num_classes, ignore_index, from_logits, validate_args)
    B = t.shape[0]
    dist = boundary_distance(target, max_distance).reshape(B, -1) - 1
    conf = p3.amax(dim=1)
    t_safe = t if valid is None else t.masked_fill(~valid, 0)
    p_y = p3.gather(1, t_safe.unsqueeze(1)).squeeze(1)
    correct = _top_label_correct(p3, conf, p_y, t_safe)
    return _top_label_hist(conf, correct, valid, dist, max_distance + 1, n_bins)


def boundary_distance_table(hist: Tensor) -> pd.DataFrame:
    """Per-distance calibration table from :func:`boundary_distance_stats` (summed over batches).

    Columns: ``distance`` (1 .. max_distance, and max_distance + 1 = farther), ``count``,
    ``accuracy``, ``confidence``, ``ECE`` (L1, equal-width bins). Distances with no pixel
    have count 0 and NaN elsewhere.
    """
    h = hist.double().cpu()
    count = h[:, :, 0].sum(1)
    c = count.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(c > 0, h[:, :, 2].sum(1).numpy() / c, np.nan)
        conf = np.where(c > 0, h[:, :, 1].sum(1).numpy() / c, np.nan)
        ece = np.where(c > 0, _ece_from_hist(h).numpy(), np.nan)
    return pd.DataFrame(
        {"distance": np.arange(1, h.shape[0] + 1), "count": c.astype(np.int64), "accuracy": acc,
         "confidence": conf, "ECE": ece}
    )


def calibration_by_boundary_distance(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    max_distance: int = 10,
    n_bins: int = 15,
    ignore_index: Optional[int] = None,
    from_logits: bool = False,
    validate_args: bool = True,
) -> pd.DataFrame:
    """Top-label calibration as a function of the distance to the nearest label change.

    Distances are Chebyshev distances (:func:`boundary_distance`), capped at
    ``max_distance + 1``. Returns :func:`boundary_distance_table`. For a whole data set use
    the streaming :class:`~jmlkit.metrics.BoundaryCalibration`.

    Example:
        >>> probs = torch.full((1, 2, 1, 4), 0.5)
        >>> df = calibration_by_boundary_distance(probs, torch.tensor([[[0, 0, 1, 1]]]), 2, max_distance=2)
        >>> df["count"].tolist()
        [2, 2, 0]
    """
    h = boundary_distance_stats(
        probs, target, num_classes, max_distance=max_distance, n_bins=n_bins, ignore_index=ignore_index,
        from_logits=from_logits, validate_args=validate_args,
    )
    return boundary_distance_table(h)
