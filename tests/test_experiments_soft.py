"""Errors of predictions against soft labels (jmlkit.experiments.soft): a reference implementation, streaming, masks, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jmlkit import experiments as ex


# ------------------------------------------------------------------ soft-label errors


def _reference(p: torch.Tensor, y: torch.Tensor, band=(0.2, 0.8), extreme=0.1) -> dict:
    p2 = p.movedim(1, -1).reshape(-1, p.shape[1]).double().numpy()
    y2 = y.movedim(1, -1).reshape(-1, p.shape[1]).double().numpy()
    inside = (y2 > band[0]) & (y2 < band[1])
    pb, yb = p2[inside], y2[inside]
    inter, union = np.minimum(p2, y2).sum(0), np.maximum(p2, y2).sum(0)
    return {"L1": 0.5 * np.abs(p2 - y2).sum(1).mean(), "soft_mIoU": (inter / union).mean(),
            "soft_mDice": (2 * inter / (p2.sum(0) + y2.sum(0))).mean(), "MAE_band": np.abs(pb - yb).mean(),
            "extreme_band": ((pb < extreme) | (pb > 1 - extreme)).mean(), "slope_band": np.polyfit(yb, pb, 1)[0]}


def test_soft_label_stats_match_a_reference_and_stream():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(3 * torch.randn(6, 4, 9, 7, generator=g), 1)
    y = torch.softmax(2 * torch.randn(6, 4, 9, 7, generator=g), 1)
    ref = _reference(p, y)
    one = ex.soft_label_metrics(p, y)
    for key, value in ref.items():
        assert one[key].dtype == torch.float64 and one[key].ndim == 0, key
        assert one[key].item() == pytest.approx(value, rel=1e-9, abs=1e-12), key
    stats = ex.SoftLabelStats(4)
    for i in range(0, 6, 4):  # batches of 4 and 2
        stats.update(p[i:i + 4], y[i:i + 4])
    streamed = stats.compute()
    for key in ref:
        assert streamed[key].item() == pytest.approx(one[key].item(), rel=1e-9), key
    assert streamed["curve"]["count"].sum() == p.numel()
    assert streamed["band_hist"]["count"].sum() == ((y > 0.2) & (y < 0.8)).sum()
    assert streamed["band_hist"]["density"].mean() == pytest.approx(1.0)


def test_soft_label_stats_mask_identity_and_bias():
    g = torch.Generator().manual_seed(1)
    y = torch.softmax(torch.randn(2, 3, 8, 8, generator=g), 1)
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[0] = True
    assert ex.soft_label_metrics(y, y, mask)["L1"] == 0.0
    p = torch.softmax(torch.randn(2, 3, 8, 8, generator=g), 1)
    masked = ex.soft_label_metrics(p, y, mask)
    assert masked["L1"] == pytest.approx(ex.soft_label_metrics(p[:1], y[:1])["L1"])
    # soft IoU = the Jaccard index with the JML intersection (|p| + |y| - |p - y|) / 2
    inter = (p.sum((0, 2, 3)) + y.sum((0, 2, 3)) - (p - y).abs().sum((0, 2, 3))) / 2
    iou = inter / (p.sum((0, 2, 3)) + y.sum((0, 2, 3)) - inter)
    assert ex.soft_label_metrics(p, y)["soft_IoU_per_class"].tolist() == pytest.approx(iou.double().tolist(), rel=1e-6)
    # the one-hot of the argmax is pushed to 0/1: every band entry is extreme and the slope is steep
    hard = torch.nn.functional.one_hot(y.argmax(1), 3).permute(0, 3, 1, 2).float()
    m = ex.soft_label_metrics(hard, y)
    assert m["extreme_band"] == 1.0 and m["slope_band"] > 1.0


def test_soft_label_stats_errors():
    with pytest.raises(ValueError, match="`band`"):
        ex.SoftLabelStats(3, band=(0.8, 0.2))
    with pytest.raises(ValueError, match="`extreme`"):
        ex.SoftLabelStats(3, extreme=0.5)
    with pytest.raises(ValueError, match="`num_classes`"):
        ex.SoftLabelStats(1)
    stats = ex.SoftLabelStats(3)
    with pytest.raises(ValueError, match="same shape"):
        stats.update(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match="`mask`"):
        stats.update(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.ones(1, 4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="tensors"):
        stats.update(np.zeros((1, 3, 4, 4)), torch.rand(1, 3, 4, 4))


def test_soft_label_stats_argument_types():
    with pytest.raises(TypeError, match="`num_classes`"):
        ex.SoftLabelStats(3.0)
    with pytest.raises(TypeError, match="`extreme`"):
        ex.SoftLabelStats(3, extreme="0.1")
    with pytest.raises(TypeError, match="`probs`"):
        ex.soft_label_metrics(torch.rand(3), torch.rand(3))
