"""The run cache of jmlkit.experiments (hashing, reuse, copies between notebooks), finding and loading runs, and the
recipes that train through it. Tiny runs (smoke profile, one epoch of 8 scenes), about half a minute in all."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jmlkit import experiments as ex
from jmlkit.engine import TrainConfig
from jmlkit.io import DONE_FILE, parse_run_folder_name, read_done, run_folder_hash, run_folder_name


@pytest.fixture(scope="module")
def tiny():
    """A run of about a second: 8 scenes of 16x16, the tiny UNet, one epoch."""
    return TrainConfig.from_profile("smoke", train_limit=8, eval_limit=4, batch_size=4)


def folder(out, name, seed, config) -> Path:
    """The run cache's folder of ``config`` named ``name`` with ``seed``."""
    return ex.run_dir_for(out, name, seed, config)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny):
    """Two configurations x two seeds in a notebook folder, trained once for the whole module."""
    out = tmp_path_factory.mktemp("batch") / "02_label_smoothing"
    configs = {"ce": tiny.replace(loss="ce"), "jml_ls": tiny.replace(labels="ls", loss="jml", epsilon=0.1)}
    runs = ex.run_configs(configs, seeds=[0, 1], output_dir=out, verbose=False)
    return out, configs, runs


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, match", [
    (lambda: ex.run_dir_for("out", "a__b", 0, TrainConfig()), "config name"),
    (lambda: ex.run_dir_for("out", "a/b", 0, TrainConfig()), "config name"),
    (lambda: ex.run_dir_for("out", "a", -1, TrainConfig()), "`seed`"),
    (lambda: run_folder_name("a", 0, "XYZ"), "`digest`"),
    (lambda: run_folder_name("a", 0, "abc"), "`digest`"),
    (lambda: ex.run_configs({}, seeds=[0], output_dir="x"), "`configs`"),
    (lambda: ex.run_configs({"a": TrainConfig()}, seeds=[0, 0], output_dir="x"), "without repeats"),
    (lambda: ex.run_configs({"a": TrainConfig()}, seeds=[0], output_dir=None), "`output_dir`"),
    (lambda: ex.run_configs({"a": TrainConfig()}, seeds=[0], output_dir="x", extra={"b": {}}), "`extra`"),
    (lambda: ex.epsilon_sweep({"a": TrainConfig()}, [1.5], seeds=0, output_dir="x"), "`epsilons`"),
    (lambda: ex.labeled_fraction_sweep({"a": TrainConfig()}, [0.0], seeds=0, output_dir="x"), "`fractions`"),
    (lambda: ex.sweep({"a": TrainConfig()}, "nope", [1], seeds=0, output_dir="x"), "`field`"),
    (lambda: ex.sweep({"a": TrainConfig()}, "lr", [], seeds=0, output_dir="x"), "`values`"),
    (lambda: ex.find_runs(".", max_depth=0), "`max_depth`"),
    (lambda: ex.first_configs(pd.DataFrame({"config": ["a"]}), 0), "`n`"),
])
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_type_error(tmp_path):
    with pytest.raises(TypeError, match="TrainConfig"):
        ex.run_configs({"a": {"loss": "ce"}}, seeds=[0], output_dir=tmp_path)
    with pytest.raises(TypeError, match="`seeds`"):
        ex.run_configs({"a": TrainConfig()}, seeds="0", output_dir=tmp_path)
    with pytest.raises(TypeError, match="TrainConfig"):
        ex.config_hash({"seed": 0})
    with pytest.raises(TypeError, match="`config`"):
        ex.run_dir_for(tmp_path, "a", 0, {"loss": "ce"})
    with pytest.raises(TypeError, match="`latest`"):
        ex.find_runs(tmp_path, latest="yes")
    with pytest.raises(TypeError, match="find_runs"):
        ex.load_metrics(pd.DataFrame({"config": ["a"]}))
    with pytest.raises(TypeError, match="`config` column"):
        ex.first_configs([1], 1)


# --------------------------------------------------------------------------- hashing
@given(st.text(alphabet="abcdefghij_-.0123456789", min_size=1, max_size=20), st.integers(0, 10**6),
       st.text(alphabet="0123456789abcdef", min_size=8, max_size=16))
def test_run_folder_names_with_hash_round_trip(name, seed, digest):
    folder_name = run_folder_name(name, seed, digest)
    assert folder_name == f"{run_folder_name(name, seed)}__{digest[:8]}"
    assert parse_run_folder_name(folder_name) == parse_run_folder_name(run_folder_name(name, seed)) == (name, seed)
    assert run_folder_hash(folder_name) == digest[:8]


def test_config_hash_ignores_output_and_runtime_options():
    cfg = TrainConfig(seed=0)
    assert ex.config_hash(cfg) == ex.config_hash(cfg.replace(out="/elsewhere", num_threads=1, device="cpu"))
    assert ex.config_hash(cfg) != ex.config_hash(cfg.replace(epsilon=0.2))
    assert len(ex.config_hash(cfg)) == 16 and set(ex.HASH_EXCLUDE) >= {"out", "overwrite", "device", "num_threads"}
    assert ex.config_hash(cfg) == ex.config_hash(cfg.replace(overwrite=True))
    from jmlkit import engine

    assert ex.config_hash is engine.config_hash and ex.HASH_EXCLUDE is engine.HASH_EXCLUDE  # moved, re-exported


def test_teacher_hash_follows_the_teacher_run(finished, tiny):
    out, configs, _ = finished
    teacher_dir = folder(out, "ce", 0, configs["ce"])
    copy_dir = out.parent / "03_distillation" / "runs" / "teacher_copy__seed0"
    copy_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(teacher_dir, copy_dir, dirs_exist_ok=True)
    a = ex.distillation_configs(tiny, teacher_dir)["kd_jml"]
    b = ex.distillation_configs(tiny, copy_dir)["kd_jml"]
    assert ex.config_hash(a) == ex.config_hash(b)
    c = ex.distillation_configs(tiny, folder(out, "jml_ls", 0, configs["jml_ls"]))["kd_jml"]
    assert ex.config_hash(a) != ex.config_hash(c)


# --------------------------------------------------------------------------- running and caching
def test_run_configs_writes_the_run_layout(finished):
    out, configs, runs = finished
    assert list(runs["config"]) == ["ce", "ce", "jml_ls", "jml_ls"]
    assert list(runs["seed"]) == [0, 1, 0, 1]
    assert not runs["cached"].any()
    for name in configs:
        for seed in (0, 1):
            digest = ex.config_hash(configs[name].replace(seed=seed))
            run_dir = out / "runs" / f"{name}__seed{seed}__{digest[:8]}"
            assert run_dir == folder(out, name, seed, configs[name])
            assert str(run_dir.resolve()) in set(runs["run_dir"])
            for file in ("config.json", "metrics.json", "model.pt", DONE_FILE, "history.csv"):
                assert (run_dir / file).is_file(), run_dir / file
            assert json.loads((run_dir / "config.json").read_text())["seed"] == seed
            done = read_done(run_dir)
            assert done["hash"] == digest and done["seed"] == seed
    assert {"mIoU_D", "ECE_D", "SCE_D", "run_dir", "epoch_time_s"} <= set(runs.columns)


def test_rerun_reuses_finished_runs(finished):
    out, configs, runs = finished
    stamp = (folder(out, "ce", 0, configs["ce"]) / "model.pt").stat().st_mtime_ns
    again = ex.run_configs(configs, seeds=[0, 1], output_dir=out, verbose=False)
    assert again["cached"].all() and again["run_dir"].tolist() == runs["run_dir"].tolist()
    assert (folder(out, "ce", 0, configs["ce"]) / "model.pt").stat().st_mtime_ns == stamp
    pd.testing.assert_series_equal(again["mIoU_D"], runs["mIoU_D"])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_runs_of_one_name_with_other_configurations_coexist(finished, tmp_path):
    """A changed configuration (another kernel, or the notebook rerun with other parameters) trains into its own
    folder: the first table's run_dir keeps its own run, and rerunning the first configuration reuses it."""
    _, configs, _ = finished
    other = tmp_path / "changed"
    first = ex.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=other, verbose=False, reuse=False)
    before = _snapshot(Path(first["run_dir"].item()))
    changed = ex.run_configs({"ce": configs["ce"].replace(lr=1e-3)}, seeds=[0], output_dir=other, verbose=False)
    assert not first["cached"].item() and not changed["cached"].item()
    a, b = Path(first["run_dir"].item()), Path(changed["run_dir"].item())
    assert a != b and parse_run_folder_name(a.name) == parse_run_folder_name(b.name) == ("ce", 0)
    assert _snapshot(a) == before  # never replaced by the other configuration's run
    for run_dir, config in ((a, configs["ce"]), (b, configs["ce"].replace(lr=1e-3))):
        assert json.loads((run_dir / "config.json").read_text())["lr"] == config.lr
        assert read_done(run_dir)["hash"] == ex.config_hash(config) and run_folder_hash(run_dir.name) == ex.config_hash(config)[:8]
        assert ex.run_metrics(run_dir)["mIoU_D"] == (first if run_dir == a else changed)["mIoU_D"].item()
    again = ex.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=other, verbose=False)
    assert again["cached"].item() and again["run_dir"].item() == str(a)
    # readers: every folder, or the one finished last per name and seed
    assert sorted(ex.load_runs(other)["run_dir"]) == sorted([str(a), str(b)])
    assert ex.find_runs(other, latest=False)["path"].map(lambda p: str(Path(p).resolve())).tolist() == [str(a), str(b)]
    assert ex.find_runs(other)["path"].map(lambda p: str(Path(p).resolve())).tolist() == [str(b)]


def test_run_config_never_replaces_a_run_of_another_configuration(finished, tmp_path):
    _, configs, _ = finished
    run_dir = tmp_path / "runs" / "ce__seed0"
    ex.run_config(configs["ce"], run_dir, reuse=False)
    before = _snapshot(tmp_path)
    for force in (False, True):
        with pytest.raises(ValueError, match=r"`run_dir`.*another configuration"):
            ex.run_config(configs["ce"].replace(lr=1e-3), run_dir, force=force, reuse=False)
        assert _snapshot(tmp_path) == before


def test_a_folder_without_marker_is_refused_and_left_as_it_is(finished, tmp_path):
    _, configs, _ = finished
    runs = ex.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=tmp_path, verbose=False, reuse=False)
    (Path(runs["run_dir"].item()) / DONE_FILE).unlink()  # not a complete run: never deleted by the cache
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match="ce__seed0__"):
        ex.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=tmp_path, verbose=False, reuse=False)
    assert _snapshot(tmp_path) == before


def test_an_interrupted_retrain_keeps_the_finished_run(finished, tmp_path, monkeypatch):
    import jmlkit.engine.loop as loop

    _, configs, _ = finished
    ex.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=tmp_path, verbose=False, reuse=False)
    run_dir = folder(tmp_path, "ce", 0, configs["ce"])
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_optimizer_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ex.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=tmp_path, verbose=False, force=True)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]  # no partial folder left


def test_another_notebook_reuses_a_sibling_run(finished):
    out, configs, runs = finished
    sibling = out.parent / "03_distillation"
    reused = ex.run_configs({"hard_ce": configs["ce"]}, seeds=[1], output_dir=sibling, verbose=False)
    assert reused["cached"].item()
    copy = folder(sibling, "hard_ce", 1, configs["ce"])
    assert reused["run_dir"].item() == str(copy.resolve()) and (copy / "model.pt").is_file()
    assert json.loads((copy / "config.json").read_text())["out"] == str(copy.resolve())
    assert read_done(copy)["copied_from"] == str(folder(out, "ce", 1, configs["ce"]).resolve())
    assert reused["mIoU_D"].item() == runs.query("config == 'ce' and seed == 1")["mIoU_D"].item()
    assert not list(copy.parent.glob(".*"))  # nothing left of the copy's temporary folder


def test_unrelated_sibling_folders_are_not_searched(finished):
    out, configs, _ = finished
    fresh = ex.run_configs({"ce": configs["ce"]}, seeds=[0], output_dir=out.parent / "scratch", verbose=False)
    assert not fresh["cached"].item()


# --------------------------------------------------------------------------- recipes that train
def test_epsilon_sweep_reuses_same_configuration(finished):
    out, configs, _ = finished
    swept = ex.epsilon_sweep({"jml": configs["jml_ls"]}, [0.1], seeds=[0], output_dir=out, verbose=False)
    # labels="ls", epsilon=0.1 is exactly the jml_ls run: found by hash and copied, not retrained
    assert swept[["config", "method", "epsilon", "cached"]].values.tolist() == [["jml_e0.1", "jml", 0.1, True]]


def test_train_teacher_and_labeled_fraction_sweep(finished, tiny):
    out, configs, _ = finished
    run_dir, metrics = ex.train_teacher(configs["ce"], output_dir=out, seed=0, verbose=False)
    assert run_dir == folder(out, "teacher", 0, configs["ce"]).resolve() and metrics == ex.run_metrics(run_dir)
    # several seeds: the selection table names the runs without the configuration hash
    run_dir, _ = ex.train_teacher(configs["ce"], output_dir=out, seeds=[0, 1], verbose=False)
    selection = pd.read_csv(out / "teacher_selection.csv")
    assert selection["run"].tolist() == ["teacher__seed0", "teacher__seed1"]
    assert run_dir == folder(out, "teacher", int(selection.loc[selection["kept"], "seed"].item()), configs["ce"]).resolve()
    # table=True: one row per teacher seed, with its test metrics, validation score and the kept flag
    kept, kept_metrics, table = ex.train_teacher(configs["ce"], output_dir=out, seeds=[0, 1], verbose=False, table=True)
    assert kept == run_dir and kept_metrics == ex.run_metrics(run_dir)
    assert table["config"].tolist() == ["teacher", "teacher"] and table["seed"].tolist() == [0, 1]
    assert table["kept"].tolist() == selection["kept"].tolist()
    assert table["mIoU_D_val"].tolist() == pytest.approx(selection["mIoU_D_val"].tolist())
    assert table.loc[table["kept"], "mIoU_D"].item() == pytest.approx(kept_metrics["mIoU_D"])
    swept = ex.labeled_fraction_sweep({"lo": tiny.replace(loss="ce")}, [0.5], seeds=0, output_dir=out, verbose=False)
    assert swept[["config", "method", "fraction"]].values.tolist() == [["lo_f0.5", "lo", 0.5]]
    assert json.loads((Path(swept["run_dir"].item()) / "config.json").read_text())["labeled_fraction"] == 0.5


# --------------------------------------------------------------------------- loading runs back
def test_load_runs_and_run_metrics(finished):
    out, _, runs = finished
    table = ex.load_runs(out)
    assert {"ce", "jml_ls"} <= set(table["config"]) and table["cached"].all()
    assert set(table.query("config == 'jml_ls'")["labels"]) == {"ls"}
    assert ex.load_runs(out / "missing").empty
    metrics = ex.run_metrics(runs["run_dir"].iloc[0])
    assert metrics["mIoU_D"] == runs["mIoU_D"].iloc[0] and "reliability" in metrics
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        ex.run_metrics(out)


def test_readers_skip_partial_and_incomplete_folders(finished, tmp_path):
    out, configs, _ = finished
    root = tmp_path / "02_label_smoothing"
    runs = root / "runs"
    # folder names without the hash (older versions) are read as well
    shutil.copytree(folder(out, "ce", 0, configs["ce"]), runs / "ce__seed0")
    shutil.copytree(folder(out, "ce", 1, configs["ce"]), runs / ".ce__seed1.partial-1-00000000-00000000")  # running
    shutil.copytree(folder(out, "jml_ls", 0, configs["jml_ls"]), runs / "jml_ls__seed0")
    (runs / "jml_ls__seed0" / DONE_FILE).unlink()  # interrupted before its marker (or written before markers)
    assert ex.load_runs(root)["run_dir"].tolist() == [str((runs / "ce__seed0").resolve())]
    assert ex.find_runs(root)["run"].tolist() == ["ce__seed0"]
    for read in (ex.run_metrics, lambda p: ex.load_metrics(pd.DataFrame({"path": [str(p)]}))):
        with pytest.raises(ValueError, match="not a complete run folder: no recipe.json"):
            read(runs / "jml_ls__seed0")


@pytest.fixture(scope="module")
def batch(finished, tiny) -> Path:
    """A batch folder like `jmlkit run` leaves: a finished notebook, one still running, one without run.json."""
    out, configs, _ = finished
    root = out.parent
    ex.run_configs({"x": tiny.replace(loss="ce", lr=1e-3)}, seeds=[0], output_dir=root / "04_semi_supervised", verbose=False)
    for nb, status in (("02_label_smoothing", "ok"), ("04_semi_supervised", "running")):
        (root / nb / "run.json").write_text(json.dumps({"status": status}))
    (root / "02_label_smoothing" / "figures").mkdir(exist_ok=True)  # not a run folder
    (root / "02_label_smoothing" / "runs" / "broken__seed0").mkdir(exist_ok=True)  # no metrics.json: unfinished
    nested = root / "04_semi_supervised" / "exercise" / "runs"  # an exercise's runs: too deep, not compared
    shutil.copytree(folder(out, "ce", 0, configs["ce"]), nested / "ce__seed0", dirs_exist_ok=True)
    return root


def test_find_runs_layout_status_and_filters(batch):
    runs = ex.find_runs(batch, notebooks=["02"])
    main = runs[runs["config"].isin(["ce", "jml_ls"])]
    assert [tuple(r) for r in main[["notebook", "config", "seed"]].itertuples(index=False)] == [
        ("02_label_smoothing", "ce", 0), ("02_label_smoothing", "ce", 1),
        ("02_label_smoothing", "jml_ls", 0), ("02_label_smoothing", "jml_ls", 1)]
    assert runs["has_model"].all() and set(runs["dataset"]) == {"digits"}
    # the notebook whose batch run is still going is left out, unless asked for
    assert "04_semi_supervised" not in set(ex.find_runs(batch)["notebook"])
    unfinished = ex.find_runs(batch, only_finished=False)
    assert unfinished.loc[unfinished["notebook"] == "04_semi_supervised", "config"].tolist() == ["x"]
    assert len(ex.find_runs(batch, exclude=batch / "02_label_smoothing", notebooks=["02"])) == 0
    # one notebook's output_dir, or its runs folder, name the notebook after that folder
    assert set(ex.find_runs(batch / "02_label_smoothing")["notebook"]) == {"02_label_smoothing"}
    assert set(ex.find_runs(batch / "02_label_smoothing" / "runs")["notebook"]) == {"02_label_smoothing"}
    empty = ex.find_runs(batch / "missing")
    assert empty.empty and "path" in empty.columns
    assert ex.notebook_status(batch) == {"02_label_smoothing": "ok", "04_semi_supervised": "running"}
    assert ex.notebook_status(batch / "missing") == {}


def test_resolve_results_dir(batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ex.resolve_results_dir("given", batch / "06_calibration") == Path("given")
    assert ex.resolve_results_dir(None, batch / "06_calibration") == batch
    assert ex.resolve_results_dir(None, tmp_path / "alone" / "06_calibration") is None


def test_load_metrics_and_first_configs(batch, finished):
    _, _, own = finished
    runs = ex.find_runs(batch, notebooks=["02"])
    metrics = ex.load_metrics(runs, extra=["IoU_per_class"])
    assert {"mIoU_D", "ECE_D", "train_time_s"} <= set(metrics.columns)
    assert "reliability" not in metrics.columns and isinstance(metrics["IoU_per_class"][0], list)
    # a run_configs table (run_dir column, no notebook column) works wherever find_runs' table does
    assert ex.load_metrics(own[["config", "seed", "run_dir"]])["ECE_D"].tolist() == own["ECE_D"].tolist()
    assert ex.first_configs(runs, 1)["config"].unique().tolist() == ["ce"]
    assert ex.first_configs(own, 1)["config"].unique().tolist() == ["ce"]


def test_calibration_runs_reads_the_batch_or_trains_the_fallback(batch, tmp_path, monkeypatch):
    found = ex.calibration_runs(None, batch / "06_calibration", "smoke", notebooks=["02", "04"])
    assert not found.trained_here and found.skipped == {"04_semi_supervised": "running"}
    assert set(found.runs["notebook"]) == {"02_label_smoothing"}
    assert found.source == f"the finished runs in `{batch.resolve()}`"
    monkeypatch.chdir(tmp_path)  # no ../runs/smoke here either
    alone = tmp_path / "alone" / "06_calibration"
    trained = ex.calibration_runs(None, alone, "smoke")
    assert trained.trained_here and trained.source.startswith("runs trained here (profile `smoke`)")
    assert sorted(trained.runs["config"]) == sorted(ex.CALIBRATION_FALLBACK)
    assert set(trained.runs["notebook"]) == {"06_calibration (trained here)"}


# --------------------------------------------------------------------------- regimes: one call for every regime
def _spy(calls):
    def run(named, *, seeds=(0,), output_dir, **kwargs):
        calls.append({name: ex.config_hash(config) for name, config in named.items()})
        return pd.DataFrame({"config": list(named), "method": list(named)})
    return run


def test_run_per_regime_submits_every_regime_in_one_call_and_splits_the_names(tiny):
    calls = []
    # "small" prefixes "small.x": each row goes to the longest regime that prefixes its name
    per_regime = {"small": {"ce": tiny.replace(loss="ce"), "jml": tiny}, "small.x": {"ce": tiny.replace(epochs=2)}}
    table = ex.run_per_regime(per_regime, seeds=3, output_dir="unused", run=_spy(calls))
    assert [list(c) for c in calls] == [["small.ce", "small.jml", "small.x.ce"]]
    assert table[["regime", "config", "method"]].values.tolist() == [
        ["small", "ce", "ce"], ["small", "jml", "jml"], ["small.x", "ce", "ce"]]


def test_run_regimes_is_run_per_regime_of_the_configs_in_each_regime(tiny):
    calls = []
    regimes = {"small": {}, "large": {"dataset_kwargs": {"size": 24}, "train_limit": 4}}
    configs = {"ce": tiny.replace(loss="ce"), "jml": tiny.replace(loss="jml")}
    a = ex.run_regimes(configs, regimes, output_dir="unused", run=_spy(calls))
    per_regime = {r: {n: ex.in_regime(c, o) for n, c in configs.items()} for r, o in regimes.items()}
    b = ex.run_per_regime(per_regime, output_dir="unused", run=_spy(calls))
    assert calls[0] == calls[1] and len(set(calls[0].values())) == 4
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("per_regime, match", [
    ({}, "`per_regime`"),
    ({"a__b": {"ce": None}}, "config name"),
    ({"a": {"b.ce": None}, "a.b": {"ce": None}}, "'a.b.ce'"),  # two runs of one name
])
def test_run_per_regime_bad_input(tiny, per_regime, match):
    per_regime = {r: {n: tiny for n in names} for r, names in per_regime.items()}
    with pytest.raises(ValueError, match=match):
        ex.run_per_regime(per_regime, output_dir="unused", run=_spy([]))


def test_find_runs_counts_a_run_copied_under_other_names_once(finished, tmp_path):
    """A notebook that asks again for a configuration it trained gets the run copied under the new name: one model,
    several folders. Readers that compare runs (notebook 06) list it once, under the name it was trained with."""
    _, configs, _ = finished
    out = tmp_path / "02_label_smoothing"
    for name in ("small.ce", "small.ce_e0.5", "ce"):  # as the main comparison, then a sweep and an ablation ask
        table = ex.run_configs({name: configs["ce"]}, seeds=[0], output_dir=out, verbose=False)
        assert table["cached"].item() == (name != "small.ce")
    folders = sorted(p.name for p in (out / "runs").iterdir())
    assert len(folders) == 3 and len({run_folder_hash(f) for f in folders}) == 1
    runs = ex.find_runs(out)
    assert runs[["config", "seed", "aliases"]].values.tolist() == [["small.ce", 0, "small.ce_e0.5, ce"]]
    everything = ex.find_runs(out, distinct=False)
    assert sorted(everything["config"]) == ["ce", "small.ce", "small.ce_e0.5"] and set(everything["aliases"]) == {""}
    other = ex.run_configs({"ce_lr": configs["ce"].replace(lr=1e-3)}, seeds=[0], output_dir=out, verbose=False)
    assert not other["cached"].item() and sorted(ex.find_runs(out)["config"]) == ["ce_lr", "small.ce"]
    # another notebook of the batch (02c reuses 02's runs) gets a copy: still one model, named where it was trained
    part = ex.run_configs({"small.ce": configs["ce"]}, seeds=[0], output_dir=tmp_path / "02c_smoothing_strength",
                          verbose=False)
    assert part["cached"].item()
    batch = ex.find_runs(tmp_path)
    assert batch[["notebook", "config", "aliases"]].values.tolist() == [
        ["02_label_smoothing", "small.ce", "small.ce_e0.5, ce, 02c small.ce"], ["02_label_smoothing", "ce_lr", ""]]
    assert ex.find_runs(tmp_path, notebooks=["02c"])[["notebook", "config"]].values.tolist() == [
        ["02c_smoothing_strength", "small.ce"]]  # the copy stands for the run when its notebook alone is asked for
    assert len(ex.find_runs(tmp_path, distinct=False)) == 5
    with pytest.raises(TypeError, match="`distinct`"):
        ex.find_runs(out, distinct="yes")
