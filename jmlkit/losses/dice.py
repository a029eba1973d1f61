"""Dice semimetric loss (DML) and its Tversky generalisation.

Wang, Popordanoska, Bertels, Lemmens & Blaschko, *Dice Semimetric Losses: Optimizing the Dice Score with Soft
Labels*, MICCAI 2023 (arXiv:2303.16296). With the L1 intersection :math:`I = (\\|x\\|_1 + \\|y\\|_1 - \\|x-y\\|_1)/2`:

.. math::
    \\mathrm{DML}(x, y) = 1 - \\frac{2I}{\\|x\\|_1 + \\|y\\|_1} = \\frac{\\|x - y\\|_1}{\\|x\\|_1 + \\|y\\|_1}.

It equals the soft Dice loss on hard labels and is minimised at a soft target. It is a *semimetric*: symmetric,
zero exactly on the diagonal, but the triangle inequality can fail, e.g. for ``x = (1, 0)``, ``z = (1, 1)``,
``y = (0, 1)``: ``DML(x, y) = 1 > DML(x, z) + DML(z, y) = 1/3 + 1/3``.

The Tversky form :math:`T = I / (I + \\alpha\\,FP + \\beta\\,FN)` with :math:`FP = \\|x\\|_1 - I`,
:math:`FN = \\|y\\|_1 - I` gives the Jaccard metric loss for ``alpha = beta = 1`` and the Dice semimetric loss for
``alpha = beta = 0.5``.
"""
from __future__ import annotations

import functools
from typing import Any

from torch import Tensor

from jmlkit._checks import check_real

from ._base import REGION_ARGS_DOC, REGION_DEFAULTS, RegionLossBase
from ._functional import compute_region_loss, ratio


_check_alpha = functools.partial(check_real, "alpha", low=0.0)
_check_beta = functools.partial(check_real, "beta", low=0.0)


def _dml_score(s: dict, smooth: float) -> Tensor:
    total = s["sx"] + s["sy"]
    return ratio(total - s["sd"] + smooth, total + smooth)


def _tversky_score(alpha: float, beta: float):
    def score(s: dict, smooth: float) -> Tensor:
        inter = (s["sx"] + s["sy"] - s["sd"]) / 2
        fp, fn = s["sx"] - inter, s["sy"] - inter
        return ratio(inter + smooth, inter + alpha * fp + beta * fn + smooth)
    return score


def dice_semimetric_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, **options: Any) -> Tensor:
    """Dice semimetric loss ``1 - 2I / (|x|_1 + |y|_1)`` per class with the L1 intersection.

    With ``smooth = s`` the score is ``(2I + s) / (|x|_1 + |y|_1 + s)``.
    """ + REGION_ARGS_DOC + """
    Example:
        >>> import torch
        >>> logits = torch.zeros(1, 2, 1, 2, requires_grad=True)         # p = 0.5 everywhere
        >>> target = torch.tensor([[[0, 1]]])
        >>> loss = dice_semimetric_loss(logits, target, classes="all", smooth=0.0)
        >>> round(loss.item(), 4)
        0.5
        >>> loss.backward()
    """
    o = {**REGION_DEFAULTS, **options}
    return compute_region_loss(logits, target, mask, _dml_score, ("sx", "sy", "sd"), **o)


def tversky_metric_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, alpha: float = 1.0,
                        beta: float = 1.0, **options: Any) -> Tensor:
    """Tversky loss ``1 - I / (I + alpha FP + beta FN)`` with the L1 intersection (soft-label safe).

    ``alpha = beta = 1`` is the Jaccard metric loss, ``alpha = beta = 0.5`` the Dice semimetric loss; ``alpha``
    weighs false positives and ``beta`` false negatives.
    """ + REGION_ARGS_DOC + """
    Example:
        >>> import torch
        >>> logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
        >>> a = tversky_metric_loss(logits, target, alpha=0.5, beta=0.5)
        >>> b = dice_semimetric_loss(logits, target)
        >>> bool(torch.isclose(a, b))
        True
    """
    alpha, beta = _check_alpha(alpha), _check_beta(beta)
    o = {**REGION_DEFAULTS, **options}
    return compute_region_loss(logits, target, mask, _tversky_score(alpha, beta), ("sx", "sy", "sd"), **o)


class DiceSemimetricLoss(RegionLossBase):
    """Module form of :func:`dice_semimetric_loss`.

    Example:
        >>> import torch
        >>> criterion = DiceSemimetricLoss(classes="all", smooth=0.0)
        >>> round(criterion(torch.zeros(1, 2, 4), torch.full((1, 2, 4), 0.5)).item(), 6)
        0.0
    """

    function = staticmethod(dice_semimetric_loss)


class TverskyMetricLoss(RegionLossBase):
    """Module form of :func:`tversky_metric_loss` (``alpha``: false positives, ``beta``: false negatives).

    Example:
        >>> import torch
        >>> criterion = TverskyMetricLoss(alpha=0.3, beta=0.7)
        >>> criterion(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))).shape
        torch.Size([])
    """

    function = staticmethod(tversky_metric_loss)
    extra_defaults = {"alpha": 1.0, "beta": 1.0}
    extra_checks = {"alpha": _check_alpha, "beta": _check_beta}
