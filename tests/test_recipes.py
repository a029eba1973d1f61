"""Unit tests of jmlkit.recipes: caching, tidy tables, sweeps, bad input. Tiny runs (smoke profile), < 30 s."""
import json
import math

import pandas as pd
import pytest
import torch

from jmlkit import recipes
from jmlkit.train import TrainConfig


@pytest.fixture(scope="module")
def tiny():
    """A run of about a second: 8 scenes of 16x16, the tiny UNet, one epoch."""
    return recipes.profile_config("smoke", train_limit=8, eval_limit=4, batch_size=4)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny):
    """Two configurations x two seeds, trained once for the whole module."""
    out = tmp_path_factory.mktemp("recipes") / "02_label_smoothing"
    configs = {"ce": tiny.replace(loss="ce"), "jml_ls": tiny.replace(labels="ls", loss="jml")}
    runs = recipes.run_configs(configs, seeds=[0, 1], output_dir=out, verbose=False)
    return out, configs, runs


# --------------------------------------------------------------------------- profiles
def test_profiles_build_valid_configs():
    for profile in recipes.PROFILE_NAMES:
        cfg = recipes.profile_config(profile)
        assert isinstance(cfg, TrainConfig)
    assert recipes.profile_config("quick", epochs=None).epochs == recipes.PROFILES["quick"]["epochs"]
    merged = recipes.profile_config("quick", dataset_kwargs={"noise": 0.1})
    assert merged.dataset_kwargs["noise"] == 0.1 and merged.dataset_kwargs["size"] == 16


def test_profile_seeds():
    assert recipes.profile_seeds("quick", seed=4) == [4]
    assert recipes.profile_seeds("full") == [0, 1, 2]
    assert recipes.profile_seeds("smoke", 3) == [3]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: recipes.profile_config("fast"), "`profile`"),
        (lambda: recipes.profile_seeds("quick", []), "`seeds`"),
        (lambda: recipes.profile_seeds("quick", [0, 0]), "without repeats"),
        (lambda: recipes.profile_seeds("quick", [-1]), "`seeds`"),
        (lambda: recipes.profile_values("lr", "quick"), "`name`"),
        (lambda: recipes.run_dir_for("out", "a__b", 0), "config name"),
        (lambda: recipes.run_dir_for("out", "a/b", 0), "config name"),
        (lambda: recipes.run_configs({}, seeds=[0], output_dir="x"), "`configs`"),
        (lambda: recipes.epsilon_sweep({"a": TrainConfig()}, [1.5], seeds=0, output_dir="x"), "`epsilons`"),
        (lambda: recipes.labeled_fraction_sweep({"a": TrainConfig()}, [0.0], seeds=0, output_dir="x"), "`fractions`"),
        (lambda: recipes.sweep({"a": TrainConfig()}, "nope", [1], seeds=0, output_dir="x"), "`field`"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_type_error(tmp_path):
    with pytest.raises(TypeError, match="TrainConfig"):
        recipes.run_configs({"a": {"loss": "ce"}}, seeds=[0], output_dir=tmp_path)
    with pytest.raises(TypeError, match="`seeds`"):
        recipes.profile_seeds("quick", "0")
    with pytest.raises(TypeError, match="DataFrame"):
        recipes.summarize([{"config": "a"}])


# --------------------------------------------------------------------------- hashing
def test_config_hash_ignores_output_and_runtime_options():
    cfg = TrainConfig(seed=0)
    assert recipes.config_hash(cfg) == recipes.config_hash(cfg.replace(out="/elsewhere", num_threads=1, device="cpu"))
    assert recipes.config_hash(cfg) != recipes.config_hash(cfg.replace(epsilon=0.2))
    assert len(recipes.config_hash(cfg)) == 16


# --------------------------------------------------------------------------- running and caching
def test_run_configs_writes_the_run_layout(finished):
    out, configs, runs = finished
    assert list(runs["config"]) == ["ce", "ce", "jml_ls", "jml_ls"]
    assert list(runs["seed"]) == [0, 1, 0, 1]
    assert not runs["cached"].any()
    for name in configs:
        for seed in (0, 1):
            folder = out / "runs" / f"{name}__seed{seed}"
            for file in ("config.json", "metrics.json", "model.pt", "recipe.json", "history.csv"):
                assert (folder / file).is_file(), folder / file
            assert json.loads((folder / "config.json").read_text())["seed"] == seed
    assert {"mIoU_D", "ECE_D", "SCE_D", "run_dir"} <= set(runs.columns)


def test_rerun_reuses_finished_runs(finished):
    out, configs, runs = finished
    stamp = (out / "runs" / "ce__seed0" / "model.pt").stat().st_mtime_ns
    again = recipes.run_configs(configs, seeds=[0, 1], output_dir=out, verbose=False)
    assert again["cached"].all()
    assert (out / "runs" / "ce__seed0" / "model.pt").stat().st_mtime_ns == stamp
    pd.testing.assert_series_equal(again["mIoU_D"], runs["mIoU_D"])


def test_changed_config_retrains(finished, tiny, tmp_path):
    out, configs, _ = finished
    other = tmp_path / "changed"
    first = recipes.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=other, verbose=False, reuse=False)
    changed = recipes.run_configs({"ce": configs["ce"].replace(lr=1e-3)}, seeds=[0], output_dir=other, verbose=False)
    assert not first["cached"].item() and not changed["cached"].item()
    assert json.loads((other / "runs" / "ce__seed0" / "config.json").read_text())["lr"] == 1e-3


def test_another_notebook_reuses_a_sibling_run(finished):
    out, configs, runs = finished
    sibling = out.parent / "03_distillation"
    reused = recipes.run_configs({"hard_ce": configs["ce"]}, seeds=[1], output_dir=sibling, verbose=False)
    assert reused["cached"].item()
    folder = sibling / "runs" / "hard_ce__seed1"
    assert (folder / "model.pt").is_file()
    assert json.loads((folder / "config.json").read_text())["out"] == str(folder.resolve())
    assert reused["mIoU_D"].item() == runs.query("config == 'ce' and seed == 1")["mIoU_D"].item()


def test_load_runs_reads_the_folder(finished):
    out, _, _ = finished
    table = recipes.load_runs(out)
    assert len(table) == 4
    assert set(table["config"]) == {"ce", "jml_ls"}
    assert set(table.query("config == 'jml_ls'")["labels"]) == {"ls"}


# --------------------------------------------------------------------------- tables
def test_summarize_mean_std_shape(finished):
    _, _, runs = finished
    summary = recipes.summarize(runs, ["mIoU_D", "ECE_D"])
    assert summary.shape == (2, 2 + 2 * 2)
    assert list(summary.columns) == ["config", "n_seeds", "mIoU_D_mean", "mIoU_D_std", "ECE_D_mean", "ECE_D_std"]
    assert summary["n_seeds"].tolist() == [2, 2]
    ce = runs.query("config == 'ce'")["ECE_D"]
    assert math.isclose(summary.at[0, "ECE_D_mean"], ce.mean())
    assert math.isclose(summary.at[0, "ECE_D_std"], ce.std(ddof=1), abs_tol=1e-12)
    table = recipes.format_table(summary, ["mIoU_D", "ECE_D"])
    assert table.shape == (2, 2) and "±" in table.iloc[0, 0]
    heads = recipes.headline(summary, ["ECE_D"])
    assert set(heads) == {"ECE_D.ce", "ECE_D.jml_ls"}


def test_summarize_known_values():
    runs = pd.DataFrame({"config": ["b", "a", "b"], "seed": [0, 0, 1], "m": [1.0, 2.0, 3.0]})
    s = recipes.summarize(runs, "m")
    assert s["config"].tolist() == ["b", "a"]  # first-appearance order
    assert s["m_mean"].tolist() == [2.0, 2.0]
    assert math.isclose(s.at[0, "m_std"], 2 ** 0.5) and math.isnan(s.at[1, "m_std"])
    assert recipes.format_table(s, "m", percent=False).loc["a", "m"] == "2.0"
    with pytest.raises(ValueError, match="metric"):
        recipes.summarize(runs, ["nope"])
    with pytest.raises(ValueError, match="grouping"):
        recipes.summarize(runs, "m", by="nope")


def test_compare_sentence_follows_the_numbers():
    s = pd.DataFrame({"config": ["jml_ls", "ce_ls"], "n_seeds": [3, 3], "ECE_D_mean": [0.05, 0.02],
                      "ECE_D_std": [0.001, 0.001]})
    text = recipes.compare(s, "jml_ls", "ce_ls", "ECE_D")
    assert "higher ECE_D" in text and "5.0 ± 0.1 vs 2.0 ± 0.1" in text
    s.loc[0, "ECE_D_std"] = 0.05
    assert "within one standard deviation" in recipes.compare(s, "jml_ls", "ce_ls", "ECE_D")
    with pytest.raises(ValueError, match="configurations"):
        recipes.compare(s, "nope", "ce_ls", "ECE_D")


# --------------------------------------------------------------------------- sweeps and recipes
def test_epsilon_sweep_reuses_same_configuration(finished):
    out, configs, _ = finished
    swept = recipes.epsilon_sweep({"jml": configs["jml_ls"]}, [0.1], seeds=[0], output_dir=out, verbose=False)
    # labels="ls", epsilon=0.1 is exactly the jml_ls run: found by hash and copied, not retrained
    assert swept[["config", "method", "epsilon", "cached"]].values.tolist() == [["jml_e0.1", "jml", 0.1, True]]


def test_recipe_config_sets(tiny, tmp_path):
    ls = recipes.smoothing_configs(tiny, epsilon=0.2)
    assert ls["jml_bls"].smoothing == "boundary" and ls["ce_ls"].epsilon == 0.2 and ls["ce_hard"].labels == "hard"
    kd = recipes.distillation_configs(tiny, tmp_path / "teacher", temperature=2.0)
    assert all(c.kd_temperature == 2.0 for k, c in kd.items() if k != "hard_ce")
    ssl = recipes.ssl_configs(tiny)
    assert len({c.steps_per_epoch for c in ssl.values()}) == 1
    assert ssl["pseudo_hard_ce"].ssl_soft is False and ssl["pseudo_soft_jml"].ssl_soft is True


def test_teacher_hash_follows_the_teacher_run(finished, tiny):
    out, _, runs = finished
    teacher_dir = out / "runs" / "ce__seed0"
    copy_dir = out.parent / "03_distillation" / "runs" / "teacher_copy__seed0"
    copy_dir.parent.mkdir(parents=True, exist_ok=True)
    import shutil

    shutil.copytree(teacher_dir, copy_dir, dirs_exist_ok=True)
    a = recipes.distillation_configs(tiny, teacher_dir)["kd_jml"]
    b = recipes.distillation_configs(tiny, copy_dir)["kd_jml"]
    assert recipes.config_hash(a) == recipes.config_hash(b)


def test_analysis_helpers(finished):
    out, _, runs = finished
    folder = runs["run_dir"].iloc[0]
    rel = recipes.reliability_table(folder)
    assert {"lower", "upper", "count", "confidence", "accuracy"} <= set(rel.columns)
    near = recipes.boundary_calibration(folder, max_distance=3)
    assert near["distance"].tolist() == [1, 2, 3, 4]
    assert isinstance(recipes.load_model(folder), torch.nn.Module)
    batch = recipes.examples(recipes.profile_config("smoke"), n=2)
    assert batch["label"].shape[0] == 2 and batch["num_classes"] == 11


def test_figures(finished):
    _, _, runs = finished
    s = recipes.summarize(runs, ["mIoU_D", "ECE_D"])
    assert len(recipes.bar_chart(s, ["mIoU_D", "ECE_D"]).axes) == 2
    with pytest.raises(ValueError, match="summary"):
        recipes.bar_chart(s, ["SCE_D"])
    sweep = runs.assign(method=runs["config"], epsilon=runs["seed"] * 0.1)
    fig = recipes.sweep_plot(recipes.summarize(sweep, ["ECE_D"], by=["method", "epsilon"]), "epsilon", ["ECE_D"])
    assert fig.axes[0].get_xlabel() == "epsilon"


def test_unrelated_sibling_folders_are_not_searched(finished):
    out, configs, _ = finished
    fresh = recipes.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=out.parent / "scratch", verbose=False)
    assert not fresh["cached"].item()
