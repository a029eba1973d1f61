"""Losses: values against independent implementations, paths that must agree, options, gradients, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jmlkit.losses as L
from jmlkit.losses import (CompoundLoss, DiceSemimetricLoss, JaccardMetricLoss, LovaszSoftmaxLoss,
                           SoftJaccardLoss, TverskyMetricLoss)

REGION = {
    "jml1": (L.jaccard_metric_loss, JaccardMetricLoss, {}),
    "jml2": (L.jaccard_metric_loss, JaccardMetricLoss, {"variant": 2}),
    "dml": (L.dice_semimetric_loss, DiceSemimetricLoss, {}),
    "sjl": (L.soft_jaccard_loss, SoftJaccardLoss, {}),
    "tversky": (L.tversky_metric_loss, TverskyMetricLoss, {"alpha": 0.3, "beta": 0.7}),
}


def rand_inputs(B=2, C=4, spatial=(5, 6), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, C, *spatial, generator=g, dtype=dtype)
    t = torch.randint(0, C, (B, *spatial), generator=g)
    y = torch.softmax(2 * torch.randn(B, C, *spatial, generator=g, dtype=dtype), 1)
    return z, t, y


# ------------------------------------------------------------------------------------------ reference (numpy)
def ref_stats(x, y):
    """x, y: (B, C, N) numpy float64 -> per-(b, c) sums."""
    return dict(sx=x.sum(2), sy=y.sum(2), sxy=(x * y).sum(2), sd=np.abs(x - y).sum(2))


def ref_score(kind, s, smooth=0.0):
    if kind == "jml1":
        i, u = (s["sx"] + s["sy"] - s["sd"]) / 2, (s["sx"] + s["sy"] + s["sd"]) / 2
        return (i + smooth) / (u + smooth)
    if kind == "jml2":
        return (s["sxy"] + smooth) / (s["sxy"] + s["sd"] + smooth)
    if kind == "dml":
        return (s["sx"] + s["sy"] - s["sd"] + smooth) / (s["sx"] + s["sy"] + smooth)
    if kind == "sjl":
        return (s["sxy"] + smooth) / (s["sx"] + s["sy"] - s["sxy"] + smooth)
    i = (s["sx"] + s["sy"] - s["sd"]) / 2
    return (i + smooth) / (i + 0.3 * (s["sx"] - i) + 0.7 * (s["sy"] - i) + smooth)


def ref_loss(kind, z, target, aggregate="batch", classes="all", smooth=0.0, threshold=0.01):
    C = z.shape[1]
    x = torch.softmax(z, 1).reshape(z.shape[0], C, -1).numpy()
    if target.is_floating_point():
        y = target.reshape(z.shape[0], C, -1).numpy()
    else:
        y = F.one_hot(target.reshape(z.shape[0], -1), C).permute(0, 2, 1).double().numpy()
    present = y.max(2) > threshold
    s = ref_stats(x, y)
    if aggregate == "batch":
        score = ref_score(kind, {k: v.sum(0) for k, v in s.items()}, smooth)
        sel = present.any(0) if classes == "present" else np.ones(C, bool)
        return 1 - score[sel].mean()
    score = ref_score(kind, s, smooth)
    sel = present if classes == "present" else np.ones_like(present)
    if aggregate == "image":
        return np.mean([(1 - score[b][sel[b]]).mean() for b in range(len(score)) if sel[b].any()])
    return np.mean([(1 - score[:, c][sel[:, c]]).mean() for c in range(C) if sel[:, c].any()])


@pytest.mark.parametrize("kind", list(REGION))
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("aggregate", ["batch", "image", "class"])
@pytest.mark.parametrize("classes", ["all", "present", "present@0.5"])
def test_matches_numpy_reference(kind, soft, aggregate, classes):
    fn, _, kw = REGION[kind]
    z, t, y = rand_inputs(B=3, C=5, spatial=(4, 3), seed=1)
    t[0] = t[0].clamp(max=2)  # classes 3 and 4 absent from image 0
    y[0, 3:] *= 0.005  # ... and below the default threshold 0.01 of soft targets there
    y[0] /= y[0].sum(0, keepdim=True)
    target = y if soft else t
    threshold = 0.5 if classes == "present@0.5" else 0.01
    classes = classes.split("@")[0]
    got = fn(z, target, aggregate=aggregate, classes=classes, smooth=0.0, threshold=threshold, **kw)
    want = ref_loss(kind, z, target, aggregate=aggregate, classes=classes, threshold=threshold)
    assert got.item() == pytest.approx(want, abs=1e-10)


def test_contract_one_minus_mean_iou():
    """JaccardMetricLoss(classes="all", smooth=0) == 1 - mean_c I_c / U_c, I and U pooled over batch and pixels."""
    z, t, _ = rand_inputs(B=2, C=3, spatial=(7, 7))
    x = torch.softmax(z, 1)
    y = F.one_hot(t, 3).permute(0, 3, 1, 2).double()
    inter = (x * y).sum((0, 2, 3))
    union = (x + y - x * y).sum((0, 2, 3))
    want = 1 - (inter / union).mean()
    assert JaccardMetricLoss(classes="all", smooth=0.0)(z, t).item() == pytest.approx(want.item(), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_hard_labels_equal_soft_jaccard_and_smp(seed):
    smp = pytest.importorskip("segmentation_models_pytorch")
    z, t, _ = rand_inputs(B=4, C=6, spatial=(16, 16), dtype=torch.float32, seed=seed)
    jml = L.jaccard_metric_loss(z, t, classes="all", smooth=0.0)
    jml2 = L.jaccard_metric_loss(z, t, variant=2, classes="all", smooth=0.0)
    sjl = L.soft_jaccard_loss(z, t, classes="all", smooth=0.0)
    ref = smp.losses.JaccardLoss("multiclass", from_logits=True, smooth=0.0)(z, t)
    for value in (jml, jml2, sjl):
        assert value.item() == pytest.approx(ref.item(), abs=1e-6)
    dml = L.dice_semimetric_loss(z, t, classes="all", smooth=0.0)
    ref_dice = smp.losses.DiceLoss("multiclass", from_logits=True, smooth=0.0)(z, t)
    assert dml.item() == pytest.approx(ref_dice.item(), abs=1e-6)


@pytest.mark.parametrize("kind", list(REGION))
def test_hard_target_equals_one_hot(kind):
    """The fast path (class indices, no one-hot) equals the general path on the one-hot soft target."""
    fn, _, kw = REGION[kind]
    z, t, _ = rand_inputs(B=2, C=4, spatial=(6, 5))
    t[0, 0, 0] = 255
    one_hot = F.one_hot(t.clamp(max=3), 4).permute(0, 3, 1, 2).double()
    mask = t != 255
    for aggregate in ("batch", "image", "class"):
        z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
        a = fn(z1, t, ignore_index=255, aggregate=aggregate, **kw)
        b = fn(z2, one_hot, mask=mask, aggregate=aggregate, **kw)
        a.backward(), b.backward()
        assert a.item() == pytest.approx(b.item(), abs=1e-12)
        torch.testing.assert_close(z1.grad, z2.grad, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", list(REGION))
def test_module_equals_function(kind):
    fn, module, kw = REGION[kind]
    z, t, y = rand_inputs()
    opts = dict(classes="all", smooth=0.5, aggregate={"batch": 0.5, "class": 0.5}, **kw)
    for target in (t, y):
        assert module(**opts)(z, target).item() == fn(z, target, **opts).item()


@pytest.mark.parametrize("kind", list(REGION))
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("aggregate", ["batch", "image", "class"])
def test_gradcheck_float64(kind, soft, aggregate):
    fn, _, kw = REGION[kind]
    z, t, y = rand_inputs(B=2, C=3, spatial=(3, 4))
    z.requires_grad_()
    target = y if soft else t
    # fast mode checks a random projection of the Jacobian: the full Jacobian is checked in the tests below
    assert torch.autograd.gradcheck(lambda z: fn(z, target, aggregate=aggregate, **kw), (z,), eps=1e-6, atol=1e-6,
                                    fast_mode=True)


@pytest.mark.parametrize("kind", list(REGION))
def test_gradcheck_full_jacobian(kind):
    fn, _, kw = REGION[kind]
    z, t, y = rand_inputs(B=2, C=3, spatial=(2, 3))
    z.requires_grad_()
    for target in (t, y):
        assert torch.autograd.gradcheck(lambda z: fn(z, target, classes="all", **kw), (z,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_gradcheck_sigmoid_modes(mode):
    C = 1 if mode == "binary" else 3
    z = torch.randn(2, C, 4, 4, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, C, 4, 4, dtype=torch.float64)
    for fn in (L.jaccard_metric_loss, L.dice_semimetric_loss, L.soft_jaccard_loss):
        assert torch.autograd.gradcheck(lambda z: fn(z, y, mode=mode), (z,), eps=1e-6, atol=1e-6)


def test_gradcheck_lovasz_and_compound():
    z, t, y = rand_inputs(B=2, C=3, spatial=(3, 4))
    z.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: L.lovasz_softmax_loss(z, t), (z,), eps=1e-6, atol=1e-6)
    for target in (t, y):
        assert torch.autograd.gradcheck(lambda z: CompoundLoss("jml")(z, target), (z,), eps=1e-6, atol=1e-6)


def test_gradcheck_probabilities_input():
    z, t, y = rand_inputs(B=2, C=3, spatial=(3, 4))
    p = torch.softmax(z, 1).requires_grad_()
    for target in (t, y):
        assert torch.autograd.gradcheck(
            lambda p: L.jaccard_metric_loss(p, target, from_logits=False), (p,), eps=1e-6, atol=1e-6)


def test_volumes_and_no_spatial_dims():
    z, t, y = rand_inputs(B=2, C=3, spatial=(4, 3, 5))
    flat = L.jaccard_metric_loss(z.reshape(2, 3, -1), y.reshape(2, 3, -1))
    assert L.jaccard_metric_loss(z, y).item() == pytest.approx(flat.item(), abs=1e-12)
    assert L.jaccard_metric_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1])).ndim == 0


def test_binary_mode_matches_smp():
    smp = pytest.importorskip("segmentation_models_pytorch")
    z = torch.randn(3, 1, 8, 8)
    t = torch.randint(0, 2, (3, 8, 8))
    ref = smp.losses.JaccardLoss("binary", from_logits=True, smooth=0.0)(z, t)
    assert L.jaccard_metric_loss(z, t, mode="binary", smooth=0.0).item() == pytest.approx(ref.item(), abs=1e-6)
    assert L.jaccard_metric_loss(z, t.unsqueeze(1).float(), mode="binary", smooth=0.0).item() == pytest.approx(
        ref.item(), abs=1e-6)


def test_multilabel_is_per_channel_binary():
    z = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    y = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    per = [L.jaccard_metric_loss(z[:, c:c + 1], y[:, c:c + 1], mode="binary") for c in range(3)]
    assert L.jaccard_metric_loss(z, y, mode="multilabel").item() == pytest.approx(torch.stack(per).mean().item())


def test_options_class_selection_weights_log_gamma():
    z, t, y = rand_inputs(B=2, C=4, spatial=(6, 6))
    per_class = torch.stack([L.jaccard_metric_loss(z, y, classes=[c], smooth=0.0) for c in range(4)])
    w = torch.tensor([1.0, 2.0, 0.0, 1.0], dtype=torch.float64)
    got = L.jaccard_metric_loss(z, y, classes="all", smooth=0.0, class_weights=w)
    assert got.item() == pytest.approx(((per_class * w).sum() / w.sum()).item())
    log = L.jaccard_metric_loss(z, y, classes=[1], smooth=0.0, log_loss=True)
    assert log.item() == pytest.approx(-np.log(1 - per_class[1].item()))
    focal = L.jaccard_metric_loss(z, y, classes=[1], smooth=0.0, gamma=2.0)
    assert focal.item() == pytest.approx(per_class[1].item() ** 2)
    mixed = L.jaccard_metric_loss(z, y, aggregate={"batch": 0.25, "image": 0.75})
    parts = 0.25 * L.jaccard_metric_loss(z, y) + 0.75 * L.jaccard_metric_loss(z, y, aggregate="image")
    assert mixed.item() == pytest.approx(parts.item())


def test_present_classes_skip_absent():
    z, _, _ = rand_inputs(B=2, C=4, spatial=(5, 5))
    t = torch.randint(0, 2, (2, 5, 5))  # classes 2 and 3 absent
    assert L.jaccard_metric_loss(z, t).item() == pytest.approx(
        L.jaccard_metric_loss(z, t, classes=[0, 1]).item())


def test_mask_equals_cropping():
    z, t, y = rand_inputs(B=1, C=3, spatial=(6, 6))
    mask = torch.zeros(1, 6, 6, dtype=torch.bool)
    mask[:, :3] = True
    for target in (t, y):
        full = L.jaccard_metric_loss(z, target, mask=mask, classes="all")
        cropped = L.jaccard_metric_loss(z[:, :, :3], target[..., :3, :] if target.ndim == 3 else target[:, :, :3],
                                        classes="all")
        assert full.item() == pytest.approx(cropped.item(), abs=1e-12)


@pytest.mark.parametrize("kind", list(REGION))
@pytest.mark.parametrize("aggregate", ["batch", "image", "class"])
def test_all_ignored_gives_zero_loss_and_zero_gradient(kind, aggregate):
    fn, _, kw = REGION[kind]
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.full((2, 4, 4), 255)
    for classes in ("present", "all"):
        loss = fn(z, t, ignore_index=255, aggregate=aggregate, classes=classes, smooth=0.0, **kw)
        (grad,) = torch.autograd.grad(loss, z)
        assert loss.item() == 0.0 and torch.isfinite(loss)
        assert torch.count_nonzero(grad) == 0
    loss = fn(z, torch.softmax(torch.randn(2, 3, 4, 4), 1), mask=torch.zeros(2, 4, 4, dtype=torch.bool), **kw)
    assert loss.item() == 0.0
    assert L.compound_loss(z, t, ignore_index=255).item() == 0.0


# ------------------------------------------------------------------------------------------ soft targets: no silent 0
def flat_soft_target(B=2, C=4, spatial=(6, 6), seed=3):
    """A teacher's probabilities softened at a high temperature: no class above 0.5 on any pixel."""
    g = torch.Generator().manual_seed(seed)
    y = torch.softmax(torch.randn(B, C, *spatial, generator=g, dtype=torch.float64).clamp(-2, 2) / 4, 1)
    assert y.max() < 0.5
    return y


DEFAULT_LOSSES = {
    "jml": L.jaccard_metric_loss, "jml2": lambda z, y, *a, **k: L.jaccard_metric_loss(z, y, *a, variant=2, **k),
    "dml": L.dice_semimetric_loss, "sjl": L.soft_jaccard_loss, "tversky": L.tversky_metric_loss,
    "JaccardMetricLoss": lambda z, y, *a, **k: JaccardMetricLoss(**k)(z, y, *a),
    "DiceSemimetricLoss": lambda z, y, *a, **k: DiceSemimetricLoss(**k)(z, y, *a),
    "SoftJaccardLoss": lambda z, y, *a, **k: SoftJaccardLoss(**k)(z, y, *a),
    "get_loss(jml)": lambda z, y, *a, **k: L.get_loss("jml", **k)(z, y, *a),
    # the region part of a compound loss: (CE + region) - CE
    "CompoundLoss": lambda z, y, *a, **k: (CompoundLoss("jml", ce_weight=1.0, region_weight=1.0, **k)(z, y, *a)
                                            - L.soft_cross_entropy(z, y, *a, ignore_index=k.get("ignore_index"))),
    "get_loss(ce+dml)": lambda z, y, *a, **k: (L.get_loss("ce+dml", ce_weight=1.0, region_weight=1.0, **k)(z, y, *a)
                                                - L.soft_cross_entropy(z, y, *a, ignore_index=k.get("ignore_index"))),
}


@pytest.mark.parametrize("name", list(DEFAULT_LOSSES))
def test_soft_target_below_one_half_gives_a_loss_and_a_gradient_by_default(name):
    """A teacher softened at T = 4 has no class above 0.5: the loss used to be exactly 0 with no gradient."""
    fn = DEFAULT_LOSSES[name]
    y = flat_soft_target()
    z = torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    loss = fn(z, y)
    (grad,) = torch.autograd.grad(loss, z)
    assert loss.item() > 0.01 and grad.abs().sum() > 0
    assert loss.item() == pytest.approx(fn(z, y, classes="all").item(), abs=1e-12)


@pytest.mark.parametrize("name", list(DEFAULT_LOSSES))
@pytest.mark.parametrize("aggregate", ["batch", "image", "class"])
def test_default_classes_all_for_soft_present_for_hard(name, aggregate):
    fn = DEFAULT_LOSSES[name]
    z, t, y = rand_inputs(B=3, C=5, spatial=(4, 4), seed=2)
    t[:, 0] = 255
    t[0] = t[0].clamp(max=2)  # classes 3, 4 absent from image 0
    y[:, 4] *= 0.01  # class 4 never above 0.5: the old default ("present" at 0.5) left it out
    y /= y.sum(1, keepdim=True)
    valid = t != 255
    soft_default = fn(z, y, valid, aggregate=aggregate)
    assert soft_default.item() == fn(z, y, valid, aggregate=aggregate, classes="all").item()
    assert soft_default.item() != pytest.approx(
        fn(z, y, valid, aggregate=aggregate, classes="present", threshold=0.5).item(), abs=1e-6)
    t[t == 4] = 3  # class 4 absent from the batch
    kw = dict(aggregate=aggregate, ignore_index=255)
    hard_default = fn(z, t, **kw)
    assert hard_default.item() == fn(z, t, classes="present", **kw).item()
    assert hard_default.item() != pytest.approx(fn(z, t, classes="all", **kw).item(), abs=1e-6)


def test_present_on_soft_targets_means_above_one_percent_on_a_valid_pixel():
    z, _, y = rand_inputs(B=2, C=4, spatial=(5, 5), seed=4)
    mask = torch.ones(2, 5, 5, dtype=torch.bool)
    mask[:, 0] = False
    y[:, 3] = 0.009  # below 0.01 on every valid pixel ...
    y[:, 3, 0] = 0.5  # ... and far above it on the masked-out row only
    y[:, 2] = 0.011
    y[:, :2] *= (1 - y[:, 2:].sum(1, keepdim=True)) / y[:, :2].sum(1, keepdim=True)
    for fn in (L.jaccard_metric_loss, L.dice_semimetric_loss, L.soft_jaccard_loss):
        for aggregate in ("batch", "image", "class"):
            got = fn(z, y, mask, classes="present", aggregate=aggregate)
            assert got.item() == fn(z, y, mask, classes=[0, 1, 2], aggregate=aggregate).item()
            assert got.item() != fn(z, y, mask, classes="all", aggregate=aggregate).item()


@pytest.mark.parametrize("kind", list(REGION))
@pytest.mark.parametrize("aggregate", ["batch", "image", "class"])
def test_soft_present_without_an_active_class_raises(kind, aggregate):
    fn, module, kw = REGION[kind]
    y = flat_soft_target()
    z = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    match = r"exceed `threshold`=0.5 on a valid pixel with classes='present', but none does on the 72 valid pixels"
    with pytest.raises(ValueError, match=match):
        fn(z, y, classes="present", threshold=0.5, aggregate=aggregate, **kw)
    with pytest.raises(ValueError, match=match):
        module(classes="present", threshold=0.5, aggregate=aggregate, **kw)(z, y)
    with pytest.raises(ValueError, match=match):
        CompoundLoss("jml", classes="present", threshold=0.5, aggregate=aggregate)(z, y)
    # every pixel ignored: nothing to learn from, a zero loss with zero gradient (no error)
    z.requires_grad_()
    loss = fn(z, y, torch.zeros(2, 6, 6, dtype=torch.bool), classes="present", threshold=0.5, **kw)
    (grad,) = torch.autograd.grad(loss, z)
    assert loss.item() == 0.0 and torch.count_nonzero(grad) == 0


def test_many_classes_and_a_flat_soft_target_raise_with_present_at_the_default_threshold():
    """With C > 100 classes a near-uniform pixel has every probability below 0.01."""
    z = torch.randn(1, 120, 3, 3, dtype=torch.float64)
    y = torch.full((1, 120, 3, 3), 1 / 120, dtype=torch.float64)
    with pytest.raises(ValueError, match="`threshold`=0.01"):
        L.jaccard_metric_loss(z, y, classes="present")
    assert L.jaccard_metric_loss(z, y).item() > 0  # the default: all classes


def test_binary_present_keeps_its_meaning_for_empty_masks():
    """In binary mode "present" is "the foreground occurs": an all-background batch gives 0, hard or soft."""
    z = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    for target in (torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 1, 4, 4, dtype=torch.float64),
                   torch.full((2, 1, 4, 4), 0.005, dtype=torch.float64)):
        assert L.jaccard_metric_loss(z, target, mode="binary", classes="present").item() == 0.0
        assert L.jaccard_metric_loss(z, target, mode="binary").item() > 0  # the default: "all"


def test_empty_class_list_is_refused():
    z, t, y = rand_inputs()
    with pytest.raises(ValueError, match="`classes` to hold at least one class index"):
        L.jaccard_metric_loss(z, y, classes=torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="`classes`"):
        L.jaccard_metric_loss(z, t, classes=[])


def _presence_worker(rank, port, out):
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        z = torch.randn(2, 4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(rank))
        flat, sharp = flat_soft_target(seed=rank), torch.softmax(4 * z, 1)
        kw = dict(classes="present", threshold=0.5, sync_distributed=True)
        # rank 0 holds no class above 0.5, rank 1 does: the global batch has active classes, no error anywhere
        out[("mixed", rank)] = L.jaccard_metric_loss(z, flat if rank == 0 else sharp, **kw).item()
        try:
            L.jaccard_metric_loss(z, flat, **kw)
            out[("flat", rank)] = "no error"
        except ValueError as err:
            out[("flat", rank)] = str(err)
    finally:
        dist.destroy_process_group()


@pytest.mark.xdist_group("dist")
def test_presence_is_global_under_sync_distributed():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_presence_worker, args=(port, out), nprocs=2, join=True)
    zs = [torch.randn(2, 4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(r)) for r in (0, 1)]
    whole = L.jaccard_metric_loss(torch.cat(zs), torch.cat([flat_soft_target(seed=0), torch.softmax(4 * zs[1], 1)]),
                                  classes="present", threshold=0.5)
    assert out[("mixed", 0)] == pytest.approx(whole.item(), abs=1e-10)
    assert out[("mixed", 1)] == pytest.approx(whole.item(), abs=1e-10)
    assert "none does" in out[("flat", 0)] and "none does" in out[("flat", 1)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gives_finite_values(dtype):
    if dtype == torch.float16 and not torch.cuda.is_available():
        z = torch.randn(2, 3, 8, 8).half().requires_grad_()  # half logits without autocast on CPU
        loss = L.jaccard_metric_loss(z, torch.randint(0, 3, (2, 8, 8)))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    conv = torch.nn.Conv2d(3, 4, 1).to(device)
    x = torch.randn(2, 3, 8, 8, device=device)
    t = torch.randint(0, 4, (2, 8, 8), device=device)
    with torch.autocast(device_type=device, dtype=dtype):
        logits = conv(x)
        losses = [L.jaccard_metric_loss(logits, t), L.jaccard_metric_loss(logits, torch.softmax(logits.float(), 1)),
                  CompoundLoss("jml")(logits, t)]
    for loss in losses:
        assert torch.isfinite(loss)
        loss.backward(retain_graph=True)
    assert torch.isfinite(conv.weight.grad).all()


def test_lovasz_reference_values():
    smp = pytest.importorskip("segmentation_models_pytorch")
    z, t, _ = rand_inputs(B=2, C=4, spatial=(8, 8), dtype=torch.float32)
    ours = L.lovasz_softmax_loss(z, t, per_image=True)
    ref = smp.losses.LovaszLoss("multiclass", per_image=True)(z, t)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-5)
    assert LovaszSoftmaxLoss()(z, t).item() == L.lovasz_softmax_loss(z, t).item()


def test_lovasz_rejects_soft_target():
    z, _, y = rand_inputs()
    with pytest.raises(ValueError, match="hard labels only"):
        L.lovasz_softmax_loss(z, y)


def test_compound_loss_weights_and_soft_ce():
    z, t, y = rand_inputs()
    ce = -(y * torch.log_softmax(z, 1)).sum(1).mean()
    jml = L.jaccard_metric_loss(z, y)
    assert CompoundLoss("jml")(z, y).item() == pytest.approx((0.25 * ce + 0.75 * jml).item())
    assert L.soft_cross_entropy(z, t).item() == pytest.approx(F.cross_entropy(z, t).item())
    assert L.get_loss("ce")(z, t).item() == pytest.approx(F.cross_entropy(z, t).item())
    named = L.get_loss("ce+dml", ce_weight=0.5, region_weight=0.5)
    assert named(z, t).item() == pytest.approx(0.5 * F.cross_entropy(z, t).item() + 0.5 * L.dice_semimetric_loss(z, t).item())


def test_fused_path_matches_eager():
    z, t, y = rand_inputs(B=2, C=4, spatial=(8, 8), dtype=torch.float32)
    for target in (t, y):
        z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
        a = L.jaccard_metric_loss(z1, target, fused=True)
        b = L.jaccard_metric_loss(z2, target)
        a.backward(), b.backward()
        assert a.item() == pytest.approx(b.item(), abs=1e-6)
        torch.testing.assert_close(z1.grad, z2.grad, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------ bad input
BAD = [
    (dict(logits=[1.0]), TypeError, "`logits` to be a torch.Tensor"),
    (dict(logits=torch.ones(2, 3, 4, dtype=torch.long)), TypeError, "floating-point"),
    (dict(logits=torch.randn(4)), ValueError, r"shape \(B, C, \*spatial\)"),
    (dict(target=torch.randint(0, 3, (2, 5))), ValueError, "`target` .* of shape"),
    (dict(target=torch.full((2, 4), 7)), ValueError, r"values in \[0, 2\]"),
    (dict(target=torch.full((2, 3, 4), 1.5)), ValueError, r"values in \[0, 1\]"),
    (dict(target=torch.full((2, 3, 4), 0.5)), ValueError, "sum to 1"),
    (dict(target=torch.randn(2, 3, 5)), ValueError, "of shape"),
    (dict(logits=torch.full((2, 3, 4), float("nan"))), ValueError, "NaN or Inf"),
    (dict(mask=torch.ones(2, 4)), TypeError, "`mask` to be a bool"),
    (dict(mask=torch.ones(2, 5, dtype=torch.bool)), ValueError, "`mask` of shape"),
    (dict(mode="softmax"), ValueError, "`mode` to be one of"),
    (dict(classes="some"), ValueError, "`classes`"),
    (dict(classes=[0, 9]), ValueError, r"indices in \[0, 2\]"),
    (dict(aggregate="pixel"), ValueError, "`aggregate`"),
    (dict(aggregate=["batch"]), TypeError, r"`aggregate` to be one of \('batch', 'image', 'class'\) or a mapping"),
    (dict(aggregate={}), ValueError, "`aggregate` to be a non-empty mapping"),
    (dict(aggregate={"batch": -1.0}), ValueError, r"Expected `aggregate\['batch'\]` to be a number >= 0, but got -1.0"),
    (dict(classes=[0.5]), TypeError, r"Expected `classes\[0\]` to be an int, but got 0.5 \(float\)"),
    (dict(classes=2), TypeError, "`classes` to be 'present', 'all', None or a list of class indices"),
    (dict(smooth=-1.0), ValueError, r"Expected `smooth` to be a number >= 0, but got -1.0\."),
    (dict(smooth="1"), TypeError, r"Expected `smooth` to be a real number, but got '1' \(str\)\."),
    (dict(gamma=0), ValueError, r"Expected `gamma` to be a number > 0, but got 0.0\."),
    (dict(threshold=1.5), ValueError, r"Expected `threshold` to be a number in \[0, 1\], but got 1.5\."),
    (dict(class_weights=[1.0, 2.0]), ValueError, "3 entries"),
    (dict(class_weights=2.0), TypeError, "`class_weights` to be None or a sequence or tensor"),
    (dict(class_weights=[1.0, float("nan"), 1.0]), ValueError, r"`class_weights` to be finite and non-negative, but got \[1.0, nan, 1.0\]"),
    (dict(class_weights=[1.0, -1.0, 1.0]), ValueError, r"`class_weights` to be finite and non-negative, but got \[1.0, -1.0, 1.0\]"),
    (dict(class_weights=torch.tensor([1.0, float("inf"), 1.0])), ValueError, "`class_weights` to be finite"),
    (dict(class_weights=[0.0, 0.0, 0.0]), ValueError, "`class_weights` to have a positive weight"),
    (dict(class_weights=[[1.0, 2.0, 3.0]]), ValueError, r"1-D sequence of C weights, but got shape \(1, 3\)"),
    (dict(class_weights=["a", "b", "c"]), TypeError, "`class_weights` to be a sequence or tensor of C numbers"),
    (dict(ignore_index=1.5), TypeError, r"Expected `ignore_index` to be None or an int, but got 1.5 \(float\)\."),
    (dict(ignore_index=True), TypeError, r"Expected `ignore_index` to be None or an int, but got True \(bool\)\."),
    (dict(variant=3), ValueError, r"Expected `variant` to be one of \(1, 2\), but got 3\."),
    (dict(variant=1.0), TypeError, r"Expected `variant` to be an int, but got 1.0 \(float\)\."),
    (dict(mode="binary"), ValueError, r"\(B, 1, \*spatial\)"),
]


@pytest.mark.parametrize("bad,exc,match", BAD)
def test_bad_input_names_the_argument(bad, exc, match):
    args = dict(logits=torch.randn(2, 3, 4), target=torch.randint(0, 3, (2, 4)))
    kwargs = {k: v for k, v in bad.items() if k not in ("logits", "target", "mask")}
    args.update({k: v for k, v in bad.items() if k in ("logits", "target")})
    with pytest.raises(exc, match=match):
        L.jaccard_metric_loss(args["logits"], args["target"], bad.get("mask"), **kwargs)


@pytest.mark.parametrize("bad,exc,match", [b for b in BAD if "variant" not in b[0]])
def test_compound_loss_checks_its_inputs(bad, exc, match):
    """The region loss checks the inputs of both terms (the cross-entropy does not check them twice)."""
    args = dict(logits=torch.randn(2, 3, 4), target=torch.randint(0, 3, (2, 4)))
    kwargs = {k: v for k, v in bad.items() if k not in ("logits", "target", "mask")}
    args.update({k: v for k, v in bad.items() if k in ("logits", "target")})
    with pytest.raises(exc, match=match):
        CompoundLoss("jml", **kwargs)(args["logits"], args["target"], bad.get("mask"))


def test_module_rejects_unknown_option():
    with pytest.raises(TypeError, match="unknown option"):
        JaccardMetricLoss(reduction="mean")
    with pytest.raises(ValueError, match="`name`"):
        L.get_loss("focal")


def test_soft_target_sums_are_checked_on_valid_pixels_only():
    """jmlkit.targets gives ignored pixels an all-zero soft vector: with the mask, that is not an error."""
    from jmlkit.targets import label_smoothing

    t = torch.randint(0, 3, (2, 4))
    t[0, 0] = 255
    soft, mask = label_smoothing(t, 3, 0.1, ignore_index=255)
    z = torch.randn(2, 3, 4)
    for fused in (False, True):
        assert torch.isfinite(L.jaccard_metric_loss(z, soft, mask, fused=fused))
    with pytest.raises(ValueError, match="sum to 1"):
        L.jaccard_metric_loss(z, soft)


def test_validation_can_be_switched_off():
    z = torch.randn(2, 3, 4)
    y = torch.full((2, 3, 4), 0.5)  # does not sum to 1: accepted without validation
    assert torch.isfinite(L.jaccard_metric_loss(z, y, validate_args=False))
    # the options are checked whatever validate_args (it is about the tensors)
    with pytest.raises(ValueError, match="`smooth`"):
        L.jaccard_metric_loss(z, y, validate_args=False, smooth=-1.0)
    with pytest.raises(TypeError, match="`ignore_index`"):
        L.lovasz_softmax_loss(z, torch.zeros(2, 4, dtype=torch.long), validate_args=False, ignore_index=0.5)


def test_modules_check_their_options_at_construction():
    with pytest.raises(ValueError, match=r"Expected `variant` to be one of \(1, 2\), but got 3\."):
        JaccardMetricLoss(variant=3)
    with pytest.raises(ValueError, match=r"Expected `alpha` to be a number >= 0, but got -1.0\."):
        TverskyMetricLoss(alpha=-1.0)
    with pytest.raises(TypeError, match=r"Expected `beta` to be a real number, but got 'x' \(str\)\."):
        TverskyMetricLoss(beta="x")
    with pytest.raises(TypeError, match="`ignore_index` to be None or an int"):
        LovaszSoftmaxLoss(ignore_index=1.5)
    with pytest.raises(ValueError, match=r"`classes` to be one of \('present', 'all'\)"):
        LovaszSoftmaxLoss(classes="some")
    with pytest.raises(ValueError, match="`mode` to be one of"):
        L.CrossEntropyLoss(mode="softmax")
    with pytest.raises(ValueError, match=r"Expected `ce_weight` to be a number >= 0, but got -0.5\."):
        CompoundLoss("jml", ce_weight=-0.5)
    with pytest.raises(TypeError, match="`region_loss` to be a loss name or a callable"):
        CompoundLoss(3)


def test_loss_names():
    assert L.LOSS_NAMES == ("ce", "jml", "jml1", "jml2", "dml", "sjl", "lovasz")
    assert isinstance(L.get_loss(" CE + JML "), CompoundLoss)
    assert isinstance(CompoundLoss("Lovasz").region, LovaszSoftmaxLoss)
    assert CompoundLoss("jml2").region.options["variant"] == 2
    with pytest.raises(ValueError, match=r"Expected `region_loss` to be one of \('jml', 'jml1', 'jml2', 'dml', 'sjl', "
                                         r"'lovasz'\), but got 'ce'\."):
        CompoundLoss("ce")
    with pytest.raises(ValueError, match=r"Expected `name` to be one of .* or 'ce\+<region loss>', but got 'ce\+ce'\."):
        L.get_loss("ce+ce")
    with pytest.raises(TypeError, match=r"Expected `name` to be a str, but got 3 \(int\)\."):
        L.get_loss(3)


def test_public_names():
    assert sorted(L.__all__) == sorted([
        "BINARY_MODE", "MULTICLASS_MODE", "MULTILABEL_MODE", "LOSS_NAMES",
        "JaccardMetricLoss", "DiceSemimetricLoss", "TverskyMetricLoss", "SoftJaccardLoss", "LovaszSoftmaxLoss",
        "CompoundLoss", "CrossEntropyLoss", "JMLDistillationLoss",
        "jaccard_metric_loss", "dice_semimetric_loss", "tversky_metric_loss", "soft_jaccard_loss",
        "lovasz_softmax_loss", "compound_loss", "jml_distillation_loss", "soft_cross_entropy", "region_statistics",
        "REGION_SCORES", "get_loss"])
    assert all(hasattr(L, name) for name in L.__all__)


def test_the_loss_modules_do_not_import_each_other_in_a_cycle():
    """Every import between the modules of jmlkit.losses, at the top or inside a function, goes one way."""
    import ast
    from pathlib import Path

    folder = Path(L.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    deps.add(node.module.split(".")[0])
                elif node.level == 1:
                    deps.update(a.name for a in node.names)
                elif (node.module or "").startswith("jmlkit.losses."):
                    deps.add(node.module.split(".")[2])
        graph[path.stem] = deps - {path.stem}
    assert "registry" not in graph["compound"] and "compound" in graph["registry"]

    def reaches(start, goal, seen=()):
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d))) for d in graph.get(start, ()))

    cycles = [m for m in graph if m != "__init__" and reaches(m, m)]
    assert not cycles, {m: graph[m] for m in cycles}


EMPTY_BATCH_LOSSES = {
    "jml": lambda: JaccardMetricLoss(), "jml_image": lambda: JaccardMetricLoss(aggregate="image"),
    "jml_class": lambda: JaccardMetricLoss(aggregate="class"), "dml": lambda: DiceSemimetricLoss(),
    "sjl": lambda: L.SoftJaccardLoss(), "tversky": lambda: L.TverskyMetricLoss(),
    "lovasz": lambda: LovaszSoftmaxLoss(), "lovasz_image": lambda: LovaszSoftmaxLoss(per_image=True),
    "ce+jml": lambda: CompoundLoss("jml"), "ce+lovasz": lambda: CompoundLoss("lovasz"),
}


@pytest.mark.parametrize("name,soft", [(n, s) for n in sorted(EMPTY_BATCH_LOSSES) for s in (False, True)
                                       if not (s and "lovasz" in n)])  # the Lovasz loss takes hard labels only
def test_empty_batch_gives_zero_loss_and_zero_gradient(name, soft):
    """B = 0 (a last batch of a sampler, a rank without data): the loss is 0 with a zero gradient of the
    right shape, not a reshape error; the graph is kept, so ``backward`` works."""
    logits = torch.randn(0, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    target = torch.zeros(0, 3, 5, 4, dtype=torch.float64) if soft else torch.zeros(0, 5, 4, dtype=torch.long)
    loss = EMPTY_BATCH_LOSSES[name]()(logits, target)
    loss.backward()
    assert loss.shape == () and loss.item() == 0.0
    assert logits.grad is not None and logits.grad.shape == logits.shape


def test_empty_batch_distillation_and_cross_entropy():
    student = torch.randn(0, 3, 4, 4, requires_grad=True)
    loss = L.JMLDistillationLoss(temperature=2.0)(student, torch.randn(0, 3, 4, 4), torch.zeros(0, 4, 4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and student.grad.shape == student.shape
    assert L.soft_cross_entropy(student, torch.zeros(0, 4, 4, dtype=torch.long)).item() == 0.0


def test_empty_batch_adds_nothing_to_a_batch():
    """Pooled with a non-empty batch, an empty one changes nothing (the loss of the concatenation)."""
    z, y = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (2, 4, 4))
    both = JaccardMetricLoss()(torch.cat([z, z[:0]]), torch.cat([y, y[:0]]))
    torch.testing.assert_close(both, JaccardMetricLoss()(z, y))
