"""Soft targets from hard labels: one-hot, label smoothing, boundary label smoothing."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_ignore_index
from jmlkit.targets._common import (
    SPREAD_UNIFORM, SoftTarget, _SPREADS, _check_float_dtype, _check_kernel_size, _check_label_range,
    _check_labels, _num_classes, _scatter_one_hot, _unit, _window_max,
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
    epsilon: float,
    *,
    kernel_size: int | Sequence[int] = 3,
    ignore_index: int | None = None,
    spread: str = SPREAD_UNIFORM,
    dtype: torch.dtype = torch.float32,
) -> SoftTarget:
    r"""Label smoothing on class boundaries only.

    A valid pixel :math:`i` is a *boundary pixel* when its centred :math:`k \times k` window
    (:math:`k \times k \times k` for volumes; cut at the image border) holds more than one class.
    Ignored pixels are not a class: a pixel next to ignored pixels only is not a boundary pixel.
    With :math:`K_i` the set of classes present in the window:

    .. math::

        \text{soft}_{b,:,i} =
        \begin{cases}
            (1 - \varepsilon)\, e_{y_i} + \varepsilon\, u_i & |K_i| > 1 \\
            e_{y_i} & \text{otherwise}
        \end{cases}
        \qquad
        u_i = \begin{cases}
            \mathbf{1} / C & \texttt{spread="uniform"} \\
            \mathbf{1}_{K_i} / |K_i| & \texttt{spread="neighbourhood"}
        \end{cases}

    ``"uniform"`` is :func:`label_smoothing` restricted to the boundary; ``"neighbourhood"`` shares
    :math:`\varepsilon` equally among the classes that actually occur in the window (own class
    included), so the mass goes only to the plausible confusions.

    Boundary pixels are found with a max- and a min-pool of the label map (``"uniform"``) or a
    max-pool of the one-hot map (``"neighbourhood"``), so the cost is a few pooling passes.

    Args:
        target: int ``(B, *spatial)`` with 1 to 3 spatial dims, class indices or ``ignore_index``.
        num_classes: ``C``, a positive int.
        epsilon: smoothing :math:`\varepsilon \in [0, 1]` on boundary pixels.
        kernel_size: window side :math:`k`, an odd int ``>= 3``, or one odd int per spatial dim
            (anisotropic voxels); a band of about :math:`k // 2` pixels each side of an edge is smoothed.
        ignore_index: label value of pixels that do not count; they get ``mask=False`` and a zero vector.
        spread: ``"uniform"`` or ``"neighbourhood"`` (see above).
        dtype: floating dtype of ``soft``.

    Returns:
        :class:`SoftTarget` with ``soft`` ``(B, C, *spatial)`` and ``mask`` ``(B, *spatial)``.

    Example:
        >>> import torch
        >>> y = torch.tensor([[[0, 0, 0, 1, 1]]])  # (B=1, H=1, W=5)
        >>> soft, mask = boundary_label_smoothing(y, 3, 0.3)
        >>> soft[0, :, 0].T  # one row per pixel: only the two pixels at the 0|1 edge are smoothed
        tensor([[1.0000, 0.0000, 0.0000],
                [1.0000, 0.0000, 0.0000],
                [0.8000, 0.1000, 0.1000],
                [0.1000, 0.8000, 0.1000],
                [0.0000, 1.0000, 0.0000]])
        >>> boundary_label_smoothing(y, 3, 0.3, spread="neighbourhood").soft[0, :, 0, 2]
        tensor([0.8500, 0.1500, 0.0000])
    """
    target = _check_labels(target, "target", min_spatial=1, max_spatial=3)
    num_classes = _num_classes(num_classes)
    epsilon = _unit("epsilon", epsilon)
    kernel = _check_kernel_size(kernel_size, target.ndim - 1)
    ignore_index = check_ignore_index(ignore_index)
    spread = check_choice("spread", spread, _SPREADS)
    dtype = _check_float_dtype(dtype)
    valid = _check_label_range(target, num_classes, ignore_index, "target")

    soft = _scatter_one_hot(target, valid, num_classes, dtype)
    if epsilon == 0.0 or target.numel() == 0:
        return SoftTarget(soft, valid)

    if spread == SPREAD_UNIFORM:
        # max/min of the labels over the window, ignored pixels pushed out of the way (-1 / C)
        labels = target.to(torch.float32).unsqueeze(1)  # exact for any realistic number of classes
        keep = valid.unsqueeze(1)
        hi = _window_max(torch.where(keep, labels, torch.full_like(labels, -1.0)), kernel)
        lo = -_window_max(torch.where(keep, -labels, torch.full_like(labels, -float(num_classes))), kernel)
        boundary = (hi != lo).squeeze(1) & valid
        spread_to = boundary.unsqueeze(1).to(dtype) / num_classes
    else:
        present = _window_max(soft.to(torch.float32), kernel)  # (B, C, *spatial), 1 where the class occurs
        n_present = present.sum(dim=1)
        boundary = (n_present > 1) & valid
        spread_to = (present / n_present.clamp_min(1).unsqueeze(1)).to(dtype) * boundary.unsqueeze(1)

    scale = torch.where(boundary, 1.0 - epsilon, 1.0).unsqueeze(1).to(dtype)
    soft.mul_(scale).add_(spread_to, alpha=epsilon)
    return SoftTarget(soft, valid)
