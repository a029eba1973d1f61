"""JMLDistillationLoss: the reference recipe term by term with plain torch, gradients, options and errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import jmlkit.losses as L
from jmlkit.losses import JMLDistillationLoss, jml_distillation_loss

IGNORE = 255


def inputs(B=2, C=4, spatial=(5, 6), dtype=torch.float64, seed=0, ignored=True):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(B, C, *spatial, generator=g, dtype=dtype)
    teacher = 3 * torch.randn(B, C, *spatial, generator=g, dtype=dtype)
    target = torch.randint(0, C - 1, (B, *spatial), generator=g)  # class C - 1 absent: "present" matters
    if ignored:
        target[0, 0] = IGNORE
        target[1, :, :2] = IGNORE
    return student, teacher, target


# ------------------------------------------------------------------------------------------ reference (plain torch)
def ref_jml(x, y, valid, active, smooth):
    """1 - mean over the active classes of (I_c + s) / (U_c + s), I and U summed over the batch's valid pixels.

    x, y: (B, C, N) probabilities and target; valid: (B, N) bool; active: (C,) bool.
    """
    v = valid.unsqueeze(1).to(x.dtype)
    inter = ((x.abs() + y.abs() - (x - y).abs()) / 2 * v).sum((0, 2))
    union = ((x.abs() + y.abs() + (x - y).abs()) / 2 * v).sum((0, 2))
    score = (inter + smooth) / (union + smooth)
    return 1 - score[active].mean()


def ref_distillation(student, teacher, target, mask=None, *, T=1.0, lam=0.5, mu=0.5, w_ce=0.25, w_r=0.75,
                     smooth=1.0):
    B, C = student.shape[:2]
    valid = target != IGNORE
    if mask is not None:
        valid = valid & mask
    hard = torch.where(valid, target, torch.full_like(target, IGNORE))
    ce = F.cross_entropy(student, hard, ignore_index=IGNORE)
    kl_pixel = F.kl_div(F.log_softmax(student / T, 1), F.softmax(teacher / T, 1), reduction="none").sum(1)
    kl = kl_pixel[valid].mean()
    x = torch.softmax(student, 1).reshape(B, C, -1)           # the JML sees the student at temperature 1
    v = valid.reshape(B, -1)
    one_hot = F.one_hot(torch.where(valid, target, 0).reshape(B, -1), C).permute(0, 2, 1).to(x.dtype)
    present = (one_hot * v.unsqueeze(1)).sum((0, 2)) > 0
    q_t = torch.softmax(teacher / T, 1).reshape(B, C, -1)
    jml_hard = ref_jml(x, one_hot, v, present, smooth)
    jml_soft = ref_jml(x, q_t, v, torch.ones(C, dtype=torch.bool), smooth)
    return w_ce * (lam * ce + mu * T * T * kl) + w_r * (lam * jml_hard + mu * jml_soft)


# ------------------------------------------------------------------------------------------ values
@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
def test_matches_the_formula_term_by_term(T):
    student, teacher, target = inputs(seed=int(T))
    got = jml_distillation_loss(student, teacher, target, temperature=T, ignore_index=IGNORE)
    want = ref_distillation(student, teacher, target, T=T)
    assert got.item() == pytest.approx(want.item(), abs=1e-12)
    assert JMLDistillationLoss(temperature=T, ignore_index=IGNORE)(student, teacher, target).item() == got.item()


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
def test_mask_and_other_weights(T):
    student, teacher, target = inputs(B=3, C=5, spatial=(4, 7), seed=10 + int(T))
    mask = torch.rand(3, 4, 7, generator=torch.Generator().manual_seed(1)) > 0.3
    weights = dict(label_weight=0.3, teacher_weight=0.9, ce_weight=0.6, region_weight=0.4)
    got = jml_distillation_loss(student, teacher, target, mask, temperature=T, ignore_index=IGNORE, smooth=0.5,
                                **weights)
    want = ref_distillation(student, teacher, target, mask, T=T, lam=0.3, mu=0.9, w_ce=0.6, w_r=0.4, smooth=0.5)
    assert got.item() == pytest.approx(want.item(), abs=1e-12)


def test_each_term_alone():
    student, teacher, target = inputs()
    T = 3.0
    kw = dict(temperature=T, ignore_index=IGNORE)
    valid = target != IGNORE
    ce = jml_distillation_loss(student, teacher, target, teacher_weight=0.0, label_weight=1.0, ce_weight=1.0,
                               region_weight=0.0, **kw)
    assert ce.item() == pytest.approx(F.cross_entropy(student, target, ignore_index=IGNORE).item(), abs=1e-12)
    kd = jml_distillation_loss(student, teacher, target, teacher_weight=1.0, label_weight=0.0, ce_weight=1.0,
                               region_weight=0.0, **kw)
    kl = F.kl_div(F.log_softmax(student / T, 1), F.softmax(teacher / T, 1), reduction="none").sum(1)[valid].mean()
    assert kd.item() == pytest.approx(T * T * kl.item(), abs=1e-12)
    hard = jml_distillation_loss(student, teacher, target, teacher_weight=0.0, label_weight=1.0, ce_weight=0.0,
                                 region_weight=1.0, **kw)
    assert hard.item() == L.jaccard_metric_loss(student, target, ignore_index=IGNORE, classes="present").item()
    soft = jml_distillation_loss(student, teacher, target, teacher_weight=1.0, label_weight=0.0, ce_weight=0.0,
                                 region_weight=1.0, **kw)
    q_t = torch.softmax(teacher / T, 1)  # the student is not tempered in the JML: softmax(student) vs q_t
    assert soft.item() == pytest.approx(L.jaccard_metric_loss(student, q_t, valid, classes="all").item(), abs=1e-14)
    assert soft.item() != pytest.approx(L.jaccard_metric_loss(student / T, q_t, valid, classes="all").item())
    nothing = jml_distillation_loss(student, teacher, target, ce_weight=0.0, region_weight=0.0, **kw)
    assert nothing.item() == 0.0


def test_explicit_classes_apply_to_both_jml_terms():
    student, teacher, target = inputs()
    valid = target != IGNORE
    q_t = torch.softmax(teacher, 1)
    for classes in ("all", [0, 3]):
        got = jml_distillation_loss(student, teacher, target, ce_weight=0.0, region_weight=1.0, classes=classes,
                                    ignore_index=IGNORE)
        want = 0.5 * L.jaccard_metric_loss(student, target, classes=classes, ignore_index=IGNORE) \
            + 0.5 * L.jaccard_metric_loss(student, q_t, valid, classes=classes)
        assert got.item() == pytest.approx(want.item(), abs=1e-14)


def test_region_options_reach_the_jml():
    student, teacher, target = inputs()
    kw = dict(ignore_index=IGNORE, aggregate="image", variant=2, smooth=0.0, gamma=2.0)
    valid = target != IGNORE
    got = jml_distillation_loss(student, teacher, target, ce_weight=0.0, region_weight=1.0, **kw)
    want = 0.5 * L.jaccard_metric_loss(student, target, **kw) \
        + 0.5 * L.jaccard_metric_loss(student, torch.softmax(teacher, 1), valid, **kw)
    assert got.item() == pytest.approx(want.item(), abs=1e-14)


# ------------------------------------------------------------------------------------------ gradients
def test_student_gets_a_gradient_at_high_temperature_and_the_teacher_none():
    student, teacher, target = inputs(dtype=torch.float32)
    teacher = teacher.clamp(-1.5, 1.5).requires_grad_()  # softened at T = 4: no class above 0.5 anywhere
    student.requires_grad_()
    loss = jml_distillation_loss(student, teacher, target, temperature=4.0, ignore_index=IGNORE)
    (g_student, g_teacher) = torch.autograd.grad(loss, (student, teacher), allow_unused=True)
    assert g_teacher is None
    assert g_student.abs().sum() > 0
    # ... from the teacher's JML term alone too (it used to be exactly 0: "present" meant a probability > 0.5)
    assert torch.softmax(teacher.detach() / 4, 1).max() < 0.5
    jml_t = jml_distillation_loss(student, teacher, target, temperature=4.0, ignore_index=IGNORE, label_weight=0.0,
                                  ce_weight=0.0)
    (g,) = torch.autograd.grad(jml_t, student)
    assert jml_t.item() > 0 and g.abs().sum() > 0
    # ignored pixels get no gradient
    assert torch.count_nonzero(g_student.permute(0, 2, 3, 1)[target == IGNORE]) == 0


def test_gradcheck_float64():
    student, teacher, target = inputs(B=2, C=3, spatial=(2, 3))
    student.requires_grad_()
    mask = torch.ones(2, 2, 3, dtype=torch.bool)
    mask[1, 1, 2] = False
    for T in (1.0, 3.0):
        assert torch.autograd.gradcheck(
            lambda z: jml_distillation_loss(z, teacher, target, mask, temperature=T, ignore_index=IGNORE),
            (student,), eps=1e-6, atol=1e-6)


def test_all_ignored_gives_zero_loss_and_zero_gradient():
    student, teacher, _ = inputs()
    student.requires_grad_()
    target = torch.full((2, 5, 6), IGNORE)
    loss = jml_distillation_loss(student, teacher, target, temperature=2.0, ignore_index=IGNORE)
    (g,) = torch.autograd.grad(loss, student)
    assert loss.item() == 0.0 and torch.count_nonzero(g) == 0
    mask = torch.zeros(2, 5, 6, dtype=torch.bool)
    assert jml_distillation_loss(student, teacher, torch.zeros(2, 5, 6, dtype=torch.long), mask).item() == 0.0


def test_half_precision_logits_give_finite_values():
    student, teacher, target = inputs(dtype=torch.float32)
    z = student.to(torch.bfloat16).requires_grad_()
    loss = jml_distillation_loss(z, teacher.to(torch.bfloat16), target, temperature=2.0, ignore_index=IGNORE)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and torch.isfinite(z.grad).all()
    ref = jml_distillation_loss(z.detach().float(), teacher.to(torch.bfloat16).float(), target, temperature=2.0,
                                ignore_index=IGNORE)
    assert loss.item() == pytest.approx(ref.item(), abs=1e-5)


# ------------------------------------------------------------------------------------------ module, errors
def test_module_options_and_repr():
    assert repr(JMLDistillationLoss()) == "JMLDistillationLoss()"
    crit = JMLDistillationLoss(temperature=4, ignore_index=IGNORE, aggregate="image")
    assert repr(crit) == "JMLDistillationLoss(temperature=4.0, aggregate='image', ignore_index=255)"
    student, teacher, target = inputs()
    assert crit(student, teacher, target).item() == jml_distillation_loss(
        student, teacher, target, temperature=4.0, ignore_index=IGNORE, aggregate="image").item()
    assert "JMLDistillationLoss" in L.__all__ and "jml_distillation_loss" in L.__all__


BAD_OPTIONS = [
    (dict(temperature=0), ValueError, r"Expected `temperature` to be a number > 0, but got 0.0\."),
    (dict(temperature="2"), TypeError, r"Expected `temperature` to be a real number, but got '2' \(str\)\."),
    (dict(label_weight=-1), ValueError, r"Expected `label_weight` to be a number >= 0"),
    (dict(teacher_weight=None), TypeError, r"Expected `teacher_weight` to be a real number"),
    (dict(ce_weight=float("nan")), ValueError, r"Expected `ce_weight` to be a finite number"),
    (dict(region_weight=-0.1), ValueError, r"Expected `region_weight` to be a number >= 0"),
    (dict(smooth=-1.0), ValueError, r"Expected `smooth` to be a number >= 0"),
    (dict(aggregate="pixel"), ValueError, "`aggregate`"),
    (dict(variant=3), ValueError, r"Expected `variant` to be one of \(1, 2\)"),
    (dict(ignore_index=1.5), TypeError, "`ignore_index` to be None or an int"),
    (dict(mode="binary"), TypeError, r"unknown option\(s\) \['mode'\]"),
    (dict(reduction="mean"), TypeError, r"unknown option\(s\) \['reduction'\]"),
]


@pytest.mark.parametrize("bad,exc,match", BAD_OPTIONS)
def test_bad_options_name_the_argument(bad, exc, match):
    with pytest.raises(exc, match=match):
        JMLDistillationLoss(**bad)
    student, teacher, target = inputs(ignored=False)
    with pytest.raises(exc, match=match):
        jml_distillation_loss(student, teacher, target, **bad)


def test_bad_tensors_name_the_argument():
    student, teacher, target = inputs(ignored=False)
    crit = JMLDistillationLoss()
    cases = [
        ((student.long(), teacher, target), TypeError, "`student_logits` to be a floating-point"),
        ((student, [1.0], target), TypeError, "`teacher_logits` to be a torch.Tensor"),
        ((student, teacher[:, :3], target), ValueError, r"`teacher_logits` of the shape of `student_logits` "
                                                        r"\(2, 4, 5, 6\), but got \(2, 3, 5, 6\)"),
        ((student[0, 0, 0], teacher[0, 0, 0], target), ValueError, r"`student_logits` of shape \(B, C, \*spatial\)"),
        ((student, teacher, torch.softmax(teacher, 1)), TypeError, "`target` to hold the hard labels"),
        ((student, teacher, target[:, :3]), ValueError, "`target` .* of shape"),
        ((student, teacher, target + 4), ValueError, r"`target` values in \[0, 3\]"),
        ((student, teacher.clone().fill_(float("nan")), target), ValueError, "`teacher_logits` to be finite"),
        ((student, teacher, target, torch.ones(2, 5, 6)), TypeError, "`mask` to be a bool"),
    ]
    for args, exc, match in cases:
        with pytest.raises(exc, match=match):
            crit(*args)
