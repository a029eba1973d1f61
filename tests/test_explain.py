"""Tests of jmlkit.explain (the computations behind notebooks/01_jaccard_losses.ipynb) and of that notebook.

Correctness only: the speed of a slider update is reported by the notebook, never asserted here.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from jmlkit import explain as E

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_jaccard_losses.ipynb"
SOFT_LOSSES = ("ce", "jml1", "jml2", "dml")  # minimised at a soft target


# --------------------------------------------------------------------------------------------- pointwise losses
@pytest.mark.parametrize("name", E.LOSSES)
@pytest.mark.parametrize("n_pixels", [1, 2, 5])
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_pointwise_matches_jmlkit_losses(name, n_pixels, smooth):
    g = torch.Generator().manual_seed(n_pixels)
    x = torch.rand(8, n_pixels, generator=g, dtype=torch.float64)
    y = torch.rand(8, n_pixels, generator=g, dtype=torch.float64)
    x[0], y[0] = 0.0, 0.0          # empty prediction of an empty target
    x[1] = y[1]                    # prediction equal to the target
    x[2], y[2] = 1.0, 0.0          # hard and opposite
    fast = E.pointwise_losses(x, y, losses=(name,), smooth=smooth)[name]
    ref = torch.tensor([E.jmlkit_pointwise(x[i], y[i], name, smooth=smooth) for i in range(8)], dtype=torch.float64)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


def test_pointwise_one_pixel_closed_forms():
    x = torch.linspace(0.01, 1, 50, dtype=torch.float64).unsqueeze(1)
    y = torch.tensor([0.3], dtype=torch.float64)
    out = E.pointwise_losses(x, y, losses=("jml1", "dml", "sjl"))
    xs = x.squeeze(1)
    torch.testing.assert_close(out["jml1"], 1 - torch.minimum(xs, y) / torch.maximum(xs, y))
    torch.testing.assert_close(out["dml"], (xs - y).abs() / (xs + y))
    torch.testing.assert_close(out["sjl"], 1 - xs * y / (xs + y - xs * y))


def test_pointwise_broadcasts_and_differentiates():
    x = torch.rand(4, 3, 2, dtype=torch.float64, requires_grad=True)
    out = E.pointwise_losses(x, torch.tensor([0.2, 0.9]))
    assert all(v.shape == (4, 3) for v in out.values())
    sum(v.sum() for v in out.values()).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(losses=("jml3",)), "losses"),
    (dict(losses=()), "losses"),
    (dict(smooth=-1.0), "smooth"),
])
def test_pointwise_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        E.pointwise_losses(torch.rand(2, 2), torch.rand(2), **kwargs)


def test_pointwise_rejects_bad_inputs():
    with pytest.raises(ValueError, match="pred"):
        E.pointwise_losses([1.5, 0.2], [0.1, 0.1])
    with pytest.raises(ValueError, match="target"):
        E.pointwise_losses(torch.rand(3, 2), torch.rand(3))
    with pytest.raises(TypeError, match="losses"):
        E.pointwise_losses(torch.rand(2), torch.rand(2), losses=3)


# --------------------------------------------------------------------------------------------- one pixel
@pytest.mark.parametrize("y", [0.1, 0.3, 0.45, 0.7, 0.95])
def test_curve_minimisers(y):
    res = E.loss_curves(y, grid=201)
    for name in SOFT_LOSSES:
        assert res.minimisers[name] == pytest.approx(y, abs=1e-9), name
        assert float(res.values[name].min()) == pytest.approx(0.0, abs=1e-6)  # CE is shifted by H(y)
    assert res.minimisers["sjl"] == 1.0                  # SJL pushes every soft target to 1
    assert abs(res.minimisers["sjl"] - y) > 0.04
    assert res.minimisers["lovasz"] == float(y >= 0.5)  # Lovász sees the rounded target


def test_curve_sjl_with_smoothing_flips_at_sqrt2_minus_1():
    t = math.sqrt(2) - 1
    assert E.loss_curves(t - 0.01, grid=101, smooth=1.0).minimisers["sjl"] == 0.0
    assert E.loss_curves(t + 0.01, grid=101, smooth=1.0).minimisers["sjl"] == 1.0
    assert E.loss_curves(0.3, grid=101, smooth=1.0).minimisers["jml1"] == pytest.approx(0.3)


def test_curve_rejects_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        E.loss_curves(1.2)
    with pytest.raises(ValueError, match="grid"):
        E.loss_curves(0.3, grid=1)


# --------------------------------------------------------------------------------------------- two pixels
@pytest.mark.parametrize("y", [(0.3, 0.7), (0.1, 0.2), (0.9, 0.5), (0.0, 0.6)])
def test_surface_minimisers_and_arrows(y):
    res = E.loss_surfaces(y, grid=21, arrow_grid=9)
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
    res = E.loss_surfaces((0.2, 0.8), grid=11, arrow_grid=3, losses=("jml1",))
    i2, i1 = divmod(int(torch.argmin(res.values["jml1"])), 11)
    assert (float(res.x[i1]), float(res.x[i2])) == pytest.approx((0.2, 0.8))


def test_sjl_arrow_points_away_from_soft_target():
    # at x = (0.5, 0.5) with y = (0.3, 0.3) gradient descent on SJL raises both probabilities
    res = E.loss_surfaces((0.3, 0.3), grid=5, arrow_grid=1, losses=("sjl", "jml1"))
    assert bool((res.arrows["sjl"][0, 0] > 0).all())
    assert bool((res.arrows["jml1"][0, 0] < 0).all())


def test_surface_rejects_bad_target():
    with pytest.raises(ValueError, match="2 probabilities"):
        E.loss_surfaces((0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="arrow_grid"):
        E.loss_surfaces((0.1, 0.2), arrow_grid=0)


# --------------------------------------------------------------------------------------------- the race
def test_race_metric_losses_reach_the_soft_target():
    target = E.race_target(3, 16, seed=1)
    res = E.race(target, losses=("jml1", "jml2", "dml", "sjl"), steps=300, lr=0.1, seed=1)
    for name in ("jml1", "jml2", "dml"):
        assert res.final[name] < 1e-3, (name, res.final[name])
    assert res.final["sjl"] > 0.1
    assert res.distance["jml1"].shape == (301,)
    assert float(res.distance["jml1"][0]) > res.final["jml1"]
    torch.testing.assert_close(res.probs["jml1"].sum(0), torch.ones(16))


def test_race_target_is_a_soft_distribution():
    t = E.race_target(4, 10, temperature=2.0, seed=3)
    assert t.shape == (1, 4, 10)
    torch.testing.assert_close(t.sum(1), torch.ones(1, 10))
    assert float(t.max()) < 1.0 and float(t.min()) > 0.0
    torch.testing.assert_close(t, E.race_target(4, 10, temperature=2.0, seed=3))


def test_race_rejects_bad_arguments():
    with pytest.raises(ValueError, match="target"):
        E.race(torch.rand(3, 4))
    with pytest.raises(ValueError, match="steps"):
        E.race(E.race_target(2, 3), steps=0)
    with pytest.raises(ValueError, match="num_classes"):
        E.race_target(1, 3)


# --------------------------------------------------------------------------------------------- triangle inequality
def test_triangle_jml_never_violated_dml_is():
    res = E.triangle_check(1000, dim=2, seed=0)
    assert res.violations["jml1"] == 0 and res.violations["jml2"] == 0
    assert res.violations["dml"] > 0
    assert res.self_distance["jml1"] == 0 and res.self_distance["dml"] == 0
    assert res.self_distance["sjl"] > 0.5          # SJL(x, x) != 0: not a metric
    x, z, y = (torch.tensor(v, dtype=torch.float64) for v in res.worst["dml"])
    pts = E.pointwise_losses(torch.stack([x, x, z]), torch.stack([y, z, y]), losses=("dml",))["dml"]
    assert float(pts[0]) > float(pts[1] + pts[2])


@pytest.mark.parametrize("distribution", ["sparse", "binary"])
def test_triangle_other_distributions(distribution):
    res = E.triangle_check(1000, dim=5, distribution=distribution, seed=1)
    assert res.violations["jml1"] == 0 and res.violations["jml2"] == 0
    assert res.slack["dml"].shape == (1000,)


def test_triangle_known_dml_counterexample():
    x, z, y = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])
    out = E.pointwise_losses(torch.stack([x, x, z]), torch.stack([y, z, y]), losses=("dml", "jml1"))
    torch.testing.assert_close(out["dml"], torch.tensor([1.0, 1 / 3, 1 / 3]))
    torch.testing.assert_close(out["jml1"], torch.tensor([1.0, 0.5, 0.5]))


def test_triangle_rejects_bad_arguments():
    with pytest.raises(ValueError, match="distribution"):
        E.triangle_check(10, distribution="gaussian")
    with pytest.raises(ValueError, match="losses"):
        E.triangle_check(10, losses=("ce",))


# --------------------------------------------------------------------------------------------- figures, widgets
def test_figures_and_in_place_updates():
    curves = E.loss_curves(0.3, grid=21)
    plot = E.CurvePlot(curves)
    before = plot.lines["jml1"].get_ydata().copy()
    plot.update(E.loss_curves(0.8, grid=21))
    assert not (plot.lines["jml1"].get_ydata() == before).all()
    assert tuple(plot.dots["jml1"].get_xdata()) == pytest.approx((0.8,))
    assert E.render_png(plot.fig).startswith(b"\x89PNG")

    surf = E.SurfacePlot(E.loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3))
    assert len(surf.fig.axes) == 7                 # six maps and a colour bar
    surf.update(E.loss_surfaces((0.6, 0.2), grid=11, arrow_grid=3))
    assert tuple(surf.circles["jml1"].get_xdata()) == pytest.approx((0.6,))
    assert E.render_png(surf.fig).startswith(b"\x89PNG")

    assert len(E.plot_race(E.race(E.race_target(2, 4), losses=("ce",), steps=2)).axes) == 2
    assert len(E.plot_triangle(E.triangle_check(50)).axes) == 1


def test_explorers_build_and_respond(monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv(E.HEADLESS_ENV, "0")  # as in JupyterLab
    w = E.curve_explorer(target=0.3, grid=11)
    w.children[0].value = 0.6                      # a slider move runs the update without error
    assert w.children[0].value == 0.6
    s = E.surface_explorer(target=(0.3, 0.7), grid=7, arrow_grid=3)
    s.children[1].value = 0.2
    assert [c.description for c in s.children[:2]] == ["target y1", "target y2"]


def test_explorers_are_notes_in_batch_runs(monkeypatch):
    monkeypatch.setenv(E.HEADLESS_ENV, "1")
    assert E.headless()
    for note in (E.curve_explorer(target=0.3, grid=11), E.surface_explorer(target=(0.3, 0.7), grid=7)):
        assert "JupyterLab" in note.data


def test_seconds_per_update_reports_positive_times():
    out = E.seconds_per_update("surfaces", repeats=1, grid=7, arrow_grid=3)
    assert out["wall_s"] > 0 and out["cpu_s"] >= 0
    with pytest.raises(ValueError, match="kind"):
        E.seconds_per_update("volumes")


def test_summary_is_scalar_only():
    out = E.summary(E.loss_curves(0.3, grid=11), E.loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3),
                    E.race(E.race_target(2, 4), losses=("jml1",), steps=2), E.triangle_check(20))
    assert all(isinstance(v, (int, float)) for v in out.values())
    assert out["curve_minimiser_jml1"] == pytest.approx(0.3)
    assert out["surface_minimiser_sjl_x2"] == 1.0
    assert "race_final_distance_jml1" in out and "triangle_violations_dml" in out


def test_profile_settings():
    assert set(E.PROFILES) == {"smoke", "quick", "full"}
    assert E.profile_settings("quick")["race_steps"] < E.profile_settings("full")["race_steps"]
    with pytest.raises(ValueError, match="profile"):
        E.profile_settings("fast")


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
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert {"one_pixel_losses.png", "two_pixel_maps.png", "race.png", "triangle_inequality.png"} <= set(pngs)
