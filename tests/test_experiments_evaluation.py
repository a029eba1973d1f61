"""Finished runs evaluated again (jmlkit.experiments.evaluation): reliability tables, calibration near boundaries and
per class, soft-label errors; on tiny runs made here (a few seconds of training)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from jmlkit import experiments as ex
from jmlkit.engine import TrainConfig, predict
from jmlkit.metrics import CalibrationMetrics


def _tiny(dataset: str, **kw) -> TrainConfig:
    data = {"brain": {"size": 16, "in_channels": 1}, "digits": {"size": 32, "digit_size": 16, "num_scenes": 8}}[dataset]
    return TrainConfig(dataset=dataset, dataset_kwargs=data, model="tiny", epochs=1, train_limit=8,
                       eval_limit=4, val_split=None, batch_size=4, num_threads=1, **kw)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """Two notebooks of a batch folder: digit scenes (two configurations) and brain slices (two seeds)."""
    root = tmp_path_factory.mktemp("batch")
    ex.run_configs({"ce-hard": _tiny("digits", labels="hard", loss="ce"),
                    "jml-ls": _tiny("digits", labels="ls", loss="ce+jml")}, seeds=[0], output_dir=root / "02_label_smoothing",
                   verbose=False)
    ex.run_configs({"soft-jml": _tiny("brain", labels="soft", loss="jml")}, seeds=[0, 1], output_dir=root / "05_soft_labels",
                   verbose=False)
    return root


# --------------------------------------------------------------------------- one reliability table, one pooling
def test_reliability_table_accepts_every_form(batch):
    run = ex.find_runs(batch).iloc[0]["path"]
    metrics = ex.run_metrics(run)
    from_folder = ex.reliability_table(run)
    assert {"lower", "upper", "count", "confidence", "accuracy"} <= set(from_folder.columns)
    for form in (metrics, metrics["reliability"], pd.DataFrame(metrics["reliability"])):
        pd.testing.assert_frame_equal(ex.reliability_table(form), from_folder)
    with pytest.raises(ValueError, match="'reliability'"):
        ex.reliability_table({"ECE_D": 0.1})
    with pytest.raises(ValueError, match="columns"):
        ex.reliability_table(pd.DataFrame({"count": [1]}))
    with pytest.raises(TypeError, match="`run`"):
        ex.reliability_table(3)


def test_pool_reliability_weights_by_count():
    a = {"bin": [0, 1], "lower": [0, .5], "upper": [.5, 1], "count": [0, 2], "confidence": [np.nan, .8], "accuracy": [np.nan, 1.]}
    b = {"bin": [0, 1], "lower": [0, .5], "upper": [.5, 1], "count": [1, 6], "confidence": [.3, .6], "accuracy": [0., .5]}
    p = ex.pool_reliability([a, {"reliability": b}])
    assert p["count"].tolist() == [1, 8]
    assert p["confidence"].tolist() == pytest.approx([.3, (2 * .8 + 6 * .6) / 8])
    assert p["accuracy"].tolist() == pytest.approx([0., (2 + 3) / 8])
    assert p["fraction"].tolist() == pytest.approx([1 / 9, 8 / 9])
    with pytest.raises(ValueError, match="same number of bins"):
        ex.pool_reliability([a, pd.DataFrame(a).iloc[:1]])
    with pytest.raises(ValueError, match="at least one"):
        ex.pool_reliability([])


def test_reliability_tables_match_the_runs_ece(batch):
    runs = ex.find_runs(batch)
    tables = ex.reliability_tables(runs)
    assert set(tables) == {("02_label_smoothing", "ce-hard"), ("02_label_smoothing", "jml-ls"), ("05_soft_labels", "soft-jml")}
    one = runs[runs["config"] == "ce-hard"].iloc[0]
    assert tables[("02_label_smoothing", "ce-hard")]["ECE_D"] == pytest.approx(ex.run_metrics(one["path"])["ECE_D"], abs=1e-9)
    pooled = tables[("05_soft_labels", "soft-jml")]["reliability"]
    counts = sum(np.asarray(ex.run_metrics(p)["reliability"]["count"]) for p in runs.loc[runs["config"] == "soft-jml", "path"])
    np.testing.assert_array_equal(pooled["count"].to_numpy(), counts)
    # a run_configs table has config but no notebook
    own = runs.drop(columns=["path", "notebook"]).assign(run_dir=runs["path"])
    assert ("soft-jml",) in ex.reliability_tables(own)
    with pytest.raises(ValueError, match="grouping column"):
        ex.reliability_tables(own, by=["notebook"])


# --------------------------------------------------------------------------- models and data of a run
def test_model_data_and_examples_of_a_run(batch):
    folder = ex.find_runs(batch, notebooks=["02"]).iloc[0]["path"]
    assert isinstance(ex.load_model(folder), torch.nn.Module) and not ex.load_model(folder).training
    data = ex.eval_dataset(folder)
    assert len(data) == 4  # eval_limit
    assert len(ex.eval_dataset(_tiny("digits").replace(eval_limit=None))) == 8
    batch_ = ex.examples(TrainConfig.from_profile("smoke"), n=2)
    assert batch_["label"].shape[0] == 2 and batch_["num_classes"] == 11 and batch_["class_names"][0] == "background"
    near = ex.boundary_calibration(folder, max_distance=3)
    assert near["distance"].tolist() == [1, 2, 3, 4] and near["count"].sum() == 4 * 32 * 32


# --------------------------------------------------------------------------- evaluating runs again
def test_evaluate_run_agrees_with_calibration_metrics(batch):
    run = ex.find_runs(batch, notebooks=["05"]).iloc[0]
    res = ex.evaluate_run(run["path"], max_distance=3, n_bins=10, device="cpu")
    data = ex.eval_dataset(run["path"])
    pred = predict(ex.load_model(run["path"]), data, n=len(data))
    reference = CalibrationMetrics(4, n_bins=10)
    reference.update(pred.probs, pred.labels)
    ref = reference.compute()
    assert len(res["boundary"]) == 4 and res["boundary"]["count"].sum() == pred.labels.numel()
    assert res["per_class"]["ECE_class"].mean() == pytest.approx(ref["SCE_D"].item(), rel=1e-6)
    assert res["per_class"]["frequency"].sum() == pytest.approx(1.0)
    assert res["soft"]["L1"] == pytest.approx(ex.soft_label_metrics(pred.probs, pred.soft)["L1"].item(), rel=1e-6)
    digits = ex.find_runs(batch, notebooks=["02"]).iloc[0]
    res = ex.evaluate_run(digits["path"], max_distance=2, device="cpu")
    assert len(res["per_class"]) == 11 and res["per_class"]["class_name"][0] == "background"


def test_evaluate_runs_tidy_tables_and_means(batch):
    runs = ex.find_runs(batch)
    ev = ex.evaluate_runs(runs, max_distance=2, device="cpu")
    assert set(ev) == {"boundary", "per_class", "soft", "curve", "band_hist", "skipped"} and ev["skipped"].empty
    assert len(ev["boundary"]) == 3 * len(runs) and {"notebook", "config", "seed", "ECE"} <= set(ev["boundary"])
    assert len(ev["per_class"]) == 2 * 11 + 2 * 4
    # DigitScenes has coverage soft labels too, so every run gets soft-label errors
    assert len(ev["soft"]) == len(runs) and "MAE_band" in ev["soft"]
    means = ex.mean_boundary_tables(ev["boundary"], by=["notebook", "config"])
    table = means["05_soft_labels / soft-jml"]
    assert list(table["distance"]) == [1, 2, 3] and "ECE_std" in table
    b = ev["boundary"]
    sel = b[(b["config"] == "soft-jml") & (b["distance"] == 1)]
    assert table.loc[0, "ECE"] == pytest.approx(sel["ECE"].mean())
    no_model = runs.assign(has_model=False)
    assert all(df.empty for df in ex.evaluate_runs(no_model).values())


def test_evaluate_runs_skips_a_broken_checkpoint(batch):
    runs = ex.find_runs(batch)
    broken = runs.iloc[:1].assign(path=str(batch / "broken_copy"))
    shutil.copytree(runs["path"].iloc[0], broken["path"].iloc[0], dirs_exist_ok=True)
    torch.save({"model_spec": torch.load(Path(runs["path"].iloc[0]) / "model.pt", weights_only=True)["model_spec"],
                "state_dict": {}}, Path(broken["path"].iloc[0]) / "model.pt")
    with pytest.warns(UserWarning, match="skipped"):
        ev = ex.evaluate_runs(broken)
    assert ev["boundary"].empty and ev["skipped"]["error"].str.startswith("ValueError").all()
    assert ev["skipped"]["error"].str.contains("to fit its own model_spec").all()
    with pytest.raises(ValueError, match="model.pt' to fit its own model_spec"):
        ex.evaluate_runs(broken, on_error="raise")
    with pytest.raises(ValueError, match="`on_error`"):
        ex.evaluate_runs(broken, on_error="ignore")
    with pytest.raises(TypeError, match="find_runs"):
        ex.evaluate_runs([1, 2])
    assert json.loads((Path(broken["path"].iloc[0]) / "config.json").read_text())["dataset"] == "digits"


def test_ablation_shares_are_the_regimes_the_ablation_is_read_against():
    """02b's reports: boundary LS on the ablation's scenes and in each regime, uniform LS (every pixel smoothed), and
    the ablation's larger digits only where no regime already holds large ones."""
    base = TrainConfig.from_profile("smoke")
    large = {"size": 24, "digit_size": [20, 22]}
    bases = ex.regime_configs(base, {"small": {}})
    reports = ex.ablation_shares(base, bases, 8, large=large)
    assert list(reports) == ["data", "small", "uniform", "large"]
    assert reports["data"].object_share_smoothed == reports["small"].object_share_smoothed  # the same scenes
    assert reports["uniform"].object_share_smoothed == 1.0
    expected = ex.training_shares(base.replace(dataset_kwargs={**base.dataset_kwargs, **large}), 8)
    assert reports["large"].object_share_smoothed == pytest.approx(expected.object_share_smoothed)
    assert reports["large"].object_share_smoothed < reports["data"].object_share_smoothed  # larger digits: a thinner band
    with_large = ex.ablation_shares(base, ex.regime_configs(base, {"small": {}, "large": {"dataset_kwargs": large}}), 8,
                                    large=large)
    assert list(with_large) == ["data", "small", "large", "uniform"]  # the regime's own large digits, not again
