"""Lovász-Softmax loss (Berman, Rannen Triki & Blaschko, CVPR 2018) for hard labels.

The Lovász extension of the Jaccard loss: per class, the pixel errors ``e_i = |[y_i = c] - p_i(c)|`` are sorted
in decreasing order and dotted with the gradient of the Jaccard loss along that order. It is defined for hard labels
only: a soft target raises ``ValueError`` (use :func:`jmlkit.losses.jaccard_metric_loss` for soft labels).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from jmlkit._checks import check_choice, check_ignore_index

from . import _validation as V
from .constants import BINARY_MODE, MULTICLASS_MODE


def _lovasz_grad(gt_sorted: Tensor) -> Tensor:
    """Gradient of the Lovász extension w.r.t. sorted errors (Alg. 1 of Berman et al.)."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def _lovasz_flat(probs: Tensor, labels: Tensor, classes: Any) -> Tensor:
    """probs (P, C) over valid pixels, labels (P,) -> mean over selected classes of the Lovász loss."""
    C = probs.shape[1]
    if probs.numel() == 0:
        return probs.sum() * 0.0
    if classes in ("present", None):
        class_ids = torch.unique(labels).tolist()
    elif classes == "all":
        class_ids = list(range(C))
    else:
        class_ids = [int(c) for c in classes]
    losses = []
    for c in class_ids:
        fg = (labels == c).to(probs.dtype)
        errors = (fg - probs[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, _lovasz_grad(fg[perm])))
    if not losses:
        return probs.sum() * 0.0
    return torch.stack(losses).mean()


def _check_options(mode: Any, classes: Any, ignore_index: Any) -> tuple[str, Any, int | None]:
    """``mode`` (multiclass or binary), ``classes`` (``None`` counts as ``"present"``) and ``ignore_index``."""
    return (check_choice("mode", mode, (MULTICLASS_MODE, BINARY_MODE)), V.check_classes(classes),
            check_ignore_index(ignore_index))


def lovasz_softmax_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                        mode: str = MULTICLASS_MODE, from_logits: bool = True, classes: Any = "present",
                        per_image: bool = False, ignore_index: int | None = None,
                        validate_args: bool = True) -> Tensor:
    """Lovász-Softmax loss on hard labels.

    Args:
        logits: ``(B, C, *spatial)`` scores (``(B, 1, *spatial)`` in binary mode, where the loss is the Lovász
            hinge-free extension on the sigmoid probability).
        target: class indices ``(B, *spatial)``. A float (soft) target raises ``ValueError``.
        mask: optional bool ``(B, *spatial)``, ``False`` pixels left out.
        classes: ``"present"`` (also ``None``), ``"all"`` or a list of class indices.
        per_image: compute the loss per image and average (otherwise over the whole batch).
        ignore_index: class index to leave out.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]], requires_grad=True)
        >>> loss = lovasz_softmax_loss(logits, torch.tensor([[[0, 1]]]))
        >>> round(loss.item(), 4)
        0.0003
        >>> loss.backward()
    """
    mode, classes, ignore_index = _check_options(mode, classes, ignore_index)
    if validate_args:
        V.check_logits(logits, mode)
        if isinstance(target, Tensor) and target.is_floating_point():
            raise ValueError(
                "Expected `target` to hold class indices (an integer tensor) for the Lovász-Softmax loss, "
                f"but got a {target.dtype} (soft) target; the Lovász extension is defined for hard labels only. "
                "Use JaccardMetricLoss for soft labels.")
        V.check_target(target, logits, mode, ignore_index, validate_values=True)
        V.check_mask(mask, logits)
    B, C = logits.shape[:2]
    N = math.prod(logits.shape[2:])  # explicit: reshape(B, C, -1) is ambiguous for an empty batch
    z = logits.reshape(B, C, N).float() if logits.dtype in (torch.float16, torch.bfloat16) else logits.reshape(B, C, N)
    t = target.reshape(B, N).long()
    if mode == BINARY_MODE:
        p1 = torch.sigmoid(z) if from_logits else z
        probs = torch.cat([1 - p1, p1], dim=1)
    else:
        probs = torch.softmax(z, dim=1) if from_logits else z
    valid = torch.ones_like(t, dtype=torch.bool)
    if ignore_index is not None:
        valid &= t != ignore_index
    if mask is not None:
        valid &= mask.reshape(B, N)
    probs = probs.transpose(1, 2)  # (B, N, C)
    if per_image and B == 0:  # an empty batch: zero loss, zero gradient
        return z.sum() * 0.0
    if per_image:
        return torch.stack([_lovasz_flat(probs[b][valid[b]], t[b][valid[b]], classes) for b in range(B)]).mean()
    return _lovasz_flat(probs[valid], t[valid], classes)


class LovaszSoftmaxLoss(nn.Module):
    """Module form of :func:`lovasz_softmax_loss`.

    Example:
        >>> import torch
        >>> LovaszSoftmaxLoss()(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))).shape
        torch.Size([])
    """

    def __init__(self, *, mode: str = MULTICLASS_MODE, from_logits: bool = True, classes: Any = "present",
                 per_image: bool = False, ignore_index: int | None = None, validate_args: bool = True) -> None:
        super().__init__()
        _check_options(mode, classes, ignore_index)  # at construction; the options are kept as given
        self.options = dict(mode=mode, from_logits=from_logits, classes=classes, per_image=per_image,
                            ignore_index=ignore_index, validate_args=validate_args)

    def forward(self, logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return lovasz_softmax_loss(logits, target, mask, **self.options)
