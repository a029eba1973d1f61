r"""Digit scenes: real soft-label segmentation from scikit-learn's bundled handwritten digits.

scikit-learn ships the UCI "optical recognition of handwritten digits" set inside its wheel
(``sklearn/datasets/data/digits.csv.gz``, 1,797 digits, no download). Each 8×8 grey level
:math:`v \in \{0, \dots, 16\}` is the number of ink pixels in a 4×4 block of the original 32×32
bitmap, so :math:`v / 16` is the *true fraction of the block covered by ink*: a real soft
label, not a smoothed one.

A scene places 1..N digits (upscaled bilinearly to ``digit_size`` pixels) on a ``size×size``
canvas, by default in distinct grid cells. Overlaps (``placement="free"``) are composed back to front with alpha-over: with coverages
:math:`c_1, \dots, c_D` (``c_D`` on top) the share of digit :math:`j` at a pixel is

.. math::  w_j = c_j \prod_{l > j} (1 - c_l), \qquad
           \text{soft}_{k} = \sum_{j : \text{class}(j) = k} w_j, \qquad
           \text{soft}_{0} = 1 - \sum_j w_j = \prod_j (1 - c_j),

so the ``K = 11`` soft channels (background, digits 0..9) lie in [0, 1] and sum to 1.
The hard label is ``soft.argmax(0)`` (ties go to the lower class index, i.e. background), so a
pixel is labelled with a digit when that digit covers more of it than anything else.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from jmlkit._checks import check_callable, check_choice, check_int, check_real, keyword_options

from ._ops import gaussian_blur as _gaussian_blur
from .transforms import check_range

__all__ = ["DigitScenes", "digit_pool", "SPLIT_FRACTIONS", "SPLITS"]

#: The splits of the data sets with generated splits (digit scenes, brain slices).
SPLITS = ("train", "val", "test", "unlabeled")
#: Share of the 1,797 source digits given to each split (stratified by digit class).
SPLIT_FRACTIONS = {"train": 0.5, "val": 0.1, "test": 0.2, "unlabeled": 0.2}
_SPLIT_SEED = 20230127  # fixed: the assignment of source digits to splits never depends on `seed`
_DEFAULT_NUM_SCENES = {"train": 1000, "val": 250, "test": 250, "unlabeled": 1000}


@functools.lru_cache(maxsize=1)
def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(coverage (1797, 8, 8) float32 in [0, 1], digit (1797,) int64)``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    return images, torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))


@functools.lru_cache(maxsize=4)
def _thick_digits(stroke: int) -> torch.Tensor:
    """The 8×8 coverages upsampled bilinearly to 16×16 and grey-dilated by a ``(2·stroke+1)`` square (float32 in [0, 1])."""
    import torch.nn.functional as F

    images, _ = _load_digits()
    up = F.interpolate(images[:, None], size=16, mode="bilinear", align_corners=False)
    return F.max_pool2d(up, 2 * stroke + 1, stride=1, padding=stroke)[:, 0].clamp_(0, 1).contiguous()


@functools.lru_cache(maxsize=None)
def _split_pools() -> dict[str, torch.Tensor]:
    _, target = _load_digits()
    rng = np.random.default_rng(_SPLIT_SEED)
    pools: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    bounds = np.cumsum([SPLIT_FRACTIONS[s] for s in SPLITS])
    for digit in range(10):
        ids = np.flatnonzero(target.numpy() == digit)
        ids = ids[rng.permutation(len(ids))]
        cuts = np.round(bounds * len(ids)).astype(int)
        for s, lo, hi in zip(SPLITS, np.r_[0, cuts[:-1]], cuts):
            pools[s].append(ids[lo:hi])
    return {s: torch.from_numpy(np.sort(np.concatenate(v))).long() for s, v in pools.items()}


def digit_pool(split: str) -> torch.Tensor:
    """Indices (into ``sklearn.datasets.load_digits()``) of the source digits a split may use.

    The pools of the four splits are disjoint and fixed (they do not depend on any seed).

    >>> sum(len(digit_pool(s)) for s in ("train", "val", "test", "unlabeled"))
    1797
    >>> len(set(digit_pool("train").tolist()) & set(digit_pool("test").tolist()))
    0
    """
    check_choice("split", split, SPLITS)
    return _split_pools()[split].clone()


def _interp_matrix(start: torch.Tensor, length: torch.Tensor, n_out: int, n_in: int = 8) -> torch.Tensor:
    """Bilinear resampling matrices (…, n_out, n_in) that paste an ``n_in``-pixel signal stretched
    to ``length`` output pixels starting at ``start``; zero outside (hat-function weights)."""
    centres = torch.arange(n_out, dtype=torch.float32) + 0.5
    src = (centres - start[..., None]) / length[..., None] * n_in - 0.5  # (…, n_out) in input pixels
    return (1 - (src[..., None] - torch.arange(n_in, dtype=torch.float32)).abs()).clamp_(min=0)


def _seed_for(seed: int, split: str) -> int:
    return int(np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(1, dtype=np.uint32)[0])


class DigitScenes(Dataset):
    r"""Scenes of handwritten digits with real soft (coverage) labels; 11 classes.

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"unlabeled"``. The splits draw from
            disjoint pools of source digits (see :func:`digit_pool`), whatever ``seed`` is.
            Items of ``"unlabeled"`` still carry ``label`` and ``soft`` so that pseudo-labels can
            be *evaluated*; training code must not use them as supervision.
        num_scenes: number of scenes (default 1000 for train/unlabeled, 250 for val/test).
        size: canvas side in pixels (scenes are ``size × size``).
        digits_per_scene: ``n`` or ``(min, max)`` digits per scene, drawn uniformly, inclusive.
        digit_size: ``s`` or ``(min, max)`` side of an upscaled digit in pixels, at most ``size``.
        seed: scenes are a deterministic function of ``(seed, split)`` and the other options.
        noise: standard deviation of additive Gaussian pixel noise (image in [0, 1] units).
        blur: sigma in pixels of a Gaussian blur of the image (``0`` = none). Labels are not blurred.
        in_channels: 1 (grey) or 3 (each digit gets a random bright colour over a dark
            colour-gradient background).
        stroke: thicken the strokes: ``0`` keeps the digits as drawn; ``s > 0`` upsamples each 8×8 coverage
            to 16×16 and grey-dilates it with a ``(2s+1)``-square maximum filter, so every stroke grows by
            ``s`` half source pixels on each side (holes of the 8×8 digits mostly stay open at ``s = 1``).
            The label is still the coverage of the (thickened) digit. Thick digits are large objects
            relative to a 3×3 smoothing window (see :func:`jmlkit.targets.smoothing_shares`).
        placement: ``"grid"`` puts the digits of a scene in distinct cells of the largest grid of
            ``digit_size[1]``-sided cells that fits, so they never overlap; ``"free"`` puts them
            anywhere, overlaps being composed alpha-over (see above).
        transform: optional callable ``item -> item`` (see :mod:`jmlkit.data.transforms`).

    Items are dicts ``{"image": float32 (C, H, W), "label": int64 (H, W), "soft": float32
    (11, H, W), "index": int}``. The image is ``(x - 0.5) / 0.5`` where ``x`` is the rendered
    scene in [0, 1] plus noise, so pixel values lie roughly in [-1, 1]. ``label`` never holds
    ``ignore_index`` unless a transform (padding, cutout) puts it there.

    All scenes are rendered at construction, vectorised (1,000 64×64 scenes take well under a
    second); ``soft`` is rebuilt per item from the per-digit shares to save memory.

    Example:
        >>> ds = DigitScenes("val", num_scenes=4, size=32, digit_size=(10, 16), seed=0)
        >>> item = ds[0]
        >>> item["image"].shape, item["label"].shape, item["soft"].shape, ds.num_classes
        (torch.Size([3, 32, 32]), torch.Size([32, 32]), torch.Size([11, 32, 32]), 11)
        >>> bool(torch.allclose(item["soft"].sum(0), torch.ones(32, 32)))
        True
        >>> bool((item["soft"].argmax(0) == item["label"]).all())
        True
    """

    num_classes: int = 11
    class_names: tuple[str, ...] = ("background",) + tuple(str(d) for d in range(10))
    ignore_index: int = 255
    has_soft: bool = True

    def __init__(
        self,
        split: str = "train",
        *,
        num_scenes: int | None = None,
        size: int = 64,
        digits_per_scene: int | tuple[int, int] = (1, 3),
        digit_size: int | tuple[int, int] = (14, 24),
        seed: int = 0,
        noise: float = 0.05,
        blur: float = 0.5,
        in_channels: int = 3,
        stroke: int = 0,
        placement: str = "grid",
        transform: Callable[[dict], dict] | None = None,
    ) -> None:
        options = self.check_options(split, num_scenes=num_scenes, size=size, digits_per_scene=digits_per_scene,
                                     digit_size=digit_size, seed=seed, noise=noise, blur=blur, in_channels=in_channels,
                                     stroke=stroke, placement=placement, transform=transform)
        for key, value in options.items():
            setattr(self, key, value)
        self._render()

    @classmethod
    def check_options(cls, split: str = "train", **options: Any) -> dict[str, Any]:
        """The constructor's arguments checked as it checks them and cleaned, without rendering a scene.

        Preflight checks (:func:`jmlkit.engine.preflight`) call this to find a bad option before any work.

        Returns:
            ``{"split", "num_scenes", "size", ...}``: every argument of the constructor, defaults filled in.

        Raises:
            TypeError: an option the constructor does not take, or a value of the wrong type.
            ValueError: a value out of range (``size`` < 8, ``digit_size`` > ``size``, too many digits for the grid, ...).

        Example:
            >>> DigitScenes.check_options("val", size=48)["num_scenes"]
            250
            >>> DigitScenes.check_options(size=16, digit_size=(40, 50))
            Traceback (most recent call last):
            ...
            ValueError: Expected `digit_size` to be an int in [2, 16], but got 40.
        """
        given = keyword_options(cls.__name__, cls.__init__, options)
        out: dict[str, Any] = {"split": check_choice("split", split, SPLITS)}
        num_scenes = given["num_scenes"] if given["num_scenes"] is not None else _DEFAULT_NUM_SCENES[out["split"]]
        out["num_scenes"] = check_int("num_scenes", num_scenes, low=1)
        out["size"] = size = check_int("size", given["size"], low=8)
        out["digits_per_scene"] = check_range("digits_per_scene", given["digits_per_scene"], low=1, integer=True)
        out["digit_size"] = check_range("digit_size", given["digit_size"], low=2, integer=True, high=size)
        out["seed"] = check_int("seed", given["seed"], low=0)
        out["noise"] = check_real("noise", given["noise"], low=0.0)
        out["blur"] = check_real("blur", given["blur"], low=0.0)
        out["in_channels"] = check_choice("in_channels", given["in_channels"], (1, 3))
        out["stroke"] = check_int("stroke", given["stroke"], low=0, high=3)
        out["placement"] = check_choice("placement", given["placement"], ("grid", "free"))
        largest, most = out["digit_size"][1], out["digits_per_scene"][1]
        if out["placement"] == "grid" and (size // largest) ** 2 < most:
            cells = size // largest
            raise ValueError(
                f"Expected `digits_per_scene` max <= {cells ** 2} (the {cells}x{cells} grid of cells of side "
                f"digit_size max = {largest} that fits in size = {size}) with placement='grid', "
                f"but got {most}; use smaller digits, a larger canvas or placement='free'.")
        out["transform"] = check_callable("transform", given["transform"], optional=True)
        return out

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def _render(self) -> None:
        digits, target = _load_digits()
        if self.stroke:
            digits = _thick_digits(self.stroke)
        n_in = digits.shape[-1]
        pool = _split_pools()[self.split]
        n, size, c = self.num_scenes, self.size, self.in_channels
        d_lo, d_hi = self.digits_per_scene
        s_lo, s_hi = self.digit_size
        D = d_hi
        g = torch.Generator().manual_seed(_seed_for(self.seed, self.split))

        counts = torch.randint(d_lo, d_hi + 1, (n,), generator=g)
        active = torch.arange(D)[None, :] < counts[:, None]  # (n, D)
        src = pool[torch.randint(0, len(pool), (n, D), generator=g)]
        sizes = torch.randint(s_lo, s_hi + 1, (n, D), generator=g).float()
        if self.placement == "grid":  # distinct cells of a cells x cells grid: no overlaps
            cells = size // s_hi
            cell = size / cells
            slot_cell = torch.rand(n, cells * cells, generator=g).argsort(1)[:, :D]
            y0 = (slot_cell // cells) * cell + torch.floor(torch.rand(n, D, generator=g) * (cell - sizes + 1))
            x0 = (slot_cell % cells) * cell + torch.floor(torch.rand(n, D, generator=g) * (cell - sizes + 1))
        else:  # anywhere; overlaps are composed alpha-over
            y0 = torch.floor(torch.rand(n, D, generator=g) * (size - sizes + 1))
            x0 = torch.floor(torch.rand(n, D, generator=g) * (size - sizes + 1))
        bg = 0.35 * torch.rand(n, 2, c, generator=g)  # two dark corner colours
        angle = 2 * math.pi * torch.rand(n, generator=g)
        ink = 0.55 + 0.45 * torch.rand(n, D, c, generator=g)
        noise = torch.randn(n, c, size, size, generator=g) if self.noise > 0 else None

        # coverage of slot j: Ry (n, H, 8) @ digit (n, 8, 8) @ Rx^T (n, 8, W), bilinear with zero outside
        ry = _interp_matrix(y0, sizes, size, n_in)  # (n, D, H, n_in)
        rx = _interp_matrix(x0, sizes, size, n_in)
        weights = torch.empty(n, D, size, size)
        for j in range(D):
            cov = ry[:, j] @ digits[src[:, j]] @ rx[:, j].transpose(1, 2)
            cov = cov.clamp_(0, 1) * active[:, j, None, None]
            if j:
                weights[:, :j] *= (1 - cov)[:, None]
            weights[:, j] = cov
        self.source_ids = torch.where(active, src, torch.full_like(src, -1))
        self.digit_classes = torch.where(active, target[src] + 1, torch.zeros_like(src))
        self._weights = weights

        # image: gradient background, alpha-composited coloured ink, blur, noise
        lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size
        t = (torch.cos(angle)[:, None, None] * lin[None, None, :] + torch.sin(angle)[:, None, None] * lin[None, :, None])
        t = (t - t.amin((1, 2), keepdim=True)) / (t.amax((1, 2), keepdim=True) - t.amin((1, 2), keepdim=True) + 1e-6)
        image = bg[:, 0, :, None, None] + (bg[:, 1] - bg[:, 0])[:, :, None, None] * t[:, None]
        image = image * (1 - weights.sum(1, keepdim=True)) + torch.einsum("ndhw,ndc->nchw", weights, ink)
        if self.blur > 0:
            image = _gaussian_blur(image, self.blur)
        if noise is not None:
            image = image + self.noise * noise
        self._images = ((image - 0.5) / 0.5).contiguous()

        self._labels = self._argmax_labels()

    def _argmax_labels(self, chunk: int = 128) -> torch.Tensor:
        """``soft.argmax(1)`` (first maximum wins) as uint8 (N, H, W), computed by chunks."""
        labels = torch.empty(self.num_scenes, self.size, self.size, dtype=torch.uint8)
        buffer = torch.empty(min(chunk, self.num_scenes), self.num_classes, self.size, self.size)
        for lo in range(0, self.num_scenes, chunk):
            soft = self._soft_batch(slice(lo, lo + chunk), out=buffer)
            best, lab = soft[:, 0].clone(), torch.zeros(soft.shape[0], *soft.shape[2:], dtype=torch.uint8)
            for k in range(1, self.num_classes):  # a loop of compares beats argmax over dim 1 on CPU
                better = soft[:, k] > best
                lab.masked_fill_(better, k)
                torch.maximum(best, soft[:, k], out=best)
            labels[lo:lo + chunk] = lab
        return labels

    def _soft_batch(self, idx: slice, out: torch.Tensor | None = None) -> torch.Tensor:
        w = self._weights[idx]
        cls = self.digit_classes[idx]
        if out is None:
            soft = torch.zeros(w.shape[0], self.num_classes, *w.shape[2:])
        else:
            soft = out[: w.shape[0]].zero_()
        soft.scatter_add_(1, cls[:, :, None, None].expand_as(w), w)
        soft[:, 0] = (1 - w.sum(1)).clamp_(min=0)
        return soft

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.num_scenes

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.num_scenes <= index < self.num_scenes:
            raise IndexError(f"index {index} is out of range for {len(self)} scenes")
        index = int(index) % self.num_scenes
        item = {
            "image": self._images[index].clone(),
            "label": self._labels[index].long(),
            "soft": self._soft_batch(slice(index, index + 1))[0],
            "index": index,
        }
        return self.transform(item) if self.transform is not None else item

    def tensors(self) -> dict[str, torch.Tensor]:
        """All scenes stacked, without ``transform``: ``image`` (N, C, H, W), ``label`` (N, H, W)
        int64, ``soft`` (N, 11, H, W), ``index`` (N,). ``soft`` takes ``44·N·H·W`` bytes.

        >>> DigitScenes("test", num_scenes=3, size=32, digit_size=16).tensors()["soft"].shape
        torch.Size([3, 11, 32, 32])
        """
        return {
            "image": self._images.clone(),
            "label": self._labels.long(),
            "soft": self._soft_batch(slice(None)),
            "index": torch.arange(self.num_scenes),
        }

    def __repr__(self) -> str:
        return (f"DigitScenes(split={self.split!r}, num_scenes={self.num_scenes}, size={self.size}, "
                f"digits_per_scene={self.digits_per_scene}, digit_size={self.digit_size}, seed={self.seed}, "
                f"noise={self.noise}, blur={self.blur}, in_channels={self.in_channels}, stroke={self.stroke}, "
                f"placement={self.placement!r})")
