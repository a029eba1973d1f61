r"""Notebook 04: which pixels a confidence threshold turns into pseudo-labels, and how often those are right.

A pixel becomes a pseudo-label where the model's largest probability is at least the threshold :math:`\tau` (the
rule of :func:`jmlkit.targets.pseudo_labels`); its pseudo-label is the arg-max class. On scenes whose labels training
never saw, the kept share and the accuracy of the kept pseudo-labels against the true labels show the trade-off the
threshold makes: a higher :math:`\tau` keeps fewer pixels, and those are more often right.

Nothing here draws: :class:`jmlkit.plot.PseudoLabelPlot` shows these results.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jmlkit._checks import check_ignore_index, check_real

__all__ = ["THRESHOLDS", "PseudoLabelState", "pseudo_label_state", "ThresholdCurve", "threshold_curve"]

#: The thresholds of :func:`threshold_curve` by default: 0 to 1 in steps of 0.01.
THRESHOLDS = tuple(round(k / 100, 2) for k in range(101))


def _inputs(probs: Any, labels: Any, ignore_index: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(confidence, guess, correct, valid)``, each ``(B, *spatial)``, of probabilities and their true labels."""
    if not isinstance(probs, Tensor) or not probs.is_floating_point() or probs.ndim < 3 or probs.shape[1] < 2:
        raise TypeError("Expected `probs` to be a float tensor (B, C, *spatial) of probabilities with C >= 2, but got "
                        f"{tuple(probs.shape) if isinstance(probs, Tensor) else type(probs).__name__}"
                        f"{' ' + str(probs.dtype) if isinstance(probs, Tensor) else ''}.")
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError("Expected `labels` to be an integer tensor (B, *spatial) of class indices, but got "
                        f"{labels.dtype if isinstance(labels, Tensor) else type(labels).__name__}.")
    if labels.shape != probs.shape[:1] + probs.shape[2:]:
        raise ValueError(f"Expected `labels` of shape {tuple(probs.shape[:1] + probs.shape[2:])} (the shape of "
                         f"`probs` without its class axis), but got {tuple(labels.shape)}.")
    ignore_index = check_ignore_index(ignore_index)
    valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    confidence, guess = probs.detach().float().max(1)
    return confidence, guess, (guess == labels) & valid, valid


@dataclass(frozen=True)
class PseudoLabelState:
    """The pseudo-labels at one threshold (:func:`pseudo_label_state`).

    ``kept``, ``correct``, ``valid``: bool ``(B, *spatial)``: kept as a pseudo-label, arg-max equal to the true
    label, a pixel that counts (not ``ignore_index``). ``share``: kept valid pixels over valid pixels;
    ``accuracy``: correct kept pixels over kept pixels (NaN when none is kept).
    """

    threshold: float
    kept: Tensor
    correct: Tensor
    valid: Tensor
    n_kept: int
    n_valid: int
    share: float
    accuracy: float


def pseudo_label_state(probs: Tensor, labels: Tensor, threshold: float, *,
                       ignore_index: int | None = None) -> PseudoLabelState:
    r"""Which valid pixels have a largest probability :math:`\ge` ``threshold`` (the pseudo-labels), their share and
    the accuracy of their arg-max against ``labels``.

    Args:
        probs: float ``(B, C, *spatial)``, the model's probabilities (e.g. :func:`jmlkit.engine.predict`'s ``probs``).
        labels: int ``(B, *spatial)``, the true labels (that self-training never sees).
        threshold: :math:`\tau \in [0, 1]`.
        ignore_index: label value of pixels that count nowhere.

    Example:
        >>> probs = torch.tensor([[[0.95, 0.6, 0.8]]]).unsqueeze(1)
        >>> s = pseudo_label_state(torch.cat([probs, 1 - probs], 1), torch.tensor([[[0, 1, 0]]]), 0.7)
        >>> s.kept.tolist(), s.share, s.accuracy
        ([[[True, False, True]]], 0.6666666666666666, 1.0)
    """
    threshold = check_real("threshold", threshold, low=0.0, high=1.0)
    confidence, _, correct, valid = _inputs(probs, labels, ignore_index)
    kept = (confidence >= threshold) & valid
    n_kept, n_valid = int(kept.sum()), int(valid.sum())
    return PseudoLabelState(threshold=threshold, kept=kept, correct=correct, valid=valid, n_kept=n_kept,
                            n_valid=n_valid, share=n_kept / n_valid if n_valid else float("nan"),
                            accuracy=int((kept & correct).sum()) / n_kept if n_kept else float("nan"))


@dataclass(frozen=True)
class ThresholdCurve:
    """Kept share and accuracy of the kept pseudo-labels at each threshold (:func:`threshold_curve`), ``(K,)`` each
    (float64; the accuracy is NaN where no pixel is kept), over ``n_valid`` valid pixels."""

    thresholds: Tensor
    share: Tensor
    accuracy: Tensor
    n_valid: int


def threshold_curve(probs: Tensor, labels: Tensor, thresholds: Sequence[float] = THRESHOLDS, *,
                    ignore_index: int | None = None) -> ThresholdCurve:
    """:func:`pseudo_label_state`'s share and accuracy at every one of ``thresholds`` (in ``[0, 1]``), from one sort
    of the confidences.

    Example:
        >>> probs = torch.tensor([[[0.95, 0.6, 0.8]]]).unsqueeze(1)
        >>> c = threshold_curve(torch.cat([probs, 1 - probs], 1), torch.tensor([[[0, 1, 0]]]), [0.5, 0.9, 1.0])
        >>> c.share.tolist(), c.accuracy.tolist()[:2]
        ([1.0, 0.3333333333333333, 0.0], [0.6666666666666666, 1.0])
    """
    ts = np.array([check_real(f"thresholds[{i}]", t, low=0.0, high=1.0) for i, t in enumerate(thresholds)])
    if not len(ts):
        raise ValueError("Expected `thresholds` to hold at least one number in [0, 1], but got none.")
    confidence, _, correct, valid = _inputs(probs, labels, ignore_index)
    conf = confidence[valid].numpy().astype(np.float64)
    right = correct[valid].numpy()
    order = np.argsort(conf, kind="stable")
    conf, right = conf[order], right[order]
    # kept at t: the pixels from the first confidence >= t on; the correct ones among them by a cumulative sum
    first = np.searchsorted(conf, ts.astype(np.float32).astype(np.float64), side="left")
    n = len(conf)
    correct_above = np.concatenate([np.cumsum(right[::-1])[::-1], [0]])
    kept = n - first
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(kept > 0, correct_above[first] / np.maximum(kept, 1), np.nan)
    share = kept / n if n else np.full(len(ts), np.nan)
    return ThresholdCurve(thresholds=torch.from_numpy(ts), share=torch.from_numpy(np.asarray(share, float)),
                          accuracy=torch.from_numpy(accuracy.astype(float)), n_valid=n)
