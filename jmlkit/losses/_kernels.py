"""The dense kernels of the region losses' statistics: what :mod:`jmlkit.losses._functional`'s autograd functions
run over the ``(B, C, N)`` probabilities, in eager torch (in-place where a buffer of the pass can take the result)
and as functions for ``torch.compile`` (``fused=True``, :func:`_compiled`).

Shapes: ``z`` logits and ``y`` soft targets ``(B, C, N)``, ``t`` class indices ``(B, N)``, ``m`` a float mask
``(B, N)`` or ``None``; statistics and their gradients ``a, b, c, e`` are ``(B, C)``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor


# --------------------------------------------------------------------------------------------- dense kernels
def _activate(z: Tensor, activation: str | None) -> Tensor:
    if activation == "softmax":
        return torch.softmax(z, dim=1)
    if activation == "sigmoid":
        return torch.sigmoid(z)
    return z


def _masked_sum(v: Tensor, m: Tensor | None) -> Tensor:
    """(B, C, N) -> (B, C); with a (B, N) float mask, one batched mat-vec product instead of a masked copy."""
    if m is None:
        return v.sum(2)
    return torch.bmm(v, m.unsqueeze(2)).squeeze(2)


def _hard_forward(z: Tensor, t: Tensor, m: Tensor | None, activation: str | None):
    x = _activate(z, activation)
    B, C, _ = x.shape
    sx = _masked_sum(x, m)
    xt = x.gather(1, t.unsqueeze(1)).squeeze(1)
    w = torch.ones_like(xt) if m is None else m
    sxy = x.new_zeros(B, C).scatter_add_(1, t, xt * w)
    sy = x.new_zeros(B, C).scatter_add_(1, t, w)
    return x, xt, sx, sy, sxy


def _hard_backward(x: Tensor, xt: Tensor, t: Tensor, m: Tensor | None, a: Tensor, b: Tensor,
                   activation: str | None) -> Tensor:
    """Gradient w.r.t. the logits of ``sum(a * s_x + b * s_xy)``: on valid pixels dL/dx_c = a_c + b_c [t = c]."""
    g = a.unsqueeze(2).expand_as(x).clone()
    g.scatter_add_(1, t.unsqueeze(1), b.gather(1, t).unsqueeze(1))
    return _to_logits_(g, x, m, activation)


def _to_logits_(g: Tensor, x: Tensor, m: Tensor | None, activation: str | None) -> Tensor:
    """Mask the gradient ``g`` w.r.t. the probabilities and take it through the softmax or sigmoid, in ``g``'s own
    memory (a buffer of this backward pass): the softmax's backward as ``x g - x sum_c x_c g_c`` in three in-place
    passes. On a CPU a fresh (B, C, N) tensor costs more than a pass over one (its pages are faulted in)."""
    if m is not None:
        g.mul_(m.unsqueeze(1))
    if activation == "softmax":
        g.mul_(x)
        return g.addcmul_(x, g.sum(1, keepdim=True), value=-1.0)
    if activation == "sigmoid":
        return g.mul_(x).mul_(1 - x)
    return g


def _dot(u: Tensor, v: Tensor) -> Tensor:
    """``(u * v).sum(2)`` for (B, C, N) tensors as B*C dot products: no (B, C, N) product is materialised."""
    B, C, N = u.shape
    return torch.bmm(u.reshape(B * C, 1, N), v.reshape(B * C, N, 1)).reshape(B, C)


def _difference(x: Tensor, y: Tensor, m: Tensor | None, out: Tensor | None = None) -> Tensor:
    """``m (x - y)`` (into ``out`` when given): zero on masked pixels, so its sign is the gradient of the masked
    ``s_d``."""
    d = torch.sub(x, y, out=out)
    return d.mul_(m.unsqueeze(1)) if m is not None else d


def _soft_forward(z: Tensor, y: Tensor, m: Tensor | None, activation: str | None, need_sxy: bool, need_sd: bool):
    """Statistics of a soft target and ``d = m (x - y)``, kept for the backward pass (its sign is the gradient of
    ``s_d``): the only (B, C, N) tensors written are the probabilities and ``d``."""
    x = _activate(z, activation)
    sx = _masked_sum(x, m)
    sy = _masked_sum(y, m)
    d = sxy = sd = None
    if need_sd:
        # |x - y| = x + y - 2 min(x, y): s_d from the sum of the minimum (exactly s_x + s_y - 2 s_xy on a one-hot
        # target, as on the hard path); then x - y in the same memory, kept for the backward pass
        d = torch.minimum(x, y)
        sd = (sx + sy - 2 * _masked_sum(d, m)).clamp_min_(0)
        d = _difference(x, y, m, out=d)
    if need_sxy:
        sxy = _dot(x, y if m is None else y * m.unsqueeze(1))
    return x, d, sx, sy, sxy, sd


def _soft_target_backward(x: Tensor, y: Tensor, d: Tensor | None, m: Tensor | None, c: Tensor, b: Tensor | None,
                          e: Tensor | None) -> Tensor:
    """Gradient w.r.t. the target of ``sum(c s_y + b s_xy + e s_d)``: dL/dy = c + b x - e sign(x - y) on valid
    pixels, 0 elsewhere (``sign(0) = 0``: where ``x == y`` the subgradient 0 of ``|x - y|`` is taken, as torch's
    ``abs`` does, so that the loss is stationary at its minimiser ``x = y``)."""
    if e is not None:
        g = torch.sign(d).mul_(-e.unsqueeze(2)).add_(c.unsqueeze(2))
    else:
        g = c.unsqueeze(2).expand_as(x).clone()
    if b is not None:
        g.addcmul_(x, b.unsqueeze(2))
    if m is not None:
        g.mul_(m.unsqueeze(1))
    return g


def _soft_backward(x: Tensor, y: Tensor, d: Tensor | None, m: Tensor | None, a: Tensor, b: Tensor | None,
                   e: Tensor | None, activation: str | None) -> Tensor:
    """Gradient w.r.t. the logits of ``sum(a s_x + b s_xy + e s_d)``: dL/dx = a + b y + e sign(x - y), with
    ``sign(0) = 0`` (see :func:`_soft_target_backward`). It is written into ``d``'s memory (``d`` is consumed):
    the backward pass then allocates no (B, C, N) tensor."""
    if e is not None:
        g = d.sign_().mul_(e.unsqueeze(2)).add_(a.unsqueeze(2))
    else:
        g = a.unsqueeze(2).expand_as(x).clone()
    if b is not None:
        g.addcmul_(y, b.unsqueeze(2))
    return _to_logits_(g, x, m, activation)


# Fused kernels: written for torch.compile (no in-place scatter, one-hot as a comparison with an iota), they keep
# the log-sum-exp instead of the probabilities and recompute x = exp(z - lse) in the backward pass, so the
# compiler can fuse each pass into one or two loops over the logits.
def _fused_probs(z: Tensor, lse: Tensor | None, activation: str | None) -> Tensor:
    if activation == "softmax":
        return torch.exp(z - lse)
    if activation == "sigmoid":
        return torch.sigmoid(z)
    return z


def _fused_hard_forward(z: Tensor, t: Tensor, m: Tensor | None, activation: str | None):
    lse = torch.logsumexp(z, 1, keepdim=True) if activation == "softmax" else None
    x = _fused_probs(z, lse, activation)
    onehot = torch.arange(z.shape[1], device=z.device).view(1, -1, 1) == t.unsqueeze(1)
    w = x.new_ones(()) if m is None else m.unsqueeze(1)
    sx = (x * w).sum(2)
    sxy = torch.where(onehot, x, 0.0).mul(w).sum(2)
    sy = onehot.to(x.dtype).mul(w).sum(2)
    return lse, sx, sy, sxy


def _fused_hard_backward(z: Tensor, lse: Tensor | None, t: Tensor, m: Tensor | None, a: Tensor, b: Tensor,
                         activation: str | None) -> Tensor:
    x = _fused_probs(z, lse, activation)
    onehot = torch.arange(z.shape[1], device=z.device).view(1, -1, 1) == t.unsqueeze(1)
    g = a.unsqueeze(2) + torch.where(onehot, b.unsqueeze(2), 0.0)
    return _fused_to_logits(g, x, m, activation)


def _fused_to_logits(g: Tensor, x: Tensor, m: Tensor | None, activation: str | None) -> Tensor:
    if m is not None:
        g = g * m.unsqueeze(1)
    if activation == "softmax":
        return x * (g - (x * g).sum(1, keepdim=True))
    if activation == "sigmoid":
        return g * x * (1 - x)
    return g


def _fused_lse(z: Tensor) -> Tensor:
    return torch.logsumexp(z, 1, keepdim=True)


def _fused_masked_sum(v: Tensor, m: Tensor | None) -> Tensor:
    """:func:`_masked_sum` as a product with the mask, for the compiler to fuse into the loop that makes ``v``."""
    return (v if m is None else v * m.unsqueeze(1)).sum(2)


def _fused_prob_sum(z: Tensor, lse: Tensor | None, m: Tensor | None, activation: str | None) -> Tensor:
    return _fused_masked_sum(_fused_probs(z, lse, activation), m)


def _fused_abs_diff_sum(z: Tensor, lse: Tensor | None, y: Tensor, m: Tensor | None, activation: str | None) -> Tensor:
    return _fused_masked_sum((_fused_probs(z, lse, activation) - y).abs(), m)


def _fused_prob_dot(z: Tensor, lse: Tensor | None, y: Tensor, m: Tensor | None, activation: str | None) -> Tensor:
    return _fused_masked_sum(_fused_probs(z, lse, activation) * y, m)


def _fused_soft_forward(z: Tensor, y: Tensor, m: Tensor | None, activation: str | None, need_sxy: bool,
                        need_sd: bool):
    """One compiled kernel per statistic: Inductor's one loop for several reductions over the pixels is slower on
    a CPU than the separate ones (17.9 ms against 8.6 ms on (8, 21, 65536) logits, 2 threads); ``s_y`` in eager."""
    lse = _compiled("lse")(z) if activation == "softmax" else None
    sx = _compiled("prob_sum")(z, lse, m, activation)
    sy = _masked_sum(y, m)
    sxy = _compiled("prob_dot")(z, lse, y, m, activation) if need_sxy else None
    sd = _compiled("abs_diff_sum")(z, lse, y, m, activation) if need_sd else None
    return lse, sx, sy, sxy, sd


def _fused_soft_backward(z: Tensor, lse: Tensor | None, y: Tensor, m: Tensor | None, a: Tensor, b: Tensor | None,
                         e: Tensor | None, activation: str | None) -> Tensor:
    x = _fused_probs(z, lse, activation)
    g = a.unsqueeze(2)
    if e is not None:
        g = g + e.unsqueeze(2) * torch.sign(x - y)
    if b is not None:
        g = g + b.unsqueeze(2) * y
    return _fused_to_logits(g.expand_as(x), x, m, activation)


def _fused_soft_target_backward(z: Tensor, lse: Tensor | None, y: Tensor, m: Tensor | None, c: Tensor,
                                b: Tensor | None, e: Tensor | None, activation: str | None) -> Tensor:
    x = _fused_probs(z, lse, activation)
    g = c.unsqueeze(2)
    if e is not None:
        g = g - e.unsqueeze(2) * torch.sign(x - y)
    if b is not None:
        g = g + b.unsqueeze(2) * x
    g = g.expand_as(x)
    return g * m.unsqueeze(1) if m is not None else g


@functools.lru_cache(maxsize=None)
def _compiled(name: str) -> Callable:
    """The ``torch.compile``-d kernel, compiled once per process (and per shape) on first use."""
    return torch.compile(globals()[f"_fused_{name}"], dynamic=False)
