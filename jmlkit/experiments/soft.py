"""Errors of predicted probabilities against the data's soft labels: :class:`SoftLabelStats` (a torchmetrics
``Metric``, an extra evaluator of :func:`jmlkit.engine.fit`) and :func:`soft_label_metrics`, from
:mod:`jmlkit.metrics.soft` (see there for the definitions).

Example:
    >>> import torch
    >>> y = torch.tensor([[[0.3, 1.0]], [[0.7, 0.0]]]).reshape(1, 2, 1, 2)
    >>> soft_label_metrics(y, y)["L1"].item()
    0.0
"""
from jmlkit.metrics.soft import SoftLabelStats, soft_label_metrics

__all__ = ["SoftLabelStats", "soft_label_metrics"]
