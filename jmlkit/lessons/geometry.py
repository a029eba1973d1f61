"""The loss geometry of ``notebooks/01_jaccard_losses.ipynb``: what the losses of :mod:`jmlkit.losses` look like.

Four experiments, each returning tensors in a small dataclass that a figure of :mod:`jmlkit.plot` draws:

========================================  ======================================  =====================================
computation                               figure (:mod:`jmlkit.plot`)             what
========================================  ======================================  =====================================
:func:`loss_curves`                       ``plot_loss_curves``                    every loss against the prediction of
                                                                                  one pixel, for a soft target
:func:`loss_surfaces`                     ``plot_loss_surfaces``                  two pixels: loss maps with gradient
                                                                                  arrows
:func:`race`                              ``plot_race``                           free logits optimised toward a soft
                                                                                  target by each loss
:func:`triangle_check`                    ``plot_triangle``                       the triangle inequality on random
                                                                                  vectors
========================================  ======================================  =====================================

:func:`summary` gives the headline numbers for ``metrics.json`` (with the slider timings of
:func:`jmlkit.plot.seconds_per_update`), :func:`findings` and :func:`describe_worst_triple` the sentences the
notebook shows, naming each loss by its abbreviation (the figures' display names are
:data:`jmlkit.plot.LOSS_LABELS`). Nothing here draws: :mod:`jmlkit.plot` imports this module, never the other way
round. The grid sizes of each profile are :func:`jmlkit.profiles.lesson_settings`.

**Setting.** A prediction ``x`` and a soft target ``y`` are vectors in :math:`[0, 1]^N` (``N`` pixels of one
probability channel): the ``mode="binary"``, ``from_logits=False``, ``classes="all"`` case of :mod:`jmlkit.losses`.
No loss is written here; every number comes from :mod:`jmlkit.losses`:

* the region losses (JML1, JML2, DML, SJL) from :func:`jmlkit.losses.region_statistics` (the sums
  :math:`s_x, s_y, s_{xy}, s_d` per point) and the score function each loss applies to them, ``1 - score`` as
  in the library's aggregation. The loss functions average over a batch, so this is how one call gives one loss
  *per point* for a whole grid (a slider move is one vectorised evaluation);
* the cross-entropy from :func:`jmlkit.losses.soft_cross_entropy` of ``logit(x)`` (``x`` clamped to
  ``[1e-7, 1 - 1e-7]``), batched over the points with :func:`torch.func.vmap`;
* the Lovász-Softmax loss from :func:`jmlkit.losses.lovasz_softmax_loss`, batched the same way. It is defined for
  hard labels only and therefore sees the target rounded at 0.5.

A ``0/0`` score counts as 1, like :mod:`jmlkit.losses`. The tests check every number against direct calls of the
loss functions, one point at a time.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_int, check_real
from jmlkit.lessons._threads import one_thread
from jmlkit.losses import (REGION_SCORES, dice_semimetric_loss, jaccard_metric_loss, lovasz_softmax_loss,
                           region_statistics, soft_cross_entropy, soft_jaccard_loss)
# The per-(image, class) scores the region losses apply to their statistics before averaging over images and
# classes; the loss functions themselves only return the average.

__all__ = [
    "LOSSES", "METRIC_LOSSES", "pointwise_losses",
    "CurveResult", "loss_curves", "SurfaceResult", "loss_surfaces",
    "RaceResult", "race_target", "race", "TriangleResult", "triangle_check",
    "summary", "findings", "describe_worst_triple", "abbreviation", "minimiser_sentence", "properties_markdown",
]

#: Every loss of the lesson, in plotting order.
LOSSES: tuple[str, ...] = ("ce", "sjl", "jml1", "jml2", "dml", "lovasz")
#: The losses compared by the triangle-inequality check (CE and Lovász are not distances between two vectors).
METRIC_LOSSES: tuple[str, ...] = ("jml1", "jml2", "dml", "sjl")
_REGION_SCORES: dict[str, Callable[[dict, float], Tensor]] = {k: REGION_SCORES[k] for k in ("jml1", "jml2", "dml", "sjl")}
_CE_EPS = 1e-7


# --------------------------------------------------------------------------------------------- validation
def _check_losses(losses: Any, allowed: Sequence[str] = LOSSES) -> tuple[str, ...]:
    if isinstance(losses, str):
        losses = (losses,)
    try:
        names = tuple(losses)
    except TypeError:
        raise TypeError(f"Expected argument `losses` to be a sequence of loss names, but got {losses!r}.") from None
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ValueError(f"Expected argument `losses` to hold names from {list(allowed)}, but got {list(names)}.")
    return names


def _as_probabilities(value: Any, name: str, *, dtype: torch.dtype = torch.float64) -> Tensor:
    t = torch.as_tensor(value, dtype=dtype)
    if t.numel() and (bool(torch.isnan(t).any()) or float(t.min()) < 0 or float(t.max()) > 1):
        raise ValueError(f"Expected argument `{name}` to hold probabilities in [0, 1], but got {value!r}.")
    return t


# --------------------------------------------------------------------------------------------- losses per point
def _region_losses(x: Tensor, y: Tensor, names: Sequence[str], smooth: float) -> dict[str, Tensor]:
    """``(P,)`` losses of ``P`` binary predictions ``x`` ``(P, N)`` against ``y`` ``(P, N)``: one image each."""
    stats = region_statistics(x.unsqueeze(1), y.unsqueeze(1), mode="binary", from_logits=False)
    return {n: 1.0 - _REGION_SCORES[n](stats, smooth).clamp(0.0, 1.0).squeeze(1) for n in names}


def _ce_one(z: Tensor, y: Tensor) -> Tensor:
    return soft_cross_entropy(z.reshape(1, 1, -1), y.reshape(1, 1, -1), mode="binary", validate_args=False)


def _cross_entropy(x: Tensor, y: Tensor) -> Tensor:
    """``(P,)`` binary cross-entropies (mean over the ``N`` pixels) of ``x`` ``(P, N)`` against ``y``."""
    z = torch.logit(x.clamp(_CE_EPS, 1 - _CE_EPS))
    return torch.func.vmap(_ce_one)(z, y)


def _lovasz(x: Tensor, y: Tensor) -> Tensor:
    """``(P,)`` Lovász losses of ``x`` ``(P, N)`` against ``y`` rounded at 0.5, one vmapped call per distinct
    rounded target. The classes present in that target are passed as a list: what ``classes="present"`` selects,
    worked out outside of :func:`torch.func.vmap`."""
    hard = (y >= 0.5).long()
    rows, which = torch.unique(hard, dim=0, return_inverse=True)
    parts, order = [], []
    for k, h in enumerate(rows):
        idx = (which == k).nonzero().squeeze(1)
        present = torch.unique(h).tolist()

        def one(xi: Tensor, h: Tensor = h, present: list = present) -> Tensor:
            return lovasz_softmax_loss(xi.reshape(1, 1, -1), h.reshape(1, 1, -1), mode="binary", from_logits=False,
                                       classes=present, validate_args=False)

        parts.append(torch.func.vmap(one)(x[idx]))
        order.append(idx)
    return torch.cat(parts)[torch.argsort(torch.cat(order))]


def pointwise_losses(pred: Any, target: Any, *, losses: Sequence[str] = LOSSES,
                     smooth: float = 0.0) -> dict[str, Tensor]:
    """Every loss of one prediction against one target, for a whole batch of (prediction, target) pairs at once.

    Each point is one image of a binary problem for :mod:`jmlkit.losses` (``mode="binary"``,
    ``from_logits=False``, ``classes="all"``, see the module docstring).

    Args:
        pred: probabilities ``(..., N)`` in ``[0, 1]`` (``N`` pixels of one channel).
        target: probabilities broadcastable to ``pred``'s shape (soft labels).
        losses: names from :data:`LOSSES`.
        smooth: the smoothing constant of the region losses (``jmlkit.losses`` uses 1.0 by default).

    Returns:
        ``{name: (...)}``, one loss per point. The cross-entropy is the mean over the ``N`` pixels. Differentiable
        w.r.t. ``pred`` (sub-gradients at the kinks).

    Example:
        >>> out = pointwise_losses(torch.tensor([[0.3], [1.0]]), torch.tensor([0.3]), losses=("jml1", "sjl"))
        >>> [round(v, 4) for v in out["jml1"].tolist()], [round(v, 4) for v in out["sjl"].tolist()]
        ([0.0, 0.7], [0.8235, 0.7])
    """
    names = _check_losses(losses)
    smooth = check_real("smooth", smooth, low=0)
    x = pred if isinstance(pred, Tensor) and pred.is_floating_point() else _as_probabilities(pred, "pred")
    y = target if isinstance(target, Tensor) and target.is_floating_point() else _as_probabilities(target, "target")
    if x.ndim == 0:
        raise ValueError(f"Expected argument `pred` with shape (..., N), but got a 0-d tensor {x!r}.")
    y = y.to(x.dtype)
    try:
        x, y = torch.broadcast_tensors(x, y)
    except RuntimeError:
        raise ValueError(f"Expected argument `target` broadcastable to `pred`'s shape {tuple(x.shape)}, "
                         f"but got shape {tuple(y.shape)}.") from None
    shape = x.shape[:-1]
    xf, yf = x.reshape(-1, x.shape[-1]), y.reshape(-1, x.shape[-1]).contiguous()
    region = [n for n in names if n in _REGION_SCORES]
    out = _region_losses(xf, yf, region, smooth) if region else {}
    if "ce" in names:
        out["ce"] = _cross_entropy(xf, yf)
    if "lovasz" in names:
        out["lovasz"] = _lovasz(xf, yf)
    return {n: out[n].reshape(shape) for n in names}


def _entropy(y: Tensor) -> Tensor:
    """The cross-entropy of ``y`` against itself: the smallest value the cross-entropy can take."""
    return _cross_entropy(y.unsqueeze(0), y.unsqueeze(0)).squeeze(0)


# --------------------------------------------------------------------------------------------- one pixel
@dataclass
class CurveResult:
    """Losses of one pixel: ``values[name]`` ``(G,)`` over the predictions ``x`` ``(G,)`` for the target ``target``.

    ``values["ce"]`` is shifted by the target's entropy (cross-entropy minus :math:`H(y)`, the KL divergence), so
    that it is 0 at its minimum like the others; ``minimisers[name]`` is the grid point of the smallest value.
    """

    target: float
    x: Tensor
    values: dict[str, Tensor]
    minimisers: dict[str, float]
    smooth: float = 0.0


def loss_curves(target: float, *, grid: int = 201, losses: Sequence[str] = LOSSES,
                smooth: float = 0.0) -> CurveResult:
    """Every loss of a one-pixel prediction ``x`` in ``linspace(0, 1, grid)`` against the soft target ``target``.

    One vectorised call of :func:`pointwise_losses` on a ``(grid, 1)`` batch.

    Example:
        >>> res = loss_curves(0.3, grid=11, losses=("jml1", "sjl", "dml"))
        >>> res.minimisers
        {'jml1': 0.3, 'sjl': 1.0, 'dml': 0.3}
    """
    y = float(_as_probabilities(target, "target"))
    grid = check_int("grid", grid, low=2)
    names = _check_losses(losses)
    with one_thread():
        x = torch.linspace(0, 1, grid, dtype=torch.float64)
        yt = torch.tensor([y], dtype=torch.float64)
        values = pointwise_losses(x.unsqueeze(1), yt, losses=names, smooth=smooth)
        if "ce" in values:
            values["ce"] = values["ce"] - _entropy(yt)
        minimisers = {n: round(float(x[int(torch.argmin(v))]), 10) for n, v in values.items()}
    return CurveResult(target=y, x=x, values=values, minimisers=minimisers, smooth=float(smooth))


# --------------------------------------------------------------------------------------------- two pixels
@dataclass
class SurfaceResult:
    """Losses of two pixels over the grid ``x1 x x2`` (``values[name]`` ``(G, G)``, indexed ``[i2, i1]`` for
    plotting), their negative gradients w.r.t. the probabilities on a coarser grid (``arrows[name]``
    ``(A, A, 2)`` at the points ``arrow_x`` ``(A,)``), and each loss's grid minimiser ``(x1, x2)``."""

    target: tuple[float, float]
    x: Tensor
    values: dict[str, Tensor]
    minimisers: dict[str, tuple[float, float]]
    arrow_x: Tensor
    arrows: dict[str, Tensor]
    smooth: float = 0.0


def loss_surfaces(target: Sequence[float], *, grid: int = 61, arrow_grid: int = 11,
                  losses: Sequence[str] = LOSSES, smooth: float = 0.0) -> SurfaceResult:
    """Every loss of a two-pixel prediction ``(x1, x2)`` on a ``grid x grid`` lattice of ``[0, 1]^2``, with the
    negative gradient (the direction gradient descent moves the probabilities) on an ``arrow_grid`` lattice.

    Two vectorised calls of :func:`pointwise_losses` (values; values + autograd for the arrows). The arrow
    lattice avoids the borders (``x`` in ``[0.05, 0.95]``), where the cross-entropy gradient blows up.

    Example:
        >>> res = loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3, losses=("jml1", "sjl"))
        >>> res.minimisers
        {'jml1': (0.3, 0.7), 'sjl': (0.0, 1.0)}
        >>> tuple(res.arrows["jml1"].shape)
        (3, 3, 2)
    """
    y = _as_probabilities(target, "target").flatten()
    if y.numel() != 2:
        raise ValueError(f"Expected argument `target` to hold 2 probabilities (two pixels), but got {target!r}.")
    grid = check_int("grid", grid, low=2)
    arrow_grid = check_int("arrow_grid", arrow_grid, low=1)
    names = _check_losses(losses)
    with one_thread():
        x = torch.linspace(0, 1, grid, dtype=torch.float64)
        x2, x1 = torch.meshgrid(x, x, indexing="ij")  # [i2, i1]
        pts = torch.stack([x1, x2], dim=-1)            # (grid, grid, 2)
        values = pointwise_losses(pts, y, losses=names, smooth=smooth)
        if "ce" in values:
            values["ce"] = values["ce"] - _entropy(y)
        minimisers = {}
        for n, v in values.items():
            p = pts.reshape(-1, 2)[int(torch.argmin(v))]
            minimisers[n] = (round(float(p[0]), 10), round(float(p[1]), 10))
        ax_ = torch.linspace(0.05, 0.95, arrow_grid, dtype=torch.float64) if arrow_grid > 1 else \
            torch.tensor([0.5], dtype=torch.float64)
        a2, a1 = torch.meshgrid(ax_, ax_, indexing="ij")
        apts = torch.stack([a1, a2], dim=-1).requires_grad_(True)
        avals = pointwise_losses(apts, y, losses=names, smooth=smooth)
        arrows = {}
        for n, v in avals.items():
            (g,) = torch.autograd.grad(v.sum(), apts, retain_graph=True)
            arrows[n] = -g.detach()
    return SurfaceResult(target=(float(y[0]), float(y[1])), x=x, values=values, minimisers=minimisers,
                         arrow_x=ax_, arrows=arrows, smooth=float(smooth))


# --------------------------------------------------------------------------------------------- the race
@dataclass
class RaceResult:
    """Free logits ``(1, C, N)`` optimised toward ``target`` by each loss.

    ``distance[name]`` ``(steps + 1,)``: the largest absolute difference between the softmax of the logits and the
    target after each step (index 0: the start); ``final[name]`` its last value; ``probs[name]`` ``(C, N)`` the final
    probabilities.
    """

    target: Tensor
    distance: dict[str, Tensor]
    final: dict[str, float]
    probs: dict[str, Tensor]
    steps: int
    lr: float


def race_target(num_classes: int = 3, num_pixels: int = 64, *, temperature: float = 1.5,
                seed: int = 0) -> Tensor:
    """A soft target ``(1, C, N)`` for the race: a random teacher's tempered softmax
    (:func:`jmlkit.targets.distillation_targets`); a larger ``temperature`` gives a softer target.

    Example:
        >>> t = race_target(3, 5, seed=0)
        >>> tuple(t.shape), bool(torch.allclose(t.sum(1), torch.ones(1, 5)))
        ((1, 3, 5), True)
    """
    from jmlkit.targets import distillation_targets

    num_classes = check_int("num_classes", num_classes, low=2)
    num_pixels = check_int("num_pixels", num_pixels, low=1)
    temperature = check_real("temperature", temperature, low=0, low_open=True)
    g = torch.Generator().manual_seed(int(seed))
    teacher = 2.0 * torch.randn(1, num_classes, num_pixels, generator=g)
    return distillation_targets(teacher, temperature=temperature).soft


def _race_loss(name: str, target: Tensor, smooth: float) -> Callable[[Tensor], Tensor]:
    """The loss ``name`` of the logits ``z`` against ``target`` (multiclass, softmax, ``classes="all"``)."""
    opts = dict(classes="all", smooth=smooth)
    if name == "ce":
        return lambda z: soft_cross_entropy(z, target)
    if name == "jml1":
        return lambda z: jaccard_metric_loss(z, target, **opts)
    if name == "jml2":
        return lambda z: jaccard_metric_loss(z, target, variant=2, **opts)
    if name == "dml":
        return lambda z: dice_semimetric_loss(z, target, **opts)
    if name == "sjl":
        return lambda z: soft_jaccard_loss(z, target, **opts)
    hard = target.argmax(1)  # lovasz: hard labels only
    return lambda z: lovasz_softmax_loss(z, hard, classes="all")


def race(target: Tensor, *, losses: Sequence[str] = LOSSES, steps: int = 500, lr: float = 0.1,
         smooth: float = 0.0, seed: int = 0) -> RaceResult:
    """Optimise the same free logits ``z`` ``(1, C, N)`` toward the soft ``target`` ``(1, C, N)`` with each loss.

    Each loss of :mod:`jmlkit.losses` (multiclass, softmax, ``classes="all"``; Lovász with the arg-max of the
    target) starts from the same small random logits and runs ``steps`` steps of Adam with a cosine learning
    rate from ``lr`` to 0; the decay lets the non-smooth metric losses settle exactly on the target.

    Example:
        >>> res = race(race_target(3, 4), losses=("ce", "sjl"), steps=3)
        >>> sorted(res.final), tuple(res.distance["ce"].shape)
        (['ce', 'sjl'], (4,))
    """
    if not isinstance(target, Tensor) or not target.is_floating_point() or target.ndim != 3:
        raise ValueError(f"Expected argument `target` to be a float tensor (1, C, N) of probabilities, but got "
                         f"{type(target).__name__} {tuple(getattr(target, 'shape', ()))}.")
    names = _check_losses(losses)
    steps = check_int("steps", steps, low=1)
    lr = check_real("lr", lr, low=0, low_open=True)
    smooth = check_real("smooth", smooth, low=0)
    g = torch.Generator().manual_seed(int(seed))
    z0 = 0.1 * torch.randn(target.shape, generator=g)
    distance, final, probs = {}, {}, {}
    with one_thread():
        for name in names:
            fn = _race_loss(name, target, smooth)
            z = z0.clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            d = torch.empty(steps + 1)
            with torch.no_grad():
                d[0] = (torch.softmax(z, 1) - target).abs().max()
            for t in range(steps):
                opt.zero_grad(set_to_none=True)
                fn(z).backward()
                opt.step()
                sched.step()
                with torch.no_grad():
                    d[t + 1] = (torch.softmax(z, 1) - target).abs().max()
            distance[name] = d
            final[name] = float(d[-1])
            probs[name] = torch.softmax(z.detach(), 1)[0]
    return RaceResult(target=target, distance=distance, final=final, probs=probs, steps=steps, lr=lr)


# --------------------------------------------------------------------------------------------- triangle inequality
@dataclass
class TriangleResult:
    """For random triples ``(x, z, y)`` in ``[0, 1]^dim``: ``slack[name]`` ``(n,)`` is
    ``L(x, z) + L(z, y) - L(x, y)`` (negative = the triangle inequality fails), ``violations[name]`` the number of
    slacks below ``-tol``, ``self_distance[name]`` the largest ``L(x, x)`` (a metric has 0), ``worst[name]`` the
    triple with the most negative slack."""

    slack: dict[str, Tensor]
    violations: dict[str, int]
    self_distance: dict[str, float]
    worst: dict[str, tuple[list[float], list[float], list[float]]]
    n: int
    dim: int
    distribution: str
    tol: float


def _draw(n: int, dim: int, distribution: str, g: torch.Generator) -> Tensor:
    u = torch.rand(n, dim, generator=g, dtype=torch.float64)
    if distribution == "sparse":
        return u * (torch.rand(n, dim, generator=g, dtype=torch.float64) < 0.5)
    if distribution == "binary":
        return (u < 0.5).to(torch.float64)
    return u


def triangle_check(n: int = 1000, *, dim: int = 2, distribution: str = "uniform",
                   losses: Sequence[str] = METRIC_LOSSES, smooth: float = 0.0, tol: float = 1e-9,
                   seed: int = 0) -> TriangleResult:
    """Test ``L(x, y) <= L(x, z) + L(z, y)`` on ``n`` random triples (float64, one vectorised call per pair).

    ``distribution``: ``"uniform"`` (entries uniform in [0, 1]), ``"sparse"`` (half the entries 0) or
    ``"binary"`` (hard labels). ``smooth`` must stay 0 for the metric property (a positive ``smooth`` is a
    different function).

    Example:
        >>> res = triangle_check(2000, dim=2, seed=0)
        >>> res.violations["jml1"], res.violations["jml2"], res.violations["dml"] > 0
        (0, 0, True)
    """
    n = check_int("n", n, low=1)
    dim = check_int("dim", dim, low=1)
    if distribution not in ("uniform", "sparse", "binary"):
        raise ValueError(f"Expected argument `distribution` to be 'uniform', 'sparse' or 'binary', "
                         f"but got {distribution!r}.")
    names = _check_losses(losses, METRIC_LOSSES)
    tol = check_real("tol", tol, low=0)
    g = torch.Generator().manual_seed(int(seed))
    with one_thread():
        x, z, y = (_draw(n, dim, distribution, g) for _ in range(3))
        xy = pointwise_losses(x, y, losses=names, smooth=smooth)
        xz = pointwise_losses(x, z, losses=names, smooth=smooth)
        zy = pointwise_losses(z, y, losses=names, smooth=smooth)
        xx = pointwise_losses(x, x, losses=names, smooth=smooth)
    slack, violations, self_distance, worst = {}, {}, {}, {}
    for name in names:
        s = xz[name] + zy[name] - xy[name]
        slack[name] = s
        violations[name] = int((s < -tol).sum())
        self_distance[name] = float(xx[name].max())
        i = int(torch.argmin(s))
        worst[name] = (x[i].tolist(), z[i].tolist(), y[i].tolist())
    return TriangleResult(slack=slack, violations=violations, self_distance=self_distance, worst=worst, n=n,
                          dim=dim, distribution=distribution, tol=tol)


# --------------------------------------------------------------------------------------------- reports
def abbreviation(name: str) -> str:
    """How the sentences of this module name a loss of :data:`LOSSES`: its abbreviation.

    Example:
        >>> [abbreviation(n) for n in LOSSES]
        ['CE', 'SJL', 'JML1', 'JML2', 'DML', 'Lovász']
    """
    name = check_choice("name", name, LOSSES)
    return "Lovász" if name == "lovasz" else name.upper()


def summary(curves: CurveResult | None = None, surfaces: SurfaceResult | None = None,
            race_result: RaceResult | None = None, triangle: TriangleResult | None = None, *,
            timing: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
    """Headline numbers for ``metrics.json`` (scalars only, as the batch runner's summary wants): minimisers,
    final race distances, triangle violations and self-distances, and the slider timings
    (``timing = {kind: jmlkit.plot.seconds_per_update(kind)}``) as ``slider_<kind>_wall_s`` / ``slider_<kind>_cpu_s``.

    Example:
        >>> summary(curves=loss_curves(0.3, grid=11, losses=("jml1",)))
        {'curve_target': 0.3, 'curve_minimiser_jml1': 0.3}
    """
    out: dict[str, Any] = {}
    if curves is not None:
        out["curve_target"] = curves.target
        out.update({f"curve_minimiser_{n}": v for n, v in curves.minimisers.items()})
    if surfaces is not None:
        out["surface_target_y1"], out["surface_target_y2"] = surfaces.target
        for n, (m1, m2) in surfaces.minimisers.items():
            out[f"surface_minimiser_{n}_x1"], out[f"surface_minimiser_{n}_x2"] = m1, m2
    if race_result is not None:
        out["race_steps"] = race_result.steps
        out.update({f"race_final_distance_{n}": v for n, v in race_result.final.items()})
    if triangle is not None:
        out["triangle_triples"] = triangle.n
        out.update({f"triangle_violations_{n}": v for n, v in triangle.violations.items()})
        out.update({f"self_distance_{n}": v for n, v in triangle.self_distance.items()})
    for kind, t in (timing or {}).items():
        out[f"slider_{kind}_wall_s"], out[f"slider_{kind}_cpu_s"] = t["wall_s"], t["cpu_s"]
    return out


def minimiser_sentence(grid: Any, curves: Mapping[str, Any], target: float, *,
                       names: Mapping[str, str] | None = None) -> str:
    """Where each loss curve of a one-parameter family of predictions is minimal, against the soft ``target``, as a
    Markdown sentence written from the numbers (a minimiser within one grid step of the target counts as at it).

    Args:
        grid: the predictions ``q`` (increasing, evenly spaced), e.g. ``torch.linspace(0, 1, 101)``.
        curves: ``{loss name: loss at each q}``.
        target: the soft label the curves are measured against.
        names: how the sentence names each loss (default: its key).

    Example:
        >>> q = [0.0, 0.1, 0.2, 0.3, 0.4]
        >>> minimiser_sentence(q, {"ce": [4, 3, 2, 1, 2], "sjl": [1, 0, 2, 3, 4]}, 0.3, names={"ce": "CE"})
        'Minimum over q: CE at q = 0.30 (the target 0.3); sjl at q = 0.10, 0.20 below the target, towards 0.'
    """
    q = np.asarray(torch.as_tensor(grid, dtype=torch.float64))
    if q.ndim != 1 or len(q) < 2 or not np.all(np.diff(q) > 0):
        raise ValueError(f"Expected `grid` to be an increasing 1-D sequence of at least 2 values, but got shape "
                         f"{q.shape}.")
    target = check_real("target", target)
    step = float(np.max(np.diff(q)))
    parts = []
    for name, values in curves.items():
        v = np.asarray(torch.as_tensor(values, dtype=torch.float64))
        if v.shape != q.shape:
            raise ValueError(f"Expected curve {name!r} to have one value per grid point ({len(q)}), "
                             f"but got shape {v.shape}.")
        best = float(q[int(np.nanargmin(v))])
        label = (names or {}).get(name, name)
        if abs(best - target) <= step / 2 + 1e-12:
            parts.append(f"{label} at q = {best:.2f} (the target {target:g})")
        else:
            side = f"below the target, towards {q[0]:g}" if best < target else f"above the target, towards {q[-1]:g}"
            parts.append(f"{label} at q = {best:.2f}, {abs(best - target):.2f} {side}")
    return "Minimum over q: " + "; ".join(parts) + "."


def properties_markdown(metrics: Mapping[str, Any], *, profile: str = "full") -> str:
    """The losses' properties that notebook 01 measures, as a Markdown paragraph written from its headline numbers
    (:func:`summary`, its ``metrics.json``): where each loss is minimal at a soft target (one pixel, two pixels),
    how close a race of free logits ends to a 3-class soft target, and how often the triangle inequality fails.

    A minimiser within 10⁻⁹ of the target counts as at it; otherwise its position is given.

    Example:
        >>> m = summary(curves=loss_curves(0.3, grid=11, losses=("jml1", "sjl")))
        >>> properties_markdown(m, profile="smoke")
        '**Properties (01, smoke profile).** At a soft target y = 0.3 (one pixel), JML1 is minimal at the target; SJL at x = 1 (a hard prediction, not the target).'
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"Expected `metrics` to be notebook 01's metrics (a mapping), but got {type(metrics).__name__}.")
    names = [n for n in LOSSES if f"curve_minimiser_{n}" in metrics]
    if "curve_target" not in metrics or not names:
        raise ValueError("Expected notebook 01's metrics with `curve_target` and `curve_minimiser_<loss>` keys, but got "
                         f"{sorted(metrics)[:8]}.")

    def join(items: Sequence[str]) -> str:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    def where(at: list[str], off: list[str], position: str) -> str:
        parts = [f"{join(at)} {'is' if len(at) == 1 else 'are'} minimal at the target"] if at else []
        return "; ".join(parts + off) + f"{position}"

    y = float(metrics["curve_target"])
    at = [abbreviation(n) for n in names if abs(float(metrics[f"curve_minimiser_{n}"]) - y) <= 1e-9]
    off = [f"{abbreviation(n)} at x = {float(metrics[f'curve_minimiser_{n}']):g}" for n in names
           if abs(float(metrics[f"curve_minimiser_{n}"]) - y) > 1e-9]
    text = [f"**Properties (01, {profile} profile).** At a soft target y = {y:g} (one pixel), "
            + where(at, off, " (a hard prediction, not the target)" if off else "") + "."]
    two = [n for n in LOSSES if f"surface_minimiser_{n}_x1" in metrics]
    if two and "surface_target_y1" in metrics:
        t = (float(metrics["surface_target_y1"]), float(metrics["surface_target_y2"]))
        m = {n: (float(metrics[f"surface_minimiser_{n}_x1"]), float(metrics[f"surface_minimiser_{n}_x2"])) for n in two}
        at2 = [abbreviation(n) for n in two if max(abs(a - b) for a, b in zip(m[n], t)) <= 1e-9]
        off2 = [f"{abbreviation(n)} at ({m[n][0]:g}, {m[n][1]:g})" for n in two if abbreviation(n) not in at2]
        text.append(f"At y = ({t[0]:g}, {t[1]:g}) (two pixels), " + where(at2, off2, "") + ".")
    race = {n: float(metrics[f"race_final_distance_{n}"]) for n in LOSSES if f"race_final_distance_{n}" in metrics}
    if race:
        text.append(f"Racing free logits toward a 3-class soft target for {int(metrics.get('race_steps', 0)):,} steps, "
                    "the prediction ends " + ", ".join(f"{abbreviation(n)} {v:.1e}" for n, v in race.items())
                    + " away from it (the largest absolute difference of a probability).")
    tri = {n: int(metrics[f"triangle_violations_{n}"]) for n in LOSSES if f"triangle_violations_{n}" in metrics}
    if tri:
        triples = int(metrics.get("triangle_triples", 0))
        share = lambda k: f" ({100 * k / triples:.1f} %)" if triples and k else ""  # noqa: E731
        self = {n: float(metrics[f"self_distance_{n}"]) for n in tri if f"self_distance_{n}" in metrics}
        zero = [abbreviation(n) for n, v in self.items() if abs(v) <= 1e-6]
        nonzero = [f"{abbreviation(n)} {v:.2g}" for n, v in self.items() if abs(v) > 1e-6]
        text.append(f"On {triples:,} random triples the triangle inequality fails "
                    + ", ".join(f"{k:,} times{share(k)} for {abbreviation(n)}" for n, k in tri.items()) + "."
                    + ((" The loss of a soft target against itself is 0 for " + join(zero) if zero else "")
                       + ("; " if zero and nonzero else " The loss of a soft target against itself is ")
                       + (", ".join(nonzero) + " (largest over the triples)" if nonzero else "") + "."
                       if self else "")
                    + " A loss is a metric only when it never fails the triangle inequality and is 0 at the target.")
    return " ".join(text)


def describe_worst_triple(triangle: TriangleResult, name: str = "dml") -> str:
    """A sentence (Markdown) with the triple of :func:`triangle_check` that breaks the triangle inequality most
    for the loss ``name``, and its three losses.

    Example:
        >>> describe_worst_triple(triangle_check(500, seed=0))[:40]
        'The worst DML triple: x = [0.216, 0.929]'
    """
    name = check_choice("name", name, tuple(triangle.worst))
    x, z, y = triangle.worst[name]
    lx = pointwise_losses(torch.tensor([x, x, z]), torch.tensor([y, z, y]), losses=(name,))[name]
    short = abbreviation(name)
    return (f"The worst {short} triple: x = {[round(v, 3) for v in x]}, z = {[round(v, 3) for v in z]}, "
            f"y = {[round(v, 3) for v in y]}: {short}(x, y) = {lx[0]:.3f} > {short}(x, z) + {short}(z, y) = "
            f"{lx[1]:.3f} + {lx[2]:.3f} = {lx[1] + lx[2]:.3f}.")


def findings(curves: CurveResult, surfaces: SurfaceResult, race_result: RaceResult, triangle: TriangleResult,
             timing: Mapping[str, Mapping[str, float]], *, profile: str) -> str:
    """What the notebook saw, as a Markdown list written from the numbers of the four experiments (run with every
    loss of :data:`LOSSES`) and the slider timings (``{"curves": ..., "surfaces": ...}`` of
    :func:`jmlkit.plot.seconds_per_update`). Each loss is named by its abbreviation (:func:`abbreviation`).

    Example:
        >>> text = findings(loss_curves(0.3, grid=11), loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3),
        ...                 race(race_target(3, 4), steps=2), triangle_check(50),
        ...                 {k: {"wall_s": 0.1, "cpu_s": 0.1} for k in ("curves", "surfaces")}, profile="smoke")
        >>> text.splitlines()[0]
        '* **One pixel, target 0.30** (smoke profile, grid of 11 points): the minimiser is at'
    """
    mins, name = curves.minimisers, abbreviation
    at_target = [name(k) for k in ("ce", "jml1", "jml2", "dml") if abs(mins[k] - curves.target) < 1e-9]
    reached = [k for k, d in race_result.final.items() if d < 1e-3]
    n_dml = triangle.violations["dml"]
    return f"""\
* **One pixel, target {curves.target:.2f}** ({profile} profile, grid of {len(curves.x)} points): the minimiser is at
  the target for {", ".join(at_target)}; the soft Jaccard loss is lowest at x = {mins["sjl"]:.2f} and the Lovász loss
  at x = {mins["lovasz"]:.2f} (the rounded target).
* **Two pixels, target ({surfaces.target[0]:.2f}, {surfaces.target[1]:.2f})**: JML1 is lowest at
  {surfaces.minimisers["jml1"]}, DML at {surfaces.minimisers["dml"]}, the soft Jaccard loss at
  {surfaces.minimisers["sjl"]}.
* **Race** ({race_result.steps} steps): final gap to the soft target
  {"; ".join(f"{name(k)} {d:.1e}" for k, d in race_result.final.items())}.
  Within $10^{{-3}}$: {", ".join(name(k) for k in reached) or "none"}.
* **Triangle inequality** on {triangle.n} random triples in $[0,1]^{{{triangle.dim}}}$: violations JML1
  {triangle.violations["jml1"]}, JML2 {triangle.violations["jml2"]}, DML {n_dml} ({100 * n_dml / triangle.n:.1f}%),
  SJL {triangle.violations["sjl"]}, while SJL(x, x) reaches {triangle.self_distance["sjl"]:.3f}.
* **Slider**: one update took {timing["curves"]["wall_s"]:.3f} s wall / {timing["curves"]["cpu_s"]:.3f} s CPU for the
  curves and {timing["surfaces"]["wall_s"]:.3f} s wall / {timing["surfaces"]["cpu_s"]:.3f} s CPU for the six maps.
"""
