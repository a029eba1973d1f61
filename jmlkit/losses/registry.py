"""Losses by name, for configuration files and the command line."""
from __future__ import annotations

from typing import Any

from torch import nn

from ._names import REGION_LOSSES, loss_key
from .compound import CompoundLoss, CrossEntropyLoss

LOSS_NAMES = ("ce", *REGION_LOSSES)


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
    key = loss_key(name)
    if key.startswith("ce+") and key[3:] in REGION_LOSSES:
        return CompoundLoss(key[3:], ce_weight=0.25 if ce_weight is None else ce_weight,
                            region_weight=0.75 if region_weight is None else region_weight, **options)
    if key == "ce":
        return CrossEntropyLoss(**{k: v for k, v in options.items() if k in ("mode", "ignore_index", "validate_args")})
    if key in REGION_LOSSES:
        return REGION_LOSSES[key](**options)
    raise ValueError(f"Expected `name` to be one of {LOSS_NAMES} or 'ce+<region loss>', but got {name!r}.")
