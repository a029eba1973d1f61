"""Is a figure readable? Overlapping text, a legend over the data, text cut off at the figure's edge.

:func:`layout_problems` draws a figure once (Agg) and asks matplotlib's renderer for the box of every artist on it
(``get_window_extent``); the tests call it on every figure function of :mod:`jmlkit.plot`, so that a figure a
teacher projects never has two labels on top of each other ("93.993.9") or a legend hiding a curve.

What counts as a problem:

* two visible, non-empty texts (titles, axis and tick labels, annotations, legend entries of different legends,
  colour-bar labels) whose boxes overlap by more than ``tolerance`` of the smaller one;
* a legend whose box holds a data point of its axes (a line's vertex, a scatter point, an error-bar end) or
  overlaps a bar by more than ``tolerance`` of the bar (a figure legend: the data of every axes);
* a text that reaches outside the figure.

Example:
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(3, 2), layout="constrained")
    >>> ax = fig.subplots()
    >>> _ = ax.plot([0, 1], [0, 1], label="a line")
    >>> _ = ax.text(0.5, 0.5, "one"), ax.text(0.5, 0.5, "two")
    >>> layout_problems(fig)
    ["texts overlap: 'one' and 'two'"]
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = ["layout_problems"]


def _texts(fig: Figure) -> list[tuple[Text, Legend | None]]:
    """Every visible non-empty text of ``fig`` with the legend it belongs to (or None)."""
    legends = [leg for leg in fig.findobj(Legend)]
    owner = {id(t): leg for leg in legends for t in [*leg.get_texts(), leg.get_title()]}
    out = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or text.get_alpha() == 0:
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        leg = owner.get(id(text))
        if leg is not None and not leg.get_visible():
            continue
        out.append((text, leg))
    return out


def _hidden_tick_labels(fig: Figure) -> set[int]:
    """``id`` of each tick label outside its axis' view interval: matplotlib does not draw those, although they are
    visible (tick labels have no ``axes``, so they are found through the axes' ticks)."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            transform = axis.get_transform()
            lo, hi = sorted(transform.transform(np.asarray(axis.get_view_interval(), float)))
            eps = 1e-9 * ((hi - lo) or 1.0)
            for tick in [*axis.majorTicks, *axis.minorTicks]:
                loc = float(transform.transform(np.asarray([tick.get_loc()], float))[0])
                if not (lo - eps <= loc <= hi + eps) or not ax.get_visible():
                    hidden.update({id(tick.label1), id(tick.label2)})
    return hidden


def _area(box: Bbox) -> float:
    return max(box.width, 0.0) * max(box.height, 0.0)


def _overlap(a: Bbox, b: Bbox) -> float:
    inter = Bbox.intersection(a, b)
    return 0.0 if inter is None else _area(inter)


def _data_points(ax: Any) -> np.ndarray:
    """Display coordinates of the data of ``ax``: line vertices, scatter offsets, segment ends."""
    points = []
    for line in ax.get_lines():
        if not line.get_visible() or line.get_label() == "_nolegend_" and len(line.get_xdata()) == 0:
            continue
        xy = np.column_stack([np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)])
        if len(xy):
            points.append(line.get_transform().transform(xy))
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        offsets = np.asarray(coll.get_offsets(), float)
        if len(offsets) and np.isfinite(offsets).any():
            points.append(coll.get_offset_transform().transform(offsets))
        for path in coll.get_paths()[:2000]:
            if len(path.vertices) and len(offsets) <= 1:
                points.append(coll.get_transform().transform(path.vertices))
    if not points:
        return np.empty((0, 2))
    pts = np.concatenate(points)
    return pts[np.isfinite(pts).all(axis=1)]


def _bars(ax: Any, renderer: Any) -> list[Bbox]:
    """The bars of ``ax``; a patch drawn behind everything (``zorder`` below 1, e.g. a shaded band) is no data."""
    return [p.get_window_extent(renderer) for p in ax.patches
            if isinstance(p, Rectangle) and p.get_visible() and p.get_width() != 0 and p.get_height() != 0
            and p.get_zorder() >= 1]


def layout_problems(fig: Figure, *, tolerance: float = 0.05) -> list[str]:
    """What makes ``fig`` hard to read (see the module docs), one sentence each; ``[]`` when nothing does.

    Args:
        fig: a matplotlib figure (drawn here with the Agg renderer).
        tolerance: how much of the smaller box two boxes may share before it counts (0.05: 5 %).
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"Expected `fig` to be a matplotlib Figure, but got {type(fig).__name__}.")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems: list[str] = []
    hidden = _hidden_tick_labels(fig)
    texts = [(t, leg, t.get_window_extent(renderer)) for t, leg in _texts(fig) if id(t) not in hidden]
    texts = [(t, leg, box) for t, leg, box in texts if _area(box) > 0]
    for (a, leg_a, box_a), (b, leg_b, box_b) in itertools.combinations(texts, 2):
        if leg_a is not None and leg_a is leg_b:
            continue  # a legend lays out its own entries
        shared = _overlap(box_a, box_b)
        if shared > tolerance * min(_area(box_a), _area(box_b)):
            problems.append(f"texts overlap: {a.get_text()!r} and {b.get_text()!r}")
    frame = fig.bbox
    for text, _, box in texts:
        inside = _overlap(box, frame)
        if inside < (1 - tolerance) * _area(box):
            problems.append(f"text cut off at the figure's edge: {text.get_text()!r}")
    for leg in fig.findobj(Legend):
        if not leg.get_visible() or not leg.get_texts():
            continue
        box = leg.get_window_extent(renderer)
        axes = [leg.axes] if leg.axes is not None else [ax for ax in fig.axes if ax.get_visible()]
        for ax in axes:
            pts = _data_points(ax)
            inside = ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1))
            clip = ax.bbox
            in_view = ((pts[:, 0] >= clip.x0) & (pts[:, 0] <= clip.x1) & (pts[:, 1] >= clip.y0)
                       & (pts[:, 1] <= clip.y1))
            if (inside & in_view).any():
                title = ax.get_title() or "an axes"
                problems.append(f"legend covers data of {title!r}: {int((inside & in_view).sum())} point(s)")
                continue
            for bar in _bars(ax, renderer):
                if _overlap(bar, box) > tolerance * _area(bar):
                    problems.append(f"legend covers a bar of {ax.get_title() or 'an axes'!r}")
                    break
    return problems
