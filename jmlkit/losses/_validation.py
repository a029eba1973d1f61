"""Argument and tensor checks for the losses: errors that name the argument, what was expected and what was given."""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .constants import AGGREGATIONS, MODES, MULTICLASS_MODE


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"Expected argument `{name}` to be one of {tuple(choices)}, but got {value!r}.")


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected argument `{name}` to be a number, but got {type(value).__name__} {value!r}.")
    bad = (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high)
    if bad or value != value:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        bracket = "(" if low_open else "["
        raise ValueError(f"Expected argument `{name}` in {bracket}{lo}, {hi}], but got {value!r}.")
    return float(value)


def check_options(*, mode: str, classes: Any, aggregate: Any, smooth: float, gamma: float,
                  threshold: float, class_weights: Any, ignore_index: Any) -> None:
    check_choice("mode", mode, MODES)
    if not (classes is None or classes in ("present", "all") or _is_index_list(classes)):
        raise ValueError(
            "Expected argument `classes` to be 'present', 'all', None or a list of class indices, "
            f"but got {classes!r}.")
    normalise_aggregate(aggregate)
    check_number("smooth", smooth, low=0.0)
    check_number("gamma", gamma, low=0.0, low_open=True)
    check_number("threshold", threshold, low=0.0, high=1.0)
    if class_weights is not None and not isinstance(class_weights, (torch.Tensor, Sequence)):
        raise TypeError(
            f"Expected argument `class_weights` to be a sequence or tensor of C weights, but got {type(class_weights).__name__}.")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"Expected argument `ignore_index` to be an int or None, but got {ignore_index!r}.")


def _is_index_list(classes: Any) -> bool:
    if isinstance(classes, torch.Tensor):
        return classes.dtype in (torch.int64, torch.int32) and classes.ndim == 1
    return isinstance(classes, Sequence) and not isinstance(classes, str) and len(classes) > 0 and all(
        isinstance(c, int) and not isinstance(c, bool) for c in classes)


def normalise_aggregate(aggregate: Any) -> dict[str, float]:
    """``"batch"`` -> ``{"batch": 1.0}``; a mapping is checked and returned as a dict of floats."""
    if isinstance(aggregate, str):
        check_choice("aggregate", aggregate, AGGREGATIONS)
        return {aggregate: 1.0}
    if isinstance(aggregate, Mapping) and aggregate:
        out = {}
        for key, weight in aggregate.items():
            check_choice("aggregate", key, AGGREGATIONS)
            out[key] = check_number(f"aggregate[{key!r}]", weight, low=0.0)
        return out
    raise ValueError(
        f"Expected argument `aggregate` to be one of {AGGREGATIONS} or a non-empty mapping of them to weights, "
        f"but got {aggregate!r}.")


def check_logits(logits: Any, mode: str) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"Expected argument `logits` to be a torch.Tensor, but got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected argument `logits` to be a floating-point tensor, but got dtype {logits.dtype}.")
    if logits.ndim < 2:
        raise ValueError(
            f"Expected argument `logits` of shape (B, C, *spatial), but got shape {tuple(logits.shape)}.")
    if mode == "binary" and logits.shape[1] != 1:
        raise ValueError(
            f"Expected argument `logits` of shape (B, 1, *spatial) in binary mode, but got {tuple(logits.shape)}.")
    if mode == MULTICLASS_MODE and logits.shape[1] < 2:
        raise ValueError(
            "Expected argument `logits` with C >= 2 channels in multiclass mode (use mode='binary' for one channel), "
            f"but got shape {tuple(logits.shape)}.")


def check_target(target: Any, logits: torch.Tensor, mode: str, ignore_index: int | None, *,
                 validate_values: bool, sum_tol: float = 1e-3, fused: bool = False,
                 mask: torch.Tensor | None = None) -> None:
    """Shape, dtype and (when ``validate_values``) value checks of a hard or soft target."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"Expected argument `target` to be a torch.Tensor, but got {type(target).__name__}.")
    shape = tuple(logits.shape)
    hard_shape = (shape[0],) + shape[2:]
    if target.dtype == torch.bool or not target.is_floating_point():
        if target.is_complex():
            raise TypeError(f"Expected argument `target` to be an integer or float tensor, but got {target.dtype}.")
        ok_shapes = [hard_shape] if mode == MULTICLASS_MODE else [hard_shape, shape]
        if mode == "multilabel":
            ok_shapes = [shape]
        if tuple(target.shape) not in ok_shapes:
            raise ValueError(
                f"Expected argument `target` (class indices) of shape {' or '.join(map(str, ok_shapes))} "
                f"for logits of shape {shape}, but got {tuple(target.shape)}.")
        if validate_values and target.numel():
            high = shape[1] - 1 if mode == MULTICLASS_MODE else 1
            valid = target if ignore_index is None else target[target != ignore_index]
            if valid.numel():
                lo, hi = int(valid.min()), int(valid.max())
                if lo < 0 or hi > high:
                    extra = "" if ignore_index is None else f" or ignore_index={ignore_index}"
                    raise ValueError(
                        f"Expected argument `target` values in [0, {high}]{extra}, but got values in [{lo}, {hi}].")
        return
    ok_shapes = [shape] if mode != "binary" else [shape, hard_shape]
    if tuple(target.shape) not in ok_shapes:
        raise ValueError(
            f"Expected argument `target` (probabilities) of shape {shape} like the logits, but got {tuple(target.shape)}.")
    if validate_values and target.numel():
        lo, hi, err = soft_target_summary(target.detach(), mask, multiclass=mode == MULTICLASS_MODE, fused=fused)
        if not (lo >= 0 and hi <= 1):
            raise ValueError(
                f"Expected argument `target` (soft labels) with values in [0, 1], but got values in "
                f"[{float(lo):.4g}, {float(hi):.4g}].")
        if err > sum_tol:
            raise ValueError(
                "Expected argument `target` (soft labels, multiclass) to sum to 1 over the class dimension 1, "
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
        raise TypeError(f"Expected argument `mask` to be a bool tensor (True = pixel counts), but got {got}.")
    expected = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(mask.shape) != expected:
        raise ValueError(f"Expected argument `mask` of shape {expected}, but got {tuple(mask.shape)}.")
