r"""Paired augmentations: one random draw moves ``image``, ``label`` and ``soft`` together.

Every transform is a callable ``t(item, generator=None) -> item`` on the item dicts of
:mod:`jmlkit.data` (``image`` float (C, H, W), optional ``label`` int64 (H, W), optional ``soft``
float (K, H, W); other keys pass through). Random draws come from ``generator`` when given,
otherwise from torch's global RNG (which :func:`jmlkit.data.make_loader` seeds per worker), so a
seeded generator gives the same augmentation every time. The input dict is never modified.

Resampling: ``image`` and ``soft`` bilinear (a bilinear mix of probability vectors is still a
probability vector), ``label`` nearest. Pixels that a transform invents (padding; cutout with
``mark_ignore=True``) get ``label = ignore_index`` and ``soft = 0`` (the all-zero vector: no target).

For FixMatch-style semi-supervised learning, :func:`weak_view` is geometric (flip, scale, crop) and
:func:`strong_view` is photometric only (colour jitter, blur, cutout), so ``strong(weak(item))``
stays pixel-aligned with ``weak(item)`` and the weak view's pseudo-labels supervise the strong
view; :class:`TwoViews` does both in one call.

Example:
    >>> import torch
    >>> item = {"image": torch.arange(4.).view(1, 2, 2), "label": torch.tensor([[0, 1], [2, 3]])}
    >>> out = RandomHorizontalFlip(p=1.0)(item)
    >>> out["image"][0].tolist(), out["label"].tolist()
    ([[1.0, 0.0], [3.0, 2.0]], [[1, 0], [3, 2]])
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from jmlkit._checks import check_callable, check_int, check_real

from ._ops import gaussian_blur

__all__ = [
    "Compose", "RandomHorizontalFlip", "Resize", "RandomResizedCrop", "RandomScaleCrop",
    "ColorJitter", "GaussianBlur", "GaussianNoise", "Cutout", "TwoViews", "weak_view", "strong_view",
]

Item = dict[str, Any]


# ------------------------------------------------------------------------------------------ option checks
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


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * torch.rand((), generator=generator).item()


def _randint(lo: int, hi: int, generator: torch.Generator | None) -> int:
    """Uniform int in [lo, hi] inclusive."""
    return int(torch.randint(lo, hi + 1, (), generator=generator).item())


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


def _crop_item(item: Item, top: int, left: int, height: int, width: int, *, ignore_index: int = 255,
               fill: float = 0.0) -> Item:
    """Crop a window that may stick out of the image; the outside is padding (fill / ignore / 0)."""
    out = dict(item)
    H, W = _image(item).shape[-2:]
    pad = (max(0, -left), max(0, left + width - W), max(0, -top), max(0, top + height - H))
    t, l = top + pad[2], left + pad[0]

    def crop(x: torch.Tensor, value: float) -> torch.Tensor:
        if any(pad):
            x = F.pad(x, pad, value=value)
        return x[..., t:t + height, l:l + width]

    out["image"] = crop(item["image"], fill)
    if item.get("soft") is not None:
        out["soft"] = crop(item["soft"], 0.0)
    if item.get("label") is not None:
        out["label"] = crop(item["label"], ignore_index)
    return out


class Compose:
    """Apply transforms in order, passing the same ``generator`` to each.

    >>> import torch
    >>> t = Compose([RandomHorizontalFlip(p=1.0), RandomHorizontalFlip(p=1.0)])
    >>> x = {"image": torch.rand(1, 3, 3)}
    >>> bool(torch.equal(t(x)["image"], x["image"]))
    True
    """

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = [check_callable(f"transforms[{i}]", t) for i, t in enumerate(transforms)]

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        for t in self.transforms:
            item = t(item, generator=generator) if _takes_generator(t) else t(item)
        return item

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


def _takes_generator(t: Callable) -> bool:
    return isinstance(t, (Compose, _Random, Resize, TwoViews))


class _Random:
    """Base: apply ``_apply`` with probability ``p``."""

    def __init__(self, p: float) -> None:
        self.p = check_real("p", p, low=0.0, high=1.0)

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        if self.p < 1.0 and torch.rand((), generator=generator).item() >= self.p:
            return dict(item)
        return self._apply(item, generator)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class RandomHorizontalFlip(_Random):
    """Mirror image, label and soft left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:
        _image(item)
        out = dict(item)
        for key in ("image", "label", "soft"):
            if item.get(key) is not None:
                out[key] = item[key].flip(-1)
        return out


class Resize:
    """Resize to ``size`` (int or (h, w)): bilinear image and soft, nearest label.

    >>> import torch
    >>> Resize(4)({"image": torch.zeros(3, 8, 8), "label": torch.zeros(8, 8, dtype=torch.long)})["label"].shape
    torch.Size([4, 4])
    """

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = check_size("size", size)

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        return _resize_item(item, self.size)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"


class RandomResizedCrop(_Random):
    """Crop a random window (area fraction in ``scale``, aspect ratio log-uniform in ``ratio``)
    and resize it to ``size``; falls back to the whole image after 10 failed draws."""

    def __init__(self, size: int | tuple[int, int], *, scale: tuple[float, float] = (0.25, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), p: float = 1.0) -> None:
        super().__init__(p)
        self.size = check_size("size", size)
        self.scale = check_range("scale", scale, low=1e-6, high=1.0)
        self.ratio = check_range("ratio", ratio, low=1e-6)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:
        H, W = _image(item).shape[-2:]
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            area = H * W * _uniform(*self.scale, generator)
            r = math.exp(_uniform(*log_r, generator))
            w, h = int(round(math.sqrt(area * r))), int(round(math.sqrt(area / r)))
            if 0 < w <= W and 0 < h <= H:
                top, left = _randint(0, H - h, generator), _randint(0, W - w, generator)
                return _resize_item(_crop_item(item, top, left, h, w), self.size)
        return _resize_item(item, self.size)


class RandomScaleCrop(_Random):
    """Rescale by a factor drawn uniformly from ``scale``, then crop ``size`` at a random place,
    padding with ``fill`` (image), ``ignore_index`` (label) and 0 (soft) where the rescaled image
    is smaller than ``size``. ``size=None`` keeps the input size (the usual semantic-segmentation
    "random scale + crop").
    """

    def __init__(self, size: int | tuple[int, int] | None = None, *, scale: tuple[float, float] = (0.5, 2.0),
                 ignore_index: int = 255, fill: float = 0.0, p: float = 1.0) -> None:
        super().__init__(p)
        self.size = None if size is None else check_size("size", size)
        self.scale = check_range("scale", scale, low=1e-3)
        self.ignore_index = check_int("ignore_index", ignore_index)
        self.fill = check_real("fill", fill)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:
        H, W = _image(item).shape[-2:]
        h, w = self.size or (H, W)
        s = _uniform(*self.scale, generator)
        sh, sw = max(1, int(round(H * s))), max(1, int(round(W * s)))
        item = _resize_item(item, (sh, sw))
        top = _randint(min(0, sh - h), max(0, sh - h), generator) if sh != h else 0
        left = _randint(min(0, sw - w), max(0, sw - w), generator) if sw != w else 0
        return _crop_item(item, top, left, h, w, ignore_index=self.ignore_index, fill=self.fill)


class ColorJitter(_Random):
    """Photometric jitter of the image only (normalised units): ``x ← x + b`` with
    ``b ~ U(-brightness, brightness)``; ``x ← m + c (x - m)`` around the image mean ``m`` with
    ``c ~ U(1 - contrast, 1 + contrast)``; for 3 channels ``x ← g + s (x - g)`` around the grey
    image ``g`` with ``s ~ U(1 - saturation, 1 + saturation)``."""

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, *,
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.brightness = check_real("brightness", brightness, low=0.0)
        self.contrast = check_real("contrast", contrast, low=0.0, high=1.0)
        self.saturation = check_real("saturation", saturation, low=0.0, high=1.0)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:
        x = _image(item)
        b = _uniform(-self.brightness, self.brightness, generator)
        c = _uniform(1 - self.contrast, 1 + self.contrast, generator)
        s = _uniform(1 - self.saturation, 1 + self.saturation, generator)
        x = x + b
        m = x.mean()
        x = m + c * (x - m)
        if x.shape[0] == 3:
            g = x.mean(0, keepdim=True)
            x = g + s * (x - g)
        return {**item, "image": x}


class GaussianBlur(_Random):
    """Blur the image only, sigma (pixels) drawn uniformly from ``sigma``."""

    def __init__(self, sigma: float | tuple[float, float] = (0.1, 1.5), *, p: float = 0.5) -> None:
        super().__init__(p)
        self.sigma = check_range("sigma", sigma, low=1e-3)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:
        sigma = round(_uniform(*self.sigma, generator), 2)  # rounded: the blur matrices are cached
        return {**item, "image": gaussian_blur(_image(item), sigma)}


class GaussianNoise(_Random):
    """Add Gaussian noise of standard deviation ``std`` to the image only."""

    def __init__(self, std: float = 0.05, *, p: float = 1.0) -> None:
        super().__init__(p)
        self.std = check_real("std", std, low=0.0)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:
        x = _image(item)
        return {**item, "image": x + self.std * torch.randn(x.shape, generator=generator, dtype=x.dtype)}


class Cutout(_Random):
    """Fill a random square (side = a fraction in ``size`` of the shorter image side, centre
    anywhere, clipped at the border) of the image with ``fill``. The label is kept (FixMatch /
    UniMatch: the network must still predict the hidden content) unless ``mark_ignore=True``,
    which sets ``label = ignore_index`` and ``soft = 0`` there."""

    def __init__(self, size: float | tuple[float, float] = (0.1, 0.4), *, fill: float = 0.0,
                 mark_ignore: bool = False, ignore_index: int = 255, p: float = 0.5) -> None:
        super().__init__(p)
        self.size = check_range("size", size, low=0.0, high=1.0)
        self.fill = check_real("fill", fill)
        self.mark_ignore = bool(mark_ignore)
        self.ignore_index = check_int("ignore_index", ignore_index)

    def _apply(self, item: Item, generator: torch.Generator | None) -> Item:
        x = _image(item)
        H, W = x.shape[-2:]
        side = max(1, int(round(_uniform(*self.size, generator) * min(H, W))))
        cy, cx = _randint(0, H - 1, generator), _randint(0, W - 1, generator)
        y0, y1 = max(0, cy - side // 2), min(H, cy - side // 2 + side)
        x0, x1 = max(0, cx - side // 2), min(W, cx - side // 2 + side)
        out = dict(item)
        out["image"] = x.clone()
        out["image"][..., y0:y1, x0:x1] = self.fill
        if self.mark_ignore:
            if item.get("label") is not None:
                out["label"] = item["label"].clone()
                out["label"][..., y0:y1, x0:x1] = self.ignore_index
            if item.get("soft") is not None:
                out["soft"] = item["soft"].clone()
                out["soft"][..., y0:y1, x0:x1] = 0.0
        return out


class TwoViews:
    """``weak`` then ``strong`` on top: returns the weak item plus ``image_strong`` (and
    ``label_strong`` / ``soft_strong`` when ``strong`` changed them, e.g. cutout with
    ``mark_ignore``). ``strong`` must not move pixels (photometric only) so both views align.

    >>> import torch
    >>> out = TwoViews(weak_view(), strong_view())({"image": torch.rand(3, 16, 16)}, torch.Generator().manual_seed(0))
    >>> out["image"].shape == out["image_strong"].shape
    True
    """

    def __init__(self, weak: Callable | None, strong: Callable) -> None:
        self.weak = weak
        self.strong = strong

    def __call__(self, item: Item, generator: torch.Generator | None = None) -> Item:
        if self.weak is not None:
            item = self.weak(item, generator=generator) if _takes_generator(self.weak) else self.weak(item)
        strong = self.strong(item, generator=generator) if _takes_generator(self.strong) else self.strong(item)
        out = dict(item)
        out["image_strong"] = strong["image"]
        for key in ("label", "soft"):
            if key in strong and strong[key] is not item.get(key):
                out[f"{key}_strong"] = strong[key]
        return out

    def __repr__(self) -> str:
        return f"TwoViews(weak={self.weak!r}, strong={self.strong!r})"


def weak_view(size: int | tuple[int, int] | None = None, *, scale: tuple[float, float] = (0.5, 2.0),
              flip: bool = True, ignore_index: int = 255) -> Compose:
    """Geometric (weak) view: random scale in ``scale`` + crop to ``size`` (default: input size) +
    horizontal flip."""
    ts: list[Callable] = [RandomScaleCrop(size, scale=scale, ignore_index=ignore_index)]
    if flip:
        ts.append(RandomHorizontalFlip())
    return Compose(ts)


def strong_view(*, jitter: float = 0.4, blur: bool = True, cutout: bool = True, mark_ignore: bool = False,
                ignore_index: int = 255) -> Compose:
    """Photometric (strong) view: colour jitter (p = 0.8), Gaussian blur (p = 0.5), cutout (p = 0.5).
    Pixel-aligned with its input, so apply it on top of :func:`weak_view`."""
    ts: list[Callable] = [ColorJitter(jitter, jitter, jitter, p=0.8)]
    if blur:
        ts.append(GaussianBlur(p=0.5))
    if cutout:
        ts.append(Cutout(p=0.5, mark_ignore=mark_ignore, ignore_index=ignore_index))
    return Compose(ts)
