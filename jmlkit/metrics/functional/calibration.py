"""Calibration in two steps: per-batch histograms, then the scores (ECE, MCE, RMSCE, ACE, SCE, Brier, NLL, ...)."""
from __future__ import annotations

import math
import warnings
from typing import Literal, Optional

import numpy as np
import torch
from torch import Tensor

from jmlkit._checks import check_choice, check_ignore_index, check_int
from jmlkit.metrics.functional._common import (
    DEFAULT_FINE_BINS, NLL_EPS, Region, SUM_ATOL, _NORMS, _check_probs_shape, _check_probs_values,
    _check_region, _check_target, _columns, _scalar, class_argmax, class_square_sum,
)
from jmlkit.metrics.functional.regions import boundary_distance, region_mask

#: Elements of the class-wise binning's keys built at once, whole images at a time (at least one): 2**18, 1 MB of
#: int32 keys and 2 MB of their float64 values, stay in a core's cache between the key pass and the sum; 2**22 made
#: the class-wise binning of (250, 11, 32, 32) probabilities 1.5x slower. The sums do not depend on it (each key is
#: one image's: its pixels are added in the same order).
_CHUNK = 2**18

# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------
def fine_bins_for(n_bins: int, fine_bins: int = DEFAULT_FINE_BINS) -> int:
    """Number of fine bins actually used: the smallest multiple of ``n_bins`` >= ``fine_bins``."""
    n_bins, fine_bins = check_int("n_bins", n_bins, low=1), check_int("fine_bins", fine_bins, low=1)
    return n_bins * max(1, math.ceil(fine_bins / n_bins))


def _prepare_probs(probs, target, num_classes, ignore_index, from_logits, validate, mask=None):
    """Validate and flatten. Returns probs3 (B, C, S) float32/64, t (B, S) int64, valid (B, S) bool or None.

    ``num_classes`` and ``ignore_index`` are checked by the caller."""
    _check_target(target, num_classes, ignore_index, validate)
    _check_probs_shape("probs", probs, target, num_classes)
    B = target.shape[0]
    if probs.dtype not in (torch.float32, torch.float64):
        probs = probs.float()
    N = math.prod(target.shape[1:])  # explicit: reshape(B, C, -1) is ambiguous for an empty batch
    p3 = probs.reshape(B, num_classes, N)
    if from_logits:
        p3 = p3.softmax(dim=1)
    t = target.reshape(B, N).long()
    valid = None if ignore_index is None else t != ignore_index
    if mask is not None:
        if mask.shape != target.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"Expected `mask` to be a bool tensor of shape {tuple(target.shape)}, but got "
                f"{mask.dtype} {tuple(mask.shape)}."
            )
        m = mask.reshape(B, N)
        valid = m if valid is None else valid & m
    if validate and not from_logits:
        _check_probs_values(p3, valid if valid is not None else torch.ones_like(t, dtype=torch.bool))
    if valid is not None and bool(valid.all()):  # nothing ignored in this batch: no masking pass downstream
        valid = None
    return p3, t, valid


def _top_label_correct(p3: Tensor, conf: Tensor, p_y: Tensor, t: Tensor) -> Tensor:
    """``argmax_k p_k == t`` as int64 (B, S), without the slow ``max(dim=1)`` with indices.

    A pixel is correct when its true class attains the maximum ``conf``; where the maximum
    could be tied (``conf <= 0.5 + SUM_ATOL``), ``argmax`` (first maximal index) decides, as in
    ``torch.max``. Only those few pixels are re-examined.
    """
    correct = p_y >= conf
    amb = correct & (conf <= 0.5 + SUM_ATOL)
    if bool(amb.any()):
        correct = torch.where(amb, class_argmax(p3) == t, correct)
    return correct.long()


def _top_label_hist(conf: Tensor, correct: Tensor, valid: Optional[Tensor], group: Optional[Tensor],
                    n_groups: int, n_bins: int, coarsen: int = 1) -> Tensor:
    """(n_groups, n_bins, 3) float64 histogram [count, sum conf, sum correct] of top-label confidences.

    ``coarsen``: each bin is ``coarsen`` consecutive bins of the ``n_bins * coarsen``-bin histogram (a pixel lands
    in the same bin as there), without building that finer histogram."""
    n = n_groups * n_bins
    fine = n_bins * coarsen
    key = (conf * fine).long().clamp_(0, fine - 1)
    if coarsen > 1:
        key = key.floor_divide_(coarsen)
    if group is not None:
        key.add_(group * n_bins)
    key = key.mul_(2).add_(correct)  # 2 * bin + correct
    if valid is not None:
        key.masked_fill_(~valid, 2 * n)
    key = key.reshape(-1)
    cc = torch.bincount(key, minlength=2 * n + 1)[: 2 * n].view(n, 2)
    s = torch.bincount(key, weights=conf.reshape(-1).double(), minlength=2 * n + 1)[: 2 * n].view(n, 2).sum(1)
    count = (cc[:, 0] + cc[:, 1]).double()
    return torch.stack([count, s, cc[:, 1].double()], dim=1).view(n_groups, n_bins, 3)


def _ece_from_hist(h: Tensor, norm: str = "l1") -> Tensor:
    """Calibration error per leading index of a (..., n_bins, 3) histogram; 0 where empty."""
    count, s_conf, s_acc = h.unbind(-1)
    n = count.sum(-1)
    gap = (s_acc - s_conf).abs() / count.clamp(min=1)
    w = count / n.clamp(min=1).unsqueeze(-1)
    if norm == "l1":
        return (w * gap).sum(-1)
    if norm == "l2":
        return (w * gap**2).sum(-1).sqrt()
    return gap.amax(-1)


def calibration_stats(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    n_bins: int = 15,
    fine_bins: int = DEFAULT_FINE_BINS,
    ignore_index: Optional[int] = None,
    mask: Optional[Tensor] = None,
    from_logits: bool = False,
    classwise: bool = True,
    scores: bool = True,
    per_image: bool = True,
    validate_args: bool = True,
    preds: Optional[Tensor] = None,
) -> dict:
    r"""Histogram statistics of one batch for :func:`calibration_scores`.

    Args:
        probs: probabilities ``(B, C, *spatial)`` (logits with ``from_logits=True``).
        target: class indices ``(B, *spatial)``.
        num_classes: ``C``.
        n_bins: equal-width bins of the reported ECE/RMSCE/MCE/SCE.
        fine_bins: resolution of the top-label histogram (rounded up to a multiple of
            ``n_bins``, see :func:`fine_bins_for`); it yields the equal-mass bins of ACE.
        ignore_index: label value left out.
        mask: optional bool ``(B, *spatial)``, True = measured (e.g. a boundary band).
        from_logits: apply a softmax over dim 1 first.
        classwise: also build the class-wise histogram (SCE); costs a pass over ``B x C x pixels``.
        scores: also accumulate the Brier score and the NLL.
        per_image: also compute per-image ECE (and SCE) values.
        validate_args: check shapes, dtypes, ranges and that probabilities sum to one.
        preds: the argmax of ``probs`` over dim 1 ``(B, *spatial)``, when the caller has it already (the evaluation
            pass shares one with the accuracy metrics); it is trusted, not checked.

    Returns:
        dict of float64 tensors:

        * ``"top"`` ``(fine, 3)``: [count, sum of confidence, number correct] per fine bin;
        * ``"classwise"`` ``(C, n_bins, 2)``: [sum of :math:`p_k`, number with :math:`y = k`]
          over the pixels whose :math:`p_k` falls in the bin;
        * ``"scores"`` ``(3,)``: [pixels, sum of Brier, sum of NLL];
        * ``"image"`` ``(B, 3)``: [valid pixels, ECE, SCE] per image.

    A pixel is correct when the argmax of its probabilities is its label (ties go to the
    lowest class index, as ``torch.argmax``). Cost: a few passes over the ``B x C x pixels``
    probabilities (range and sum checks, max, and with ``classwise`` the class-wise binning);
    everything else is per pixel. Sums are accumulated in float64.
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    n_bins = check_int("n_bins", n_bins, low=1)
    fine_bins = check_int("fine_bins", fine_bins, low=1)
    ignore_index = check_ignore_index(ignore_index)
    p3, t, valid = _prepare_probs(probs, target, num_classes, ignore_index, from_logits, validate_args, mask)
    B, C, S = p3.shape
    fb = fine_bins_for(n_bins, fine_bins)
    k = fb // n_bins
    dev = p3.device
    conf = p3.amax(dim=1)
    t_safe = t if valid is None else t.masked_fill(~valid, 0)
    p_y = p3.gather(1, t_safe.unsqueeze(1)).squeeze(1)
    if preds is not None:
        if tuple(preds.shape) != tuple(target.shape):
            raise ValueError(f"Expected `preds` of shape {tuple(target.shape)} (the shape of `target`), but got "
                             f"{tuple(preds.shape)}.")
        correct = (preds.reshape(B, S) == t_safe).long()
    else:
        correct = _top_label_correct(p3, conf, p_y, t_safe)
    out: dict = {}
    out["top"] = _top_label_hist(conf, correct, valid, None, 1, fb)[0]
    if per_image:  # per image at the reported bins only: a (B, fine bins) histogram costs more than the pixels
        img = torch.arange(B, device=dev).unsqueeze(1).expand(B, S)
        h = _top_label_hist(conf, correct, valid, img, B, n_bins, coarsen=k)  # (B, n_bins, 3)
        ece_i = _ece_from_hist(h)
        n_i = h[:, :, 0].sum(1)
    if classwise:
        # Only the signed residual per (class, bin) is needed:
        # (|B|/N) |mean(y) - mean(p)| = |sum(y) - sum(p)| / N.
        nc = C * n_bins
        cls_off = (torch.arange(C, device=dev) * n_bins).view(C, 1)
        y_key = (t_safe * n_bins + (p_y * n_bins).long().clamp_(0, n_bins - 1)).add_(
            torch.arange(B, device=dev).unsqueeze(1) * nc
        )
        if valid is not None:
            y_key.masked_fill_(~valid, B * nc)
        s_y = torch.bincount(y_key.reshape(-1), minlength=B * nc + 1)[: B * nc].view(B, nc).double()
        s_p = torch.zeros(B * (nc + 1), dtype=torch.float64, device=dev)
        step = max(1, _CHUNK // max(C * S, 1))  # images per chunk: the (chunk x C x pixels) keys stay small
        index_dtype = torch.int32 if B * (nc + 1) < 2**31 else torch.int64
        cls_key = cls_off.to(index_dtype)
        for b0 in range(0, B, step):
            pb = p3[b0:b0 + step]
            key = (pb * n_bins).to(index_dtype).clamp_(0, n_bins - 1).add_(cls_key)  # int32: half the bytes
            if valid is not None:
                key.masked_fill_(~valid[b0:b0 + step].unsqueeze(1), nc)
            key.add_((torch.arange(b0, b0 + len(pb), device=dev, dtype=index_dtype) * (nc + 1)).view(-1, 1, 1))
            s_p.index_add_(0, key.reshape(-1), pb.reshape(-1).double())
        s_p = s_p.view(B, nc + 1)
        cw = torch.stack([s_p[:, :nc], s_y], dim=-1).view(B, C, n_bins, 2)
        out["classwise"] = cw.sum(0)
        if per_image:
            sce_i = (cw[..., 1] - cw[..., 0]).abs().sum(-1).mean(-1) / n_i.clamp(min=1)
    if scores:
        sq = class_square_sum(p3).double()  # sum_k p_k^2
        brier = sq - 2 * p_y.double() + 1.0
        nll = -torch.log(p_y.double().clamp(min=NLL_EPS))
        if valid is not None:
            brier, nll = brier.masked_fill_(~valid, 0.0), nll.masked_fill_(~valid, 0.0)
            n = valid.sum().double()
        else:
            n = torch.tensor(float(t.numel()), dtype=torch.float64, device=dev)
        out["scores"] = torch.stack([n, brier.sum(), nll.sum()])
    if per_image:
        sce_col = sce_i if classwise else torch.zeros_like(ece_i)
        out["image"] = torch.stack([n_i, ece_i, sce_col], dim=1)
    return out


def _ace_from_fine(top: Tensor, n_bins: int) -> tuple[float, float]:
    """Adaptive calibration error with equal-mass bins from a fine histogram, and its error bound."""
    count, s_conf, s_acc = top.double().unbind(-1)
    total = float(count.sum())
    if total == 0:
        return float("nan"), float("nan")
    zero = torch.zeros(1, dtype=torch.float64, device=top.device)
    cum = [torch.cat([zero, x.cumsum(0)]) for x in (count, s_conf, s_acc)]
    cuts = torch.linspace(0.0, total, n_bins + 1, dtype=torch.float64, device=top.device)
    # fine bin j covers cumulative counts (cum_n[j], cum_n[j+1]]; split it linearly at each cut
    j = torch.searchsorted(cum[0], cuts, right=False).clamp_(1, count.numel()) - 1
    frac = ((cuts - cum[0][j]) / count[j].clamp(min=1e-300)).clamp_(0, 1)
    at = [c[j] + frac * x[j] for c, x in zip(cum, (count, s_conf, s_acc))]
    d_conf, d_acc = at[1].diff(), at[2].diff()
    ace = float((d_acc - d_conf).abs().sum() / total)
    split = j[1:-1][(frac[1:-1] > 0) & (frac[1:-1] < 1)]  # one entry per cut that splits a fine bin
    bound = float(2 * count[split].sum() / total)
    return ace, bound


def reliability_table(top: Tensor, n_bins: int) -> dict[str, Tensor]:
    """Reliability-diagram table from a (fine, 3) or (n_bins, 3) top-label histogram, as a dict of 1-d column
    tensors on the device of ``top`` (:func:`jmlkit.metrics.as_table` makes it a DataFrame).

    Columns: ``bin``, ``lower``, ``upper``, ``count``, ``fraction``, ``confidence`` (mean),
    ``accuracy``, ``gap`` (= accuracy - confidence). Empty bins have ``count`` 0 and NaN
    confidence, accuracy and gap.
    """
    n_bins = check_int("n_bins", n_bins, low=1)
    h = top.double().cpu().view(n_bins, -1, 3).sum(1)
    count, s_conf, s_acc = h.unbind(-1)
    total = float(count.sum())
    c = count.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(c > 0, s_conf.numpy() / c, np.nan)
        acc = np.where(c > 0, s_acc.numpy() / c, np.nan)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return _columns(
        top.device,
        bin=np.arange(n_bins, dtype=np.int64),
        lower=edges[:-1],
        upper=edges[1:],
        count=c.astype(np.int64),
        fraction=c / total if total > 0 else np.zeros(n_bins),
        confidence=conf,
        accuracy=acc,
        gap=acc - conf,
    )


def calibration_scores(
    top: Tensor,
    n_bins: int,
    *,
    classwise: Optional[Tensor] = None,
    scores: Optional[Tensor] = None,
    image: Optional[Tensor] = None,
) -> dict:
    r"""Calibration figures from accumulated :func:`calibration_stats`.

    With top-label confidence :math:`c_i = \max_k p_{ik}`, correctness :math:`a_i`,
    :math:`B_b` the pixels whose confidence falls in bin :math:`[b/M, (b+1)/M)`
    (confidence 1 falls in the last bin) and :math:`N` valid pixels:

    * ``ECE_D`` :math:`= \sum_b \frac{|B_b|}{N} |\bar a_b - \bar c_b|` (L1),
      ``RMSCE_D`` :math:`= \sqrt{\sum_b \frac{|B_b|}{N} (\bar a_b - \bar c_b)^2}` (L2),
      ``MCE_D`` :math:`= \max_{b: |B_b|>0} |\bar a_b - \bar c_b|`.
    * ``ACE_D``: the same L1 sum over :math:`M` equal-mass bins (quantiles of the
      confidence). It is computed from the fine histogram, splitting the fine bin that
      straddles each quantile linearly; ``ACE_D_error_bound`` bounds the difference to
      the exact equal-mass ACE (confidences sorted, cut into :math:`M` chunks of :math:`N/M`):
      :math:`|\Delta| \le 2 \sum_{\text{cuts}} n_{j(\text{cut})} / N`, where :math:`n_{j(\text{cut})}`
      is the count of the fine bin (width :math:`1/\text{fine}`) that a cut splits. Only the
      pixels of that bin can be on the wrong side of the cut, and each changes the sum by
      at most :math:`2/N`. With 10^4 fine bins and smooth confidences the bound is ~1e-3 or less.
    * ``SCE_D``: static class-wise ECE, :math:`\frac1C\sum_k \sum_b \frac{|B_{kb}|}{N}|\bar y_{kb} - \bar p_{kb}|`,
      binning :math:`p_{ik}` of every pixel against :math:`1[y_i = k]`.
    * ``ECE_I``/``SCE_I``: the same per image, averaged over images with a valid pixel.
    * ``Brier`` :math:`= \frac1N \sum_i \sum_k (p_{ik} - 1[y_i=k])^2` (multi-class, in [0, 2],
      the convention of ``sklearn.metrics.brier_score_loss`` for 2-D probabilities);
      ``NLL`` :math:`= -\frac1N \sum_i \log \max(p_{i y_i}, 10^{-12})`.
    * ``Acc`` and ``Confidence``: top-label accuracy and mean confidence; ``n_pixels``.
    * ``reliability``: :func:`reliability_table`.

    Returns a dict of tensors (the forms of :mod:`jmlkit.metrics.tables`): each figure a 0-d float64 tensor,
    ``n_pixels`` and ``n_images`` 0-d int64, ``reliability`` a dict of 1-d column tensors.

    Edge cases: confidence 0 and 1 fall in the first and last bin; empty bins do not
    contribute (and are skipped by the max); an image with no valid pixel is left out of
    ``ECE_I``/``SCE_I``. Without any valid pixel all figures are NaN (with a ``UserWarning``).
    """
    n_bins = check_int("n_bins", n_bins, low=1)
    top = top.double()
    total = float(top[:, 0].sum())
    dev = top.device

    def nan() -> Tensor:
        return torch.tensor(float("nan"), dtype=torch.float64, device=dev)

    out: dict = {}
    if total == 0:
        warnings.warn("CalibrationMetrics: no valid pixel was seen; every figure is NaN.", UserWarning, stacklevel=2)
    coarse = top.view(n_bins, -1, 3).sum(1)
    ok = total > 0
    out["ECE_D"] = _ece_from_hist(coarse, "l1") if ok else nan()
    out["RMSCE_D"] = _ece_from_hist(coarse, "l2") if ok else nan()
    out["MCE_D"] = _ece_from_hist(coarse, "max") if ok else nan()
    out["ACE_D"], out["ACE_D_error_bound"] = (_scalar(v, dev) for v in _ace_from_fine(top, n_bins))
    out["Acc"] = top[:, 2].sum() / total if ok else nan()
    out["Confidence"] = top[:, 1].sum() / total if ok else nan()
    if classwise is not None:
        cw = classwise.double()
        out["SCE_D"] = (cw[..., 1] - cw[..., 0]).abs().sum(-1).mean().to(dev) / total if ok else nan()
    if image is not None:
        image = image.double()
        good = image[:, 0] > 0
        out["ECE_I"] = image[good, 1].mean().to(dev) if bool(good.any()) else nan()
        if classwise is not None:
            out["SCE_I"] = image[good, 2].mean().to(dev) if bool(good.any()) else nan()
        out["n_images"] = torch.tensor(int(good.sum()), dtype=torch.int64, device=dev)
    if scores is not None:
        scores = scores.double()
        n = float(scores[0])
        out["Brier"] = (scores[1] / n).to(dev) if n > 0 else nan()
        out["NLL"] = (scores[2] / n).to(dev) if n > 0 else nan()
    out["n_pixels"] = torch.tensor(int(total), dtype=torch.int64, device=dev)
    out["reliability"] = reliability_table(top, n_bins)
    return out


def calibration_metrics(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    n_bins: int = 15,
    ignore_index: Optional[int] = None,
    region: Region = "all",
    boundary_width: int = 3,
    from_logits: bool = False,
    fine_bins: int = DEFAULT_FINE_BINS,
    validate_args: bool = True,
) -> dict:
    """One-shot :class:`~jmlkit.metrics.CalibrationMetrics` (figures: :func:`calibration_scores`).

    Example:
        >>> probs = torch.tensor([[[0.9, 0.6], [0.1, 0.4]]])  # (B=1, C=2, 2 pixels)
        >>> target = torch.tensor([[0, 1]])
        >>> m = calibration_metrics(probs, target, 2, n_bins=10)
        >>> round(m["ECE_D"].item(), 4), round(m["Brier"].item(), 4)
        (0.35, 0.37)
    """
    region, boundary_width = _check_region(region, boundary_width)
    mask = region_mask(target, region, boundary_width) if region != "all" else None
    st = calibration_stats(
        probs, target, num_classes, n_bins=n_bins, fine_bins=fine_bins, ignore_index=ignore_index,
        mask=mask, from_logits=from_logits, validate_args=validate_args,
    )
    return calibration_scores(st["top"], n_bins, classwise=st["classwise"], scores=st["scores"], image=st["image"])


def top_label_calibration_error(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    n_bins: int = 15,
    norm: Literal["l1", "l2", "max"] = "l1",
    ignore_index: Optional[int] = None,
    from_logits: bool = False,
    validate_args: bool = True,
) -> Tensor:
    """Top-label ECE (``l1``), RMSCE (``l2``) or MCE (``max``) alone, as a 0-d float64 tensor.

    Example:
        >>> probs = torch.tensor([[[0.9, 0.6], [0.1, 0.4]]])
        >>> top_label_calibration_error(probs, torch.tensor([[0, 1]]), 2, n_bins=10)
        tensor(0.3500, dtype=torch.float64)
    """
    norm = check_choice("norm", norm, _NORMS)
    st = calibration_stats(
        probs, target, num_classes, n_bins=n_bins, fine_bins=n_bins, ignore_index=ignore_index,
        from_logits=from_logits, classwise=False, scores=False, per_image=False, validate_args=validate_args,
    )
    if float(st["top"][:, 0].sum()) == 0:
        return torch.tensor(float("nan"), dtype=torch.float64, device=st["top"].device)
    return _ece_from_hist(st["top"].double(), norm)


def boundary_distance_stats(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    max_distance: int = 10,
    n_bins: int = 15,
    ignore_index: Optional[int] = None,
    from_logits: bool = False,
    validate_args: bool = True,
) -> Tensor:
    """(max_distance + 1, n_bins, 3) float64 top-label histogram per boundary distance 1..max_distance+1."""
    num_classes = check_int("num_classes", num_classes, low=2)
    n_bins = check_int("n_bins", n_bins, low=1)
    max_distance = check_int("max_distance", max_distance, low=1)
    ignore_index = check_ignore_index(ignore_index)
    p3, t, valid = _prepare_probs(probs, target, num_classes, ignore_index, from_logits, validate_args)
    B = t.shape[0]
    dist = boundary_distance(target, max_distance).reshape(B, t.shape[1]) - 1
    conf = p3.amax(dim=1)
    t_safe = t if valid is None else t.masked_fill(~valid, 0)
    p_y = p3.gather(1, t_safe.unsqueeze(1)).squeeze(1)
    correct = _top_label_correct(p3, conf, p_y, t_safe)
    return _top_label_hist(conf, correct, valid, dist, max_distance + 1, n_bins)


def boundary_distance_table(hist: Tensor) -> dict[str, Tensor]:
    """Per-distance calibration table from :func:`boundary_distance_stats` (summed over batches), as a dict of 1-d
    column tensors on the device of ``hist`` (:func:`jmlkit.metrics.as_table` makes it a DataFrame).

    Columns: ``distance`` (1 .. max_distance, and max_distance + 1 = farther), ``count``,
    ``accuracy``, ``confidence``, ``ECE`` (L1, equal-width bins). Distances with no pixel
    have count 0 and NaN elsewhere.
    """
    h = hist.double().cpu()
    count = h[:, :, 0].sum(1)
    c = count.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(c > 0, h[:, :, 2].sum(1).numpy() / c, np.nan)
        conf = np.where(c > 0, h[:, :, 1].sum(1).numpy() / c, np.nan)
        ece = np.where(c > 0, _ece_from_hist(h).numpy(), np.nan)
    return _columns(hist.device, distance=np.arange(1, h.shape[0] + 1, dtype=np.int64), count=c.astype(np.int64),
                    accuracy=acc, confidence=conf, ECE=ece)


def calibration_by_boundary_distance(
    probs: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    max_distance: int = 10,
    n_bins: int = 15,
    ignore_index: Optional[int] = None,
    from_logits: bool = False,
    validate_args: bool = True,
) -> dict[str, Tensor]:
    """Top-label calibration as a function of the distance to the nearest label change.

    Distances are Chebyshev distances (:func:`boundary_distance`), capped at
    ``max_distance + 1``. Returns :func:`boundary_distance_table`. For a whole data set use
    the streaming :class:`~jmlkit.metrics.BoundaryCalibration`.

    Example:
        >>> probs = torch.full((1, 2, 1, 4), 0.5)
        >>> df = calibration_by_boundary_distance(probs, torch.tensor([[[0, 0, 1, 1]]]), 2, max_distance=2)
        >>> df["count"].tolist()
        [2, 2, 0]
    """
    h = boundary_distance_stats(
        probs, target, num_classes, max_distance=max_distance, n_bins=n_bins, ignore_index=ignore_index,
        from_logits=from_logits, validate_args=validate_args,
    )
    return boundary_distance_table(h)
