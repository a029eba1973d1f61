"""jmlkit.metrics against independent implementations (torchmetrics, scikit-learn, plain numpy)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, brier_score_loss, confusion_matrix, log_loss
from torchmetrics.classification import MulticlassCalibrationError, MulticlassJaccardIndex
from torchmetrics.functional.segmentation import mean_iou as tm_mean_iou

from jmlkit.metrics import (
    BoundaryCalibration,
    CalibrationMetrics,
    SegmentationMetrics,
    TopLabelCalibrationError,
    as_table,
    boundary_distance,
    boundary_mask,
    calibration_by_boundary_distance,
    calibration_metrics,
    segmentation_metrics,
    top_label_calibration_error,
)
from jmlkit.metrics.functional import segmentation_scores, segmentation_stats

C = 5
IGN = 255


def make_batches(seed=0, n_batches=3, B=4, H=9, W=11, C=C, ignore=True, sharp=2.0):
    """Seeded batches: blobby targets using a random subset of classes per image, noisy logits."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        coarse = torch.randint(0, C, (B, 1, 3, 3), generator=g).float()
        target = torch.nn.functional.interpolate(coarse, size=(H, W), mode="nearest").squeeze(1).long()
        noise = torch.rand(B, H, W, generator=g) < 0.1
        target = torch.where(noise, torch.randint(0, C, (B, H, W), generator=g), target)
        if ignore:
            target[torch.rand(B, H, W, generator=g) < 0.1] = IGN
        logits = sharp * torch.randn(B, C, H, W, generator=g)
        logits += 2.0 * torch.nn.functional.one_hot(target.clamp(max=C - 1), C).permute(0, 3, 1, 2)
        out.append((logits.softmax(1), target))
    return out


def make_sparse_batches(seed=0, n_batches=3, B=4, H=9, W=11, C=C, k=2, ignore=False, sharp=2.0):
    """Like :func:`make_batches`, but each target holds at most ``k`` of the ``C`` classes, so the noisy
    predictions hold classes their target lacks (where ``present="target"`` and ``"union"`` differ)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        subset = torch.stack([torch.randperm(C, generator=g)[:k] for _ in range(B)])  # (B, k)
        coarse = torch.randint(0, k, (B, 1, 3, 3), generator=g).float()
        idx = torch.nn.functional.interpolate(coarse, size=(H, W), mode="nearest").squeeze(1).long()
        target = subset.gather(1, idx.reshape(B, -1)).reshape(B, H, W)
        if ignore:
            target[torch.rand(B, H, W, generator=g) < 0.1] = IGN
        logits = sharp * torch.randn(B, C, H, W, generator=g)
        logits += 2.0 * torch.nn.functional.one_hot(target.clamp(max=C - 1), C).permute(0, 3, 1, 2)
        out.append((logits.softmax(1), target))
    return out


# ------------------------------------------------------------------ numpy references
def np_valid(target, ignore=IGN):
    return target != ignore


def np_seg_reference(batches, C, present="target", ignore=IGN):
    """Per-image loops. ``present="target"`` (Wang et al.): an image averages the classes of its target;
    ``"union"``: the classes of its target or its prediction."""
    imgs = []
    for probs, target in batches:
        pred = probs.argmax(1).numpy()
        for p, t in zip(pred, target.numpy()):
            v = t != ignore
            imgs.append((p[v], t[v]))
    img_iou, img_dice, cls_iou, cls_dice = [], [], [[] for _ in range(C)], [[] for _ in range(C)]
    for p, t in imgs:
        if t.size == 0:
            continue
        ious, dices = [], []
        for c in range(C):
            tp = np.sum((p == c) & (t == c))
            fp = np.sum((p == c) & (t != c))
            fn = np.sum((p != c) & (t == c))
            is_present = (tp + fp + fn) > 0 if present == "union" else (tp + fn) > 0
            if not is_present:
                continue
            iou, dice = tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)
            ious.append(iou), dices.append(dice)
            cls_iou[c].append(iou), cls_dice[c].append(dice)
        if ious:
            img_iou.append(np.mean(ious)), img_dice.append(np.mean(dices))
    srt = np.sort(img_iou)
    k = max(1, math.ceil(0.05 * len(srt)))
    return {
        "mIoU_I": np.mean(img_iou),
        "mDice_I": np.mean(img_dice),
        "mIoU_C": np.mean([np.mean(x) for x in cls_iou if x]),
        "mDice_C": np.mean([np.mean(x) for x in cls_dice if x]),
        "mIoU_I_worst5": srt[:k].mean(),
        "n_images": len(img_iou),
    }


def np_ece(conf, acc, n_bins, norm="l1"):
    b = np.clip(np.floor(conf * n_bins).astype(int), 0, n_bins - 1)
    tot, out = len(conf), []
    for k in range(n_bins):
        m = b == k
        if m.any():
            out.append((m.sum() / tot, abs(acc[m].mean() - conf[m].mean())))
    w, gap = np.array(out).T
    if norm == "l1":
        return float((w * gap).sum())
    if norm == "l2":
        return float(np.sqrt((w * gap**2).sum()))
    return float(gap.max())


def np_sce(p, y, n_bins):
    return float(np.mean([np_ece(p[:, k], (y == k).astype(float), n_bins) for k in range(p.shape[1])]))


def np_pixels(probs, target, ignore=IGN):
    p = probs.permute(0, 2, 3, 1).reshape(-1, probs.shape[1]).double().numpy()
    t = target.reshape(-1).numpy()
    v = t != ignore
    return p[v], t[v]


def np_calib_reference(batches, n_bins, ignore=IGN):
    P, T = zip(*(np_pixels(p, t, ignore) for p, t in batches))
    p, y = np.concatenate(P), np.concatenate(T)
    conf, acc = p.max(1), (p.argmax(1) == y).astype(float)
    ece_i, sce_i = [], []
    for probs, target in batches:
        for i in range(probs.shape[0]):
            pi, yi = np_pixels(probs[i : i + 1], target[i : i + 1], ignore)
            if len(yi):
                ece_i.append(np_ece(pi.max(1), (pi.argmax(1) == yi).astype(float), n_bins))
                sce_i.append(np_sce(pi, yi, n_bins))
    order = np.argsort(conf, kind="stable")
    ace = sum(abs((acc[ch] - conf[ch]).sum()) for ch in np.array_split(order, n_bins)) / len(conf)
    return {
        "ECE_D": np_ece(conf, acc, n_bins),
        "SCE_D": np_sce(p, y, n_bins),
        "ECE_I": float(np.mean(ece_i)),
        "SCE_I": float(np.mean(sce_i)),
        "ACE_exact": float(ace),
        "Acc": acc.mean(),
        "p": p,
        "y": y,
    }


# ------------------------------------------------------------------ segmentation
@pytest.fixture(scope="module")
def seg_batches():
    return make_batches(seed=1, n_batches=4)


def test_segmentation_vs_torchmetrics_and_sklearn(seg_batches):
    m = SegmentationMetrics(C, ignore_index=IGN)
    jac = MulticlassJaccardIndex(C, ignore_index=IGN, average="macro")
    for probs, target in seg_batches:
        m.update(probs, target)
        jac.update(probs, target)
    out = m.compute()
    p = torch.cat([pr.argmax(1) for pr, _ in seg_batches]).reshape(-1).numpy()
    t = torch.cat([tg for _, tg in seg_batches]).reshape(-1).numpy()
    v = t != IGN
    cm = confusion_matrix(t[v], p[v], labels=list(range(C)))
    np.testing.assert_array_equal(m.confmat.numpy(), cm)
    assert out["mIoU_D"] == pytest.approx(float(jac.compute()), abs=1e-6)
    assert out["Acc"] == pytest.approx(np.mean(t[v] == p[v]), abs=1e-12)
    assert out["mAcc_D"] == pytest.approx(balanced_accuracy_score(t[v], p[v]), abs=1e-12)
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    np.testing.assert_allclose(out["IoU_per_class"].numpy(), iou, atol=1e-6)
    dice = 2 * np.diag(cm) / (cm.sum(0) + cm.sum(1))
    assert out["mDice_D"] == pytest.approx(dice.mean(), abs=1e-12)
    assert out["n_pixels"] == int(v.sum())


@pytest.mark.parametrize("data", ["dense", "sparse"])
@pytest.mark.parametrize("present", ["target", "union"])
def test_segmentation_image_and_class_variants_vs_numpy(seg_batches, present, data):
    """Both definitions against per-image numpy loops; "sparse" targets hold 2 of the 5 classes each."""
    batches = list(seg_batches) if data == "dense" else make_sparse_batches(seed=7, n_batches=3, ignore=True)
    probs, target = batches[0]
    target = target.clone()
    target[1] = IGN  # an image whose pixels are all ignored
    batches[0] = (probs, target)
    m = SegmentationMetrics(C, ignore_index=IGN, present=present)
    for pr, tg in batches:
        m.update(pr, tg)
    out, ref = m.compute(), np_seg_reference(batches, C, present=present)
    for key, val in ref.items():
        assert out[key] == pytest.approx(val, abs=1e-10), key
    assert out["n_images"] == sum(b[1].shape[0] for b in batches) - 1


@pytest.mark.parametrize("present", ["target", "union"])
def test_segmentation_per_image_vs_torchmetrics_mean_iou(present):
    """Per-image, per-class IoU from torchmetrics' ``segmentation.mean_iou`` (-1 where the class is in neither
    the target nor the prediction); the classes each image averages are picked here from its target
    (``"target"``, Wang et al.) or from target and prediction (``"union"``)."""
    batches = make_sparse_batches(seed=6, n_batches=3, k=2)
    m = SegmentationMetrics(C, present=present)
    ious, in_target = [], []
    for probs, target in batches:
        m.update(probs, target)
        pred = probs.argmax(1)
        ious.append(tm_mean_iou(pred, target, num_classes=C, per_class=True, input_format="index").double())
        in_target.append(torch.nn.functional.one_hot(target, C).amax((1, 2)).bool())
    iou, in_target = torch.cat(ious), torch.cat(in_target)
    in_union = iou >= 0
    assert (in_union & ~in_target).any()  # predictions hold classes their target lacks: the options differ here
    held = in_target if present == "target" else in_union
    dice = 2 * iou / (1 + iou)
    img_iou = (iou * held).sum(1) / held.sum(1)
    img_dice = (dice * held).sum(1) / held.sum(1)
    if present == "union":  # torchmetrics' own per-image mean is the union definition
        tm_img = torch.cat([tm_mean_iou(p.argmax(1), t, num_classes=C, input_format="index") for p, t in batches])
        torch.testing.assert_close(img_iou, tm_img.double(), rtol=0, atol=1e-6)
    out = m.compute()
    assert out["mIoU_I"] == pytest.approx(float(img_iou.mean()), abs=1e-6)
    assert out["mDice_I"] == pytest.approx(float(img_dice.mean()), abs=1e-6)
    cls = [c for c in range(C) if held[:, c].any()]
    assert out["mIoU_C"] == pytest.approx(float(np.mean([iou[held[:, c], c].mean() for c in cls])), abs=1e-6)
    assert out["mDice_C"] == pytest.approx(float(np.mean([dice[held[:, c], c].mean() for c in cls])), abs=1e-6)
    k = max(1, math.ceil(0.05 * len(img_iou)))
    assert out["mIoU_I_worst5"] == pytest.approx(float(img_iou.sort().values[:k].mean()), abs=1e-6)


# Hand example: a prediction holding a class its target lacks. C = 3, two 2x2 images.
HAND_TARGET = torch.tensor([[[0, 0], [1, 1]], [[2, 2], [2, 0]]])
HAND_PREDS = torch.tensor([[[0, 2], [1, 1]], [[2, 2], [0, 0]]])
# Image A: target {0, 1}; the prediction also holds class 2 (one pixel of true class 0).
#   class 0: TP 1, FP 0, FN 1 -> IoU 1/2, Dice 2/3;   class 1: TP 2, FP 0, FN 0 -> IoU 1, Dice 1;
#   class 2: TP 0, FP 1, FN 0 -> IoU 0, Dice 0 (absent from the target).
#   "target": IoU (1/2 + 1)/2 = 3/4,      Dice (2/3 + 1)/2 = 5/6
#   "union":  IoU (1/2 + 1 + 0)/3 = 1/2,  Dice (2/3 + 1 + 0)/3 = 5/9
# Image B: target {0, 2}, prediction {0, 2}: the same under both definitions.
#   class 0: TP 1, FP 1, FN 0 -> IoU 1/2, Dice 2/3;   class 2: TP 2, FP 0, FN 1 -> IoU 2/3, Dice 4/5
#   IoU (1/2 + 2/3)/2 = 7/12,  Dice (2/3 + 4/5)/2 = 11/15
# mIoU_I:  "target" (3/4 + 7/12)/2 = 2/3      "union" (1/2 + 7/12)/2 = 13/24
# mDice_I: "target" (5/6 + 11/15)/2 = 47/60   "union" (5/9 + 11/15)/2 = 29/45
# mIoU_C (per class over the images holding it, then over classes):
#   "target": c0 (1/2 + 1/2)/2 = 1/2, c1 (A) 1, c2 (B only) 2/3       -> (1/2 + 1 + 2/3)/3 = 13/18
#   "union":  c0 1/2, c1 1, c2 (A and B) (0 + 2/3)/2 = 1/3            -> (1/2 + 1 + 1/3)/3 = 11/18
# mDice_C: "target" (2/3 + 1 + 4/5)/3 = 37/45; "union" c2 (0 + 4/5)/2 = 2/5 -> (2/3 + 1 + 2/5)/3 = 31/45
# mIoU_I_worst5 (ceil(5 % x 2) = 1 image): "target" min(3/4, 7/12) = 7/12; "union" min(1/2, 7/12) = 1/2
# mIoU_D (pooled; no `present`): c0 TP 2 / (3 + 3 - 2), c1 2/2, c2 2 / (3 + 3 - 2) -> (1/2 + 1 + 1/2)/3 = 2/3
HAND = {
    "target": {"mIoU_I": 2 / 3, "mDice_I": 47 / 60, "mIoU_C": 13 / 18, "mDice_C": 37 / 45, "mIoU_I_worst5": 7 / 12},
    "union": {"mIoU_I": 13 / 24, "mDice_I": 29 / 45, "mIoU_C": 11 / 18, "mDice_C": 31 / 45, "mIoU_I_worst5": 1 / 2},
}


@pytest.mark.parametrize("present", ["target", "union"])
def test_false_positive_class_hand_computed(present):
    one_shot = segmentation_metrics(HAND_PREDS, HAND_TARGET, 3, present=present)
    streaming = SegmentationMetrics(3, present=present)
    for i in range(2):  # one image per update
        streaming.update(HAND_PREDS[i : i + 1], HAND_TARGET[i : i + 1])
    probs = torch.nn.functional.one_hot(HAND_PREDS, 3).permute(0, 3, 1, 2).float()
    from_probs = segmentation_metrics(probs, HAND_TARGET, 3, present=present)
    for out in (one_shot, streaming.compute(), from_probs):
        for key, val in HAND[present].items():
            assert out[key] == pytest.approx(val, abs=1e-12), key
        assert out["mIoU_D"] == pytest.approx(2 / 3, abs=1e-12)
        assert out["n_images"] == 2


def test_default_present_is_target_wang_et_al():
    """Every entry point defaults to Wang et al.'s definition (classes of each image's target)."""
    assert SegmentationMetrics(3).present == "target"
    m = SegmentationMetrics(3)
    m.update(HAND_PREDS, HAND_TARGET)
    outs = [m.compute(), segmentation_metrics(HAND_PREDS, HAND_TARGET, 3),
            segmentation_scores(*segmentation_stats(HAND_PREDS, HAND_TARGET, 3))]
    for out in outs:
        for key, val in HAND["target"].items():
            assert out[key] == pytest.approx(val, abs=1e-12), key


def test_segmentation_pred_forms_agree(seg_batches):
    probs, target = seg_batches[0]
    a = segmentation_metrics(probs, target, C, ignore_index=IGN)
    b = segmentation_metrics(torch.log(probs) * 3.0, target, C, ignore_index=IGN)  # logits: same argmax
    c = segmentation_metrics(probs.argmax(1), target, C, ignore_index=IGN)
    for key in ("Acc", "mIoU_D", "mIoU_I", "mIoU_C", "mDice_C"):
        assert a[key] == b[key] == c[key]


def test_segmentation_large_class_path_matches():
    g = torch.Generator().manual_seed(3)
    Cbig = 300  # B * C * C > 2**22 -> the low-memory path
    target = torch.randint(0, Cbig, (50, 6, 6), generator=g)
    other = torch.randint(0, Cbig, (50, 6, 6), generator=g)
    preds = torch.where(torch.rand(50, 6, 6, generator=g) < 0.5, target, other)
    target[0, 0] = IGN
    small = SegmentationMetrics(Cbig, ignore_index=IGN)
    for i in range(0, 50, 5):  # B * C * C < 2**22 per call
        small.update(preds[i : i + 5], target[i : i + 5])
    big = SegmentationMetrics(Cbig, ignore_index=IGN)
    big.update(preds, target)
    torch.testing.assert_close(small.confmat, big.confmat)
    a, b = small.compute(), big.compute()
    for key in ("Acc", "mIoU_D", "mIoU_I", "mIoU_C", "mIoU_I_worst5"):
        assert a[key].item() == pytest.approx(b[key].item(), abs=1e-12)


def test_segmentation_reset_and_3d():
    m = SegmentationMetrics(3)
    m.update(torch.zeros(2, 4, 4, 4, dtype=torch.long), torch.ones(2, 4, 4, 4, dtype=torch.long))
    assert m.compute()["Acc"] == 0.0
    m.reset()
    m.update(torch.ones(1, 4, 4, 4, dtype=torch.long), torch.ones(1, 4, 4, 4, dtype=torch.long))
    out = m.compute()
    assert out["Acc"] == 1.0 and out["mIoU_D"] == 1.0 and out["mIoU_I"] == 1.0


# ------------------------------------------------------------------ calibration
@pytest.fixture(scope="module")
def cal_batches():
    return make_batches(seed=2, n_batches=3, C=C)


@pytest.mark.parametrize("norm,key", [("l1", "ECE_D"), ("l2", "RMSCE_D"), ("max", "MCE_D")])
def test_calibration_vs_torchmetrics(cal_batches, norm, key):
    ours = CalibrationMetrics(C, n_bins=15, ignore_index=IGN)
    light = TopLabelCalibrationError(C, n_bins=15, norm=norm, ignore_index=IGN)
    tm = MulticlassCalibrationError(C, n_bins=15, norm=norm, ignore_index=IGN)
    for probs, target in cal_batches:
        ours.update(probs, target)
        light.update(probs, target)
        tm.update(probs, target)
    expected = float(tm.compute())
    assert ours.compute()[key] == pytest.approx(expected, abs=1e-6)
    assert float(light.compute()) == pytest.approx(expected, abs=1e-6)


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")
def test_calibration_vs_sklearn_and_numpy(cal_batches):
    m = CalibrationMetrics(C, n_bins=10, ignore_index=IGN)
    for probs, target in cal_batches:
        m.update(probs, target)
    out = m.compute()
    ref = np_calib_reference(cal_batches, 10)
    p, y = ref["p"], ref["y"]
    assert out["Brier"] == pytest.approx(brier_score_loss(y, p, labels=list(range(C))), abs=1e-9)
    assert out["NLL"] == pytest.approx(log_loss(y, p, labels=list(range(C))), abs=1e-6)
    for key in ("ECE_D", "SCE_D", "ECE_I", "SCE_I", "Acc"):
        assert out[key] == pytest.approx(ref[key], abs=1e-9), key
    assert out["n_pixels"] == len(y) and out["n_images"] == 12
    assert abs(out["ACE_D"] - ref["ACE_exact"]) <= out["ACE_D_error_bound"] + 2 * 10 / len(y)
    assert list(out["reliability"]) == ["bin", "lower", "upper", "count", "fraction", "confidence", "accuracy", "gap"]
    rel = as_table(out["reliability"])
    assert rel["count"].sum() == len(y)
    b = np.clip(np.floor(p.max(1) * 10).astype(int), 0, 9)
    np.testing.assert_array_equal(rel["count"].to_numpy(), np.bincount(b, minlength=10))
    ne = rel["count"] > 0
    assert float((rel["fraction"][ne] * rel["gap"][ne].abs()).sum()) == pytest.approx(out["ECE_D"].item(), abs=1e-12)


def test_ace_matches_exact_with_bound_on_large_sample():
    g = torch.Generator().manual_seed(5)
    probs = (3 * torch.randn(2, 4, 100, 100, generator=g)).softmax(1)
    target = torch.randint(0, 4, (2, 100, 100), generator=g)
    out = calibration_metrics(probs, target, 4, n_bins=15)
    ref = np_calib_reference([(probs, target)], 15, ignore=-1)
    assert out["ACE_D_error_bound"] < 0.01
    assert abs(out["ACE_D"] - ref["ACE_exact"]) <= out["ACE_D_error_bound"] + 1e-12


def test_functional_equals_module_and_from_logits(cal_batches):
    probs, target = cal_batches[0]
    m = CalibrationMetrics(C, ignore_index=IGN, from_logits=True)
    m.update(torch.log(probs), target)
    a, b = m.compute(), calibration_metrics(probs, target, C, ignore_index=IGN)
    for key in ("ECE_D", "ECE_I", "RMSCE_D", "MCE_D", "ACE_D", "SCE_D", "SCE_I", "Brier", "NLL"):
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0, msg=key)
    torch.testing.assert_close(top_label_calibration_error(probs, target, C, ignore_index=IGN), b["ECE_D"], atol=1e-12, rtol=0)


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")
def test_regions_partition_pixels_and_match_reference(cal_batches):
    probs, target = cal_batches[0]
    res = {r: calibration_metrics(probs, target, C, ignore_index=IGN, region=r, boundary_width=1)
           for r in ("all", "boundary", "interior")}
    assert res["boundary"]["n_pixels"] + res["interior"]["n_pixels"] == res["all"]["n_pixels"]
    band = boundary_mask(target, 1)
    p, y = np_pixels(probs, torch.where(band, target, IGN))
    assert res["boundary"]["ECE_D"] == pytest.approx(np_ece(p.max(1), (p.argmax(1) == y).astype(float), 15), abs=1e-9)
    assert res["boundary"]["Brier"] == pytest.approx(brier_score_loss(y, p, labels=list(range(C))), abs=1e-9)


def np_boundary_distance(t, max_d):
    H, W = t.shape
    out = np.full((H, W), max_d + 1)
    for i in range(H):
        for j in range(W):
            for d in range(1, max_d + 1):
                win = t[max(0, i - d) : i + d + 1, max(0, j - d) : j + d + 1]
                if (win != t[i, j]).any():
                    out[i, j] = d
                    break
    return out


def test_boundary_mask_and_distance_vs_bruteforce(cal_batches):
    target = cal_batches[1][1][:2]
    dist = boundary_distance(target, max_distance=4)
    for i in range(2):
        ref = np_boundary_distance(target[i].numpy(), 4)
        np.testing.assert_array_equal(dist[i].numpy(), ref)
        np.testing.assert_array_equal(boundary_mask(target[i : i + 1], 2)[0].numpy(), ref <= 2)


def test_calibration_by_boundary_distance_streaming_equals_functional(cal_batches):
    m = BoundaryCalibration(C, max_distance=3, ignore_index=IGN)
    for probs, target in cal_batches:
        m.update(probs, target)
    df = as_table(m.compute())
    probs = torch.cat([p for p, _ in cal_batches])
    target = torch.cat([t for _, t in cal_batches])
    ref = as_table(calibration_by_boundary_distance(probs, target, C, max_distance=3, ignore_index=IGN))
    assert list(df["distance"]) == [1, 2, 3, 4]
    cols = ["count", "accuracy", "ECE"]
    np.testing.assert_allclose(df[cols].to_numpy(), ref[cols].to_numpy(), atol=1e-12)
    assert df["count"].sum() == int((target != IGN).sum())
    d1 = boundary_distance(target, 3) == 1
    p, y = np_pixels(probs, torch.where(d1, target, IGN))
    assert df["ECE"][0] == pytest.approx(np_ece(p.max(1), (p.argmax(1) == y).astype(float), 15), abs=1e-9)


# ------------------------------------------------------------------ edge cases
def test_confidence_exactly_zero_and_one():
    target = torch.tensor([[0, 1, 2, 1]])
    probs = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2, 0]]), 3).permute(0, 2, 1).float()
    out = calibration_metrics(probs, target, 3, n_bins=10)
    assert out["reliability"]["count"].tolist() == [0] * 9 + [4]  # confidence 1 -> last bin
    assert out["ECE_D"] == pytest.approx(0.25) and out["MCE_D"] == pytest.approx(0.25)
    assert out["NLL"] == pytest.approx(-math.log(1e-12) / 4)  # documented clamp of p_y = 0
    assert out["Brier"] == pytest.approx(0.5)
    assert math.isfinite(out["SCE_D"]) and math.isfinite(out["ACE_D"])


def test_ties_follow_argmax():
    probs = torch.full((1, 3, 2, 2), 1 / 3)  # uniform: argmax picks class 0
    target = torch.tensor([[[0, 1], [2, 0]]])
    cal = calibration_metrics(probs, target, 3)
    seg = segmentation_metrics(probs, target, 3)
    assert cal["Acc"] == seg["Acc"] == 0.5


def test_absent_class_and_all_ignored_image():
    target = torch.tensor([[[0, 0], [1, 1]], [[IGN, IGN], [IGN, IGN]]])
    preds = torch.tensor([[[0, 0], [1, 0]], [[2, 2], [2, 2]]])
    out = segmentation_metrics(preds, target, 4, ignore_index=IGN)
    iou = out["IoU_per_class"]
    assert torch.isnan(iou[2]) and torch.isnan(iou[3])  # never occurs (class 2 only predicted on ignored pixels)
    assert out["mIoU_D"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert out["n_images"] == 1
    for key in ("mIoU_I", "mIoU_C", "mDice_I", "mDice_C", "mIoU_I_worst5", "mAcc_D"):
        assert math.isfinite(out[key]), key
    probs = torch.nn.functional.one_hot(preds, 4).permute(0, 3, 1, 2).float()
    cal = calibration_metrics(probs, target, 4, ignore_index=IGN)
    assert cal["n_images"] == 1 and cal["n_pixels"] == 4
    assert all(math.isfinite(cal[k]) for k in ("ECE_D", "ECE_I", "SCE_D", "SCE_I", "ACE_D", "Brier", "NLL"))


def test_single_pixel():
    probs, target = torch.tensor([[[[0.7]], [[0.3]]]]), torch.tensor([[[1]]])
    cal = calibration_metrics(probs, target, 2)
    assert cal["ECE_D"] == pytest.approx(0.7) and cal["ECE_I"] == pytest.approx(0.7)
    assert cal["ACE_D"] == pytest.approx(0.7) and cal["MCE_D"] == pytest.approx(0.7)
    seg = segmentation_metrics(probs, target, 2)
    assert seg["Acc"] == 0.0 and seg["mIoU_D"] == 0.0 and seg["mIoU_I_worst5"] == 0.0


def test_everything_ignored_or_empty_gives_nan_with_warning():
    probs, target = torch.full((1, 2, 2, 2), 0.5), torch.full((1, 2, 2), IGN)
    with pytest.warns(UserWarning, match="no valid pixel"):
        cal = calibration_metrics(probs, target, 2, ignore_index=IGN)
    assert math.isnan(cal["ECE_D"]) and math.isnan(cal["ECE_I"]) and cal["n_pixels"] == 0
    with pytest.warns(UserWarning, match="no valid pixel"):
        seg = segmentation_metrics(probs, target, 2, ignore_index=IGN)
    assert math.isnan(seg["mIoU_D"]) and math.isnan(seg["mIoU_I"])
    for metric in (SegmentationMetrics(2), CalibrationMetrics(2)):
        with pytest.warns(UserWarning):
            assert math.isnan(metric.compute()["Acc"])
    with pytest.warns(UserWarning):
        assert math.isnan(float(TopLabelCalibrationError(2).compute()))


def test_no_nan_in_figures_on_ordinary_data(cal_batches):
    s, c = SegmentationMetrics(C, ignore_index=IGN), CalibrationMetrics(C, ignore_index=IGN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for probs, target in cal_batches:
            s.update(probs, target)
            c.update(probs, target)
        for out in (s.compute(), c.compute()):
            for key, val in out.items():
                if isinstance(val, float):
                    assert math.isfinite(val), key


# ------------------------------------------------------------------ bad input
PROBS = torch.full((2, 3, 4, 4), 1 / 3)
TARGET = torch.zeros(2, 4, 4, dtype=torch.long)


@pytest.mark.parametrize(
    "probs,target,match",
    [
        (PROBS[:, :2], TARGET, r"Expected `probs` of shape"),
        (PROBS, TARGET[:, :3], r"Expected `probs` of shape"),
        (PROBS * 0.9, TARGET, r"sum to 1"),
        (PROBS - 1.0, TARGET, r"in \[0, 1\]"),
        (torch.full_like(PROBS, float("nan")), TARGET, r"in \[0, 1\]"),
        (PROBS, TARGET + 3, r"Expected `target` values in \[0, 2\]"),
        (PROBS, TARGET - 1, r"Expected `target` values in \[0, 2\]"),
        (PROBS, TARGET.float(), r"integer class indices"),
        (PROBS.long(), TARGET, r"floating-point"),
    ],
)
def test_calibration_bad_input(probs, target, match):
    with pytest.raises(ValueError, match=match):
        CalibrationMetrics(3).update(probs, target)


@pytest.mark.parametrize(
    "preds,target,match",
    [
        (PROBS[:, :2], TARGET, r"Expected `preds` of shape"),
        (TARGET + 5, TARGET, r"Expected `preds` class indices"),
        (TARGET.float(), TARGET, r"integer class indices"),
        (TARGET[0], TARGET, r"Expected `preds` of shape"),
        (PROBS, TARGET + 7, r"Expected `target` values"),
        (torch.full_like(PROBS, float("nan")), TARGET, r"Expected `preds` to hold finite scores .* but found NaN"),
        (PROBS.index_put((torch.tensor(0),) * PROBS.ndim, torch.tensor(float("inf"))), TARGET, r"finite scores .* but found an infinite value"),
    ],
)
def test_segmentation_bad_input(preds, target, match):
    with pytest.raises(ValueError, match=match):
        SegmentationMetrics(3).update(preds, target)


@pytest.mark.parametrize(
    "factory,match",
    [
        (lambda: SegmentationMetrics(1), "num_classes"),
        (lambda: SegmentationMetrics(3, present="pred"), "present"),
        (lambda: CalibrationMetrics(3, n_bins=0), "n_bins"),
        (lambda: CalibrationMetrics(3, region="edges"), "region"),
        (lambda: CalibrationMetrics(3, boundary_width=0), "boundary_width"),
        (lambda: TopLabelCalibrationError(3, norm="l3"), "norm"),
        (lambda: BoundaryCalibration(3, max_distance=0), "max_distance"),
        (lambda: CalibrationMetrics(3, fine_bins=0), r"Expected `fine_bins` to be an int >= 1, but got 0\."),
        (lambda: boundary_mask(TARGET, width=0), r"Expected `width` to be an int >= 1, but got 0\."),
        (lambda: segmentation_metrics(PROBS, TARGET, 3, present="pred"), "`present` to be one of"),
    ],
)
def test_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    "factory,match",
    [
        (lambda: SegmentationMetrics(3, ignore_index=1.5), r"Expected `ignore_index` to be None or an int, but got 1.5 \(float\)\."),
        (lambda: CalibrationMetrics(3, ignore_index=1.5), r"Expected `ignore_index` to be None or an int, but got 1.5 \(float\)\."),
        (lambda: TopLabelCalibrationError(3, ignore_index="255"), "`ignore_index` to be None or an int"),
        (lambda: BoundaryCalibration(3, ignore_index=True), "`ignore_index` to be None or an int"),
        (lambda: segmentation_metrics(PROBS, TARGET, 3, ignore_index=1.5), "`ignore_index` to be None or an int"),
        (lambda: calibration_metrics(PROBS, TARGET, 3, ignore_index=1.5), "`ignore_index` to be None or an int"),
        (lambda: SegmentationMetrics(3.0), r"Expected `num_classes` to be an int, but got 3.0 \(float\)\."),
        (lambda: CalibrationMetrics(3, n_bins=1.5), "`n_bins` to be an int"),
        (lambda: CalibrationMetrics(3, boundary_width="3"), "`boundary_width` to be an int"),
        (lambda: boundary_distance(TARGET, max_distance=2.0), "`max_distance` to be an int"),
    ],
)
def test_bad_argument_types(factory, match):
    """A wrong type is a TypeError (``ignore_index=1.5`` too, as in the losses and the targets)."""
    with pytest.raises(TypeError, match=match):
        factory()


def test_ignore_index_value_is_not_range_checked_and_validate_switch():
    target = TARGET.clone()
    target[0, 0, 0] = IGN
    CalibrationMetrics(3, ignore_index=IGN).update(PROBS, target)
    CalibrationMetrics(3, validate_args=False).update(PROBS * 0.9, TARGET)  # not checked
    with pytest.raises(TypeError, match="torch.Tensor"):
        CalibrationMetrics(3).update(PROBS.numpy(), TARGET)


# ------------------------------------------------------------------ torchmetrics behaviour
def test_forward_returns_batch_value_and_accumulates(cal_batches):
    s, c = SegmentationMetrics(C, ignore_index=IGN), CalibrationMetrics(C, ignore_index=IGN)
    for probs, target in cal_batches:
        batch_s, batch_c = s(probs, target), c(probs, target)
        assert batch_s["mIoU_D"] == pytest.approx(segmentation_metrics(probs, target, C, ignore_index=IGN)["mIoU_D"])
        assert batch_c["ECE_D"] == pytest.approx(calibration_metrics(probs, target, C, ignore_index=IGN)["ECE_D"])
    probs = torch.cat([p for p, _ in cal_batches])
    target = torch.cat([t for _, t in cal_batches])
    assert c.compute()["ECE_I"] == pytest.approx(calibration_metrics(probs, target, C, ignore_index=IGN)["ECE_I"])
    assert s.compute()["mIoU_C"] == pytest.approx(segmentation_metrics(probs, target, C, ignore_index=IGN)["mIoU_C"])


def test_state_size_does_not_grow_with_pixels():
    m, light = CalibrationMetrics(3), TopLabelCalibrationError(3)
    sizes = []
    for side in (4, 64):
        probs = torch.full((2, 3, side, side), 1 / 3)
        target = torch.zeros(2, side, side, dtype=torch.long)
        m.update(probs, target)
        light.update(probs, target)
        n_image = sum(x.numel() for x in m.image)
        sizes.append((m.top.numel(), m.cw.numel(), m.scores.numel(), n_image, light.top.numel()))
    assert sizes[0][:3] == sizes[1][:3] and sizes[0][4] == sizes[1][4]
    assert sizes[1][3] == 2 * sizes[0][3]  # one row per image, whatever its size


@pytest.mark.parametrize("factory", [lambda: SegmentationMetrics(3), lambda: CalibrationMetrics(3),
                                     lambda: CalibrationMetrics(3, region="boundary"),
                                     lambda: TopLabelCalibrationError(3), lambda: BoundaryCalibration(3)],
                         ids=["segmentation", "calibration", "calibration_boundary", "top_label", "boundary"])
def test_empty_batch_update_is_a_no_op(factory):
    """``update`` with B = 0 leaves the state as it was (the figures after it are the same)."""
    import pandas as pd

    once, twice = factory(), factory()
    once.update(PROBS, TARGET)
    twice.update(PROBS, TARGET)
    twice.update(PROBS[:0], TARGET[:0])

    def same(a, b, where):
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b)
        elif isinstance(a, dict):
            assert a.keys() == b.keys(), where
            for key in a:
                same(a[key], b[key], f"{where}.{key}")
        else:
            torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), equal_nan=True, msg=where)

    same(once.compute(), twice.compute(), "compute()")
