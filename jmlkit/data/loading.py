"""Data set registry and a seeded DataLoader helper."""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset

from jmlkit._checks import check_choice, check_int

__all__ = ["DATASETS", "get_dataset", "check_dataset_options", "make_loader"]

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


def check_dataset_options(name: str, split: str = "train", **kwargs: Any) -> dict[str, Any]:
    """Check the arguments of :func:`get_dataset` without building the data: no scene rendered, no template or
    image read (a folder data set lists its split's files, which is what finds a wrong ``root`` or split).

    Returns:
        ``{"num_classes": K, "in_channels": C}`` of the data set these options make.

    Raises:
        TypeError: an option the data set does not take, or a value of the wrong type.
        ValueError: a value out of range; ``root`` missing for a folder data set.
        FileNotFoundError: the folder or files of a folder data set.

    Example:
        >>> check_dataset_options("digits", "test", size=48, in_channels=1)
        {'num_classes': 11, 'in_channels': 1}
        >>> check_dataset_options("digits", size=3)
        Traceback (most recent call last):
        ...
        ValueError: Expected `size` to be an int >= 8, but got 3.
    """
    name = check_choice("name", name, DATASETS)
    if name in ("digits", "brain"):
        if name == "digits":
            from .digits import DigitScenes as cls
        else:
            from .brain import BrainTissueSlices as cls
        options = cls.check_options(split, **kwargs)
        return {"num_classes": cls.num_classes, "in_channels": options["in_channels"]}
    from .folders import SegmentationFolder

    options = dict(kwargs)
    root = options.pop("root", None)
    if root is None:
        raise ValueError(f"Expected `root` = <the {name} folder> among the options of dataset {name!r}, but got "
                         f"{sorted(kwargs)}.")
    params = inspect.signature(SegmentationFolder).parameters
    known = sorted(k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in ("layout", "split"))
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"Expected options of SegmentationFolder among {['root', *known]}, but got unknown {unknown}.")
    data = SegmentationFolder(root, layout=name, split=split, **options)  # lists the files; reads none
    return {"num_classes": data.num_classes, "in_channels": data.in_channels}


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
