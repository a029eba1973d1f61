r"""Functional (one-shot) segmentation accuracy and calibration metrics.

Every metric here is computed in two steps, and the streaming classes in
:mod:`jmlkit.metrics` use the same two steps:

1. a *statistics* function turns one batch into small sufficient statistics
   (a confusion matrix, per-image per-class counts, histograms of confidences);
   statistics of several batches (or of several processes) are combined by
   summation or concatenation;
2. a *scores* function turns accumulated statistics into the figures.

Memory is therefore independent of the number of pixels: ``O(C^2)`` for the
confusion matrix, ``O(images x C)`` for the per-image (``_I``) and per-class-over-images
(``_C``) figures, ``O(fine_bins + C x n_bins)`` for the calibration histograms
and ``O(images)`` for the per-image calibration errors.

Shapes
------
``preds``/``probs``: ``(B, C, *spatial)`` float, or for :func:`segmentation_stats`
also class indices ``(B, *spatial)``; ``target``: integer class indices ``(B, *spatial)``,
where ``ignore_index`` marks pixels that are left out of every figure.

References
----------
Wang, Blaschko et al., "Revisiting Evaluation Metrics for Semantic Segmentation:
Optimization and Evaluation of Fine-grained Intersection over Union", NeurIPS 2023
(the ``_D``, ``_I``, ``_C`` variants; by default, ``present="target"``, ``_I``/``_C``
average over the classes of each image's ground truth as the paper does, see
:mod:`jmlkit.metrics.functional.segmentation`). Guo et al., "On Calibration of Modern
Neural Networks", ICML 2017 (ECE, MCE). Nixon et al., "Measuring Calibration in Deep
Learning", CVPR-W 2019 (static class-wise SCE, adaptive ACE).
"""
from __future__ import annotations

from jmlkit.metrics.functional._common import (  # noqa: F401
    DEFAULT_FINE_BINS, NLL_EPS, Present, Region, SUM_ATOL, check_labels, class_argmax,
)
from jmlkit.metrics.functional.regions import boundary_distance, boundary_mask, region_mask  # noqa: F401
from jmlkit.metrics.functional.segmentation import (  # noqa: F401
    segmentation_metrics, segmentation_scores, segmentation_stats,
)
from jmlkit.metrics.functional.calibration import (  # noqa: F401
    boundary_distance_stats, boundary_distance_table, calibration_by_boundary_distance, calibration_metrics,
    calibration_scores, calibration_stats, fine_bins_for, reliability_table, top_label_calibration_error,
)

__all__ = [
    "DEFAULT_FINE_BINS",
    "NLL_EPS",
    "SUM_ATOL",
    "boundary_mask",
    "boundary_distance",
    "region_mask",
    "segmentation_stats",
    "segmentation_scores",
    "segmentation_metrics",
    "calibration_stats",
    "calibration_scores",
    "calibration_metrics",
    "top_label_calibration_error",
    "reliability_table",
    "boundary_distance_stats",
    "boundary_distance_table",
    "calibration_by_boundary_distance",
    "fine_bins_for",
]
