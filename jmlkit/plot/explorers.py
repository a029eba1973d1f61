"""The widgets of notebooks 03, 04 and 05: a temperature, a confidence threshold and a tissue slice to move.

=================================  ==============================================================================
widget                             what moves
=================================  ==============================================================================
:func:`temperature_explorer`       03: the temperature ``T`` of distillation (:class:`TemperaturePlot`: the
                                   teacher's probabilities at T, the KL and JML terms and their gradients)
:func:`threshold_explorer`         04: the confidence ``threshold`` of pseudo-labels (:class:`PseudoLabelPlot`:
                                   the kept pixels on real scenes, their share and accuracy)
:func:`soft_label_explorer`        05: the ``slice``, the tissue ``class`` and a probability ``band`` of the brain
                                   slices (:class:`SoftLabelSlicePlot`)
=================================  ==============================================================================

As the explorers of :mod:`jmlkit.plot.interactive`, each keeps one figure, updates its artists in place on every
move (:meth:`TemperaturePlot.update`, ...) and sends a lightly compressed PNG (:func:`render_png`); the figure is laid
out once when built, so a move costs one computation and one redraw. Every widget draws its first state when it is
built; in a batch run (:func:`~jmlkit.plot.headless`) the function returns that figure under a note instead. The
computations are :mod:`jmlkit.lessons`' (:mod:`~jmlkit.lessons.temperature`, :mod:`~jmlkit.lessons.pseudo_labels`),
which call :mod:`jmlkit.losses` and :mod:`jmlkit.targets`. ``ipywidgets`` is imported only when a widget is built.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from jmlkit._checks import check_int, check_real
from jmlkit.lessons import pseudo_labels as pl
from jmlkit.lessons import temperature as tl

from ._common import render_png
from .interactive import _headless_first_state, headless

__all__ = ["TemperaturePlot", "temperature_explorer", "PseudoLabelPlot", "threshold_explorer", "SoftLabelSlicePlot",
           "soft_label_explorer"]

_TERM_LABELS = {"kl": "T²·KL(q_t^T ‖ q_s^T)", "jml": "JML(p_s, q_t^T)"}
_TERM_COLORS = {"kl": "#7f7f7f", "jml": "#1f77b4"}


def _show_png(data: bytes) -> None:
    from IPython.display import Image, display

    display(Image(data=data, format="png"))


def _freeze_layout(fig: Figure) -> None:
    """Lay the figure out once and keep the positions: constrained layout would cost half of every redraw."""
    fig.draw_without_rendering()
    fig.set_layout_engine("none")


def _names(class_names: Sequence[str] | None, n: int) -> list[str]:
    names = [str(c) for c in class_names] if class_names else [str(k) for k in range(n)]  # none or empty: indices
    if len(names) != n:
        raise ValueError(f"Expected `class_names` to name {n} classes, but got {len(names)}.")
    return names


def _gray(images: Any, name: str = "images") -> np.ndarray:
    """``(B, C_in, H, W)`` images as ``(B, H, W, 3)`` floats in [0, 1] for display (each image min-max scaled)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"Expected `{name}` to be a tensor (B, C_in, H, W), but got {type(images).__name__}.")
    if images.ndim != 4:
        raise ValueError(f"Expected `{name}` of shape (B, C_in, H, W), but got {tuple(images.shape)}.")
    im = images.detach().float().cpu().numpy()
    im = np.moveaxis(im[:, :3] if im.shape[1] >= 3 else im[:, :1].repeat(3, 1), 1, -1)
    lo = im.min(axis=(1, 2, 3), keepdims=True)
    span = im.max(axis=(1, 2, 3), keepdims=True) - lo
    return np.where(span > 0, (im - lo) / np.where(span > 0, span, 1.0), 0.0)


def _interactive(draw: Any, **controls: Any) -> Any:
    import ipywidgets as widgets

    return widgets.interactive(draw, **controls)


def _one_slider(plot: Any, slider: Any, dpi: int) -> Any:
    """``ipywidgets.interactive`` of one slider whose value goes to ``plot.update``; each move sends the PNG."""

    def draw(value: float) -> Figure:
        fig = plot.update(value)
        _show_png(render_png(fig, dpi=dpi))
        return fig

    return _interactive(draw, value=slider)


# --------------------------------------------------------------------------------------------- 03: temperature
class TemperaturePlot:
    r"""What the temperature :math:`T` does in distillation, as one figure that a slider updates (:meth:`update`).

    Four panels: the teacher's probabilities :math:`q_t^T` at two pixels (bars; the student's :math:`p_s` as black
    ticks), the most confident and the most hesitant one of the scenes; the two teacher terms of JML-KD,
    :math:`T^2\,\mathrm{KL}(q_t^T\|q_s^T)` and :math:`\mathrm{JML}(p_s, q_t^T)`, against :math:`T`; the size of their
    gradients with respect to the student's logits against :math:`T` (root mean square over the pixels of
    :math:`N\,\lVert\partial/\partial z_s\rVert`); and at the hesitant pixel the negative gradient of each term per
    class (times :math:`N`): where one step moves the student's logits. The curves are computed once
    (:func:`jmlkit.lessons.temperature.temperature_sweep`); a move computes the terms at the new :math:`T`
    (:func:`~jmlkit.lessons.temperature.temperature_terms`).

    Args:
        student_logits, teacher_logits: float ``(B, C, H, W)`` of one shape, e.g. by
            :func:`jmlkit.lessons.temperature.model_logits` on a few test scenes.
        target: optional int ``(B, H, W)`` labels: pixels equal to ``ignore_index`` count nowhere.
        ignore_index: see ``target``.
        class_names: a name per class.
        temperatures: the temperatures of the curves (increasing, > 0).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> z_s, z_t = torch.randn(1, 3, 4, 4, generator=g), 4 * torch.randn(1, 3, 4, 4, generator=g)
        >>> p = TemperaturePlot(z_s, z_t, class_names=["bg", "a", "b"], temperatures=[0.5, 1, 2, 4])
        >>> fig = p.update(2.0)
        >>> round(sum(b.get_height() for b in p.bars["confident"]), 6)   # the teacher's probabilities at T
        1.0
        >>> fig._suptitle.get_text().startswith("T = 2.00")
        True
    """

    def __init__(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                 target: torch.Tensor | None = None, ignore_index: int | None = None,
                 class_names: Sequence[str] | None = None, temperatures: Sequence[float] = tl.TEMPERATURES,
                 figsize: tuple[float, float] = (11.5, 6.8)) -> None:
        self.pixels = tl.pick_pixels(teacher_logits, target=target, ignore_index=ignore_index)
        self.sweep = tl.temperature_sweep(student_logits, teacher_logits, temperatures, target=target,
                                          ignore_index=ignore_index, pixels=list(self.pixels.values()))
        self.inputs = dict(student_logits=student_logits, teacher_logits=teacher_logits, target=target,
                           ignore_index=ignore_index)
        C = student_logits.shape[1]
        self.class_names = _names(class_names, C)
        self.fig = Figure(figsize=figsize, layout="constrained")
        self.axes = self.fig.subplots(2, 2, sharex="col")
        (ax_p, ax_v), (ax_d, ax_g) = self.axes
        x = np.arange(C)
        colors = {"confident": "#2ca02c", "hesitant": "#ff7f0e"}
        self.bars, self.ticks = {}, {}
        for k, name in enumerate(self.pixels):
            dx = (k - 0.5) * 0.4
            self.bars[name] = list(ax_p.bar(x + dx, np.zeros(C), width=0.4, color=colors[name]))
            (self.ticks[name],) = ax_p.plot(x + dx, np.zeros(C), "_", color="black", ms=8, mew=1.5)
        rotate = max(map(len, self.class_names)) > 3
        ax_d.set_xticks(x, self.class_names, rotation=45 if rotate else 0, ha="right" if rotate else "center",
                        fontsize=8)
        ax_p.set(ylim=(0, 1.02), ylabel="probability")
        t = self.sweep.temperatures.numpy()
        self.dots: dict[str, Any] = {}
        for ax, data, what in ((ax_v, self.sweep.values, "term"), (ax_g, self.sweep.grad_rms, "grad")):
            for name in tl.TERMS:
                ax.plot(t, data[name].numpy(), color=_TERM_COLORS[name], lw=2, label=_TERM_LABELS[name])
                (self.dots[what, name],) = ax.plot([t[0]], [0], "o", color=_TERM_COLORS[name], ms=7, mec="white")
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
        octaves = [2.0 ** k for k in range(int(np.ceil(np.log2(t[0]))), int(np.floor(np.log2(t[-1]))) + 1)]
        ax_g.set_xticks(octaves, [f"{v:g}" for v in octaves])
        ax_g.xaxis.set_minor_locator(NullLocator())
        ax_g.set(xlabel="temperature T", xlim=(t[0], t[-1]))
        self.vlines = [ax.axvline(1.0, color="black", lw=1, alpha=0.6) for ax in (ax_v, ax_g)]
        ax_v.set(ylabel="term", title="the teacher terms of JML-KD against T")
        ax_g.set(ylabel="RMS over pixels of N·|∂/∂z_s|", title="the size of their gradients")
        ax_v.set_ylim(min(ax_v.get_ylim()[0], 0), ax_v.get_ylim()[1])
        ax_g.set_ylim(0, ax_g.get_ylim()[1])
        self.grad_bars = {name: list(ax_d.bar(x + (k - 0.5) * 0.4, np.zeros(C), width=0.4, color=_TERM_COLORS[name]))
                          for k, name in enumerate(tl.TERMS)}
        ax_d.axhline(0, color="black", lw=0.8)
        ax_d.set(ylabel="−N·∂term/∂z_s", ylim=self._grad_limits(),
                 title="at the orange pixel: where one step\nmoves the student's logits")
        ax_d.grid(axis="y", alpha=0.3)
        self.fig.legend(handles=[ax_v.lines[0], ax_v.lines[2]], loc="outside lower center", ncol=2, frameon=False)
        self.state: tl.TemperatureState | None = None
        self.update(1.0)
        _freeze_layout(self.fig)

    def _grad_limits(self) -> tuple[float, float]:
        """A symmetric axis holding the hesitant pixel's gradients (times N) at every temperature of the curves."""
        k = list(self.pixels).index("hesitant")
        n_valid = int(self.sweep.n_valid)
        top = max(float(g[:, k].abs().max()) for g in self.sweep.pixel_grads.values()) * max(n_valid, 1)
        return -1.1 * max(top, 1e-9), 1.1 * max(top, 1e-9)

    def update(self, temperature: float = 1.0) -> Figure:
        """Show everything at ``temperature`` (> 0); returns the figure."""
        s = tl.temperature_terms(**self.inputs, temperature=temperature)
        T = s.temperature
        for name, (b, *rest) in self.pixels.items():
            index = (b, slice(None), *rest)
            for bar, v in zip(self.bars[name], s.teacher_probs[index].tolist()):
                bar.set_height(v)
            self.ticks[name].set_ydata(s.student_probs[index].numpy())
        b, *rest = self.pixels["hesitant"]
        for name in tl.TERMS:
            g = -s.n_valid * s.grads[name][(b, slice(None), *rest)]
            for bar, v in zip(self.grad_bars[name], g.tolist()):
                bar.set_height(v)
            self.dots["term", name].set_data([T], [s.values[name]])
            self.dots["grad", name].set_data([T], [s.grad_rms[name]])
        for line in self.vlines:
            line.set_xdata([T, T])
        confidence = float(s.teacher_probs.amax(1)[s.valid].mean()) if s.n_valid else float("nan")
        self.axes[0, 0].set_title(f"the teacher's q_t^T at T = {T:.2f} at its most confident pixel (green)\n"
                                  "and its most hesitant (orange); ticks: the student's p_s", fontsize=9)
        self.fig.suptitle(f"T = {T:.2f}: teacher's mean largest probability {confidence:.2f}; "
                          f"T²·KL {s.values['kl']:.3f}, JML {s.values['jml']:.3f} (over {s.n_valid} pixels)")
        self.state = s
        return self.fig


def temperature_explorer(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                         target: torch.Tensor | None = None, ignore_index: int | None = None,
                         class_names: Sequence[str] | None = None, temperature: float = 1.0, dpi: int = 80) -> Any:
    """A slider ``T`` (1/2 to 16, a quarter octave per step) over :class:`TemperaturePlot`; display it.

    The first state (``temperature``) is drawn when the widget is built; in a batch run the function returns that
    figure under a note instead.

    Example (notebook 03):
        >>> t_logits = lessons.model_logits(teacher.model, ex["image"])  # doctest: +SKIP
        >>> temperature_explorer(s_logits, t_logits, target=ex["label"], ignore_index=255)  # doctest: +SKIP
    """
    temperature = check_real("temperature", temperature, low=0.5, high=16.0)
    dpi = check_int("dpi", dpi, low=10)
    plot = TemperaturePlot(student_logits, teacher_logits, target=target, ignore_index=ignore_index,
                           class_names=class_names)
    plot.update(temperature)
    if headless():
        return _headless_first_state("slider of the temperature T", plot.fig)
    import ipywidgets as widgets

    slider = widgets.FloatLogSlider(value=temperature, base=2, min=-1, max=4, step=0.25, description="T",
                                    continuous_update=True, readout_format=".2f")

    return _one_slider(plot, slider, dpi)


# --------------------------------------------------------------------------------------------- 04: threshold
_KEPT_RIGHT, _KEPT_WRONG, _VEIL = (0.17, 0.63, 0.17, 0.5), (0.84, 0.15, 0.16, 0.9), (1.0, 1.0, 1.0, 0.7)


class PseudoLabelPlot:
    r"""Which pixels a confidence threshold turns into pseudo-labels, as one figure that a slider updates
    (:meth:`update`).

    Up to ``max_scenes`` scenes with the kept pixels coloured (green: the arg-max is the true label, red: it is not)
    and the others veiled, and one panel with the share of valid pixels kept and the accuracy of the kept
    pseudo-labels against the threshold, over all the scenes given (:func:`jmlkit.lessons.pseudo_labels
    .threshold_curve`, computed once); a move recomputes the kept pixels
    (:func:`~jmlkit.lessons.pseudo_labels.pseudo_label_state`).

    Args:
        probs: float ``(B, C, H, W)``, the model's probabilities on scenes whose labels training did not use.
        labels: int ``(B, H, W)``, their true labels.
        images: optional ``(B, C_in, H, W)`` scenes shown under the pseudo-labels.
        ignore_index: label value of pixels that count nowhere.
        max_scenes: the most scenes drawn.

    Example:
        >>> probs = torch.softmax(3 * torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)), 1)
        >>> p = PseudoLabelPlot(probs, probs.argmax(1))                   # every pseudo-label right
        >>> _ = p.update(0.9)
        >>> p.state.accuracy, p.state.share < 1
        (1.0, True)
    """

    def __init__(self, probs: torch.Tensor, labels: torch.Tensor, *, images: torch.Tensor | None = None,
                 ignore_index: int | None = None, max_scenes: int = 3, thresholds: Sequence[float] = pl.THRESHOLDS,
                 figsize: tuple[float, float] | None = None) -> None:
        self.curve = pl.threshold_curve(probs, labels, thresholds, ignore_index=ignore_index)
        self.probs, self.labels, self.ignore_index = probs, labels, ignore_index
        n = min(check_int("max_scenes", max_scenes, low=1), probs.shape[0])
        if images is not None:
            shown = _gray(images)
            if shown.shape[0] != probs.shape[0] or shown.shape[1:3] != tuple(probs.shape[2:]):
                raise ValueError(f"Expected `images` (B, C_in, H, W) with the B, H, W of `probs` "
                                 f"{(probs.shape[0], *probs.shape[2:])}, but got {tuple(images.shape)}.")
        else:
            shown = np.ones((probs.shape[0], *probs.shape[2:], 3))
        self.fig = Figure(figsize=figsize or (2.6 * n + 4.4, 3.9), layout="constrained")
        axes = self.fig.subplots(1, n + 1, width_ratios=[1] * n + [1.6])
        self.scene_axes, self.curve_ax = list(axes[:n]), axes[n]
        h, w = probs.shape[2:]
        self.overlays = []
        for k, ax in enumerate(self.scene_axes):
            ax.imshow(shown[k], interpolation="nearest")
            self.overlays.append(ax.imshow(np.zeros((h, w, 4)), interpolation="nearest"))
            ax.set_xticks([]), ax.set_yticks([])
        ax = self.curve_ax
        t = self.curve.thresholds.numpy()
        ax.plot(t, 100 * self.curve.share.numpy(), color="#1f77b4", lw=2, label="pixels kept")
        ax.plot(t, 100 * self.curve.accuracy.numpy(), color="#2ca02c", lw=2, label="kept pseudo-labels right")
        (self.share_dot,) = ax.plot([0], [0], "o", color="#1f77b4", ms=7, mec="white")
        (self.acc_dot,) = ax.plot([0], [0], "o", color="#2ca02c", ms=7, mec="white")
        self.vline = ax.axvline(0, color="black", lw=1, alpha=0.6)
        ax.set(xlim=(0, 1), ylim=(0, 102), xlabel="confidence threshold", ylabel="%")
        ax.grid(alpha=0.3)
        self.fig.legend(handles=[*ax.lines[:2], Patch(color=_KEPT_RIGHT, label="kept, right"),
                                 Patch(color=_KEPT_WRONG, label="kept, wrong"),
                                 Patch(facecolor="white", edgecolor="gray", label="not kept (veiled)")],
                        loc="outside lower center", ncol=5, fontsize=8, frameon=False)
        self.state: pl.PseudoLabelState | None = None
        self.update(0.9)
        _freeze_layout(self.fig)

    def update(self, threshold: float = 0.9) -> Figure:
        """Show the pseudo-labels at ``threshold`` (in [0, 1]); returns the figure."""
        s = pl.pseudo_label_state(self.probs, self.labels, threshold, ignore_index=self.ignore_index)
        for k, (ax, overlay) in enumerate(zip(self.scene_axes, self.overlays)):
            kept, right, valid = s.kept[k].numpy(), s.correct[k].numpy(), s.valid[k].numpy()
            rgba = np.zeros((*kept.shape, 4))
            rgba[valid & ~kept] = _VEIL
            rgba[kept & right] = _KEPT_RIGHT
            rgba[kept & ~right] = _KEPT_WRONG
            overlay.set_data(rgba)
            n_kept = int(kept.sum())
            acc = f"{int((kept & right).sum()) / n_kept:.0%} of them right" if n_kept else "none kept"
            ax.set_title(f"scene {k}: {n_kept} of {int(valid.sum())} px kept,\n{acc}", fontsize=9)
        t = s.threshold
        self.vline.set_xdata([t, t])
        self.share_dot.set_data([t], [100 * s.share])
        self.acc_dot.set_data([t], [100 * s.accuracy])
        accuracy = f", {s.accuracy:.1%} of them right" if s.n_kept else ""
        self.fig.suptitle(f"threshold {t:.2f}: {s.share:.1%} of {s.n_valid} pixels ({self.probs.shape[0]} scenes) "
                          f"become pseudo-labels{accuracy}")
        self.curve_ax.set_title("over all the scenes", fontsize=9)
        self.state = s
        return self.fig


def threshold_explorer(probs: torch.Tensor, labels: torch.Tensor, *, images: torch.Tensor | None = None,
                       ignore_index: int | None = None, threshold: float = 0.9, max_scenes: int = 3,
                       step: float = 0.01, dpi: int = 80) -> Any:
    """A slider ``threshold`` (0 to 1) over :class:`PseudoLabelPlot`; display it.

    The first state (``threshold``) is drawn when the widget is built; in a batch run the function returns that
    figure under a note instead.

    Example (notebook 04):
        >>> p = predict(first["labeled_only"].model, train_scenes, n=32)  # doctest: +SKIP
        >>> threshold_explorer(p.probs, p.labels, images=p.images, ignore_index=255)  # doctest: +SKIP
    """
    threshold = check_real("threshold", threshold, low=0.0, high=1.0)
    step = check_real("step", step, low=0.0, high=1.0, low_open=True)
    dpi = check_int("dpi", dpi, low=10)
    plot = PseudoLabelPlot(probs, labels, images=images, ignore_index=ignore_index, max_scenes=max_scenes)
    plot.update(threshold)
    if headless():
        return _headless_first_state("slider of the confidence threshold", plot.fig)
    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=threshold, min=0.0, max=1.0, step=step, description="threshold",
                                 continuous_update=True, readout_format=".2f")

    return _one_slider(plot, slider, dpi)


# --------------------------------------------------------------------------------------------- 05: soft labels
class SoftLabelSlicePlot:
    r"""One slice of a data set with soft labels (notebook 05: the brain tissue maps), as one figure that sliders
    update (:meth:`update`): the image, the soft label :math:`y_c` of one class, and the band mask, the pixels with
    :math:`\mathrm{low} < y_c < \mathrm{high}` (partial volume, the definition of notebook 05's ``band``) in colour
    over the image.

    Args:
        images: ``(N, C_in, H, W)`` slices.
        soft: float ``(N, K, H, W)`` soft labels (each pixel's ``K`` entries sum to 1).
        class_names: a name per class.

    Example:
        >>> soft = torch.softmax(torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)), 1)
        >>> p = SoftLabelSlicePlot(torch.rand(2, 1, 8, 8), soft, class_names=["bg", "gm", "wm"])
        >>> _ = p.update(index=1, class_index=2, band=(0.2, 0.8))
        >>> p.state["in_band"] == int(((soft[1, 2] > 0.2) & (soft[1, 2] < 0.8)).sum())
        True
    """

    def __init__(self, images: torch.Tensor, soft: torch.Tensor, *, class_names: Sequence[str] | None = None,
                 figsize: tuple[float, float] = (11.0, 3.9)) -> None:
        if not isinstance(soft, torch.Tensor) or not soft.is_floating_point() or soft.ndim != 4:
            raise TypeError("Expected `soft` to be a float tensor (N, K, H, W) of soft labels, but got "
                            f"{tuple(soft.shape) if isinstance(soft, torch.Tensor) else type(soft).__name__}.")
        self.images = _gray(images)
        if self.images.shape[:3] != (soft.shape[0], *soft.shape[2:]):
            raise ValueError(f"Expected `images` (N, C_in, H, W) with the N, H, W of `soft` "
                             f"{(soft.shape[0], *soft.shape[2:])}, but got {tuple(images.shape)}.")
        self.soft = soft.detach().float().cpu()
        self.class_names = _names(class_names, soft.shape[1])
        self.fig = Figure(figsize=figsize, layout="constrained")
        self.axes = self.fig.subplots(1, 3)
        ax_i, ax_y, ax_b = self.axes
        h, w = soft.shape[2:]
        self.image = ax_i.imshow(self.images[0], interpolation="nearest")
        self.target = ax_y.imshow(np.zeros((h, w)), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        self.fig.colorbar(self.target, ax=ax_y, shrink=0.85, label="soft label y")
        self.band_image = ax_b.imshow(self.images[0], interpolation="nearest")
        self.band_overlay = ax_b.imshow(np.zeros((h, w, 4)), interpolation="nearest")
        for ax in self.axes:
            ax.set_xticks([]), ax.set_yticks([])
        ax_i.set_title("image")
        self.state: dict[str, Any] = {}
        self.update(index=0, class_index=min(1, soft.shape[1] - 1))
        _freeze_layout(self.fig)

    def update(self, *, index: int = 0, class_index: int = 1, band: tuple[float, float] = (0.2, 0.8)) -> Figure:
        """Show slice ``index``, the soft label of class ``class_index`` and the pixels whose soft label lies
        strictly inside ``band`` (``0 <= low < high <= 1``); returns the figure."""
        index = check_int("index", index, low=0, high=self.soft.shape[0] - 1)
        c = check_int("class_index", class_index, low=0, high=self.soft.shape[1] - 1)
        if not isinstance(band, (tuple, list)) or len(band) != 2:
            raise TypeError(f"Expected `band` to be a pair (low, high), but got {band!r}.")
        low, high = check_real("band[0]", band[0], low=0.0, high=1.0), check_real("band[1]", band[1], low=0.0, high=1.0)
        if not low < high:
            raise ValueError(f"Expected `band` with low < high, but got ({low}, {high}).")
        y = self.soft[index, c].numpy()
        inside = (y > low) & (y < high)
        overlay = np.zeros((*y.shape, 4))
        overlay[inside] = (0.0, 0.85, 1.0, 0.85)
        overlay[~inside] = (0.0, 0.0, 0.0, 0.35)
        self.image.set_data(self.images[index])
        self.band_image.set_data(self.images[index])
        self.target.set_data(y)
        self.band_overlay.set_data(overlay)
        name = self.class_names[c]
        n_in, n_some = int(inside.sum()), int((y > 0).sum())
        _, ax_y, ax_b = self.axes
        ax_y.set_title(f"y: {name}")
        ax_b.set_title(f"{low:.2f} < y < {high:.2f}: {n_in} px (cyan)", fontsize=10)
        share = f"{n_in / n_some:.0%}" if n_some else "none"
        self.fig.suptitle(f"slice {index} of {self.soft.shape[0]}, {name}: {n_some} px with y > 0, "
                          f"{share} of them inside the band")
        self.state = {"index": index, "class_index": c, "band": (low, high), "in_band": n_in, "nonzero": n_some}
        return self.fig


def soft_label_explorer(images: torch.Tensor, soft: torch.Tensor, *, class_names: Sequence[str] | None = None,
                        index: int | None = None, class_index: int = 1, band: tuple[float, float] = (0.2, 0.8),
                        step: float = 0.05, dpi: int = 80) -> Any:
    """Sliders ``slice`` and ``band`` (a range) and a drop-down ``class`` over :class:`SoftLabelSlicePlot`; display
    it.

    The first state (``index``, default the middle slice; ``class_index``; ``band``) is drawn when the widget is
    built; in a batch run the function returns that figure under a note instead.

    Example (notebook 05):
        >>> slices = test_set.tensors()  # doctest: +SKIP
        >>> soft_label_explorer(slices["image"], slices["soft"], class_names=test_set.class_names)  # doctest: +SKIP
    """
    step = check_real("step", step, low=0.0, high=1.0, low_open=True)
    dpi = check_int("dpi", dpi, low=10)
    plot = SoftLabelSlicePlot(images, soft, class_names=class_names)
    index = plot.soft.shape[0] // 2 if index is None else index
    plot.update(index=index, class_index=class_index, band=band)
    if headless():
        return _headless_first_state("explorer of slice, class and band", plot.fig)
    import ipywidgets as widgets

    first = plot.state
    controls = {
        "index": widgets.IntSlider(value=first["index"], min=0, max=plot.soft.shape[0] - 1, description="slice",
                                   continuous_update=True),
        "class_index": widgets.Dropdown(options=list(zip(plot.class_names, range(len(plot.class_names)))),
                                        value=first["class_index"], description="class"),
        "band": widgets.FloatRangeSlider(value=first["band"], min=0.0, max=1.0, step=step, description="band",
                                         continuous_update=True, readout_format=".2f"),
    }

    def draw(index: int, class_index: int, band: tuple[float, float]) -> Figure:
        fig = plot.update(index=index, class_index=class_index, band=band)
        _show_png(render_png(fig, dpi=dpi))
        return fig

    return _interactive(draw, **controls)

