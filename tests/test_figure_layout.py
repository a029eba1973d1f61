"""Every figure function of jmlkit.plot, drawn on small data shaped like the notebooks' (their long display names,
values of 85-96 %, eleven classes), is readable: no two text labels overlap, no legend covers data, no text is cut
off (:func:`jmlkit.plot.layout_problems`, which reads each artist's box from matplotlib's renderer)."""
from __future__ import annotations

import inspect

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import jmlkit.plot as plot  # noqa: E402
from jmlkit import lessons  # noqa: E402
from jmlkit.metrics import BoundaryCalibration, CalibrationMetrics, SegmentationMetrics, SoftLabelStats  # noqa: E402

C = 11
NAMES = ["bg", *map(str, range(10))]
CONFIGS = ["jml_bls", "ce_hard", "ce_ls", "ce_bls", "sjl_bls", "jml_ls"]


def _batch(seed: int = 0, b: int = 2, size: int = 24, sharp: float = 4.0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, C, (b, 1, 4, 4), generator=g).float()
    target = torch.nn.functional.interpolate(target, size=(size, size)).squeeze(1).long()
    logits = torch.randn(b, C, size, size, generator=g) + sharp * torch.nn.functional.one_hot(target, C).permute(
        0, 3, 1, 2)
    return torch.rand(b, 3, size, size, generator=g), target, logits.softmax(1)


def _summary(rows: list[str], *, seeds: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    out = pd.DataFrame({"config": rows, "mIoU_D_mean": rng.uniform(0.88, 0.94, len(rows)),
                        "ECE_D_mean": rng.uniform(0.005, 0.07, len(rows))})
    out["mIoU_D_std"] = 0.01 if seeds else np.nan
    out["ECE_D_std"] = 0.004 if seeds else np.nan
    return out


def _runs(rows: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"config": c, "seed": s, "mIoU_D": 0.9 + 0.01 * i + rng.normal(0, 0.01),
                          "ECE_D": 0.01 * (i + 1) + rng.normal(0, 0.003), "SCE_D": 0.002 * (i + 1)}
                         for i, c in enumerate(rows) for s in range(5)])


def _differences() -> pd.DataFrame:
    from jmlkit.experiments import regime_differences

    runs = pd.concat([_runs(CONFIGS).assign(regime="large"), _runs(CONFIGS[:3]).assign(regime="small"),
                      _runs(CONFIGS[:2]).assign(regime="overconfident")])
    return regime_differences(runs, "ce_hard", ["mIoU_D", "ECE_D"])


def _calibration(seed: int):
    _, target, probs = _batch(seed)
    m = CalibrationMetrics(C)
    m.update(probs, target)
    return m.compute()


def _boundary(seed: int):
    _, target, probs = _batch(seed)
    m = BoundaryCalibration(C, max_distance=6)
    m.update(probs, target)
    return m.compute()


def _iou(seed: int):
    _, target, probs = _batch(seed, sharp=6.0)
    m = SegmentationMetrics(C)
    m.update(probs, target)
    return m.compute()


def _soft_stats():
    g = torch.Generator().manual_seed(0)
    soft = SoftLabelStats(4)
    soft.update(torch.softmax(torch.randn(2, 4, 16, 16, generator=g), 1),
                torch.softmax(torch.randn(2, 4, 16, 16, generator=g), 1))
    return soft.compute()


def _shares():
    from jmlkit.targets import smoothing_shares

    _, target, _ = _batch(0)
    return {"large regime, boundary LS eps 0.5": smoothing_shares(target, C, epsilon=0.5),
            "small regime, boundary LS eps 0.5": smoothing_shares(target[:1], C, epsilon=0.5),
            "small regime, uniform LS eps 0.1": smoothing_shares(target, C, epsilon=0.1, smoothing="uniform")}


def _splits():
    _, target, probs = _batch(0)
    y = torch.nn.functional.one_hot(target, C).permute(0, 3, 1, 2).float()
    return {"paper's recipe (CE+JML, boundary LS)": lessons.gradient_split(probs.log(), y),
            "CE, hard labels": lessons.gradient_split((probs + 0.1).log(), y)}


def _history(tmp_path):
    runs = {}
    for i, name in enumerate(["kd_jml", "kd_kl", "hard_ce"]):
        runs[name] = pd.DataFrame({"epoch": range(1, 21), "train_loss": np.linspace(1.0, 0.2, 20) + i / 10,
                                   "val_mIoU_D": np.linspace(0.3, 0.9, 20) - i / 20})
    return runs


def _sweep():
    rows = [{"method": m, "epsilon": e, "mIoU_D_mean": 0.9 - e / 5 - i / 50, "mIoU_D_std": 0.01,
             "ECE_D_mean": 0.01 + e / 10 + i / 100, "ECE_D_std": 0.002}
            for i, m in enumerate(["jml_bls", "ce_bls", "sjl_bls"]) for e in (0.0, 0.1, 0.3, 0.5)]
    return pd.DataFrame(rows)


def _per_class_calibration():
    return pd.DataFrame([{"config": cfg, "seed": s, "class": k, "class_name": NAMES[k], "ECE_class": 0.002 * (k + s + i)}
                         for i, cfg in enumerate(CONFIGS[:3]) for s in (0, 1) for k in range(C)])


def _pooled_tables():
    from jmlkit.experiments.evaluation import reliability_table

    return {(f"02_label_smoothing", cfg): reliability_table(_calibration(i)) for i, cfg in enumerate(CONFIGS[:4])}


#: One builder per figure function (name -> function of tmp_path returning a Figure).
FIGURES = {
    "reliability_diagram": lambda tmp: plot.reliability_diagram(_calibration(0), title="CE+JML + boundary LS"),
    "plot_reliability_grid": lambda tmp: plot.plot_reliability_grid(
        {f"02 small · {plot.LABELS[c]}": _calibration(i) for i, c in enumerate(CONFIGS)}, ncols=5),
    "calibration_vs_boundary_distance": lambda tmp: plot.calibration_vs_boundary_distance(
        {f"small · {plot.LABELS[c]}": _boundary(i) for i, c in enumerate(CONFIGS[:3])}, title="02_label_smoothing"),
    "plot_per_class_calibration": lambda tmp: plot.plot_per_class_calibration(_per_class_calibration(), title="02"),
    "plot_tradeoff": lambda tmp: plot.plot_tradeoff(_summary(CONFIGS).assign(notebook="02_label_smoothing")),
    "plot_soft_target_curves": lambda tmp: plot.plot_soft_target_curves(
        {"ce_soft": _soft_stats()["curve"], "jml_soft": _soft_stats()["curve"]}, title="soft targets"),
    "plot_band_histograms": lambda tmp: plot.plot_band_histograms(
        {"ce_soft": _soft_stats()["band_hist"], "jml_soft": _soft_stats()["band_hist"],
         "sjl_soft": _soft_stats()["band_hist"]}, title="band"),
    "segmentation_panel": lambda tmp: plot.segmentation_panel(*_batch(0), class_names=NAMES, title="teacher"),
    "per_class_iou": lambda tmp: plot.per_class_iou({plot.LABELS[c]: _iou(i) for i, c in enumerate(CONFIGS[:3])},
                                                    class_names=NAMES, title="per-class IoU"),
    "plot_soft_predictions": lambda tmp: plot.plot_soft_predictions(
        torch.rand(1, 24, 24), torch.softmax(torch.randn(4, 24, 24), 0),
        {"ce": torch.softmax(torch.randn(4, 24, 24), 0), "jml": torch.softmax(torch.randn(4, 24, 24), 0),
         "sjl": torch.softmax(torch.randn(4, 24, 24), 0)}, class_index=1, title="grey matter"),
    "target_panel": lambda tmp: plot.target_panel(_batch(0)[1], C, 0.5),
    "comparison_chart": lambda tmp: plot.comparison_chart(_runs(CONFIGS), ["mIoU_D", "ECE_D", "SCE_D"],
                                                          title="main comparison", reference={"mIoU_D": 0.95}),
    "forest_plot": lambda tmp: plot.forest_plot(_differences(), metric="mIoU_D", title="paired differences"),
    "sweep_plot": lambda tmp: plot.sweep_plot(_sweep(), "epsilon", ["mIoU_D", "ECE_D"], title="epsilon sweep"),
    "sweep_or_comparison_chart": lambda tmp: plot.sweep_or_comparison_chart(
        _sweep()[lambda d: d["epsilon"] == 0.1], "epsilon", ["mIoU_D", "ECE_D"], title="one value"),
    "history_plot": lambda tmp: plot.history_plot(_history(tmp), ["train_loss", "val_mIoU_D"], title="training"),
    "plot_loss_curves": lambda tmp: plot.plot_loss_curves(lessons.loss_curves(0.3, grid=51)),
    "plot_loss_surfaces": lambda tmp: plot.plot_loss_surfaces(lessons.loss_surfaces((0.3, 0.7), grid=21,
                                                                                    arrow_grid=5)),
    "plot_race": lambda tmp: plot.plot_race(lessons.race(lessons.race_target(3, 16), steps=20)),
    "plot_triangle": lambda tmp: plot.plot_triangle(lessons.triangle_check(300)),
    "smoothing_regime": lambda tmp: plot.smoothing_regime(_shares(), class_names=NAMES, title="regime"),
    "gradient_tug_of_war": lambda tmp: plot.gradient_tug_of_war(_splits(), title="tug of war"),
    "reliability_comparison": lambda tmp: plot.reliability_comparison(_pooled_tables()),
}

#: Functions that draw no figure of their own (helpers, widgets, timings).
NOT_FIGURES = {"render_png", "headless", "curve_explorer", "surface_explorer", "smoothing_explorer",
               "reliability_explorer", "seconds_per_update", "layout_problems",
               "temperature_explorer", "threshold_explorer", "soft_label_explorer",  # checked in test_explorers.py
               "comparison_figure"}  # the playground's runs: its layout is checked in test_playground.py


def test_every_figure_function_is_checked():
    functions = {n for n in plot.__all__ if inspect.isfunction(getattr(plot, n))}
    assert functions - NOT_FIGURES == set(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_is_readable(name, tmp_path):
    out = FIGURES[name](tmp_path)
    fig = out if isinstance(out, Figure) else getattr(out, "fig", None)
    assert isinstance(fig, Figure), name
    assert plot.layout_problems(fig) == [], name


def test_layout_problems_finds_what_it_should():
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.bar(["a", "b"], [93.9, 93.9])
    for i, v in enumerate([93.9, 93.9]):  # two value labels squeezed together
        ax.text(0.5, v, f"{v}", ha="center")
        ax.text(0.52, v, f"{v}", ha="center")
    assert any("texts overlap: '93.9'" in p for p in plot.layout_problems(fig))
    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ax.plot(np.linspace(0, 1, 50), np.linspace(1, 0.9, 50), label="a curve along the top")
    ax.legend(loc="upper left")
    assert any(p.startswith("legend covers data") for p in plot.layout_problems(fig))
    fig = Figure(figsize=(2, 1))
    fig.text(0.9, 0.5, "a long title that runs off the figure")
    assert any(p.startswith("text cut off") for p in plot.layout_problems(fig))
    with pytest.raises(TypeError, match="`fig`"):
        plot.layout_problems("figure.png")
