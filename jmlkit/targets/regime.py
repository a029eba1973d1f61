r"""How much label smoothing a batch of hard labels gets: :func:`smoothing_shares`.

Boundary label smoothing means one thing on the authors' scenes and another on small synthetic ones. On
512-1024-px Cityscapes/VOC/ADE20K crops a :math:`3 \times 3` band is a thin rim of each object; on
32x32 scenes with 16-px digits it covers most of the object, and boundary smoothing is then close to
uniform label smoothing. The report below puts numbers on that for any batch, in one call.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_ignore_index, check_int
from jmlkit.targets._common import (
    NEAR_IGNORE_KEEP, _NEAR_IGNORES, _boundary_mask, _check_kernel_size, _check_label_range, _check_labels,
    _num_classes, _unit,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SmoothingShares", "smoothing_shares"]

_SMOOTHINGS = ("boundary", "uniform")


@dataclass(frozen=True, eq=False)
class SmoothingShares:
    """What :func:`smoothing_shares` found; ``per_class`` holds the per-class table.

    Attributes:
        smoothing: ``"boundary"`` or ``"uniform"``.
        epsilon: :math:`\\varepsilon`.
        kernel_size: the window, one side per spatial dim (``None`` for uniform smoothing).
        num_classes: ``C``.
        background: the class that is not an object (``None``: every class is an object class).
        pixels: valid (not ignored) pixels in the batch.
        object_pixels: valid pixels whose class is not ``background``.
        smoothed_pixels: valid pixels that are smoothed (any class).
        smoothed_object_pixels: object pixels that are smoothed.
        object_share_smoothed: ``smoothed_object_pixels / object_pixels`` (``nan`` without object pixels).
        floor_share: share of the whole target mass (one per valid pixel) that is the
            :math:`\\varepsilon / C` floor smoothed pixels give to classes other than their own.
        per_class: :class:`pandas.DataFrame`, one row per class (see :func:`smoothing_shares`).
    """

    smoothing: str
    epsilon: float
    kernel_size: tuple[int, ...] | None
    num_classes: int
    background: int | None
    pixels: int
    object_pixels: int
    smoothed_pixels: int
    smoothed_object_pixels: int
    object_share_smoothed: float
    floor_share: float
    per_class: pd.DataFrame = field(repr=False)

    def summary(self) -> str:
        """One sentence with the headline numbers."""
        if self.smoothing == "boundary":
            how = f"boundary smoothing (eps={self.epsilon:g}, k={'x'.join(map(str, self.kernel_size))})"
        else:
            how = f"uniform smoothing (eps={self.epsilon:g})"
        objects = self.per_class[self.per_class["object"] & (self.per_class["pixels"] > 0)]
        lo, hi = objects["floor_share"].min(), objects["floor_share"].max()
        if not len(objects):
            floor = ""
        elif f"{lo:.1%}" == f"{hi:.1%}":
            floor = f"; the floor from other classes is {lo:.1%} of the target mass of each present object class"
        else:
            floor = (f"; the floor from other classes is {lo:.1%} to {hi:.1%} of the target mass of a present "
                     "object class")
        return (f"{how} smooths {self.object_share_smoothed:.1%} of the {self.object_pixels} object pixels "
                f"({self.smoothed_pixels} of {self.pixels} valid pixels){floor}.")


@torch.no_grad()
def smoothing_shares(
    labels: Tensor | np.ndarray,
    num_classes: int,
    *,
    epsilon: float = 0.5,
    kernel_size: int | Sequence[int] = 3,
    ignore_index: int | None = None,
    background: int | None = 0,
    smoothing: str = "boundary",
    near_ignore: str = NEAR_IGNORE_KEEP,
) -> SmoothingShares:
    r"""The regime of label smoothing on a batch of hard labels: how much of each object is smoothed, and
    how much of each class's target is the floor that other classes give it.

    Two numbers decide what (boundary) label smoothing does to a Jaccard metric loss:

    (a) **the share of object pixels that are smoothed**. Object pixels are the valid pixels whose class is
        not ``background`` (``background=None``: every class is an object class). With
        :func:`~jmlkit.targets.boundary_label_smoothing` at the paper's :math:`k = 3` this is a thin rim
        on the authors' 512-1024-px scenes, so the bulk of every object keeps a one-hot target; on 32x32
        scenes with 16-px digits it is most of the object (76 % measured in this project), and boundary
        smoothing is then hardly different from uniform smoothing. With ``smoothing="uniform"``
        (:func:`~jmlkit.targets.label_smoothing`) every valid pixel is smoothed: the share is 1.
    (b) **the floor share of each class** :math:`c`: of its L1 target mass
        :math:`\sum_i \text{soft}_{c,i}` (over valid pixels), the part that comes from the
        :math:`\varepsilon / C` floor which smoothed pixels of *other* classes give to :math:`c`. That mass
        sits where :math:`c` is not; a Jaccard loss over all classes counts it in :math:`c`'s target. A
        class absent from the batch has a floor share of 1 as soon as anything is smoothed.

    With :math:`n_c` the valid pixels of class :math:`c`, :math:`s_c` those of them that are smoothed and
    :math:`S = \sum_c s_c`:

    .. math::

        \text{target\_mass}_c = n_c - \varepsilon s_c + \frac{\varepsilon}{C} S, \qquad
        \text{floor\_mass}_c = \frac{\varepsilon}{C} (S - s_c), \qquad
        \text{floor\_share}_c = \frac{\text{floor\_mass}_c}{\text{target\_mass}_c}.

    The smoothed pixels are exactly those :func:`~jmlkit.targets.boundary_label_smoothing` smooths with the
    same ``kernel_size``, ``ignore_index`` and ``near_ignore`` (its ``spread="uniform"``); the band does
    not depend on :math:`\varepsilon` (with ``epsilon=0`` it is reported, but its floor is 0).

    Args:
        labels: int ``(B, *spatial)`` hard labels (a tensor or a numpy array), class indices or
            ``ignore_index``; 1 to 3 spatial dims for boundary smoothing.
        num_classes: ``C``, a positive int.
        epsilon: smoothing :math:`\varepsilon \in [0, 1]` (the paper: 0.5).
        kernel_size: window side of boundary smoothing, an odd int ``>= 3`` or one per spatial dim (the
            paper: 3); not used by uniform smoothing.
        ignore_index: label value of pixels that do not count.
        background: the class that is not an object, in ``[0, C - 1]``, or ``None``.
        smoothing: ``"boundary"`` or ``"uniform"``.
        near_ignore: as in :func:`~jmlkit.targets.boundary_label_smoothing` (``"keep"``: the paper).

    Returns:
        :class:`SmoothingShares`: the overall numbers as attributes, ``summary()`` as a sentence, and
        ``per_class``, a :class:`pandas.DataFrame` with one row per class and the columns ``class``,
        ``object`` (not the background), ``pixels`` (:math:`n_c`), ``smoothed`` (:math:`s_c`),
        ``share_smoothed`` (:math:`s_c / n_c`, for an object class its share of object pixels smoothed),
        ``target_mass``, ``floor_mass`` and ``floor_share`` (``nan`` where the denominator is 0).

    Example:
        A 7x7 scene, background 0 around a 3x3 object of class 1, :math:`C = 2`, the paper's
        :math:`\varepsilon = 0.5` and :math:`k = 3`. The object's 8 rim pixels touch the background and
        are smoothed, its centre is not: 8/9 = 0.889. On the background side the 16 pixels of the ring
        around the object are smoothed, the other 24 are not. Each smoothed pixel gives
        :math:`\varepsilon / C = 0.25` to the other class, so class 1 gets a floor of
        :math:`16 \cdot 0.25 = 4` on top of its own :math:`1 + 8 \cdot 0.75 = 7`: 4/11 = 0.364 of its
        target mass; class 0 gets :math:`8 \cdot 0.25 = 2` on top of :math:`24 + 16 \cdot 0.75 = 36`.

        >>> import torch
        >>> y = torch.zeros(1, 7, 7, dtype=torch.long)
        >>> y[0, 2:5, 2:5] = 1
        >>> shares = smoothing_shares(y, 2)
        >>> shares.object_pixels, shares.smoothed_object_pixels, round(shares.object_share_smoothed, 3)
        (9, 8, 0.889)
        >>> print(shares.per_class.round(3).to_string(index=False))
         class  object  pixels  smoothed  share_smoothed  target_mass  floor_mass  floor_share
             0   False      40        16           0.400         38.0         2.0        0.053
             1    True       9         8           0.889         11.0         4.0        0.364
        >>> print(shares.summary())
        boundary smoothing (eps=0.5, k=3x3) smooths 88.9% of the 9 object pixels (24 of 49 valid pixels); the
        floor from other classes is 36.4% of the target mass of each present object class.

        Uniform smoothing smooths everything: class 1 then holds :math:`9 \cdot 0.75 = 6.75` of its own
        and :math:`40 \cdot 0.25 = 10` of floor.

        >>> uni = smoothing_shares(y, 2, smoothing="uniform")
        >>> uni.object_share_smoothed, round(float(uni.per_class.loc[1, "floor_share"]), 3)
        (1.0, 0.597)
    """
    import pandas as pd

    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    smoothing = check_choice("smoothing", smoothing, _SMOOTHINGS)
    max_spatial = 3 if smoothing == "boundary" else None
    labels = _check_labels(labels, "labels", min_spatial=1, max_spatial=max_spatial)
    num_classes = _num_classes(num_classes)
    epsilon = _unit("epsilon", epsilon)
    kernel = _check_kernel_size(kernel_size, labels.ndim - 1) if smoothing == "boundary" else None
    ignore_index = check_ignore_index(ignore_index)
    background = check_int("background", background, low=0, high=num_classes - 1, optional=True)
    near_ignore = check_choice("near_ignore", near_ignore, _NEAR_IGNORES)
    valid = _check_label_range(labels, num_classes, ignore_index, "labels")

    if smoothing == "uniform" or labels.numel() == 0:
        smoothed = valid
    else:
        smoothed = _boundary_mask(labels, valid, num_classes, kernel, near_ignore)

    def count(where: Tensor) -> np.ndarray:
        return torch.bincount(labels[where].long().flatten(), minlength=num_classes).cpu().numpy().astype(np.int64)

    n = count(valid)
    s = count(smoothed)
    total_smoothed = int(s.sum())
    unit = epsilon / num_classes
    target_mass = n - epsilon * s + unit * total_smoothed
    floor_mass = unit * (total_smoothed - s)
    is_object = np.ones(num_classes, dtype=bool)
    if background is not None:
        is_object[background] = False

    def ratio(a, b):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)

    per_class = pd.DataFrame({
        "class": np.arange(num_classes),
        "object": is_object,
        "pixels": n,
        "smoothed": s,
        "share_smoothed": ratio(s, n),
        "target_mass": target_mass.astype(np.float64),
        "floor_mass": floor_mass.astype(np.float64),
        "floor_share": ratio(floor_mass, target_mass),
    })
    object_pixels = int(n[is_object].sum())
    smoothed_object = int(s[is_object].sum())
    pixels = int(n.sum())
    return SmoothingShares(
        smoothing=smoothing,
        epsilon=epsilon,
        kernel_size=kernel,
        num_classes=num_classes,
        background=background,
        pixels=pixels,
        object_pixels=object_pixels,
        smoothed_pixels=total_smoothed,
        smoothed_object_pixels=smoothed_object,
        object_share_smoothed=smoothed_object / object_pixels if object_pixels else math.nan,
        floor_share=float(floor_mass.sum()) / pixels if pixels else math.nan,
        per_class=per_class,
    )
