"""Properties the papers prove: metric axioms, the semimetric counterexample, and the minimiser at a soft target."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import jmlkit.losses as L

N = 6
unit = st.floats(0.0, 1.0, allow_nan=False, width=64)
vector = st.lists(unit, min_size=N, max_size=N)


def distance(kind: str, x, y) -> float:
    """The loss as a function of two vectors in [0, 1]^n (binary mode on probabilities, no smoothing)."""
    x = torch.tensor(x, dtype=torch.float64).view(1, 1, -1)
    y = torch.tensor(y, dtype=torch.float64).view(1, 1, -1)
    kw = dict(mode="binary", from_logits=False, smooth=0.0, classes="all")
    if kind == "jml1":
        return L.jaccard_metric_loss(x, y, **kw).item()
    if kind == "jml2":
        return L.jaccard_metric_loss(x, y, variant=2, **kw).item()
    return L.dice_semimetric_loss(x, y, **kw).item()


@pytest.mark.parametrize("kind", ["jml1", "jml2", "dml"])
@given(x=vector, y=vector)
def test_identity_and_symmetry(kind, x, y):
    assert distance(kind, x, x) == pytest.approx(0.0, abs=1e-12)
    d = distance(kind, x, y)
    assert d == pytest.approx(distance(kind, y, x), abs=1e-12)
    if not np.allclose(x, y, atol=1e-9, rtol=0):
        assert d > 0
    assert 0.0 <= d <= 1.0 + 1e-12


@pytest.mark.parametrize("kind", ["jml1", "jml2"])
@given(x=vector, y=vector, z=vector)
def test_triangle_inequality(kind, x, y, z):
    assert distance(kind, x, z) <= distance(kind, x, y) + distance(kind, y, z) + 1e-9


def test_dice_semimetric_breaks_the_triangle_inequality():
    """The documented counterexample: DML(x, y) = 1 > DML(x, z) + DML(z, y) = 2/3."""
    x, z, y = [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]
    assert distance("dml", x, y) == pytest.approx(1.0)
    assert distance("dml", x, z) + distance("dml", z, y) == pytest.approx(2 / 3)
    # ... while the Jaccard metric loss keeps it on the same points: 1 <= 1/2 + 1/2
    assert distance("jml1", x, y) <= distance("jml1", x, z) + distance("jml1", z, y) + 1e-12


@pytest.mark.parametrize("kind", ["jml1", "jml2", "dml"])
@given(y=vector)
def test_hard_labels_equal_soft_jaccard(kind, y):
    """On {0, 1} targets the L1 forms equal the classic soft losses, for any prediction."""
    x = torch.tensor(y, dtype=torch.float64).view(1, 1, -1)
    hard = (torch.rand(1, 1, N, dtype=torch.float64) > 0.5).double()
    kw = dict(mode="binary", from_logits=False, smooth=0.0, classes="all")
    classic = L.soft_jaccard_loss(x, hard, **kw).item()
    if kind == "dml":
        inter = (x * hard).sum()
        classic = (1 - 2 * inter / (x.sum() + hard.sum())).item() if (x.sum() + hard.sum()) > 0 else 0.0
    ours = distance(kind, x.flatten().tolist(), hard.flatten().tolist())
    assert ours == pytest.approx(classic, abs=1e-12)


def optimise(fn, target, steps=400):
    z = torch.zeros_like(target, requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        fn(z, target).backward()
        opt.step()
        sched.step()
    return (torch.softmax(z.detach(), 1) - target).abs().max().item()


def test_minimiser_is_the_soft_target():
    """Free logits optimised toward a soft target reach it with the JML; the soft Jaccard loss does not."""
    torch.manual_seed(0)
    target = torch.softmax(torch.randn(1, 4, 32), 1)
    kw = dict(classes="all", smooth=0.0, validate_args=False)
    err = {
        "jml1": optimise(lambda z, y: L.jaccard_metric_loss(z, y, **kw), target),
        "jml2": optimise(lambda z, y: L.jaccard_metric_loss(z, y, variant=2, **kw), target),
        "dml": optimise(lambda z, y: L.dice_semimetric_loss(z, y, **kw), target),
        "sjl": optimise(lambda z, y: L.soft_jaccard_loss(z, y, **kw), target),
    }
    assert err["jml1"] < 1e-3 and err["jml2"] < 1e-3 and err["dml"] < 1e-3
    # the soft Jaccard loss drives the probabilities towards a vertex: the error is of the order of the target itself
    assert err["sjl"] > 0.3, err


def test_soft_jaccard_is_lower_away_from_the_target():
    """The bias in one line: with y = (0.5, 0.5) the soft Jaccard loss prefers a sharper prediction than y."""
    y = torch.tensor([[[0.5], [0.5]]])
    kw = dict(classes="all", smooth=0.0, from_logits=False)
    at_target = L.soft_jaccard_loss(y, y, **kw).item()
    sharper = L.soft_jaccard_loss(torch.tensor([[[0.9], [0.1]]]), y, **kw).item()
    assert at_target == pytest.approx(2 / 3)
    assert L.jaccard_metric_loss(y, y, **kw).item() == pytest.approx(0.0)
    assert sharper < at_target + 0.2  # no longer minimal at the target (the loss is flat-to-decreasing towards a vertex)
