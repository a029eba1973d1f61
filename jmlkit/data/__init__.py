"""Offline data sets, splits and the augmentations.

Every data set returns items ``{"image": float32 (C, H, W), "label": int64 (H, W), "soft":
float32 (K, H, W) (only where the data has real soft labels), "index": int}``; label value
``ignore_index`` (255) marks pixels that carry no target. Attributes: ``num_classes``,
``class_names``, ``in_channels``, ``ignore_index``, ``has_soft``.

- :class:`DigitScenes` — scenes of scikit-learn's handwritten digits, 11 classes, real coverage soft labels.
- :class:`BrainTissueSlices` — axial slices of nilearn's MNI152 template, 4 tissue classes, soft labels.
- :class:`SegmentationFolder` — PASCAL VOC / Cityscapes folders already on disk.
- :mod:`jmlkit.data.transforms` — the augmentations: :func:`~jmlkit.data.transforms.weak_view` and
  :func:`~jmlkit.data.transforms.strong_view` of a batch (what semi-supervised training trains on), and
  :class:`~jmlkit.data.transforms.Resize` of an item.
- :func:`get_dataset`, :func:`make_loader` — registry by name, seeded loader; :func:`check_dataset_options`
  checks a data set's options without building it.
"""
from __future__ import annotations

from . import transforms
from .brain import BrainTissueSlices
from .digits import SPLIT_FRACTIONS, SPLITS, DigitScenes, digit_pool
from .folders import CITYSCAPES_CLASSES, CITYSCAPES_LABEL_TO_TRAIN_ID, VOC_CLASSES, SegmentationFolder
from .loading import DATASETS, check_dataset_options, get_dataset, make_loader

__all__ = [
    "DigitScenes", "digit_pool", "SPLIT_FRACTIONS", "SPLITS",
    "BrainTissueSlices",
    "SegmentationFolder", "VOC_CLASSES", "CITYSCAPES_CLASSES", "CITYSCAPES_LABEL_TO_TRAIN_ID",
    "transforms", "DATASETS", "get_dataset", "check_dataset_options", "make_loader",
]
