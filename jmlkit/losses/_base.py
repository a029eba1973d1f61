"""The module side of the region losses: configuration held by an ``nn.Module``, the math in the function."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from . import _validation as V
from .constants import MULTICLASS_MODE

#: Keyword options shared by every region loss, with their defaults.
REGION_DEFAULTS: dict[str, Any] = dict(
    mode=MULTICLASS_MODE, from_logits=True, classes=None, aggregate="batch", smooth=1.0, log_loss=False,
    gamma=1.0, class_weights=None, ignore_index=None, threshold=0.01, sync_distributed=False,
    validate_args=True, fused=False)

REGION_ARGS_DOC = """
    Args:
        logits: ``(B, C, *spatial)`` scores (or probabilities when ``from_logits=False``).
        target: class indices ``(B, *spatial)`` (int) or probabilities ``(B, C, *spatial)`` (float); see
            :mod:`jmlkit.losses.constants` for the binary and multilabel shapes. A bool target is a foreground
            mask in binary and multilabel modes and a ``TypeError`` in multiclass mode. A soft target that
            requires grad gets its gradient (learned soft labels, mutual learning); one that does not costs no
            extra work in the backward pass.
        mask: optional bool ``(B, *spatial)``; ``False`` pixels are left out (like ``ignore_index``).
        mode: ``"multiclass"`` (softmax), ``"binary"`` (one channel, sigmoid) or ``"multilabel"`` (sigmoid per
            channel).
        from_logits: apply the softmax/sigmoid to ``logits``; ``False`` when they are probabilities already.
        classes: which classes enter the mean over classes: ``None`` (the default, see below), ``"present"``,
            ``"all"`` or a list of class indices. ``None`` means ``"present"`` for multiclass *hard* targets
            (integer class indices) and ``"all"`` for *soft* targets (any floating-point target, one-hot
            included) and in binary and multilabel modes, as in the reference code of the JML paper.
            ``"present"`` keeps a class for an image when its target holds it on a valid pixel: a hard target
            holds a pixel of the class, a soft target a probability above ``threshold``. A multiclass soft
            target with ``classes="present"`` and no class above ``threshold`` on any valid pixel raises
            ``ValueError`` (the loss would be 0 with no gradient, e.g. a teacher softened at a high
            temperature with ``threshold=0.5``); a batch whose pixels are all ignored gives 0 with a zero
            gradient (nothing to learn from). In binary and multilabel modes ``"present"`` means "the channel's
            foreground occurs", and a batch without foreground gives 0, hard or soft, as an empty mask does.
        aggregate: ``"batch"`` (sums over the whole batch, like mIoU^D), ``"image"`` (per image over its
            classes, like mIoU^I), ``"class"`` (per class over the images that hold it, like mIoU^C), or a
            mapping of these to weights, e.g. ``{"batch": 0.5, "image": 0.5}``.
        smooth: added to the numerator and denominator of each score.
        log_loss: use ``-log(score)`` instead of ``1 - score``.
        gamma: focal exponent: the per-class loss is raised to ``gamma``.
        class_weights: ``C`` non-negative weights of the mean over classes.
        ignore_index: class index of hard targets to leave out.
        threshold: presence threshold of soft targets for ``classes="present"``: a class counts in an image
            when its target probability exceeds it on some valid pixel (default 0.01, the reference code's).
        sync_distributed: under ``torch.distributed``, all-reduce the statistics so the loss is that of the
            global batch; gradients flow through each rank's own part and are scaled by the world size, so that
            DDP's gradient average equals the single-process gradient.
        validate_args: check the shapes, dtypes and values of the tensors, and that the logits are finite
            (``ValueError`` for NaN or Inf, the same from every loss; costs a few passes over the target;
            switch off for speed). The options are checked whatever its value (numpy and 0-d tensor numbers are
            accepted for the numbers).
        fused: use ``torch.compile``-d kernels (a one-off compile of some seconds per shape, then faster).

    Returns:
        A scalar tensor.
"""


class RegionLossBase(nn.Module):
    """Holds the options; ``forward`` calls the function given by :attr:`function`."""

    function: Any = None
    extra_defaults: dict[str, Any] = {}
    #: Checks of the options in :attr:`extra_defaults`, ``name -> check(value)`` (run at construction).
    extra_checks: dict[str, Any] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        allowed = {**REGION_DEFAULTS, **self.extra_defaults}
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown option(s) {unknown}; expected some of {sorted(allowed)}.")
        self.options = {**allowed, **kwargs}
        o = self.options
        # checked here to fail at construction; the options are kept as given (the function checks them per call)
        V.check_options(mode=o["mode"], classes=o["classes"], aggregate=o["aggregate"], smooth=o["smooth"],
                        gamma=o["gamma"], threshold=o["threshold"], class_weights=o["class_weights"],
                        ignore_index=o["ignore_index"])
        for name, check in self.extra_checks.items():
            check(o[name])

    def forward(self, logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return type(self).function(logits, target, mask, **self.options)

    def extra_repr(self) -> str:
        defaults = {**REGION_DEFAULTS, **self.extra_defaults}
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items() if not _same(v, defaults[k]))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return a is b
    return a == b
