"""Jaccard metric losses (JML) and the classic soft Jaccard loss.

Wang, Ning & Blaschko, *Jaccard Metric Losses: Optimizing the Jaccard Index with Soft Labels*, NeurIPS 2023
(arXiv:2302.05666). With the L1 forms of intersection and union

.. math::
    I = \\frac{\\|x\\|_1 + \\|y\\|_1 - \\|x - y\\|_1}{2}, \\qquad U = \\frac{\\|x\\|_1 + \\|y\\|_1 + \\|x - y\\|_1}{2},

the Jaccard metric loss is :math:`1 - I/U` (``variant=1``) or :math:`1 - \\langle x, y\\rangle /
(\\langle x, y\\rangle + \\|x - y\\|_1)` (``variant=2``). Both equal the soft Jaccard loss
:math:`1 - \\langle x, y\\rangle / (\\|x\\|_1 + \\|y\\|_1 - \\langle x, y\\rangle)` on hard labels, are metrics on
:math:`[0, 1]^n`, and are minimised exactly at a soft target, which the soft Jaccard loss is not.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor

from ._base import REGION_ARGS_DOC, REGION_DEFAULTS, RegionLossBase
from ._functional import compute_region_loss, ratio
from ._validation import check_variant


def _jml1_score(s: dict, smooth: float) -> Tensor:
    total = s["sx"] + s["sy"]
    return ratio(total - s["sd"] + 2 * smooth, total + s["sd"] + 2 * smooth)


def _jml2_score(s: dict, smooth: float) -> Tensor:
    return ratio(s["sxy"] + smooth, s["sxy"] + s["sd"] + smooth)


def _sjl_score(s: dict, smooth: float) -> Tensor:
    return ratio(s["sxy"] + smooth, s["sx"] + s["sy"] - s["sxy"] + smooth)


def jaccard_metric_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, variant: int = 1,
                        **options: Any) -> Tensor:
    """Jaccard metric loss: ``1 - I/U`` per class with L1 intersection and union, aggregated over classes.

    With ``smooth = s`` the per-class score is ``(I + s) / (U + s)`` (variant 1) or
    ``(<x,y> + s) / (<x,y> + |x-y|_1 + s)`` (variant 2). ``classes="all", smooth=0`` gives exactly
    ``1 - mean_c I_c / U_c`` with I and U summed over the batch and all pixels.
    """ + REGION_ARGS_DOC + """
    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])   # (B=1, C=2, H=1, W=2)
        >>> target = torch.tensor([[[0, 1]]])                          # class indices (B, H, W)
        >>> loss = jaccard_metric_loss(logits.requires_grad_(), target, classes="all", smooth=0.0)
        >>> round(loss.item(), 4)
        0.0177
        >>> soft = torch.tensor([[[[0.9, 0.1]], [[0.1, 0.9]]]])     # a smoothed target
        >>> loss = jaccard_metric_loss(logits, soft, classes="all", smooth=0.0)
        >>> loss.backward()
    """
    variant = check_variant(variant)
    o = {**REGION_DEFAULTS, **options}
    score, need = (_jml1_score, ("sx", "sy", "sd")) if variant == 1 else (_jml2_score, ("sxy", "sd"))
    return compute_region_loss(logits, target, mask, score, need, **o)


def soft_jaccard_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, **options: Any) -> Tensor:
    """Soft Jaccard loss ``1 - <x,y> / (|x|_1 + |y|_1 - <x,y>)`` per class: correct for hard labels only.

    Kept as the baseline: with a soft target its minimiser is not the target (it pushes probabilities to 0 or 1).
    """ + REGION_ARGS_DOC + """
    Example:
        >>> import torch
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])
        >>> round(soft_jaccard_loss(logits, torch.tensor([[[0, 1]]]), classes="all", smooth=0.0).item(), 4)
        0.0177
    """
    o = {**REGION_DEFAULTS, **options}
    return compute_region_loss(logits, target, mask, _sjl_score, ("sx", "sy", "sxy"), **o)


class JaccardMetricLoss(RegionLossBase):
    """Module form of :func:`jaccard_metric_loss`; options as keywords, e.g.
    ``JaccardMetricLoss(classes="all", aggregate={"batch": 0.5, "class": 0.5})``.

    Example:
        >>> import torch
        >>> criterion = JaccardMetricLoss(classes="all", smooth=0.0)
        >>> logits = torch.zeros(2, 3, 4, 4, requires_grad=True)
        >>> target = torch.full((2, 3, 4, 4), 1 / 3)                 # the uniform soft target
        >>> round(criterion(logits, target).item(), 6)                # is the minimiser: loss 0
        0.0
    """

    function = staticmethod(jaccard_metric_loss)
    extra_defaults = {"variant": 1}
    extra_checks = {"variant": check_variant}


class SoftJaccardLoss(RegionLossBase):
    """Module form of :func:`soft_jaccard_loss`.

    Example:
        >>> import torch
        >>> criterion = SoftJaccardLoss(classes="all", smooth=0.0)
        >>> logits = torch.zeros(2, 3, 4, 4)
        >>> round(criterion(logits, torch.full((2, 3, 4, 4), 1 / 3)).item(), 4)   # not 0 at the target
        0.8
    """

    function = staticmethod(soft_jaccard_loss)
