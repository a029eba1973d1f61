r"""Segmentation accuracy in two steps: per-batch statistics, then the scores (Acc, mIoU^D/I/C, mDice, ...).

Fine-grained mIoUs (Wang, Berman, Rannen-Triki, Torr, Tuia, Tuytelaars, Van Gool, Yu & Blaschko,
"Revisiting Evaluation Metrics for Semantic Segmentation: Optimization and Evaluation of Fine-grained
Intersection over Union", NeurIPS 2023, arXiv:2310.19252). With :math:`\mathcal{C}_i` the classes that
count in image :math:`i` and :math:`\mathrm{IoU}_{i,c} = TP_{i,c} / (TP_{i,c} + FP_{i,c} + FN_{i,c})`
counted on that image alone:

.. math::
    \mathrm{mIoU}^I = \frac{1}{|I|} \sum_i \frac{1}{|\mathcal{C}_i|} \sum_{c \in \mathcal{C}_i} \mathrm{IoU}_{i,c},
    \qquad
    \mathrm{mIoU}^C = \frac{1}{|C'|} \sum_{c \in C'} \frac{1}{|I_c|} \sum_{i \in I_c} \mathrm{IoU}_{i,c},

where :math:`I_c = \{i : c \in \mathcal{C}_i\}` are the images that hold class :math:`c` and :math:`C'` the
classes held by at least one image. The ``present`` argument chooses :math:`\mathcal{C}_i`:

* ``present="target"`` (**default, Wang et al.**): the classes of image :math:`i`'s *ground truth*
  (:math:`TP_{i,c} + FN_{i,c} > 0`). This is what the authors' reference code does
  (zifuwanggg/JDTLosses at af6c1f6, ``metrics/miouic_metric.py``, ``mIoUICMetric.add``: for more than two classes
  ``classes = all_classes[torch.amax(label_i, dim=1) > 0.5]``, i.e. from the label only, and
  :math:`\mathrm{IoU}_{i,c}` is appended to class :math:`c`'s list only for those classes). A class
  that is *predicted* in an image whose ground truth lacks it (a false-positive class) therefore enters
  neither that image's mean nor class :math:`c`'s list of images. Its pixels still cost: each is a
  false negative of the ground-truth class it covers, lowering that class's :math:`\mathrm{IoU}_{i,c}`, and it
  is a false positive in the dataset-level ``mIoU_D``.
* ``present="union"`` (stricter, not the paper's): the classes of the ground truth *or* the prediction
  (:math:`TP + FP + FN > 0`); a false-positive class counts in the image's mean (and in the class's list)
  with IoU 0.

``mDice_I``/``mDice_C`` use the same :math:`\mathcal{C}_i` with :math:`\mathrm{Dice} = 2TP / (2TP + FP + FN)`,
and the worst-case ``mIoU_I_worst5`` ranks the per-image means of the same choice.

Not reproduced from the reference code: for ``num_classes == 2`` it scores the foreground class alone
(an image whose label and prediction show a single class scores 1); here both classes are averaged like
any other ``C``. And it keeps ``max(1, floor(q n))`` worst images where ``mIoU_I_worst5`` keeps
``max(1, ceil(q n))`` (the same up to 20 images, and whenever ``q n`` is whole).
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_ignore_index, check_int, check_real
from jmlkit.metrics.functional._common import Present, _PRESENTS, _check_probs_shape, _check_target, class_argmax

# --------------------------------------------------------------------------------------
# segmentation accuracy
# --------------------------------------------------------------------------------------
def _pred_labels(preds: Tensor, target: Tensor, num_classes: int, validate: bool) -> Tensor:
    if not isinstance(preds, Tensor):
        raise TypeError(f"Expected `preds` to be a torch.Tensor, but got {type(preds).__name__}.")
    if preds.ndim == target.ndim + 1:
        _check_probs_shape("preds", preds, target, num_classes)
        if validate and preds.numel() and not bool(torch.isfinite(preds).all()):
            bad = "NaN" if bool(torch.isnan(preds).any()) else "an infinite value"
            raise ValueError(f"Expected `preds` to hold finite scores (probabilities or logits), but found {bad}.")
        return class_argmax(preds)
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
    N = math.prod(target.shape[1:])  # explicit: reshape(B, -1) is ambiguous for an empty batch
    t = target.reshape(B, N).long()
    p = labels.reshape(B, N).long()
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


def _nanmean(x: Tensor) -> Tensor:
    """The mean of the non-NaN entries as a 0-d float64 tensor (NaN when there is none)."""
    x = x[~torch.isnan(x)].double()
    return x.mean() if x.numel() else torch.tensor(float("nan"), dtype=torch.float64, device=x.device)


def segmentation_scores(
    confmat: Tensor,
    per_image: Tensor,
    *,
    present: Present = "target",
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
      in which it is *present*, then average over classes (classes present in no image are left out).
    * ``mIoU_I_worst5``: mean of the per-image mIoU (same ``present``) over the worst
      ``ceil(worst_fraction x images)`` images (at least one image).

    Which classes are *present* in an image is ``present``:

    * ``"target"`` (default): the classes of that image's ground truth, as Wang et al. (NeurIPS 2023,
      arXiv:2310.19252) define mIoU^I/mIoU^C and as their reference code computes them (zifuwanggg/JDTLosses,
      ``metrics/miouic_metric.py``). A class predicted in an image whose ground truth lacks it enters no
      mean for that image, nor the list of images of that class; its pixels still lower the IoU of the
      ground-truth classes they cover (as false negatives) and count in ``mIoU_D``.
    * ``"union"``: the classes of the ground truth or the prediction (stricter): such a false-positive
      class counts with IoU (and Dice) 0 in the image's mean and in that class's mean over images.

    Returns a dict of tensors (the forms of :mod:`jmlkit.metrics.tables`): each figure a 0-d float64 tensor,
    ``n_images`` and ``n_pixels`` 0-d int64, ``IoU_per_class``/``Dice_per_class``/``Acc_per_class`` 1-d float32.

    ``_D`` figures, ``Acc`` and the per-class vectors do not depend on ``present``. See the module
    docstring for the formulas and the reference code's binary (``C = 2``) special case, not reproduced here.

    Args:
        confmat: ``(C, C)`` confusion matrix (rows = target) from :func:`segmentation_stats`, summed over batches.
        per_image: ``(images, 3, C)`` per-image counts from :func:`segmentation_stats`, concatenated over batches.
        present: ``"target"`` (default, Wang et al.) or ``"union"``, see above.
        worst_fraction: fraction of images averaged by ``mIoU_I_worst5``, in ``(0, 1]``.

    Edge cases: an image whose pixels are all ignored (or that has no present class) is
    left out of the ``_I`` and worst-case figures and of ``n_images``; classes that never
    occur are left out of the means. When there is no valid pixel at all every figure is
    NaN (with a ``UserWarning``), since there is nothing to measure.

    Example:
        >>> cm, per = segmentation_stats(torch.tensor([[0, 1, 1, 1]]), torch.tensor([[0, 1, 0, 1]]), 2)
        >>> s = segmentation_scores(cm, per)
        >>> s["Acc"], s["mIoU_D"], s["mDice_D"]
        (tensor(0.7500, dtype=torch.float64), tensor(0.5833, dtype=torch.float64), tensor(0.7333, dtype=torch.float64))
        >>> s["n_pixels"], s["IoU_per_class"]
        (tensor(4), tensor([0.5000, 0.6667]))
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
    out["Acc"] = tp.sum() / total if total > 0 else nan.clone()
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
    out["mIoU_C"] = _nanmean(torch.nanmean(i_iou_c, 0)) if i_iou_c.numel() else nan.clone()
    out["mDice_C"] = _nanmean(torch.nanmean(i_dice_c, 0)) if i_dice_c.numel() else nan.clone()
    vals = img_iou[img_ok]
    if vals.numel():
        k = max(1, math.ceil(worst_fraction * vals.numel()))
        out["mIoU_I_worst5"] = torch.sort(vals).values[:k].mean()
    else:
        out["mIoU_I_worst5"] = nan.clone()
    out["n_images"] = img_ok.sum().to(torch.int64)
    out["n_pixels"] = torch.tensor(int(total), dtype=torch.int64, device=cm.device)
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
    present: Present = "target",
    validate_args: bool = True,
) -> dict:
    """One-shot :class:`~jmlkit.metrics.SegmentationMetrics` (see :func:`segmentation_scores`).

    ``present="target"`` (default) gives Wang et al.'s mIoU^I/mIoU^C (an image averages the classes of its
    ground truth); ``present="union"`` also counts, with IoU 0, a class predicted but absent from the ground truth.

    Example:
        >>> preds = torch.tensor([[[0, 1], [1, 1]]])
        >>> target = torch.tensor([[[0, 1], [0, 1]]])
        >>> segmentation_metrics(preds, target, 2)["mIoU_I"].item()
        0.5833333333333333
    """
    cm, per = segmentation_stats(preds, target, num_classes, ignore_index=ignore_index, validate_args=validate_args)
    return segmentation_scores(cm, per, present=present)
