"""Segmentation accuracy and calibration metrics, streaming and distributed.

Streaming classes (``torchmetrics.Metric``: ``update``/``compute``/``reset``, correct under DDP):

* :class:`SegmentationMetrics` -- Acc, mAcc, mIoU/mDice pooled over the data set (``_D``),
  per image (``_I``) and per class over images (``_C``), worst-case mIoU, per-class IoU.
  By default (``present="target"``) these follow Wang et al., "Revisiting Evaluation Metrics for
  Semantic Segmentation" (NeurIPS 2023, arXiv:2310.19252) and their reference code (zifuwanggg/JDTLosses,
  ``metrics/miouic_metric.py``): ``mIoU_I`` averages, per image, the IoU of the classes present in that
  image's ground truth, then averages over images; ``mIoU_C`` averages, per class, its IoU over the
  images whose ground truth holds it, then over classes; ``mDice_I``/``mDice_C`` likewise with Dice, and
  ``mIoU_I_worst5`` ranks those per-image means. A class predicted in an image whose ground truth lacks
  it counts in none of these means (its pixels still lower the IoU of the classes they cover, and
  ``mIoU_D``). ``present="union"`` is the stricter variant: the classes of the ground truth or the
  prediction, so such a false-positive class counts with IoU 0.
* :class:`CalibrationMetrics` -- ECE (dataset and per image), RMSCE, MCE, adaptive ACE,
  static class-wise SCE, Brier, NLL and the reliability table; optionally restricted to
  the boundary band or the interior.
* :class:`TopLabelCalibrationError` -- the top-label ECE alone (fast, tiny state).
* :class:`BoundaryCalibration` -- calibration as a function of distance to the boundary.
* :class:`ClasswiseCalibration` -- the calibration error, frequency and mean probability of each class.
* :class:`SoftLabelStats` -- errors of the probabilities against soft labels (partial volume, coverage).

One-shot forms live in :mod:`jmlkit.metrics.functional`.

Every ``compute()`` (and every one-shot form) returns tensors, as ``torchmetrics`` does: 0-d float64 figures, 0-d
int64 counts, 1-d per-class vectors, and tables as dicts of equal-length 1-d column tensors (see
:mod:`jmlkit.metrics.tables`). :func:`as_table` makes a table a :class:`pandas.DataFrame`; :func:`to_python` makes
a whole ``compute()`` dict plain Python (numbers, lists, tables as dicts of lists: the form of ``metrics.json``).

Memory does not grow with the number of pixels: the state is a ``C x C`` confusion
matrix, ``images x 3 x C`` per-image counts (for the ``_I``/``_C``/worst-case figures),
a top-label histogram of ``fine_bins`` (10^4) bins, a ``C x n_bins`` class-wise histogram
and ``images x 3`` per-image calibration errors. Sums are float64.

Edge cases, defined everywhere (see :func:`~jmlkit.metrics.functional.segmentation_scores`
and :func:`~jmlkit.metrics.functional.calibration_scores`): confidence 0 / 1 fall in the
first / last bin; classes that never occur are NaN in the per-class vectors and left out of
every mean; images with no valid pixel are left out of the per-image figures; a single pixel
is a valid data set; with no valid pixel at all every figure is NaN and a ``UserWarning`` says why.
Bad input raises ``ValueError`` (``TypeError`` for a wrong type: a non-tensor, ``ignore_index=1.5``,
``n_bins=2.5``) naming the argument; numbers may also be numpy scalars or 0-d tensors.
"""
from jmlkit.metrics.calibration import (BoundaryCalibration, CalibrationMetrics, ClasswiseCalibration,
                                       TopLabelCalibrationError)
from jmlkit.metrics.functional import (
    boundary_distance,
    boundary_mask,
    calibration_by_boundary_distance,
    calibration_metrics,
    segmentation_metrics,
    top_label_calibration_error,
)
from jmlkit.metrics.segmentation import SegmentationMetrics
from jmlkit.metrics.soft import SoftLabelStats, soft_label_metrics
from jmlkit.metrics.tables import as_table, to_python

__all__ = [
    "SegmentationMetrics",
    "CalibrationMetrics",
    "TopLabelCalibrationError",
    "BoundaryCalibration",
    "ClasswiseCalibration",
    "SoftLabelStats",
    "soft_label_metrics",
    "segmentation_metrics",
    "calibration_metrics",
    "top_label_calibration_error",
    "calibration_by_boundary_distance",
    "boundary_mask",
    "boundary_distance",
    "as_table",
    "to_python",
]
