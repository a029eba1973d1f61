r"""The live playground: train with any loss and any soft labels, and watch it learn.

:class:`Playground` wraps a :class:`~jmlkit.experiments.playground.Session` (the runs, the run cache shared with
the notebooks, the comparison table) with two figures and, in JupyterLab, a widget (:meth:`Playground.widget`):

=================================  ==============================================================================
piece                              what it shows
=================================  ==============================================================================
:class:`LivePlot`                  one run, redrawn after every epoch: training loss, mIoU and ECE on the watched
                                   validation scenes, IoU per class, and the first scenes: image, labels, and the
                                   prediction coloured by class with its confidence as brightness (dark: unsure)
:func:`comparison_figure`          every run of the session: the three curves overlaid, one colour per run
:meth:`Playground.widget`          the controls (loss and CE weight, labels with ε, window, teacher and T, regime,
                                   epochs, learning rate, seed), **Train** / **Stop**, the live figure, the
                                   comparison (table and overlay), exports (CSV, figure) and the command line
=================================  ==============================================================================

Training runs in a background thread, so the notebook stays free; each epoch's update renders the live figure
(at most about twice a second) and sends it to the widget's image. In a batch run (:func:`~jmlkit.plot.headless`)
:meth:`Playground.widget` returns a note, and the notebook trains with :meth:`Playground.train` (which waits) and
draws the same figures.

``ipywidgets`` is imported only when the widget is built.
"""
from __future__ import annotations

import dataclasses
import html
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from jmlkit._checks import check_int
from jmlkit.experiments.playground import LABELS, LOSSES, Choice, LiveRun, Session, Watch
from jmlkit.io import save_figure

from ._common import render_png
from .interactive import _headless_note, headless

__all__ = ["LivePlot", "comparison_figure", "Playground"]

#: The curves of both figures: ``(history column, axis title)``.
CURVES = (("train_loss", "training loss"), ("val_mIoU_D", "mIoU, val scenes"), ("val_ECE_D", "ECE, val scenes"))
_CLASS_COLOURS = colormaps["tab20"](np.linspace(0, 1, 20))[:, :3]


def _class_rgb(labels: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Label map ``(H, W)`` -> RGB ``(H, W, 3)`` in tab20's colours (class ``k`` -> colour ``k mod 20``); invalid
    pixels white."""
    rgb = _CLASS_COLOURS[np.clip(labels, 0, None) % 20]
    if valid is not None:
        rgb[~valid] = 1.0
    return rgb


def _image_rgb(image: Any) -> np.ndarray:
    x = np.asarray(image, dtype=float)
    x = x.transpose(1, 2, 0) if x.ndim == 3 else x[..., None]
    x = x[..., :3] if x.shape[-1] >= 3 else np.repeat(x[..., :1], 3, axis=-1)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


class LivePlot:
    """The figure of one run (:meth:`update`), kept and redrawn in place: three curves over the epochs and the IoU
    per class on top; below, for each watched scene shown, its image, its labels and the prediction (class colour
    times confidence: a dark pixel is one the network is unsure of).

    Args:
        watch: the run's :class:`~jmlkit.experiments.playground.Watch` (scenes, classes).
        figsize: inches.
    """

    def __init__(self, watch: Watch, *, figsize: tuple[float, float] = (12.0, 6.4)) -> None:
        if not isinstance(watch, Watch):
            raise TypeError(f"Expected `watch` to be a jmlkit.experiments.playground.Watch, but got "
                            f"{type(watch).__name__}.")
        self.watch = watch
        n, k = watch.show, watch.num_classes
        self.fig = Figure(figsize=figsize, layout="constrained")
        top, bottom = self.fig.subfigures(2, 1, height_ratios=[1.0, 1.25])
        axes = top.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.5]})
        self.curve_axes, self.iou_ax = axes[:3], axes[3]
        self.lines = []
        for ax, (_, title) in zip(self.curve_axes, CURVES):
            (line,) = ax.plot([], [], "o-", color="#1f77b4", markersize=3)
            self.lines.append(line)
            ax.set(title=title, xlabel="epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.grid(alpha=0.3)
        x = np.arange(k)
        self.bars = list(self.iou_ax.bar(x, np.zeros(k), color=_CLASS_COLOURS[x % 20], edgecolor="black",
                                         linewidth=0.4))
        names = watch.class_names
        long = max(map(len, names)) > 2
        self.iou_ax.set_xticks(x, names, rotation=45 if long else 0, ha="right" if long else "center",
                               rotation_mode="anchor", fontsize=7)
        self.iou_ax.set(ylim=(0, 1), title="IoU per class, val scenes")
        self.iou_ax.grid(axis="y", alpha=0.3)
        grid = bottom.subplots(3, n, squeeze=False)
        labels = watch.labels[:n].numpy()
        valid = labels != watch.ignore_index if watch.ignore_index is not None else np.ones_like(labels, bool)
        self.valid = valid
        self.pred_images = []
        for j in range(n):
            grid[0, j].imshow(_image_rgb(watch.images[j]), interpolation="nearest")
            grid[1, j].imshow(_class_rgb(labels[j], valid[j]), interpolation="nearest")
            self.pred_images.append(grid[2, j].imshow(np.zeros((*labels.shape[1:], 3)), interpolation="nearest"))
            grid[0, j].set_title(f"val scene {j}", fontsize=8)
            for ax in grid[:, j]:
                ax.set_xticks([]), ax.set_yticks([])
        grid[0, 0].set_ylabel("image", fontsize=8)
        grid[1, 0].set_ylabel("labels", fontsize=8)
        grid[2, 0].set_ylabel("prediction\n(black: chance)", fontsize=8)
        self.title = self.fig.suptitle("run\nstatus", fontsize=10)  # two lines while laid out: room for the status
        self.fig.draw_without_rendering()
        self.fig.set_layout_engine("none")  # laid out once: a redraw only moves data

    def update(self, run: LiveRun) -> Figure:
        """Draw ``run``'s curves and latest snapshot; returns the figure."""
        curves = run.curves()
        for ax, line, (column, _) in zip(self.curve_axes, self.lines, CURVES):
            has = column in curves.columns and len(curves)
            x = curves["epoch"].to_numpy(float) if has else np.array([])
            y = curves[column].to_numpy(float) if has else np.array([])
            line.set_data(x, y)
            if len(x):
                top = max(1.0, float(np.nanmax(x)))
                ax.set_xlim(0.5, top + 0.5)
                finite = y[np.isfinite(y)]
                if len(finite):
                    lo, hi = float(finite.min()), float(finite.max())
                    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-3)
                    ax.set_ylim(lo - pad, hi + pad)
        snap = run.snapshot
        iou = snap.iou if snap is not None else np.full(len(self.bars), np.nan)
        for bar, value in zip(self.bars, iou):
            bar.set_height(0.0 if not np.isfinite(value) else float(value))
        if snap is not None:
            probs = snap.probs.numpy()
            for j, image in enumerate(self.pred_images):
                rgb = _class_rgb(probs[j].argmax(0)) * _brightness(probs[j].max(0), probs.shape[1])[..., None]
                rgb[~self.valid[j]] = 1.0
                image.set_data(rgb)
        self.title.set_text(_status_line(run))
        return self.fig


def _brightness(confidence: np.ndarray, num_classes: int) -> np.ndarray:
    """Confidence as brightness: 0 at chance (``1/K``, a network that knows nothing), 1 when certain.

    >>> _brightness(np.array([0.25, 0.625, 1.0]), 4).tolist()
    [0.0, 0.5, 1.0]
    """
    floor = 1.0 / num_classes
    return np.clip((confidence - floor) / (1.0 - floor), 0.0, 1.0)


def _status_line(run: LiveRun) -> str:
    epochs = run.config.epochs
    done = len(run.history)
    what = {"waiting": "waiting", "running": f"training: epoch {done}/{epochs}",
            "finished": f"finished: {epochs} epochs", "cached": "from the run cache (trained before)",
            "replayed": "replayed from the committed records of the full results" + (
                "" if run.snapshot is not None else " (no model kept: no predictions)"),
            "stopped": f"stopped after {done} of {epochs} epochs (not cached)", "failed": f"failed: {run.error}"}
    line = f"{run.label}\n{what[run.status]}"
    if "mIoU_D" in run.metrics:
        line += f" · test mIoU {100 * run.metrics['mIoU_D']:.1f} %, ECE {100 * run.metrics['ECE_D']:.2f} %"
    return line


def comparison_figure(runs: Sequence[LiveRun], *, figsize: tuple[float, float] = (12.0, 3.4)) -> Figure:
    """The curves of ``runs`` overlaid (training loss, mIoU and ECE on the watched validation scenes), one colour
    per run, numbered as in the comparison table; a run from the cache whose curves this playground did not draw
    shows its training loss only."""
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 3)
    colours = colormaps["tab10"](np.arange(10))
    drawn = 0
    for i, run in enumerate(runs, 1):
        curves = run.curves()
        if not len(curves):
            continue
        drawn += 1
        for ax, (column, _) in zip(axes, CURVES):
            if column in curves.columns:
                ax.plot(curves["epoch"], curves[column], "o-" if run.status != "stopped" else "x--",
                        color=colours[(i - 1) % 10], markersize=3, label=f"{i}: {run.label}" if ax is axes[0] else None)
    for ax, (_, title) in zip(axes, CURVES):
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    if drawn:
        fig.legend(loc="outside lower center", fontsize=7, ncols=2, frameon=False)
    else:
        axes[1].text(0.5, 0.5, "no run yet: press Train", ha="center", va="center", transform=axes[1].transAxes)
    return fig


class Playground:
    """Train with any loss and any soft labels, watch it learn, compare the runs.

    Args:
        profile: the profile the choices start from (``"smoke"``, ``"quick"``, ``"full"``).
        output_dir: the playground's folder (its run cache, shared with the notebooks next to it; its curves; the
            exports).
        choice: the first state of the controls (default :class:`~jmlkit.experiments.playground.Choice`: the
            paper's label-smoothing recipe, CE+JML 0.25 on boundary LS ε 0.5).
        watch_scenes, show: of the watch: validation scenes evaluated after every epoch, and how many of them are
            drawn.
        dpi: of the images sent to the widget.

    Example (notebook 07):
        >>> pg = Playground("smoke", "../runs/interactive/07_playground")  # doctest: +SKIP
        >>> pg.widget()  # controls, Train / Stop, live figure, comparison  # doctest: +SKIP
        >>> run = pg.train(loss="ce", labels="hard")  # the same from code; waits  # doctest: +SKIP
        >>> pg.figure(run), pg.comparison()  # doctest: +SKIP
    """

    def __init__(self, profile: str = "quick", output_dir: str | Path = "../runs/interactive/07_playground", *,
                 choice: Choice | None = None, watch_scenes: int = 64, show: int = 4, dpi: int = 72) -> None:
        self.session = Session(profile, output_dir, watch_scenes=watch_scenes, show=show)
        if choice is not None and not isinstance(choice, Choice):
            raise TypeError(f"Expected `choice` to be a Choice, but got {type(choice).__name__}.")
        self.choice = choice or Choice()
        self.dpi = check_int("dpi", dpi, low=10)
        self._plots: dict[int, LivePlot] = {}
        self._ui: dict[str, Any] | None = None
        self._drawn_at = 0.0
        self._draw_lock = threading.Lock()

    # ------------------------------------------------------------------ from code
    def train(self, choice: Choice | None = None, *, wait: bool = True, **options: Any) -> LiveRun:
        """Train ``choice`` (or this playground's choice with ``options`` changed); waits unless not ``wait``.
        The widget, if shown, follows the run."""
        choice = dataclasses.replace(choice or self.choice, **options)
        run = self.session.start(choice, on_update=self._on_update)
        if wait:
            run.wait()
        return run

    def _plot(self, run: LiveRun) -> LivePlot:
        key = id(run.watch)
        if key not in self._plots:
            self._plots[key] = LivePlot(run.watch)
        return self._plots[key]

    def figure(self, run: LiveRun | None = None) -> Figure:
        """The live figure of ``run`` (default: the last)."""
        run = run or (self.session.runs[-1] if self.session.runs else None)
        if run is None:
            raise ValueError("Expected a run to draw, but the playground has trained none yet: call train() first.")
        with self._draw_lock:
            return self._plot(run).update(run)

    def comparison(self) -> pd.DataFrame:
        """The table of every run (:meth:`~jmlkit.experiments.playground.Session.comparison`)."""
        return self.session.comparison()

    def comparison_figure(self) -> Figure:
        return comparison_figure(self.session.runs)

    def export(self, folder: str | Path | None = None) -> list[Path]:
        """Write the comparison (``comparison.csv``, ``comparison_curves.csv``) and its figure
        (``comparison.png``, ``comparison.svg``) to ``folder`` (default: the output folder); returns the paths."""
        folder = Path(folder) if folder is not None else self.session.output_dir
        table = self.session.export_csv(folder / "comparison.csv")
        figures = save_figure(self.comparison_figure(), folder, "comparison")
        return [table, table.with_name("comparison_curves.csv"), *(figures or [])]

    # ------------------------------------------------------------------ the widget
    def _on_update(self, run: LiveRun) -> None:
        """Called by the run's thread after every epoch and at its end: redraw the widget's figures."""
        if self._ui is None:
            return
        now = time.perf_counter()
        if not run.done and now - self._drawn_at < 0.5:  # a fast run: at most two redraws a second
            return
        self._drawn_at = now
        ui = self._ui
        try:
            ui["live"].value = render_png(self.figure(run), dpi=self.dpi)
            ui["status"].value = html.escape(_status_line(run)).replace("\n", "<br>")
            if run.done:
                self._show_comparison()
        except Exception as err:  # a drawing error is shown; it never stops the training
            ui["status"].value = f"<span style='color:#b00'>drawing failed: {html.escape(repr(err))}</span>"
        finally:
            if run.done:
                ui["train"].disabled, ui["stop"].disabled = False, True

    def _show_comparison(self) -> None:
        ui = self._ui
        table = self.comparison().drop(columns=["command", "first_epoch_s"])
        ui["table"].value = table.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="–",
                                          classes="jmlkit-playground-table")
        ui["compare"].value = render_png(self.comparison_figure(), dpi=self.dpi)
        ui["teacher"].options = self._teacher_options()

    def _teacher_options(self) -> list[tuple[str, str | None]]:
        return list(self.session.teachers().items()) or [("no finished run with a model yet", None)]

    def widget(self) -> Any:
        """The controls, Train / Stop, the live figure and the comparison; display it. A note in batch runs."""
        if headless():
            return _headless_note("playground (controls, Train and Stop)",
                                  below=" Below, the same panels of a run trained from code.")
        import ipywidgets as w

        c = self.choice
        first = c.config(self.session.profile)
        style = {"description_width": "80px"}
        controls = {
            "loss": w.Dropdown(options=[(v, k) for k, v in LOSSES.items()], value=c.loss, description="loss", style=style),
            "ce_weight": w.FloatSlider(value=c.ce_weight, min=0.0, max=1.0, step=0.05, description="CE weight",
                                       style=style, continuous_update=False),
            "labels": w.Dropdown(options=[(v, k) for k, v in LABELS.items()], value=c.labels, description="labels",
                                 style=style),
            "epsilon": w.FloatSlider(value=c.epsilon, min=0.0, max=1.0, step=0.05, description="ε", style=style,
                                     continuous_update=False),
            "window": w.IntSlider(value=c.window, min=3, max=9, step=2, description="window", style=style,
                                  continuous_update=False),
            "teacher": w.Dropdown(options=self._teacher_options(), description="teacher", style=style),
            "temperature": w.FloatSlider(value=c.temperature, min=0.5, max=8.0, step=0.5, description="T",
                                         style=style, continuous_update=False),
            "regime": w.Dropdown(options=self.session.regimes, value=c.regime, description="regime", style=style),
            "epochs": w.IntSlider(value=first.epochs, min=1, max=max(60, first.epochs), description="epochs",
                                  style=style, continuous_update=False),
            # a drop-down of round values (and the profile's own): a slider would snap the profile's value off, and
            # the run would miss the notebooks' cache
            "lr": w.Dropdown(options=sorted({1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, first.lr}), value=first.lr,
                             description="lr", style=style),
            "seed": w.BoundedIntText(value=c.seed, min=0, max=10_000, description="seed", style=style),
        }
        train, stop = w.Button(description="Train", button_style="success", icon="play"), \
            w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        export = w.Button(description="Export", icon="download", tooltip="comparison table, curves and figure (CSV, PNG, SVG) into the output folder")
        status = w.HTML("press <b>Train</b>")
        command = w.Textarea(layout=w.Layout(width="98%", height="3.2em"), disabled=True)
        live, compare = w.Image(format="png"), w.Image(format="png")
        table = w.HTML()
        for widget, css in ((live, "live"), (compare, "compare"), (status, "status"), (table, "table")):
            widget.add_class(f"jmlkit-playground-{css}")
        self._ui = dict(controls, train=train, stop=stop, status=status, live=live, compare=compare, table=table,
                        command=command)

        def current() -> Choice:
            values = {k: v.value for k, v in controls.items()}
            return Choice(**values)

        def refresh(_: Any = None) -> None:
            labels, loss = controls["labels"].value, controls["loss"].value
            if loss == "lovasz" and labels != "hard":
                controls["labels"].value = "hard"
                return
            controls["ce_weight"].disabled = loss == "ce"
            controls["epsilon"].disabled = labels not in ("boundary", "uniform")
            controls["window"].disabled = labels != "boundary"
            controls["teacher"].disabled = controls["temperature"].disabled = labels != "kd"
            try:
                command.value = self.session.command(current())
            except (ValueError, TypeError) as err:
                command.value = f"# {err}"

        def on_train(_: Any) -> None:
            try:
                choice = current()
            except (ValueError, TypeError) as err:
                status.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
                return
            self.choice = choice
            train.disabled, stop.disabled = True, False
            status.value = "starting…"
            try:
                self.train(choice, wait=False)
            except Exception as err:  # shown, never raised into the front end
                train.disabled, stop.disabled = False, True
                status.value = f"<span style='color:#b00'>{html.escape(f'{type(err).__name__}: {err}')}</span>"

        def on_stop(_: Any) -> None:
            run = self.session.active
            if run is not None:
                status.value = "stopping…"
                run.stop(wait=False)

        def on_export(_: Any) -> None:
            paths = self.export()
            status.value = "exported: " + ", ".join(html.escape(p.name) for p in paths)

        for control in controls.values():
            control.observe(refresh, names="value")
        train.on_click(on_train)
        stop.on_click(on_stop)
        export.on_click(on_export)
        refresh()
        if self.session.runs:
            self._show_comparison()
            live.value = render_png(self.figure(), dpi=self.dpi)
        else:
            compare.value = render_png(self.comparison_figure(), dpi=self.dpi)
        left = w.VBox([controls[k] for k in ("loss", "ce_weight", "labels", "epsilon", "window")])
        middle = w.VBox([controls[k] for k in ("teacher", "temperature", "regime", "epochs", "lr", "seed")])
        return w.VBox([w.HBox([left, middle]), w.HBox([train, stop, export]), status, live,
                       w.HTML("<b>Every run so far</b> (test-split mIoU/ECE of finished runs; the watch's last "
                              "epoch on the validation scenes)"), table, compare,
                       w.HTML("<b>The command line</b> that trains the chosen configuration (same cache hash):"),
                       command])
