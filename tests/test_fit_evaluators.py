"""Extra evaluators of fit (one evaluation pass), the full results of run_configs from memory or the cache, and
notebooks that read nothing back from disk that their own training just produced."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from jmlkit import experiments as ex
from jmlkit.engine import TrainConfig, fit, load_checkpoint, predict
from jmlkit.engine.data import evaluation_data
from jmlkit.engine.evaluation import describe_evaluator, evaluation_pass
from jmlkit.experiments import results as R
from jmlkit.metrics import BoundaryCalibration, CalibrationMetrics, ClasswiseCalibration, SoftLabelStats

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EVALUATORS = {"near": partial(BoundaryCalibration, max_distance=3), "per_class": ClasswiseCalibration,
              "soft": partial(SoftLabelStats, band=(0.2, 0.8))}


def _cfg(**kw) -> TrainConfig:
    return TrainConfig.from_profile("smoke", labels="ls", loss="ce+jml", epochs=1, **kw)


def _close(a, b) -> None:
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y)
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-9)
    else:
        assert a == b


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "run"
    return fit(_cfg(out=str(out)), progress=False, evaluators=EVALUATORS)


def test_fit_evaluators_equal_a_separate_evaluation_of_the_saved_model(fitted):
    cfg = fitted.config
    data = evaluation_data(cfg)
    again = evaluation_pass(load_checkpoint(fitted.run_dir), data, evaluators=EVALUATORS, batch_size=cfg.eval_batch_size)
    assert set(fitted.evaluations) == set(EVALUATORS)
    for name in EVALUATORS:  # the same model, data and batches: the same numbers (float32 forward passes on other
        _close(fitted.evaluations[name], again.evaluations[name])  # thread counts: equal to ~1e-7)
    # and a reference for their meaning: the standard metrics of the same pass
    near = pd.DataFrame(fitted.evaluations["near"])
    assert near["count"].sum() == fitted.metrics["n_pixels"] and near["distance"].tolist() == [1, 2, 3, 4]
    per_class = pd.DataFrame(fitted.evaluations["per_class"])
    assert per_class["ECE_class"].mean() == pytest.approx(fitted.metrics["SCE_D"], rel=1e-9)
    assert per_class["class_name"][0] == "background" and per_class["frequency"].sum() == pytest.approx(1.0)
    pred = predict(fitted.model, data, n=len(data))
    reference = ex.soft_label_metrics(pred.probs, pred.soft)["L1"].item()
    assert fitted.evaluations["soft"]["L1"] == pytest.approx(reference, rel=1e-9)


def test_fit_stores_its_evaluations_in_the_run_folder(fitted):
    stored = json.loads((fitted.run_dir / "evaluations.json").read_text())
    assert {k: v["value"] for k, v in stored.items()} == fitted.evaluations
    assert stored["near"]["evaluator"] == describe_evaluator(EVALUATORS["near"])
    assert stored["near"]["evaluator"].endswith("BoundaryCalibration(max_distance=3)")


def test_a_soft_label_evaluator_on_data_without_soft_labels_gives_none():
    class Hard(torch.utils.data.Dataset):
        def __init__(self, base):
            self.base, self.num_classes, self.ignore_index = base, base.dataset.num_classes, base.dataset.ignore_index

        def __len__(self):
            return len(self.base)

        def __getitem__(self, i):
            return {k: v for k, v in self.base[i].items() if k != "soft"}

    cfg = _cfg()
    res = fit(cfg, progress=False, eval_data=Hard(evaluation_data(cfg)), evaluators={"soft": SoftLabelStats, "pc": ClasswiseCalibration})
    assert res.evaluations["soft"] is None and len(res.evaluations["pc"]["class"]) == 11


@pytest.mark.parametrize("evaluators, error, match", [
    ([BoundaryCalibration], TypeError, "`evaluators` to be a dict"),
    ({"x": CalibrationMetrics(3).compute}, TypeError, r"`evaluators\['x'\]` to be a torchmetrics Metric"),
    ({"x": partial(pd.DataFrame)}, TypeError, r"`evaluators\['x'\]`"),
    ({"": BoundaryCalibration}, TypeError, "non-empty strings"),
])
def test_fit_checks_evaluators_before_any_work(tmp_path, evaluators, error, match):
    with pytest.raises(error, match=match):
        fit(_cfg(out=str(tmp_path / "run")), progress=False, evaluators=evaluators)
    assert list(tmp_path.iterdir()) == []


def test_fit_evaluators_need_an_evaluation_split(tmp_path):
    with pytest.raises(ValueError, match="`eval_split`"):
        fit(_cfg().replace(out=str(tmp_path / "run"), eval_split=None), progress=False, evaluators={"pc": ClasswiseCalibration})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- full results from memory or the cache
def _same(a: R.RunResult, b: R.RunResult) -> None:
    assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)
    pd.testing.assert_frame_equal(a.history, b.history)
    assert json.dumps(a.evaluations, sort_keys=True) == json.dumps(b.evaluations, sort_keys=True)
    assert a.evaluators == b.evaluators and a.run_dir == b.run_dir


def test_a_cached_run_returns_the_same_full_results_as_the_fresh_one(tmp_path):
    configs = {"ls": _cfg()}
    runs = ex.run_configs(configs, seeds=[0], output_dir=tmp_path, verbose=False, evaluators=EVALUATORS)
    (fresh,) = ex.run_results(runs)
    assert not fresh.cached and fresh.has_model and set(fresh.evaluations) == set(EVALUATORS)
    R._forget()  # a new process: everything comes from the cache folder
    again = ex.run_configs(configs, seeds=[0], output_dir=tmp_path, verbose=False, evaluators=EVALUATORS)
    (cached,) = ex.run_results(again)
    assert cached.cached and not cached.has_model
    _same(fresh, cached)
    pd.testing.assert_frame_equal(runs.drop(columns="cached"), again.drop(columns="cached"))
    assert cached.reliability.equals(fresh.reliability) and cached.table("near").equals(fresh.table("near"))
    for p_fresh, p_cached in zip(fresh.model.state_dict().values(), cached.model.state_dict().values()):
        assert torch.equal(p_fresh, p_cached)


def test_a_cached_run_is_evaluated_once_for_a_new_evaluator(tmp_path, monkeypatch):
    configs = {"ls": _cfg()}
    runs = ex.run_configs(configs, seeds=[0], output_dir=tmp_path, verbose=False)  # no evaluators
    folder = Path(runs["run_dir"].iloc[0])
    marker = (folder / "recipe.json").read_text()
    passes = []
    real = R.evaluation_pass
    monkeypatch.setattr(R, "evaluation_pass", lambda *a, **k: passes.append(sorted(k["evaluators"])) or real(*a, **k))
    R._forget()
    ex.run_configs(configs, seeds=[0], output_dir=tmp_path, verbose=False, evaluators=EVALUATORS)
    assert passes == [sorted(EVALUATORS)]  # one pass for the missing ones, no training (the marker is the same)
    assert (folder / "recipe.json").read_text() == marker
    stored = json.loads((folder / "evaluations.json").read_text())
    reference = evaluation_pass(load_checkpoint(folder), evaluation_data(_cfg()), evaluators=EVALUATORS,
                                batch_size=_cfg().eval_batch_size).evaluations
    _close({k: v["value"] for k, v in stored.items()}, reference)
    R._forget()
    ex.run_configs(configs, seeds=[0], output_dir=tmp_path, verbose=False, evaluators=EVALUATORS)
    assert len(passes) == 1  # stored now
    other = {"near": partial(BoundaryCalibration, max_distance=2)}  # the same name, other options: evaluated again
    (result,) = ex.run_results(ex.run_configs(configs, seeds=[0], output_dir=tmp_path, verbose=False, evaluators=other))
    assert passes[-1] == ["near"] and result.table("near")["distance"].tolist() == [1, 2, 3]


def test_evaluate_run_reads_stored_evaluations(tmp_path, monkeypatch):
    runs = ex.run_configs({"ls": _cfg()}, seeds=[0], output_dir=tmp_path, verbose=False, evaluators=ex.evaluators())
    monkeypatch.setattr(R, "evaluation_pass", lambda *a, **k: pytest.fail("evaluated again"))
    tables = ex.evaluation_tables(runs)
    assert len(tables["boundary"]) == 7 and len(tables["per_class"]) == 11 and len(tables["soft"]) == 1
    R._forget()  # from the folder, as notebook 06 reads another notebook's runs
    again = ex.evaluation_tables(runs)
    for name in ("boundary", "per_class", "soft", "curve"):
        pd.testing.assert_frame_equal(tables[name], again[name])


# --------------------------------------------------------------------------- notebooks
def _notebook_code(stem: str, **parameters) -> str:
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(line for line in "".join(cell["source"]).splitlines(keepends=True) if not line.startswith("%"))
        cells.append(source)
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cells.append("\n".join(f"{k} = {v!r}" for k, v in parameters.items()))
    return "\n\n".join(cells)


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
@pytest.mark.parametrize("stem", ["02_label_smoothing", "02b_smoothing_ablation", "02c_smoothing_strength",
                                  "03_distillation", "04_semi_supervised", "05_soft_labels"])
def test_notebooks_read_back_nothing_their_training_produced(stem, tmp_path, monkeypatch):
    """The notebook's code, run here with counters: no model.pt read outside training (03's students read their
    teacher's checkpoint as training input), and no evaluation pass but those of each run's training."""
    import jmlkit.engine
    import jmlkit.engine.loop

    state = {"in_fit": 0, "model_reads": [], "fit_passes": 0, "fits": 0}
    real_load, real_fit, real_pass = torch.load, jmlkit.engine.fit, jmlkit.engine.loop.evaluation_pass

    def load(f, *a, **k):
        if str(f).endswith("model.pt") and not state["in_fit"]:
            state["model_reads"].append(str(f))
        return real_load(f, *a, **k)

    def counted_fit(*a, **k):
        state["in_fit"] += 1
        state["fits"] += 1
        try:
            return real_fit(*a, **k)
        finally:
            state["in_fit"] -= 1

    def fit_pass(*a, **k):
        state["fit_passes"] += 1
        return real_pass(*a, **k)

    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(jmlkit.engine, "fit", counted_fit)
    monkeypatch.setattr(jmlkit.engine.loop, "evaluation_pass", fit_pass)
    monkeypatch.setattr(R, "evaluation_pass", lambda *a, **k: pytest.fail("a run was evaluated again"))
    monkeypatch.setattr(ex.evaluation, "complete_evaluations", R.complete_evaluations)
    monkeypatch.chdir(NOTEBOOKS)
    R._forget()
    import matplotlib

    matplotlib.use("Agg")
    exec(compile(_notebook_code(stem, profile="smoke", output_dir=str(tmp_path / stem)), stem, "exec"), {"__name__": "nb"})
    assert state["fits"] > 0 and state["fit_passes"] == state["fits"]  # one evaluation pass per training run
    assert state["model_reads"] == []
    assert np.isfinite(json.loads((tmp_path / stem / "metrics.json").read_text()).get("n_runs", 0.0))
