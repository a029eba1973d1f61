"""Data set registry and a seeded DataLoader helper."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset

from jmlkit._checks import check_choice, check_int

__all__ = ["DATASETS", "get_dataset", "make_loader"]

#: Names accepted by :func:`get_dataset`.
DATASETS = ("digits", "brain", "voc", "cityscapes")


def get_dataset(name: str, split: str = "train", **kwargs: Any) -> Dataset:
    """Build a data set by name: ``"digits"`` (:class:`DigitScenes`), ``"brain"``
    (:class:`BrainTissueSlices`), ``"voc"`` / ``"cityscapes"`` (:class:`SegmentationFolder`, which
    needs ``root=...``). ``kwargs`` go to the constructor.

    >>> ds = get_dataset("digits", "val", num_scenes=2, size=32, digit_size=16)
    >>> type(ds).__name__, len(ds), ds.num_classes
    ('DigitScenes', 2, 11)
    """
    name = check_choice("name", name, DATASETS)
    if name == "digits":
        from .digits import DigitScenes

        return DigitScenes(split, **kwargs)
    if name == "brain":
        from .brain import BrainTissueSlices

        return BrainTissueSlices(split, **kwargs)
    from .folders import SegmentationFolder  # "voc" or "cityscapes"

    if "root" not in kwargs:
        raise TypeError(f"get_dataset({name!r}, ...) needs `root=`, the folder that holds the data set.")
    return SegmentationFolder(kwargs.pop("root"), layout=name, split=split, **kwargs)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    collate_fn: Callable | None = None,
    **kwargs: Any,
) -> DataLoader:
    """A :class:`~torch.utils.data.DataLoader` whose order and random augmentations are a
    function of ``seed``: the loader owns a seeded ``torch.Generator`` (shuffling, and the
    per-worker seeds from which random transforms draw with ``num_workers > 0``). With
    ``num_workers == 0`` transforms draw from the global torch RNG, so seed it too
    (``torch.manual_seed``) for bit-exact augmentation streams.

    Batches are dicts: ``image`` (B, C, H, W), ``label`` (B, H, W), ``soft`` (B, K, H, W) where the
    data set has it, ``index`` (B,).

    >>> from jmlkit.data import DigitScenes
    >>> batch = next(iter(make_loader(DigitScenes("val", num_scenes=4, size=32, digit_size=16), 2)))
    >>> batch["image"].shape, batch["label"].dtype, batch["index"].tolist()
    (torch.Size([2, 3, 32, 32]), torch.int64, [0, 1])
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    num_workers = check_int("num_workers", num_workers, low=0)
    generator = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        collate_fn=collate_fn,
        persistent_workers=num_workers > 0,
        **kwargs,
    )
