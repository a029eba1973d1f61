"""Cross-entropy plus a region loss, the usual recipe of the JML paper (0.25 CE + 0.75 JML by default)."""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from jmlkit._checks import check_choice, check_ignore_index, check_real

from ._functional import soft_cross_entropy
from ._validation import check_class_weights
from ._names import build_region_loss
from .constants import MODES, MULTICLASS_MODE


class CrossEntropyLoss(nn.Module):
    """Cross-entropy on hard or soft targets with an optional mask (see
    :func:`jmlkit.losses._functional.soft_cross_entropy`).

    Args:
        mode: ``"multiclass"`` (softmax), ``"binary"`` or ``"multilabel"`` (binary cross-entropy per channel).
        ignore_index: class index of hard targets to leave out.
        class_weights: ``C`` non-negative weights, applied as torch's ``weight`` of the cross-entropy.
        sync_distributed: the mean over the valid pixels of all processes under ``torch.distributed``.
        validate_args: check the tensors (shapes, dtypes, values, finite logits).

    Example:
        >>> import torch
        >>> ce = CrossEntropyLoss()
        >>> round(ce(torch.zeros(1, 4, 2, 2), torch.full((1, 4, 2, 2), 0.25)).item(), 4)   # log 4
        1.3863
    """

    def __init__(self, *, mode: str = MULTICLASS_MODE, ignore_index: int | None = None, class_weights: Any = None,
                 sync_distributed: bool = False, validate_args: bool = True) -> None:
        super().__init__()
        check_choice("mode", mode, MODES)  # at construction; the options are kept as given
        check_ignore_index(ignore_index)
        check_class_weights(class_weights)
        self.options = dict(mode=mode, ignore_index=ignore_index, class_weights=class_weights,
                            sync_distributed=sync_distributed, validate_args=validate_args)

    def forward(self, logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return soft_cross_entropy(logits, target, mask, **self.options)


def compound_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None, *, region_loss: Any = "jml",
                  ce_weight: float = 0.25, region_weight: float = 0.75, mode: str = MULTICLASS_MODE,
                  ignore_index: int | None = None, validate_args: bool = True, **region_options: Any) -> Tensor:
    """``ce_weight * CE + region_weight * region_loss`` on the same hard or soft target.

    Example:
        >>> import torch
        >>> logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
        >>> compound_loss(logits, target, region_loss="jml").shape
        torch.Size([])
    """
    return CompoundLoss(region_loss, ce_weight=ce_weight, region_weight=region_weight, mode=mode,
                        ignore_index=ignore_index, validate_args=validate_args, **region_options)(logits, target, mask)


class CompoundLoss(nn.Module):
    """Weighted sum of cross-entropy (hard or soft targets) and a region loss.

    Args:
        region_loss: a name (``"jml"``, ``"jml2"``, ``"dml"``, ``"sjl"``, ``"lovasz"``) or a loss module called as
            ``region_loss(logits, target, mask)``.
        ce_weight, region_weight: the weights (0.25 and 0.75 by default, as in the JML paper's recipes).
        region_options: passed to the named region loss only (``classes``, ``aggregate``, ``smooth``,
            ``class_weights`` ...); an option it does not take raises ``TypeError``.

    Example:
        >>> import torch
        >>> criterion = CompoundLoss("jml", ce_weight=0.25, region_weight=0.75, classes="all")
        >>> logits = torch.randn(2, 3, 8, 8, requires_grad=True)
        >>> criterion(logits, torch.softmax(torch.randn(2, 3, 8, 8), 1)).backward()
    """

    def __init__(self, region_loss: Any = "jml", *, ce_weight: float = 0.25, region_weight: float = 0.75,
                 mode: str = MULTICLASS_MODE, ignore_index: int | None = None, validate_args: bool = True,
                 **region_options: Any) -> None:
        super().__init__()
        self.ce_weight = check_real("ce_weight", ce_weight, low=0.0)
        self.region_weight = check_real("region_weight", region_weight, low=0.0)
        if not (isinstance(region_loss, str) or callable(region_loss)):
            raise TypeError(f"Expected `region_loss` to be a loss name or a callable, but got {region_loss!r}.")
        # a named region loss checks the same logits, target and mask: the cross-entropy need not check them again
        named = isinstance(region_loss, str) and self.region_weight > 0
        self.ce = CrossEntropyLoss(mode=mode, ignore_index=ignore_index, validate_args=validate_args and not named)
        if isinstance(region_loss, str):
            region_loss = build_region_loss(region_loss, mode=mode, ignore_index=ignore_index,
                                            validate_args=validate_args, **region_options)
        self.region = region_loss

    def forward(self, logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        terms = []
        if self.region_weight:  # first: it checks the inputs for both terms
            terms.append(self.region_weight * self.region(logits, target, mask))
        if self.ce_weight:
            terms.append(self.ce_weight * self.ce(logits, target, mask))
        return sum(terms[1:], terms[0]) if terms else logits.sum() * 0.0
