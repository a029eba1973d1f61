r"""Soft-label builders: turn hard labels, teacher logits or several annotators into soft targets.

Every builder returns a :class:`SoftTarget` ``(soft, mask)``:

* ``soft``: float ``(B, C, *spatial)``, a probability vector over the ``C`` classes at every
  valid pixel (non-negative, sums to 1 over ``dim=1``);
* ``mask``: bool ``(B, *spatial)``, ``True`` where the pixel counts.

Ignored pixels (``target == ignore_index``, or no annotator labelled them) get ``mask=False`` and an
all-zero ``soft`` vector, so they add nothing even to a sum-based loss that forgets the mask.
``mask`` is the authority: pass it on to the loss (``loss(logits, soft, mask)``).

Any number of spatial dimensions works (``(B, H, W)`` images, ``(B, D, H, W)`` volumes); only
:func:`boundary_label_smoothing` is limited to 1 to 3 spatial dimensions (it uses max-pooling).

Soft targets are constants: every builder runs under :func:`torch.no_grad` and returns tensors that
do not require grad. Outputs stay on the device of the input. Builders fed hard labels return
``dtype`` (``torch.float32`` by default); builders fed logits return the logits' float dtype.

===============================  ==========================================================
builder                          soft label at a valid pixel with class :math:`y`
===============================  ==========================================================
:func:`one_hot`                  :math:`e_y`
:func:`label_smoothing`          :math:`(1-\varepsilon)\,e_y + \varepsilon/C`
:func:`boundary_label_smoothing` as label smoothing on class boundaries, :math:`e_y` elsewhere
:func:`distillation_targets`     :math:`(1-w)\,\mathrm{softmax}(z/T) + w\,e_y`
:func:`pseudo_labels`            :math:`\mathrm{softmax}(z/T)` or its arg-max one-hot
:func:`average_annotators`       :math:`\frac{1}{|A_i|}\sum_{a\in A_i} e_{y^{(a)}_i}`
===============================  ==========================================================
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from jmlkit._checks import check_bool, check_choice, check_ignore_index, check_int, check_real, check_type

__all__ = [
    "SoftTarget",
    "one_hot",
    "label_smoothing",
    "boundary_label_smoothing",
    "distillation_targets",
    "pseudo_labels",
    "average_annotators",
    "SPREAD_UNIFORM",
    "SPREAD_NEIGHBOURHOOD",
]

#: ``spread`` of :func:`boundary_label_smoothing`: :math:`\varepsilon` shared by all ``C`` classes.
SPREAD_UNIFORM = "uniform"
#: ``spread`` of :func:`boundary_label_smoothing`: :math:`\varepsilon` shared by the classes in the window.
SPREAD_NEIGHBOURHOOD = "neighbourhood"
_SPREADS = (SPREAD_UNIFORM, SPREAD_NEIGHBOURHOOD)


class SoftTarget(NamedTuple):
    """A soft target and the pixels it is valid on.

    Attributes:
        soft: float ``(B, C, *spatial)``; a probability vector over ``dim=1`` where ``mask`` is True.
        mask: bool ``(B, *spatial)``; True where the pixel counts.
    """

    soft: Tensor
    mask: Tensor

    def to(self, *args, **kwargs) -> SoftTarget:
        """Move both tensors (``Tensor.to`` arguments); the mask keeps its bool dtype."""
        soft = self.soft.to(*args, **kwargs)
        return SoftTarget(soft, self.mask.to(device=soft.device))


# --------------------------------------------------------------------------------------------
# checks: the numbers and options through jmlkit._checks; here the dtype, the kernel and the tensors
# (errors name the argument, what was expected and what was given)
# --------------------------------------------------------------------------------------------
_num_classes = functools.partial(check_int, "num_classes", low=1)
_temperature = functools.partial(check_real, "temperature", low=0.0, low_open=True)


def _unit(name: str, value) -> float:
    return check_real(name, value, low=0.0, high=1.0)


def _check_float_dtype(dtype) -> torch.dtype:
    check_type("dtype", dtype, torch.dtype, what="a floating torch.dtype")
    if not dtype.is_floating_point:
        raise ValueError(f"Expected `dtype` to be a floating torch.dtype, but got {dtype!r}.")
    return dtype


def _check_labels(target, name: str, *, min_spatial: int = 1, max_spatial: int | None = None) -> Tensor:
    """Hard labels: an integer tensor ``(B, *spatial)``."""
    if not isinstance(target, Tensor):
        raise TypeError(
            f"Expected `{name}` to be a torch.Tensor of int class indices, but got {type(target).__name__}."
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"Expected `{name}` to hold integer class indices (e.g. torch.int64), but got dtype {target.dtype}. "
            "Soft labels do not need a builder; hard labels must be an integer tensor."
        )
    n_spatial = target.ndim - 1
    if n_spatial < min_spatial or (max_spatial is not None and n_spatial > max_spatial):
        dims = f"{min_spatial} to {max_spatial}" if max_spatial is not None else f"at least {min_spatial}"
        raise ValueError(
            f"Expected `{name}` of shape (B, *spatial) with {dims} spatial dims, "
            f"but got shape {tuple(target.shape)}."
        )
    return target


def _check_label_range(target: Tensor, num_classes: int, ignore_index: int | None, name: str) -> Tensor:
    """Return the valid-pixel mask after checking that labels are classes or ``ignore_index``."""
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    if target.numel() == 0:
        return valid
    probe = target if ignore_index is None else torch.where(valid, target, torch.zeros_like(target))
    lo, hi = (int(v) for v in torch.aminmax(probe))
    if lo < 0 or hi >= num_classes:
        got = " and ".join(s for s, bad in ((f"min {lo}", lo < 0), (f"max {hi}", hi >= num_classes)) if bad)
        allowed = f"[0, {num_classes - 1}]" + ("" if ignore_index is None else f" or ignore_index={ignore_index}")
        raise ValueError(f"Expected `{name}` values in {allowed}, but got {got}.")
    return valid


def _check_logits(logits, name: str = "teacher_logits") -> Tensor:
    if not isinstance(logits, Tensor):
        raise TypeError(f"Expected `{name}` to be a float torch.Tensor, but got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"Expected `{name}` to be a floating-point tensor of logits, but got dtype {logits.dtype}.")
    if logits.ndim < 3:
        raise ValueError(
            f"Expected `{name}` of shape (B, C, *spatial) with at least 1 spatial dim, "
            f"but got shape {tuple(logits.shape)}."
        )
    if logits.shape[1] < 1:
        raise ValueError(
            f"Expected `{name}` to have at least 1 class along dim 1, but got shape {tuple(logits.shape)}."
        )
    return logits


def _check_paired_labels(target, logits: Tensor, name: str = "target") -> Tensor:
    target = _check_labels(target, name)
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"Expected `{name}` of shape {expected} (B, *spatial of `teacher_logits`), "
            f"but got shape {tuple(target.shape)}."
        )
    if target.device != logits.device:
        raise ValueError(
            f"Expected `{name}` on the device of `teacher_logits` ({logits.device}), but got {target.device}."
        )
    return target


def _check_kernel_size(kernel_size, n_spatial: int) -> tuple[int, ...]:
    sizes = tuple(kernel_size) if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, str) else None
    if sizes is None:
        sizes = (kernel_size,) * n_spatial
    elif len(sizes) != n_spatial:
        raise ValueError(
            f"Expected `kernel_size` to be an int or a sequence of {n_spatial} ints (one per spatial dim), "
            f"but got {kernel_size!r}."
        )
    sizes = tuple(check_int("kernel_size", k) for k in sizes)
    if any(k < 3 or k % 2 == 0 for k in sizes):
        raise ValueError(f"Expected `kernel_size` to be an odd int >= 3, but got {kernel_size!r}.")
    return sizes


# --------------------------------------------------------------------------------------------
# internals
# --------------------------------------------------------------------------------------------


def _scatter_one_hot(target: Tensor, valid: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """``(B, *spatial)`` labels -> ``(B, C, *spatial)`` one-hot, zero where ``valid`` is False."""
    index = torch.where(valid, target, torch.zeros_like(target)).long().unsqueeze(1)
    out = torch.zeros((target.shape[0], num_classes, *target.shape[1:]), dtype=dtype, device=target.device)
    return out.scatter_(1, index, valid.unsqueeze(1).to(dtype))


_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _window_max(x: Tensor, kernel: tuple[int, ...]) -> Tensor:
    """Max over the centred window; the window is cut at the border (no padding value wins)."""
    pool = _MAX_POOL[len(kernel)]
    return pool(x, kernel_size=kernel, stride=1, padding=tuple(k // 2 for k in kernel))


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Softmax in at least float32; cast back at the end."""
    return torch.promote_types(dtype, torch.float32)


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
