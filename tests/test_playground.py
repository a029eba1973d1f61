"""The live playground (notebook 07): choices as configurations, fit's on_epoch and stop, runs in a thread through
the notebooks' cache, the figures and the widget, and the notebook in the smoke profile.

Runs use the smoke profile (a tiny UNet, 1-2 epochs on a few scenes): each trains in a fraction of a second.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from jmlkit.engine import TrainConfig, TrainingStopped, config_hash, fit
from jmlkit.experiments import recipes
from jmlkit.experiments.playground import LABELS, LOSSES, Choice, Session, Watch, command_line, playground_regimes
from jmlkit.layout import curves_file, is_complete
from jmlkit.losses import get_loss

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"


# ------------------------------------------------------------------------------------------- choices
def test_the_first_choice_is_the_papers_recipe_and_shares_notebook_02s_cache():
    """The controls start at the paper's label smoothing, spelled as notebook 02 spells it: the same hash."""
    base = TrainConfig.from_profile("smoke")
    assert config_hash(Choice().config("smoke")) == config_hash(base.replace(**recipes.PAPER_RECIPE))
    hard_ce = Choice(loss="ce", labels="hard").config("smoke")
    assert config_hash(hard_ce) == config_hash(base.replace(labels="hard", loss="ce"))


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("w", [0.0, 0.25, 0.6, 1.0])
def test_the_ce_weight_mixes_ce_and_the_region_loss(loss, w):
    name, kwargs = Choice(loss=loss, ce_weight=w, labels="hard").loss_spec()
    built = get_loss(name, **kwargs)  # every spec builds
    if loss == "ce" or w == 1.0:
        assert (name, kwargs) == ("ce", {})
    elif w == 0.0:
        assert (name, kwargs) == (loss, {})
    else:
        assert name == f"ce+{loss}"
        assert (built.ce_weight, built.region_weight) == pytest.approx((w, 1 - w))


def test_each_label_kind_sets_only_its_own_options():
    base = TrainConfig.from_profile("smoke")
    hard = Choice(labels="hard", epsilon=0.9, window=7).config("smoke")
    assert (hard.labels, hard.epsilon, hard.boundary_kernel) == ("hard", base.epsilon, base.boundary_kernel)
    bls = Choice(labels="boundary", epsilon=0.3, window=5).config("smoke")
    assert (bls.labels, bls.smoothing, bls.epsilon, bls.boundary_kernel) == ("ls", "boundary", 0.3, 5)
    uls = Choice(labels="uniform", epsilon=0.2, window=5).config("smoke")
    assert (uls.smoothing, uls.epsilon, uls.boundary_kernel) == ("uniform", 0.2, base.boundary_kernel)
    kd = Choice(loss="jml", ce_weight=0.25, labels="kd", teacher="t", temperature=2.0).config("smoke")
    assert (kd.labels, kd.teacher, kd.kd_temperature, kd.kd_form) == ("kd", "t", 2.0, "terms")
    assert Choice(loss="dml", labels="kd", teacher="t").config("smoke").kd_form == "mixed"  # ours: the paper's terms are CE/JML
    assert Choice(labels="soft").config("smoke").labels == "soft"
    assert Choice(epochs=3, lr=1e-3, seed=4).config("smoke").replace(seed=0) == \
        Choice().config("smoke").replace(epochs=3, lr=1e-3)


def test_regimes_are_the_profiles_then_the_full_profiles_it_lacks():
    quick = playground_regimes("quick")
    assert list(quick) == ["small", "large", "overconfident"] and quick["small"] == {}
    large = Choice(regime="large").config("quick")
    assert large.dataset_kwargs["size"] == 32 and large.epochs == 20  # the full profile's large regime
    assert Choice(regime="large", epochs=4).config("quick").epochs == 4


@pytest.mark.parametrize("options, match", [
    (dict(loss="focal"), "`loss`"),
    (dict(loss="lovasz", labels="boundary"), "`labels` to be 'hard' with loss='lovasz'"),
    (dict(labels="kd"), "`teacher`"),
    (dict(labels="smooth"), "`labels`"),
    (dict(ce_weight=1.5), "`ce_weight`"),
    (dict(window=4), "`window` to be an odd int"),
    (dict(epochs=0), "`epochs`"),
    (dict(temperature=0.0), "`temperature`"),
])
def test_bad_choices_are_value_errors_naming_the_option(options, match):
    with pytest.raises(ValueError, match=match):
        Choice(**options)


def test_an_unknown_regime_is_named():
    with pytest.raises(ValueError, match="`regime`"):
        Choice(regime="huge").config("smoke")


@pytest.mark.parametrize("choice", [
    Choice(), Choice(loss="sjl", ce_weight=0.4, labels="uniform", epsilon=0.2, epochs=3, lr=1e-3, seed=2),
    Choice(loss="lovasz", labels="hard", regime="large"), Choice(loss="jml", ce_weight=0.0, labels="soft"),
    Choice(labels="kd", teacher="runs/a teacher", temperature=2.5), Choice(regime="overconfident", epochs=2),
], ids=lambda c: c.name())
def test_the_command_line_trains_the_same_configuration(choice):
    """The line, parsed as ``python -m jmlkit train`` parses it, gives a configuration with the same hash."""
    from jmlkit.__main__ import _train_config, _train_parser

    config = choice.config("quick")
    line = command_line(config, "quick", out="runs/x")
    argv = shlex.split(line)
    assert argv[:4] == ["python", "-m", "jmlkit", "train"] and argv[-2:] == ["--out", "runs/x"]
    args = vars(_train_parser().parse_args(argv[4:]))
    for key in ("progress", "quiet", "debug"):  # train_main's own options
        args.pop(key, None)
    parsed = _train_config(args)
    assert config_hash(parsed) == config_hash(config)
    assert parsed.out == "runs/x"


# ------------------------------------------------------------------------------------ fit: on_epoch, stop
def _smoke(**kw):
    return TrainConfig.from_profile("smoke", labels="hard", loss="ce", **kw)


def test_a_watched_run_trains_exactly_as_an_unwatched_one():
    cfg = _smoke(epochs=2)
    watch = Watch(cfg, n=8, show=2)
    seen = []
    watched = fit(cfg, progress=False, on_epoch=lambda row, model: seen.append((row["epoch"], watch(model, row["epoch"]))))
    plain = fit(cfg, progress=False)
    assert [e for e, _ in seen] == [1, 2]
    assert watched.metrics["mIoU_D"] == plain.metrics["mIoU_D"] and watched.metrics["NLL"] == plain.metrics["NLL"]
    for a, b in zip(watched.model.state_dict().values(), plain.model.state_dict().values()):
        assert torch.equal(a, b)
    snap = seen[-1][1]
    assert snap.probs.shape[:2] == (2, watch.num_classes)
    assert torch.allclose(snap.probs.sum(1), torch.ones(1), atol=1e-5)
    assert snap.iou.shape == (watch.num_classes,) and 0 <= snap.metrics["mIoU_D"] <= 1


def test_stop_before_the_first_step_writes_nothing(tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingStopped) as info:
        fit(_smoke(out=str(tmp_path / "run")), progress=False, stop=stop)
    assert info.value.step == 0 and info.value.history.empty
    assert not (tmp_path / "run").exists() and not list(tmp_path.iterdir())


def test_stop_after_an_epoch_keeps_that_epochs_history(tmp_path):
    stop = threading.Event()
    with pytest.raises(TrainingStopped) as info:
        fit(_smoke(epochs=3, out=str(tmp_path / "run")), progress=False, stop=stop,
            on_epoch=lambda row, model: stop.set())
    assert info.value.history["epoch"].tolist() == [1] and info.value.step > 0
    assert not list(tmp_path.iterdir())
    calls = []
    with pytest.raises(TrainingStopped):
        fit(_smoke(epochs=3), progress=False, stop=lambda: len(calls) > 0, on_epoch=lambda row, model: calls.append(1))
    assert calls == [1]


@pytest.mark.parametrize("bad, match", [(dict(stop=3), "`stop`"), (dict(on_epoch="draw"), "`on_epoch`")])
def test_bad_stop_and_on_epoch_are_type_errors(bad, match, tmp_path):
    with pytest.raises(TypeError, match=match):
        fit(_smoke(out=str(tmp_path / "r")), progress=False, **bad)
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------------------------- runs in a thread
@pytest.fixture
def session(tmp_path):
    return Session("smoke", tmp_path / "07_playground", watch_scenes=8, show=2)


def test_a_run_trains_in_the_background_then_comes_back_from_the_cache(session):
    updates = []
    run = session.start(Choice(loss="ce", labels="hard", epochs=2), on_update=lambda r: updates.append(r.status))
    assert run.wait(120).status == "finished", run.error
    assert [row["epoch"] for row in run.history] == [1, 2] and updates[-1] == "finished"
    assert {"train_loss", "val_mIoU_D", "val_ECE_D"} <= set(run.history[0])
    assert is_complete(run.run_dir) and curves_file(session.output_dir, run.run_dir).is_file()
    assert run.first_epoch_s is not None and run.first_epoch_s <= run.wall_s

    again = session.start(Choice(loss="ce", labels="hard", epochs=2)).wait(120)
    assert again.status == "cached" and again.run_dir == run.run_dir
    assert again.curves().equals(run.curves())  # its curves at once
    assert again.metrics["mIoU_D"] == run.metrics["mIoU_D"]
    assert torch.allclose(again.snapshot.probs, run.snapshot.probs, atol=1e-6)
    table = session.comparison()
    assert table["status"].tolist() == ["finished", "cached"] and table["epochs"].tolist() == [2, 2]
    assert table["mIoU_D"].iloc[0] == table["mIoU_D"].iloc[1]


def test_a_stopped_run_keeps_its_epochs_and_leaves_nothing_in_the_cache(session):
    stop_at_first = []

    def stop_after_first_epoch(run):
        if run.history and not stop_at_first:
            stop_at_first.append(1)
            run.stop(wait=False)

    run = session.start(Choice(loss="jml", labels="boundary", epochs=30), on_update=stop_after_first_epoch)
    assert run.wait(120).status == "stopped"
    assert len(run.history) == 1 and not run.run_dir.exists()
    assert not curves_file(session.output_dir, run.run_dir).exists()
    assert session.comparison()["status"].tolist() == ["stopped"]


def test_one_run_trains_at_a_time(session):
    gate = threading.Event()
    first = session.start(Choice(loss="ce", labels="hard", epochs=3), on_update=lambda r: gate.wait(30))
    try:
        with pytest.raises(RuntimeError, match="stop it first"):
            session.start(Choice(loss="jml", labels="hard"))
    finally:
        first.stop(wait=False)
        gate.set()
        first.wait(60)
    assert first.status == "stopped"


def test_a_failed_run_is_reported_not_raised(session, tmp_path):
    run = session.start(Choice(labels="kd", teacher=str(tmp_path / "no such run"))).wait(60)
    assert run.status == "failed" and "no such run" in run.error
    assert session.comparison()["status"].tolist() == ["failed"]


def test_teachers_are_the_finished_runs_with_a_model_next_to_the_playground(session, tmp_path):
    other = tmp_path / "03_distillation"
    fit(_smoke(out=str(other / "runs" / "teacher__seed0")), progress=False)
    assert session.teachers() == {"03_distillation teacher (seed 0)": str(other / "runs" / "teacher__seed0")}
    run = session.start(Choice(labels="kd", teacher=str(other / "runs" / "teacher__seed0"), loss="ce")).wait(120)
    assert run.status == "finished", run.error


def test_exports_and_headline(session):
    session.start(Choice(loss="ce", labels="hard"), background=False)
    path = session.export_csv()
    table = pd.read_csv(path)
    assert table["status"].tolist() == ["finished"] and table["command"].str.startswith("python -m jmlkit train").all()
    curves = pd.read_csv(path.with_name("comparison_curves.csv"))
    assert set(curves["run"]) == {1} and "val_mIoU_D" in curves
    assert set(session.headline()) == {"small.ce.hard.seed0.mIoU_D", "small.ce.hard.seed0.ECE_D"}


# ------------------------------------------------------------------------------------ figures and widget
def test_live_plot_and_comparison_figure_draw_the_runs(session, tmp_path):
    from jmlkit import plot

    pg = plot.Playground("smoke", tmp_path / "07_playground", watch_scenes=8, show=2)
    pg.session = session
    with pytest.raises(ValueError, match="train"):
        pg.figure()
    first = pg.train(loss="ce", labels="hard", epochs=2)
    second = pg.train(loss="jml", labels="soft", epochs=1)
    fig = pg.figure(first)
    curve_axes = fig.axes[:3]
    assert [len(ax.lines[0].get_xdata()) for ax in curve_axes] == [2, 2, 2]
    assert "finished" in fig._suptitle.get_text() and first.label in fig._suptitle.get_text()
    compare = pg.comparison_figure()
    assert [len(ax.lines) for ax in compare.axes[:3]] == [2, 2, 2]
    assert [t.get_text() for t in compare.legends[0].get_texts()] == [f"1: {first.label}", f"2: {second.label}"]
    paths = pg.export()
    assert all(p.is_file() for p in paths) and {p.suffix for p in paths} == {".csv", ".png", ".svg"}
    assert not plot.layout_problems(fig) and not plot.layout_problems(compare)
    one_epoch = pg.figure(second)  # one point: one integer tick, not ten crowded fractions
    shown = [[t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]] for ax in one_epoch.axes[:3]]
    assert shown == [[1.0]] * 3
    assert not plot.layout_problems(one_epoch)


def test_the_widget_is_a_note_in_batch_runs(tmp_path, monkeypatch):
    from jmlkit import plot

    monkeypatch.setenv("JMLKIT_HEADLESS", "1")
    note = plot.Playground("smoke", tmp_path / "pg").widget()
    assert "Batch run" in note.data


def test_the_widget_trains_stops_and_compares(tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    from jmlkit import plot

    monkeypatch.delenv("JMLKIT_HEADLESS", raising=False)
    pg = plot.Playground("smoke", tmp_path / "07_playground", watch_scenes=8, show=2)
    box = pg.widget()
    ui = pg._ui
    assert box is not None and ui["stop"].disabled and not ui["train"].disabled
    assert ui["command"].value.startswith("python -m jmlkit train --profile smoke --labels ls")
    ui["loss"].value = "lovasz"
    assert ui["labels"].value == "hard" and ui["epsilon"].disabled and ui["teacher"].disabled
    ui["loss"].value, ui["epochs"].value = "ce", 2
    assert ui["ce_weight"].disabled
    ui["train"].click()
    run = pg.session.runs[-1].wait(120)
    assert run.status == "finished" and ui["live"].value[:4] == b"\x89PNG"
    assert "finished" in ui["table"].value and not ui["train"].disabled and ui["stop"].disabled
    ui["epochs"].value = 40
    ui["train"].click()
    while not pg.session.runs[-1].history:
        pg.session.runs[-1].wait(0.05)
    ui["stop"].click()
    assert pg.session.runs[-1].wait(30).status == "stopped"
    assert "stopped" in ui["table"].value
    ui["labels"].value = "kd"
    assert ui["teacher"].options[0][1] == str(run.run_dir)  # the finished run can teach
    ui["teacher"].value = ui["teacher"].options[0][1]
    assert "--labels kd" in ui["command"].value


def test_the_results_profile_replays_the_records_and_trains_nothing(tmp_path):
    from jmlkit.experiments.playground import notebook_choices

    session = Session("results", tmp_path / "07_playground", watch_scenes=8, show=2)
    first, second = notebook_choices("results")
    for choice in (first, second):
        run = session.start(choice).wait(120)
        assert run.status == "replayed", run.error
        assert run.snapshot is not None and len(run.history) == run.config.epochs  # the records keep these models
    assert not (tmp_path / "07_playground" / "runs").exists()
    missing = session.start(Choice(loss="dml", ce_weight=0.0, labels="soft")).wait(120)
    assert missing.status == "failed" and "records" in missing.error


# ------------------------------------------------------------------------------------------- notebook 07
@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_notebook_07_runs_in_the_smoke_profile(tmp_path):
    papermill = pytest.importorskip("papermill")
    from jmlkit.runner import check_notebook_clean

    assert check_notebook_clean(NOTEBOOKS_DIR / "07_playground.ipynb") == []
    out = tmp_path / "07_playground"
    papermill.execute_notebook(str(NOTEBOOKS_DIR / "07_playground.ipynb"), str(tmp_path / "07.ipynb"),
                               parameters=dict(profile="smoke", output_dir=str(out)), kernel_name="python3",
                               cwd=str(NOTEBOOKS_DIR), progress_bar=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {f"small.{loss}.soft.seed0.{m}" for loss in ("jml", "sjl") for m in ("mIoU_D", "ECE_D")}
    assert {p.name for p in out.glob("*.png")} == {"live_first.png", "live_second.png", "comparison.png"}
    assert len(list((out / "curves").glob("*.csv"))) == 4  # the pair, and the first run with two more seeds (solution 3)
