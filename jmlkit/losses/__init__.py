"""Losses for hard and soft labels.

Function + module pairs (the function holds the math, the module the options):

=============================  =============================  ==================================================
function                       module                         what
=============================  =============================  ==================================================
``jaccard_metric_loss``        :class:`JaccardMetricLoss`     1 - I/U with L1 intersection/union (soft-label safe)
``dice_semimetric_loss``       :class:`DiceSemimetricLoss`    1 - 2I/(|x|+|y|) (soft-label safe)
``tversky_metric_loss``        :class:`TverskyMetricLoss`     Tversky with the L1 intersection
``soft_jaccard_loss``          :class:`SoftJaccardLoss`       the classic soft Jaccard loss (hard labels only)
``lovasz_softmax_loss``        :class:`LovaszSoftmaxLoss`     Lovász-Softmax (hard labels only)
``compound_loss``              :class:`CompoundLoss`          CE + a region loss (0.25 : 0.75)
``jml_distillation_loss``      :class:`JMLDistillationLoss`   CE + T²·KL + JML(hard) + JML(teacher), the KD recipe
``soft_cross_entropy``         :class:`CrossEntropyLoss`      CE on hard or soft targets
=============================  =============================  ==================================================
"""
from ._functional import region_statistics, soft_cross_entropy
from .compound import CompoundLoss, CrossEntropyLoss, compound_loss
from ._names import REGION_SCORES
from .constants import BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE
from .distillation import JMLDistillationLoss, jml_distillation_loss
from .dice import DiceSemimetricLoss, TverskyMetricLoss, dice_semimetric_loss, tversky_metric_loss
from .jaccard import JaccardMetricLoss, SoftJaccardLoss, jaccard_metric_loss, soft_jaccard_loss
from .lovasz import LovaszSoftmaxLoss, lovasz_softmax_loss
from .registry import LOSS_NAMES, get_loss

__all__ = [
    "BINARY_MODE", "MULTICLASS_MODE", "MULTILABEL_MODE", "LOSS_NAMES",
    "JaccardMetricLoss", "DiceSemimetricLoss", "TverskyMetricLoss", "SoftJaccardLoss", "LovaszSoftmaxLoss",
    "CompoundLoss", "CrossEntropyLoss", "JMLDistillationLoss",
    "jaccard_metric_loss", "dice_semimetric_loss", "tversky_metric_loss", "soft_jaccard_loss",
    "lovasz_softmax_loss", "compound_loss", "jml_distillation_loss", "soft_cross_entropy", "region_statistics",
    "REGION_SCORES", "get_loss",
]
