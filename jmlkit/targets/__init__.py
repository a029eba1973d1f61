r"""Soft-label builders: turn hard labels, teacher logits or several annotators into soft targets.

Every builder returns a :class:`SoftTarget` ``(soft, mask)``:

* ``soft``: float ``(B, C, *spatial)``, a probability vector over the ``C`` classes at every
  valid pixel (non-negative, sums to 1 over ``dim=1``);
* ``mask``: bool ``(B, *spatial)``, ``True`` where the pixel counts.

Ignored pixels (``target == ignore_index``, or no annotator labelled them) get ``mask=False`` and an
all-zero ``soft`` vector. ``mask`` is the authority, and **ignored pixels must be masked** for the
Jaccard metric loss: pass ``mask`` on to the loss (``loss(logits, soft, mask)``). A zero target vector is
*not* the same as ignoring the pixel: the loss compares the intersection :math:`\sum_c \min(x_c, y_c)`
with the union :math:`\sum_c \max(x_c, y_c)`, and at a pixel with :math:`y = 0` the intersection gains
nothing while the union gains the prediction's whole mass :math:`\sum_c x_c = 1`. An unmasked ignored
pixel is therefore a pixel the model gets wrong whatever it predicts: it lowers the score of every class
the prediction gives mass there.

Boundary label smoothing follows the authors' recipe by default (:math:`\varepsilon = 0.5`, a
:math:`3 \times 3` window, no smoothing next to ignored pixels); :func:`smoothing_shares` reports, for a
batch of your own labels, how much of each object that band covers and how much of each class's target
mass is the :math:`\varepsilon / C` floor that other classes' pixels give it.

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
:func:`boundary_label_smoothing` as label smoothing where the window holds another class (and no
                                 ignored pixel), :math:`e_y` elsewhere
:func:`distillation_targets`     :math:`(1-w)\,\mathrm{softmax}(z/T) + w\,e_y`
:func:`pseudo_labels`            :math:`\mathrm{softmax}(z/T)` or its arg-max one-hot
:func:`average_annotators`       :math:`\frac{1}{|A_i|}\sum_{a\in A_i} e_{y^{(a)}_i}`
===============================  ==========================================================
"""
from __future__ import annotations

from jmlkit.targets._common import (
    NEAR_IGNORE_KEEP, NEAR_IGNORE_SMOOTH, SPREAD_NEIGHBOURHOOD, SPREAD_UNIFORM, SoftTarget,
)
from jmlkit.targets.smoothing import boundary_label_smoothing, label_smoothing, one_hot
from jmlkit.targets.teachers import distillation_targets, pseudo_labels
from jmlkit.targets.annotators import average_annotators
from jmlkit.targets.regime import SmoothingShares, smoothing_shares

__all__ = [
    "SoftTarget",
    "one_hot",
    "label_smoothing",
    "boundary_label_smoothing",
    "distillation_targets",
    "pseudo_labels",
    "average_annotators",
    "smoothing_shares",
    "SmoothingShares",
    "SPREAD_UNIFORM",
    "SPREAD_NEIGHBOURHOOD",
    "NEAR_IGNORE_KEEP",
    "NEAR_IGNORE_SMOOTH",
]
