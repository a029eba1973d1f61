"""Gradients with respect to a soft target (learned soft labels, mutual learning): float64 gradcheck with respect to
the logits and the target together, and agreement with a plain-autograd reference (the JML/DML formulas in torch
ops, no custom autograd Function) on seeded random inputs across modes, aggregates, masks, ignored pixels,
class weights, ``log_loss`` and ``gamma``."""
from __future__ import annotations

import pytest
import torch

import jmlkit.losses as L
import jmlkit.losses._functional as Fn

EPS = 1e-7


# ------------------------------------------------------------------------------------------ reference
def ref_probs(z, mode, from_logits=True):
    if not from_logits:
        return z
    return torch.softmax(z, 1) if mode == "multiclass" else torch.sigmoid(z)


def ref_score(kind, sx, sy, sxy, sd, smooth):
    """Per-class scores from the four sums, written from the papers' formulas."""
    inter, union = (sx + sy - sd) / 2, (sx + sy + sd) / 2
    if kind == "jml1":
        return (inter + smooth) / (union + smooth)
    if kind == "jml2":
        return (sxy + smooth) / (sxy + sd + smooth)
    if kind == "dml":
        return (2 * inter + smooth) / (sx + sy + smooth)
    if kind == "sjl":
        return (sxy + smooth) / (sx + sy - sxy + smooth)
    alpha, beta = kind  # Tversky
    return (inter + smooth) / (inter + alpha * (sx - inter) + beta * (sy - inter) + smooth)


def ref_region_loss(kind, z, y, valid, *, mode="multiclass", classes="all", aggregate="batch", smooth=1.0,
                    log_loss=False, gamma=1.0, class_weights=None, from_logits=True):
    """z (B, C, N) logits, y (B, C, N) target, valid (B, N) bool -> the aggregated loss, by plain autograd."""
    x = ref_probs(z, mode, from_logits)
    v = valid.to(z.dtype).unsqueeze(1)
    sums = dict(sx=(x * v).sum(2), sy=(y * v).sum(2), sxy=(x * y * v).sum(2), sd=((x - y).abs() * v).sum(2))
    B, C = x.shape[:2]
    w = torch.ones(C, dtype=z.dtype) if class_weights is None else torch.tensor(class_weights, dtype=z.dtype)
    if classes == "all":
        sel = torch.ones(B, C, dtype=torch.bool)
    elif classes == "present":  # hard labels: the class occurs on a valid pixel
        sel = (y * v).amax(2) > 0.01
    else:
        sel = torch.zeros(B, C, dtype=torch.bool)
        sel[:, classes] = True
    sel = sel & valid.any(1, keepdim=True)

    def per_class(s):
        score = ref_score(kind, s["sx"], s["sy"], s["sxy"], s["sd"], smooth)
        loss = -torch.log(score) if log_loss else 1 - score
        return loss ** gamma

    if aggregate == "batch":
        loss_c, sel_c = per_class({k: s.sum(0) for k, s in sums.items()}), sel.any(0)
        return (w * sel_c * loss_c).sum() / (w * sel_c).sum()
    loss_bc = per_class(sums)
    if aggregate == "image":
        per_image = [(w * sel[b] * loss_bc[b]).sum() / (w * sel[b]).sum() for b in range(B) if sel[b].any()]
        return torch.stack(per_image).mean()
    per_cls = [(loss_bc[:, c] * sel[:, c]).sum() / sel[:, c].sum() for c in range(C) if sel[:, c].any()]
    kept = [c for c in range(C) if sel[:, c].any()]
    return (w[kept] * torch.stack(per_cls)).sum() / w[kept].sum()


def ref_cross_entropy(z, y, valid, mode):
    if mode == "multiclass":
        per_pixel = -(y * torch.log_softmax(z, 1)).sum(1)
    else:
        per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none").mean(1)
    return (per_pixel * valid).sum() / valid.sum()


# ------------------------------------------------------------------------------------------ inputs
def make_inputs(mode, *, seed=0, B=2, C=3, spatial=(3, 4), masked=False):
    """float64 logits and a soft target with entries well inside (0, 1), and an optional mask."""
    g = torch.Generator().manual_seed(seed)
    C = 1 if mode == "binary" else C
    z = torch.randn(B, C, *spatial, generator=g, dtype=torch.float64)
    if mode == "multiclass":
        y = torch.softmax(torch.randn(B, C, *spatial, generator=g, dtype=torch.float64), 1)
    else:
        y = 0.05 + 0.9 * torch.rand(B, C, *spatial, generator=g, dtype=torch.float64)
    mask = None
    if masked:
        mask = torch.rand(B, *spatial, generator=g) > 0.3
        mask[:, 0, 0] = True  # every image keeps a valid pixel
    return z, y, mask


KINDS = {
    "jml1": (L.jaccard_metric_loss, {}, "jml1"),
    "jml2": (L.jaccard_metric_loss, {"variant": 2}, "jml2"),
    "dml": (L.dice_semimetric_loss, {}, "dml"),
    "sjl": (L.soft_jaccard_loss, {}, "sjl"),
    "tversky": (L.tversky_metric_loss, {"alpha": 0.3, "beta": 0.7}, (0.3, 0.7)),
}

#: (mode, masked, options): each region loss runs every row.
CASES = [
    ("multiclass", False, {}),
    ("multiclass", True, {"aggregate": "image"}),
    ("multiclass", False, {"aggregate": "class", "class_weights": [1.0, 2.0, 0.5]}),
    ("multiclass", True, {"aggregate": {"batch": 0.5, "image": 0.25, "class": 0.25}, "smooth": 0.0}),
    ("multiclass", False, {"log_loss": True, "gamma": 1.5}),
    ("multiclass", True, {"classes": [0, 2], "gamma": 2.0, "smooth": 0.5}),
    ("binary", False, {}),
    ("binary", True, {"aggregate": "image", "log_loss": True}),
    ("multilabel", False, {"aggregate": "class", "class_weights": [0.5, 1.0, 3.0]}),
    ("multilabel", True, {"gamma": 0.7, "smooth": 0.1}),
]


def reference(kind, z, y, mask, mode, options):
    B, C = z.shape[:2]
    valid = torch.ones(B, z[0, 0].numel(), dtype=torch.bool) if mask is None else mask.reshape(B, -1)
    agg = options.get("aggregate", "batch")
    aggs = agg if isinstance(agg, dict) else {agg: 1.0}
    opts = {k: v for k, v in options.items() if k in ("classes", "smooth", "log_loss", "gamma", "class_weights")}
    return sum(weight * ref_region_loss(kind, z.reshape(B, C, -1), y.reshape(B, C, -1), valid, mode=mode,
                                        aggregate=a, **opts) for a, weight in aggs.items())


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("mode,masked,options", CASES)
def test_region_loss_target_gradient_matches_reference(name, mode, masked, options):
    fn, extra, kind = KINDS[name]
    z, y, mask = make_inputs(mode, masked=masked, seed=len(options) + 7 * masked)
    z1, y1 = z.clone().requires_grad_(), y.clone().requires_grad_()
    z2, y2 = z.clone().requires_grad_(), y.clone().requires_grad_()
    got = fn(z1, y1, mask, mode=mode, **extra, **options)
    want = reference(kind, z2, y2, mask, mode, options)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)
    g_got = torch.autograd.grad(got, (z1, y1))
    g_want = torch.autograd.grad(want, (z2, y2))
    for a, b, what in zip(g_got, g_want, ("logits", "target")):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8, msg=f"{name} {mode} {options}: d/d{what}")
    if mask is not None:  # pixels outside the mask get no target gradient
        assert bool((g_got[1].movedim(1, -1)[~mask] == 0).all())


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("mode,masked,options", [CASES[0], CASES[1], CASES[4], CASES[7], CASES[8]])
def test_region_loss_gradcheck_logits_and_target(name, mode, masked, options):
    fn, extra, _ = KINDS[name]
    z, y, mask = make_inputs(mode, masked=masked, spatial=(2, 2), seed=3)
    z.requires_grad_(), y.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, mask, mode=mode, **extra, **options), (z, y),
                                    eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("region", ["jml", "jml2", "dml", "sjl"])
def test_compound_loss_target_gradient(mode, region):
    """CE + region loss: both terms' target gradients (before: only the cross-entropy's, off by ~1e-2)."""
    z, y, mask = make_inputs(mode, masked=True, seed=11)
    criterion = L.CompoundLoss(region, mode=mode)
    kind = {"jml": "jml1"}.get(region, region)
    z1, y1 = z.clone().requires_grad_(), y.clone().requires_grad_()
    z2, y2 = z.clone().requires_grad_(), y.clone().requires_grad_()
    got = criterion(z1, y1, mask)
    B = z.shape[0]
    want = 0.25 * ref_cross_entropy(z2.reshape(*z.shape[:2], -1), y2.reshape(*z.shape[:2], -1),
                                    mask.reshape(B, -1).to(z.dtype), mode) + 0.75 * reference(kind, z2, y2, mask,
                                                                                               mode, {})
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)
    for a, b in zip(torch.autograd.grad(got, (z1, y1)), torch.autograd.grad(want, (z2, y2))):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)
    z, y, mask = make_inputs(mode, masked=True, seed=11, spatial=(2, 2))
    z.requires_grad_(), y.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: criterion(a, b, mask), (z, y), eps=1e-6, atol=1e-6)


def test_target_gradient_alone_and_through_a_model_of_the_labels():
    """Logits without a gradient and a target that is itself computed (learned soft labels)."""
    z, y, _ = make_inputs("multiclass", seed=5)
    label_logits = torch.log(y).clone().requires_grad_()
    loss = L.jaccard_metric_loss(z, torch.softmax(label_logits, 1))
    (g,) = torch.autograd.grad(loss, label_logits)
    ref = reference("jml1", z, torch.softmax(label_logits, 1), None, "multiclass", {})
    (g_ref,) = torch.autograd.grad(ref, label_logits)
    torch.testing.assert_close(g, g_ref, atol=1e-10, rtol=1e-8)
    assert g.abs().sum() > 0


def test_mutual_learning_two_students():
    """Each student's loss against the other's softmax reaches both students' logits (deep mutual learning)."""
    a, b, _ = make_inputs("multiclass", seed=6)
    a.requires_grad_(), b.requires_grad_()
    loss = L.dice_semimetric_loss(a, torch.softmax(b, 1))
    ga, gb = torch.autograd.grad(loss, (a, b))
    ra, rb = torch.autograd.grad(reference("dml", a, torch.softmax(b, 1), None, "multiclass", {}), (a, b))
    torch.testing.assert_close(ga, ra, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(gb, rb, atol=1e-10, rtol=1e-8)


def test_float32_target_of_float64_logits_gets_its_gradient():
    z, y, _ = make_inputs("multiclass", seed=8)
    y32 = y.float().requires_grad_()
    (g,) = torch.autograd.grad(L.jaccard_metric_loss(z, y32), y32)
    (g_ref,) = torch.autograd.grad(reference("jml1", z, y32.double(), None, "multiclass", {}), y32)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode,masked", [("multiclass", True), ("binary", False), ("multilabel", True)])
def test_fused_path_gives_the_same_target_gradient(mode, masked):
    z, y, mask = make_inputs(mode, masked=masked, seed=9, spatial=(4, 4))
    z, y = z.float(), y.float()
    grads = []
    for fused in (False, True):
        z1, y1 = z.clone().requires_grad_(), y.clone().requires_grad_()
        loss = L.jaccard_metric_loss(z1, y1, mask, mode=mode, aggregate="image", fused=fused)
        grads.append(torch.autograd.grad(loss, (z1, y1)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_fast_path_skips_the_target_gradient(monkeypatch):
    """A target without requires_grad: the backward pass writes the logits' gradient only."""
    def fail(*args, **kwargs):
        raise AssertionError("target gradient computed for a target that does not require one")

    monkeypatch.setattr(Fn, "_soft_target_backward", fail)
    z, y, mask = make_inputs("multiclass", masked=True)
    z.requires_grad_()
    L.jaccard_metric_loss(z, y, mask).backward()
    assert z.grad is not None
    stats = Fn.region_statistics(z, y)
    assert not stats["sy"].requires_grad
    with pytest.raises(AssertionError, match="target gradient computed"):
        L.jaccard_metric_loss(z, y.clone().requires_grad_(), mask).backward()


@pytest.mark.parametrize("validate_args", [True, False])
@pytest.mark.parametrize("make", [
    lambda v: L.LovaszSoftmaxLoss(validate_args=v), lambda v: L.LovaszSoftmaxLoss(per_image=True, validate_args=v),
    lambda v: L.CompoundLoss("lovasz", validate_args=v), lambda v: L.get_loss("lovasz", validate_args=v)])
def test_lovasz_refuses_a_target_that_requires_grad(make, validate_args):
    """The Lovász extension reads class indices: no gradient can reach the target, so it says so."""
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4)).double().requires_grad_()
    with pytest.raises(ValueError, match=r"Expected `target` without requires_grad for the Lovász-Softmax loss"):
        make(validate_args)(z, target)


def test_distillation_student_gradcheck_and_documented_detached_teacher():
    """The distillation loss takes hard labels and the teacher's logits, which it detaches (as documented)."""
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 2, 2), generator=g)
    criterion = L.JMLDistillationLoss(temperature=2.0)
    assert torch.autograd.gradcheck(lambda s: criterion(s, teacher, target), (student,), eps=1e-6, atol=1e-6)
    criterion(student, teacher, target).backward()
    assert teacher.grad is None and student.grad is not None


@pytest.mark.parametrize("name", ["jml1", "jml2", "dml", "tversky"])
def test_a_retained_graph_gives_the_same_gradients_twice(name):
    """The backward pass writes the logits' gradient into the memory of the saved ``x - y``: a second pass through a
    retained graph recomputes it and gets the same gradients (logits and target)."""
    fn, extra, _ = KINDS[name]
    z, y, mask = make_inputs("multiclass", masked=True, seed=13)
    z.requires_grad_(), y.requires_grad_()
    loss = fn(z, y, mask, **extra)
    first = torch.autograd.grad(loss, (z, y), retain_graph=True)
    second = torch.autograd.grad(loss, (z, y))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        assert a.abs().sum() > 0


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("name", ["jml1", "jml2", "dml", "tversky"])
def test_pixels_where_the_prediction_equals_the_target(name, fused):
    """Where ``x == y`` the subgradient 0 of ``|x - y|`` is taken, as torch's ``abs`` does (so that the loss is
    stationary at its minimiser): on a prediction equal to the target on half of its pixels the gradient matches
    plain autograd's, in the eager and the fused (compiled) kernels alike."""
    fn, extra, kind = KINDS[name]
    _, y, mask = make_inputs("multiclass", masked=True, seed=17)
    probs = y.clone()
    probs[..., ::2] = 0.8 * y[..., ::2] + 0.2 / y.shape[1]  # the other half ties with the target exactly
    probs.requires_grad_()
    (got,) = torch.autograd.grad(fn(probs, y, mask, from_logits=False, fused=fused, **extra), (probs,))
    ref = probs.detach().clone().requires_grad_()
    B, C = y.shape[:2]
    want = ref_region_loss(kind, ref.reshape(B, C, -1), y.reshape(B, C, -1), mask.reshape(B, -1), from_logits=False)
    (expected,) = torch.autograd.grad(want, (ref,))
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-8)
