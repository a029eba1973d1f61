"""The shared core of the region losses: per-image, per-class statistics and their aggregation.

Every region loss of jmlkit is a function of four per-(image, class) sums over the valid pixels:

.. math::
    s_x = \\sum_i x_i,\\quad s_y = \\sum_i y_i,\\quad s_{xy} = \\sum_i x_i y_i,\\quad s_d = \\sum_i |x_i - y_i|

where ``x`` are the predicted probabilities and ``y`` the target. The L1 intersection and union of the Jaccard
metric loss are :math:`I = (s_x + s_y - s_d) / 2` and :math:`U = (s_x + s_y + s_d) / 2`.

The statistics are computed by a custom autograd function (its kernels in :mod:`jmlkit.losses._kernels`) that
keeps the probabilities (and, for a soft target, the difference ``x - y``, whose sign is the gradient of
:math:`s_d` and whose memory the backward pass reuses) and writes the gradient with respect to the logits in a few
in-place passes (and with respect to a soft target, only when it requires one: learned soft labels, mutual
learning). With hard targets (class indices) no one-hot tensor is built: :math:`s_y` is a class count,
:math:`s_{xy}` the sum of the probabilities gathered at the target class, and :math:`s_d = s_x + s_y - 2 s_{xy}`
exactly, because ``y`` is 0 or 1.
The formulas on top of the statistics (``(B, C)`` tensors) use ordinary autograd; they cost nothing.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from jmlkit._checks import check_choice, check_ignore_index

from . import _validation as V
from ._kernels import (_compiled, _difference, _fused_soft_forward, _hard_backward, _hard_forward, _soft_backward,
                       _soft_forward, _soft_target_backward)
from .constants import BINARY_MODE, MODES, MULTICLASS_MODE

_EPS = 1e-7
Stats = dict[str, Tensor]


class _HardStats(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, t, m, activation, fused):
        if fused:
            lse, sx, sy, sxy = _compiled("hard_forward")(z, t, m, activation)
            ctx.save_for_backward(z, lse, t, m)
        else:
            x, xt, sx, sy, sxy = _hard_forward(z, t, m, activation)
            ctx.save_for_backward(x, xt, t, m)
        ctx.activation, ctx.fused = activation, fused
        ctx.mark_non_differentiable(sy)
        return sx, sy, sxy

    @staticmethod
    def backward(ctx, g_sx, g_sy, g_sxy):
        first, second, t, m = ctx.saved_tensors
        shape = first.shape[:2]
        a = (g_sx if g_sx is not None else first.new_zeros(shape)).contiguous()
        b = (g_sxy if g_sxy is not None else first.new_zeros(shape)).contiguous()
        if ctx.fused:
            grad = _compiled("hard_backward")(first, second, t, m, a, b, ctx.activation)
        else:
            grad = _hard_backward(first, second, t, m, a, b, ctx.activation)
        return grad, None, None, None, None


class _SoftStats(torch.autograd.Function):
    """Soft-target statistics. The target's gradient (learned soft labels, mutual learning) is computed only when
    the target requires one (``ctx.needs_input_grad``); otherwise ``s_y`` is marked non-differentiable and the
    backward pass writes the logits' gradient alone."""

    @staticmethod
    def forward(ctx, z, y, m, activation, need_sxy, need_sd, fused):
        if fused:
            lse, sx, sy, sxy, sd = _fused_soft_forward(z, y, m, activation, need_sxy, need_sd)
            ctx.save_for_backward(z, lse, y, m)
        else:
            x, d, sx, sy, sxy, sd = _soft_forward(z, y, m, activation, need_sxy, need_sd)
            ctx.save_for_backward(x, None, y, m)
            # kept outside save_for_backward: the backward pass writes the gradient into d's memory and drops it
            ctx.d = d
        ctx.activation, ctx.fused, ctx.need = activation, fused, (need_sxy, need_sd)
        if not ctx.needs_input_grad[1]:
            ctx.mark_non_differentiable(sy)
        return sx, sy, (sxy if need_sxy else sx.new_zeros(())), (sd if need_sd else sx.new_zeros(()))

    @staticmethod
    def backward(ctx, g_sx, g_sy, g_sxy, g_sd):
        first, lse, y, m = ctx.saved_tensors  # fused: logits and log-sum-exp; eager: probabilities
        need_sxy, need_sd = ctx.need
        d = None
        if not ctx.fused and need_sd:
            d, ctx.d = ctx.d, None
            if d is None:  # a second backward pass through a retained graph: the first one consumed d
                d = _difference(first, y, m)
        shape = first.shape[:2]
        b = g_sxy.contiguous() if (need_sxy and g_sxy is not None) else None
        e = g_sd.contiguous() if (need_sd and g_sd is not None) else None
        grad = grad_y = None
        if ctx.needs_input_grad[1]:  # first: the logits' pass below consumes d
            c = (g_sy if g_sy is not None else first.new_zeros(shape)).contiguous()
            if ctx.fused:
                grad_y = _compiled("soft_target_backward")(first, lse, y, m, c, b, e, ctx.activation)
            else:
                grad_y = _soft_target_backward(first, y, d, m, c, b, e)
        if ctx.needs_input_grad[0]:
            a = (g_sx if g_sx is not None else first.new_zeros(shape)).contiguous()
            if ctx.fused:
                grad = _compiled("soft_backward")(first, lse, y, m, a, b, e, ctx.activation)
            else:
                grad = _soft_backward(first, y, d, m, a, b, e, ctx.activation)
        return grad, grad_y, None, None, None, None, None


# --------------------------------------------------------------------------------------------- statistics
def region_statistics(logits: Tensor, target: Tensor, mask: Tensor | None = None, *,
                      mode: str = MULTICLASS_MODE, from_logits: bool = True, ignore_index: int | None = None,
                      need: tuple[str, ...] = ("sx", "sy", "sxy", "sd"), fused: bool = False,
                      presence_threshold: float | None = None) -> Stats:
    """Per-image, per-class sums ``sx, sy, sxy, sd`` (each ``(B, C)``), plus ``valid`` ``(B,)`` pixel counts and,
    when ``presence_threshold`` is given, ``present`` ``(B, C)``: whether the class occurs in the image's target
    (hard targets: at least one pixel; soft targets: some valid pixel with probability above the threshold).

    Inputs are assumed valid (see :mod:`jmlkit.losses._validation`). Logits in half precision are promoted to
    float32 first, so autocast gives finite statistics.

    >>> logits = torch.tensor([[[2.0, -1.0], [0.0, 1.0]]])      # B=1, C=2, N=2
    >>> stats = region_statistics(logits, torch.tensor([[0, 1]]))
    >>> [round(v, 4) for v in stats["sxy"].flatten().tolist()]   # p(0) at pixel 0, p(1) at pixel 1
    [0.8808, 0.8808]
    """
    B, C = logits.shape[:2]
    N = math.prod(logits.shape[2:])  # explicit: reshape(B, C, -1) is ambiguous for an empty batch
    z = logits.reshape(B, C, N)
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()
    activation = None if not from_logits else ("softmax" if mode == MULTICLASS_MODE else "sigmoid")
    m = None if mask is None else mask.reshape(B, N)

    hard = not target.is_floating_point() and mode == MULTICLASS_MODE
    if hard:
        t = target.reshape(B, N).long()
        if ignore_index is not None:
            keep = t != ignore_index
            m = keep if m is None else m & keep
            t = torch.where(keep, t, torch.zeros_like(t))
        mf = None if m is None else m.to(z.dtype)
        sx, sy, sxy = _HardStats.apply(z.contiguous(), t.contiguous(), mf, activation, fused)
        stats = {"sx": sx, "sy": sy, "sxy": sxy, "sd": sx + sy - 2 * sxy}
    else:
        y = target.reshape(B, C, N).to(z.dtype)
        if not target.is_floating_point() and ignore_index is not None:  # binary/multilabel 0/1 with ignore
            keep = (target.reshape(B, C, N) != ignore_index).all(1)
            m = keep if m is None else m & keep
            y = torch.where(keep.unsqueeze(1), y, torch.zeros_like(y))
        mf = None if m is None else m.to(z.dtype)
        need_sxy, need_sd = "sxy" in need, "sd" in need
        sx, sy, sxy, sd = _SoftStats.apply(z.contiguous(), y.contiguous(), mf, activation, need_sxy, need_sd, fused)
        stats = {"sx": sx, "sy": sy}
        if need_sxy:
            stats["sxy"] = sxy
        if need_sd:
            stats["sd"] = sd
    n = z.shape[2]
    stats["valid"] = (torch.full((B,), float(n), device=z.device, dtype=z.dtype) if m is None
                      else m.to(z.dtype).sum(1))
    if presence_threshold is not None:
        if hard:
            stats["present"] = stats["sy"] > 0
        else:
            ym = y if m is None else y * m.unsqueeze(1).to(y.dtype)
            stats["present"] = ym.amax(2) > presence_threshold if ym.shape[2] else torch.zeros(
                B, C, dtype=torch.bool, device=z.device)
    return stats


# --------------------------------------------------------------------------------------------- distributed
def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def _sync_sum(t: Tensor) -> Tensor:
    """All-reduced sum whose gradient flows only through this rank's own part."""
    total = t.detach().clone()
    torch.distributed.all_reduce(total)
    return t + (total - t.detach())


# --------------------------------------------------------------------------------------------- aggregation
def _class_weights(class_weights: Any, C: int, ref: Tensor) -> Tensor:
    if class_weights is None:
        return ref.new_ones(C)
    checked = V.weights_checked(class_weights)  # then on the device already: no copy, no sync
    w = torch.as_tensor(class_weights, dtype=ref.dtype, device=ref.device).flatten()
    if w.numel() != C:
        raise ValueError(f"Expected `class_weights` with {C} entries (one per class), but got {w.numel()}.")
    if not checked and (not bool(torch.isfinite(w).all()) or bool((w < 0).any())):  # also for the functional forms
        raise ValueError(f"Expected `class_weights` to be finite and non-negative, but got {w.tolist()}.")
    return w


def _class_selection(classes: Any, stats: Stats, C: int) -> Tensor:
    """(B, C) bool: which (image, class) pairs enter the loss."""
    B = stats["sx"].shape[0]
    device = stats["sx"].device
    if classes == "present":
        sel = stats["present"].clone()
    elif classes == "all":
        sel = torch.ones(B, C, dtype=torch.bool, device=device)
    else:
        idx = torch.as_tensor(classes, dtype=torch.long, device=device)
        if bool(((idx < 0) | (idx >= C)).any()):
            raise ValueError(f"Expected `classes` to hold indices in [0, {C - 1}], but got {idx.tolist()}.")
        sel = torch.zeros(B, C, dtype=torch.bool, device=device)
        sel[:, idx] = True
    return sel & (stats["valid"] > 0).unsqueeze(1)


def ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` as a score, with the convention that an empty prediction of an empty target is perfect:
    where ``den == 0`` (only possible with ``smooth = 0``) the score is 1, with a zero (not NaN) gradient."""
    empty = den <= 0
    return torch.where(empty, torch.ones_like(num), num / torch.where(empty, torch.ones_like(den), den))


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    return num / den.clamp_min(_EPS)


def region_loss(stats: Stats, score_fn: Callable[[Stats, float], Tensor], *, classes: Any = "present",
                aggregate: Any = "batch", smooth: float = 1.0, log_loss: bool = False, gamma: float = 1.0,
                class_weights: Any = None, sync_distributed: bool = False) -> Tensor:
    """Turn statistics into one scalar loss: per-class score -> per-class loss -> aggregation.

    ``score_fn(stats, smooth)`` maps statistics of any shape to a score in [0, 1] (1 = perfect). The per-class loss
    is ``1 - score`` (or ``-log(score)`` with ``log_loss``), raised to ``gamma``. Pairs outside the class
    selection are left out of every mean; an empty selection (every pixel ignored, no class present) gives a zero
    loss with zero gradient. (:func:`compute_region_loss` raises before that for a multiclass soft target whose
    ``"present"`` selection is empty while pixels are valid.)
    """
    aggregate = V.normalise_aggregate(aggregate)
    C = stats["sx"].shape[1]
    w_c = _class_weights(class_weights, C, stats["sx"])
    sel = _class_selection(classes, stats, C)
    world = _world_size() if sync_distributed else 1
    keys = [k for k in ("sx", "sy", "sxy", "sd") if k in stats]

    def per_class_loss(s: Stats) -> Tensor:
        score = score_fn(s, smooth).clamp(0.0, 1.0)
        loss = -torch.log(score.clamp_min(_EPS)) if log_loss else 1.0 - score
        return loss if gamma == 1.0 else loss.clamp_min(0).pow(gamma)

    total = stats["sx"].sum() * 0.0  # keeps the graph for an empty selection
    for kind, weight in aggregate.items():
        if weight == 0:
            continue
        if kind == "batch":
            pooled = {k: stats[k].sum(0) for k in keys}
            sel_c = sel.any(0)
            if world > 1:
                pooled = {k: _sync_sum(v) for k, v in pooled.items()}
                sel_c = _sync_sum(sel_c.to(pooled["sx"].dtype)).detach() > 0
            loss_c = per_class_loss(pooled)
            wsel = w_c * sel_c
            num, den = (wsel * loss_c).sum(), wsel.sum()
        elif kind == "image":
            loss_bc = per_class_loss({k: stats[k] for k in keys})
            wsel = w_c.unsqueeze(0) * sel
            den_b = wsel.sum(1)
            loss_b = _safe_div((wsel * loss_bc).sum(1), den_b)
            has = (den_b > 0).to(loss_b.dtype)
            num, den = (loss_b * has).sum(), has.sum()
            if world > 1:
                num, den = _sync_sum(num), _sync_sum(den).detach()
        else:  # "class"
            loss_bc = per_class_loss({k: stats[k] for k in keys})
            num_c = (loss_bc * sel).sum(0)
            den_c = sel.sum(0).to(num_c.dtype)
            if world > 1:
                num_c, den_c = _sync_sum(num_c), _sync_sum(den_c).detach()
            has = (den_c > 0).to(num_c.dtype) * w_c
            num, den = (has * _safe_div(num_c, den_c)).sum(), has.sum()
        total = total + weight * torch.where(den > 0, _safe_div(num, den), num * 0.0)
    if world > 1:
        # DDP averages gradients over ranks; the loss of the global batch needs their sum. Scaling the gradient
        # (not the value) by the world size makes the two equal, while the value stays the global loss.
        total = total * world - total.detach() * (world - 1)
    return total


# --------------------------------------------------------------------------------------------- front door
def prepare(logits: Tensor, target: Tensor, mask: Tensor | None, *, mode: str, ignore_index: int | None,
            validate_args: bool, fused: bool = False) -> tuple[Tensor, Tensor]:
    """Check the inputs and bring binary targets to ``(B, 1, *spatial)``."""
    if validate_args:
        V.check_logits(logits, mode)
        V.check_finite(logits)
        V.check_mask(mask, logits)
        V.check_target(target, logits, mode, ignore_index, validate_values=True, fused=fused, mask=mask)
    if mode == BINARY_MODE and target.ndim == logits.ndim - 1:
        target = target.unsqueeze(1)
    if mode != MULTICLASS_MODE and not target.is_floating_point() and ignore_index is None:
        target = target.to(logits.dtype if logits.dtype == torch.float64 else torch.float32)
    return logits, target


def default_classes(classes: Any, *, mode: str, soft: bool) -> Any:
    """The class selection that ``classes=None`` stands for: ``"present"`` for multiclass hard targets (class
    indices), ``"all"`` for multiclass soft targets (floating point, one-hot included) and in binary and
    multilabel modes, as in the reference code of the JML paper; any other value is returned as it is.

    >>> default_classes(None, mode="multiclass", soft=False), default_classes(None, mode="multiclass", soft=True)
    ('present', 'all')
    """
    if classes is not None:
        return classes
    return "present" if mode == MULTICLASS_MODE and not soft else "all"


def _check_some_class_active(stats: Stats, threshold: float, sync_distributed: bool) -> None:
    """Raise where ``classes="present"`` on a multiclass soft target keeps no class although some pixel is valid:
    the loss would be a silent 0 with no gradient. Under ``sync_distributed`` the classes of the global batch
    count (the loss pools them); a rank without valid pixels never raises."""
    valid = stats["valid"] > 0
    active = (stats["present"] & valid.unsqueeze(1)).any().to(stats["sx"].dtype)
    if sync_distributed and _world_size() > 1:
        active = active.detach().clone()
        torch.distributed.all_reduce(active)
    if bool(valid.any()) and not bool(active > 0):
        raise ValueError(
            f"Expected some class of the soft `target` to exceed `threshold`={threshold:g} on a valid pixel with "
            f"classes='present', but none does on the {int(stats['valid'].sum())} valid pixels: the loss would be 0 "
            "with no gradient. Use classes=None or 'all' (all classes, the default for soft targets) or a lower "
            "`threshold` (the reference code uses 0.01).")


def compute_region_loss(logits: Tensor, target: Tensor, mask: Tensor | None, score_fn, need: tuple[str, ...], *,
                        mode: str, from_logits: bool, classes: Any, aggregate: Any, smooth: float,
                        log_loss: bool, gamma: float, class_weights: Any, ignore_index: int | None,
                        threshold: float, sync_distributed: bool, validate_args: bool, fused: bool) -> Tensor:
    """Shared body of every region loss function (see :func:`jmlkit.losses.jaccard_metric_loss`).

    The options are checked (and numpy or 0-d tensor numbers made python numbers) on every call, whatever
    ``validate_args``: that costs microseconds; ``validate_args`` switches off the checks of the tensors."""
    o = V.check_options(mode=mode, classes=classes, aggregate=aggregate, smooth=smooth, gamma=gamma,
                        threshold=threshold, class_weights=class_weights, ignore_index=ignore_index)
    mode, classes, aggregate, smooth, gamma = o["mode"], o["classes"], o["aggregate"], o["smooth"], o["gamma"]
    threshold, class_weights, ignore_index = o["threshold"], o["class_weights"], o["ignore_index"]
    # soft: a multiclass probability target (a non-tensor target is reported by prepare)
    soft = mode == MULTICLASS_MODE and isinstance(target, Tensor) and target.is_floating_point()
    classes = default_classes(classes, mode=mode, soft=soft)
    logits, target = prepare(logits, target, mask, mode=mode, ignore_index=ignore_index, validate_args=validate_args,
                             fused=fused)
    stats = region_statistics(logits, target, mask, mode=mode, from_logits=from_logits, ignore_index=ignore_index,
                              need=need, fused=fused, presence_threshold=threshold if classes == "present" else None)
    if soft and classes == "present":
        _check_some_class_active(stats, threshold, sync_distributed)
    return region_loss(stats, score_fn, classes=classes, aggregate=aggregate, smooth=smooth, log_loss=log_loss,
                       gamma=gamma, class_weights=class_weights, sync_distributed=sync_distributed)


def soft_cross_entropy(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, mode: str = MULTICLASS_MODE,
                       ignore_index: int | None = None, class_weights: Any = None, sync_distributed: bool = False,
                       validate_args: bool = True) -> Tensor:
    """Cross-entropy on hard (class indices) or soft (probabilities) targets, averaged over the valid pixels.

    Multiclass: :math:`-\\sum_c y_c \\log \\mathrm{softmax}(z)_c`; binary and multilabel: binary cross-entropy
    with logits per channel. An empty set of valid pixels gives a zero loss with zero gradient.

    ``class_weights`` (``C`` non-negative numbers) weigh as torch's ``weight``: with class indices the loss is
    :math:`\\sum_i w_{y_i} \\ell_i / \\sum_i w_{y_i}` (:func:`torch.nn.functional.cross_entropy`); with
    probabilities :math:`\\sum_i \\sum_c w_c y_{ic} (-\\log p_{ic}) / n` over the ``n`` valid pixels (torch's rule for
    probability targets); in binary and multilabel modes each channel's binary cross-entropy is weighed before the
    mean over pixels and channels. ``sync_distributed`` makes it the mean over the global batch of all processes
    (gradients through each process's own part, scaled like the region losses' so that DDP's average is exact).

    >>> logits = torch.zeros(1, 2, 3)
    >>> round(float(soft_cross_entropy(logits, torch.tensor([[0, 1, 1]]))), 4)     # log 2
    0.6931
    """
    mode = check_choice("mode", mode, MODES)
    ignore_index = check_ignore_index(ignore_index)
    class_weights = V.check_class_weights(class_weights)
    logits, target = prepare(logits, target, mask, mode=mode, ignore_index=ignore_index, validate_args=validate_args)
    B, C = logits.shape[:2]
    N = math.prod(logits.shape[2:])
    z = logits.reshape(B, C, N)
    w = None if class_weights is None else _class_weights(class_weights, C, z)
    m = None if mask is None else mask.reshape(B, N)
    if mode == MULTICLASS_MODE and not target.is_floating_point():
        t = target.reshape(B, N).long()
        ign = -100 if ignore_index is None else ignore_index
        if m is not None:
            t = torch.where(m, t, torch.full_like(t, ign))
        per_pixel = F.cross_entropy(z, t, weight=w, ignore_index=ign, reduction="none")  # w[t] * loss
        valid = t != ign
        weight = None if w is None else torch.where(valid, w[torch.where(valid, t, 0)], 0.0)
    else:
        y = target.reshape(B, C, N).to(z.dtype)
        if not target.is_floating_point() and ignore_index is not None:
            keep = (y != ignore_index).all(1)
            y = torch.where(keep.unsqueeze(1), y, torch.zeros_like(y))
            m = keep if m is None else m & keep
        if mode == MULTICLASS_MODE:
            log_p = F.log_softmax(z, dim=1)
            per_pixel = -((y if w is None else y * w.view(1, C, 1)) * log_p).sum(1)
        else:
            per_pixel = F.binary_cross_entropy_with_logits(
                z, y, weight=None if w is None else w.view(1, C, 1), reduction="none").mean(1)
        valid = torch.ones_like(per_pixel, dtype=torch.bool) if m is None else m
        weight = None
    num = torch.where(valid, per_pixel, torch.zeros_like(per_pixel)).sum()
    den = (valid.sum() if weight is None else weight.sum()).to(num.dtype)
    world = _world_size() if sync_distributed else 1
    if world > 1:
        num, den = _sync_sum(num), _sync_sum(den).detach()
    loss = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), num * 0.0)
    if world > 1:  # as in region_loss: the global mean's value, a gradient that DDP's average makes exact
        loss = loss * world - loss.detach() * (world - 1)
    return loss
