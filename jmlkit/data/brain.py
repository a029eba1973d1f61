r"""Brain tissue slices: axial slices of the MNI152 (ICBM 2009a, symmetric) template shipped with nilearn.

nilearn installs the 1 mm T1 template and its grey- and white-matter probability maps
(``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``, 197×233×189
voxels), so nothing is downloaded. The T1 template is skull-stripped; the tissue maps are
population probabilities, i.e. real soft labels of the kind multi-annotator medical sets give.

Classes (``K = 4``) per voxel, with brain mask :math:`m = [\,T1 > 0.02 \text{ or } gm + wm > 0.02\,]`:

.. math::  p = \big(1 - m,\; m\,gm,\; m\,wm,\; m\,(1 - gm - wm)\big)
           \quad\text{(background, grey matter, white matter, other = CSF)},

which sums to 1; slices are cropped to the brain's bounding box, zero-padded to a square and area-averaged to ``size × size``, which keeps the sum. The hard label is ``soft.argmax(0)``.
"""
from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from jmlkit._checks import check_callable, check_choice, check_int, check_real, keyword_options

from .digits import SPLITS, _seed_for

__all__ = ["BrainTissueSlices", "mni152_files"]

#: Blocks of slices go to splits in this repeating order (5 : 1 : 2 : 2).
BLOCK_PATTERN = ("train", "unlabeled", "train", "test", "train", "val", "train", "unlabeled", "train", "test")


def mni152_files() -> dict[str, str]:
    """Paths of the T1, GM and WM templates inside the installed nilearn (no download).

    >>> sorted(mni152_files())
    ['gm', 't1', 'wm']
    """
    import nilearn

    folder = os.path.join(os.path.dirname(nilearn.__file__), "datasets", "data")
    files = {k: os.path.join(folder, f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz") for k in ("t1", "gm", "wm")}
    missing = [p for p in files.values() if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"The MNI152 templates that nilearn ships were not found: {missing}; "
                                "reinstall nilearn (>= 0.10).")
    return files


@functools.lru_cache(maxsize=1)
def _load_volumes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T1, GM, WM as float32 arrays in [0, 1], shape (X, Y, Z) = (197, 233, 189)."""
    import nibabel

    return tuple(np.asarray(nibabel.load(p).dataobj, dtype=np.float32) / 255.0 for p in mni152_files().values())


@functools.lru_cache(maxsize=4)
def _axial_slices(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All axial slices at ``size × size``: T1 (Z, size, size), soft (Z, 4, size, size), brain
    fraction (Z,). Rows run anterior (top) to posterior, columns left to right of the volume."""
    t1, gm, wm = _load_volumes()
    inside = ((t1 > 0.02) | (gm + wm > 0.02)).any(2)  # crop (x, y) to the brain's bounding box + 2 voxels
    xs, ys = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    box = (slice(max(0, xs[0] - 2), xs[-1] + 3), slice(max(0, ys[0] - 2), ys[-1] + 3))
    t1, gm, wm = t1[box], gm[box], wm[box]
    X, Y, Z = t1.shape
    side = max(X, Y)
    images, softs = [], []
    for lo in range(0, Z, 32):
        def axial(v: np.ndarray) -> torch.Tensor:  # (X, Y, z) -> (z, Y reversed, X), padded square
            a = torch.from_numpy(np.ascontiguousarray(v[:, :, lo:lo + 32].transpose(2, 1, 0)[:, ::-1, :]))
            py, px = side - Y, side - X
            return F.pad(a, (px // 2, px - px // 2, py // 2, py - py // 2))

        a_t1, a_gm, a_wm = axial(t1), axial(gm), axial(wm)
        total = a_gm + a_wm
        scale = torch.where(total > 1, 1 / total.clamp(min=1e-6), torch.ones_like(total))
        a_gm, a_wm = a_gm * scale, a_wm * scale
        mask = ((a_t1 > 0.02) | (a_gm + a_wm > 0.02)).float()
        soft = torch.stack([1 - mask, mask * a_gm, mask * a_wm, (mask * (1 - a_gm - a_wm)).clamp(min=0)], 1)
        images.append(F.adaptive_avg_pool2d(a_t1[:, None], size)[:, 0])
        softs.append(F.adaptive_avg_pool2d(soft, size))
    soft = torch.cat(softs)
    return torch.cat(images), soft, 1 - soft[:, 0].mean((1, 2))


class BrainTissueSlices(Dataset):
    r"""Axial MNI152 T1 slices with soft tissue labels: background, grey matter, white matter, other (CSF).

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"unlabeled"``. Slices whose brain covers at
            least ``min_brain_fraction`` of the slice are cut, bottom to top, into blocks of
            ``block_size`` contiguous slices; the blocks go to the splits in the repeating order
            :data:`BLOCK_PATTERN` (train : val : test : unlabeled = 5 : 1 : 2 : 2), so every split
            spans the brain and no slice is shared. The last ``gap`` slices of every block are
            dropped so that slices of different splits are at least ``gap + 1`` mm apart.
            ``"unlabeled"`` items still carry labels, for evaluating pseudo-labels only.
        size: side of the (square) slices in pixels.
        block_size, gap, min_brain_fraction: see ``split``.
        noise: standard deviation of Gaussian noise added to the image (deterministic given ``seed``).
        seed: seed of that noise.
        in_channels: 1, or 3 (the grey image repeated, for RGB encoders).
        transform: optional callable ``item -> item`` (see :mod:`jmlkit.data.transforms`).

    Items: ``{"image": float32 (C, size, size), "label": int64 (size, size), "soft": float32
    (4, size, size), "index": int}``; the image is ``(t1 - 0.5) / 0.5`` (+ noise) with ``t1`` in [0, 1].
    ``slice_ids`` holds the axial (z) voxel index of each item.

    Example:
        >>> ds = BrainTissueSlices("val", size=32)
        >>> item = ds[0]
        >>> item["image"].shape, item["soft"].shape, ds.num_classes
        (torch.Size([1, 32, 32]), torch.Size([4, 32, 32]), 4)
        >>> bool(torch.allclose(item["soft"].sum(0), torch.ones(32, 32), atol=1e-5))
        True
    """

    num_classes: int = 4
    class_names: tuple[str, ...] = ("background", "grey matter", "white matter", "other (CSF)")
    ignore_index: int = 255
    has_soft: bool = True

    def __init__(
        self,
        split: str = "train",
        *,
        size: int = 64,
        block_size: int = 8,
        gap: int = 1,
        min_brain_fraction: float = 0.05,
        noise: float = 0.0,
        seed: int = 0,
        in_channels: int = 1,
        transform=None,
    ) -> None:
        options = self.check_options(split, size=size, block_size=block_size, gap=gap,
                                     min_brain_fraction=min_brain_fraction, noise=noise, seed=seed,
                                     in_channels=in_channels, transform=transform)
        for key, value in options.items():
            setattr(self, key, value)

        t1, soft, fraction = _axial_slices(self.size)
        self.slice_ids = self.split_slices(split, size=self.size, block_size=self.block_size, gap=self.gap,
                                           min_brain_fraction=self.min_brain_fraction)
        if len(self.slice_ids) == 0:
            raise ValueError(f"No slices left for split {split!r}: lower `min_brain_fraction` "
                             f"({min_brain_fraction}) or `block_size` ({block_size}).")
        image = t1[self.slice_ids]
        if self.noise > 0:
            g = torch.Generator().manual_seed(_seed_for(self.seed, self.split))
            image = image + self.noise * torch.randn(image.shape, generator=g)
        self._images = ((image - 0.5) / 0.5)[:, None].contiguous()
        self._soft = soft[self.slice_ids].contiguous()
        self._labels = self._soft.argmax(1)

    @classmethod
    def check_options(cls, split: str = "train", **options: Any) -> dict[str, Any]:
        """The constructor's arguments checked as it checks them and cleaned, without reading the template.

        Preflight checks (:func:`jmlkit.engine.preflight`) call this to find a bad option before any work. Not
        checked here: whether any slice is left for the split (that needs the template).

        Returns:
            ``{"split", "size", "block_size", ...}``: every argument of the constructor, defaults filled in.

        Raises:
            TypeError: an option the constructor does not take, or a value of the wrong type.
            ValueError: a value out of range.

        Example:
            >>> BrainTissueSlices.check_options(size=32)["in_channels"]
            1
            >>> BrainTissueSlices.check_options(size=4)
            Traceback (most recent call last):
            ...
            ValueError: Expected `size` to be an int in [8, 512], but got 4.
        """
        given = keyword_options(cls.__name__, cls.__init__, options)
        out: dict[str, Any] = {"split": check_choice("split", split, SPLITS)}
        out["size"] = check_int("size", given["size"], low=8, high=512)
        out["block_size"] = check_int("block_size", given["block_size"], low=1)
        out["gap"] = check_int("gap", given["gap"], low=0, high=out["block_size"] - 1)
        out["min_brain_fraction"] = check_real("min_brain_fraction", given["min_brain_fraction"], low=0.0, high=1.0)
        out["noise"] = check_real("noise", given["noise"], low=0.0)
        out["seed"] = check_int("seed", given["seed"], low=0)
        out["in_channels"] = check_choice("in_channels", given["in_channels"], (1, 3))
        out["transform"] = check_callable("transform", given["transform"], optional=True)
        return out

    @staticmethod
    def split_slices(split: str, *, size: int = 64, block_size: int = 8, gap: int = 1,
                     min_brain_fraction: float = 0.05) -> torch.Tensor:
        """Axial indices (z) of the slices of ``split`` (see the class docstring).

        >>> ids = {s: set(BrainTissueSlices.split_slices(s, size=32).tolist()) for s in ("train", "val", "test")}
        >>> ids["train"].isdisjoint(ids["val"]) and ids["train"].isdisjoint(ids["test"])
        True
        """
        check_choice("split", split, SPLITS)
        _, _, fraction = _axial_slices(size)
        z = torch.nonzero(fraction >= min_brain_fraction).flatten()
        position = torch.arange(len(z))
        block = position // block_size
        keep = position % block_size < block_size - gap
        in_split = torch.tensor([BLOCK_PATTERN[int(b) % len(BLOCK_PATTERN)] == split for b in block], dtype=torch.bool)
        return z[keep & in_split] if len(z) else z

    def __len__(self) -> int:
        return len(self.slice_ids)

    def __getitem__(self, index: int) -> dict:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for {n} slices")
        index = int(index) % n
        image = self._images[index]
        if self.in_channels == 3:
            image = image.expand(3, -1, -1)
        item = {"image": image.clone(), "label": self._labels[index].clone(), "soft": self._soft[index].clone(),
                "index": index}
        return self.transform(item) if self.transform is not None else item

    def tensors(self) -> dict[str, torch.Tensor]:
        """All slices stacked (no transform): ``image`` (N, C, H, W), ``label``, ``soft``, ``index``."""
        image = self._images.expand(-1, self.in_channels, -1, -1).clone()
        return {"image": image, "label": self._labels.clone(), "soft": self._soft.clone(),
                "index": torch.arange(len(self))}

    def __repr__(self) -> str:
        return (f"BrainTissueSlices(split={self.split!r}, size={self.size}, n={len(self)}, "
                f"block_size={self.block_size}, gap={self.gap}, noise={self.noise}, in_channels={self.in_channels})")
