"""The losses' own contracts, built on :mod:`jmlkit._checks`: their options (``classes``, ``aggregate``, the
numbers of a region loss) and their tensors (logits, targets, masks). Errors name the argument, what was expected
and what was given; a wrong type is a :class:`TypeError`, a wrong value a :class:`ValueError`."""
from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from jmlkit._checks import check_choice, check_ignore_index, check_int, check_int_list, check_real, check_type

from .constants import AGGREGATIONS, MODES, MULTICLASS_MODE

_CLASSES_TEXT = "'present', 'all', None or a list of class indices"


# --------------------------------------------------------------------------------------------- options
def check_classes(classes: Any) -> Any:
    """``"present"``, ``"all"``, ``None`` or class indices: a non-empty sequence of ints ``>= 0`` (returned as a
    list of python ints) or a 1-d integer tensor (returned as it is)."""
    if classes is None:
        return None
    if isinstance(classes, str):
        return check_choice("classes", classes, ("present", "all"))
    if isinstance(classes, torch.Tensor):
        if classes.is_floating_point() or classes.is_complex() or classes.dtype == torch.bool:
            raise TypeError(f"Expected `classes` to be {_CLASSES_TEXT}, but got a tensor of dtype {classes.dtype}.")
        if classes.ndim != 1:
            raise ValueError(f"Expected `classes` as a 1-d tensor of class indices, but got shape {tuple(classes.shape)}.")
        if classes.numel() == 0:  # no class would enter the loss: a silent 0
            raise ValueError("Expected `classes` to hold at least one class index, but got an empty tensor.")
        return classes
    check_type("classes", classes, (Sequence, np.ndarray), what=_CLASSES_TEXT)
    return check_int_list("classes", classes, low=0)


def normalise_aggregate(aggregate: Any) -> dict[str, float]:
    """``"batch"`` -> ``{"batch": 1.0}``; a mapping is checked and returned as a dict of floats."""
    check_type("aggregate", aggregate, (str, Mapping), what=f"one of {AGGREGATIONS} or a mapping of them to weights")
    if isinstance(aggregate, str):
        return {check_choice("aggregate", aggregate, AGGREGATIONS): 1.0}
    if not aggregate:
        raise ValueError(f"Expected `aggregate` to be a non-empty mapping of {AGGREGATIONS} to weights, but got {{}}.")
    return {check_choice("aggregate", key, AGGREGATIONS): check_real(f"aggregate[{key!r}]", weight, low=0.0)
            for key, weight in aggregate.items()}


#: Tensors of class weights already checked, by identity, with the version counter and storage they had: a loss
#: called every step with the same (e.g. CUDA) weights checks them once, instead of copying them to the host and
#: syncing on every call. (A WeakKeyDictionary would compare tensors with ``==``.)
_CHECKED_WEIGHTS: dict[int, tuple[weakref.ref, int, int]] = {}


def weights_checked(class_weights: Any) -> bool:
    """Whether ``class_weights`` is a tensor that :func:`check_class_weights` passed and that has not changed since
    (same storage, same version counter)."""
    if not isinstance(class_weights, torch.Tensor):
        return False
    entry = _CHECKED_WEIGHTS.get(id(class_weights))
    return entry is not None and entry[0]() is class_weights and entry[1:] == (class_weights._version,
                                                                               class_weights.data_ptr())


def _remember_checked(w: torch.Tensor) -> None:
    key = id(w)
    _CHECKED_WEIGHTS[key] = (weakref.ref(w, lambda _, key=key: _CHECKED_WEIGHTS.pop(key, None)), w._version,
                             w.data_ptr())


def check_class_weights(class_weights: Any) -> Any:
    """``None`` or ``C`` weights (a sequence, array or tensor; their number and sign are checked against ``C``
    where the loss knows it). A tensor is checked once until it changes (see :func:`weights_checked`)."""
    if class_weights is not None and not weights_checked(class_weights):
        check_type("class_weights", class_weights, (torch.Tensor, np.ndarray, Sequence),
                   what="None or a sequence or tensor of C weights")
        if isinstance(class_weights, str):
            raise TypeError(f"Expected `class_weights` to be None or a sequence or tensor of C weights, "
                            f"but got {class_weights!r} (str).")
        try:
            w = torch.as_tensor(class_weights, dtype=torch.float64, device="cpu") if not isinstance(
                class_weights, torch.Tensor) else class_weights.detach().to("cpu", torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"Expected `class_weights` to be a sequence or tensor of C numbers, but got "
                            f"{class_weights!r}.") from None
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"Expected `class_weights` to be a non-empty 1-D sequence of C weights, but got shape "
                             f"{tuple(w.shape)}.")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError(f"Expected `class_weights` to be finite and non-negative, but got {w.tolist()}.")
        if not bool((w > 0).any()):
            raise ValueError(f"Expected `class_weights` to have a positive weight, but got {w.tolist()} "
                             "(every class would be left out of the loss).")
        if isinstance(class_weights, torch.Tensor) and not class_weights.requires_grad:
            _remember_checked(class_weights)
    return class_weights


def check_options(*, mode: Any, classes: Any, aggregate: Any, smooth: Any, gamma: Any, threshold: Any,
                  class_weights: Any, ignore_index: Any) -> dict[str, Any]:
    """The options shared by the region losses, checked and in plain python types (``aggregate`` as a dict)."""
    return dict(
        mode=check_choice("mode", mode, MODES),
        classes=check_classes(classes),
        aggregate=normalise_aggregate(aggregate),
        smooth=check_real("smooth", smooth, low=0.0),
        gamma=check_real("gamma", gamma, low=0.0, low_open=True),
        threshold=check_real("threshold", threshold, low=0.0, high=1.0),
        class_weights=check_class_weights(class_weights),
        ignore_index=check_ignore_index(ignore_index),
    )


def check_variant(variant: Any) -> int:
    """The variant of the Jaccard metric loss: 1 or 2."""
    return check_choice("variant", check_int("variant", variant), (1, 2))


# --------------------------------------------------------------------------------------------- tensors
def check_logits(logits: Any, mode: str, name: str = "logits") -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected `{name}` to be a floating-point tensor, but got dtype {logits.dtype}.")
    if logits.ndim < 2:
        raise ValueError(f"Expected `{name}` of shape (B, C, *spatial), but got shape {tuple(logits.shape)}.")
    if mode == "binary" and logits.shape[1] != 1:
        raise ValueError(f"Expected `{name}` of shape (B, 1, *spatial) in binary mode, but got {tuple(logits.shape)}.")
    if mode == MULTICLASS_MODE and logits.shape[1] < 2:
        raise ValueError(
            f"Expected `{name}` with C >= 2 channels in multiclass mode (use mode='binary' for one channel), "
            f"but got shape {tuple(logits.shape)}.")


def check_finite(logits: torch.Tensor, name: str = "logits") -> None:
    """Raise where ``logits`` hold NaN or Inf (either sign). One sum over the tensor decides in the usual case;
    only a non-finite sum (NaN, Inf or an overflow of large finite values) is checked element by element."""
    total = logits.sum(dtype=torch.float64 if logits.dtype == torch.float64 else torch.float32)
    if not bool(torch.isfinite(total)) and not bool(torch.isfinite(logits).all()):
        raise ValueError(f"Expected `{name}` to be finite, but it holds NaN or Inf values.")


def check_target(target: Any, logits: torch.Tensor, mode: str, ignore_index: int | None, *,
                 validate_values: bool, sum_tol: float = 1e-3, fused: bool = False,
                 mask: torch.Tensor | None = None) -> None:
    """Shape, dtype and (when ``validate_values``) value checks of a hard or soft target."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"Expected `target` to be a torch.Tensor, but got {type(target).__name__}.")
    shape = tuple(logits.shape)
    hard_shape = (shape[0],) + shape[2:]
    if target.dtype == torch.bool and mode == MULTICLASS_MODE:
        raise TypeError(
            "Expected `target` to hold integer class indices or float probabilities in multiclass mode, but got a "
            "bool tensor: use target.long() for the classes 0 and 1, or mode='binary' or 'multilabel', where a bool "
            "target is a foreground mask.")
    if target.dtype == torch.bool or not target.is_floating_point():
        if target.is_complex():
            raise TypeError(f"Expected `target` to be an integer or float tensor, but got {target.dtype}.")
        ok_shapes = [hard_shape] if mode == MULTICLASS_MODE else [hard_shape, shape]
        if mode == "multilabel":
            ok_shapes = [shape]
        if tuple(target.shape) not in ok_shapes:
            raise ValueError(
                f"Expected `target` (class indices) of shape {' or '.join(map(str, ok_shapes))} "
                f"for logits of shape {shape}, but got {tuple(target.shape)}.")
        if validate_values and target.numel():
            high = shape[1] - 1 if mode == MULTICLASS_MODE else 1
            valid = target if ignore_index is None else target[target != ignore_index]
            if valid.numel():
                lo, hi = int(valid.min()), int(valid.max())
                if lo < 0 or hi > high:
                    extra = "" if ignore_index is None else f" or ignore_index={ignore_index}"
                    raise ValueError(
                        f"Expected `target` values in [0, {high}]{extra}, but got values in [{lo}, {hi}].")
        return
    ok_shapes = [shape] if mode != "binary" else [shape, hard_shape]
    if tuple(target.shape) not in ok_shapes:
        raise ValueError(
            f"Expected `target` (probabilities) of shape {shape} like the logits, but got {tuple(target.shape)}.")
    if validate_values and target.numel():
        lo, hi, err = soft_target_summary(target.detach(), mask, multiclass=mode == MULTICLASS_MODE, fused=fused)
        if not (lo >= 0 and hi <= 1):
            raise ValueError(
                f"Expected `target` (soft labels) with values in [0, 1], but got values in "
                f"[{float(lo):.4g}, {float(hi):.4g}].")
        if err > sum_tol:
            raise ValueError(
                "Expected `target` (soft labels, multiclass) to sum to 1 over the class dimension 1, "
                f"but a pixel's sum is off by {float(err):.4g} (tolerance {sum_tol}).")


def _soft_target_summary(y: torch.Tensor, mask: torch.Tensor | None,
                         multiclass: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(min, max, largest |sum over classes - 1| over the pixels that count) of a soft target; the last is 0
    unless ``multiclass``. Pixels outside ``mask`` may hold anything in [0, 1] (e.g. the zeros of
    :mod:`jmlkit.targets` at ignored pixels)."""
    lo, hi = torch.aminmax(y)
    if not multiclass:
        return lo, hi, y.new_zeros((), dtype=torch.float32)
    off = (y.sum(1, dtype=torch.float32) - 1).abs()
    if mask is not None:
        off = off * mask
    return lo, hi, off.amax()


@functools.lru_cache(maxsize=None)
def _compiled_summary():
    return torch.compile(_soft_target_summary, dynamic=False)


def soft_target_summary(y: torch.Tensor, mask: torch.Tensor | None = None, *, multiclass: bool, fused: bool = False):
    """The numbers the soft-target checks need; ``fused`` reads the target once in a compiled kernel."""
    if mask is not None and tuple(mask.shape) != (y.shape[0],) + tuple(y.shape[2:]):
        mask = None  # a wrong mask is reported by check_mask
    return (_compiled_summary() if fused else _soft_target_summary)(y, mask, multiclass)


def check_mask(mask: Any, logits: torch.Tensor) -> None:
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = type(mask).__name__ if not isinstance(mask, torch.Tensor) else f"dtype {mask.dtype}"
        raise TypeError(f"Expected `mask` to be a bool tensor (True = pixel counts), but got {got}.")
    expected = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(mask.shape) != expected:
        raise ValueError(f"Expected `mask` of shape {expected}, but got {tuple(mask.shape)}.")
