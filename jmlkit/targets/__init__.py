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

from jmlkit.targets._common import SPREAD_NEIGHBOURHOOD, SPREAD_UNIFORM, SoftTarget
from jmlkit.targets.smoothing import boundary_label_smoothing, label_smoothing, one_hot
from jmlkit.targets.teachers import distillation_targets, pseudo_labels
from jmlkit.targets.annotators import average_annotators

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
