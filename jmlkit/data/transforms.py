r"""The augmentations of jmlkit: the two views of semi-supervised training, and the resizing of items.

**Views** (what :class:`jmlkit.engine.objectives.SemiSupervised` trains on, FixMatch-style). Both take a batch
``images`` ``(B, C, H, W)`` and draw from ``generator`` (the run's CPU generator; ``None``: torch's global RNG),
so a seeded generator gives the same views every time; the input is never modified.

* :func:`weak_view`: a horizontal flip of each image with probability 1/2. The model's prediction on it is the
  pseudo-label.
* :func:`strong_view`: per image, brightness in ``[-0.3, 0.3)``, contrast in ``[0.6, 1.4)`` around the image mean,
  Gaussian noise (std 0.1) and a zeroed square of a quarter of the shorter side. Photometric only: the pixels
  stay where they are, so ``strong_view(weak_view(x))`` is trained on the weak view's pseudo-labels.

The draws come in a fixed order (flips; then brightness, contrast, noise, the square's rows and columns); a change
of that order changes every semi-supervised result.

**Items.** :class:`Resize` resizes the item dicts of :mod:`jmlkit.data` (``image`` float (C, H, W), optional
``label`` int64 (H, W), optional ``soft`` float (K, H, W); other keys pass through): ``image`` and ``soft``
bilinear (a bilinear mix of probability vectors is still a probability vector), ``label`` nearest. Any callable
``item -> item`` is a data set's ``transform``. :func:`check_size` and :func:`check_range` check size and range
options for the data sets.

Example:
    >>> import torch
    >>> x = torch.arange(8.).view(2, 1, 1, 4)
    >>> weak_view(x, torch.Generator().manual_seed(0))[:, 0, 0].tolist()  # draws 0.50, 0.77: the first is flipped
    [[3.0, 2.0, 1.0, 0.0], [4.0, 5.0, 6.0, 7.0]]
    >>> strong_view(x, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 1, 1, 4])
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from jmlkit._checks import check_int, check_real

__all__ = ["weak_view", "strong_view", "Resize", "check_size", "check_range"]

Item = dict[str, Any]


# ------------------------------------------------------------------------------------------ semi-supervised views
def _check_views(images: Any, generator: Any) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = f"a {images.dtype} tensor of shape {tuple(images.shape)}" if isinstance(images, Tensor) else \
            type(images).__name__
        raise ValueError(f"Expected `images` to be a float tensor (B, C, H, W), but got {got}.")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"Expected `generator` to be a torch.Generator or None, but got {type(generator).__name__}.")


def weak_view(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each image of ``images`` ``(B, C, H, W)`` flipped left-right with probability 1/2 (one draw per image from
    ``generator``, CPU)."""
    _check_views(images, generator)
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    out = images.clone()
    out[flip.to(images.device)] = out[flip.to(images.device)].flip(-1)
    return out


def strong_view(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Photometric jitter (brightness, contrast), Gaussian noise and a zeroed square, drawn per image of ``images``
    ``(B, C, H, W)`` from ``generator`` (CPU).

    Geometry is unchanged, so pseudo-labels of the weak view stay aligned with the strong view.
    """
    _check_views(images, generator)
    b, _, h, w = images.shape
    dev = images.device
    shape = (b, 1, 1, 1)
    brightness = ((torch.rand(shape, generator=generator) - 0.5) * 0.6).to(dev)
    contrast = (0.6 + 0.8 * torch.rand(shape, generator=generator)).to(dev)
    noise = (0.1 * torch.randn(images.shape, generator=generator)).to(dev)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * contrast + mean + brightness + noise
    side = max(1, min(h, w) // 4)
    ys = torch.randint(0, max(h - side, 0) + 1, (b,), generator=generator).tolist()
    xs = torch.randint(0, max(w - side, 0) + 1, (b,), generator=generator).tolist()
    for i, (y, x) in enumerate(zip(ys, xs)):
        out[i, :, y : y + side, x : x + side] = 0.0
    return out


# ------------------------------------------------------------------------------------------ items and option checks
def check_size(name: str, value: Any) -> tuple[int, int]:
    """An image size: ``s`` or ``(h, w)``, positive ints, as ``(h, w)``.

    >>> check_size("size", 32), check_size("size", (24, 32))
    ((32, 32), (24, 32))
    """
    if not isinstance(value, (tuple, list)):
        value = check_int(name, value, low=1)
        return value, value
    if len(value) != 2:
        raise ValueError(f"Expected `{name}` to be an int or a pair (height, width), but got {value!r}.")
    return check_int(name, value[0], low=1), check_int(name, value[1], low=1)


def check_range(name: str, value: Any, *, low: float, high: float | None = None,
                integer: bool = False) -> tuple[Any, Any]:
    """A range of draws: ``v`` or ``(lo, hi)`` with ``low <= lo <= hi (<= high)``, as ``(lo, hi)`` (ints with
    ``integer=True``, else floats).

    >>> check_range("scale", (0.5, 2), low=0.0), check_range("digits", 3, low=1, integer=True)
    ((0.5, 2.0), (3, 3))
    >>> check_range("scale", (2.0, 0.5), low=0.0)
    Traceback (most recent call last):
    ...
    ValueError: Expected `scale` = (low, high) with low <= high, but got (2.0, 0.5).
    """
    check = check_int if integer else check_real
    if not isinstance(value, (tuple, list)):  # one number (checked below)
        value = (value, value)
    elif len(value) != 2:
        raise ValueError(f"Expected `{name}` to be a number or a pair (low, high), but got {value!r}.")
    lo, hi = (check(name, v, low=low, high=high) for v in value)
    if lo > hi:
        raise ValueError(f"Expected `{name}` = (low, high) with low <= high, but got {tuple(value)!r}.")
    return lo, hi


def _image(item: Item) -> torch.Tensor:
    image = item.get("image")
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"Expected item['image'] to be a float tensor (C, H, W), but got {got}.")
    return image


def _resize_item(item: Item, size: tuple[int, int]) -> Item:
    out = dict(item)
    out["image"] = F.interpolate(_image(item)[None], size=size, mode="bilinear", align_corners=False)[0]
    if item.get("soft") is not None:
        out["soft"] = F.interpolate(item["soft"][None], size=size, mode="bilinear", align_corners=False)[0]
    if item.get("label") is not None:
        lab = item["label"]
        out["label"] = F.interpolate(lab[None, None].float(), size=size, mode="nearest")[0, 0].to(lab.dtype)
    return out


class Resize:
    """Resize to ``size`` (int or (h, w)): bilinear image and soft, nearest label.

    >>> import torch
    >>> Resize(4)({"image": torch.zeros(3, 8, 8), "label": torch.zeros(8, 8, dtype=torch.long)})["label"].shape
    torch.Size([4, 4])
    """

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = check_size("size", size)

    def __call__(self, item: Item) -> Item:
        return _resize_item(item, self.size)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"
