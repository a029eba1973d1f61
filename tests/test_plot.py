"""jmlkit.plot: every public function builds a Figure with the expected panels and artists from small inputs;
the loss figures update in place; the widgets are notes in batch runs and import ipywidgets only when built."""
from __future__ import annotations

import inspect
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import jmlkit.plot as plot  # noqa: E402
from jmlkit import lessons  # noqa: E402
from jmlkit.metrics import (  # noqa: E402
    BoundaryCalibration,
    CalibrationMetrics,
    SegmentationMetrics,
    SoftLabelStats,
    as_table,
    calibration_by_boundary_distance,
    to_python,
)
from jmlkit.plot._common import _label, _reliability_frame  # noqa: E402

C = 4


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, C, (2, 1, 4, 4), generator=g).float()
    target = torch.nn.functional.interpolate(target, size=(16, 16)).squeeze(1).long()
    target[0, :2] = 255
    probs = (torch.randn(2, C, 16, 16, generator=g) + 3 * torch.nn.functional.one_hot(target.clamp(max=C - 1), C)
             .permute(0, 3, 1, 2)).softmax(1)
    return torch.rand(2, 3, 16, 16, generator=g), target, probs


@pytest.fixture(scope="module")
def calibration(batch):
    _, target, probs = batch
    m = CalibrationMetrics(C, ignore_index=255)
    m.update(probs, target)
    return m.compute()


@pytest.fixture(scope="module")
def summary():
    return pd.DataFrame({"notebook": ["02", "02", "03"], "config": ["ce_hard", "jml_ls", "kd_ce"],
                         "mIoU_D_mean": [0.5, 0.6, 0.55], "mIoU_D_std": [0.01, np.nan, 0.02],
                         "ECE_D_mean": [0.05, 0.03, 0.04], "ECE_D_std": [0.005, np.nan, 0.001]})


def test_the_package_exports_every_figure_flat():
    functions = {n for n in plot.__all__ if inspect.isfunction(getattr(plot, n))}
    assert {"reliability_diagram", "per_class_iou", "segmentation_panel", "calibration_vs_boundary_distance",
            "plot_reliability_grid", "plot_tradeoff", "plot_soft_target_curves", "plot_band_histograms",
            "plot_per_class_calibration", "plot_soft_predictions", "comparison_chart", "forest_plot", "sweep_plot",
            "sweep_or_comparison_chart",
            "target_panel",
            "history_plot", "plot_loss_curves", "plot_loss_surfaces", "plot_race", "plot_triangle", "render_png",
            "headless", "curve_explorer", "surface_explorer", "smoothing_regime", "gradient_tug_of_war", "smoothing_explorer",
            "reliability_comparison", "reliability_explorer", "seconds_per_update", "layout_problems",
            "temperature_explorer", "threshold_explorer", "soft_label_explorer", "comparison_figure"} == functions
    assert plot.LABELS["ce_ls"] == "CE + uniform LS" and "paper's recipe" in plot.LABELS["jml_bls"]


def test_import_loads_no_runner_module_and_no_widgets():
    """Layer 5 (plot) loads nothing of layer 6 (runner, reporting); ipywidgets only when a widget is built."""
    code = ("import sys, jmlkit.plot; "
            "print(sorted(m for m in sys.modules if m == 'ipywidgets' or m.split('.')[:2] == ['jmlkit', 'runner']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_seconds_per_update_times_a_computation_and_a_render(monkeypatch):
    import jmlkit.plot.losses as losses_module

    rendered, computed = [], []
    real_render, real_surfaces = losses_module.render_png, losses_module.loss_surfaces
    monkeypatch.setattr(losses_module, "render_png", lambda fig, dpi: rendered.append(dpi) or real_render(fig, dpi=dpi))
    monkeypatch.setattr(losses_module, "loss_surfaces",
                        lambda y, **kw: computed.append((y, kw)) or real_surfaces(y, **kw))
    out = plot.seconds_per_update("surfaces", repeats=3, grid=7, arrow_grid=3, dpi=40)
    assert out["wall_s"] > 0 and out["cpu_s"] >= 0 and sorted(out) == ["cpu_s", "wall_s"]
    assert rendered == [40] * 4  # the first draw, then one per update
    assert len(computed) == 4 and all(kw == {"grid": 7, "arrow_grid": 3} for _, kw in computed)
    assert [y for y, _ in computed[1:]] == [pytest.approx((0.1 + 0.8 * i / 3, 0.9 - 0.8 * i / 3)) for i in range(3)]
    with pytest.raises(ValueError, match="kind"):
        plot.seconds_per_update("volumes")
    with pytest.raises(ValueError, match="repeats"):
        plot.seconds_per_update("curves", repeats=0)


def test_loss_labels_are_plots_and_name_every_loss():
    assert set(plot.LOSS_LABELS) == set(lessons.LOSSES) == set(plot.LOSS_COLORS)
    fig = plot.plot_race(lessons.race(lessons.race_target(2, 4), losses=("ce", "jml1"), steps=2))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith(plot.LOSS_LABELS["ce"]) and legend[1].startswith(plot.LOSS_LABELS["jml1"])


# --------------------------------------------------------------------------------------------- helpers
def test_label_joins_tuples_and_maps_known_names():
    assert _label(("02", "ce_ls")) == "02 / ce_ls"
    assert _label("ce_ls") == "ce_ls" and _label("ce_ls", plot.LABELS) == "CE + uniform LS"
    assert _label("mine", plot.LABELS) == "mine"


def test_reliability_frame_accepts_every_form(calibration):
    table = calibration["reliability"]  # compute()'s form: a dict of 1-d tensors
    frame = as_table(table)
    for data, ece in [(calibration, calibration["ECE_D"].item()), (table, None), (frame, None),
                      ({"reliability": to_python(table), "ECE_D": 0.1}, 0.1),
                      (to_python(table), None)]:
        df, got = _reliability_frame(data)
        assert isinstance(df, pd.DataFrame) and got == ece and type(got) is type(ece)
        pd.testing.assert_frame_equal(df, frame)  # the same numbers and dtypes, whatever the container
    with pytest.raises(TypeError, match="reliability"):
        _reliability_frame([1, 2])
    with pytest.raises(ValueError, match="columns"):
        _reliability_frame(frame.drop(columns="accuracy"))
    with pytest.raises(ValueError, match="'reliability' table"):
        _reliability_frame({k: v for k, v in table.items() if k != "accuracy"})


# --------------------------------------------------------------------------------------------- calibration
def test_reliability_diagram(calibration, tmp_path):
    n_bins = len(calibration["reliability"]["bin"])
    filled = int((calibration["reliability"]["count"] > 0).sum())
    for data in (calibration, calibration["reliability"], as_table(calibration["reliability"])):
        fig = plot.reliability_diagram(data, title="t")
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        assert fig.axes[0].get_ylabel() == "accuracy" and fig.axes[1].get_xlabel() == "confidence"
        assert len(fig.axes[0].patches) == 2 * filled and len(fig.axes[1].patches) == n_bins
    assert any("ECE" in t.get_text() for t in plot.reliability_diagram(calibration).legends[0].get_texts())
    fig.savefig(tmp_path / "rel.png")
    assert (tmp_path / "rel.png").stat().st_size > 0
    with pytest.raises(TypeError, match="reliability"):
        plot.reliability_diagram([1, 2])


def test_reliability_grid(calibration):
    table = calibration["reliability"]
    tables = {("02", "a"): {"reliability": table, "ECE_D": 0.05}, "b": table, "c": to_python(table)}
    fig = plot.plot_reliability_grid(tables, ncols=2, title="grid")
    assert len(fig.axes) == 4 and [ax.get_visible() for ax in fig.axes] == [True, True, True, False]
    assert fig.axes[0].get_title().startswith("02 / a\nECE 5.00%")
    assert fig.axes[2].get_xlabel() == "confidence" and fig.axes[0].get_ylabel() == "accuracy"
    filled = int((table["count"] > 0).sum())
    assert all(len(ax.patches) == 2 * filled for ax in fig.axes[:3])
    for bad in ({}, None):
        with pytest.raises(ValueError):
            plot.plot_reliability_grid(bad)
    with pytest.raises(ValueError, match="ncols"):
        plot.plot_reliability_grid({"a": table}, ncols=0)


def test_calibration_vs_boundary_distance(batch):
    _, target, probs = batch
    df = calibration_by_boundary_distance(probs, target, C, max_distance=4, ignore_index=255)
    m = BoundaryCalibration(C, max_distance=4, ignore_index=255)
    m.update(probs, target)
    fig = plot.calibration_vs_boundary_distance({"a": df, "b": m.compute(), "c": as_table(df), "d": to_python(df)},
                                                title="x")
    ax_e, ax_a = fig.axes
    assert ax_e.get_ylabel() == "ECE (%)" and ax_a.get_ylabel() == "accuracy / confidence (%)"
    assert [t.get_text() for t in ax_e.get_xticklabels()][-1] == ">4"
    assert len(ax_e.lines) == 4 and len(ax_a.lines) == 8
    np.testing.assert_allclose(ax_e.lines[0].get_ydata(), 100 * np.asarray(as_table(df)["ECE"], float))  # in %
    # one legend entry per run and one per quantity, not one per curve
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c", "d", "accuracy", "confidence"]
    for a, b in zip(ax_e.lines, ax_e.lines[1:]):  # every form of the same table draws the same line
        np.testing.assert_allclose(a.get_ydata(), b.get_ydata(), rtol=1e-12)
    for one in (df, as_table(df), to_python(df)):
        assert len(plot.calibration_vs_boundary_distance(one).axes[1].lines) == 2
    with pytest.raises(TypeError, match="`data`"):
        plot.calibration_vs_boundary_distance(42)
    with pytest.raises(ValueError, match="columns"):
        plot.calibration_vs_boundary_distance(as_table(df).drop(columns="ECE"))


def test_per_class_calibration():
    pc = pd.DataFrame([{"config": cfg, "seed": s, "class": k, "class_name": f"c{k}", "ECE_class": 0.01 * (k + s)}
                       for cfg in ("a", "b") for s in (0, 1) for k in range(5)])
    fig = plot.plot_per_class_calibration(pc, title="pc")
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and ax.get_ylabel() == "class-wise calibration error (%)"
    assert ax.containers[1].lines[0].get_ydata().tolist() == pytest.approx([0.5 + k for k in range(5)])  # b, in %
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"c{k}" for k in range(5)]
    assert plot.plot_per_class_calibration(pc, value="seed").axes[0].get_ylabel() == "seed"
    with pytest.raises(ValueError, match="columns"):
        plot.plot_per_class_calibration(pc.drop(columns="class_name"))


def test_tradeoff(summary):
    fig = plot.plot_tradeoff(summary, title="t")
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and len(ax.texts) == 3           # one error bar per notebook, a label per row
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("mIoU_D (%)", "ECE_D (%)")
    assert len(plot.plot_tradeoff(summary, group=None, percent=False).axes[0].containers) == 1
    with pytest.raises(ValueError, match="columns"):
        plot.plot_tradeoff(summary, y="SCE_D")


def test_soft_target_curves_and_band_histograms():
    t = np.linspace(0.05, 0.95, 10)
    curve = pd.DataFrame({"target": t, "predicted": t ** 2, "predicted_std": 0.1 + 0 * t, "count": [0] + [5] * 9})
    fig = plot.plot_soft_target_curves({"a": curve, "b": curve}, title="c")
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 2 and len(ax.lines[1].get_xdata()) == 9
    assert ax.get_xlabel().startswith("target")
    edges = np.linspace(0, 1, 11)
    hist = pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "density": np.arange(10.0)})
    fig = plot.plot_band_histograms({"a": hist, "b": hist, "c": hist}, title="h")
    assert len(fig.axes) == 3 and all(len(ax.patches) == 10 for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "density"
    for fn in (plot.plot_soft_target_curves, plot.plot_band_histograms):
        with pytest.raises(ValueError):
            fn({})
    # the tables of SoftLabelStats.compute() (dicts of tensors) and their stored form (dicts of lists) draw alike
    g = torch.Generator().manual_seed(0)
    soft = SoftLabelStats(3)
    soft.update(torch.softmax(torch.randn(2, 3, 6, 6, generator=g), 1), torch.softmax(torch.randn(2, 3, 6, 6, generator=g), 1))
    out = soft.compute()
    curves = plot.plot_soft_target_curves({"t": out["curve"], "l": to_python(out["curve"])}).axes[0].lines
    np.testing.assert_array_equal(curves[1].get_ydata(), curves[2].get_ydata())
    bars = plot.plot_band_histograms({"t": out["band_hist"], "l": to_python(out["band_hist"])}).axes
    assert [p.get_height() for p in bars[0].patches] == [p.get_height() for p in bars[1].patches]
    with pytest.raises(ValueError, match="`curves`"):
        plot.plot_soft_target_curves(out["curve"])  # one table, not a mapping label -> table


# --------------------------------------------------------------------------------------------- segmentation
def test_per_class_iou(batch):
    _, target, probs = batch
    m = SegmentationMetrics(C, ignore_index=255)
    m.update(probs, target)
    out = m.compute()
    fig = plot.per_class_iou(out, class_names=list("abcd"), sort=True, title="IoU")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "IoU (%)" and [t.get_text() for t in ax.get_xticklabels()] != []
    assert len(ax.lines[0].get_xdata()) == C
    fig = plot.per_class_iou({"run1": out, "run2": out["IoU_per_class"] * 0.5})
    dots = [ln for ln in fig.axes[0].lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(dots[1].get_ydata(), 50 * np.asarray(out["IoU_per_class"], float))  # in %
    assert [t.get_text().split(" (")[0] for t in fig.legends[0].get_texts()] == ["run1", "run2"]
    with pytest.raises(ValueError, match="class_names"):
        plot.per_class_iou(out, class_names=["a"])


def test_segmentation_panel(batch):
    image, target, probs = batch
    fig = plot.segmentation_panel(image, target, probs, ignore_index=255, class_names=list("abcd"), title="panel")
    assert len(fig.axes) == 2 * 5 + 1  # + colorbar
    assert [a.get_title() for a in fig.axes[:5]] == ["image", "target", "prediction", "confidence", "error"]
    assert all(len(a.images) == 1 for a in fig.axes[:10]) and len(fig.legends) == 1
    fig = plot.segmentation_panel(image[0, 0], target[0], probs[0], max_images=1)
    assert len(fig.axes) == 5 + 1
    with pytest.raises(ValueError, match="same B, H, W"):
        plot.segmentation_panel(image, target[:1], probs)


def test_soft_predictions():
    y = torch.softmax(torch.randn(3, 8, 8), 0)
    fig = plot.plot_soft_predictions(torch.rand(1, 8, 8), y, {"a": y, "b": y}, class_index=1, title="t")
    assert len(fig.axes) == 2 * 4 + 2                               # two rows of panels, two colour bars
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "target y (class 1)", "p: a", "p: b"]
    assert not fig.axes[4].get_visible()
    with pytest.raises(ValueError, match="class_index"):
        plot.plot_soft_predictions(torch.rand(1, 8, 8), y, {"a": y}, class_index=3)
    with pytest.raises(ValueError, match="probs"):
        plot.plot_soft_predictions(torch.rand(1, 8, 8), y, {}, class_index=0)


def test_target_panel():
    labels = torch.zeros(3, 8, 8, dtype=torch.long)
    labels[:, 2:6, 3:7] = 2
    labels[1, 0, 0] = 255
    fig = plot.target_panel(labels, 3, 0.2, ignore_index=255)
    assert len(fig.axes) == 2 * 4 + 1                               # max_images=2 rows and a colour bar
    assert [ax.get_title() for ax in fig.axes[:4]] == ["label", "hard: p(y)", "uniform LS: p(y)",
                                                         "boundary LS: p(y)"]
    assert all(len(ax.images) == 1 for ax in fig.axes[:8])


# --------------------------------------------------------------------------------------------- runs
def test_comparison_chart_shows_seeds_over_means(summary):
    runs = pd.DataFrame([{"config": c, "seed": s, "mIoU_D": 0.9 + 0.01 * i + 0.002 * s, "ECE_D": 0.01 * (i + 1)}
                         for i, c in enumerate(["ce_hard", "jml_ls", "kd_ce"]) for s in range(5)])
    fig = plot.comparison_chart(runs, ["mIoU_D", "ECE_D"], title="rows", reference={"mIoU_D": 0.95, "ECE_D": None})
    assert [ax.get_title() for ax in fig.axes] == ["mIoU_D", "ECE_D"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CE, hard labels", "CE+JML + uniform LS (ours)", "kd_ce"]
    seeds = [c for c in ax.collections if len(c.get_offsets()) == 5]
    assert len(seeds) == 3  # five seed points per configuration
    np.testing.assert_allclose(sorted(seeds[0].get_offsets()[:, 0]), [90.0, 90.2, 90.4, 90.6, 90.8])
    assert list(ax.containers[0].lines[0].get_xdata()) == pytest.approx([90.4, 91.4, 92.4])  # means, in %
    lo, hi = ax.get_xlim()
    assert 85 < lo < 90 and 95 <= hi < 100  # around the data (and the reference at 95), not from 0
    assert [ln.get_linestyle() for ln in ax.lines].count("--") == 1     # the reference line
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["mean ± std over seeds", "one seed", "teacher"]
    # the same runs in another row order, after other draws of numpy's generator: the same figure, point by point
    np.random.uniform(size=7)
    shuffled = runs.sort_values("seed", ascending=False, kind="stable")
    again = plot.comparison_chart(shuffled, ["mIoU_D", "ECE_D"], title="rows", reference={"mIoU_D": 0.95, "ECE_D": None})
    for a, b in zip(fig.axes, again.axes):
        for ca, cb in zip(a.collections, b.collections):
            np.testing.assert_array_equal(ca.get_offsets(), cb.get_offsets())
    # a summary (means and standard deviations) draws the means alone
    fig = plot.comparison_chart(summary, ["mIoU_D"])
    assert list(fig.axes[0].containers[0].lines[0].get_xdata()) == pytest.approx([50, 60, 55])
    with pytest.raises(ValueError, match="SCE_D"):
        plot.comparison_chart(summary, ["SCE_D"])
    with pytest.raises(TypeError, match="`data`"):
        plot.comparison_chart([1, 2], ["mIoU_D"])


def test_forest_plot_colours_each_difference_by_its_verdict():
    d = pd.DataFrame({"regime": ["large", "large", "small", "small"], "a": ["jml_bls", "ce_ls"] * 2,
                      "b": ["ce_hard"] * 4, "metric": ["mIoU_D"] * 4, "n": [5, 5, 5, 1],
                      "delta": [-0.034, 0.002, 0.01, 0.03], "low": [-0.046, -0.01, 0.004, np.nan],
                      "high": [-0.022, 0.014, 0.02, np.nan],
                      "verdict": ["loss", "no measurable difference", "gain", "not measurable (n < 2)"]})
    fig = plot.forest_plot(d, title="f")
    large, small = fig.axes
    assert (large.get_title(), small.get_title()) == ("large", "small")
    assert large.get_xlabel() == "Δ mIoU_D vs CE, hard labels (points)"
    intervals = [ln for ln in large.lines if len(ln.get_xdata()) == 2 and ln.get_linestyle() == "-"
                 and ln.get_xdata()[0] != ln.get_xdata()[1]]
    assert [list(ln.get_xdata()) for ln in intervals] == [pytest.approx([-4.6, -2.2]), pytest.approx([-1.0, 1.4])]
    assert intervals[0].get_color() == plot.VERDICT_COLORS["loss"]
    dots = [ln for ln in small.lines if ln.get_marker() == "o"]
    assert dots[1].get_markerfacecolor() == "white"  # one seed: no interval, a hollow dot
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["loss", "no measurable difference", "gain", "one seed: no interval"]
    # the claims table draws the same way
    claims = pd.DataFrame({"claim": ["JML vs SJL"], "regime": ["brain"], "delta": [0.059], "low": [0.046],
                           "high": [0.073], "n": [5], "outcome": ["reproduced"]})
    fig = plot.forest_plot(claims, label="claim", xlabel="a − b (points)")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["JML vs SJL"]
    with pytest.raises(ValueError, match="one metric"):
        plot.forest_plot(pd.concat([d, d.assign(metric="ECE_D")]))
    with pytest.raises(ValueError, match="columns"):
        plot.forest_plot(d.drop(columns="low"))


def test_sweep_plot():
    sw = pd.DataFrame({"method": ["jml_ls", "jml_ls", "ce", "ce"], "epsilon": [0.1, 0.0, 0.0, 0.1],
                       "ECE_D_mean": [0.05, 0.04, 0.03, 0.02], "ECE_D_std": [0.01] * 4,
                       "mIoU_D_mean": [0.5, 0.4, 0.3, 0.35], "mIoU_D_std": [np.nan] * 4})
    fig = plot.sweep_plot(sw, "epsilon", ["ECE_D", "mIoU_D"], title="sweep")
    assert len(fig.axes) == 2 and all(len(ax.containers) == 2 for ax in fig.axes)
    assert fig.axes[0].get_xlabel() == "epsilon" and fig.axes[0].get_ylabel() == "ECE_D (%)"
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["CE+JML + uniform LS (ours)", "ce"]
    assert plot.sweep_plot(sw.assign(epsilon=sw["epsilon"] + 0.1), "epsilon", ["ECE_D"], logx=True) \
        .axes[0].get_xscale() == "log"


def test_history_plot(tmp_path):
    for i, name in enumerate(["kd_ce", "other"]):
        (tmp_path / name).mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0 - i / 10, 0.5, 0.3], "mask_ratio": [0.1, 0.2, 0.4]}) \
            .to_csv(tmp_path / name / "history.csv", index=False)
    fig = plot.history_plot({n: tmp_path / n for n in ["kd_ce", "other"]}, ["train_loss", "missing"], title="h")
    assert [ax.get_title() for ax in fig.axes] == ["train_loss", "missing"]
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 0
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [_label("kd_ce", plot.LABELS), "other"]


# --------------------------------------------------------------------------------------------- notebook 01
def test_loss_figures_and_in_place_updates():
    curves = lessons.loss_curves(0.3, grid=21)
    curve_plot = plot.CurvePlot(curves)
    assert len(curve_plot.ax.lines) == 2 * len(lessons.LOSSES) + 1
    before = curve_plot.lines["jml1"].get_ydata().copy()
    curve_plot.update(lessons.loss_curves(0.8, grid=21))
    assert not (curve_plot.lines["jml1"].get_ydata() == before).all()
    assert tuple(curve_plot.dots["jml1"].get_xdata()) == pytest.approx((0.8,))
    assert plot.render_png(curve_plot.fig).startswith(b"\x89PNG")
    assert len(plot.plot_loss_curves(curves).axes) == 1

    surf = plot.SurfacePlot(lessons.loss_surfaces((0.3, 0.7), grid=11, arrow_grid=3))
    assert len(surf.fig.axes) == 7                 # six maps and a colour bar
    assert all(len(ax.images) == 1 and len(ax.collections) == 1 for ax in surf.fig.axes[:6])
    surf.update(lessons.loss_surfaces((0.6, 0.2), grid=11, arrow_grid=3))
    assert tuple(surf.circles["jml1"].get_xdata()) == pytest.approx((0.6,))
    assert plot.render_png(surf.fig).startswith(b"\x89PNG")
    fig = plot.plot_loss_surfaces(lessons.loss_surfaces((0.3, 0.7), grid=5, arrow_grid=2, losses=("ce", "jml1")))
    assert len(fig.axes) == 3

    fig = plot.plot_race(lessons.race(lessons.race_target(2, 4), losses=("ce", "jml1"), steps=2))
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 3
    fig = plot.plot_triangle(lessons.triangle_check(50))
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == len(lessons.METRIC_LOSSES) + 1


def test_explorers_build_and_respond(monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv(plot.HEADLESS_ENV, "0")  # as in JupyterLab
    assert not plot.headless()
    w = plot.curve_explorer(target=0.3, grid=11)
    w.children[0].value = 0.6                      # a slider move runs the update without error
    assert w.children[0].value == 0.6
    s = plot.surface_explorer(target=(0.3, 0.7), grid=7, arrow_grid=3)
    s.children[1].value = 0.2
    assert [c.description for c in s.children[:2]] == ["target y1", "target y2"]


def test_explorers_are_notes_in_batch_runs(monkeypatch):
    monkeypatch.setenv(plot.HEADLESS_ENV, "1")
    assert plot.headless()
    for note in (plot.curve_explorer(target=0.3, grid=11), plot.surface_explorer(target=(0.3, 0.7), grid=7)):
        assert "JupyterLab" in note.data


# --------------------------------------------------------------------------------------------- notebook 02's ablation
def test_smoothing_regime():
    from jmlkit.targets import smoothing_shares

    y = torch.zeros(2, 9, 9, dtype=torch.long)
    y[0, 2:6, 2:6], y[1, 1:8, 1:8] = 1, 2
    shares = {"boundary": smoothing_shares(y, 3), "uniform": smoothing_shares(y, 3, epsilon=0.1, smoothing="uniform")}
    fig = plot.smoothing_regime(shares, class_names=["bg", "a", "b"], title="regime")
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and fig._suptitle.get_text() == "regime"
    assert [ax.get_ylabel() for ax in fig.axes] == ["share of its pixels smoothed", "floor's share of its target mass"]
    for ax in fig.axes:
        assert len(ax.patches) == 2 * 3  # a bar per setting and class
        assert [t.get_text() for t in ax.get_xticklabels()] == ["bg", "a", "b"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[3:] == [100.0] * 3  # uniform smoothing smooths every pixel
    assert heights[1] == pytest.approx(100 * shares["boundary"].per_class.loc[1, "share_smoothed"])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[1] == "uniform (objects: 100% smoothed)"
    # the per-class tables are accepted too
    assert len(plot.smoothing_regime({"t": shares["boundary"].per_class}).axes[0].patches) == 3
    with pytest.raises(ValueError, match="non-empty"):
        plot.smoothing_regime({})
    with pytest.raises(TypeError, match="SmoothingShares"):
        plot.smoothing_regime({"x": [1, 2]})
    with pytest.raises(ValueError, match="same classes"):
        plot.smoothing_regime({"a": shares["boundary"], "b": smoothing_shares(y, 4)})
    with pytest.raises(ValueError, match="class names"):
        plot.smoothing_regime(shares, class_names=["bg"])


def test_gradient_tug_of_war():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 6, 6, generator=g)
    z[:, 0] += 10.0  # class 0 wins the arg-max everywhere
    y = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 6, 6), generator=g), 3).permute(0, 3, 1, 2).float()
    a, b = lessons.gradient_split(z, y), lessons.gradient_split(torch.randn(2, 3, 6, 6, generator=g), y)
    fig = plot.gradient_tug_of_war({"collapsed": a, "other": b.per_class}, title="tug")
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["collapsed", "other"]
    ax = fig.axes[0]
    assert len(ax.patches) == 3 * 2 * 3  # per class and term: pull-up, push-down and net bars
    ups = [p.get_height() for p in ax.patches[:3]]  # the CE pull-up bars, scaled by 1e3
    assert ups == pytest.approx((a.per_class["ce_up"] * 1e3).tolist())
    colors = [t.get_color() for t in ax.get_xticklabels()]
    assert a.collapsed() == [1, 2] and colors[0] != "#d62728" and colors[1] == colors[2] == "#d62728"
    assert ax.get_ylabel() == "push on the logits (x0.001)" and "red" in fig.axes[-1].get_xlabel()
    assert len(fig.legends[0].get_texts()) == 6
    with pytest.raises(ValueError, match="non-empty"):
        plot.gradient_tug_of_war({})
    with pytest.raises(TypeError, match="GradientSplit"):
        plot.gradient_tug_of_war({"x": pd.DataFrame({"a": [1]})})
