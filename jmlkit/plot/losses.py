"""Figures of notebook 01: what the losses look like (the computations are in :mod:`jmlkit.lessons`), with the
display name (:data:`LOSS_LABELS`) and colour (:data:`LOSS_COLORS`) of each loss.

=========================================  ==================================================================
figure                                     what
=========================================  ==================================================================
:func:`plot_loss_curves` (:class:`CurvePlot`)      every loss against the prediction of one pixel
:func:`plot_loss_surfaces` (:class:`SurfacePlot`)  two pixels: loss maps with gradient arrows
:func:`plot_race`                          free logits optimised toward a soft target by each loss
:func:`plot_triangle`                      the slack of the triangle inequality on random triples
=========================================  ==================================================================

:class:`CurvePlot` and :class:`SurfacePlot` keep their figure so that a slider can update the artists in place
(:meth:`CurvePlot.update`): redrawing an existing figure costs a fraction of building a new one;
:func:`seconds_per_update` measures what one slider move of the explorers costs.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from jmlkit._checks import check_choice, check_int
from jmlkit.lessons import loss_curves, loss_surfaces

from ._common import render_png

if TYPE_CHECKING:
    from jmlkit.lessons import CurveResult, RaceResult, SurfaceResult, TriangleResult

__all__ = ["LOSS_LABELS", "LOSS_COLORS", "CurvePlot", "plot_loss_curves", "SurfacePlot", "plot_loss_surfaces",
           "plot_race", "plot_triangle", "seconds_per_update"]

#: The display name of each loss of :data:`jmlkit.lessons.LOSSES` (legends and panel titles).
LOSS_LABELS: dict[str, str] = {
    "ce": "cross-entropy",
    "sjl": "soft Jaccard (SJL)",
    "jml1": "Jaccard metric, form 1 (JML1)",
    "jml2": "Jaccard metric, form 2 (JML2)",
    "dml": "Dice semimetric (DML)",
    "lovasz": "Lovász (rounded target)",
}
#: One colour per loss of :data:`jmlkit.lessons.LOSSES`.
LOSS_COLORS: dict[str, str] = {
    "ce": "#7f7f7f", "sjl": "#d62728", "jml1": "#1f77b4", "jml2": "#17becf", "dml": "#2ca02c", "lovasz": "#9467bd",
}
_LINESTYLES = {"ce": ":", "sjl": "-", "jml1": "-", "jml2": "--", "dml": "-.", "lovasz": "-"}


def _title(name: str) -> str:
    """The label of a loss; the cross-entropy is drawn minus the target's entropy."""
    return LOSS_LABELS[name] if name != "ce" else "cross-entropy − H(y)"


# --------------------------------------------------------------------------------------------- one pixel
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
            (self.lines[name],) = ax.plot(x, np.zeros_like(x), color=LOSS_COLORS[name], ls=_LINESTYLES[name], lw=2,
                                          label=_title(name))
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
        smooth = f", smooth = {result.smooth:.2f}" if result.smooth else ""
        self.text.set_text(f" target y = {result.target:.2f}{smooth}")
        return self.fig


def plot_loss_curves(result: CurveResult, *, ax: Any = None, ylim: tuple[float, float] = (0.0, 1.05)) -> Figure:
    """All curves of a :class:`~jmlkit.lessons.CurveResult` on one axes, each minimiser marked with a dot, the
    target with a line.

    Example:
        >>> from jmlkit.lessons import loss_curves
        >>> fig = plot_loss_curves(loss_curves(0.3, grid=11))
        >>> len(fig.axes), len(fig.axes[0].lines)        # a line and a dot per loss, the target line
        (1, 13)
    """
    return CurvePlot(result, ax=ax, ylim=ylim).fig


# --------------------------------------------------------------------------------------------- two pixels
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
            ax.set_title(_title(name), fontsize=10)
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
        >>> from jmlkit.lessons import loss_surfaces
        >>> fig = plot_loss_surfaces(loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3, losses=("jml1", "sjl")))
        >>> len(fig.axes)   # two panels and a colour bar
        3
    """
    return SurfacePlot(result, levels=levels, ncols=ncols).fig


# --------------------------------------------------------------------------------------------- the race
def plot_race(result: RaceResult, *, cls: int = 0) -> Figure:
    """Left: distance to the target against the step (log scale). Right: final probability of class ``cls``
    against its target, one dot per pixel (on the diagonal = reached).

    Example:
        >>> from jmlkit.lessons import race, race_target
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
def plot_triangle(result: TriangleResult, *, bins: int = 60) -> Figure:
    """Histogram of the slack ``L(x, z) + L(z, y) - L(x, y)`` per loss; the red region (slack < 0) holds the
    violations, counted in the legend.

    Example:
        >>> from jmlkit.lessons import triangle_check
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


# --------------------------------------------------------------------------------------------- slider cost
def seconds_per_update(kind: str = "surfaces", *, repeats: int = 5, **options: Any) -> dict[str, float]:
    """Median time of one slider update of :func:`~jmlkit.plot.curve_explorer` (``kind="curves"``) or
    :func:`~jmlkit.plot.surface_explorer` (``"surfaces"``): compute the losses for a new target
    (:func:`jmlkit.lessons.loss_curves` / :func:`~jmlkit.lessons.loss_surfaces` with ``options``), update the kept
    figure and render it to PNG. Returns ``{"wall_s": ..., "cpu_s": ...}``; on a busy machine the wall time exceeds
    the CPU time. For the notebook's report; the test suite never asserts a time.

    Example:
        >>> sorted(seconds_per_update("curves", repeats=1, grid=11))
        ['cpu_s', 'wall_s']
    """
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
