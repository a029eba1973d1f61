r"""Errors of predicted probabilities against the data's soft labels (not the hard argmax label).

:class:`SoftLabelStats` (streaming) and :func:`soft_label_metrics` (one shot) compare predicted
probabilities :math:`p \in [0,1]^{N\times K}` with the data set's soft labels :math:`y`
(partial-volume fractions, coverages, annotator averages):

* ``L1`` :math:`= \frac1N\sum_i \tfrac12\lVert p_i - y_i\rVert_1` (total variation, in [0, 1]);
* ``soft_IoU`` per class :math:`= \sum_i \min(p_{ik}, y_{ik}) / \sum_i \max(p_{ik}, y_{ik})`, the
  Jaccard index with the soft intersection :math:`(\lVert p\rVert_1 + \lVert y\rVert_1 - \lVert p-y\rVert_1)/2`
  that the Jaccard metric loss uses (1 exactly when :math:`p = y`), and ``soft_Dice``
  :math:`= 2\sum\min / (\sum p + \sum y)`; ``soft_mIoU``/``soft_mDice`` average the classes;
* over the *band* entries, those with a target :math:`y_{ik}` strictly inside ``band``
  (default (0.2, 0.8), the partial-volume pixels): ``MAE_band`` :math:`=` mean :math:`|p_{ik}-y_{ik}|`,
  ``extreme_band`` = share of predictions below ``extreme`` or above ``1 - extreme``, and
  ``slope_band`` = least-squares slope of :math:`p` on :math:`y` (1: the prediction follows the
  target; larger: it is pushed towards 0 and 1; smaller: towards a constant);
* ``curve``: mean and standard deviation of :math:`p_{ik}` per bin of :math:`y_{ik}`
  (the "predicted against target probability" diagram), ``band_hist``: histogram of :math:`p_{ik}`
  over the band entries.

As an extra evaluator of :func:`jmlkit.engine.fit` (``evaluators={"soft": SoftLabelStats}``) it is computed in the
run's one evaluation pass, on data sets whose items have a ``"soft"`` label (``needs_soft_labels``).

Example:
    >>> import torch
    >>> y = torch.tensor([[[0.3, 1.0]], [[0.7, 0.0]]]).reshape(1, 2, 1, 2)   # (B, K, H, W)
    >>> m = soft_label_metrics(y, y)                                          # a perfect prediction
    >>> [m[k].item() for k in ("L1", "soft_mIoU", "MAE_band", "slope_band")]
    [0.0, 1.0, 0.0, 1.0]
    >>> hard = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]]).reshape(1, 2, 1, 2)
    >>> round(soft_label_metrics(hard, y)["MAE_band"].item(), 4), soft_label_metrics(hard, y)["extreme_band"].item()
    (0.3, 1.0)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from jmlkit._checks import check_int, check_real
from jmlkit.metrics.functional._common import _columns, _scalar

__all__ = ["SoftLabelStats", "soft_label_metrics"]


class SoftLabelStats(Metric):
    """Streaming errors of predicted probabilities against soft labels (see the module docstring).

    A ``torchmetrics.Metric`` (states summed across processes): a few sums per class, ``n_bins x 4`` sums for
    the curve and ``hist_bins`` counts, whatever the number of pixels; ``update`` any number of batches, then
    ``compute()``. As an evaluator it takes the batch's soft labels (``needs_soft_labels``): the evaluation
    loop calls ``update(probs, soft, mask)`` with ``mask`` the pixels whose label is not ``ignore_index``.

    Args:
        num_classes: ``K``.
        band: open interval of target values whose entries are the partial-volume "band".
        extreme: a band prediction below ``extreme`` or above ``1 - extreme`` counts as pushed to 0/1.
        n_bins: bins of the target probability for ``curve``.
        hist_bins: bins of the predicted probability for ``band_hist``.
    """

    needs_soft_labels = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, num_classes: int, *, band: tuple[float, float] = (0.2, 0.8), extreme: float = 0.1,
                 n_bins: int = 10, hist_bins: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        num_classes = check_int("num_classes", num_classes, low=2)
        n_bins, hist_bins = check_int("n_bins", n_bins, low=1), check_int("hist_bins", hist_bins, low=1)
        if (not isinstance(band, (tuple, list)) or len(band) != 2
                or not 0.0 <= float(band[0]) < float(band[1]) <= 1.0):
            raise ValueError(f"Expected `band` to be a pair (low, high) with 0 <= low < high <= 1, but got {band!r}.")
        extreme = check_real("extreme", extreme, low=0.0, high=0.5, low_open=True, high_open=True)
        self.num_classes, self.n_bins, self.hist_bins = num_classes, n_bins, hist_bins
        self.band, self.extreme = (float(band[0]), float(band[1])), float(extreme)
        f64, k = torch.float64, num_classes
        for name, shape in (("n_pixels", ()), ("l1", ()), ("inter", (k,)), ("union", (k,)), ("sum_p", (k,)),
                            ("sum_y", (k,)), ("curve", (n_bins, 4)), ("band_sums", (7,)), ("hist", (hist_bins,))):
            # inter, union: sums of min(p, y), max(p, y); curve: count, sum y, sum p, sum p^2 per target bin;
            # band_sums: n, |p-y|, extreme, y, p, y^2, y*p over the band entries
            self.add_state(name, default=torch.zeros(shape, dtype=f64), dist_reduce_fx="sum")

    @torch.no_grad()
    def update(self, probs: Tensor, soft: Tensor, mask: Tensor | None = None) -> None:
        """Accumulate a batch: ``probs`` and ``soft`` ``(B, K, *spatial)``, ``mask`` bool ``(B, *spatial)``."""
        if not isinstance(probs, Tensor) or not isinstance(soft, Tensor):
            raise TypeError(f"Expected `probs` and `soft` to be tensors, but got {type(probs).__name__} and "
                            f"{type(soft).__name__}.")
        if probs.shape != soft.shape or probs.ndim < 2 or probs.shape[1] != self.num_classes:
            raise ValueError(f"Expected `probs` and `soft` of the same shape (B, {self.num_classes}, *spatial), but "
                             f"got {tuple(probs.shape)} and {tuple(soft.shape)}.")
        device = self.l1.device
        p = probs.detach().double().movedim(1, -1).reshape(-1, self.num_classes).to(device)
        y = soft.detach().double().movedim(1, -1).reshape(-1, self.num_classes).to(device)
        if mask is not None:
            if mask.shape != (probs.shape[0], *probs.shape[2:]):
                raise ValueError(f"Expected `mask` of shape {(probs.shape[0], *probs.shape[2:])}, but got {tuple(mask.shape)}.")
            keep = mask.detach().reshape(-1).to(device).bool()
            p, y = p[keep], y[keep]
        self.n_pixels += float(p.shape[0])
        self.l1 += 0.5 * (p - y).abs().sum()
        self.inter += torch.minimum(p, y).sum(0)
        self.union += torch.maximum(p, y).sum(0)
        self.sum_p += p.sum(0)
        self.sum_y += y.sum(0)
        pf, yf = p.reshape(-1), y.reshape(-1)
        b = (yf * self.n_bins).long().clamp_(0, self.n_bins - 1)
        for j, v in enumerate((torch.ones_like(yf), yf, pf, pf * pf)):
            self.curve[:, j] += torch.bincount(b, weights=v, minlength=self.n_bins)
        inside = (yf > self.band[0]) & (yf < self.band[1])
        pb, yb = pf[inside], yf[inside]
        ext = ((pb < self.extreme) | (pb > 1 - self.extreme)).double()
        self.band_sums += torch.stack([torch.tensor(float(pb.numel()), dtype=torch.float64, device=device), (pb - yb).abs().sum(),
                                       ext.sum(), yb.sum(), pb.sum(), (yb * yb).sum(), (yb * pb).sum()])
        hb = (pb * self.hist_bins).long().clamp_(0, self.hist_bins - 1)
        self.hist += torch.bincount(hb, minlength=self.hist_bins).double()

    def compute(self) -> dict[str, Any]:
        """``L1, soft_mIoU, soft_mDice, MAE_band, extreme_band, slope_band, band_fraction`` (0-d float64 tensors),
        ``soft_IoU_per_class``, ``soft_Dice_per_class`` (1-d tensors), ``curve`` and ``band_hist`` (tables: dicts of
        1-d column tensors), the forms of :mod:`jmlkit.metrics.tables`."""
        nan, device = float("nan"), self.l1.device
        n = int(self.n_pixels)
        present = self.union > 0
        iou = torch.where(present, self.inter / self.union.clamp(min=1e-300), torch.full_like(self.inter, nan)).cpu()
        denom = self.sum_p + self.sum_y
        dice = torch.where(denom > 0, 2 * self.inter / denom.clamp(min=1e-300), torch.full_like(self.inter, nan)).cpu()
        nb, s_abs, s_ext, s_y, s_p, s_yy, s_yp = self.band_sums.tolist()
        if nb > 0:
            var_y = s_yy / nb - (s_y / nb) ** 2
            slope = (s_yp / nb - (s_y / nb) * (s_p / nb)) / var_y if var_y > 1e-12 else nan
        else:
            slope = nan
        c = self.curve.cpu()
        count = c[:, 0].numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_y = np.where(count > 0, c[:, 1].numpy() / count, np.nan)
            mean_p = np.where(count > 0, c[:, 2].numpy() / count, np.nan)
            std_p = np.sqrt(np.clip(np.where(count > 0, c[:, 3].numpy() / count, np.nan) - mean_p**2, 0, None))
        edges = np.linspace(0, 1, self.n_bins + 1)
        curve = _columns(device, lower=edges[:-1], upper=edges[1:], count=count.astype(np.int64), target=mean_y,
                         predicted=mean_p, predicted_std=std_p)
        h_edges = np.linspace(0, 1, self.hist_bins + 1)
        hist = self.hist.cpu().numpy()
        band_hist = _columns(device, lower=h_edges[:-1], upper=h_edges[1:], count=hist.astype(np.int64),
                             density=hist / (hist.sum() * (1 / self.hist_bins)) if hist.sum() > 0
                             else np.zeros_like(hist))
        figures = {
            "L1": float(self.l1) / n if n else nan,
            "soft_mIoU": float(np.nanmean(iou.numpy())) if bool(present.any()) else nan,
            "soft_mDice": float(np.nanmean(dice.numpy())) if bool((denom > 0).any()) else nan,
            "MAE_band": s_abs / nb if nb else nan,
            "extreme_band": s_ext / nb if nb else nan,
            "slope_band": slope,
            "band_fraction": nb / (n * self.num_classes) if n else nan,
        }
        return {**{k: _scalar(v, device) for k, v in figures.items()},
                "soft_IoU_per_class": iou.to(device), "soft_Dice_per_class": dice.to(device),
                "curve": curve, "band_hist": band_hist}


def soft_label_metrics(probs: Tensor, soft: Tensor, mask: Tensor | None = None, **kwargs: Any) -> dict[str, Any]:
    """One-shot :class:`SoftLabelStats` (``kwargs`` go to its constructor); see the module example."""
    if not isinstance(probs, Tensor) or probs.ndim < 2:
        raise TypeError(f"Expected `probs` to be a tensor (B, K, *spatial), but got {type(probs).__name__}.")
    stats = SoftLabelStats(int(probs.shape[1]), **kwargs)
    stats.update(probs, soft, mask)
    return stats.compute()
