"""Tensor helpers shared by the data modules."""
from __future__ import annotations

import functools
import math

import torch

__all__ = ["gaussian_blur"]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``x`` (…, H, W) with reflect boundaries, as two matrix products."""
    return _blur_matrix(x.shape[-2], sigma) @ x @ _blur_matrix(x.shape[-1], sigma).T


@functools.lru_cache(maxsize=16)
def _blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """(n, n) matrix ``B`` with ``B @ v`` = 1-D Gaussian blur of ``v`` with reflect padding."""
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1)
    k = torch.exp(-0.5 * (offsets.double() / sigma) ** 2)
    k = (k / k.sum()).float()
    rows = torch.arange(n)[:, None].expand(n, len(offsets))
    cols = rows + offsets[None, :]
    period = 2 * (n - 1) if n > 1 else 1
    cols = cols % period if n > 1 else torch.zeros_like(cols)
    cols = torch.where(cols >= n, period - cols, cols)  # reflect (edge pixel not repeated)
    mat = torch.zeros(n, n)
    mat.index_put_((rows.reshape(-1), cols.reshape(-1)), k.repeat(n), accumulate=True)
    return mat
