"""Soft targets from hard labels: one-hot, label smoothing, boundary label smoothing."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_ignore_index
from jmlkit.targets._common import (
    NEAR_IGNORE_KEEP, SPREAD_UNIFORM, SoftTarget, _NEAR_IGNORES, _SPREADS, _boundary_mask, _check_float_dtype,
    _check_kernel_size, _check_label_range, _check_labels, _num_classes, _scatter_one_hot, _unit, _window_max,
)

# --------------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def one_hot(
    target: Tensor,
    num_classes: int,
    *,
    ignore_index: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> SoftTarget:
    r"""One-hot encode hard labels, ignore-safe.

    .. math:: \text{soft}_{b,c,i} = [\,y_{b,i} = c\,], \qquad \text{mask}_{b,i} = [\,y_{b,i} \ne \text{ignore\_index}\,]

    Built with a single ``scatter_``; ``ignore_index`` may lie outside ``[0, C-1]`` (``255``, ``-100``).

    Ignored pixels must be **masked** for the Jaccard metric loss: pass ``mask`` on to the loss
    (``loss(logits, soft, mask)``); a zero target vector is not the same as ignoring the pixel
    (see :mod:`jmlkit.targets`).

    Args:
        target: int ``(B, *spatial)`` class indices in ``[0, num_classes - 1]`` or ``ignore_index``.
        num_classes: ``C``, a positive int.
        ignore_index: label value of pixels that do not count; they get ``mask=False`` and a zero vector.
        dtype: floating dtype of ``soft``.

    Returns:
        :class:`SoftTarget` with ``soft`` ``(B, C, *spatial)`` and ``mask`` ``(B, *spatial)``.

    Raises:
        TypeError: ``target`` is not an integer tensor, or an option has the wrong type.
        ValueError: ``target`` has no spatial dim, or holds a value that is neither a class nor ``ignore_index``,
            or an option has a wrong value (``num_classes < 1``, an integer ``dtype``).

    Example:
        >>> import torch
        >>> soft, mask = one_hot(torch.tensor([[0, 2, 255]]), 3, ignore_index=255)
        >>> soft
        tensor([[[1., 0., 0.],
                 [0., 0., 0.],
                 [0., 1., 0.]]])
        >>> mask
        tensor([[ True,  True, False]])
    """
    target = _check_labels(target, "target")
    num_classes = _num_classes(num_classes)
    ignore_index = check_ignore_index(ignore_index)
    dtype = _check_float_dtype(dtype)
    valid = _check_label_range(target, num_classes, ignore_index, "target")
    return SoftTarget(_scatter_one_hot(target, valid, num_classes, dtype), valid)


@torch.no_grad()
def label_smoothing(
    target: Tensor,
    num_classes: int,
    epsilon: float,
    *,
    ignore_index: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> SoftTarget:
    r"""Uniform label smoothing (Szegedy et al., 2016).

    .. math:: \text{soft}_{b,:,i} = (1 - \varepsilon)\, e_{y_{b,i}} + \frac{\varepsilon}{C}\,\mathbf{1}

    so the labelled class gets :math:`1 - \varepsilon + \varepsilon/C` and every other class
    :math:`\varepsilon / C`. ``epsilon=0`` gives :func:`one_hot`, ``epsilon=1`` the uniform distribution.

    Ignored pixels must be **masked** for the Jaccard metric loss: pass ``mask`` on to the loss
    (``loss(logits, soft, mask)``); a zero target vector is not the same as ignoring the pixel
    (see :mod:`jmlkit.targets`).

    Args:
        target: int ``(B, *spatial)`` class indices in ``[0, num_classes - 1]`` or ``ignore_index``.
        num_classes: ``C``, a positive int.
        epsilon: smoothing :math:`\varepsilon \in [0, 1]`.
        ignore_index: label value of pixels that do not count; they get ``mask=False`` and a zero vector.
        dtype: floating dtype of ``soft``.

    Returns:
        :class:`SoftTarget` with ``soft`` ``(B, C, *spatial)`` and ``mask`` ``(B, *spatial)``.

    Example:
        >>> import torch
        >>> soft, mask = label_smoothing(torch.tensor([[0, 1, -100]]), 4, 0.2, ignore_index=-100)
        >>> soft[0].T  # one row per pixel
        tensor([[0.8500, 0.0500, 0.0500, 0.0500],
                [0.0500, 0.8500, 0.0500, 0.0500],
                [0.0000, 0.0000, 0.0000, 0.0000]])
        >>> mask
        tensor([[ True,  True, False]])
    """
    target = _check_labels(target, "target")
    num_classes = _num_classes(num_classes)
    epsilon = _unit("epsilon", epsilon)
    ignore_index = check_ignore_index(ignore_index)
    dtype = _check_float_dtype(dtype)
    valid = _check_label_range(target, num_classes, ignore_index, "target")
    soft = _scatter_one_hot(target, valid, num_classes, dtype)
    soft.mul_(1.0 - epsilon).add_(valid.unsqueeze(1).to(dtype), alpha=epsilon / num_classes)
    return SoftTarget(soft, valid)


@torch.no_grad()
def boundary_label_smoothing(
    target: Tensor,
    num_classes: int,
    epsilon: float = 0.5,
    *,
    kernel_size: int | Sequence[int] = 3,
    ignore_index: int | None = None,
    spread: str = SPREAD_UNIFORM,
    near_ignore: str = NEAR_IGNORE_KEEP,
    dtype: torch.dtype = torch.float32,
) -> SoftTarget:
    r"""Label smoothing on class boundaries only; by default exactly the authors' recipe.

    The defaults are the reference definition of Wang, Ning & Blaschko (NeurIPS 2023; ``configs/labels/ls.yaml``
    and ``get_label_boundary``/``smoothing_label`` of their code): :math:`\varepsilon = 0.5`, window
    :math:`k = 3`, and

    * a valid pixel is a *boundary pixel* when its centred :math:`k \times k` window
      (:math:`k \times k \times k` for volumes) holds a class other than its own, so both sides of an
      edge are smoothed (a band of about :math:`k // 2` pixels on each side);
    * the window is cut at the image border: the border is not a boundary;
    * a pixel whose window touches an ignored pixel is **not** smoothed (``near_ignore="keep"``): next to
      unlabelled pixels nobody knows where the edge is;
    * a boundary pixel gets :math:`(1 - \varepsilon)\, e_y + \varepsilon / C`, every other valid pixel
      stays :math:`e_y`, ignored pixels get ``mask=False`` and a zero vector.

    With :math:`K_i` the set of valid classes in the window of pixel :math:`i` and :math:`I_i` whether it
    holds an ignored pixel:

    .. math::

        \text{soft}_{b,:,i} =
        \begin{cases}
            (1 - \varepsilon)\, e_{y_i} + \varepsilon\, u_i & |K_i| > 1 \text{ and not } I_i \\
            e_{y_i} & \text{otherwise}
        \end{cases}
        \qquad
        u_i = \begin{cases}
            \mathbf{1} / C & \texttt{spread="uniform"} \\
            \mathbf{1}_{K_i} / |K_i| & \texttt{spread="neighbourhood"}
        \end{cases}

    Two variants stay reachable (earlier versions of jmlkit used the first by default):

    * ``near_ignore="smooth"`` drops the "not :math:`I_i`" condition: ignored pixels are then simply no
      class, a pixel next to ignored pixels *and* another class is smoothed, one next to ignored pixels only
      is not;
    * ``spread="neighbourhood"`` shares :math:`\varepsilon` equally among the classes that occur in the
      window (own class included) instead of all :math:`C`, so the mass goes only to plausible confusions.
      ``"uniform"`` is :func:`label_smoothing` restricted to the boundary.

    The cost is a few pooling passes (a max- and a min-pool of the label map, one max-pool of the ignore
    map, and for ``"neighbourhood"`` one of the one-hot map). :func:`~jmlkit.targets.smoothing_shares`
    tells how much of each object this band covers on a given data set: a thin share on the authors'
    512-1024-px scenes, most of the object on 32x32 scenes with 16-px digits.

    Ignored pixels must be **masked** for the Jaccard metric loss: pass ``mask`` on to the loss
    (``loss(logits, soft, mask)``). Their zero target vector is not the same as ignoring them, since the
    prediction's mass there still enters the union.

    Args:
        target: int ``(B, *spatial)`` with 1 to 3 spatial dims, class indices or ``ignore_index``.
        num_classes: ``C``, a positive int.
        epsilon: smoothing :math:`\varepsilon \in [0, 1]` on boundary pixels (the paper: 0.5).
        kernel_size: window side :math:`k`, an odd int ``>= 3`` (the paper: 3), or one odd int per spatial
            dim (anisotropic voxels).
        ignore_index: label value of pixels that do not count; they get ``mask=False`` and a zero vector.
        spread: ``"uniform"`` (the paper) or ``"neighbourhood"`` (see above).
        near_ignore: ``"keep"`` (the paper: a window touching an ignored pixel leaves the pixel one-hot) or
            ``"smooth"`` (ignored pixels are no class and do not stop the smoothing).
        dtype: floating dtype of ``soft``.

    Returns:
        :class:`SoftTarget` with ``soft`` ``(B, C, *spatial)`` and ``mask`` ``(B, *spatial)``.

    Example:
        >>> import torch
        >>> y = torch.tensor([[[0, 0, 0, 1, 1]]])  # (B=1, H=1, W=5)
        >>> soft, mask = boundary_label_smoothing(y, 3)  # eps = 0.5, k = 3
        >>> soft[0, :, 0].T  # one row per pixel: only the two pixels at the 0|1 edge are smoothed
        tensor([[1.0000, 0.0000, 0.0000],
                [1.0000, 0.0000, 0.0000],
                [0.6667, 0.1667, 0.1667],
                [0.1667, 0.6667, 0.1667],
                [0.0000, 1.0000, 0.0000]])
        >>> boundary_label_smoothing(y, 3, 0.3, spread="neighbourhood").soft[0, :, 0, 2]
        tensor([0.8500, 0.1500, 0.0000])

        Next to an ignored pixel (255) the edge is not smoothed, unless ``near_ignore="smooth"``:

        >>> z = torch.tensor([[[0, 0, 1, 255, 1]]])
        >>> boundary_label_smoothing(z, 2, ignore_index=255).soft[0, 0, 0]
        tensor([1.0000, 0.7500, 0.0000, 0.0000, 0.0000])
        >>> boundary_label_smoothing(z, 2, ignore_index=255, near_ignore="smooth").soft[0, 0, 0]
        tensor([1.0000, 0.7500, 0.2500, 0.0000, 0.0000])
    """
    target = _check_labels(target, "target", min_spatial=1, max_spatial=3)
    num_classes = _num_classes(num_classes)
    epsilon = _unit("epsilon", epsilon)
    kernel = _check_kernel_size(kernel_size, target.ndim - 1)
    ignore_index = check_ignore_index(ignore_index)
    spread = check_choice("spread", spread, _SPREADS)
    near_ignore = check_choice("near_ignore", near_ignore, _NEAR_IGNORES)
    dtype = _check_float_dtype(dtype)
    valid = _check_label_range(target, num_classes, ignore_index, "target")

    soft = _scatter_one_hot(target, valid, num_classes, dtype)
    if epsilon == 0.0 or target.numel() == 0:
        return SoftTarget(soft, valid)

    boundary = _boundary_mask(target, valid, num_classes, kernel, near_ignore)
    if spread == SPREAD_UNIFORM:
        spread_to = boundary.unsqueeze(1).to(dtype) / num_classes
    else:
        # (B, C, *spatial), 1 where the class occurs; pooled in float32 (exact 0/1), divided in `dtype`
        present = _window_max(soft.to(torch.float32), kernel).to(dtype)
        n_present = present.sum(dim=1, keepdim=True).clamp_min(1)
        spread_to = present / n_present * boundary.unsqueeze(1)

    scale = 1.0 - epsilon * boundary.unsqueeze(1).to(dtype)  # in `dtype`: no float32 round trip for float64
    soft.mul_(scale).add_(spread_to, alpha=epsilon)
    return SoftTarget(soft, valid)
