"""Losses by name, for configuration files and the command line."""
from __future__ import annotations

from typing import Any

from torch import nn

from .compound import CompoundLoss, CrossEntropyLoss
from .dice import DiceSemimetricLoss
from .jaccard import JaccardMetricLoss, SoftJaccardLoss
from .lovasz import LovaszSoftmaxLoss

_REGION = {
    "jml": lambda **kw: JaccardMetricLoss(**kw),
    "jml1": lambda **kw: JaccardMetricLoss(variant=1, **kw),
    "jml2": lambda **kw: JaccardMetricLoss(variant=2, **kw),
    "dml": lambda **kw: DiceSemimetricLoss(**kw),
    "sjl": lambda **kw: SoftJaccardLoss(**kw),
    "lovasz": lambda **kw: LovaszSoftmaxLoss(**{k: v for k, v in kw.items() if k in _LOVASZ_KEYS}),
}
_LOVASZ_KEYS = {"mode", "from_logits", "classes", "per_image", "ignore_index", "validate_args"}
LOSS_NAMES = ("ce", *_REGION)


def get_loss(name: str, *, ce_weight: float | None = None, region_weight: float | None = None,
             **options: Any) -> nn.Module:
    """Build a loss from its name: ``"ce"``, ``"jml"`` (= ``"jml1"``), ``"jml2"``, ``"dml"``, ``"sjl"``,
    ``"lovasz"``, or ``"ce+<region>"`` for :class:`CompoundLoss` (weights 0.25 : 0.75 unless given).

    Example:
        >>> get_loss("ce+jml", classes="all")
        CompoundLoss(
          (ce): CrossEntropyLoss()
          (region): JaccardMetricLoss(classes='all')
        )
    """
    if not isinstance(name, str):
        raise TypeError(f"Expected argument `name` to be a string, but got {type(name).__name__}.")
    key = name.strip().lower().replace(" ", "")
    if key.startswith("ce+"):
        region = key[3:]
        if region not in _REGION:
            raise ValueError(f"Expected argument `name` to be one of {LOSS_NAMES} or 'ce+<region loss>', but got {name!r}.")
        return CompoundLoss(region, ce_weight=0.25 if ce_weight is None else ce_weight,
                            region_weight=0.75 if region_weight is None else region_weight, **options)
    if key == "ce":
        return CrossEntropyLoss(**{k: v for k, v in options.items() if k in ("mode", "ignore_index", "validate_args")})
    if key in _REGION:
        return _REGION[key](**options)
    raise ValueError(f"Expected argument `name` to be one of {LOSS_NAMES} or 'ce+<region loss>', but got {name!r}.")
