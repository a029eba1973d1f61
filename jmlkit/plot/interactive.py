"""Sliders over the figures of notebook 01, and the switch that turns them off in batch runs.

:func:`curve_explorer` and :func:`surface_explorer` keep one figure (:class:`~jmlkit.plot.CurvePlot`,
:class:`~jmlkit.plot.SurfacePlot`) and update its artists in place, then send a lightly compressed PNG
(:func:`render_png`): one slider move costs one vectorised loss evaluation and one redraw
(:func:`jmlkit.lessons.seconds_per_update` measures it).

``ipywidgets`` and ``IPython`` are imported only when a widget is built or shown, so ``import jmlkit.plot``
works without them.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from jmlkit.lessons import LOSSES, SurfaceResult, loss_curves, loss_surfaces

from .losses import CurvePlot, SurfacePlot

__all__ = ["HEADLESS_ENV", "headless", "render_png", "curve_explorer", "surface_explorer"]

#: Environment variable that marks a batch run (set by ``jmlkit run`` and the test suite): no live front end.
HEADLESS_ENV = "JMLKIT_HEADLESS"


def headless() -> bool:
    """True in batch runs (``JMLKIT_HEADLESS=1``), where widgets have no front end to talk to.

    The explorers then return a note instead of a widget: with no front end, a widget only adds comm messages
    to the kernel's traffic, and under papermill we saw a widget cell lose its reply now and then (the
    notebook hung). The static figures of the same cells are drawn either way.
    """
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


def render_png(fig: Figure, *, dpi: int = 80) -> bytes:
    """The figure as PNG bytes, with fast (light) compression: what a slider update sends to the browser.

    Example:
        >>> render_png(Figure(figsize=(1, 1)))[:4]
        b'\\x89PNG'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _show_png(data: bytes) -> None:
    from IPython.display import Image, display

    display(Image(data=data, format="png"))


def _headless_note(what: str) -> Any:
    from IPython.display import Markdown

    return Markdown(f"*Batch run: the {what} appears when this notebook is opened in JupyterLab.*")


def curve_explorer(*, target: float = 0.3, grid: int = 201, losses: Sequence[str] = LOSSES, smooth: float = 0.0,
                   step: float = 0.01, dpi: int = 80) -> Any:
    """An ``ipywidgets.interactive`` with a slider for the target of :func:`~jmlkit.plot.plot_loss_curves`;
    display it.

    One figure is built and updated in place on each move (see :func:`jmlkit.lessons.seconds_per_update` for the
    cost). The figure for the initial value is drawn when the widget is built, so a headless run renders it once.
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
