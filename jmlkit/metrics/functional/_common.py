"""Constants, argument checks and tensor contracts shared by the functional metrics."""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_int

#: Target number of fine confidence bins used for the adaptive (equal-mass) ACE.
DEFAULT_FINE_BINS = 10_000
#: Lower clamp of the probability of the true class in the NLL: ``-log(max(p_y, NLL_EPS))``.
NLL_EPS = 1e-12
#: Tolerance of the "probabilities sum to one" check: ``|sum_k p_k - 1| <= SUM_ATOL``.
SUM_ATOL = 1e-3

Region = Literal["all", "boundary", "interior"]
#: Which classes of an image enter its ``_I``/``_C`` means: ``"target"`` (classes of the image's ground truth,
#: Wang et al. NeurIPS 2023; the default) or ``"union"`` (ground truth or prediction: stricter).
Present = Literal["target", "union"]


# --------------------------------------------------------------------------------------
# argument checks (jmlkit._checks) and the metrics' tensor contracts
# --------------------------------------------------------------------------------------
_REGIONS = ("all", "boundary", "interior")
_PRESENTS = ("target", "union")
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
        raise ValueError("Expected `target` of shape (B, *spatial), but got a 0-d tensor.")
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


def check_labels(target: Any, num_classes: int, ignore_index: Optional[int] = None) -> None:
    """Raise unless ``target`` holds integer class indices in ``[0, num_classes)`` (or ``ignore_index``): the check
    that every metric's update runs with ``validate_args=True``, for callers that run it once per batch for
    several metrics built with ``validate_args=False``."""
    _check_target(target, num_classes, ignore_index, True)


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


def _scalar(value: Any, device: Any = None, dtype: torch.dtype = torch.float64) -> Tensor:
    """A 0-d tensor of ``value`` (a number or a 0-d tensor), ``float64`` unless told."""
    if isinstance(value, Tensor):
        return value.detach().to(device=device if device is not None else value.device, dtype=dtype).reshape(())
    return torch.tensor(value, dtype=dtype, device=device)


def _columns(device: Any = None, **columns: Any) -> dict[str, Any]:
    """A table: each numpy column as a tensor on ``device``; tuples (names) kept."""
    return {name: col if isinstance(col, tuple) else torch.from_numpy(np.ascontiguousarray(col)).to(device)
            for name, col in columns.items()}


# --------------------------------------------------------------------------------------
# reductions over the class dimension
# --------------------------------------------------------------------------------------
def class_argmax(scores: Tensor) -> Tensor:
    """``scores.argmax(dim=1)`` (the first maximal class; NaN counts as the largest) of ``(B, C, *spatial)`` scores.

    torch's ``argmax`` over a dimension that is not the last is slow on a CPU (2.2 ms for 64 x 11 x 16 x 16 scores,
    against 0.014 ms for ``amax``): the maximal classes are marked (``scores == amax``) and weighted ``C - c``, so
    that the largest weight among them, another ``amax``, is the first one's (one byte per score while ``C`` < 256;
    3x faster than a loop over the classes at 250 x 11 x 16 x 16). Scores holding NaN go to ``argmax`` itself.
    """
    if scores.ndim < 2 or scores.shape[1] == 0 or scores.numel() == 0 or not scores.is_floating_point():
        return scores.argmax(dim=1)
    top = scores.amax(dim=1, keepdim=True)
    if bool(torch.isnan(top).any()):
        return scores.argmax(dim=1)
    num = scores.shape[1]
    dtype = torch.uint8 if num < 256 else torch.int32
    weight = torch.arange(num, 0, -1, dtype=dtype, device=scores.device).view(1, num, *([1] * (scores.ndim - 2)))
    return num - torch.eq(scores, top).to(dtype).mul_(weight).amax(dim=1).long()


def class_square_sum(p: Tensor) -> Tensor:
    """``(p * p).sum(dim=1)`` of ``(B, C, S)`` values, class by class: neither a ``(B, C, S)`` temporary nor
    ``vector_norm`` over a dimension that is not the last (slow on a CPU)."""
    acc = p[:, 0] * p[:, 0]
    for c in range(1, p.shape[1]):
        acc.addcmul_(p[:, c], p[:, c])
    return acc
