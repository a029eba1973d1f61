"""Modes of the region losses, as named constants with their tensor shapes.

================  ====================================  =======================================================
mode              logits                                target
================  ====================================  =======================================================
``multiclass``    ``(B, C, *spatial)``, softmax over C  class indices ``(B, *spatial)`` (int) or probabilities
                                                        ``(B, C, *spatial)`` (float, summing to 1 over C)
``binary``        ``(B, 1, *spatial)``, sigmoid         ``(B, *spatial)`` or ``(B, 1, *spatial)``, 0/1 or in [0, 1]
``multilabel``    ``(B, C, *spatial)``, sigmoid per C   ``(B, C, *spatial)``, 0/1 or in [0, 1]
================  ====================================  =======================================================
"""
from __future__ import annotations

BINARY_MODE = "binary"
MULTICLASS_MODE = "multiclass"
MULTILABEL_MODE = "multilabel"
MODES = (BINARY_MODE, MULTICLASS_MODE, MULTILABEL_MODE)

#: How per-class scores are pooled. ``batch``: statistics summed over the whole batch, then one score per class
#: (matches the dataset-level mIoU^D). ``image``: a score per image over the classes present in it, averaged over
#: images (mIoU^I). ``class``: a score per (image, class), averaged per class over the images that hold the class,
#: then over classes (mIoU^C).
AGGREGATIONS = ("batch", "image", "class")
