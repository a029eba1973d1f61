"""Losses by name, for configuration files and the command line."""
from __future__ import annotations

from typing import Any

from torch import nn

from ._names import REGION_LOSSES, check_known_options, loss_key
from .compound import CompoundLoss, CrossEntropyLoss

LOSS_NAMES = ("ce", *REGION_LOSSES)

#: The options of ``"ce"`` (:class:`CrossEntropyLoss`).
CE_KEYS = frozenset({"mode", "ignore_index", "class_weights", "sync_distributed", "validate_args"})


def get_loss(name: str, *, ce_weight: float | None = None, region_weight: float | None = None,
             **options: Any) -> nn.Module:
    """Build a loss from its name: ``"ce"``, ``"jml"`` (= ``"jml1"``), ``"jml2"``, ``"dml"``, ``"sjl"``,
    ``"lovasz"``, or ``"ce+<region>"`` for :class:`CompoundLoss` (weights 0.25 : 0.75 unless given).

    Every option reaches the loss that uses it, and an option the named loss does not take raises
    ``TypeError`` naming it, the loss and the options it takes: ``"ce"`` takes those of
    :class:`CrossEntropyLoss` (``class_weights`` becomes torch's ``weight``), a region loss those of its class,
    ``"ce+<region>"`` ``ce_weight``, ``region_weight``, ``mode``, ``ignore_index`` and ``validate_args`` (shared
    by both terms) and the region loss's options (for the region term only).

    Example:
        >>> get_loss("ce+jml", classes="all")
        CompoundLoss(
          (ce): CrossEntropyLoss()
          (region): JaccardMetricLoss(classes='all')
        )
        >>> get_loss("ce", smooth=1.0)
        Traceback (most recent call last):
        ...
        TypeError: get_loss('ce') got unknown option(s) ['smooth']; expected some of ['class_weights', 'ignore_index', 'mode', 'sync_distributed', 'validate_args'].
    """
    key = loss_key(name)
    if key.startswith("ce+") and key[3:] in REGION_LOSSES:
        return CompoundLoss(key[3:], ce_weight=0.25 if ce_weight is None else ce_weight,
                            region_weight=0.75 if region_weight is None else region_weight, **options)
    if key not in ("ce", *REGION_LOSSES):
        raise ValueError(f"Expected `name` to be one of {LOSS_NAMES} or 'ce+<region loss>', but got {name!r}.")
    weights = [k for k, v in (("ce_weight", ce_weight), ("region_weight", region_weight)) if v is not None]
    if weights:
        raise TypeError(f"get_loss({name!r}) got option(s) {weights}, which only a compound loss "
                        f"'ce+<region loss>' takes.")
    if key == "ce":
        return CrossEntropyLoss(**check_known_options(f"get_loss({name!r})", options, CE_KEYS))
    return REGION_LOSSES[key](**options)
