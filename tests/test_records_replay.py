"""The records of a batch and their replay (the ``results`` profile): a batch's training runs written as compact,
path-free records (weights only where a notebook read the model), read back by configuration without training
anything, and refused loudly when a run or a value is not among them."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import jmlkit.experiments as ex
from jmlkit.engine import TrainConfig, fit
from jmlkit.layout import DONE_FILE, MODEL_FILE, MODEL_USED_FILE
from jmlkit.profiles import RECORDS_DIR, get_profile
from jmlkit.runner.records import record_size, write_records


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A batch folder: notebook 02 trained two configurations (one of them also under a sweep's name), read one
    model; notebook 09 failed (its runs are not recorded)."""
    root = tmp_path_factory.mktemp("batch")
    tiny = TrainConfig.from_profile("smoke", train_limit=8, eval_limit=4, epochs=1)
    configs = {"ce": tiny.replace(loss="ce"), "jml": tiny.replace(labels="ls", loss="jml", epsilon=0.1)}
    nb = root / "02_label_smoothing"
    table = ex.run_configs(configs, seeds=[0], output_dir=nb, verbose=False, evaluators=ex.evaluators())
    ex.run_configs({"ce_e0": configs["ce"]}, seeds=[0], output_dir=nb, verbose=False)  # a copy, one model
    ex.first_results(table)["ce"].model  # a figure reads this model: its weights are recorded  # noqa: B018
    (nb / "run.json").write_text(json.dumps({"status": "ok"}))
    kd_nb = root / "03_distillation"  # a student of the ce run, in another notebook: its record names the teacher's
    ex.run_configs({"kd": tiny.replace(labels="kd", loss="ce", teacher=str(Path(table["run_dir"].iloc[0])))},
                   seeds=[0], output_dir=kd_nb, verbose=False)
    (kd_nb / "run.json").write_text(json.dumps({"status": "ok"}))
    failed = root / "09_failed"
    ex.run_configs({"x": configs["ce"].replace(lr=1e-3)}, seeds=[0], output_dir=failed, verbose=False)
    (failed / "run.json").write_text(json.dumps({"status": "failed"}))
    return root, configs


def test_records_are_compact_path_free_and_one_per_model(batch, tmp_path):
    root, configs = batch
    written = write_records(root, tmp_path / "records")
    assert [p.name for p in written] == ["02_label_smoothing", "03_distillation"]  # the failed one keeps none
    kd = next((tmp_path / "records" / "03_distillation" / "runs").iterdir())
    teacher = json.loads((kd / "config.json").read_text())["teacher"]
    assert teacher.startswith("02_label_smoothing/runs/ce__seed0__")  # the teacher's record, no path of this machine
    runs = sorted((tmp_path / "records" / "02_label_smoothing" / "runs").iterdir())
    assert [p.name.split("__")[0] for p in runs] == ["ce", "jml"]  # the copy under a sweep's name: one record
    ce, jml = runs
    assert (ce / MODEL_FILE).is_file() and not (jml / MODEL_FILE).exists()  # weights only where a figure read them
    for run in runs:
        assert json.loads((run / DONE_FILE).read_text())["record"] is True
        text = (run / "config.json").read_text()
        assert str(root) not in text and json.loads(text)["out"] == f"02_label_smoothing/runs/{run.name}"
    size = record_size(tmp_path / "records" / "02_label_smoothing")
    assert size["models"] == 1 and size["files"] == 2 * 6 + 1 and size["bytes"] > size["model_bytes"] > 0
    # notebook 06 reads the records: the stored evaluations serve both runs, with or without their weights
    tables = ex.evaluate_runs(ex.find_runs(tmp_path / "records", notebooks=["02"]), on_error="raise")
    assert sorted(tables["boundary"]["config"].unique()) == ["ce", "jml"] and not len(tables["skipped"])
    again = write_records(root, tmp_path / "records")  # written again: replaced whole, no leftovers
    assert again == written and sorted(p.name for p in (tmp_path / "records").iterdir()) == [p.name for p in written]


def test_replay_reads_the_records_and_trains_nothing(batch, tmp_path, monkeypatch):
    root, configs = batch
    records = tmp_path / "records"
    write_records(root, records)
    out = tmp_path / "replay" / "02_label_smoothing"
    replayed = {k: c.replace(replay=str(records)) for k, c in configs.items()}
    assert ex.config_hash(replayed["ce"]) == ex.config_hash(configs["ce"])  # replay is not part of the hash
    import jmlkit.engine.loop as loop

    monkeypatch.setattr(loop, "_fit", lambda *a, **k: pytest.fail("a replay trained"))
    table = ex.run_configs(replayed, seeds=[0], output_dir=out, verbose=False)
    assert table["cached"].all() and not out.exists()  # nothing written where the notebook writes its runs
    original = ex.run_configs(configs, seeds=[0], output_dir=root / "02_label_smoothing", verbose=False)
    assert table["mIoU_D"].tolist() == original["mIoU_D"].tolist()
    results = ex.first_results(table)
    assert all(r.replayed for r in results.values())
    assert results["ce"].model is not None  # recorded weights
    assert not (Path(results["ce"].run_dir) / MODEL_USED_FILE).exists()  # a record is never written
    with pytest.raises(FileNotFoundError, match="weights of jml.* not there"):
        results["jml"].model  # noqa: B018
    with pytest.raises(FileNotFoundError, match=r"no(ne| finished run).*seed 1|seed 1.*there is none"):
        ex.run_configs({"ce": replayed["ce"]}, seeds=[1], output_dir=out, verbose=False)
    with pytest.raises(ValueError, match="Expected `replay` to be None for a run that trains"):
        fit(replayed["ce"])
    with pytest.raises(ValueError, match="hold the evaluators \\['boundary'\\]"):
        ex.run_configs({"ce": replayed["ce"]}, seeds=[0], output_dir=out, verbose=False,
                       evaluators={"boundary": ex.evaluators(max_distance=2)["boundary"]})  # not the stored one
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ex.replay_run(replayed["ce"].replace(replay=str(tmp_path / "nowhere")))


def test_the_results_profile_is_full_with_replay():
    full, results = get_profile("full"), get_profile("results")
    assert results["train"].pop("replay") == str(RECORDS_DIR) and results["train"] == full["train"]
    assert RECORDS_DIR.parts[-3:] == ("results", "full", "records")
    assert ex.config_hash(TrainConfig.from_profile("results")) == ex.config_hash(TrainConfig.from_profile("full"))
    assert results["seeds"] == full["seeds"] and results["regimes"] == full["regimes"]
    soft = ex.soft_label_configs(get_profile("results")["soft_labels"], ["jml"])["jml_soft"]
    assert soft.replay == str(RECORDS_DIR) and os.path.isabs(soft.replay)


def test_a_run_reused_by_another_notebook_is_one_record_with_half_precision_weights(tmp_path):
    """02c reuses a run of 02 and reads its model: one record (in 02, where it was trained) with the weights, in
    float16, that load back into the float32 model; 02c gets no records of its own and replays 02's."""
    import torch

    from jmlkit.engine import load_checkpoint

    root = tmp_path / "batch"
    config = TrainConfig.from_profile("smoke", train_limit=8, eval_limit=4, epochs=1).replace(loss="ce")
    trained = ex.run_configs({"ce": config}, seeds=[0], output_dir=root / "02_label_smoothing", verbose=False)
    part = ex.run_configs({"small.ce": config}, seeds=[0], output_dir=root / "02c_smoothing_strength", verbose=False)
    assert part["cached"].item()
    ex.first_results(part)["small.ce"].model  # the copy's model is read, not the original's  # noqa: B018
    for nb in ("02_label_smoothing", "02c_smoothing_strength"):
        (root / nb / "run.json").write_text(json.dumps({"status": "ok"}))
    (tmp_path / "records" / "02c_smoothing_strength").mkdir(parents=True)  # left by an older batch: removed
    written = write_records(root, tmp_path / "records")
    assert [p.name for p in written] == ["02_label_smoothing"]
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == ["02_label_smoothing"]
    record = next((tmp_path / "records" / "02_label_smoothing" / "runs").iterdir())
    original = Path(trained["run_dir"].item()) / MODEL_FILE
    assert (record / MODEL_FILE).stat().st_size < 0.6 * original.stat().st_size
    stored = torch.load(record / MODEL_FILE, weights_only=True)["state_dict"]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    a, b = load_checkpoint(original), load_checkpoint(record / MODEL_FILE)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert y.dtype == x.dtype and torch.allclose(x, y, rtol=1e-3, atol=1e-4), name
    replayed = ex.run_configs({"small.ce": config.replace(replay=str(tmp_path / "records"))}, seeds=[0],
                              output_dir=tmp_path / "replay" / "02c_smoothing_strength", verbose=False)
    assert ex.first_results(replayed)["small.ce"].model is not None


def test_records_keep_the_run_a_name_had_last(tmp_path):
    """A notebook rerun with other settings leaves its older run of the same name and seed in the cache; its tables
    (and notebook 06, by name) use the newer one: so do the records."""
    root = tmp_path / "batch"
    tiny = TrainConfig.from_profile("smoke", train_limit=8, eval_limit=4, epochs=1).replace(loss="ce")
    nb = root / "03_distillation"
    ex.run_configs({"teacher": tiny}, seeds=[0], output_dir=nb, verbose=False)
    newer = ex.run_configs({"teacher": tiny.replace(epochs=2)}, seeds=[0], output_dir=nb, verbose=False)
    (nb / "run.json").write_text(json.dumps({"status": "ok"}))
    assert len(list((nb / "runs").iterdir())) == 2
    write_records(root, tmp_path / "records")
    kept = [p.name for p in (tmp_path / "records" / "03_distillation" / "runs").iterdir()]
    assert kept == [Path(newer["run_dir"].item()).name]
    assert ex.find_runs(tmp_path / "records")["run"].tolist() == ex.find_runs(root)["run"].tolist() == kept


def test_runs_keep_their_order_when_their_files_get_new_times(batch, tmp_path):
    """A git clone gives every file of the records a new time: readers order configurations by the time each run's
    completion marker records, so notebook 06 reads the records of a clone in the order the runs were trained."""
    root, _ = batch
    records = tmp_path / "records"
    write_records(root, records)
    found = ex.find_runs(records)
    before = found[["notebook", "config", "seed"]].values.tolist()
    for i, run in enumerate(found["path"]):  # real runs finish minutes apart; these tiny ones within one second
        done = json.loads((Path(run) / DONE_FILE).read_text())
        (Path(run) / DONE_FILE).write_text(json.dumps({**done, "finished": f"2026-01-01T00:00:{10 + i:02d}"}))
    for i, path in enumerate(sorted(records.rglob("*"), reverse=True)):  # file times the reverse of the truth
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    assert ex.find_runs(records)[["notebook", "config", "seed"]].values.tolist() == before
