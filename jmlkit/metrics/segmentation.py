"""Streaming segmentation accuracy: :class:`SegmentationMetrics`."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from jmlkit._checks import check_choice, check_ignore_index, check_int
from jmlkit.metrics.functional._common import _PRESENTS, Present
from jmlkit.metrics.functional.segmentation import segmentation_scores, segmentation_stats
from jmlkit.metrics.tables import to_python  # noqa: F401 (the docstring's example)

__all__ = ["SegmentationMetrics"]


class SegmentationMetrics(Metric):
    r"""Dataset-, image- and class-level accuracy of a segmentation (Wang et al., NeurIPS 2023).

    ``update(preds, target)`` accepts ``preds`` as probabilities or logits
    ``(B, C, *spatial)`` (their argmax is used) or as class indices ``(B, *spatial)``, and
    ``target`` as integer class indices ``(B, *spatial)``. ``compute()`` returns the dict of
    :func:`jmlkit.metrics.functional.segmentation_scores`: ``Acc``, ``mAcc_D``, ``mIoU_D``,
    ``mIoU_I``, ``mIoU_C``, ``mDice_D``, ``mDice_I``, ``mDice_C``, ``mIoU_I_worst5``,
    ``IoU_per_class``, ``Dice_per_class``, ``Acc_per_class``, ``n_images``, ``n_pixels``, all tensors (the forms of
    :mod:`jmlkit.metrics.tables`: 0-d float64 figures, 0-d int64 counts, 1-d per-class vectors).

    ``mIoU_I`` averages, per image, the IoU of the classes present in that image's ground truth, then
    averages over images; ``mIoU_C`` averages, per class, its IoU over the images whose ground truth holds
    it, then over classes (``mDice_I``/``mDice_C`` alike with Dice). That is Wang et al.'s definition and
    the default ``present="target"``; ``present="union"`` also counts classes that are only predicted.

    State: the ``(C, C)`` confusion matrix (summed across processes) and a ``(images, 3, C)``
    table of per-image true positives, target counts and predicted counts (concatenated
    across processes). Memory is ``O(C^2 + images x C)`` whatever the number of pixels.

    Args:
        num_classes: number of classes ``C >= 2``.
        ignore_index: label value whose pixels are left out.
        present: which classes of an image enter the ``_I``/``_C`` figures (``mIoU_I``, ``mDice_I``,
            ``mIoU_C``, ``mDice_C``) and the worst-case ``mIoU_I_worst5``: ``"target"`` (default) the
            classes of that image's ground truth, Wang et al.'s definition (NeurIPS 2023, arXiv:2310.19252,
            and their reference code zifuwanggg/JDTLosses ``metrics/miouic_metric.py``): a class predicted
            but absent from the ground truth enters no mean of that image, nor that class's mean over images
            (its pixels still lower the IoU of the classes they cover, and ``mIoU_D``); ``"union"`` the
            classes of the ground truth or the prediction, a stricter variant where such a false-positive
            class counts with IoU 0. ``_D`` figures do not depend on it.
        per_image: keep the per-image table (set False to save memory: ``_I``, ``_C`` and
            worst-case figures are then NaN).
        validate_args: check shapes, dtypes and class ranges on every update.

    Example:
        >>> m = SegmentationMetrics(num_classes=2)
        >>> m.update(torch.tensor([[[0, 1], [1, 1]]]), torch.tensor([[[0, 1], [0, 1]]]))
        >>> out = m.compute()
        >>> out["Acc"], out["mIoU_D"]
        (tensor(0.7500, dtype=torch.float64), tensor(0.5833, dtype=torch.float64))
        >>> to_python(out)["mIoU_D"]
        0.5833333333333333
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: Optional[int] = None,
        present: Present = "target",
        per_image: bool = True,
        validate_args: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.ignore_index = check_ignore_index(ignore_index)
        self.present = check_choice("present", present, _PRESENTS)
        self.per_image = bool(per_image)
        self.validate_args = bool(validate_args)
        C = self.num_classes
        self.add_state("confmat", default=torch.zeros(C, C, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("image_stats", default=[], dist_reduce_fx="cat")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Accumulate one batch: ``preds`` ``(B, C, *spatial)`` or ``(B, *spatial)``, ``target`` ``(B, *spatial)``."""
        cm, per = segmentation_stats(
            preds, target, self.num_classes, ignore_index=self.ignore_index, validate_args=self.validate_args
        )
        self.confmat += cm
        if self.per_image:
            self.image_stats.append(per)

    def compute(self) -> dict:
        """Figures of everything accumulated so far (see the class docstring)."""
        stats = self.image_stats
        if isinstance(stats, list) and not stats:
            per = torch.zeros(0, 3, self.num_classes, dtype=torch.int64, device=self.confmat.device)
        else:
            per = dim_zero_cat(stats)
        out = segmentation_scores(self.confmat, per, present=self.present)
        if not self.per_image:
            for key in ("mIoU_I", "mDice_I", "mIoU_C", "mDice_C", "mIoU_I_worst5"):
                out[key] = torch.tensor(float("nan"), dtype=torch.float64, device=self.confmat.device)
        return out
