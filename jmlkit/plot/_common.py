"""Helpers shared by the figure modules of :mod:`jmlkit.plot`: display names, array conversion, reliability tables."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

#: Display names of the recipe configurations (figure labels).
LABELS: dict[str, str] = {
    "ce_hard": "CE, hard labels",
    "ce_ls": "CE + LS",
    "sjl_ls": "CE+SJL + LS",
    "jml_ls": "CE+JML + LS",
    "jml_bls": "CE+JML + boundary LS",
    "hard_ce": "hard labels, CE",
    "kd_ce": "KD, CE (= KL)",
    "kd_jml": "KD, JML",
    "kd_ce+jml": "KD, CE+JML",
    "labeled_only": "labelled only (CE)",
    "pseudo_hard_ce": "hard pseudo-labels (CE)",
    "pseudo_soft_jml": "soft pseudo-labels (CE+JML)",
}

#: The colours of a reliability diagram: accuracy bars and the gap to the diagonal.
BAR_COLOR = "#1f77b4"
GAP_COLOR = "#d62728"

RELIABILITY_COLUMNS = ("lower", "upper", "count", "confidence", "accuracy")


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
    """``(table, ECE or None)`` of a reliability table given as a DataFrame, its dict-of-lists form (what
    ``metrics.json`` stores) or a dict holding it under ``"reliability"`` (``CalibrationMetrics.compute()``, a
    pooled table of several runs) with the ECE under ``"ECE_D"``."""
    if isinstance(data, pd.DataFrame):
        table, ece = data, None
    elif isinstance(data, Mapping) and "reliability" in data:
        table, ece = data["reliability"], data.get("ECE_D")
    elif isinstance(data, Mapping) and set(RELIABILITY_COLUMNS) <= set(data):
        table, ece = data, None
    else:
        raise TypeError(
            "Expected `data` to be a reliability table (DataFrame) or the dict of "
            f"CalibrationMetrics.compute(), but got {type(data).__name__}."
        )
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(dict(table))
    if not set(RELIABILITY_COLUMNS) <= set(table.columns):
        raise ValueError(f"Expected a reliability table with columns {sorted(RELIABILITY_COLUMNS)}, "
                         f"but got {list(table.columns)}.")
    return table, ece


def _reliability_bars(ax: Any, table: pd.DataFrame, *, linewidth: float, gap_label: Optional[str] = None) -> None:
    """Accuracy bars per non-empty confidence bin and the red hatched gap up to the bin's mean confidence."""
    lower, upper = table["lower"].to_numpy(float), table["upper"].to_numpy(float)
    width, centre = upper - lower, (lower + upper) / 2
    ok = table["count"].to_numpy(float) > 0
    acc, conf = table["accuracy"].to_numpy(float), table["confidence"].to_numpy(float)
    labels = {"label": "accuracy"} if gap_label is not None else {}
    ax.bar(centre[ok], acc[ok], width=width[ok], color=BAR_COLOR, edgecolor="black", linewidth=linewidth, **labels)
    ax.bar(centre[ok], (conf - acc)[ok], bottom=acc[ok], width=width[ok], color=GAP_COLOR, alpha=0.35,
           edgecolor=GAP_COLOR, hatch="//", linewidth=linewidth,
           **({"label": gap_label} if gap_label is not None else {}))
