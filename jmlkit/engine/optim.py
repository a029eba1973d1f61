"""Loss, optimiser and learning-rate schedule of a run."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from jmlkit.engine.config import TrainConfig

__all__ = ["make_loss", "lr_factor", "make_optimizer"]


def make_loss(name: str, *, ignore_index: int | None = None, sync_distributed: bool = False, **kwargs: Any) -> nn.Module:
    """The loss :func:`jmlkit.losses.get_loss` ``(name, **kwargs)`` with ``ignore_index`` and distributed sync set.

    ``sync_distributed`` is only passed on when true, so losses without it keep working single-process.
    """
    from jmlkit import losses

    options = dict(kwargs)
    options.setdefault("ignore_index", ignore_index)
    if sync_distributed:
        options["sync_distributed"] = True
    return losses.get_loss(name, **options)


def lr_factor(step: int, total_steps: int, *, warmup: float = 0.05, schedule: str = "poly", power: float = 0.9) -> float:
    r"""Learning-rate multiplier at optimisation ``step`` (0-based) of ``total_steps``.

    Linear warm-up over :math:`W = \lceil \text{warmup}\cdot N\rceil` steps,
    :math:`f = (s+1)/(W+1)`; then with :math:`t = (s - W)/(N - W)`: poly :math:`(1-t)^p`,
    cosine :math:`\tfrac12(1+\cos \pi t)`, constant :math:`1`.

    >>> [round(lr_factor(s, 10, warmup=0.2), 3) for s in range(0, 10, 3)]
    [0.333, 0.887, 0.536, 0.154]
    >>> round(lr_factor(5, 10, warmup=0.0, schedule="cosine"), 3)
    0.5
    """
    warm = int(math.ceil(warmup * total_steps))
    if step < warm:
        return (step + 1) / (warm + 1)
    if schedule == "constant":
        return 1.0
    t = min(max((step - warm) / max(total_steps - warm, 1), 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return (1.0 - t) ** power


def make_optimizer(model: nn.Module, config: TrainConfig, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW at ``config.lr`` and its :func:`lr_factor` schedule over ``total_steps``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup=config.warmup, schedule=config.schedule, power=config.poly_power)
    )
    return optimizer, scheduler
