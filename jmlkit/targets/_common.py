"""The soft target type, the builders' tensor contracts and shared helpers."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from jmlkit._checks import check_int, check_real, check_type

#: ``spread`` of :func:`boundary_label_smoothing`: :math:`\varepsilon` shared by all ``C`` classes.
SPREAD_UNIFORM = "uniform"
#: ``spread`` of :func:`boundary_label_smoothing`: :math:`\varepsilon` shared by the classes in the window.
SPREAD_NEIGHBOURHOOD = "neighbourhood"
_SPREADS = (SPREAD_UNIFORM, SPREAD_NEIGHBOURHOOD)
#: ``near_ignore`` of :func:`boundary_label_smoothing`: a pixel whose window touches an ignored pixel stays
#: one-hot (the authors' reference definition, the default).
NEAR_IGNORE_KEEP = "keep"
#: ``near_ignore`` of :func:`boundary_label_smoothing`: ignored pixels are no class and do not stop smoothing;
#: a pixel is smoothed when its window holds another valid class (the old default of jmlkit).
NEAR_IGNORE_SMOOTH = "smooth"
_NEAR_IGNORES = (NEAR_IGNORE_KEEP, NEAR_IGNORE_SMOOTH)


class SoftTarget(NamedTuple):
    """A soft target and the pixels it is valid on.

    Attributes:
        soft: float ``(B, C, *spatial)``; a probability vector over ``dim=1`` where ``mask`` is True.
        mask: bool ``(B, *spatial)``; True where the pixel counts.
    """

    soft: Tensor
    mask: Tensor

    def to(self, *args, **kwargs) -> SoftTarget:
        """Move both tensors (``Tensor.to`` arguments); the mask keeps its bool dtype."""
        soft = self.soft.to(*args, **kwargs)
        return SoftTarget(soft, self.mask.to(device=soft.device))


# --------------------------------------------------------------------------------------------
# checks: the numbers and options through jmlkit._checks; here the dtype, the kernel and the tensors
# (errors name the argument, what was expected and what was given)
# --------------------------------------------------------------------------------------------
_num_classes = functools.partial(check_int, "num_classes", low=1)
_temperature = functools.partial(check_real, "temperature", low=0.0, low_open=True)


def _unit(name: str, value) -> float:
    return check_real(name, value, low=0.0, high=1.0)


def _check_float_dtype(dtype) -> torch.dtype:
    check_type("dtype", dtype, torch.dtype, what="a floating torch.dtype")
    if not dtype.is_floating_point:
        raise ValueError(f"Expected `dtype` to be a floating torch.dtype, but got {dtype!r}.")
    return dtype


def _check_labels(target, name: str, *, min_spatial: int = 1, max_spatial: int | None = None) -> Tensor:
    """Hard labels: an integer tensor ``(B, *spatial)``."""
    if not isinstance(target, Tensor):
        raise TypeError(
            f"Expected `{name}` to be a torch.Tensor of int class indices, but got {type(target).__name__}."
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"Expected `{name}` to hold integer class indices (e.g. torch.int64), but got dtype {target.dtype}. "
            "Soft labels do not need a builder; hard labels must be an integer tensor."
        )
    n_spatial = target.ndim - 1
    if n_spatial < min_spatial or (max_spatial is not None and n_spatial > max_spatial):
        dims = f"{min_spatial} to {max_spatial}" if max_spatial is not None else f"at least {min_spatial}"
        raise ValueError(
            f"Expected `{name}` of shape (B, *spatial) with {dims} spatial dims, "
            f"but got shape {tuple(target.shape)}."
        )
    return target


def _check_label_range(target: Tensor, num_classes: int, ignore_index: int | None, name: str) -> Tensor:
    """Return the valid-pixel mask after checking that labels are classes or ``ignore_index``."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    if target.numel() == 0:
        return valid
    probe = target if ignore_index is None else torch.where(valid, target, torch.zeros_like(target))
    lo, hi = (int(v) for v in torch.aminmax(probe))
    if lo < 0 or hi >= num_classes:
        got = " and ".join(s for s, bad in ((f"min {lo}", lo < 0), (f"max {hi}", hi >= num_classes)) if bad)
        allowed = f"[0, {num_classes - 1}]" + ("" if ignore_index is None else f" or ignore_index={ignore_index}")
        raise ValueError(f"Expected `{name}` values in {allowed}, but got {got}.")
    return valid


def _check_logits(logits, name: str = "teacher_logits") -> Tensor:
    if not isinstance(logits, Tensor):
        raise TypeError(f"Expected `{name}` to be a float torch.Tensor, but got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected `{name}` to be a floating-point tensor of logits, but got dtype {logits.dtype}.")
    if logits.ndim < 3:
        raise ValueError(
            f"Expected `{name}` of shape (B, C, *spatial) with at least 1 spatial dim, "
            f"but got shape {tuple(logits.shape)}."
        )
    if logits.shape[1] < 1:
        raise ValueError(
            f"Expected `{name}` to have at least 1 class along dim 1, but got shape {tuple(logits.shape)}."
        )
    return logits


def _check_paired_labels(target, logits: Tensor, name: str = "target") -> Tensor:
    target = _check_labels(target, name)
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"Expected `{name}` of shape {expected} (B, *spatial of `teacher_logits`), "
            f"but got shape {tuple(target.shape)}."
        )
    if target.device != logits.device:
        raise ValueError(
            f"Expected `{name}` on the device of `teacher_logits` ({logits.device}), but got {target.device}."
        )
    return target


def _check_kernel_size(kernel_size, n_spatial: int) -> tuple[int, ...]:
    sizes = tuple(kernel_size) if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, str) else None
    if sizes is None:
        sizes = (kernel_size,) * n_spatial
    elif len(sizes) != n_spatial:
        raise ValueError(
            f"Expected `kernel_size` to be an int or a sequence of {n_spatial} ints (one per spatial dim), "
            f"but got {kernel_size!r}."
        )
    sizes = tuple(check_int("kernel_size", k) for k in sizes)
    if any(k < 3 or k % 2 == 0 for k in sizes):
        raise ValueError(f"Expected `kernel_size` to be an odd int >= 3, but got {kernel_size!r}.")
    return sizes


# --------------------------------------------------------------------------------------------
# internals
# --------------------------------------------------------------------------------------------


def _scatter_one_hot(target: Tensor, valid: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """``(B, *spatial)`` labels -> ``(B, C, *spatial)`` one-hot, zero where ``valid`` is False."""
    index = torch.where(valid, target, torch.zeros_like(target)).long().unsqueeze(1)
    out = torch.zeros((target.shape[0], num_classes, *target.shape[1:]), dtype=dtype, device=target.device)
    return out.scatter_(1, index, valid.unsqueeze(1).to(dtype))


_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _window_max(x: Tensor, kernel: tuple[int, ...]) -> Tensor:
    """Max over the centred window; the window is cut at the border (no padding value wins)."""
    pool = _MAX_POOL[len(kernel)]
    return pool(x, kernel_size=kernel, stride=1, padding=tuple(k // 2 for k in kernel))


def _boundary_mask(target: Tensor, valid: Tensor, num_classes: int, kernel: tuple[int, ...],
                   near_ignore: str) -> Tensor:
    """Bool ``(B, *spatial)``: the valid pixels boundary label smoothing smooths.

    A valid pixel is a boundary pixel when its window (cut at the border) holds another valid class; with
    ``near_ignore="keep"`` a pixel whose window touches an ignored pixel is not one. Two max-pools of the
    label map (its max and its min over the window, ignored pixels pushed out of the way), plus one of the
    ignore map.
    """
    labels = target.to(torch.float32).unsqueeze(1)  # exact for any realistic number of classes
    keep = valid.unsqueeze(1)
    hi = _window_max(torch.where(keep, labels, torch.full_like(labels, -1.0)), kernel)
    lo = -_window_max(torch.where(keep, -labels, torch.full_like(labels, -float(num_classes))), kernel)
    boundary = (hi != lo).squeeze(1) & valid
    if near_ignore == NEAR_IGNORE_KEEP and not bool(valid.all()):
        touched = _window_max((~valid).unsqueeze(1).to(torch.float32), kernel).squeeze(1) > 0
        boundary &= ~touched
    return boundary


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Softmax in at least float32; cast back at the end."""
    return torch.promote_types(dtype, torch.float32)
