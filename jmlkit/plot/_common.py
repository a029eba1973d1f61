"""Helpers shared by the figure modules of :mod:`jmlkit.plot`: display names, array conversion, reliability tables,
PNG rendering."""
from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from jmlkit.metrics.tables import as_table

#: Display names of the recipe configurations (figure labels).
from jmlkit.experiments.recipes import LABELS  # noqa: E402  (display names of the recipes' configurations)

#: The colours of a reliability diagram: accuracy bars and the gap to the diagonal.
BAR_COLOR = "#1f77b4"
GAP_COLOR = "#d62728"



def render_png(fig: Figure, *, dpi: int = 80) -> bytes:
    """The figure as PNG bytes, with fast (light) compression: what a slider update sends to the browser.

    Example:
        >>> render_png(Figure(figsize=(1, 1)))[:4]
        b'\\x89PNG'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def _label(key: Any, names: Optional[Mapping[str, str]] = None) -> str:
    """A figure label: tuple keys joined with ``" / "``; with ``names``, a known name is replaced by its display
    name (``_label("ce_ls", LABELS) == "CE + LS"``)."""
    if isinstance(key, tuple):
        return " / ".join(str(k) for k in key)
    text = str(key)
    return names.get(text, text) if names is not None else text


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _reliability_frame(data: Any) -> tuple[pd.DataFrame, Optional[float]]:
    """``(table, ECE or None)`` of anything :func:`jmlkit.experiments.reliability_table` accepts (a DataFrame, the
    dict-of-lists form of ``metrics.json``, or a dict holding it under ``"reliability"`` with the ECE under
    ``"ECE_D"``: ``CalibrationMetrics.compute()``, a pooled table of several runs)."""
    from jmlkit.experiments.evaluation import reliability_table

    if not isinstance(data, (pd.DataFrame, Mapping)):
        raise TypeError(
            "Expected `data` to be a reliability table (DataFrame) or the dict of "
            f"CalibrationMetrics.compute(), but got {type(data).__name__}."
        )
    ece = data.get("ECE_D") if isinstance(data, Mapping) and "reliability" in data else None
    return reliability_table(data), None if ece is None else float(ece)


def _is_table(data: Any) -> bool:
    """Whether ``data`` is one table: a DataFrame, or a dict of columns (1-d tensors, arrays, lists, tuples)."""
    return isinstance(data, pd.DataFrame) or (
        isinstance(data, Mapping) and bool(data)
        and all(isinstance(v, (torch.Tensor, np.ndarray, list, tuple)) for v in data.values()))


def _frames(data: Any, what: str) -> dict[Any, pd.DataFrame]:
    """``{label: DataFrame}`` of one table (label ``""``) or of a mapping ``{label: table}``; tables as
    :func:`jmlkit.metrics.as_table` accepts them (a ``compute()`` table of tensors, a dict of lists, a DataFrame)."""
    if _is_table(data):
        return {"": as_table(data)}
    if not isinstance(data, Mapping) or not data or not all(_is_table(v) for v in data.values()):
        raise TypeError(f"Expected `{what}` to be a table (a DataFrame or a dict of columns) or a non-empty mapping "
                        f"label -> table, but got {type(data).__name__}.")
    return {label: as_table(table) for label, table in data.items()}


def _reliability_bars(ax: Any, table: pd.DataFrame, *, linewidth: float, gap_label: Optional[str] = None) -> None:
    """Accuracy bars per non-empty confidence bin and the gap up to the bin's mean confidence: an outlined, hatched
    box (no fill), above the bar where the model is over-confident and inside it where it is under-confident, so
    that the bar's colour stays readable under it."""
    lower, upper = table["lower"].to_numpy(float), table["upper"].to_numpy(float)
    width, centre = upper - lower, (lower + upper) / 2
    ok = table["count"].to_numpy(float) > 0
    acc, conf = table["accuracy"].to_numpy(float), table["confidence"].to_numpy(float)
    labels = {"label": "accuracy"} if gap_label is not None else {}
    ax.bar(centre[ok], acc[ok], width=width[ok], color=BAR_COLOR, edgecolor="black", linewidth=linewidth, **labels)
    ax.bar(centre[ok], (conf - acc)[ok], bottom=acc[ok], width=width[ok], facecolor="none", edgecolor=GAP_COLOR,
           hatch="///", linewidth=max(linewidth, 0.8),
           **({"label": gap_label} if gap_label is not None else {}))