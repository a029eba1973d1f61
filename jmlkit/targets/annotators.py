"""Soft targets from several annotators."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jmlkit._checks import check_ignore_index
from jmlkit.targets._common import SoftTarget, _check_float_dtype, _check_label_range, _check_labels, _num_classes

@torch.no_grad()
def average_annotators(
    masks: Tensor | Sequence[Tensor],
    num_classes: int,
    *,
    ignore_index: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> SoftTarget:
    r"""Soft label from several annotators: the mean of their one-hot masks.

    .. math::

        A_i = \{a : y^{(a)}_i \ne \text{ignore\_index}\}, \qquad
        \text{soft}_{:,i} = \frac{1}{|A_i|} \sum_{a \in A_i} e_{y^{(a)}_i}, \qquad
        \text{mask}_i = [\,|A_i| > 0\,]

    A pixel one annotator left out (``ignore_index``) is averaged over the others; a pixel nobody
    labelled gets ``mask=False`` and a zero vector. Each entry is a multiple of :math:`1/|A_i|`.

    Ignored pixels must be **masked** for the Jaccard metric loss: pass ``mask`` on to the loss
    (``loss(logits, soft, mask)``); a zero target vector is not the same as ignoring the pixel
    (see :mod:`jmlkit.targets`).

    Args:
        masks: int ``(A, B, *spatial)`` or a sequence of ``A`` int ``(B, *spatial)`` tensors, one per annotator.
        num_classes: ``C``, a positive int.
        ignore_index: label value of pixels an annotator did not label.
        dtype: floating dtype of ``soft``.

    Returns:
        :class:`SoftTarget` with ``soft`` ``(B, C, *spatial)`` and ``mask`` ``(B, *spatial)``.

    Example:
        >>> import torch
        >>> a1 = torch.tensor([[0, 1, 255]])
        >>> a2 = torch.tensor([[1, 1, 255]])
        >>> a3 = torch.tensor([[1, 255, 255]])
        >>> soft, mask = average_annotators([a1, a2, a3], 2, ignore_index=255)
        >>> soft
        tensor([[[0.3333, 0.0000, 0.0000],
                 [0.6667, 1.0000, 0.0000]]])
        >>> mask
        tensor([[ True,  True, False]])
    """
    if isinstance(masks, Tensor):
        _check_labels(masks, "masks", min_spatial=0)  # dtype only
        if masks.ndim < 3:
            raise ValueError(
                f"Expected `masks` of shape (A, B, *spatial) with at least 1 spatial dim, "
                f"but got shape {tuple(masks.shape)}."
            )
        annotators = list(masks.unbind(0))
    elif isinstance(masks, Sequence) and not isinstance(masks, str):
        annotators = list(masks)
        if not annotators:
            raise ValueError("Expected `masks` to hold at least one annotator, but got an empty sequence.")
        for a, m in enumerate(annotators):
            _check_labels(m, f"masks[{a}]")
        shapes = {tuple(m.shape) for m in annotators}
        if len(shapes) > 1:
            raise ValueError(
                f"Expected every annotator in `masks` to have the same (B, *spatial) shape, but got {sorted(shapes)}."
            )
        devices = {m.device for m in annotators}
        if len(devices) > 1:
            raise ValueError(f"Expected every annotator in `masks` on one device, but got {sorted(map(str, devices))}.")
    else:
        raise TypeError(
            f"Expected `masks` to be an int tensor (A, B, *spatial) or a sequence of int tensors (B, *spatial), "
            f"but got {type(masks).__name__}."
        )
    if not annotators:
        raise ValueError(f"Expected `masks` to hold at least one annotator, but got shape {tuple(masks.shape)}.")
    num_classes = _num_classes(num_classes)
    ignore_index = check_ignore_index(ignore_index)
    dtype = _check_float_dtype(dtype)

    ref = annotators[0]
    acc = torch.zeros((ref.shape[0], num_classes, *ref.shape[1:]), dtype=torch.float32, device=ref.device)
    count = torch.zeros(ref.shape, dtype=torch.float32, device=ref.device)
    for a, m in enumerate(annotators):
        name = "masks" if isinstance(masks, Tensor) else f"masks[{a}]"
        valid = _check_label_range(m, num_classes, ignore_index, name)
        index = torch.where(valid, m, torch.zeros_like(m)).long().unsqueeze(1)
        acc.scatter_add_(1, index, valid.unsqueeze(1).to(acc.dtype))
        count += valid
    keep = count > 0
    soft = acc / count.clamp_min(1).unsqueeze(1)
    return SoftTarget(soft.to(dtype), keep)
