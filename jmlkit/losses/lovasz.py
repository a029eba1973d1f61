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
from ._functional import _sync_sum, _world_size
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


def _gather_rows(rows: Tensor) -> Tensor:
    """The ``(P, K)`` rows of every process, concatenated in rank order; the gradient flows through this
    process's own rows only (the others arrive detached)."""
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    count = torch.tensor([rows.shape[0]], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    torch.distributed.all_gather(counts, count)
    counts = [int(c) for c in counts]
    padded = rows.new_zeros(max(counts), rows.shape[1])
    padded[:rows.shape[0]] = rows.detach()
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    parts = [p[:c] for p, c in zip(parts, counts)]
    parts[rank] = rows
    return torch.cat(parts)


def _check_options(mode: Any, classes: Any, ignore_index: Any) -> tuple[str, Any, int | None]:
    """``mode`` (multiclass or binary), ``classes`` (``None`` counts as ``"present"``) and ``ignore_index``."""
    return (check_choice("mode", mode, (MULTICLASS_MODE, BINARY_MODE)), V.check_classes(classes),
            check_ignore_index(ignore_index))


def lovasz_softmax_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                        mode: str = MULTICLASS_MODE, from_logits: bool = True, classes: Any = "present",
                        per_image: bool = False, ignore_index: int | None = None, sync_distributed: bool = False,
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
        sync_distributed: under ``torch.distributed``, the loss of the global batch: the valid pixels of every
            process are gathered (the Lovász extension sorts them together; the mean over images pools the
            images with ``per_image``), gradients flow through each process's own pixels and are scaled by the
            world size, so that DDP's gradient average equals the single-process gradient.
        validate_args: check the tensors (shapes, dtypes, values, finite logits).

    Raises:
        ValueError: a float (soft) target, or any target that requires a gradient (none can flow through class
            indices).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]], requires_grad=True)
        >>> loss = lovasz_softmax_loss(logits, torch.tensor([[[0, 1]]]))
        >>> round(loss.item(), 4)
        0.0003
        >>> loss.backward()
    """
    mode, classes, ignore_index = _check_options(mode, classes, ignore_index)
    if isinstance(target, Tensor) and target.requires_grad:  # whatever validate_args: a silent None otherwise
        raise ValueError(
            "Expected `target` without requires_grad for the Lovász-Softmax loss, but got a target that requires "
            "a gradient: the loss reads it as class indices, through which no gradient can flow. Use "
            "JaccardMetricLoss or DiceSemimetricLoss for a learned soft target.")
    if validate_args:
        V.check_logits(logits, mode)
        V.check_finite(logits)
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
    world = _world_size() if sync_distributed else 1
    if per_image:
        num = sum((_lovasz_flat(probs[b][valid[b]], t[b][valid[b]], classes) for b in range(B)), z.sum() * 0.0)
        den = torch.tensor(float(B), dtype=num.dtype, device=num.device)
        if world > 1:
            num, den = _sync_sum(num), _sync_sum(den)
        loss = torch.where(den > 0, num / den.clamp_min(1), num * 0.0)  # an empty batch: 0, zero gradient
    elif world > 1:
        rows = _gather_rows(torch.cat([probs[valid], t[valid].unsqueeze(1).to(probs.dtype)], 1))
        loss = _lovasz_flat(rows[:, :C], rows[:, C].long(), classes)
    else:
        return _lovasz_flat(probs[valid], t[valid], classes)
    if world > 1:  # DDP averages gradients over ranks; the global loss needs their sum (see region_loss)
        loss = loss * world - loss.detach() * (world - 1)
    return loss


class LovaszSoftmaxLoss(nn.Module):
    """Module form of :func:`lovasz_softmax_loss`.

    Example:
        >>> import torch
        >>> LovaszSoftmaxLoss()(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))).shape
        torch.Size([])
    """

    def __init__(self, *, mode: str = MULTICLASS_MODE, from_logits: bool = True, classes: Any = "present",
                 per_image: bool = False, ignore_index: int | None = None, sync_distributed: bool = False,
                 validate_args: bool = True) -> None:
        super().__init__()
        _check_options(mode, classes, ignore_index)  # at construction; the options are kept as given
        self.options = dict(mode=mode, from_logits=from_logits, classes=classes, per_image=per_image,
                            ignore_index=ignore_index, sync_distributed=sync_distributed,
                            validate_args=validate_args)

    def forward(self, logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return lovasz_softmax_loss(logits, target, mask, **self.options)
