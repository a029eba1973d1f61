"""Soft targets from a network's logits: distillation targets, pseudo-labels."""
from __future__ import annotations


import torch
from torch import Tensor

from jmlkit._checks import check_bool, check_ignore_index
from jmlkit.targets._common import (
    SoftTarget, _check_label_range, _check_logits, _check_paired_labels, _compute_dtype, _scatter_one_hot,
    _temperature, _unit,
)

@torch.no_grad()
def distillation_targets(
    teacher_logits: Tensor,
    *,
    temperature: float = 1.0,
    target: Tensor | None = None,
    label_weight: float = 0.0,
    ignore_index: int | None = None,
) -> SoftTarget:
    r"""Knowledge-distillation targets: the teacher's tempered probabilities, optionally mixed with the label.

    .. math::

        p = \mathrm{softmax}(z / T), \qquad
        \text{soft} = (1 - w)\, p + w\, e_{y}

    with :math:`z` the teacher logits, :math:`T` the ``temperature`` (``T > 1`` softens, ``T -> inf``
    tends to uniform, ``T -> 0`` to the arg-max one-hot) and :math:`w` the ``label_weight``
    (``w=1`` gives :func:`one_hot` of ``target``). Without ``target`` every pixel is valid.
    With ``target``, pixels where it equals ``ignore_index`` get ``mask=False`` and a zero vector
    (pass ``target=None`` to distil on them too).

    Ignored pixels must be **masked** for the Jaccard metric loss: pass ``mask`` on to the loss
    (``loss(logits, soft, mask)``); a zero target vector is not the same as ignoring the pixel
    (see :mod:`jmlkit.targets`).

    Args:
        teacher_logits: float ``(B, C, *spatial)``; ``soft`` keeps this dtype and device
            (the softmax itself runs in at least float32).
        temperature: :math:`T > 0`.
        target: optional int ``(B, *spatial)`` hard labels, class indices or ``ignore_index``.
        label_weight: :math:`w \in [0, 1]`; ``w > 0`` needs ``target``.
        ignore_index: label value in ``target`` of pixels that do not count.

    Returns:
        :class:`SoftTarget` with ``soft`` ``(B, C, *spatial)`` and ``mask`` ``(B, *spatial)``.

    Example:
        >>> import torch
        >>> z = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])  # (B=1, C=2, W=2)
        >>> distillation_targets(z, temperature=2.0).soft
        tensor([[[0.7311, 0.5000],
                 [0.2689, 0.5000]]])
        >>> soft, mask = distillation_targets(z, target=torch.tensor([[1, 255]]), label_weight=0.5, ignore_index=255)
        >>> soft
        tensor([[[0.4404, 0.0000],
                 [0.5596, 0.0000]]])
        >>> mask
        tensor([[ True, False]])
    """
    teacher_logits = _check_logits(teacher_logits)
    temperature = _temperature(temperature)
    label_weight = _unit("label_weight", label_weight)
    ignore_index = check_ignore_index(ignore_index)
    num_classes = teacher_logits.shape[1]
    out_dtype = teacher_logits.dtype

    probs = torch.softmax(teacher_logits.to(_compute_dtype(out_dtype)) / temperature, dim=1)
    if target is None:
        if label_weight > 0:
            raise ValueError(
                f"Expected `target` (hard labels) when `label_weight` > 0, but got None (label_weight={label_weight})."
            )
        spatial_shape = (teacher_logits.shape[0], *teacher_logits.shape[2:])
        mask = torch.ones(spatial_shape, dtype=torch.bool, device=teacher_logits.device)
        return SoftTarget(probs.to(out_dtype), mask)

    target = _check_paired_labels(target, teacher_logits)
    valid = _check_label_range(target, num_classes, ignore_index, "target")
    if label_weight > 0:
        labels = _scatter_one_hot(target, valid, num_classes, probs.dtype)
        probs.mul_(1.0 - label_weight).add_(labels, alpha=label_weight)
    probs.mul_(valid.unsqueeze(1))
    return SoftTarget(probs.to(out_dtype), valid)


@torch.no_grad()
def pseudo_labels(
    teacher_logits: Tensor,
    *,
    threshold: float = 0.0,
    soft: bool = True,
    temperature: float = 1.0,
    mask: Tensor | None = None,
) -> SoftTarget:
    r"""Pseudo-labels for semi-supervised learning, with a confidence mask.

    .. math::

        p = \mathrm{softmax}(z / T), \qquad
        \text{mask}_i = \big[\max_c p_{c,i} \ge \tau\big], \qquad
        \text{soft}_{:,i} = \begin{cases}
            p_{:,i} & \texttt{soft=True} \\
            e_{\arg\max_c p_{c,i}} & \texttt{soft=False}
        \end{cases}

    with :math:`\tau` the ``threshold`` (``0`` keeps every pixel; FixMatch-style training uses about
    ``0.95``). Pixels below the threshold keep their ``soft`` vector (handy to inspect) but get
    ``mask=False``. There are no hard labels here, hence no ``ignore_index``: pixels that must stay
    out regardless of confidence (e.g. the padding of an augmented crop, or ``target != ignore_index``
    of partially labelled images) are passed as ``mask`` and get a zero vector.

    Pixels with ``mask=False`` (left out or below the threshold) must be **masked** for the Jaccard metric
    loss: pass ``mask`` on to the loss (``loss(logits, soft, mask)``); neither a zero vector nor the kept
    probabilities are the same as ignoring the pixel (see :mod:`jmlkit.targets`).

    Args:
        teacher_logits: float ``(B, C, *spatial)``; ``soft`` keeps this dtype and device.
        threshold: confidence threshold :math:`\tau \in [0, 1]` on the (tempered) max probability.
        soft: keep the probabilities (True) or their arg-max one-hot (False).
        temperature: :math:`T > 0` applied before the softmax (and before thresholding).
        mask: optional bool ``(B, *spatial)``, False where the pixel must stay ignored.

    Returns:
        :class:`SoftTarget` with ``soft`` ``(B, C, *spatial)`` and ``mask`` ``(B, *spatial)``.

    Example:
        >>> import torch
        >>> z = torch.tensor([[[3.0, 0.2], [0.0, 0.0]]])  # (B=1, C=2, W=2)
        >>> soft, mask = pseudo_labels(z, threshold=0.9, soft=False)
        >>> soft
        tensor([[[1., 1.],
                 [0., 0.]]])
        >>> mask  # max probabilities 0.95 and 0.55
        tensor([[ True, False]])
    """
    teacher_logits = _check_logits(teacher_logits)
    threshold = _unit("threshold", threshold)
    soft = check_bool("soft", soft)
    temperature = _temperature(temperature)
    spatial_shape = (teacher_logits.shape[0], *teacher_logits.shape[2:])
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = f"dtype {mask.dtype}" if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"Expected `mask` to be None or a bool tensor, but got {got}.")
        if tuple(mask.shape) != spatial_shape:
            raise ValueError(
                f"Expected `mask` of shape {spatial_shape} (B, *spatial of `teacher_logits`), "
                f"but got shape {tuple(mask.shape)}."
            )
    out_dtype = teacher_logits.dtype

    probs = torch.softmax(teacher_logits.to(_compute_dtype(out_dtype)) / temperature, dim=1)
    confidence, label = probs.max(dim=1)
    keep = confidence >= threshold
    out = probs if soft else torch.zeros_like(probs).scatter_(1, label.unsqueeze(1), 1.0)
    if mask is not None:
        mask = mask.to(keep.device)
        keep &= mask
        out.mul_(mask.unsqueeze(1))
    return SoftTarget(out.to(out_dtype), keep)
