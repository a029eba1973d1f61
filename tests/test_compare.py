"""Tests of jmlkit.compare on tiny runs made here (a few seconds of training in all)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from jmlkit import compare
from jmlkit.metrics import CalibrationMetrics
from jmlkit.recipes import eval_dataset, run_configs, summarize
from jmlkit.train import TrainConfig, load_checkpoint, predict


def _tiny(dataset: str, **kw) -> TrainConfig:
    data = {"brain": {"size": 16, "in_channels": 1}, "digits": {"size": 32, "digit_size": 16, "num_scenes": 8}}[dataset]
    return TrainConfig(dataset=dataset, dataset_kwargs=data, model="tiny", epochs=1, train_limit=8,
                       eval_limit=4, val_split=None, batch_size=4, num_threads=1, **kw)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """A batch folder like `jmlkit run` leaves: two finished notebooks, one still running."""
    root = tmp_path_factory.mktemp("batch")
    kw = dict(verbose=False)
    run_configs({"ce-hard": _tiny("digits", labels="hard", loss="ce"),
                 "jml-ls": _tiny("digits", labels="ls", loss="ce+jml")}, seeds=[0], output_dir=root / "02_label_smoothing", **kw)
    run_configs({"soft-jml": _tiny("brain", labels="soft", loss="jml")}, seeds=[0, 1], output_dir=root / "05_soft_labels", **kw)
    run_configs({"x": _tiny("digits", labels="hard", loss="ce", lr=1e-3)}, seeds=[0], output_dir=root / "03_distillation", **kw)
    for nb, status in (("02_label_smoothing", "ok"), ("03_distillation", "running")):
        (root / nb / "run.json").write_text(json.dumps({"status": status}))
    (root / "05_soft_labels" / "figures").mkdir()  # not a run folder
    (root / "05_soft_labels" / "runs" / "broken__seed0").mkdir()  # no metrics.json: unfinished
    nested = root / "03_distillation" / "exercise" / "runs"  # an exercise's runs: too deep, not compared
    shutil.copytree(root / "02_label_smoothing" / "runs" / "ce-hard__seed0", nested / "ce-hard__seed0")
    return root


# ------------------------------------------------------------------ names and discovery


def test_run_names_round_trip():
    assert compare.parse_run_name(compare.run_folder_name("ce+jml", 7)) == ("ce+jml", 7)
    assert compare.parse_run_name("a__b__seed12") == ("a__b", 12)
    assert compare.parse_run_name("ce__seedx") is None
    with pytest.raises(ValueError, match="`seed`"):
        compare.run_folder_name("ce", -1)
    with pytest.raises(ValueError, match="`config`"):
        compare.run_folder_name("a/b", 0)


def test_find_runs_layout_status_and_filters(batch):
    runs = compare.find_runs(batch)
    assert list(runs[["notebook", "config", "seed"]].itertuples(index=False, name=None)) == [
        ("02_label_smoothing", "ce-hard", 0), ("02_label_smoothing", "jml-ls", 0),
        ("05_soft_labels", "soft-jml", 0), ("05_soft_labels", "soft-jml", 1)]
    assert runs["has_model"].all() and set(runs["dataset"]) == {"digits", "brain"}
    # the notebook whose batch run is still going is left out, unless asked for
    unfinished = compare.find_runs(batch, only_finished=False)
    assert unfinished.loc[unfinished["notebook"] == "03_distillation", "config"].tolist() == ["x"]
    assert set(compare.find_runs(batch, notebooks=["05"])["notebook"]) == {"05_soft_labels"}
    assert len(compare.find_runs(batch, exclude=batch / "05_soft_labels")) == 2
    # one notebook's output_dir, or its runs folder, name the notebook after that folder
    assert set(compare.find_runs(batch / "05_soft_labels")["notebook"]) == {"05_soft_labels"}
    assert set(compare.find_runs(batch / "05_soft_labels" / "runs")["notebook"]) == {"05_soft_labels"}
    empty = compare.find_runs(batch / "missing")
    assert empty.empty and "path" in empty.columns
    assert compare.notebook_status(batch) == {"02_label_smoothing": "ok", "03_distillation": "running"}


def test_resolve_results_dir(batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert compare.resolve_results_dir("given", batch / "06_calibration") == Path("given")
    assert compare.resolve_results_dir(None, batch / "06_calibration") == batch
    assert compare.resolve_results_dir(None, tmp_path / "alone" / "06_calibration") is None


# ------------------------------------------------------------------ metrics tables


def test_load_metrics_works_with_recipes_tables(batch):
    runs = compare.find_runs(batch)
    metrics = compare.load_metrics(runs, extra=["IoU_per_class"])
    assert {"mIoU_D", "ECE_D", "train_time_s"} <= set(metrics.columns)
    assert "reliability" not in metrics.columns and isinstance(metrics["IoU_per_class"][0], list)
    summary = summarize(metrics, ["ECE_D"], by=["notebook", "config"])
    soft = summary[summary["config"] == "soft-jml"].iloc[0]
    assert soft["n_seeds"] == 2
    assert soft["ECE_D_mean"] == pytest.approx(metrics.loc[metrics["config"] == "soft-jml", "ECE_D"].mean())
    # a recipes table (run_dir column, no notebook column) works wherever find_runs' table does
    recipes_table = runs.drop(columns=["path", "notebook"]).assign(run_dir=runs["path"])
    assert compare.load_metrics(recipes_table)["ECE_D"].tolist() == metrics["ECE_D"].tolist()
    assert ("soft-jml",) in compare.reliability_tables(recipes_table)
    with pytest.raises(TypeError, match="find_runs"):
        compare.load_metrics(runs.drop(columns=["path"]))


def test_reliability_tables_match_the_runs_ece(batch):
    runs = compare.find_runs(batch)
    tables = compare.reliability_tables(runs)
    assert set(tables) == {("02_label_smoothing", "ce-hard"), ("02_label_smoothing", "jml-ls"),
                           ("05_soft_labels", "soft-jml")}
    one = runs[runs["config"] == "ce-hard"].iloc[0]
    ece = json.loads((Path(one["path"]) / "metrics.json").read_text())["ECE_D"]
    assert tables[("02_label_smoothing", "ce-hard")]["ECE_D"] == pytest.approx(ece, abs=1e-9)
    pooled = tables[("05_soft_labels", "soft-jml")]["reliability"]
    counts = sum(np.asarray(json.loads((Path(p) / "metrics.json").read_text())["reliability"]["count"])
                 for p in runs.loc[runs["config"] == "soft-jml", "path"])
    np.testing.assert_array_equal(pooled["count"].to_numpy(), counts)


def test_pool_reliability_weights_by_count():
    a = {"bin": [0, 1], "lower": [0, .5], "upper": [.5, 1], "count": [0, 2], "confidence": [np.nan, .8], "accuracy": [np.nan, 1.]}
    b = {"bin": [0, 1], "lower": [0, .5], "upper": [.5, 1], "count": [1, 6], "confidence": [.3, .6], "accuracy": [0., .5]}
    p = compare.pool_reliability([a, b])
    assert p["count"].tolist() == [1, 8]
    assert p["confidence"].tolist() == pytest.approx([.3, (2 * .8 + 6 * .6) / 8])
    assert p["accuracy"].tolist() == pytest.approx([0., (2 + 3) / 8])
    with pytest.raises(ValueError, match="same number of bins"):
        compare.pool_reliability([a, pd.DataFrame(a).iloc[:1]])
    with pytest.raises(ValueError, match="at least one"):
        compare.pool_reliability([])


# ------------------------------------------------------------------ soft-label errors


def _reference(p: torch.Tensor, y: torch.Tensor, band=(0.2, 0.8), extreme=0.1) -> dict:
    p2 = p.movedim(1, -1).reshape(-1, p.shape[1]).double().numpy()
    y2 = y.movedim(1, -1).reshape(-1, p.shape[1]).double().numpy()
    inside = (y2 > band[0]) & (y2 < band[1])
    pb, yb = p2[inside], y2[inside]
    inter, union = np.minimum(p2, y2).sum(0), np.maximum(p2, y2).sum(0)
    return {"L1": 0.5 * np.abs(p2 - y2).sum(1).mean(), "soft_mIoU": (inter / union).mean(),
            "soft_mDice": (2 * inter / (p2.sum(0) + y2.sum(0))).mean(), "MAE_band": np.abs(pb - yb).mean(),
            "extreme_band": ((pb < extreme) | (pb > 1 - extreme)).mean(), "slope_band": np.polyfit(yb, pb, 1)[0]}


def test_soft_label_stats_match_a_reference_and_stream():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(3 * torch.randn(6, 4, 9, 7, generator=g), 1)
    y = torch.softmax(2 * torch.randn(6, 4, 9, 7, generator=g), 1)
    ref = _reference(p, y)
    one = compare.soft_label_metrics(p, y)
    for key, value in ref.items():
        assert one[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    stats = compare.SoftLabelStats(4)
    for i in range(0, 6, 4):  # batches of 4 and 2
        stats.update(p[i:i + 4], y[i:i + 4])
    streamed = stats.compute()
    for key in ref:
        assert streamed[key] == pytest.approx(one[key], rel=1e-9), key
    assert streamed["curve"]["count"].sum() == p.numel()
    assert streamed["band_hist"]["count"].sum() == ((y > 0.2) & (y < 0.8)).sum()
    assert streamed["band_hist"]["density"].mean() == pytest.approx(1.0)


def test_soft_label_stats_mask_identity_and_bias():
    g = torch.Generator().manual_seed(1)
    y = torch.softmax(torch.randn(2, 3, 8, 8, generator=g), 1)
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[0] = True
    assert compare.soft_label_metrics(y, y, mask)["L1"] == 0.0
    p = torch.softmax(torch.randn(2, 3, 8, 8, generator=g), 1)
    masked = compare.soft_label_metrics(p, y, mask)
    assert masked["L1"] == pytest.approx(compare.soft_label_metrics(p[:1], y[:1])["L1"])
    # soft IoU = the Jaccard index with the JML intersection (|p| + |y| - |p - y|) / 2
    inter = (p.sum((0, 2, 3)) + y.sum((0, 2, 3)) - (p - y).abs().sum((0, 2, 3))) / 2
    iou = inter / (p.sum((0, 2, 3)) + y.sum((0, 2, 3)) - inter)
    assert compare.soft_label_metrics(p, y)["soft_IoU_per_class"] == pytest.approx(iou.double().tolist(), rel=1e-6)
    # the one-hot of the argmax is pushed to 0/1: every band entry is extreme and the slope is steep
    hard = torch.nn.functional.one_hot(y.argmax(1), 3).permute(0, 3, 1, 2).float()
    m = compare.soft_label_metrics(hard, y)
    assert m["extreme_band"] == 1.0 and m["slope_band"] > 1.0


def test_soft_label_stats_errors():
    with pytest.raises(ValueError, match="`band`"):
        compare.SoftLabelStats(3, band=(0.8, 0.2))
    with pytest.raises(ValueError, match="`extreme`"):
        compare.SoftLabelStats(3, extreme=0.5)
    with pytest.raises(ValueError, match="`num_classes`"):
        compare.SoftLabelStats(1)
    stats = compare.SoftLabelStats(3)
    with pytest.raises(ValueError, match="same shape"):
        stats.update(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match="`mask`"):
        stats.update(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.ones(1, 4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="tensors"):
        stats.update(np.zeros((1, 3, 4, 4)), torch.rand(1, 3, 4, 4))


# ------------------------------------------------------------------ evaluating runs


def test_evaluate_run_agrees_with_calibration_metrics(batch):
    run = compare.find_runs(batch, notebooks=["05"]).iloc[0]
    res = compare.evaluate_run(run["path"], max_distance=3, n_bins=10, device="cpu")
    data = eval_dataset(run["path"])
    pred = predict(load_checkpoint(run["path"]), data, n=len(data))
    reference = CalibrationMetrics(4, n_bins=10)
    reference.update(pred.probs, pred.labels)
    ref = reference.compute()
    assert len(res["boundary"]) == 4 and res["boundary"]["count"].sum() == pred.labels.numel()
    assert res["per_class"]["ECE_class"].mean() == pytest.approx(ref["SCE_D"], rel=1e-6)
    assert res["per_class"]["frequency"].sum() == pytest.approx(1.0)
    assert res["soft"]["L1"] == pytest.approx(compare.soft_label_metrics(pred.probs, pred.soft)["L1"], rel=1e-6)
    digits = compare.find_runs(batch, notebooks=["02"]).iloc[0]
    res = compare.evaluate_run(digits["path"], max_distance=2, device="cpu")
    assert len(res["per_class"]) == 11 and res["per_class"]["class_name"][0] == "background"


def test_evaluate_runs_tidy_tables_and_means(batch):
    runs = compare.find_runs(batch)
    ev = compare.evaluate_runs(runs, max_distance=2, device="cpu")
    assert set(ev) == {"boundary", "per_class", "soft", "curve", "band_hist", "skipped"} and ev["skipped"].empty
    assert len(ev["boundary"]) == 3 * len(runs) and {"notebook", "config", "seed", "ECE"} <= set(ev["boundary"])
    assert len(ev["per_class"]) == 2 * 11 + 2 * 4
    # DigitScenes has coverage soft labels too, so every run gets soft-label errors
    assert len(ev["soft"]) == len(runs) and "MAE_band" in ev["soft"]
    means = compare.mean_boundary_tables(ev["boundary"], by=["notebook", "config"])
    table = means["05_soft_labels / soft-jml"]
    assert list(table["distance"]) == [1, 2, 3] and "ECE_std" in table
    b = ev["boundary"]
    sel = b[(b["config"] == "soft-jml") & (b["distance"] == 1)]
    assert table.loc[0, "ECE"] == pytest.approx(sel["ECE"].mean())
    no_model = runs.assign(has_model=False)
    assert all(df.empty for df in compare.evaluate_runs(no_model).values())
    # a checkpoint that no longer fits its model definition is skipped with a warning (or raises)
    broken = runs.iloc[:1].assign(path=str(batch / "broken_copy"))
    shutil.copytree(runs["path"].iloc[0], broken["path"].iloc[0], dirs_exist_ok=True)
    torch.save({"model_spec": torch.load(Path(runs["path"].iloc[0]) / "model.pt", weights_only=False)["model_spec"],
                "state_dict": {}}, Path(broken["path"].iloc[0]) / "model.pt")
    with pytest.warns(UserWarning, match="skipped"):
        ev = compare.evaluate_runs(broken)
    assert ev["boundary"].empty and ev["skipped"]["error"].str.startswith("RuntimeError").all()
    with pytest.raises(RuntimeError):
        compare.evaluate_runs(broken, on_error="raise")
    with pytest.raises(TypeError, match="find_runs"):
        compare.evaluate_runs([1, 2])


# ------------------------------------------------------------------ figures


def test_figures(batch):
    runs = compare.find_runs(batch)
    tables = compare.reliability_tables(runs)
    fig = compare.plot_reliability_grid(tables, ncols=2)
    assert isinstance(fig, Figure) and sum(ax.get_visible() for ax in fig.axes if ax.get_title()) == 3
    summary = summarize(compare.load_metrics(runs), ["mIoU_D", "ECE_D"], by=["notebook", "config"])
    assert isinstance(compare.plot_tradeoff(summary), Figure)
    ev = compare.evaluate_runs(runs[runs["notebook"] == "05_soft_labels"], max_distance=2, device="cpu")
    curves = {c: g for c, g in ev["curve"].groupby("config")}
    assert compare.plot_soft_target_curves(curves).axes[0].get_xlabel().startswith("target")
    hists = {c: g for c, g in ev["band_hist"].groupby("config")}
    assert len(compare.plot_band_histograms(hists).axes) == 1
    assert compare.plot_per_class_calibration(ev["per_class"]).axes[0].get_ylabel() == "class-wise calibration error"
    y = torch.softmax(torch.randn(3, 8, 8), 0)
    fig = compare.plot_soft_predictions(torch.rand(1, 8, 8), y, {"a": y, "b": y}, class_index=1)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "target y (class 1)", "p: a", "p: b"]
    for bad in ({}, None):
        with pytest.raises(ValueError):
            compare.plot_reliability_grid(bad)
    with pytest.raises(ValueError, match="class_index"):
        compare.plot_soft_predictions(torch.rand(1, 8, 8), y, {"a": y}, class_index=3)
