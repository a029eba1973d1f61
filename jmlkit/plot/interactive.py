"""The widgets of the notebooks, and the switch that turns them off in batch runs.

=================================  ==============================================================================
widget                             what moves
=================================  ==============================================================================
:func:`curve_explorer`             01: the soft target of the one-pixel loss curves and ``smooth``
:func:`surface_explorer`           01: the two targets of the two-pixel loss maps
:func:`smoothing_explorer`         02: ε, smoothing kind and window over the soft target of a real scene
                                   (:class:`SmoothingTargetPlot`: one class's target map, the ε/C floor per class)
:func:`reliability_explorer`       06: which finished runs and which metric (:func:`reliability_comparison`,
                                   :class:`ReliabilityComparisonPlot`)
=================================  ==============================================================================

The widgets of notebooks 03, 04 and 05 are in :mod:`jmlkit.plot.explorers`. The explorers of 01 and 02 keep one
figure (:class:`~jmlkit.plot.CurvePlot`, :class:`~jmlkit.plot.SurfacePlot`, :class:`SmoothingTargetPlot`) and
update its artists in place, then send a lightly compressed PNG
(:func:`render_png`): one slider move costs one computation and one redraw (:func:`jmlkit.plot.seconds_per_update`
measures it for 01). The picker of 06 keeps its panels and replaces their bars. Every widget
draws its first state when it is built; in a batch run (:func:`headless`) the widgets of 01 return a note (their
static figures are drawn by the cells above them) and those of 02 and 06 return their first state's figure.

``ipywidgets`` and ``IPython`` are imported only when a widget is built or shown, so ``import jmlkit.plot``
works without them.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from jmlkit import targets
from jmlkit._checks import check_choice, check_ignore_index, check_int, check_real
from jmlkit.lessons import LOSSES, SurfaceResult, loss_curves, loss_surfaces
from jmlkit.layout import notebook_number

from ._common import _reliability_bars, _reliability_frame, render_png
from .losses import CurvePlot, SurfacePlot

__all__ = ["HEADLESS_ENV", "SMOOTHINGS", "headless", "render_png", "curve_explorer", "surface_explorer",
           "SmoothingTargetPlot", "smoothing_explorer", "ReliabilityComparisonPlot", "reliability_comparison",
           "reliability_explorer"]

#: Environment variable that marks a batch run (set by ``jmlkit run`` and the test suite): no live front end.
HEADLESS_ENV = "JMLKIT_HEADLESS"


def headless() -> bool:
    """True in batch runs (``JMLKIT_HEADLESS=1``), where widgets have no front end to talk to.

    The explorers then return a note instead of a widget: with no front end, a widget only adds comm messages
    to the kernel's traffic, and under papermill we saw a widget cell lose its reply now and then (the
    notebook hung). The static figures of the same cells are drawn either way.
    """
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


def _show_png(data: bytes) -> None:
    from IPython.display import Image, display

    display(Image(data=data, format="png"))


def _headless_note(what: str, *, below: str = "") -> Any:
    from IPython.display import Markdown

    return Markdown(f"*Batch run: the {what} appears when this notebook is opened in JupyterLab.{below}*")


def _headless_first_state(what: str, fig: Figure) -> Figure:
    """Batch runs: a note that the widget needs JupyterLab, and its first state's figure (returned, so it shows)."""
    from IPython.display import display

    display(_headless_note(what, below=" Below: its first state."))
    return fig


def curve_explorer(*, target: float = 0.3, grid: int = 201, losses: Sequence[str] = LOSSES, smooth: float = 0.0,
                   step: float = 0.01, smooth_max: float = 2.0, dpi: int = 80) -> Any:
    """An ``ipywidgets.interactive`` with sliders for the target (``target y``) and for the ``smooth`` constant of
    the region losses (0 to ``smooth_max``; notebook 01's exercise 1) of :func:`~jmlkit.plot.plot_loss_curves`;
    display it.

    One figure is built and updated in place on each move (see :func:`jmlkit.plot.seconds_per_update` for the
    cost). The figure for the initial values is drawn when the widget is built, so a headless run renders it once.
    """
    smooth_max = check_real("smooth_max", smooth_max, low=check_real("smooth", smooth, low=0.0))
    if headless():
        return _headless_note("explorer of the target and smooth")
    import ipywidgets as widgets

    plot = CurvePlot(loss_curves(target, grid=grid, losses=losses, smooth=smooth))
    slider = widgets.FloatSlider(value=float(target), min=0.0, max=1.0, step=step, description="target y",
                                 continuous_update=True, readout_format=".2f")
    smooth_slider = widgets.FloatSlider(value=float(smooth), min=0.0, max=smooth_max, step=0.05,
                                        description="smooth", continuous_update=True, readout_format=".2f")

    def draw(y: float, s: float) -> None:
        _show_png(render_png(plot.update(loss_curves(y, grid=grid, losses=losses, smooth=s)), dpi=dpi))

    return widgets.interactive(draw, y=slider, s=smooth_slider)


def surface_explorer(*, target: Sequence[float] = (0.3, 0.7), grid: int = 61, arrow_grid: int = 11,
                     losses: Sequence[str] = LOSSES, smooth: float = 0.0, step: float = 0.05, dpi: int = 80) -> Any:
    """An ``ipywidgets.interactive`` with two sliders (``y1``, ``y2``) for :func:`~jmlkit.plot.plot_loss_surfaces`;
    the maps update when a slider is released. The figure for the initial values is drawn when the widget is
    built."""
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


# --------------------------------------------------------------------------------------------- notebook 02
#: The label smoothings of :class:`SmoothingTargetPlot` (:func:`jmlkit.targets.boundary_label_smoothing`,
#: :func:`jmlkit.targets.label_smoothing`).
SMOOTHINGS = ("boundary", "uniform")


def _label_maps(labels: Any) -> Any:
    """``labels`` as a long tensor ``(B, H, W)`` (a single ``(H, W)`` map gets a batch dimension)."""
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if not isinstance(labels, torch.Tensor):
        raise TypeError("Expected `labels` to be a tensor or numpy array of label maps, "
                        f"but got {type(labels).__name__}.")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"Expected `labels` to hold integer class indices, but got dtype {labels.dtype}.")
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3 or labels.shape[0] == 0 or labels.shape[1] == 0 or labels.shape[2] == 0:
        raise ValueError("Expected `labels` of shape (H, W) or (B, H, W) with B, H, W >= 1, "
                         f"but got {tuple(labels.shape)}.")
    return labels.long().cpu()


class SmoothingTargetPlot:
    r"""What label smoothing asks of one scene, as one figure that a slider updates in place (:meth:`update`).

    Three panels: the scene's label map with the smoothed pixels lightened; the soft target of one class
    :math:`c` (where :math:`c` is not, boundary smoothing still gives it :math:`\varepsilon/C` on every smoothed
    pixel); and, per class, the L1 target mass that this :math:`\varepsilon/C` floor adds,
    :math:`\frac{\varepsilon}{C}(S - s_c)` (:func:`jmlkit.targets.smoothing_shares`), with the floor's share of the
    class's whole target mass written above each bar. The bar axis is fixed at the largest floor any setting can
    give (:math:`N/C`, uniform smoothing at :math:`\varepsilon = 1`), so moving a slider shows the floor grow.

    Args:
        labels: int ``(H, W)`` or ``(B, H, W)`` label maps (a tensor or numpy array), e.g. the ``label`` of
            :func:`jmlkit.experiments.examples`.
        num_classes: ``C``, an int >= 2.
        class_names: a name per class (default: the class indices).
        ignore_index: label value of pixels that do not count (shown blank).

    Example:
        >>> import torch
        >>> y = torch.zeros(1, 8, 8, dtype=torch.long)
        >>> y[0, 2:6, 2:6] = 1
        >>> p = SmoothingTargetPlot(y, 3, class_names=["bg", "a", "b"])
        >>> fig = p.update(epsilon=0.6, smoothing="boundary", kernel_size=3, class_index=2)
        >>> [round(float(b.get_height()), 2) for b in p.bars]  # eps/C * (S - s_c): 32 smoothed pixels
        [2.4, 4.0, 6.4]
        >>> p.axes[1].get_title()
        "target of class 'b'"
    """

    def __init__(self, labels: Any, num_classes: int, *, class_names: Sequence[str] | None = None,
                 ignore_index: int | None = None, figsize: tuple[float, float] = (11.5, 3.6)) -> None:
        self.labels = _label_maps(labels)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.ignore_index = check_ignore_index(ignore_index)
        valid = (self.labels != self.ignore_index if self.ignore_index is not None
                 else torch.ones_like(self.labels, dtype=torch.bool))
        bad = valid & ((self.labels < 0) | (self.labels >= self.num_classes))
        if bool(bad.any()):
            raise ValueError(f"Expected `labels` in [0, {self.num_classes - 1}] or `ignore_index` "
                             f"({self.ignore_index}), but got {int(self.labels[bad][0])}.")
        self.valid = valid
        if class_names is None:
            class_names = [str(k) for k in range(self.num_classes)]
        class_names = [str(n) for n in class_names]
        if len(class_names) != self.num_classes:
            raise ValueError(f"Expected `class_names` to name {self.num_classes} classes, but got {len(class_names)}.")
        self.class_names = class_names

        self.fig = Figure(figsize=figsize, layout="constrained")
        self.axes = self.fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.2, 2.2]})
        ax_l, ax_t, ax_b = self.axes
        h, w = self.labels.shape[1:]
        self.label_image = ax_l.imshow(np.zeros((h, w)), cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
        self.band_image = ax_l.imshow(np.zeros((h, w, 4)), interpolation="nearest")
        self.target_image = ax_t.imshow(np.zeros((h, w)), cmap="viridis", norm=PowerNorm(0.4, vmin=0.0, vmax=1.0),
                                        interpolation="nearest")
        self.fig.colorbar(self.target_image, ax=ax_t, shrink=0.85, ticks=[0, 0.05, 0.2, 0.5, 1.0])
        for ax in (ax_l, ax_t):
            ax.set_xticks([]), ax.set_yticks([])
        x = np.arange(self.num_classes)
        self.bars = list(ax_b.bar(x, np.zeros(self.num_classes), color="#ff7f0e", edgecolor="black", linewidth=0.4))
        self.shares = [ax_b.text(k, 0, "", ha="center", va="bottom", fontsize=7) for k in x]
        ax_b.set_xticks(x, self.class_names, rotation=45 if max(map(len, self.class_names)) > 3 else 0,
                       ha="right" if max(map(len, self.class_names)) > 3 else "center", fontsize=8)
        ax_b.set(ylabel="floor mass (pixels)", xlim=(-0.6, self.num_classes - 0.4))
        ax_b.grid(axis="y", alpha=0.3)
        self.state: dict[str, Any] = {}
        # lay the figure out once, then keep the positions: constrained layout would cost half of every redraw
        self.update()
        self.fig.draw_without_rendering()
        self.fig.set_layout_engine("none")

    def default_class(self, scene: int = 0) -> int:
        """The first class present in ``scene`` other than class 0 (the background of most data sets), else 0."""
        present = self.labels[scene][self.valid[scene]].unique().tolist()
        return next((int(c) for c in present if c != 0), 0)

    def update(self, *, epsilon: float = 0.5, smoothing: str = "boundary", kernel_size: int = 3,
               class_index: int | None = None, scene: int = 0) -> Figure:
        r"""Show ``scene`` smoothed with ``smoothing`` at ``epsilon`` (window ``kernel_size``, boundary only) and
        the target of class ``class_index`` (default: :meth:`default_class`); returns the figure."""
        epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0)
        smoothing = check_choice("smoothing", smoothing, SMOOTHINGS)
        kernel_size = check_int("kernel_size", kernel_size, low=3)
        if kernel_size % 2 == 0:
            raise ValueError(f"Expected `kernel_size` to be an odd int >= 3, but got {kernel_size}.")
        scene = check_int("scene", scene, low=0, high=self.labels.shape[0] - 1)
        c = self.default_class(scene) if class_index is None else check_int(
            "class_index", class_index, low=0, high=self.num_classes - 1)
        y, valid = self.labels[scene:scene + 1], self.valid[scene].numpy()
        kw = {"ignore_index": self.ignore_index}
        if smoothing == "boundary":
            soft = targets.boundary_label_smoothing(y, self.num_classes, epsilon, kernel_size=kernel_size, **kw).soft[0]
        else:
            soft = targets.label_smoothing(y, self.num_classes, epsilon, **kw).soft[0]
        shares = targets.smoothing_shares(y, self.num_classes, epsilon=epsilon, kernel_size=kernel_size,
                                          smoothing=smoothing, background=None, **kw)
        shown = np.where(valid, y[0].numpy(), 0)
        own = np.take_along_axis(soft.numpy(), shown[None], 0)[0]
        smoothed = valid & (own < 1.0)
        band = np.zeros((*shown.shape, 4))
        band[smoothed] = (1.0, 1.0, 1.0, 0.55)
        self.label_image.set_data(np.ma.masked_where(~valid, shown))
        self.band_image.set_data(band)
        self.target_image.set_data(np.ma.masked_where(~valid, soft[c].numpy()))

        floor, share = shares.per_class["floor_mass"].to_numpy(), shares.per_class["floor_share"].to_numpy()
        top = max(float(valid.sum()) / self.num_classes, 1e-9) * 1.18
        for k, (bar, text) in enumerate(zip(self.bars, self.shares)):
            bar.set_height(floor[k])
            bar.set_linewidth(2.0 if k == c else 0.4)
            text.set_position((k, floor[k] + 0.01 * top))
            text.set_text("" if not np.isfinite(share[k]) or floor[k] == 0 else f"{share[k]:.0%}")
        ax_l, ax_t, ax_b = self.axes
        ax_b.set_ylim(0, top)
        ax_l.set_title(f"scene {scene}: labels,\n{int(smoothed.sum())} of {int(valid.sum())} px smoothed (light)",
                       fontsize=9)
        ax_t.set_title(f"target of class '{self.class_names[c]}'")
        ax_b.set_title(f"target mass the ε/C floor adds to each class ({floor.sum():.1f} px in all);\n"
                       "above a bar: its share of the class's whole target", fontsize=9)
        window = f", {kernel_size}×{kernel_size} window" if smoothing == "boundary" else ""
        self.fig.suptitle(f"{smoothing} label smoothing, ε = {epsilon:.2f}{window}: "
                          f"ε/C = {epsilon / self.num_classes:.3f}")
        self.state = {"epsilon": epsilon, "smoothing": smoothing, "kernel_size": kernel_size, "class_index": c,
                      "scene": scene, "floor_mass": floor, "smoothed_pixels": int(smoothed.sum())}
        return self.fig


def smoothing_explorer(labels: Any, num_classes: int, *, class_names: Sequence[str] | None = None,
                       ignore_index: int | None = None, epsilon: float = 0.5, smoothing: str = "boundary",
                       kernel_size: int = 3, class_index: int | None = None, max_kernel: int = 9, step: float = 0.05,
                       dpi: int = 80) -> Any:
    r"""Sliders of :math:`\varepsilon`, the smoothing kind and the window over the soft target of a real scene
    (:class:`SmoothingTargetPlot`); display it.

    Controls: ``ε`` (0 to 1), ``smoothing`` (boundary / uniform), ``window`` (3, 5, …, ``max_kernel``; boundary
    smoothing only), ``class`` (whose target map is shown) and, with several label maps, ``scene``. Each change
    recomputes the target with :mod:`jmlkit.targets` and redraws the kept figure. The first state is drawn when the
    widget is built; in a batch run (:func:`headless`) the function returns that figure under a note instead.

    Args:
        labels: int ``(H, W)`` or ``(B, H, W)`` label maps, e.g. ``experiments.examples(config)["label"]``.
        num_classes: ``C``.
        class_names: a name per class.
        ignore_index: label value of pixels that do not count.
        epsilon, smoothing, kernel_size, class_index: the first state (see :meth:`SmoothingTargetPlot.update`).
        max_kernel: the largest window of the slider, odd and ``>= kernel_size``.
        step: step of the ε slider.
        dpi: resolution of the PNG sent on each change.

    Example:
        >>> import torch
        >>> y = torch.zeros(2, 8, 8, dtype=torch.long)
        >>> y[:, 2:6, 2:6] = 1
        >>> w = smoothing_explorer(y, 2, epsilon=0.2)  # doctest: +SKIP
        >>> w.children[0].value = 0.4  # the ε slider: the target and the bars are redrawn  # doctest: +SKIP
    """
    max_kernel = check_int("max_kernel", max_kernel, low=3)
    if max_kernel % 2 == 0 or check_int("kernel_size", kernel_size, low=3) > max_kernel:
        raise ValueError(f"Expected `max_kernel` to be an odd int >= kernel_size ({kernel_size}), "
                         f"but got {max_kernel}.")
    step = check_real("step", step, low=0.0, high=1.0, low_open=True)
    dpi = check_int("dpi", dpi, low=10)
    plot = SmoothingTargetPlot(labels, num_classes, class_names=class_names, ignore_index=ignore_index)
    plot.update(epsilon=epsilon, smoothing=smoothing, kernel_size=kernel_size, class_index=class_index)
    if headless():
        return _headless_first_state("explorer of ε, smoothing kind and window", plot.fig)
    import ipywidgets as widgets

    first = plot.state
    kernel = widgets.IntSlider(value=first["kernel_size"], min=3, max=max_kernel, step=2, description="window",
                               continuous_update=False)
    kind = widgets.Dropdown(options=SMOOTHINGS, value=first["smoothing"], description="smoothing")
    kind.observe(lambda change: setattr(kernel, "disabled", change["new"] != "boundary"), names="value")
    names = plot.class_names if len(set(plot.class_names)) == plot.num_classes else [
        f"{k}: {n}" for k, n in enumerate(plot.class_names)]
    controls = {
        "epsilon": widgets.FloatSlider(value=first["epsilon"], min=0.0, max=1.0, step=step, description="ε",
                                       continuous_update=True, readout_format=".2f"),
        "smoothing": kind,
        "kernel_size": kernel,
        "class_index": widgets.Dropdown(options=list(zip(names, range(plot.num_classes))),
                                        value=first["class_index"], description="class"),
    }
    controls["scene"] = widgets.fixed(0) if plot.labels.shape[0] == 1 else widgets.IntSlider(
        value=0, min=0, max=plot.labels.shape[0] - 1, description="scene", continuous_update=False)

    def draw(epsilon: float, smoothing: str, kernel_size: int, class_index: int, scene: int) -> Figure:
        fig = plot.update(epsilon=epsilon, smoothing=smoothing, kernel_size=kernel_size, class_index=class_index,
                          scene=scene)
        _show_png(render_png(fig, dpi=dpi))
        return fig

    return widgets.interactive(draw, **controls)


# --------------------------------------------------------------------------------------------- notebook 06
def _run_label(key: Any, *, short: bool = True) -> str:
    """``("02_label_smoothing", "jml_bls")`` -> ``"02 jml_bls"``: a notebook is named by its number (``short``;
    ``02b`` for ``02b_smoothing_ablation``)."""
    parts = key if isinstance(key, tuple) else (key,)
    head = str(parts[0])
    if short and len(parts) > 1 and notebook_number(head) is not None:
        head = notebook_number(head)
    return " ".join([head, *map(str, parts[1:])])


def _run_labels(keys: Sequence[Any]) -> dict[Any, str]:
    """A label per run key: short ones, unless two runs would share one."""
    short = [_run_label(k) for k in keys]
    return dict(zip(keys, short if len(set(short)) == len(short) else [_run_label(k, short=False) for k in keys]))


def _metric_choices(summary: pd.DataFrame | None) -> list[str]:
    if summary is None:
        return ["ECE_D"]
    return [c[:-5] for c in summary.columns if c.endswith("_mean")]


def _check_comparison(tables: Any, summary: Any, by: Sequence[str]) -> tuple[dict, pd.DataFrame | None, list[str]]:
    if not isinstance(tables, Mapping) or not tables:
        raise ValueError("Expected `tables` to be a non-empty mapping run key -> reliability table "
                         f"(experiments.reliability_tables), but got {tables!r:.80}.")
    if summary is not None:
        if not isinstance(summary, pd.DataFrame):
            raise TypeError(f"Expected `summary` to be None or a DataFrame (experiments.summarize), "
                            f"but got {type(summary).__name__}.")
        present = [c for c in by if c in summary.columns]
        if not present:
            raise ValueError(f"Expected `summary` to have the key columns {list(by)}, but its columns are "
                             f"{list(summary.columns)}.")
        by = present
    return dict(tables), summary, list(by)


def _metric_value(key: Any, metric: str, tables: Mapping, summary: pd.DataFrame | None,
                  by: Sequence[str]) -> tuple[float, float]:
    """``(mean, std)`` of ``metric`` for run ``key``: from ``summary`` (mean over seeds), else the pooled ECE."""
    if summary is None:
        data = tables[key]
        return (float(data.get("ECE_D", np.nan)) if isinstance(data, Mapping) else np.nan), np.nan
    parts = key if isinstance(key, tuple) else (key,)
    rows = summary
    for col, value in zip(by, parts):
        rows = rows[rows[col] == value]
    if not len(rows):
        return np.nan, np.nan
    return float(rows[f"{metric}_mean"].iloc[0]), float(rows.get(f"{metric}_std", pd.Series([np.nan])).iloc[0])


class ReliabilityComparisonPlot:
    """The figure of :func:`reliability_comparison`, kept so that a picker can redraw it in place (:meth:`update`).

    Up to ``max_runs`` reliability panels and one metric panel are created once and placed in inches; an update
    replaces their bars and moves the panels (and the figure's width) to the number of runs chosen. Building a
    figure and laying it out costs more than drawing it; this keeps a change of the picker well under a second.

    Args:
        tables, summary, by: as in :func:`reliability_comparison`.
        max_runs: the most runs one figure shows (the first chosen).
        panel_size: inches per reliability panel.
    """

    _LEFT, _GAP, _BAR_LEFT, _BAR_WIDTH, _RIGHT, _BOTTOM, _TOP = 0.55, 0.3, 1.2, 1.9, 0.25, 0.5, 0.55

    def __init__(self, tables: Mapping[Any, Any], *, summary: pd.DataFrame | None = None,
                 by: Sequence[str] = ("notebook", "config"), max_runs: int = 6,
                 panel_size: tuple[float, float] = (2.4, 3.1)) -> None:
        self.tables, self.summary, self.by = _check_comparison(tables, summary, by)
        self.max_runs = check_int("max_runs", max_runs, low=1)
        self.panel_size = (check_real("panel_size[0]", panel_size[0], low=0.5),
                           check_real("panel_size[1]", panel_size[1], low=0.5))
        self.metrics = _metric_choices(self.summary)
        self.names = _run_labels(list(self.tables))
        self.fig = Figure(figsize=(1, self.panel_size[1] + self._BOTTOM + self._TOP))
        self.panels = [self.fig.add_axes((0, 0, 0.1, 0.1)) for _ in range(self.max_runs)]
        for i, ax in enumerate(self.panels):
            ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1)
            ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence")
            ax.set_ylabel("accuracy" if i == 0 else "")
            if i:
                ax.tick_params(labelleft=False)
        self.metric_ax = self.fig.add_axes((0, 0, 0.1, 0.1))
        self.message = self.fig.text(0.5, 0.5, "", ha="center", va="center")
        self.chosen: list[Any] = []
        self.metric = self.metrics[0]

    def _check(self, chosen: Sequence[Any] | None, metric: str) -> tuple[list[Any], str]:
        metric = check_choice("metric", metric, self.metrics)
        chosen = list(self.tables)[:min(4, self.max_runs)] if chosen is None else list(chosen)
        unknown = [k for k in chosen if k not in self.tables]
        if unknown:
            raise ValueError(f"Expected `chosen` to be keys of `tables` ({list(self.tables)}), "
                             f"but got unknown {unknown}.")
        return chosen[:self.max_runs], metric

    def _place(self, n: int) -> None:
        w, h = self.panel_size
        width = self._LEFT + max(n, 1) * (w + self._GAP) + self._BAR_LEFT + self._BAR_WIDTH + self._RIGHT
        height = h + self._BOTTOM + self._TOP
        self.fig.set_size_inches(width, height)
        for i, ax in enumerate(self.panels):
            ax.set_visible(i < n)
            ax.set_position(((self._LEFT + i * (w + self._GAP)) / width, self._BOTTOM / height, w / width, h / height))
        x = self._LEFT + max(n, 1) * (w + self._GAP) + self._BAR_LEFT
        self.metric_ax.set_position((x / width, self._BOTTOM / height, self._BAR_WIDTH / width, h / height))
        self.metric_ax.set_visible(n > 0)

    def update(self, chosen: Sequence[Any] | None = None, metric: str = "ECE_D") -> Figure:
        """Show the reliability diagrams of ``chosen`` (keys of ``tables``; default: the first four) and ``metric``."""
        chosen, metric = self._check(chosen, metric)
        n = len(chosen)
        self._place(n)
        self.message.set_text("" if n else "no run chosen: pick one or more runs")
        for ax, key in zip(self.panels, chosen):
            for artist in [*ax.patches, *ax.lines[1:]]:
                artist.remove()
            df, ece = _reliability_frame(self.tables[key])
            _reliability_bars(ax, df, linewidth=0.4)
            top = float(df["count"].to_numpy(float)[-1] / max(df["count"].sum(), 1))
            ece_text = "" if ece is None else f"ECE {100 * ece:.2f}%, "
            ax.set_title(f"{self.names[key]}\n{ece_text}{100 * top:.0f}% px in top bin", fontsize=9)
        ax = self.metric_ax
        ax.clear()
        if n:
            scale = 1.0 if metric == "NLL" else 100.0
            values = np.array([_metric_value(k, metric, self.tables, self.summary, self.by) for k in chosen]) * scale
            y = np.arange(n)[::-1]
            err = np.where(np.isfinite(values[:, 1]), values[:, 1], 0.0)
            ax.barh(y, np.nan_to_num(values[:, 0]), xerr=err, color="#7f7f7f", edgecolor="black", linewidth=0.4,
                    capsize=2)
            for yy, v in zip(y, values[:, 0]):
                ax.text(np.nan_to_num(v), yy, f" {v:.2f}" if np.isfinite(v) else " n/a", va="center", fontsize=8)
            ax.set_yticks(y, [self.names[k] for k in chosen], fontsize=8)
            right = np.nanmax(np.append(np.nan_to_num(values[:, 0]) + err, 0.0))
            ax.set_xlim(0, max(right * 1.35, 1e-9))
            ax.set(title=metric, xlabel=metric + ("" if scale == 1.0 else " (%)"))
            ax.grid(axis="x", alpha=0.3)
        self.chosen, self.metric = chosen, metric
        return self.fig


def reliability_comparison(tables: Mapping[Any, Any], chosen: Sequence[Any] | None = None, *, metric: str = "ECE_D",
                           summary: pd.DataFrame | None = None, by: Sequence[str] = ("notebook", "config"),
                           panel_size: tuple[float, float] = (2.4, 3.1)) -> Figure:
    """Reliability diagrams of the ``chosen`` runs side by side, and one bar per run of ``metric``.

    Args:
        tables: ``{run key: reliability data}`` as :func:`jmlkit.experiments.reliability_tables` returns it (keys are
            tuples of the ``by`` values, e.g. ``("02_label_smoothing", "jml_bls")``).
        chosen: keys of ``tables`` to show, in this order (default: the first four).
        metric: a metric of ``summary`` (its ``<metric>_mean`` column; ``_std`` gives error bars); without
            ``summary`` only ``"ECE_D"``, the pooled ECE of ``tables``. Shown in % except the NLL.
        summary: :func:`jmlkit.experiments.summarize` of the runs' metrics, ``by`` the same columns.
        by: the columns of ``summary`` that the parts of a key match.
        panel_size: inches per reliability panel.

    Each reliability panel: accuracy per confidence bin (bars), the gap to the diagonal (red), the diagonal; its
    title gives the pooled ECE and the share of pixels in the most confident bin. The last panel: ``metric`` per
    run (mean over seeds, error bar: standard deviation).

    Example:
        >>> t = {"lower": [0.0, 0.5], "upper": [0.5, 1.0], "count": [1, 3], "confidence": [0.4, 0.9],
        ...      "accuracy": [0.0, 1.0]}
        >>> tables = {("02_ls", "ce"): {"reliability": t, "ECE_D": 0.1},
        ...           ("02_ls", "jml"): {"reliability": t, "ECE_D": 0.2}}
        >>> summary = pd.DataFrame({"notebook": ["02_ls", "02_ls"], "config": ["ce", "jml"], "NLL_mean": [0.3, 0.5]})
        >>> fig = reliability_comparison(tables, [("02_ls", "jml")], metric="NLL", summary=summary)
        >>> [ax.get_title().splitlines()[0] for ax in fig.axes if ax.get_visible()], fig.axes[-1].get_xlabel()
        (['02 jml', 'NLL'], 'NLL')
    """
    n = len(tables) if chosen is None and isinstance(tables, Mapping) else max(len(chosen or ()), 1)
    plot = ReliabilityComparisonPlot(tables, summary=summary, by=by, max_runs=max(n, 1), panel_size=panel_size)
    return plot.update(chosen, metric)


def reliability_explorer(tables: Mapping[Any, Any], summary: pd.DataFrame | None = None, *,
                         chosen: Sequence[Any] | None = None, metric: str = "ECE_D", max_runs: int = 6,
                         by: Sequence[str] = ("notebook", "config"), dpi: int = 80) -> Any:
    """A picker of finished runs (multi-select) and of a metric (dropdown) over :func:`reliability_comparison`:
    side-by-side reliability diagrams of the chosen runs; display it.

    At most ``max_runs`` runs are drawn (the first chosen). The first state (``chosen``, default the first four runs)
    is drawn when the widget is built; in a batch run (:func:`headless`) the function returns that figure under a
    note instead.

    Example (notebook 06):
        >>> tables = experiments.reliability_tables(runs)  # doctest: +SKIP
        >>> reliability_explorer(tables, summary, metric="ECE_D")  # doctest: +SKIP
    """
    dpi = check_int("dpi", dpi, low=10)
    plot = ReliabilityComparisonPlot(tables, summary=summary, by=by, max_runs=max_runs)
    plot.update(chosen, metric)  # checks the first state
    if headless():
        return _headless_first_state("picker of runs and metric", plot.fig)
    import ipywidgets as widgets

    picker = widgets.SelectMultiple(options=[(plot.names[k], k) for k in plot.tables], value=tuple(plot.chosen),
                                    rows=min(len(plot.tables), 8), description="runs")
    metric_box = widgets.Dropdown(options=plot.metrics, value=plot.metric, description="metric")

    def show(runs: Sequence[Any], metric: str) -> Figure:
        fig = plot.update(list(runs), metric)
        _show_png(render_png(fig, dpi=dpi))
        return fig

    return widgets.interactive(show, runs=picker, metric=metric_box)
