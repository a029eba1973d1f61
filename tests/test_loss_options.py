"""Losses: options by name (strict), bool targets and non-finite logits (one error from every loss)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import jmlkit.losses as L
from jmlkit.losses import (CompoundLoss, DiceSemimetricLoss, JaccardMetricLoss, LovaszSoftmaxLoss,
                           SoftJaccardLoss, TverskyMetricLoss)
from test_losses import rand_inputs


# ------------------------------------------------------------------------------------------ options by name
UNKNOWN_OPTIONS = [  # (name, options, message): every name of LOSS_NAMES refuses what it does not use
    ("ce", dict(class_weights=[1, 2], nonsense=1), r"get_loss\('ce'\) got unknown option\(s\) \['nonsense'\]; "
     r"expected some of \['class_weights', 'ignore_index', 'mode', 'sync_distributed', 'validate_args'\]\."),
    ("ce", dict(smooth=1.0), r"get_loss\('ce'\) got unknown option\(s\) \['smooth'\]"),
    ("lovasz", dict(smooth=2.0, nonsense=1), r"LovaszSoftmaxLoss got unknown option\(s\) \['nonsense', 'smooth'\]; "
     r"expected some of \['classes', 'from_logits', 'ignore_index', 'mode', 'per_image', 'sync_distributed', "
     r"'validate_args'\]\."),
    ("ce+lovasz", dict(aggregate="image"), r"LovaszSoftmaxLoss got unknown option\(s\) \['aggregate'\]"),
    ("jml", dict(nonsense=1), r"JaccardMetricLoss got unknown option\(s\) \['nonsense'\]; expected some of "
     r"\['aggregate', 'class_weights', .*'variant'\]\."),
    ("jml1", dict(per_image=True), r"JaccardMetricLoss got unknown option\(s\) \['per_image'\]"),
    ("jml2", dict(alpha=0.5), r"JaccardMetricLoss got unknown option\(s\) \['alpha'\]"),
    ("dml", dict(variant=2), r"DiceSemimetricLoss got unknown option\(s\) \['variant'\]"),
    ("sjl", dict(temperature=2.0), r"SoftJaccardLoss got unknown option\(s\) \['temperature'\]"),
    ("ce+dml", dict(nonsense=1), r"DiceSemimetricLoss got unknown option\(s\) \['nonsense'\]"),
    ("jml", dict(ce_weight=0.5), r"get_loss\('jml'\) got option\(s\) \['ce_weight'\], which only a compound loss"),
    ("ce", dict(region_weight=0.5), r"get_loss\('ce'\) got option\(s\) \['region_weight'\]"),
    ("lovasz", dict(ce_weight=0.1, region_weight=0.9), r"\['ce_weight', 'region_weight'\]"),
]


def test_every_loss_name_is_in_the_unknown_option_table():
    assert {name for name, _, _ in UNKNOWN_OPTIONS} >= set(L.LOSS_NAMES)


@pytest.mark.parametrize("name,options,message", UNKNOWN_OPTIONS)
def test_get_loss_refuses_options_the_loss_does_not_use(name, options, message):
    with pytest.raises(TypeError, match=message):
        L.get_loss(name, **options)


def _weighted(z, y, w, **kw):
    return F.cross_entropy(z, y, weight=torch.tensor(w, dtype=z.dtype), **kw)


HONOURED = [  # (name, options, inputs -> loss of the named loss, inputs -> the same by another route)
    ("ce", dict(class_weights=[1.0, 2.0, 0.5, 3.0]), lambda z, t, y: (z, t),
     lambda z, t, y: _weighted(z, t, [1.0, 2.0, 0.5, 3.0])),
    ("ce", dict(class_weights=torch.tensor([1.0, 2.0, 0.5, 3.0]), ignore_index=3), lambda z, t, y: (z, t),
     lambda z, t, y: _weighted(z, t, [1.0, 2.0, 0.5, 3.0], ignore_index=3)),
    ("ce", dict(class_weights=[1.0, 2.0, 0.5, 3.0]), lambda z, t, y: (z, y),
     lambda z, t, y: _weighted(z, y, [1.0, 2.0, 0.5, 3.0])),
    ("ce", dict(class_weights=[1.0, 2.0, 0.5, 3.0], mode="multilabel"), lambda z, t, y: (z, y),
     lambda z, t, y: F.binary_cross_entropy_with_logits(
         z, y, weight=torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=z.dtype).view(1, 4, 1, 1))),
    ("ce", dict(ignore_index=2), lambda z, t, y: (z, t), lambda z, t, y: F.cross_entropy(z, t, ignore_index=2)),
    ("lovasz", dict(per_image=True, classes="all"), lambda z, t, y: (z, t),
     lambda z, t, y: torch.stack([L.lovasz_softmax_loss(z[b:b + 1], t[b:b + 1], classes="all")
                                  for b in range(z.shape[0])]).mean()),
    ("jml", dict(aggregate="image", smooth=0.0), lambda z, t, y: (z, y),
     lambda z, t, y: L.jaccard_metric_loss(z, y, aggregate="image", smooth=0.0)),
    ("dml", dict(class_weights=[1.0, 0.0, 0.0, 0.0]), lambda z, t, y: (z, y),
     lambda z, t, y: L.dice_semimetric_loss(z, y, classes=[0])),
]


@pytest.mark.parametrize("name,options,args,expected", HONOURED)
def test_get_loss_honours_the_options_it_documents(name, options, args, expected):
    z, t, y = rand_inputs(C=4)
    got = L.get_loss(name, **options)(*args(z, t, y))
    torch.testing.assert_close(got, expected(z, t, y), atol=1e-10, rtol=1e-9)
    plain = L.get_loss(name)(*args(z, t, y))
    assert not torch.isclose(got, plain), "the option changed nothing"


def test_weighted_cross_entropy_with_zero_weight_of_every_present_class_is_zero():
    z = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = L.soft_cross_entropy(z, torch.zeros(1, 2, 2, dtype=torch.long), class_weights=[0.0, 1.0, 1.0])
    loss.backward()
    assert loss.item() == 0.0 and bool((z.grad == 0).all())


# ------------------------------------------------------------------------------------------ one contract
CONTRACT_LOSSES = {
    "jml": lambda **k: JaccardMetricLoss(**k), "dml": lambda **k: DiceSemimetricLoss(**k),
    "tversky": lambda **k: TverskyMetricLoss(**k), "sjl": lambda **k: SoftJaccardLoss(**k),
    "lovasz": lambda **k: LovaszSoftmaxLoss(**k), "ce": lambda **k: L.CrossEntropyLoss(**k),
    "get_loss(ce)": lambda **k: L.get_loss("ce", **k), "ce+jml": lambda **k: CompoundLoss("jml", **k),
    "ce alone": lambda **k: CompoundLoss("jml", region_weight=0.0, **k),
    "ce+lovasz": lambda **k: CompoundLoss("lovasz", **k),
    "distillation": lambda **k: (lambda z, t: L.JMLDistillationLoss(**k)(z, z.detach(), t)),
}


@pytest.mark.parametrize("name", sorted(CONTRACT_LOSSES))
def test_bool_target_in_multiclass_mode_is_refused(name):
    """Before: read silently as the classes 0 and 1."""
    z, target = torch.randn(2, 3, 4, 4), torch.rand(2, 4, 4) > 0.5
    with pytest.raises(TypeError, match=r"Expected `target` to hold integer class indices or float probabilities in "
                                        r"multiclass mode, but got a bool tensor"):
        CONTRACT_LOSSES[name]()(z, target)


@pytest.mark.parametrize("name", sorted(CONTRACT_LOSSES))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_give_one_error_from_every_loss(name, bad):
    """Before: the cross-entropy and the Lovász loss returned NaN where the region losses raised."""
    z, target = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    z[1, 2, 3, 0] = bad
    arg = "student_logits" if name == "distillation" else "logits"
    with pytest.raises(ValueError, match=rf"Expected `{arg}` to be finite, but it holds NaN or Inf values\."):
        CONTRACT_LOSSES[name]()(z, target)


@pytest.mark.parametrize("name", ["jml", "ce", "lovasz", "ce+jml"])
def test_finite_logits_whose_sum_overflows_are_accepted(name):
    z = torch.full((2, 3, 4, 4), 3e38)  # their sum is Inf in float32: the exact check decides
    assert torch.isfinite(CONTRACT_LOSSES[name]()(z, torch.randint(0, 3, (2, 4, 4))))


def _lovasz_binary(z, t, **kw):
    return L.lovasz_softmax_loss(z, t.squeeze(1), **kw)


@pytest.mark.parametrize("fn,mode,C", [(fn, mode, C) for fn in (L.jaccard_metric_loss, L.dice_semimetric_loss,
                                                                 L.soft_cross_entropy, _lovasz_binary)
                                       for mode, C in (("binary", 1), ("multilabel", 3))
                                       if not (fn is _lovasz_binary and mode == "multilabel")])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_bool_target_is_a_foreground_mask_in_binary_and_multilabel_modes(fn, mode, C, ignore_index):
    """Kept: a bool target is read as the 0/1 foreground, the same as its integer and float forms."""
    z, mask = torch.randn(2, C, 4, 4, dtype=torch.float64), torch.rand(2, C, 4, 4) > 0.5
    as_bool = fn(z, mask, mode=mode, ignore_index=ignore_index)
    torch.testing.assert_close(as_bool, fn(z, mask.long(), mode=mode, ignore_index=ignore_index))
    if fn is not _lovasz_binary:  # the Lovász loss takes hard labels only
        torch.testing.assert_close(as_bool, fn(z, mask.double(), mode=mode))


def test_class_weight_tensors_are_checked_once_until_they_change():
    """A tensor of class weights (e.g. on the GPU) is checked on its first call only; writing into it makes the
    next call check it again, so a weight made negative in place is still reported."""
    from jmlkit.losses import _validation as V

    logits, target = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    w = torch.tensor([1.0, 2.0, 0.5])
    assert not V.weights_checked(w)
    first = L.jaccard_metric_loss(logits, target, class_weights=w, aggregate="class")
    assert V.weights_checked(w)
    torch.testing.assert_close(L.jaccard_metric_loss(logits, target, class_weights=w, aggregate="class"), first)
    w[1] = -1.0
    assert not V.weights_checked(w)
    with pytest.raises(ValueError, match="finite and non-negative"):
        L.jaccard_metric_loss(logits, target, class_weights=w, aggregate="class")
    with pytest.raises(ValueError, match="finite and non-negative"):
        L.soft_cross_entropy(logits, target, class_weights=w)
