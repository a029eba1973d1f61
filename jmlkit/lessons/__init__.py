"""Computations that exist only to teach, each calling :mod:`jmlkit.losses` (never a second implementation).

* :mod:`jmlkit.lessons.geometry` — notebook 01: loss curves and maps around a soft target, a race of free
  logits, the triangle inequality.
* :mod:`jmlkit.lessons.collapse` — notebook 02b: the gradient of the paper's soft-label loss split into its CE and
  JML terms, per class (why classes collapse with boundary smoothing on small objects).
* :mod:`jmlkit.lessons.temperature` — notebook 03: the teacher's target, the KL and JML terms of distillation and
  their gradients as the temperature moves.
* :mod:`jmlkit.lessons.pseudo_labels` — notebook 04: which pixels a confidence threshold keeps as pseudo-labels,
  their share and their accuracy.

Nothing here draws or imports :mod:`jmlkit.plot`: the figures of these results, their display names and the
timing of the widgets (:func:`jmlkit.plot.seconds_per_update`) are :mod:`jmlkit.plot`'s, which imports this package.
"""
from jmlkit.lessons.collapse import SPLIT_COLUMNS, GradientSplit, gradient_split, recipe_gradients, tug_summary
from jmlkit.lessons.pseudo_labels import PseudoLabelState, ThresholdCurve, pseudo_label_state, threshold_curve
from jmlkit.lessons.temperature import (TemperatureState, TemperatureSweep, model_logits, pick_pixels,
                                        temperature_sweep, temperature_terms)
from jmlkit.lessons.geometry import (LOSSES, METRIC_LOSSES, CurveResult, RaceResult, SurfaceResult, TriangleResult,
                                     abbreviation, describe_worst_triple, findings, loss_curves, loss_surfaces,
                                     pointwise_losses, race, race_target, summary, triangle_check)

__all__ = [
    "LOSSES", "METRIC_LOSSES", "pointwise_losses",
    "CurveResult", "loss_curves", "SurfaceResult", "loss_surfaces",
    "RaceResult", "race_target", "race", "TriangleResult", "triangle_check",
    "summary", "findings", "describe_worst_triple", "abbreviation",
    "SPLIT_COLUMNS", "GradientSplit", "gradient_split", "recipe_gradients", "tug_summary",
    "model_logits", "TemperatureState", "temperature_terms", "TemperatureSweep", "temperature_sweep", "pick_pixels",
    "PseudoLabelState", "pseudo_label_state", "ThresholdCurve", "threshold_curve",
]
