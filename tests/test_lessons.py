"""Tests of jmlkit.lessons (the computations behind notebooks/01_jaccard_losses.ipynb) and of that notebook.

Every number the notebook shows is checked against direct calls of the :mod:`jmlkit.losses` functions, one point
at a time. Correctness only: the speed of a slider update is reported by the notebook, never asserted here.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jmlkit import lessons as L
from jmlkit.losses import (dice_semimetric_loss, jaccard_metric_loss, lovasz_softmax_loss, soft_cross_entropy,
                           soft_jaccard_loss)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_jaccard_losses.ipynb"
SOFT_LOSSES = ("ce", "jml1", "jml2", "dml")  # minimised at a soft target


# --------------------------------------------------------------------------------------------- the reference
def library_loss(name: str, pred, target, *, smooth: float = 0.0) -> torch.Tensor:
    """One point through the public loss functions: ``pred`` and ``target`` ``(N,)`` are one image of a binary
    problem (probabilities, ``classes="all"``); CE gets ``logit(pred)``, Lovász the target rounded at 0.5."""
    x = torch.as_tensor(pred, dtype=torch.float64).reshape(1, 1, -1)
    y = torch.as_tensor(target, dtype=torch.float64).reshape(1, 1, -1).expand_as(x).contiguous()
    if name == "ce":
        return soft_cross_entropy(torch.logit(x.clamp(1e-7, 1 - 1e-7)), y, mode="binary")
    if name == "lovasz":
        return lovasz_softmax_loss(x, (y >= 0.5).long(), mode="binary", from_logits=False)
    fn = {"jml1": jaccard_metric_loss, "jml2": lambda *a, **k: jaccard_metric_loss(*a, variant=2, **k),
          "dml": dice_semimetric_loss, "sjl": soft_jaccard_loss}[name]
    return fn(x, y, mode="binary", from_logits=False, classes="all", smooth=smooth)


def library_values(name, points, target, *, smooth=0.0) -> torch.Tensor:
    flat = points.reshape(-1, points.shape[-1])
    tgt = torch.as_tensor(target, dtype=torch.float64).expand_as(flat)
    return torch.stack([library_loss(name, p, t, smooth=smooth) for p, t in zip(flat, tgt)]).reshape(points.shape[:-1])


def library_descent(name, points, target, *, smooth=0.0) -> torch.Tensor:
    """Negative gradient w.r.t. the probabilities, one library call per point."""
    out = []
    for p in points.reshape(-1, points.shape[-1]):
        p = p.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(library_loss(name, p, target, smooth=smooth), p)
        out.append(-g)
    return torch.stack(out).reshape(points.shape)


# --------------------------------------------------------------------------------------------- pointwise losses
@pytest.mark.parametrize("name", L.LOSSES)
@pytest.mark.parametrize("n_pixels", [1, 2, 5])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_pointwise_matches_jmlkit_losses(name, n_pixels, smooth):
    g = torch.Generator().manual_seed(n_pixels)
    x = torch.rand(8, n_pixels, generator=g, dtype=torch.float64)
    y = torch.rand(8, n_pixels, generator=g, dtype=torch.float64)
    x[0], y[0] = 0.0, 0.0          # empty prediction of an empty target
    x[1] = y[1]                    # prediction equal to the target
    x[2], y[2] = 1.0, 0.0          # hard and opposite
    fast = L.pointwise_losses(x, y, losses=(name,), smooth=smooth)[name]
    ref = torch.stack([library_loss(name, x[i], y[i], smooth=smooth) for i in range(8)])
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-12)


def test_pointwise_one_pixel_closed_forms():
    x = torch.linspace(0.01, 1, 50, dtype=torch.float64).unsqueeze(1)
    y = torch.tensor([0.3], dtype=torch.float64)
    out = L.pointwise_losses(x, y, losses=("jml1", "dml", "sjl"))
    xs = x.squeeze(1)
    torch.testing.assert_close(out["jml1"], 1 - torch.minimum(xs, y) / torch.maximum(xs, y))
    torch.testing.assert_close(out["dml"], (xs - y).abs() / (xs + y))
    torch.testing.assert_close(out["sjl"], 1 - xs * y / (xs + y - xs * y))


def test_pointwise_broadcasts_and_differentiates():
    x = torch.rand(4, 3, 2, dtype=torch.float64, requires_grad=True)
    out = L.pointwise_losses(x, torch.tensor([0.2, 0.9]))
    assert all(v.shape == (4, 3) for v in out.values())
    sum(v.sum() for v in out.values()).backward()
    assert torch.isfinite(x.grad).all()


def test_pointwise_lovasz_with_a_target_per_point():
    x = torch.rand(6, 3, dtype=torch.float64)
    y = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.1, 0.2], [0.9, 0.8, 0.6]] * 2, dtype=torch.float64)
    out = L.pointwise_losses(x, y, losses=("lovasz",))["lovasz"]
    torch.testing.assert_close(out, torch.stack([library_loss("lovasz", x[i], y[i]) for i in range(6)]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(losses=("jml3",)), "losses"),
    (dict(losses=()), "losses"),
    (dict(smooth=-1.0), "smooth"),
])
def test_pointwise_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        L.pointwise_losses(torch.rand(2, 2), torch.rand(2), **kwargs)


def test_pointwise_rejects_bad_inputs():
    with pytest.raises(ValueError, match="pred"):
        L.pointwise_losses([1.5, 0.2], [0.1, 0.1])
    with pytest.raises(ValueError, match="target"):
        L.pointwise_losses(torch.rand(3, 2), torch.rand(3))
    with pytest.raises(TypeError, match="losses"):
        L.pointwise_losses(torch.rand(2), torch.rand(2), losses=3)


# --------------------------------------------------------------------------------------------- the notebook's numbers
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_curves_are_the_library_losses(smooth):
    res = L.loss_curves(0.3, grid=21, smooth=smooth)
    entropy = library_loss("ce", [0.3], [0.3])
    for name in L.LOSSES:
        ref = library_values(name, res.x.unsqueeze(1), [0.3], smooth=smooth)
        if name == "ce":
            ref = ref - entropy
        torch.testing.assert_close(res.values[name], ref, atol=1e-12, rtol=0, msg=name)
        assert res.minimisers[name] == pytest.approx(float(res.x[int(torch.argmin(ref))]))


@pytest.mark.parametrize("target", [(0.3, 0.7), (0.9, 0.5)])
def test_surfaces_are_the_library_losses_and_gradients(target):
    res = L.loss_surfaces(target, grid=7, arrow_grid=4)
    x2, x1 = torch.meshgrid(res.x, res.x, indexing="ij")
    pts = torch.stack([x1, x2], -1)
    a2, a1 = torch.meshgrid(res.arrow_x, res.arrow_x, indexing="ij")
    apts = torch.stack([a1, a2], -1)
    entropy = library_loss("ce", target, target)
    for name in L.LOSSES:
        ref = library_values(name, pts, target)
        torch.testing.assert_close(res.values[name], ref - entropy if name == "ce" else ref, atol=1e-12, rtol=0)
        torch.testing.assert_close(res.arrows[name], library_descent(name, apts, target), atol=1e-12, rtol=1e-9)


def test_race_is_adam_on_the_library_losses():
    target = L.race_target(3, 5, seed=2)
    res = L.race(target, losses=("jml2", "lovasz"), steps=4, lr=0.05, seed=2)
    z0 = 0.1 * torch.randn(target.shape, generator=torch.Generator().manual_seed(2))
    losses = {"jml2": lambda z: jaccard_metric_loss(z, target, variant=2, classes="all", smooth=0.0),
              "lovasz": lambda z: lovasz_softmax_loss(z, target.argmax(1), classes="all")}
    for name, fn in losses.items():
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.05)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
        for _ in range(4):
            opt.zero_grad()
            fn(z).backward()
            opt.step()
            sched.step()
        p = torch.softmax(z.detach(), 1)
        torch.testing.assert_close(res.probs[name], p[0])
        assert res.final[name] == pytest.approx(float((p - target).abs().max()))


def test_triangle_slack_is_the_library_losses():
    res = L.triangle_check(25, dim=3, seed=4)
    g = torch.Generator().manual_seed(4)
    x, z, y = (torch.rand(25, 3, generator=g, dtype=torch.float64) for _ in range(3))
    for name in L.METRIC_LOSSES:
        def d(a, b):
            return torch.stack([library_loss(name, a[i], b[i]) for i in range(25)])

        torch.testing.assert_close(res.slack[name], d(x, z) + d(z, y) - d(x, y), atol=1e-12, rtol=0)
        assert res.self_distance[name] == pytest.approx(float(d(x, x).max()), abs=1e-12)


# --------------------------------------------------------------------------------------------- one pixel
@pytest.mark.parametrize("y", [0.1, 0.3, 0.45, 0.7, 0.95])
def test_curve_minimisers(y):
    res = L.loss_curves(y, grid=201)
    for name in SOFT_LOSSES:
        assert res.minimisers[name] == pytest.approx(y, abs=1e-9), name
        assert float(res.values[name].min()) == pytest.approx(0.0, abs=1e-6)  # CE is shifted by H(y)
    assert res.minimisers["sjl"] == 1.0                  # SJL pushes every soft target to 1
    assert res.minimisers["lovasz"] == float(y >= 0.5)  # Lovász sees the rounded target


def test_curve_sjl_with_smoothing_flips_at_sqrt2_minus_1():
    t = math.sqrt(2) - 1
    assert L.loss_curves(t - 0.01, grid=101, smooth=1.0).minimisers["sjl"] == 0.0
    assert L.loss_curves(t + 0.01, grid=101, smooth=1.0).minimisers["sjl"] == 1.0
    assert L.loss_curves(0.3, grid=101, smooth=1.0).minimisers["jml1"] == pytest.approx(0.3)


def test_curve_rejects_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        L.loss_curves(1.2)
    with pytest.raises(ValueError, match="grid"):
        L.loss_curves(0.3, grid=1)


# --------------------------------------------------------------------------------------------- two pixels
@pytest.mark.parametrize("y", [(0.3, 0.7), (0.1, 0.2), (0.9, 0.5), (0.0, 0.6)])
def test_surface_minimisers_and_arrows(y):
    res = L.loss_surfaces(y, grid=21, arrow_grid=9)
    assert res.values["jml1"].shape == (21, 21) and res.arrows["jml1"].shape == (9, 9, 2)
    for name in SOFT_LOSSES:
        assert res.minimisers[name] == pytest.approx(y, abs=1e-9), name
    assert res.minimisers["sjl"] != pytest.approx(y, abs=0.05)
    # every arrow of a loss minimised at the target points toward it (descent direction . (y - x) > 0)
    a2, a1 = torch.meshgrid(res.arrow_x, res.arrow_x, indexing="ij")
    to_target = torch.tensor(y, dtype=torch.float64) - torch.stack([a1, a2], -1)
    far = to_target.norm(dim=-1) > 1e-9
    for name in SOFT_LOSSES:
        assert bool(((res.arrows[name] * to_target).sum(-1)[far] > 0).all()), name
    assert bool(((res.arrows["sjl"] * to_target).sum(-1)[far] < 0).any())


def test_surface_values_are_indexed_x2_x1():
    res = L.loss_surfaces((0.2, 0.8), grid=11, arrow_grid=3, losses=("jml1",))
    i2, i1 = divmod(int(torch.argmin(res.values["jml1"])), 11)
    assert (float(res.x[i1]), float(res.x[i2])) == pytest.approx((0.2, 0.8))


def test_sjl_arrow_points_away_from_soft_target():
    # at x = (0.5, 0.5) with y = (0.3, 0.3) gradient descent on SJL raises both probabilities
    res = L.loss_surfaces((0.3, 0.3), grid=5, arrow_grid=1, losses=("sjl", "jml1"))
    assert bool((res.arrows["sjl"][0, 0] > 0).all())
    assert bool((res.arrows["jml1"][0, 0] < 0).all())


def test_surface_rejects_bad_target():
    with pytest.raises(ValueError, match="2 probabilities"):
        L.loss_surfaces((0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="arrow_grid"):
        L.loss_surfaces((0.1, 0.2), arrow_grid=0)


# --------------------------------------------------------------------------------------------- the race
def test_race_metric_losses_reach_the_soft_target():
    target = L.race_target(3, 16, seed=1)
    res = L.race(target, losses=("jml1", "jml2", "dml", "sjl"), steps=300, lr=0.1, seed=1)
    for name in ("jml1", "jml2", "dml"):
        assert res.final[name] < 1e-3, (name, res.final[name])
    assert res.final["sjl"] > 0.1
    assert res.distance["jml1"].shape == (301,)
    assert float(res.distance["jml1"][0]) > res.final["jml1"]
    torch.testing.assert_close(res.probs["jml1"].sum(0), torch.ones(16))


def test_race_target_is_a_soft_distribution():
    t = L.race_target(4, 10, temperature=2.0, seed=3)
    assert t.shape == (1, 4, 10)
    torch.testing.assert_close(t.sum(1), torch.ones(1, 10))
    assert float(t.max()) < 1.0 and float(t.min()) > 0.0
    torch.testing.assert_close(t, L.race_target(4, 10, temperature=2.0, seed=3))


def test_race_rejects_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        L.race(torch.rand(3, 4))
    with pytest.raises(ValueError, match="steps"):
        L.race(L.race_target(2, 3), steps=0)
    with pytest.raises(ValueError, match="num_classes"):
        L.race_target(1, 3)


# --------------------------------------------------------------------------------------------- triangle inequality
def test_triangle_jml_never_violated_dml_is():
    res = L.triangle_check(1000, dim=2, seed=0)
    assert res.violations["jml1"] == 0 and res.violations["jml2"] == 0
    assert res.violations["dml"] > 0
    assert res.self_distance["jml1"] == 0 and res.self_distance["dml"] == 0
    assert res.self_distance["sjl"] > 0.5          # SJL(x, x) != 0: not a metric
    x, z, y = res.worst["dml"]
    assert float(library_loss("dml", x, y)) > float(library_loss("dml", x, z) + library_loss("dml", z, y))


@pytest.mark.parametrize("distribution", ["sparse", "binary"])
def test_triangle_other_distributions(distribution):
    res = L.triangle_check(1000, dim=5, distribution=distribution, seed=1)
    assert res.violations["jml1"] == 0 and res.violations["jml2"] == 0
    assert res.slack["dml"].shape == (1000,)


def test_triangle_known_dml_counterexample():
    x, z, y = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])
    out = L.pointwise_losses(torch.stack([x, x, z]), torch.stack([y, z, y]), losses=("dml", "jml1"))
    torch.testing.assert_close(out["dml"], torch.tensor([1.0, 1 / 3, 1 / 3]))
    torch.testing.assert_close(out["jml1"], torch.tensor([1.0, 0.5, 0.5]))


def test_triangle_rejects_bad_arguments():
    with pytest.raises(ValueError, match="distribution"):
        L.triangle_check(10, distribution="gaussian")
    with pytest.raises(ValueError, match="losses"):
        L.triangle_check(10, losses=("ce",))


# --------------------------------------------------------------------------------------------- reports
def test_lessons_draw_nothing_and_never_import_plot():
    """jmlkit.plot imports jmlkit.lessons (its figures draw these results), never the other way round."""
    code = "import sys, jmlkit.lessons; print(sorted(m for m in sys.modules if m.startswith(('jmlkit.plot', 'matplotlib'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert not hasattr(L, "seconds_per_update") and not hasattr(L, "LOSS_LABELS")


def test_abbreviations_name_every_loss():
    assert [L.abbreviation(n) for n in L.LOSSES] == ["CE", "SJL", "JML1", "JML2", "DML", "Lovász"]
    with pytest.raises(ValueError, match="Expected `name` to be one of"):
        L.abbreviation("kl")


@pytest.fixture(scope="module")
def results():
    return (L.loss_curves(0.3, grid=11), L.loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3),
            L.race(L.race_target(2, 4), steps=2), L.triangle_check(20))


def test_summary_is_scalar_only(results):
    timing = {"curves": {"wall_s": 0.5, "cpu_s": 0.25}}
    out = L.summary(*results, timing=timing)
    assert all(isinstance(v, (int, float)) for v in out.values())
    assert out["curve_minimiser_jml1"] == pytest.approx(0.3)
    assert out["surface_minimiser_sjl_x2"] == 1.0
    assert "race_final_distance_jml1" in out and "triangle_violations_dml" in out
    assert (out["slider_curves_wall_s"], out["slider_curves_cpu_s"]) == (0.5, 0.25)


def test_findings_are_written_from_the_numbers(results):
    curves, surfaces, race, triangle = results
    timing = {k: {"wall_s": 0.125, "cpu_s": 0.0625} for k in ("curves", "surfaces")}
    text = L.findings(curves, surfaces, race, triangle, timing, profile="smoke")
    assert text.startswith("* **One pixel, target 0.30** (smoke profile, grid of 11 points)")
    assert "the target for CE, JML1, JML2, DML;" in text
    assert "; ".join(f"{L.abbreviation(k)} {d:.1e}" for k, d in race.final.items()) in text
    assert "the soft Jaccard loss at\n  (0.0, 1.0)." in text
    assert f"DML {triangle.violations['dml']} ({100 * triangle.violations['dml'] / 20:.1f}%)" in text
    assert "0.125 s wall / 0.062 s CPU" in text and len(text.splitlines()) == 14


def test_describe_worst_triple():
    x, z, y = [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]
    tri = L.TriangleResult(slack={}, violations={}, self_distance={}, worst={"dml": (x, z, y)}, n=1, dim=2,
                           distribution="binary", tol=0.0)
    assert L.describe_worst_triple(tri) == ("The worst DML triple: x = [1.0, 0.0], z = [1.0, 1.0], y = [0.0, 1.0]: "
                                            "DML(x, y) = 1.000 > DML(x, z) + DML(z, y) = 0.333 + 0.333 = 0.667.")
    with pytest.raises(ValueError, match="name"):
        L.describe_worst_triple(tri, "jml1")


# --------------------------------------------------------------------------------------------- the notebook
def test_notebook_is_clean_and_well_formed():
    import nbformat

    from jmlkit.runner import check_notebook_clean, notebook_parameters

    assert check_notebook_clean(NOTEBOOK) == []
    params = notebook_parameters(NOTEBOOK)
    assert params["profile"]["default"] == '"quick"'
    assert all(p["help"] for p in params.values()), "every parameter needs a comment"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    hidden = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("jupyter", {}).get("source_hidden")]
    assert len(hidden) == 1
    assert any(c.cell_type == "markdown" and "Solution" in c.source for c in nb.cells)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert all(len(src.splitlines()) <= 15 for src in code)
    assert not any("jmlkit.explain" in src or "jmlkit.utils" in src or "from jmlkit import explain" in src
                   for src in code)


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_notebook_runs_under_papermill(tmp_path):
    papermill = pytest.importorskip("papermill")
    out_nb = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out_nb), parameters=dict(profile="smoke", output_dir=str(tmp_path)),
                               kernel_name="python3", cwd=str(NOTEBOOK.parent), progress_bar=False,
                               execution_timeout=180, start_timeout=120)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["curve_minimiser_jml1"] == pytest.approx(0.3)
    assert metrics["triangle_violations_jml1"] == 0
    assert metrics["slider_surfaces_wall_s"] > 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert {"one_pixel_losses.png", "two_pixel_maps.png", "race.png", "triangle_inequality.png"} <= set(pngs)


def test_minimiser_sentence_is_written_from_the_curves():
    from jmlkit.lessons.geometry import minimiser_sentence

    q = torch.linspace(0, 1, 101)
    curves = {"at": (q - 0.3) ** 2, "low": (q - 0.12) ** 2, "high": -q}
    text = minimiser_sentence(q, curves, 0.3, names={"at": "A"})
    assert text == ("Minimum over q: A at q = 0.30 (the target 0.3); low at q = 0.12, 0.18 below the target, "
                    "towards 0; high at q = 1.00, 0.70 above the target, towards 1.")
    # the real case of notebook 05: y = (0.7, 0.3), p = (1 - q, q) on every pixel
    from jmlkit.losses import jaccard_metric_loss, soft_jaccard_loss

    y = torch.tensor([0.7, 0.3]).view(1, 2, 1, 1).expand(1, 2, 8, 8)
    pred = [torch.stack([1 - v, v]).view(1, 2, 1, 1).expand(1, 2, 8, 8) for v in q]
    real = {"jml": [float(jaccard_metric_loss(p, y, from_logits=False)) for p in pred],
            "sjl": [float(soft_jaccard_loss(p, y, from_logits=False)) for p in pred]}
    words = minimiser_sentence(q, real, 0.3)
    assert "jml at q = 0.30 (the target 0.3)" in words and "sjl at q = 0.12, 0.18 below the target" in words
    # the SJL's minimiser depends on its smoothing term against the number of pixels: hence a generated sentence
    assert minimiser_sentence(q, {"sjl": [float(soft_jaccard_loss(p[..., :2, :2], y[..., :2, :2], from_logits=False))
                                          for p in pred]}, 0.3).count("sjl at q = 0.12") == 0
    with pytest.raises(ValueError, match="`grid`"):
        minimiser_sentence([0.5, 0.1], {"a": [1, 2]}, 0.3)
    with pytest.raises(ValueError, match="curve 'a'"):
        minimiser_sentence(q, {"a": [1, 2]}, 0.3)


def test_properties_markdown_follows_the_measured_numbers():
    from jmlkit.lessons.geometry import properties_markdown

    m = L.summary(curves=L.loss_curves(0.3, grid=101), surfaces=L.loss_surfaces((0.3, 0.7), grid=21, arrow_grid=3),
                  race_result=L.race(L.race_target(3, 8), steps=50), triangle=L.triangle_check(300))
    text = properties_markdown(m)
    assert text.startswith("**Properties (01, full profile).** At a soft target y = 0.3 (one pixel), CE, JML1, JML2 and "
                           "DML are minimal at the target; SJL at x = 1; Lovász at x = 0 (a hard prediction")
    assert "At y = (0.3, 0.7) (two pixels), CE, JML1, JML2 and DML are minimal at the target; SJL at (0, 1); " \
           "Lovász at (0, 1)." in text
    assert f"for 50 steps" in text and f"JML1 {m['race_final_distance_jml1']:.1e}" in text
    assert "On 300 random triples the triangle inequality fails " in text and "0 times for JML1" in text
    assert "is 0 for JML1, JML2 and DML; SJL " in text  # the SJL is not 0 at a soft target: no metric
    k = m["triangle_violations_dml"]
    assert f"{k:,} times ({100 * k / 300:.1f} %) for DML" in text and k > 0
    # a loss moved off its target is reported where it is
    moved = {**m, "curve_minimiser_jml1": 0.5}
    assert "JML1 at x = 0.5" in properties_markdown(moved)
    with pytest.raises(ValueError, match="curve_target"):
        properties_markdown({"race_steps": 3})
