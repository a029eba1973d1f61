"""Streaming calibration metrics with histogram state.

:class:`CalibrationMetrics` (the full set), :class:`TopLabelCalibrationError` (a light
drop-in for ``torchmetrics.classification.MulticlassCalibrationError`` whose state does
not grow with the number of pixels) and :class:`BoundaryCalibration` (calibration as a
function of the distance to the nearest label change).
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from jmlkit._checks import check_choice, check_ignore_index, check_int
from jmlkit.metrics.functional._common import _NORMS, DEFAULT_FINE_BINS, Region, _check_region
from jmlkit.metrics.functional.calibration import (_ece_from_hist, boundary_distance_stats, boundary_distance_table,
                                                   calibration_scores, calibration_stats, fine_bins_for)
from jmlkit.metrics.functional.regions import region_mask
from jmlkit.metrics.tables import as_table  # noqa: F401 (the docstrings' examples)

__all__ = ["CalibrationMetrics", "TopLabelCalibrationError", "BoundaryCalibration", "ClasswiseCalibration"]


class CalibrationMetrics(Metric):
    r"""Top-label, adaptive and class-wise calibration errors, Brier score and NLL of a segmentation.

    ``update(probs, target)``: ``probs`` probabilities ``(B, C, *spatial)`` (logits with
    ``from_logits=True``), ``target`` integer class indices ``(B, *spatial)``.
    ``compute()`` returns the dict of :func:`jmlkit.metrics.functional.calibration_scores`:
    ``ECE_D``, ``ECE_I``, ``RMSCE_D``, ``MCE_D``, ``ACE_D`` (+ ``ACE_D_error_bound``),
    ``SCE_D``, ``SCE_I``, ``Brier``, ``NLL``, ``Acc``, ``Confidence``, ``n_pixels``,
    ``n_images`` and ``reliability`` (one row per bin), all tensors (the forms of :mod:`jmlkit.metrics.tables`:
    0-d float64 figures, 0-d int64 counts, the table a dict of 1-d column tensors; :func:`jmlkit.metrics.as_table`
    makes it a DataFrame).

    State (all float64, summed across processes except the per-image table, which is
    concatenated): a top-label histogram with ``fine_bins`` bins (count, sum of confidence,
    number correct), a class-wise histogram ``(C, n_bins, 2)`` (sums of :math:`p_k` and of
    :math:`1[y=k]`), three scalar sums for the
    Brier score and NLL, and ``(images, 3)`` per-image [pixels, ECE, SCE]. Memory is
    ``O(fine_bins + C x n_bins + images)``, whatever the number of pixels.

    Args:
        num_classes: ``C >= 2``.
        n_bins: equal-width bins of ECE/RMSCE/MCE/SCE and the number of equal-mass bins of ACE.
        ignore_index: label value whose pixels are left out.
        region: ``"all"`` pixels, only the ``"boundary"`` band (pixels within Chebyshev
            distance ``boundary_width`` of a label change, see
            :func:`~jmlkit.metrics.functional.boundary_mask`), or the ``"interior"`` (the rest).
        boundary_width: half-width of the boundary band in pixels.
        from_logits: apply a softmax over dim 1 to ``probs`` first.
        fine_bins: resolution of the histogram behind ACE (rounded up to a multiple of ``n_bins``).
        classwise: accumulate the class-wise histogram (``SCE_D``, ``SCE_I``); it costs a pass over
            all ``C x pixels`` probabilities, the most expensive part of an update.
        validate_args: check shapes, dtypes, that ``probs`` lie in [0, 1] and sum to one (within
            :data:`~jmlkit.metrics.functional.SUM_ATOL`) and that labels are in range.

    Example:
        >>> m = CalibrationMetrics(num_classes=2, n_bins=10)
        >>> m.update(torch.tensor([[[0.9, 0.6], [0.1, 0.4]]]), torch.tensor([[0, 1]]))
        >>> out = m.compute()
        >>> round(out["ECE_D"].item(), 4), round(out["NLL"].item(), 4)
        (0.35, 0.5108)
        >>> as_table(out["reliability"])[["count", "accuracy"]].iloc[[6, 9]]
           count  accuracy
        6      1       0.0
        9      1       1.0
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        *,
        n_bins: int = 15,
        ignore_index: Optional[int] = None,
        region: Region = "all",
        boundary_width: int = 3,
        from_logits: bool = False,
        fine_bins: int = DEFAULT_FINE_BINS,
        classwise: bool = True,
        validate_args: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.n_bins = check_int("n_bins", n_bins, low=1)
        fine_bins = check_int("fine_bins", fine_bins, low=1)
        self.ignore_index = check_ignore_index(ignore_index)
        self.region, self.boundary_width = _check_region(region, boundary_width)
        self.from_logits, self.classwise, self.validate_args = bool(from_logits), bool(classwise), bool(validate_args)
        self.fine_bins = fine_bins_for(self.n_bins, fine_bins)
        f64 = torch.float64
        self.add_state("top", default=torch.zeros(self.fine_bins, 3, dtype=f64), dist_reduce_fx="sum")
        self.add_state("cw", default=torch.zeros(self.num_classes, self.n_bins, 2, dtype=f64), dist_reduce_fx="sum")
        self.add_state("scores", default=torch.zeros(3, dtype=f64), dist_reduce_fx="sum")
        self.add_state("image", default=[], dist_reduce_fx="cat")

    def update(self, probs: Tensor, target: Tensor, preds: Tensor | None = None) -> None:
        """Accumulate one batch: ``probs`` ``(B, C, *spatial)``, ``target`` ``(B, *spatial)``; ``preds``: their
        argmax over dim 1, when the caller has it (see :func:`~jmlkit.metrics.functional.calibration_stats`)."""
        mask = None
        if self.region != "all" and isinstance(target, Tensor) and not target.is_floating_point():
            mask = region_mask(target, self.region, self.boundary_width)
        st = calibration_stats(
            probs, target, self.num_classes, n_bins=self.n_bins, fine_bins=self.fine_bins,
            ignore_index=self.ignore_index, mask=mask, from_logits=self.from_logits,
            classwise=self.classwise, validate_args=self.validate_args, preds=preds,
        )
        self.top += st["top"]
        if self.classwise:
            self.cw += st["classwise"]
        self.scores += st["scores"]
        self.image.append(st["image"])

    def compute(self) -> dict:
        """Figures of everything accumulated so far (see the class docstring)."""
        image = self.image
        image = dim_zero_cat(image) if not (isinstance(image, list) and not image) else self.top.new_zeros(0, 3)
        return calibration_scores(
            self.top, self.n_bins, classwise=self.cw if self.classwise else None, scores=self.scores, image=image
        )


class TopLabelCalibrationError(Metric):
    r"""Top-label calibration error alone, with a histogram state of ``n_bins x 3`` floats.

    Same figure as ``torchmetrics.classification.MulticlassCalibrationError`` (``norm`` in
    ``"l1"`` = ECE, ``"l2"`` = RMSCE, ``"max"`` = MCE) for ``probs`` ``(B, C, *spatial)`` and
    ``target`` ``(B, *spatial)``, but the state does not grow with the number of pixels.
    Differences: a confidence of exactly 1 falls in the last bin (torchmetrics gives it
    an extra bin of its own); without any valid pixel ``compute()`` returns NaN.

    Example:
        >>> m = TopLabelCalibrationError(num_classes=2, n_bins=10)
        >>> m.update(torch.tensor([[[0.9, 0.6], [0.1, 0.4]]]), torch.tensor([[0, 1]]))
        >>> m.compute()
        tensor(0.3500, dtype=torch.float64)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        *,
        n_bins: int = 15,
        norm: Literal["l1", "l2", "max"] = "l1",
        ignore_index: Optional[int] = None,
        from_logits: bool = False,
        validate_args: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.n_bins = check_int("n_bins", n_bins, low=1)
        self.ignore_index = check_ignore_index(ignore_index)
        self.norm = check_choice("norm", norm, _NORMS)
        self.from_logits, self.validate_args = bool(from_logits), bool(validate_args)
        self.add_state("top", default=torch.zeros(self.n_bins, 3, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Accumulate one batch."""
        st = calibration_stats(
            probs, target, self.num_classes, n_bins=self.n_bins, fine_bins=self.n_bins,
            ignore_index=self.ignore_index, from_logits=self.from_logits, classwise=False, scores=False,
            per_image=False, validate_args=self.validate_args,
        )
        self.top += st["top"]

    def compute(self) -> Tensor:
        """The calibration error as a 0-d float64 tensor (NaN without any valid pixel)."""
        if float(self.top[:, 0].sum()) == 0:
            return torch.tensor(float("nan"), dtype=torch.float64, device=self.top.device)
        return _ece_from_hist(self.top, self.norm)


class BoundaryCalibration(Metric):
    r"""Top-label calibration binned by Chebyshev distance to the nearest label change.

    ``compute()`` returns :func:`~jmlkit.metrics.functional.boundary_distance_table`, a
    table (dict of 1-d column tensors) with one row per distance ``1 .. max_distance`` and a last row
    ``max_distance + 1`` for all farther pixels: ``count``, ``accuracy``, ``confidence``,
    ``ECE``. State: ``(max_distance + 1) x n_bins x 3`` floats.

    Example:
        >>> m = BoundaryCalibration(num_classes=2, max_distance=2)
        >>> m.update(torch.full((1, 2, 1, 4), 0.5), torch.tensor([[[0, 0, 1, 1]]]))
        >>> m.compute()["count"].tolist()
        [2, 2, 0]
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        *,
        max_distance: int = 10,
        n_bins: int = 15,
        ignore_index: Optional[int] = None,
        from_logits: bool = False,
        validate_args: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.n_bins = check_int("n_bins", n_bins, low=1)
        self.max_distance = check_int("max_distance", max_distance, low=1)
        self.ignore_index = check_ignore_index(ignore_index)
        self.from_logits, self.validate_args = bool(from_logits), bool(validate_args)
        default = torch.zeros(self.max_distance + 1, self.n_bins, 3, dtype=torch.float64)
        self.add_state("hist", default=default, dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Accumulate one batch."""
        self.hist += boundary_distance_stats(
            probs, target, self.num_classes, max_distance=self.max_distance, n_bins=self.n_bins,
            ignore_index=self.ignore_index, from_logits=self.from_logits, validate_args=self.validate_args,
        )

    def compute(self) -> dict[str, Tensor]:
        """Per-distance table (see the class docstring)."""
        return boundary_distance_table(self.hist)


class ClasswiseCalibration(Metric):
    r"""Calibration of each class: the class-wise histogram of :class:`CalibrationMetrics` as a table.

    ``compute()`` returns a table (dict of 1-d column tensors; ``class_name`` a tuple of str) with one row per
    class: ``class``, ``class_name``, ``ECE_class``
    (:math:`\sum_b |\sum_{i\in b} 1[y_i=k] - \sum_{i\in b} p_{ik}| / N` over ``n_bins`` equal-width bins of
    :math:`p_{ik}`; ``SCE_D`` of :class:`CalibrationMetrics` is their mean), ``frequency`` (share of the
    valid pixels labelled ``k``) and ``mean_prob`` (mean :math:`p_{ik}`). State: ``C x n_bins x 2`` sums
    and the number of valid pixels.

    Example:
        >>> m = ClasswiseCalibration(num_classes=2, n_bins=10, class_names=["bg", "fg"])
        >>> m.update(torch.tensor([[[0.9, 0.6], [0.1, 0.4]]]), torch.tensor([[0, 1]]))
        >>> as_table(m.compute())[["class_name", "frequency", "mean_prob"]].values.tolist()
        [['bg', 0.5, 0.75], ['fg', 0.5, 0.25]]
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        *,
        n_bins: int = 15,
        ignore_index: Optional[int] = None,
        class_names: Optional[list] = None,
        validate_args: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.n_bins = check_int("n_bins", n_bins, low=1)
        self.ignore_index = check_ignore_index(ignore_index)
        names = [str(i) for i in range(self.num_classes)] if class_names is None else [str(n) for n in class_names]
        if len(names) < self.num_classes:
            raise ValueError(f"Expected `class_names` to name {self.num_classes} classes, but got {len(names)} names.")
        self.class_names, self.validate_args = names[: self.num_classes], bool(validate_args)
        self.add_state("cw", default=torch.zeros(self.num_classes, self.n_bins, 2, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n_valid", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Accumulate one batch: ``probs`` ``(B, C, *spatial)``, ``target`` ``(B, *spatial)``."""
        st = calibration_stats(probs, target, self.num_classes, n_bins=self.n_bins, fine_bins=self.n_bins,
                               ignore_index=self.ignore_index, scores=False, per_image=False,
                               validate_args=self.validate_args)
        self.cw += st["classwise"]
        self.n_valid += st["top"][:, 0].sum()

    def compute(self) -> dict[str, Tensor | tuple]:
        """Per-class table (see the class docstring)."""
        cw, n = self.cw.double(), max(float(self.n_valid), 1.0)
        return {
            "class": torch.arange(self.num_classes, device=cw.device),
            "class_name": tuple(self.class_names),
            "ECE_class": (cw[..., 1] - cw[..., 0]).abs().sum(-1) / n,
            "frequency": cw[..., 1].sum(-1) / n,
            "mean_prob": cw[..., 0].sum(-1) / n,
        }
