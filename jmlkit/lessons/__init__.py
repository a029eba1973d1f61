"""Computations that exist only to teach, each calling :mod:`jmlkit.losses` (never a second implementation).

* :mod:`jmlkit.lessons.geometry` — notebook 01: loss curves and maps around a soft target, a race of free
  logits, the triangle inequality.
* :mod:`jmlkit.lessons.collapse` — notebook 02: the gradient of the paper's soft-label loss split into its CE and
  JML terms, per class (why classes collapse with boundary smoothing on small objects).
"""
from jmlkit.lessons.collapse import SPLIT_COLUMNS, GradientSplit, gradient_split, recipe_gradients, tug_summary
from jmlkit.lessons.geometry import (LOSS_LABELS, LOSSES, METRIC_LOSSES, CurveResult, RaceResult, SurfaceResult,
                                     TriangleResult, describe_worst_triple, findings, loss_curves, loss_surfaces,
                                     pointwise_losses, race, race_target, seconds_per_update, summary, triangle_check)

__all__ = [
    "LOSSES", "METRIC_LOSSES", "LOSS_LABELS", "pointwise_losses",
    "CurveResult", "loss_curves", "SurfaceResult", "loss_surfaces",
    "RaceResult", "race_target", "race", "TriangleResult", "triangle_check",
    "seconds_per_update", "summary", "findings", "describe_worst_triple",
    "SPLIT_COLUMNS", "GradientSplit", "gradient_split", "recipe_gradients", "tug_summary",
]
