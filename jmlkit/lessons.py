"""The computations behind ``notebooks/01_jaccard_losses.ipynb`` (what the losses of :mod:`jmlkit.losses` look
like) and the gradient tug of war of ``notebooks/02_label_smoothing.ipynb``.

**Notebook 02.** :func:`gradient_split` writes out the gradient of the paper's soft-label loss (0.25 CE + 0.75 JML,
batch pooling, all classes) w.r.t. each class's logits, split into the CE and JML terms and into the pixels that
pull the class up (target above prediction: :math:`-1/U` per pixel for the JML) and push it down (prediction above
target: :math:`+I/U^2`); :func:`recipe_gradients` does it for a trained model on batches with the training target
of a configuration, :func:`tug_summary` gives the numbers the findings quote, ``jmlkit.plot.gradient_tug_of_war``
the figure. The tests check the written-out gradients against autograd of :mod:`jmlkit.losses`.

**Notebook 01.**

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

:func:`seconds_per_update` times one slider move of the explorers (``jmlkit.plot.curve_explorer``,
``surface_explorer``); :func:`summary` gives the headline numbers for ``metrics.json``, :func:`findings` and
:func:`describe_worst_triple` the sentences the notebook shows. The grid sizes of each profile are
:func:`jmlkit.profiles.lesson_settings`.

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

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_int, check_real
from jmlkit.losses import (REGION_SCORES, dice_semimetric_loss, jaccard_metric_loss, lovasz_softmax_loss,
                           region_statistics, soft_cross_entropy, soft_jaccard_loss)
# The per-(image, class) scores the region losses apply to their statistics before averaging over images and
# classes; the loss functions themselves only return the average.

__all__ = [
    "LOSSES", "METRIC_LOSSES", "LOSS_LABELS", "pointwise_losses",
    "CurveResult", "loss_curves", "SurfaceResult", "loss_surfaces",
    "RaceResult", "race_target", "race", "TriangleResult", "triangle_check",
    "seconds_per_update", "summary", "findings", "describe_worst_triple",
    "SPLIT_COLUMNS", "GradientSplit", "gradient_split", "recipe_gradients", "tug_summary",
]

#: Every loss of the lesson, in plotting order.
LOSSES: tuple[str, ...] = ("ce", "sjl", "jml1", "jml2", "dml", "lovasz")
#: The losses compared by the triangle-inequality check (CE and Lovász are not distances between two vectors).
METRIC_LOSSES: tuple[str, ...] = ("jml1", "jml2", "dml", "sjl")
LOSS_LABELS: dict[str, str] = {
    "ce": "cross-entropy",
    "sjl": "soft Jaccard (SJL)",
    "jml1": "Jaccard metric, form 1 (JML1)",
    "jml2": "Jaccard metric, form 2 (JML2)",
    "dml": "Dice semimetric (DML)",
    "lovasz": "Lovász (rounded target)",
}
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


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run tiny tensor work on one thread: on a busy machine a thread pool costs far more than it saves."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    with _one_thread():
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
    with _one_thread():
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
    with _one_thread():
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
    with _one_thread():
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
def seconds_per_update(kind: str = "surfaces", *, repeats: int = 5, **options: Any) -> dict[str, float]:
    """Median time of one slider update of ``jmlkit.plot.curve_explorer`` (``kind="curves"``) or
    ``surface_explorer`` (``"surfaces"``): compute the losses for a new target, update the kept figure and
    render it to PNG. Returns ``{"wall_s": ..., "cpu_s": ...}``; on a busy machine the wall time exceeds the
    CPU time. For the notebook's report; the test suite never asserts a time.

    Example:
        >>> sorted(seconds_per_update("curves", repeats=1, grid=11))
        ['cpu_s', 'wall_s']
    """
    from jmlkit.plot import CurvePlot, SurfacePlot, render_png

    repeats = check_int("repeats", repeats, low=1)
    kind = check_choice("kind", kind, ("curves", "surfaces"))
    dpi = options.pop("dpi", 80)
    if kind == "curves":
        targets = [0.1 + 0.8 * i / repeats for i in range(repeats)]
        compute = lambda y: loss_curves(y, **options)  # noqa: E731
        plot = CurvePlot(compute(0.5))
    else:
        targets = [(0.1 + 0.8 * i / repeats, 0.9 - 0.8 * i / repeats) for i in range(repeats)]
        compute = lambda y: loss_surfaces(y, **options)  # noqa: E731
        plot = SurfacePlot(compute((0.5, 0.5)))
    render_png(plot.fig, dpi=dpi)  # the first draw lays out the text once, like the widget's first display
    wall, cpu = [], []
    for y in targets:
        t0, c0 = time.perf_counter(), time.process_time()
        render_png(plot.update(compute(y)), dpi=dpi)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": float(np.median(wall)), "cpu_s": float(np.median(cpu))}


def summary(curves: CurveResult | None = None, surfaces: SurfaceResult | None = None,
            race_result: RaceResult | None = None, triangle: TriangleResult | None = None, *,
            timing: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Any]:
    """Headline numbers for ``metrics.json`` (scalars only, as the batch runner's summary wants): minimisers,
    final race distances, triangle violations and self-distances, and the slider timings
    (``timing = {kind: seconds_per_update(kind)}``) as ``slider_<kind>_wall_s`` / ``slider_<kind>_cpu_s``.

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
    short = name.upper()
    return (f"The worst {short} triple: x = {[round(v, 3) for v in x]}, z = {[round(v, 3) for v in z]}, "
            f"y = {[round(v, 3) for v in y]}: {short}(x, y) = {lx[0]:.3f} > {short}(x, z) + {short}(z, y) = "
            f"{lx[1]:.3f} + {lx[2]:.3f} = {lx[1] + lx[2]:.3f}.")


def findings(curves: CurveResult, surfaces: SurfaceResult, race_result: RaceResult, triangle: TriangleResult,
             timing: Mapping[str, Mapping[str, float]], *, profile: str) -> str:
    """What the notebook saw, as a Markdown list written from the numbers of the four experiments (run with every
    loss of :data:`LOSSES`) and the slider timings (``{"curves": ..., "surfaces": ...}`` of
    :func:`seconds_per_update`).

    Example:
        >>> text = findings(loss_curves(0.3, grid=11), loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3),
        ...                 race(race_target(3, 4), steps=2), triangle_check(50),
        ...                 {k: {"wall_s": 0.1, "cpu_s": 0.1} for k in ("curves", "surfaces")}, profile="smoke")
        >>> text.splitlines()[0]
        '* **One pixel, target 0.30** (smoke profile, grid of 11 points): the minimiser is at'
    """
    mins, name = curves.minimisers, LOSS_LABELS
    at_target = [name[k] for k in ("ce", "jml1", "jml2", "dml") if abs(mins[k] - curves.target) < 1e-9]
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
  {"; ".join(f"{name[k]} {d:.1e}" for k, d in race_result.final.items())}.
  Within $10^{{-3}}$: {", ".join(name[k] for k in reached) or "none"}.
* **Triangle inequality** on {triangle.n} random triples in $[0,1]^{{{triangle.dim}}}$: violations JML1
  {triangle.violations["jml1"]}, JML2 {triangle.violations["jml2"]}, DML {n_dml} ({100 * n_dml / triangle.n:.1f}%),
  SJL {triangle.violations["sjl"]}, while SJL(x, x) reaches {triangle.self_distance["sjl"]:.3f}.
* **Slider**: one update took {timing["curves"]["wall_s"]:.3f} s wall / {timing["curves"]["cpu_s"]:.3f} s CPU for the
  curves and {timing["surfaces"]["wall_s"]:.3f} s wall / {timing["surfaces"]["cpu_s"]:.3f} s CPU for the six maps.
"""


# --------------------------------------------------------------------------------------------- notebook 02
# Who wins the tug of war on a class's logits: the 0.25 CE term or the 0.75 JML term of the paper's soft-label loss.

#: The parts of :class:`GradientSplit` ``per_class``: ``<term>_<part>`` for the terms ``ce`` and ``jml`` and the
#: pixel sets ``up`` (target above prediction) and ``down`` (prediction above target).
SPLIT_COLUMNS: tuple[str, ...] = ("ce_up", "ce_down", "jml_up", "jml_down")


@dataclass(frozen=True)
class GradientSplit:
    """What :func:`gradient_split` found: per-pixel gradients and the per-class table.

    Attributes:
        per_class: :class:`pandas.DataFrame`, one row per class: ``class``, ``name``, ``pixels`` (labelled with
            it: the target's arg-max on valid pixels), ``predicted`` (pixels where it is the prediction's
            arg-max), ``correct`` (pixels of both), ``as_background`` (pixels of the class predicted as the
            background), ``IoU`` (of the arg-max in this batch; NaN when neither has a pixel), ``own_prob``,
            ``background_prob`` and ``other_prob`` (mean predicted probability of the class itself, of the
            background and of all other classes together, on the class's pixels; NaN without pixels), ``target_mass``
            :math:`\\|y_c\\|_1`, ``pred_mass`` :math:`\\|x_c\\|_1`, ``I`` and ``U`` (batch-pooled L1 intersection
            and union), then the *push* of each term on the class's logits over the two pixel sets
            (:data:`SPLIT_COLUMNS`), ``ce_net``, ``jml_net`` and ``net``. A push is minus the gradient, summed
            over the pixels of the set: what one gradient-descent step (per unit learning rate) adds to the
            class's logits there; positive raises the class.
        ce_logits, jml_logits: ``(B, C, *spatial)`` gradients of the weighted CE and JML terms w.r.t. the logits.
        jml_probs: ``(B, C, *spatial)`` gradient of the weighted JML term w.r.t. the probabilities.
        up: bool ``(B, C, *spatial)``, valid pixels where the target is at least the prediction.
        label: ``(B, *spatial)`` the target's arg-max; mask: bool ``(B, *spatial)``, the valid pixels.
        ce_weight, jml_weight, smooth: the loss.
    """

    per_class: Any
    ce_logits: Tensor
    jml_logits: Tensor
    jml_probs: Tensor
    up: Tensor
    label: Tensor
    mask: Tensor
    ce_weight: float
    jml_weight: float
    smooth: float

    def collapsed(self) -> list[int]:
        """Classes that are labelled in the batch but predicted nowhere."""
        t = self.per_class
        return t.loc[(t["pixels"] > 0) & (t["predicted"] == 0), "class"].tolist()


@torch.no_grad()
def gradient_split(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, ce_weight: float = 0.25,
                   jml_weight: float = 0.75, smooth: float = 1.0, background: int | None = 0,
                   class_names: Sequence[str] | None = None) -> GradientSplit:
    r"""Split the gradient of the paper's soft-label loss w.r.t. each class's logits into its two terms and, per
    class, into the pixels that pull the class up and those that push it down.

    The loss is :math:`w_{CE}\,\mathrm{CE}(z, y) + w_J\,\mathrm{JML}(z, y)` with the JML of the paper's recipe:
    all classes, statistics pooled over the batch, smoothing :math:`s`, the mean over the :math:`C` classes.
    Per class, :math:`I_c = (\|x_c\|_1 + \|y_c\|_1 - \|x_c - y_c\|_1)/2` and
    :math:`U_c = (\|x_c\|_1 + \|y_c\|_1 + \|x_c - y_c\|_1)/2`, so a pixel's probability :math:`x_{c,i}` moves
    :math:`I_c` when it is below its target and :math:`U_c` when it is above:

    .. math::
        \frac{\partial\,\mathrm{JML}}{\partial x_{c,i}} = \frac{1}{C}\begin{cases}
            -\dfrac{1}{U_c + s} & x_{c,i} \le y_{c,i} \text{ (pull-up)}\\[1ex]
            +\dfrac{I_c + s}{(U_c + s)^2} & x_{c,i} > y_{c,i} \text{ (push-down)}\end{cases}

    Through the softmax, :math:`\partial/\partial z_{c,i} = x_{c,i}\,(g_{c,i} - \sum_k x_{k,i}\, g_{k,i})` with
    :math:`g` the gradient w.r.t. the probabilities: every JML push on a class's logit carries the factor
    :math:`x_{c,i}`. The soft cross-entropy, averaged over the :math:`N` valid pixels, has
    :math:`\partial/\partial z_{c,i} = (x_{c,i} - y_{c,i})/N`, which does not vanish with :math:`x_{c,i}`.

    The gradients are written out here (it is the lesson); the tests check them against autograd of
    :func:`jmlkit.losses.jaccard_metric_loss` and :func:`jmlkit.losses.soft_cross_entropy`.

    Args:
        logits: ``(B, C, *spatial)`` scores.
        target: ``(B, C, *spatial)`` soft target (probabilities), e.g. the boundary-smoothed labels.
        mask: bool ``(B, *spatial)``, ``False`` on ignored pixels.
        ce_weight, jml_weight: the weights of the two terms (the paper: 0.25 and 0.75).
        smooth: :math:`s` of the JML (1 in every training config of the paper).
        background: the background class (for the ``background_prob`` column), or ``None``.
        class_names: names of the ``C`` classes for the table.

    Returns:
        :class:`GradientSplit`.

    Example:
        >>> z = torch.zeros(1, 2, 1, 2)                                   # both classes at 0.5
        >>> y = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])              # one pixel each
        >>> split = gradient_split(z, y, smooth=0.0)
        >>> split.per_class[["class", "ce_up", "ce_down", "jml_up", "jml_down"]].round(4).values.tolist()
        [[0.0, 0.0625, -0.0625, 0.0833, -0.0833], [1.0, 0.0625, -0.0625, 0.0833, -0.0833]]
    """
    import pandas as pd

    if not isinstance(logits, Tensor) or not isinstance(target, Tensor):
        raise TypeError("Expected `logits` and `target` to be tensors, but got "
                        f"{type(logits).__name__} and {type(target).__name__}.")
    if not target.is_floating_point() or target.shape != logits.shape or logits.ndim < 3:
        raise ValueError("Expected a soft `target` (float probabilities) of the shape of `logits` (B, C, *spatial), "
                         f"but got {tuple(target.shape)} {target.dtype} for logits {tuple(logits.shape)}; turn hard "
                         "labels into soft ones first (jmlkit.targets.one_hot or boundary_label_smoothing).")
    ce_weight = check_real("ce_weight", ce_weight, low=0.0)
    jml_weight = check_real("jml_weight", jml_weight, low=0.0)
    smooth = check_real("smooth", smooth, low=0.0)
    B, C = logits.shape[:2]
    background = check_int("background", background, low=0, high=C - 1, optional=True)
    if logits.numel() == 0:
        raise ValueError(f"Expected a non-empty batch of logits, but got shape {tuple(logits.shape)}.")
    z = logits.detach().double().reshape(B, C, -1)
    y = target.detach().double().reshape(B, C, -1)
    m = (torch.ones(B, z.shape[2], dtype=torch.bool, device=z.device) if mask is None
         else mask.reshape(B, -1).to(z.device).bool())
    mf = m.unsqueeze(1).double()
    x = torch.softmax(z, 1)
    # the batch-pooled sums of jmlkit.losses (the same function the loss uses)
    st = region_statistics(z, y, m, need=("sx", "sy", "sd"))
    sx, sy, sd = (st[k].sum(0) for k in ("sx", "sy", "sd"))
    inter, union = (sx + sy - sd) / 2, (sx + sy + sd) / 2
    up = (x <= y) & m.unsqueeze(1)
    g = torch.where(x > y, ((inter + smooth) / (union + smooth) ** 2)[None, :, None],
                    (-1.0 / (union + smooth))[None, :, None]) * (jml_weight / C) * mf
    jml_z = x * (g - (x * g).sum(1, keepdim=True))
    n = m.sum().clamp_min(1)
    ce_z = ce_weight * (x - y) * mf / n

    def push(grad: Tensor, where: Tensor) -> np.ndarray:
        return (-(grad * where)).sum((0, 2)).cpu().numpy()

    down = (~up) & m.unsqueeze(1)
    label, pred = y.argmax(1), x.argmax(1)
    count = lambda v: torch.stack([((v == c) & m).sum() for c in range(C)]).cpu().numpy()  # noqa: E731
    both = torch.stack([((label == c) & (pred == c) & m).sum() for c in range(C)]).cpu().numpy()
    pixels, predicted = count(label), count(pred)
    either = pixels + predicted - both

    def mean_on_own(values: Tensor) -> np.ndarray:  # (B, N) values, mean over each class's own pixels
        sums = torch.stack([(values * ((label == c) & m)).sum() for c in range(C)]).cpu().numpy()
        return np.where(pixels > 0, sums / np.maximum(pixels, 1), np.nan)

    own = mean_on_own(x.gather(1, label.unsqueeze(1)).squeeze(1))
    as_bg = (torch.stack([((label == c) & (pred == background) & m).sum() for c in range(C)]).cpu().numpy()
             if background is not None else np.zeros(C, dtype=np.int64))
    bg = mean_on_own(x[:, background]) if background is not None else np.full(C, np.nan)
    if background is not None:
        bg[background] = np.nan
    table = pd.DataFrame({
        "class": np.arange(C),
        "name": list(class_names) if class_names is not None else [str(c) for c in range(C)],
        "pixels": pixels, "predicted": predicted, "correct": both, "as_background": as_bg,
        "IoU": np.where(either > 0, both / np.maximum(either, 1), np.nan),
        "own_prob": own, "background_prob": bg, "other_prob": 1.0 - own - np.nan_to_num(bg),
        "target_mass": sy.cpu().numpy(), "pred_mass": sx.cpu().numpy(),
        "I": inter.cpu().numpy(), "U": union.cpu().numpy(),
        "ce_up": push(ce_z, up), "ce_down": push(ce_z, down),
        "jml_up": push(jml_z, up), "jml_down": push(jml_z, down),
    })
    table["ce_net"] = table["ce_up"] + table["ce_down"]
    table["jml_net"] = table["jml_up"] + table["jml_down"]
    table["net"] = table["ce_net"] + table["jml_net"]
    shape = logits.shape
    return GradientSplit(per_class=table, ce_logits=ce_z.reshape(shape), jml_logits=jml_z.reshape(shape),
                         jml_probs=g.reshape(shape), up=up.reshape(shape), label=label.reshape(shape[:1] + shape[2:]),
                         mask=m.reshape(shape[:1] + shape[2:]), ce_weight=ce_weight, jml_weight=jml_weight,
                         smooth=smooth)


def _combine(splits: Sequence[GradientSplit]) -> GradientSplit:
    """Splits of several batches as one: sums of the counts, masses and pushes, means weighted by pixels."""
    if len(splits) == 1:
        return splits[0]
    tables = [sp.per_class for sp in splits]
    out = tables[0][["class", "name"]].copy()
    additive = ["pixels", "predicted", "correct", "as_background", "target_mass", "pred_mass", "I", "U", *SPLIT_COLUMNS]
    for col in additive:
        out[col] = sum(t[col].to_numpy() for t in tables)
    for col in ("own_prob", "background_prob", "other_prob"):
        weighted = sum(np.nan_to_num(t[col].to_numpy()) * t["pixels"].to_numpy() for t in tables)
        out[col] = np.where(out["pixels"] > 0, weighted / np.maximum(out["pixels"], 1), np.nan)
        if tables[0][col].isna().all():
            out[col] = np.nan
    either = out["pixels"] + out["predicted"] - out["correct"]
    out["IoU"] = np.where(either > 0, out["correct"] / np.maximum(either, 1), np.nan)
    out["ce_net"] = out["ce_up"] + out["ce_down"]
    out["jml_net"] = out["jml_up"] + out["jml_down"]
    out["net"] = out["ce_net"] + out["jml_net"]
    out = out[list(tables[0].columns)]
    first = splits[0]
    cat = lambda name: torch.cat([getattr(sp, name) for sp in splits])  # noqa: E731
    return GradientSplit(per_class=out, ce_logits=cat("ce_logits"), jml_logits=cat("jml_logits"),
                         jml_probs=cat("jml_probs"), up=cat("up"), label=cat("label"), mask=cat("mask"),
                         ce_weight=first.ce_weight, jml_weight=first.jml_weight, smooth=first.smooth)


def recipe_gradients(model: torch.nn.Module, batch: Mapping[str, Any], config: Any, *, batch_size: int | None = None,
                     ce_weight: float = 0.25, jml_weight: float = 0.75, smooth: float = 1.0,
                     background: int | None = 0) -> GradientSplit:
    """:func:`gradient_split` of a trained model on a batch, with the soft target that ``config``'s label mode
    builds in training (``labels="ls"``: its smoothing, ε and window), whatever loss the model was trained with:
    the paper's loss is evaluated at this model's prediction (model in eval mode).

    Args:
        model: the network (e.g. :func:`jmlkit.experiments.load_model` of a run folder).
        batch: ``{"image": (B, ...), "label": (B, *spatial)}`` plus ``num_classes``, ``class_names`` and
            ``ignore_index`` (:func:`jmlkit.experiments.examples`).
        config: the :class:`~jmlkit.engine.TrainConfig` whose label mode builds the target.
        batch_size: the loss pools its statistics over this many images, as in training (the per-pixel JML
            gradient scales with 1/U of the pooled batch); the batch is cut into such chunks, each split on its
            own, and the tables summed (counts, masses, pushes; probabilities averaged over the pixels).
            ``None``: the whole batch at once.
        ce_weight, jml_weight, smooth, background: as in :func:`gradient_split`.
    """
    from jmlkit.engine.objectives import ObjectiveContext, build_objective
    from jmlkit.losses import get_loss

    n = int(batch["image"].shape[0])
    batch_size = n if batch_size is None else check_int("batch_size", batch_size, low=1)
    device = next(model.parameters()).device
    ctx = ObjectiveContext(config, get_loss("ce"), num_classes=batch["num_classes"],
                           ignore_index=batch.get("ignore_index"), device=device)
    objective = build_objective(ctx)
    splits = []
    was = model.training
    model.eval()
    try:
        for start in range(0, n, batch_size):
            images = batch["image"][start:start + batch_size].to(device)
            labels = batch["label"][start:start + batch_size]
            target, mask = objective.target({"label": labels}, images)
            if not target.is_floating_point():  # hard labels: the one-hot target
                from jmlkit.targets import one_hot

                target, mask = one_hot(target, batch["num_classes"], ignore_index=batch.get("ignore_index"))
            with torch.no_grad():
                logits = model(images).float()
            splits.append(gradient_split(logits, target, mask, ce_weight=ce_weight, jml_weight=jml_weight,
                                         smooth=smooth, background=background,
                                         class_names=batch.get("class_names") or None))
    finally:
        model.train(was)
    return _combine(splits)


def tug_summary(split: GradientSplit, *, background: int | None = 0) -> dict[str, Any]:
    """The headline numbers of a :class:`GradientSplit` for the findings of notebook 02.

    Returns a dict with ``collapsed`` (names of the object classes labelled but predicted nowhere), over those
    classes the mean ``own_prob``, ``background_prob`` and ``other_prob`` on their pixels (weighted by pixels),
    ``as_background`` (the share of their pixels predicted as the background) and the summed ``ce_net`` and
    ``jml_net`` and the number of them each term pushes down (``jml_down_classes``, ``ce_down_classes``);
    ``jml_to_ce``: over the object classes, the JML term's total push (pull-up plus push-down, in absolute value)
    divided by the CE term's; ``background_ce_net``, ``background_jml_net``: the net push of each term on the
    background's logits, and ``background_ce_at_objects``, ``background_jml_at_objects``: the same summed over the
    pixels labelled with an object class only (NaN without a background).

    Example:
        >>> y = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])             # one pixel of each class
        >>> s = tug_summary(gradient_split(torch.zeros(1, 2, 1, 2), y))   # 50/50: the arg-max tie goes to class 0
        >>> s["collapsed"], s["own_prob"], s["as_background"], round(s["jml_to_ce"], 2)
        (['1'], 0.5, 1.0, 0.96)
    """
    t = split.per_class
    objects = t if background is None else t[t["class"] != background]
    bad = objects[(objects["pixels"] > 0) & (objects["predicted"] == 0)]
    w = bad["pixels"].to_numpy(float)

    def mean(col: str) -> float:
        v = bad[col].to_numpy(float)
        ok = np.isfinite(v)
        return float((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() and w[ok].sum() > 0 else float("nan")

    ce_total = float(objects["ce_up"].abs().sum() + objects["ce_down"].abs().sum())
    jml_total = float(objects["jml_up"].abs().sum() + objects["jml_down"].abs().sum())
    bg = t[t["class"] == background] if background is not None else t.iloc[:0]
    if background is not None:
        at_objects = (split.label != background) & split.mask
        bg_ce_obj = float(-(split.ce_logits[:, background] * at_objects).sum())
        bg_jml_obj = float(-(split.jml_logits[:, background] * at_objects).sum())
    else:
        bg_ce_obj = bg_jml_obj = float("nan")
    return {
        "collapsed": [str(v) for v in bad["name"]],
        "own_prob": mean("own_prob"), "background_prob": mean("background_prob"), "other_prob": mean("other_prob"),
        "as_background": float(bad["as_background"].sum() / w.sum()) if w.sum() > 0 else float("nan"),
        "ce_net": float(bad["ce_net"].sum()), "jml_net": float(bad["jml_net"].sum()),
        "ce_down_classes": int((bad["ce_net"] < 0).sum()), "jml_down_classes": int((bad["jml_net"] < 0).sum()),
        "jml_to_ce": jml_total / ce_total if ce_total > 0 else float("nan"),
        "background_ce_net": float(bg["ce_net"].sum()) if len(bg) else float("nan"),
        "background_jml_net": float(bg["jml_net"].sum()) if len(bg) else float("nan"),
        "background_ce_at_objects": bg_ce_obj, "background_jml_at_objects": bg_jml_obj,
    }
