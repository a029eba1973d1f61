"""Regions of a label map: boundary bands, distance to the nearest boundary."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from jmlkit._checks import check_int
from jmlkit.metrics.functional._common import Region, _check_region

# --------------------------------------------------------------------------------------
# boundary regions
# --------------------------------------------------------------------------------------
_POOLS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _pool(x: Tensor, width: int) -> Tensor:
    return _POOLS[x.ndim - 2](x, kernel_size=2 * width + 1, stride=1, padding=width)


def _spatial_check(target: Tensor) -> None:
    if target.ndim - 1 not in _POOLS:
        raise ValueError(
            f"Boundary regions need `target` of shape (B, *spatial) with 1 to 3 spatial dims, "
            f"but got shape {tuple(target.shape)}."
        )


def boundary_mask(target: Tensor, width: int = 3) -> Tensor:
    r"""Pixels within Chebyshev distance ``width`` of a label change.

    A pixel is *boundary* when its :math:`(2w+1)^d` window holds more than one label
    value, i.e. some pixel with a different label lies within Chebyshev (chessboard)
    distance :math:`w`. The window is clipped at the image border (the border itself is
    not a label change). ``ignore_index`` values count as a label, so pixels next to an
    ignored band (VOC's 255 outlines) are boundary pixels.

    Args:
        target: integer labels ``(B, *spatial)`` with 1 to 3 spatial dims.
        width: band half-width :math:`w \ge 1` in pixels.

    Returns:
        bool tensor of the shape of ``target``.

    Example:
        >>> t = torch.tensor([[[0, 0, 0, 1, 1, 1]]])
        >>> boundary_mask(t, width=1).int()
        tensor([[[0, 0, 1, 1, 0, 0]]], dtype=torch.int32)
    """
    width = check_int("width", width, low=1)
    _spatial_check(target)
    t = target.unsqueeze(1).to(torch.float32)
    return (_pool(t, width) != -_pool(-t, width)).squeeze(1)


def boundary_distance(target: Tensor, max_distance: int = 10) -> Tensor:
    r"""Chebyshev distance from each pixel to the nearest pixel with a different label.

    Distances are capped: pixels farther than ``max_distance`` (and images with a
    single label) get ``max_distance + 1``. ``d = 1`` is a pixel touching a label change.

    Args:
        target: integer labels ``(B, *spatial)``, 1 to 3 spatial dims.
        max_distance: largest distance resolved.

    Returns:
        int64 tensor of the shape of ``target`` with values in ``[1, max_distance + 1]``.

    Example:
        >>> boundary_distance(torch.tensor([[0, 0, 0, 1, 1]]).unsqueeze(0), max_distance=2)
        tensor([[[3, 2, 1, 1, 2]]])
    """
    max_distance = check_int("max_distance", max_distance, low=1)
    _spatial_check(target)
    t = target.unsqueeze(1).to(torch.float32)
    hi, lo = t, -t
    dist = torch.full(target.shape, max_distance + 1, dtype=torch.int64, device=target.device)
    for d in range(1, max_distance + 1):
        hi, lo = _pool(hi, 1), _pool(lo, 1)  # iterated 3x3 max == (2d+1) window max
        newly = (hi != -lo).squeeze(1) & (dist > d)
        dist.masked_fill_(newly, d)
    return dist


def region_mask(target: Tensor, region: Region = "all", boundary_width: int = 3) -> Optional[Tensor]:
    """Mask of the pixels measured for ``region`` ('all' -> None, 'boundary', 'interior')."""
    region, boundary_width = _check_region(region, boundary_width)
    if region == "all":
        return None
    band = boundary_mask(target, boundary_width)
    return band if region == "boundary" else ~band
