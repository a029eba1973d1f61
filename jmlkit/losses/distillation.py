"""Knowledge distillation with the Jaccard metric loss: the recipe of the JML paper's reference code.

Wang, Ning & Blaschko, *Jaccard Metric Losses: Optimizing the Jaccard Index with Soft Labels*, NeurIPS 2023
(arXiv:2302.05666), whose reference code (``train_kd.py``, ``configs/labels/kd.yaml``) trains a student on the hard
labels and on the teacher's probabilities at once. With :math:`z_s, z_t` the student's and teacher's logits,
:math:`y` the hard labels, :math:`q^T = \\mathrm{softmax}(z / T)` and :math:`p_s = \\mathrm{softmax}(z_s)`:

.. math::
    \\mathcal{L} = w_{ce}\\Big[\\lambda\\,\\mathrm{CE}(z_s, y)
                  + \\mu\\,T^2\\,\\mathrm{KL}\\big(q_t^T \\,\\|\\, q_s^T\\big)\\Big]
                 + w_{r}\\Big[\\lambda\\,\\mathrm{JML}(p_s, y)
                  + \\mu\\,\\mathrm{JML}\\big(p_s, q_t^T\\big)\\Big]

with :math:`w_{ce}` = ``ce_weight`` (0.25), :math:`w_r` = ``region_weight`` (0.75), :math:`\\lambda` =
``label_weight`` (0.5), :math:`\\mu` = ``teacher_weight`` (0.5) and :math:`T` = ``temperature`` (1).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jmlkit._checks import check_ignore_index, check_real

from . import _validation as V
from ._base import REGION_DEFAULTS
from ._functional import soft_cross_entropy
from .constants import MULTICLASS_MODE
from .jaccard import jaccard_metric_loss

#: The options of the two Jaccard metric loss terms, with their defaults (multiclass from logits only: the
#: student's softmax is what the loss compares, the KL term needs logits).
JML_OPTIONS: dict[str, Any] = {**{k: v for k, v in REGION_DEFAULTS.items() if k not in ("mode", "from_logits")},
                               "variant": 1}

#: The weights and the temperature, with their defaults (those of ``configs/labels/kd.yaml``).
KD_DEFAULTS: dict[str, float] = dict(temperature=1.0, label_weight=0.5, teacher_weight=0.5, ce_weight=0.25,
                                     region_weight=0.75)


def _check_kd_options(temperature: Any, label_weight: Any, teacher_weight: Any, ce_weight: Any, region_weight: Any,
                      jml_options: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """The numbers as python floats and the JML options completed with their defaults; unknown options raise."""
    unknown = sorted(set(jml_options) - set(JML_OPTIONS))
    if unknown:
        raise TypeError(f"JMLDistillationLoss got unknown option(s) {unknown}; expected some of "
                        f"{sorted([*KD_DEFAULTS, *JML_OPTIONS])}.")
    numbers = dict(temperature=check_real("temperature", temperature, low=0.0, low_open=True),
                   label_weight=check_real("label_weight", label_weight, low=0.0),
                   teacher_weight=check_real("teacher_weight", teacher_weight, low=0.0),
                   ce_weight=check_real("ce_weight", ce_weight, low=0.0),
                   region_weight=check_real("region_weight", region_weight, low=0.0))
    o = {**JML_OPTIONS, **jml_options}
    V.check_options(mode=MULTICLASS_MODE, classes=o["classes"], aggregate=o["aggregate"], smooth=o["smooth"],
                    gamma=o["gamma"], threshold=o["threshold"], class_weights=o["class_weights"],
                    ignore_index=o["ignore_index"])
    V.check_variant(o["variant"])
    return numbers, o


def _check_tensors(student: Any, teacher: Any, target: Any, mask: Any, ignore_index: int | None,
                   validate_values: bool) -> None:
    V.check_logits(student, MULTICLASS_MODE, name="student_logits")
    V.check_logits(teacher, MULTICLASS_MODE, name="teacher_logits")
    if teacher.shape != student.shape:
        raise ValueError(f"Expected `teacher_logits` of the shape of `student_logits` {tuple(student.shape)}, "
                         f"but got {tuple(teacher.shape)}.")
    if isinstance(target, Tensor) and target.is_floating_point():
        raise TypeError(
            "Expected `target` to hold the hard labels (class indices, an integer tensor of shape (B, *spatial)), "
            f"but got a {target.dtype} tensor; the soft target of the distillation is the teacher's softmax.")
    V.check_target(target, student, MULTICLASS_MODE, ignore_index, validate_values=validate_values)
    V.check_mask(mask, student)
    if validate_values:
        V.check_finite(student, "student_logits")
        V.check_finite(teacher, "teacher_logits")


def _valid_pixels(target: Tensor, mask: Tensor | None, ignore_index: int | None) -> Tensor | None:
    """(B, *spatial) bool of the pixels that count, or ``None`` when all do."""
    valid = None if ignore_index is None else target != ignore_index
    if mask is not None:
        valid = mask if valid is None else valid & mask
    return valid


def _tempered_kl(student: Tensor, teacher: Tensor, temperature: float, valid: Tensor | None) -> Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T))`` per pixel, averaged over the valid pixels."""
    B, C = student.shape[:2]
    N = math.prod(student.shape[2:])  # explicit: reshape(B, C, -1) is ambiguous for an empty batch
    log_q_s = F.log_softmax(student.reshape(B, C, N) / temperature, dim=1)
    log_q_t = F.log_softmax(teacher.reshape(B, C, N) / temperature, dim=1)
    per_pixel = F.kl_div(log_q_s, log_q_t, reduction="none", log_target=True).sum(1)  # (B, N)
    if valid is None:
        return per_pixel.sum() / max(per_pixel.numel(), 1)
    v = valid.reshape(B, N)
    return torch.where(v, per_pixel, torch.zeros_like(per_pixel)).sum() / v.sum().clamp_min(1)


def jml_distillation_loss(student_logits: Tensor, teacher_logits: Tensor, target: Tensor,
                          mask: Tensor | None = None, *, temperature: float = 1.0, label_weight: float = 0.5,
                          teacher_weight: float = 0.5, ce_weight: float = 0.25, region_weight: float = 0.75,
                          **jml_options: Any) -> Tensor:
    """Distillation loss of the JML paper's reference code: cross-entropy and tempered KL on one side, two Jaccard
    metric losses (hard labels, teacher probabilities) on the other.

    .. math::
        \\mathcal{L} = w_{ce}\\Big[\\lambda\\,\\mathrm{CE}(z_s, y)
                      + \\mu\\,T^2\\,\\mathrm{KL}\\big(q_t^T \\,\\|\\, q_s^T\\big)\\Big]
                     + w_{r}\\Big[\\lambda\\,\\mathrm{JML}(p_s, y)
                      + \\mu\\,\\mathrm{JML}\\big(p_s, q_t^T\\big)\\Big],
        \\qquad q^T = \\mathrm{softmax}(z / T),\\ p_s = \\mathrm{softmax}(z_s)

    * :math:`\\mathrm{CE}` and :math:`\\mathrm{KL} = \\sum_c q_{t,c}^T (\\log q_{t,c}^T - \\log q_{s,c}^T)` are
      averaged over the valid pixels; the :math:`T^2` keeps the KL gradient's scale independent of :math:`T`.
    * The Jaccard metric loss sees the student's probabilities *at temperature 1*; only the teacher's target is
      softened. With the default ``classes=None`` the hard-label term averages the classes present in the batch
      and the teacher term all classes (the rule of :mod:`jmlkit.losses` for hard and soft targets); an explicit
      ``classes`` applies to both terms.
    * The teacher gets no gradient (its logits are detached). For mutual learning, where both networks learn,
      call :func:`~jmlkit.losses.jaccard_metric_loss` with the other network's softmax as the soft target: a
      target that requires grad gets its gradient.
    * Pixels with ``target == ignore_index`` or ``mask == False`` count in no term; a batch without a valid pixel
      gives 0 with a zero gradient. A term whose weight is 0 is not computed.

    Args:
        student_logits: ``(B, C, *spatial)`` scores of the student (float; half precision is computed in
            float32, like every term).
        teacher_logits: ``(B, C, *spatial)`` scores of the teacher, the shape of ``student_logits``.
        target: hard labels ``(B, *spatial)``, integer class indices in ``[0, C)`` or ``ignore_index``.
        mask: optional bool ``(B, *spatial)``; ``False`` pixels are left out (like ``ignore_index``).
        temperature: :math:`T > 0` of the teacher's target and of the KL term.
        label_weight, teacher_weight: :math:`\\lambda, \\mu \\ge 0`, the weights of the hard labels and of the
            teacher inside each part (0.5 and 0.5).
        ce_weight, region_weight: :math:`w_{ce}, w_r \\ge 0`, the weights of the CE + KL part and of the JML part
            (0.25 and 0.75).
        jml_options: options of :func:`~jmlkit.losses.jaccard_metric_loss` for both JML terms: ``classes``,
            ``aggregate``, ``smooth`` (1.0, as in every training config of the reference code), ``log_loss``,
            ``gamma``, ``class_weights``, ``ignore_index`` (also used by the CE and KL terms), ``threshold``,
            ``variant``, ``sync_distributed`` (pools the JML terms over the processes; the CE and KL terms are
            each process's means, whose gradients DDP averages, as in :class:`~jmlkit.losses.CompoundLoss`),
            ``validate_args``, ``fused``.

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> student = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
        >>> teacher = 2 * torch.randn(2, 3, 4, 4, generator=g)
        >>> target = torch.randint(0, 3, (2, 4, 4), generator=g)
        >>> target[0, 0] = 255                                          # an ignored row
        >>> loss = jml_distillation_loss(student, teacher, target, temperature=4.0, ignore_index=255)
        >>> round(loss.item(), 4)
        0.8791
        >>> loss.backward()
        >>> bool(student.grad.abs().sum() > 0)
        True
    """
    numbers, o = _check_kd_options(temperature, label_weight, teacher_weight, ce_weight, region_weight, jml_options)
    T, lam, mu = numbers["temperature"], numbers["label_weight"], numbers["teacher_weight"]
    w_ce, w_r = numbers["ce_weight"], numbers["region_weight"]
    ignore_index = check_ignore_index(o["ignore_index"])
    _check_tensors(student_logits, teacher_logits, target, mask, ignore_index, bool(o["validate_args"]))
    jml = {**o, "ignore_index": ignore_index, "validate_args": False}  # the tensors are checked above

    # one working precision for every term: float32 at least (autocast gives half logits)
    work = torch.promote_types(torch.promote_types(student_logits.dtype, teacher_logits.dtype), torch.float32)
    student = student_logits.to(work)
    teacher = teacher_logits.detach().to(work)
    valid = _valid_pixels(target, mask, ignore_index)

    terms = []
    if w_ce and lam:
        terms.append(w_ce * lam * soft_cross_entropy(student, target, mask, ignore_index=ignore_index,
                                                     validate_args=False))
    if w_ce and mu:
        terms.append(w_ce * mu * T * T * _tempered_kl(student, teacher, T, valid))
    if w_r and lam:
        terms.append(w_r * lam * jaccard_metric_loss(student, target, mask, **jml))
    if w_r and mu:
        q_t = torch.softmax(teacher / T, dim=1)
        terms.append(w_r * mu * jaccard_metric_loss(student, q_t, valid, **jml))
    return sum(terms[1:], terms[0]) if terms else student.sum() * 0.0


class JMLDistillationLoss(nn.Module):
    """Module form of :func:`jml_distillation_loss`: the options as keywords (checked at construction),
    ``forward(student_logits, teacher_logits, target, mask=None)``.

    Example:
        >>> import torch
        >>> criterion = JMLDistillationLoss(temperature=2.0, ignore_index=255)
        >>> criterion
        JMLDistillationLoss(temperature=2.0, ignore_index=255)
        >>> student = torch.zeros(1, 3, 2, 2, requires_grad=True)      # uniform student
        >>> teacher = torch.zeros(1, 3, 2, 2)                           # uniform teacher: KL = 0, JML(teacher) = 0
        >>> target = torch.tensor([[[0, 1], [2, 255]]])
        >>> loss = criterion(student, teacher, target)
        >>> round(loss.item(), 4)       # 0.25 * 0.5 * log 3 + 0.75 * 0.5 * (1 - (1/3 + 1) / (5/3 + 1))
        0.3248
        >>> loss.backward()
    """

    def __init__(self, *, temperature: float = 1.0, label_weight: float = 0.5, teacher_weight: float = 0.5,
                 ce_weight: float = 0.25, region_weight: float = 0.75, **jml_options: Any) -> None:
        super().__init__()
        numbers, _ = _check_kd_options(temperature, label_weight, teacher_weight, ce_weight, region_weight,
                                       jml_options)
        self.numbers = numbers
        self.options = {**JML_OPTIONS, **jml_options}  # kept as given; the function checks them per call

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor,
                mask: Tensor | None = None) -> Tensor:
        return jml_distillation_loss(student_logits, teacher_logits, target, mask, **self.numbers, **self.options)

    def extra_repr(self) -> str:
        changed = [f"{k}={v!r}" for k, v in self.numbers.items() if v != KD_DEFAULTS[k]]
        changed += [f"{k}={v!r}" for k, v in self.options.items()
                    if not (v is JML_OPTIONS[k] or (not isinstance(v, Tensor) and v == JML_OPTIONS[k]))]
        return ", ".join(changed)
