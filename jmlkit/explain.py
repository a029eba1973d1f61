"""The computations and figures behind ``notebooks/01_jaccard_losses.ipynb``: what the losses look like.

Four pictures, each a pair of a computation (returns tensors in a small dataclass) and a plot (returns a
:class:`matplotlib.figure.Figure`, drawn without pyplot, like :mod:`jmlkit.viz`):

========================================  ========================================  ====================================
computation                               figure                                    what
========================================  ========================================  ====================================
:func:`loss_curves`                       :func:`plot_loss_curves`                  every loss against the prediction of
                                                                                    one pixel, for a soft target
:func:`loss_surfaces`                     :func:`plot_loss_surfaces`                two pixels: contour maps with
                                                                                    gradient arrows
:func:`race`                              :func:`plot_race`                         free logits optimised toward a soft
                                                                                    target by each loss
:func:`triangle_check`                    :func:`plot_triangle`                     the triangle inequality on random
                                                                                    vectors
========================================  ========================================  ====================================

:func:`curve_explorer` and :func:`surface_explorer` put the first two under ipywidgets sliders. They keep one
figure (:class:`CurvePlot`, :class:`SurfacePlot`) and update its artists in place, then send a lightly compressed
PNG (:func:`render_png`): one slider move costs one vectorised loss evaluation and one redraw
(:func:`seconds_per_update` measures it). :data:`PROFILES` holds the notebook's grid sizes per profile.

**Setting.** A prediction ``x`` and a soft target ``y`` are vectors in :math:`[0, 1]^N` (``N`` pixels, one
probability channel: ``mode="binary"`` of :mod:`jmlkit.losses`, ``classes="all"``). With
:math:`s_x = \\sum_i x_i`, :math:`s_y = \\sum_i y_i`, :math:`s_{xy} = \\sum_i x_i y_i`,
:math:`s_d = \\sum_i |x_i - y_i|` and the smoothing constant :math:`s`:

.. math::
    \\mathrm{JML}_1 = 1 - \\frac{s_x + s_y - s_d + 2s}{s_x + s_y + s_d + 2s},\\quad
    \\mathrm{JML}_2 = 1 - \\frac{s_{xy} + s}{s_{xy} + s_d + s},\\quad
    \\mathrm{DML} = 1 - \\frac{s_x + s_y - s_d + s}{s_x + s_y + s},\\quad
    \\mathrm{SJL} = 1 - \\frac{s_{xy} + s}{s_x + s_y - s_{xy} + s}

(a ``0/0`` score counts as 1, like :mod:`jmlkit.losses`), the cross-entropy
:math:`\\mathrm{CE} = -\\frac1N \\sum_i y_i \\log x_i + (1 - y_i) \\log (1 - x_i)`, and the Lovász-Softmax loss,
which is defined for hard labels only and therefore sees the target rounded at 0.5. :func:`pointwise_losses`
evaluates these closed forms for a whole batch of points at once (that is what makes the sliders fast);
:func:`jmlkit_pointwise` evaluates the same numbers through :mod:`jmlkit.losses`, one point per call, and the tests
check that the two agree.
"""
from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .losses import (dice_semimetric_loss, jaccard_metric_loss, lovasz_softmax_loss, soft_cross_entropy,
                     soft_jaccard_loss)

__all__ = [
    "LOSSES", "LOSS_LABELS", "LOSS_COLORS", "METRIC_LOSSES", "PROFILES", "profile_settings",
    "pointwise_losses", "jmlkit_pointwise",
    "CurveResult", "loss_curves", "plot_loss_curves",
    "SurfaceResult", "loss_surfaces", "plot_loss_surfaces",
    "RaceResult", "race_target", "race", "plot_race",
    "TriangleResult", "triangle_check", "plot_triangle",
    "CurvePlot", "SurfacePlot", "render_png",
    "curve_explorer", "surface_explorer", "seconds_per_update", "summary",
]

#: Every loss this module knows, in plotting order.
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
LOSS_COLORS: dict[str, str] = {
    "ce": "#7f7f7f", "sjl": "#d62728", "jml1": "#1f77b4", "jml2": "#17becf", "dml": "#2ca02c", "lovasz": "#9467bd",
}
_LINESTYLES = {"ce": ":", "sjl": "-", "jml1": "-", "jml2": "--", "dml": "-.", "lovasz": "-"}
_CE_EPS = 1e-7


#: Grid sizes, race length and number of random triples of the notebook's profiles.
PROFILES: dict[str, dict[str, int]] = {
    "smoke": dict(grid_1d=51, grid_2d=21, arrow_grid=7, race_steps=30, triples=300, timing_repeats=1),
    "quick": dict(grid_1d=201, grid_2d=61, arrow_grid=11, race_steps=400, triples=10_000, timing_repeats=5),
    "full": dict(grid_1d=1001, grid_2d=121, arrow_grid=15, race_steps=2000, triples=200_000, timing_repeats=10),
}


def profile_settings(profile: str) -> dict[str, int]:
    """The settings of one of :data:`PROFILES` (a copy).

    Example:
        >>> profile_settings("smoke")["race_steps"]
        30
    """
    if profile not in PROFILES:
        raise ValueError(f"Expected argument `profile` to be one of {list(PROFILES)}, but got {profile!r}.")
    return dict(PROFILES[profile])


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


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Expected argument `{name}` to be an int >= {minimum}, but got {value!r}.")
    return int(value)


def _check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"Expected argument `{name}` to be a {kind} number, but got {value!r}.")
    return float(value)


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


# --------------------------------------------------------------------------------------------- pointwise losses
def _score(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with ``0 / 0 = 1`` (an empty prediction of an empty target is perfect), zero gradient there."""
    empty = den <= 0
    return torch.where(empty, torch.ones_like(num), num / torch.where(empty, torch.ones_like(den), den))


def _lovasz_binary(x: Tensor, y: Tensor) -> Tensor:
    """The Lovász-Softmax loss of jmlkit's binary mode (classes present in the rounded target), batched.

    Both classes (background ``1 - x`` and foreground ``x``) have the same errors ``|round(y) - x|``; per class the
    errors are sorted in decreasing order and dotted with the discrete gradient of the Jaccard loss.
    """
    hard = (y >= 0.5).to(x.dtype)
    errors, perm = torch.sort((hard - x).abs(), dim=-1, descending=True)
    losses, present = [], []
    for fg in (torch.gather(hard, -1, perm), 1 - torch.gather(hard, -1, perm)):
        gts = fg.sum(-1, keepdim=True)
        jac = 1 - (gts - fg.cumsum(-1)) / (gts + (1 - fg).cumsum(-1))
        grad = torch.cat([jac[..., :1], jac[..., 1:] - jac[..., :-1]], dim=-1)
        losses.append((errors * grad).sum(-1))
        present.append((gts.squeeze(-1) > 0).to(x.dtype))
    num = losses[0] * present[0] + losses[1] * present[1]
    return num / (present[0] + present[1]).clamp_min(1)


def pointwise_losses(pred: Any, target: Any, *, losses: Sequence[str] = LOSSES,
                     smooth: float = 0.0) -> dict[str, Tensor]:
    """Every loss of one prediction against one target, for a whole batch of (prediction, target) pairs at once.

    Args:
        pred: probabilities ``(..., N)`` in ``[0, 1]`` (``N`` pixels of one channel).
        target: probabilities broadcastable to ``pred``'s shape (soft labels).
        losses: names from :data:`LOSSES`.
        smooth: the smoothing constant ``s`` of the region losses (``jmlkit.losses`` uses 1.0 by default).

    Returns:
        ``{name: (...)}``, one loss per point. The cross-entropy is the mean over the ``N`` pixels (``x`` clamped
        to ``[1e-7, 1 - 1e-7]``). Differentiable w.r.t. ``pred`` (sub-gradients at the kinks).

    Example:
        >>> out = pointwise_losses(torch.tensor([[0.3], [1.0]]), torch.tensor([0.3]), losses=("jml1", "sjl"))
        >>> [round(v, 4) for v in out["jml1"].tolist()], [round(v, 4) for v in out["sjl"].tolist()]
        ([0.0, 0.7], [0.8235, 0.7])
    """
    names = _check_losses(losses)
    smooth = _check_positive(smooth, "smooth", allow_zero=True)
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
    sx, sy, sxy, sd = x.sum(-1), y.sum(-1), (x * y).sum(-1), (x - y).abs().sum(-1)
    s = smooth
    out: dict[str, Tensor] = {}
    for name in names:
        if name == "jml1":
            out[name] = 1 - _score(sx + sy - sd + 2 * s, sx + sy + sd + 2 * s)
        elif name == "jml2":
            out[name] = 1 - _score(sxy + s, sxy + sd + s)
        elif name == "dml":
            out[name] = 1 - _score(sx + sy - sd + s, sx + sy + s)
        elif name == "sjl":
            out[name] = 1 - _score(sxy + s, sx + sy - sxy + s)
        elif name == "ce":
            xc = x.clamp(_CE_EPS, 1 - _CE_EPS)
            out[name] = -(y * xc.log() + (1 - y) * (1 - xc).log()).mean(-1)
        else:  # lovasz
            out[name] = _lovasz_binary(x, y)
    return out


def jmlkit_pointwise(pred: Any, target: Any, name: str, *, smooth: float = 0.0) -> float:
    """The same number as :func:`pointwise_losses` for one point, computed by :mod:`jmlkit.losses`.

    The region losses get ``pred`` as probabilities (``from_logits=False``, ``mode="binary"``,
    ``classes="all"``); the cross-entropy gets ``logit(pred)``; the Lovász loss the target rounded at 0.5.

    Example:
        >>> round(jmlkit_pointwise([0.3, 0.9], [0.3, 0.6], "jml1"), 4)
        0.25
        >>> round(float(pointwise_losses(torch.tensor([0.3, 0.9]), torch.tensor([0.3, 0.6]))["jml1"]), 4)
        0.25
    """
    _check_losses((name,))
    x = _as_probabilities(pred, "pred", dtype=torch.float64).reshape(1, 1, -1)
    y = _as_probabilities(target, "target", dtype=torch.float64).reshape(1, 1, -1).expand_as(x)
    opts = dict(mode="binary", from_logits=False, classes="all", smooth=float(smooth))
    if name == "ce":
        z = torch.logit(x.clamp(_CE_EPS, 1 - _CE_EPS))
        return float(soft_cross_entropy(z, y.contiguous(), mode="binary"))
    if name == "lovasz":
        return float(lovasz_softmax_loss(x, (y >= 0.5).long(), mode="binary", from_logits=False))
    fn = {"jml1": jaccard_metric_loss, "jml2": lambda *a, **k: jaccard_metric_loss(*a, variant=2, **k),
          "dml": dice_semimetric_loss, "sjl": soft_jaccard_loss}[name]
    return float(fn(x, y.contiguous(), **opts))


def _entropy(y: Tensor) -> Tensor:
    """Binary entropy per pixel, mean over the last dim: the smallest value the cross-entropy can take."""
    yc = y.clamp(_CE_EPS, 1 - _CE_EPS)
    return -(y * yc.log() + (1 - y) * (1 - yc).log()).mean(-1)


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
    grid = _check_int(grid, "grid", 2)
    names = _check_losses(losses)
    with _one_thread():
        x = torch.linspace(0, 1, grid, dtype=torch.float64)
        values = pointwise_losses(x.unsqueeze(1), torch.tensor([y], dtype=torch.float64), losses=names,
                                  smooth=smooth)
        if "ce" in values:
            values["ce"] = values["ce"] - _entropy(torch.tensor([y], dtype=torch.float64))
        minimisers = {n: round(float(x[int(torch.argmin(v))]), 10) for n, v in values.items()}
    return CurveResult(target=y, x=x, values=values, minimisers=minimisers, smooth=float(smooth))


class CurvePlot:
    """The figure of :func:`plot_loss_curves`, kept so that a slider can move its lines in place
    (:meth:`update`): redrawing an existing figure costs a fraction of building a new one."""

    def __init__(self, result: CurveResult, *, ax: Any = None, ylim: tuple[float, float] = (0.0, 1.05)) -> None:
        if ax is None:
            self.fig = Figure(figsize=(7.5, 4.4))
            self.fig.subplots_adjust(left=0.09, right=0.97, top=0.92, bottom=0.3)
            ax = self.fig.add_subplot()
        else:
            self.fig = ax.figure
        self.ax, self.ylim = ax, ylim
        x = result.x.numpy()
        self.lines, self.dots = {}, {}
        for name in result.values:
            label = LOSS_LABELS[name] if name != "ce" else "cross-entropy − H(y)"
            (self.lines[name],) = ax.plot(x, np.zeros_like(x), color=LOSS_COLORS[name], ls=_LINESTYLES[name], lw=2,
                                          label=label)
            (self.dots[name],) = ax.plot([0], [0], "o", color=LOSS_COLORS[name], ms=8, mec="white", mew=1.5,
                                         clip_on=False, zorder=5)
        self.vline = ax.axvline(0, color="k", lw=1, alpha=0.6)
        self.text = ax.text(0, ylim[1], "", va="top", ha="left", fontsize=9)
        ax.set(xlim=(0, 1), ylim=ylim, xlabel="prediction x (probability of the pixel)", ylabel="loss",
               title="One pixel: every loss against the prediction (dots: minimisers)")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
        ax.grid(alpha=0.3)
        self.update(result)

    def update(self, result: CurveResult) -> Figure:
        """Show ``result`` (same grid and losses as the first one)."""
        for name, v in result.values.items():
            vv = v.detach().numpy()
            self.lines[name].set_ydata(vv)
            xm = result.minimisers[name]
            self.dots[name].set_data([xm], [min(float(vv.min()), self.ylim[1])])
        self.vline.set_xdata([result.target, result.target])
        self.text.set_x(result.target)
        self.text.set_text(f" target y = {result.target:.2f}")
        return self.fig


def plot_loss_curves(result: CurveResult, *, ax: Any = None, ylim: tuple[float, float] = (0.0, 1.05)) -> Figure:
    """All curves of a :class:`CurveResult` on one axes, each minimiser marked with a dot, the target with a line.

    Example:
        >>> fig = plot_loss_curves(loss_curves(0.3, grid=11))
        >>> len(fig.axes)
        1
    """
    return CurvePlot(result, ax=ax, ylim=ylim).fig


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


def _grid2(n: int) -> tuple[Tensor, Tensor]:
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    x2, x1 = torch.meshgrid(x, x, indexing="ij")  # [i2, i1]
    return x, torch.stack([x1, x2], dim=-1)       # (n, n, 2)


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
    grid = _check_int(grid, "grid", 2)
    arrow_grid = _check_int(arrow_grid, "arrow_grid", 1)
    names = _check_losses(losses)
    with _one_thread():
        x, pts = _grid2(grid)
        values = pointwise_losses(pts, y, losses=names, smooth=smooth)
        if "ce" in values:
            values["ce"] = values["ce"] - _entropy(y)
        minimisers = {}
        for n, v in values.items():
            i = int(torch.argmin(v))
            p = pts.reshape(-1, 2)[i]
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


class SurfacePlot:
    """The figure of :func:`plot_loss_surfaces`, kept so that sliders can update it in place (:meth:`update`).

    Each panel is an image with ``levels`` colour bands (a filled contour map that can be updated), unit-length
    arrows along the negative gradient, the target (star) and the loss's grid minimiser (circle).
    """

    def __init__(self, result: SurfaceResult, *, levels: int = 12, ncols: int = 3) -> None:
        from matplotlib.colors import BoundaryNorm

        names = list(result.values)
        ncols = min(ncols, len(names))
        nrows = -(-len(names) // ncols)
        self.fig = fig = Figure(figsize=(3.2 * ncols + 1.2, 3.3 * nrows + 0.5))
        fig.subplots_adjust(left=0.06, right=0.86, bottom=0.08, top=0.9, wspace=0.1, hspace=0.22)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        a = result.arrow_x.numpy()
        A1, A2 = np.meshgrid(a, a)
        step = a[1] - a[0] if len(a) > 1 else 0.5
        norm = BoundaryNorm(np.linspace(0, 1, levels + 1), ncolors=256)
        self.images, self.quivers, self.stars, self.circles = {}, {}, {}, {}
        for k, name in enumerate(names):
            ax = axes[k // ncols][k % ncols]
            self.images[name] = ax.imshow(np.zeros((2, 2)), origin="lower", extent=(0, 1, 0, 1), cmap="viridis",
                                          norm=norm, interpolation="bilinear", interpolation_stage="data")
            self.quivers[name] = ax.quiver(A1, A2, np.zeros_like(A1), np.zeros_like(A2), color="white",
                                           angles="xy", scale_units="xy", scale=1.0 / (0.6 * step), width=0.006,
                                           alpha=0.9)
            (self.circles[name],) = ax.plot([0], [0], marker="o", color="white", ms=11, mec="black", mew=1.5,
                                            ls="none", clip_on=False, zorder=4)
            (self.stars[name],) = ax.plot([0], [0], marker="*", color="black", ms=11, mec="white", mew=0.8,
                                          ls="none", clip_on=False, zorder=5)
            ax.set_title(LOSS_LABELS[name] if name != "ce" else "cross-entropy − H(y)", fontsize=10)
            ax.set(xlim=(0, 1), ylim=(0, 1))
            if k % ncols == 0:
                ax.set_ylabel("x2")
            if k // ncols == nrows - 1 or k + ncols >= len(names):
                ax.set_xlabel("x1")
                ax.xaxis.set_tick_params(labelbottom=True)
        for k in range(len(names), nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        cax = fig.add_axes((0.89, 0.2, 0.02, 0.6))
        fig.colorbar(self.images[names[0]], cax=cax, label="loss (clipped to 1)")
        self.suptitle = fig.suptitle("")
        self.update(result)

    def update(self, result: SurfaceResult) -> Figure:
        """Show ``result`` (same losses and arrow lattice as the first one)."""
        for name, img in self.images.items():
            img.set_data(result.values[name].detach().numpy().clip(0, 1))
            g = result.arrows[name].numpy()
            length = np.linalg.norm(g, axis=-1, keepdims=True)
            u = np.where(length > 1e-12, g / np.maximum(length, 1e-12), 0.0)
            self.quivers[name].set_UVC(u[..., 0], u[..., 1])
            self.stars[name].set_data([result.target[0]], [result.target[1]])
            xm = result.minimisers[name]
            self.circles[name].set_data([xm[0]], [xm[1]])
        y1, y2 = result.target
        self.suptitle.set_text(f"Two pixels, target y = ({y1:.2f}, {y2:.2f}) (star); grid minimiser (circle); "
                               "arrows: −gradient")
        return self.fig


def plot_loss_surfaces(result: SurfaceResult, *, levels: int = 12, ncols: int = 3) -> Figure:
    """One map per loss (shared colour scale 0..1, ``levels`` bands), unit-length arrows along the negative
    gradient, the target (black star) and the loss's minimiser (white circle).

    Example:
        >>> fig = plot_loss_surfaces(loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3, losses=("jml1", "sjl")))
        >>> len(fig.axes)   # two panels and a colour bar
        3
    """
    return SurfacePlot(result, levels=levels, ncols=ncols).fig


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
    from .targets import distillation_targets

    num_classes = _check_int(num_classes, "num_classes", 2)
    num_pixels = _check_int(num_pixels, "num_pixels", 1)
    temperature = _check_positive(temperature, "temperature")
    g = torch.Generator().manual_seed(int(seed))
    teacher = 2.0 * torch.randn(1, num_classes, num_pixels, generator=g)
    return distillation_targets(teacher, temperature=temperature).soft


def _race_loss(name: str, target: Tensor, smooth: float) -> Callable[[Tensor], Tensor]:
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
    steps = _check_int(steps, "steps", 1)
    lr = _check_positive(lr, "lr")
    smooth = _check_positive(smooth, "smooth", allow_zero=True)
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


def plot_race(result: RaceResult, *, cls: int = 0) -> Figure:
    """Left: distance to the target against the step (log scale). Right: final probability of class ``cls``
    against its target, one dot per pixel (on the diagonal = reached).

    Example:
        >>> fig = plot_race(race(race_target(3, 4), losses=("ce",), steps=2))
        >>> len(fig.axes)
        2
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=[1.6, 1])
    for name, d in result.distance.items():
        ax.semilogy(np.arange(len(d)), d.clamp_min(1e-8).numpy(), color=LOSS_COLORS[name], ls=_LINESTYLES[name],
                    lw=2, label=f"{LOSS_LABELS[name]}: {result.final[name]:.1e}")
    ax.axhline(1e-3, color="k", lw=0.8, ls=":")
    ax.set(xlabel="optimisation step", ylabel="max |softmax(z) − y|",
           title=f"The race: same start, Adam lr {result.lr:g} → 0 (cosine), {result.steps} steps")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3, which="both")
    t = result.target[0, cls].numpy()
    for name, p in result.probs.items():
        bx.plot(t, p[cls].numpy(), "o", ms=4, alpha=0.7, color=LOSS_COLORS[name], label=LOSS_LABELS[name])
    bx.plot([0, 1], [0, 1], "k:", lw=1)
    bx.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel=f"target probability of class {cls}",
           ylabel="final predicted probability", title="Where each loss ended (one dot per pixel)")
    bx.set_aspect("equal")
    return fig


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
    """Test ``L(x, y) <= L(x, z) + L(z, y)`` on ``n`` random triples (float64, one vectorised call per loss).

    ``distribution``: ``"uniform"`` (entries uniform in [0, 1]), ``"sparse"`` (half the entries 0) or
    ``"binary"`` (hard labels). ``smooth`` must stay 0 for the metric property (a positive ``smooth`` is a
    different function).

    Example:
        >>> res = triangle_check(2000, dim=2, seed=0)
        >>> res.violations["jml1"], res.violations["jml2"], res.violations["dml"] > 0
        (0, 0, True)
    """
    n = _check_int(n, "n", 1)
    dim = _check_int(dim, "dim", 1)
    if distribution not in ("uniform", "sparse", "binary"):
        raise ValueError(f"Expected argument `distribution` to be 'uniform', 'sparse' or 'binary', "
                         f"but got {distribution!r}.")
    names = _check_losses(losses, METRIC_LOSSES)
    tol = _check_positive(tol, "tol", allow_zero=True)
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


def plot_triangle(result: TriangleResult, *, bins: int = 60) -> Figure:
    """Histogram of the slack ``L(x, z) + L(z, y) - L(x, y)`` per loss; the red region (slack < 0) holds the
    violations, counted in the legend.

    Example:
        >>> fig = plot_triangle(triangle_check(100))
        >>> len(fig.axes)
        1
    """
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    lo = min(float(s.min()) for s in result.slack.values())
    hi = max(float(s.max()) for s in result.slack.values())
    edges = np.linspace(min(lo, -0.05), hi, bins + 1)
    for name, s in result.slack.items():
        ax.hist(s.numpy(), bins=edges, histtype="step", lw=2, color=LOSS_COLORS[name],
                label=f"{LOSS_LABELS[name]}: {result.violations[name]} violations")
    ax.axvspan(edges[0], 0, color="red", alpha=0.08)
    ax.axvline(0, color="red", lw=1)
    ax.set_yscale("log")
    ax.set(xlabel="slack L(x,z) + L(z,y) − L(x,y)   (< 0: triangle inequality fails)", ylabel="triples",
           title=f"Triangle inequality on {result.n} random triples in [0,1]^{result.dim} ({result.distribution})")
    ax.legend(fontsize=8, frameon=False)
    return fig


# --------------------------------------------------------------------------------------------- widgets
def render_png(fig: Figure, *, dpi: int = 80) -> bytes:
    """The figure as PNG bytes, with fast (light) compression: what a slider update sends to the browser.

    Example:
        >>> render_png(plot_loss_curves(loss_curves(0.3, grid=11)))[:4]
        b'\\x89PNG'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _show_png(data: bytes) -> None:
    from IPython.display import Image, display

    display(Image(data=data, format="png"))


#: Environment variable that marks a batch run (set by ``jmlkit run`` and the test suite): no live front end.
HEADLESS_ENV = "JMLKIT_HEADLESS"


def headless() -> bool:
    """True in batch runs (``JMLKIT_HEADLESS=1``), where widgets have no front end to talk to.

    The explorers then return a note instead of a widget: with no front end, a widget only adds comm messages
    to the kernel's traffic, and under papermill we saw a widget cell lose its reply now and then (the
    notebook hung). The static figures of the same cells are drawn either way.
    """
    import os

    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


def _headless_note(what: str) -> Any:
    from IPython.display import Markdown

    return Markdown(f"*Batch run: the {what} appears when this notebook is opened in JupyterLab.*")


def curve_explorer(*, target: float = 0.3, grid: int = 201, losses: Sequence[str] = LOSSES, smooth: float = 0.0,
                   step: float = 0.01, dpi: int = 80) -> Any:
    """An ``ipywidgets.interactive`` with a slider for the target of :func:`plot_loss_curves`; display it.

    One figure is built and updated in place on each move (see :func:`seconds_per_update` for the cost). The
    figure for the initial value is drawn when the widget is built, so a headless run renders it once.
    """
    if headless():
        return _headless_note("slider of the target")
    import ipywidgets as widgets

    plot = CurvePlot(loss_curves(target, grid=grid, losses=losses, smooth=smooth))
    slider = widgets.FloatSlider(value=float(target), min=0.0, max=1.0, step=step, description="target y",
                                 continuous_update=True, readout_format=".2f")

    def draw(y: float) -> None:
        _show_png(render_png(plot.update(loss_curves(y, grid=grid, losses=losses, smooth=smooth)), dpi=dpi))

    return widgets.interactive(draw, y=slider)


def surface_explorer(*, target: Sequence[float] = (0.3, 0.7), grid: int = 61, arrow_grid: int = 11,
                     losses: Sequence[str] = LOSSES, smooth: float = 0.0, step: float = 0.05, dpi: int = 80) -> Any:
    """An ``ipywidgets.interactive`` with two sliders (``y1``, ``y2``) for :func:`plot_loss_surfaces`; the maps
    update when a slider is released. The figure for the initial values is drawn when the widget is built."""
    if headless():
        return _headless_note("two sliders of the target")
    import ipywidgets as widgets

    def compute(y1: float, y2: float) -> SurfaceResult:
        return loss_surfaces((y1, y2), grid=grid, arrow_grid=arrow_grid, losses=losses, smooth=smooth)

    plot = SurfacePlot(compute(*target))

    def slider(v: float, name: str) -> Any:
        return widgets.FloatSlider(value=float(v), min=0.0, max=1.0, step=step, description=name,
                                   continuous_update=False, readout_format=".2f")

    def draw(y1: float, y2: float) -> None:
        _show_png(render_png(plot.update(compute(y1, y2)), dpi=dpi))

    return widgets.interactive(draw, y1=slider(target[0], "target y1"), y2=slider(target[1], "target y2"))


def seconds_per_update(kind: str = "surfaces", *, repeats: int = 5, **options: Any) -> dict[str, float]:
    """Median time of one slider update of :func:`curve_explorer` (``kind="curves"``) or
    :func:`surface_explorer` (``"surfaces"``): compute the losses for a new target, update the kept figure and
    render it to PNG. Returns ``{"wall_s": ..., "cpu_s": ...}``; on a busy machine the wall time exceeds the
    CPU time. For the notebook's report; the test suite never asserts a time.

    Example:
        >>> sorted(seconds_per_update("curves", repeats=1, grid=11))
        ['cpu_s', 'wall_s']
    """
    repeats = _check_int(repeats, "repeats", 1)
    dpi = options.pop("dpi", 80)
    if kind == "curves":
        targets = [0.1 + 0.8 * i / repeats for i in range(repeats)]
        compute = lambda y: loss_curves(y, **options)  # noqa: E731
        plot = CurvePlot(compute(0.5))
    elif kind == "surfaces":
        targets = [(0.1 + 0.8 * i / repeats, 0.9 - 0.8 * i / repeats) for i in range(repeats)]
        compute = lambda y: loss_surfaces(y, **options)  # noqa: E731
        plot = SurfacePlot(compute((0.5, 0.5)))
    else:
        raise ValueError(f"Expected argument `kind` to be 'curves' or 'surfaces', but got {kind!r}.")
    render_png(plot.fig, dpi=dpi)  # the first draw lays out the text once, like the widget's first display
    wall, cpu = [], []
    for y in targets:
        t0, c0 = time.perf_counter(), time.process_time()
        render_png(plot.update(compute(y)), dpi=dpi)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": float(np.median(wall)), "cpu_s": float(np.median(cpu))}


def summary(curves: CurveResult | None = None, surfaces: SurfaceResult | None = None,
            race_result: RaceResult | None = None, triangle: TriangleResult | None = None) -> dict[str, Any]:
    """Headline numbers for ``metrics.json`` (scalars only, as the batch runner's ``summary.csv`` wants):
    minimisers, final race distances, triangle violations and self-distances.

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
    return out
