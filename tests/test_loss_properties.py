"""Properties the papers prove: metric axioms, the semimetric counterexample, and the minimiser at a soft target."""
from __future__ import annotations

from fractions import Fraction

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


# One pixel, two classes, classes="all", no smoothing: each loss in closed form, in exact fractions.
def sjl_closed_form(x, y) -> Fraction:
    """Soft Jaccard loss ``1 - mean_c x_c y_c / (x_c + y_c - x_c y_c)``."""
    return 1 - sum(a * b / (a + b - a * b) for a, b in zip(x, y)) / len(x)


def jml_closed_form(x, y) -> Fraction:
    """Jaccard metric loss ``1 - mean_c I_c / U_c``; on one pixel ``I_c = min(x_c, y_c)``, ``U_c = max(x_c, y_c)``."""
    return 1 - sum(min(a, b) / max(a, b) for a, b in zip(x, y)) / len(x)


def pixel_loss(fn, x, y) -> float:
    """The loss of jmlkit on the probabilities ``x`` of one pixel against the soft target ``y`` (float64)."""
    x, y = (torch.tensor([float(v) for v in v_], dtype=torch.float64).view(1, -1, 1) for v_ in (x, y))
    return fn(x, y, classes="all", smooth=0.0, from_logits=False).item()


def edge(u) -> tuple:
    """The point ``(u, 1 - u)`` of the probability simplex of two classes."""
    return (u, 1 - u)


def test_soft_jaccard_is_not_minimised_at_a_soft_target():
    """For y = (0.3, 0.7) the soft Jaccard loss is lower at a sharper prediction than at y itself.

    On the edge x = (u, 1 - u): SJL = 1 - (0.3u / (0.7u + 0.3) + 0.7(1 - u) / (1 - 0.3u)) / 2, whose derivative
    vanishes where 0.3 / (0.7u + 0.3) = 0.7 / (1 - 0.3u), i.e. at u* = 9/58 ~ 0.155 (sharper than u = 0.3).
    """
    y = edge(Fraction(3, 10))
    at_target = sjl_closed_form(y, y)
    sharper = edge(Fraction(1, 5))
    at_sharper = sjl_closed_form(sharper, y)
    best = sjl_closed_form(edge(Fraction(9, 58)), y)
    # by hand: 1 - (3/17 + 7/13)/2, 1 - (3/22 + 28/47)/2, 1 - (9/79 + 49/79)/2
    assert (at_target, at_sharper, best) == (Fraction(142, 221), Fraction(1311, 2068), Fraction(50, 79))
    assert best < at_sharper < at_target  # 0.6329 < 0.6339 < 0.6425
    assert pixel_loss(L.soft_jaccard_loss, y, y) == pytest.approx(float(at_target), abs=1e-12)
    assert pixel_loss(L.soft_jaccard_loss, sharper, y) == pytest.approx(float(at_sharper), abs=1e-12)
    assert pixel_loss(L.soft_jaccard_loss, edge(Fraction(9, 58)), y) == pytest.approx(float(best), abs=1e-12)
    grid = [pixel_loss(L.soft_jaccard_loss, edge(u), y) for u in np.linspace(0.0, 1.0, 201)]
    assert min(grid) >= float(best) - 1e-12
    # the Jaccard metric loss is 0 exactly at y (11/48 at the sharper prediction) and positive elsewhere
    assert pixel_loss(L.jaccard_metric_loss, y, y) == 0.0
    assert jml_closed_form(sharper, y) == Fraction(11, 48)
    assert pixel_loss(L.jaccard_metric_loss, sharper, y) == pytest.approx(11 / 48, abs=1e-12)
    assert all(pixel_loss(L.jaccard_metric_loss, edge(u), y) > 0 for u in np.linspace(0.0, 1.0, 201) if abs(u - 0.3) > 1e-9)


def test_soft_jaccard_at_the_uniform_target():
    """For y = (0.5, 0.5) the soft Jaccard loss is 2/3 at x = y and 150/209 ~ 0.718 (higher) at x = (0.9, 0.1):
    this symmetric target does not show the bias (on the edge x = (u, 1 - u) the loss is 1 - mean of
    x_c / (x_c + 1), concave terms whose sum is largest at u = 1/2). The JML is 0 at y and 28/45 at (0.9, 0.1)."""
    y = edge(Fraction(1, 2))
    x = (Fraction(9, 10), Fraction(1, 10))
    assert sjl_closed_form(y, y) == Fraction(2, 3)
    assert sjl_closed_form(x, y) == Fraction(150, 209)  # 1 - (9/19 + 1/11)/2
    assert jml_closed_form(x, y) == Fraction(28, 45)  # 1 - (5/9 + 1/5)/2
    assert pixel_loss(L.soft_jaccard_loss, y, y) == pytest.approx(2 / 3, abs=1e-12)
    assert pixel_loss(L.soft_jaccard_loss, x, y) == pytest.approx(150 / 209, abs=1e-12)
    assert pixel_loss(L.jaccard_metric_loss, y, y) == 0.0
    assert pixel_loss(L.jaccard_metric_loss, x, y) == pytest.approx(28 / 45, abs=1e-12)
    others = [u for u in np.linspace(0.0, 1.0, 201) if abs(u - 0.5) > 1e-9]
    assert all(pixel_loss(L.soft_jaccard_loss, edge(u), y) > 2 / 3 for u in others)
    assert all(pixel_loss(L.jaccard_metric_loss, edge(u), y) > 0 for u in others)
