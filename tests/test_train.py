"""Tests of jmlkit.train: every label mode, determinism, KD == hard, run folders, evaluate/predict, CLI."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from jmlkit.train import (
    LABEL_MODES,
    FitResult,
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    load_run,
    lr_factor,
    predict,
)

#: A run of a few seconds: 32 grey scenes of 32x32, the tiny UNet, one thread (xdist runs 2 workers).
TINY = dict(
    dataset="digits",
    dataset_kwargs={"num_scenes": 32},  # merged into the quick profile's 32x32 grey scenes
    model="tiny",
    epochs=2,
    batch_size=8,
    lr=5e-3,
    val_split=None,
    eval_batch_size=32,
    num_threads=1,
)


def tiny(**overrides) -> TrainConfig:
    return TrainConfig.quick(**{**TINY, **overrides})


class _OneHotScenes(Dataset):
    """Images whose channels are the one-hot label (times 10): nn.Identity is a perfect model."""

    num_classes = 3
    ignore_index = 255

    def __init__(self, n: int = 6, size: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.labels = torch.randint(0, 3, (n, size, size), generator=g)
        self.labels[0, 0, :4] = 255

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        y = self.labels[i]
        image = nn.functional.one_hot(y.clamp(max=2), 3).permute(2, 0, 1).float() * 10
        return {"image": image, "label": y, "index": i}


# ----------------------------------------------------------------------------- config


def test_config_roundtrip_and_profiles():
    cfg = TrainConfig.quick(labels="kd", teacher="runs/t", loss_kwargs={"ce_weight": 0.5})
    again = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert TrainConfig.full().model == "unet-resnet18"
    # *_kwargs overrides merge into the profile's
    assert TrainConfig.quick(dataset_kwargs={"noise": 0.1}).dataset_kwargs == {**TrainConfig().dataset_kwargs, "noise": 0.1}
    assert TrainConfig.quick() == TrainConfig()
    assert TrainConfig.from_profile("quick") == TrainConfig.quick()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(labels="smooth"), ValueError, "`labels`"),
        (dict(epsilon=1.5), ValueError, "`epsilon`"),
        (dict(epochs=0), ValueError, "`epochs`"),
        (dict(batch_size=2.5), ValueError, "`batch_size`"),
        (dict(schedule="step"), ValueError, "`schedule`"),
        (dict(ssl_method="meanteacher"), ValueError, "`ssl_method`"),
        (dict(labeled_fraction=0.0), ValueError, "`labeled_fraction`"),
        (dict(kd_temperature=0), ValueError, "`kd_temperature`"),
        (dict(lr=-1.0), ValueError, "`lr`"),
        (dict(boundary_kernel=4), ValueError, "`boundary_kernel`"),
        (dict(dataset_kwargs=[1]), TypeError, "`dataset_kwargs`"),
        (dict(amp="yes"), TypeError, "`amp`"),
    ],
)
def test_config_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        TrainConfig(**kwargs)


def test_config_unknown_key():
    with pytest.raises(ValueError, match="unknown.*'epoch'"):
        TrainConfig.from_dict({"epoch": 3})


def test_lr_schedule():
    total = 100
    poly = [lr_factor(s, total, warmup=0.1) for s in range(total)]
    assert poly[:10] == sorted(poly[:10]) and poly[9] < 1.0  # warm-up rises
    assert poly[10] == 1.0 and poly[10:] == sorted(poly[10:], reverse=True)  # then decays
    assert poly[-1] < 0.05
    cos = [lr_factor(s, total, warmup=0.0, schedule="cosine") for s in range(total)]
    assert cos[0] == 1.0 and math.isclose(cos[50], 0.5) and cos[-1] < 0.01
    assert lr_factor(50, total, warmup=0.0, schedule="constant") == 1.0


# ----------------------------------------------------------------------------- label modes


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    torch.manual_seed(123)
    from jmlkit.models import build_model

    return build_model("tiny", num_classes=11, in_channels=1)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(labels="hard"),
        dict(labels="ls", epsilon=0.2),
        dict(labels="ls", smoothing="boundary", epsilon=0.3, loss="jml"),
        dict(labels="kd", kd_temperature=2.0, kd_label_weight=0.5),
        dict(labels="ssl", ssl_method="fixmatch", labeled_fraction=0.5, ssl_threshold=0.5),
        dict(labels="ssl", ssl_method="ema", labeled_fraction=0.5, ssl_threshold=0.0, ssl_soft=False, loss="ce"),
        dict(labels="soft", loss="ce+dml"),
    ],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_every_label_mode_lowers_the_loss(overrides, teacher):
    cfg = tiny(epochs=3, warmup=0.0, schedule="constant", **overrides)
    result = fit(cfg, teacher=teacher if cfg.labels == "kd" else None, progress=False)
    assert isinstance(result, FitResult)
    h = result.history
    assert list(h.epoch) == [1, 2, 3]
    column = "sup_loss" if cfg.labels == "ssl" else "train_loss"
    assert h[column].iloc[-1] < h[column].iloc[0], h
    if cfg.labels == "ssl":
        assert {"unsup_loss", "mask_ratio"} <= set(h.columns)
        assert ((h.mask_ratio >= 0) & (h.mask_ratio <= 1)).all()
    for key in ("mIoU_D", "ECE_D", "Acc", "mIoU_I"):
        assert 0.0 <= result.metrics[key] <= 1.0


def test_label_modes_listed():
    assert LABEL_MODES == ("hard", "ls", "kd", "ssl", "soft")


def test_same_seed_same_numbers():
    a = fit(tiny(labels="ls"), progress=False)
    b = fit(tiny(labels="ls"), progress=False)
    c = fit(tiny(labels="ls", seed=1), progress=False)
    pd.testing.assert_frame_equal(a.history.drop(columns="time_s"), b.history.drop(columns="time_s"))
    assert a.metrics["mIoU_D"] == b.metrics["mIoU_D"] and a.metrics["ECE_D"] == b.metrics["ECE_D"]
    assert a.history.train_loss.tolist() != c.history.train_loss.tolist()


def test_kd_with_zero_teacher_weight_equals_hard_labels(teacher):
    hard = fit(tiny(labels="hard"), progress=False)
    kd = fit(tiny(labels="kd", kd_label_weight=1.0, kd_temperature=3.0), teacher=teacher, progress=False)
    torch.testing.assert_close(kd.history.train_loss.tolist(), hard.history.train_loss.tolist(), rtol=1e-6, atol=1e-6)
    for key in ("mIoU_D", "ECE_D", "NLL"):
        assert math.isclose(kd.metrics[key], hard.metrics[key], rel_tol=1e-6, abs_tol=1e-6)
    for (name, p_kd), p_hard in zip(kd.model.state_dict().items(), hard.model.state_dict().values()):
        torch.testing.assert_close(p_kd, p_hard, rtol=1e-5, atol=1e-6, msg=name)


def test_ssl_before_its_warmup_is_labelled_training():
    """Until ``ssl_warmup`` of the steps, a semi-supervised run is exactly a labelled-only run."""
    hard = fit(tiny(labels="hard", labeled_fraction=0.5), progress=False)
    ssl = fit(tiny(labels="ssl", labeled_fraction=0.5, ssl_warmup=1.0), progress=False)
    torch.testing.assert_close(ssl.history.train_loss.tolist(), hard.history.train_loss.tolist(), rtol=1e-6, atol=1e-6)
    assert math.isclose(ssl.metrics["mIoU_D"], hard.metrics["mIoU_D"], rel_tol=1e-6, abs_tol=1e-6)
    started = fit(tiny(labels="ssl", labeled_fraction=0.5, ssl_warmup=0.0), progress=False)
    assert started.history.train_loss.tolist() != hard.history.train_loss.tolist()


def test_kd_teacher_from_run_folder(tmp_path):
    teacher_run = fit(tiny(epochs=1, out=str(tmp_path / "teacher")), progress=False)
    student = fit(tiny(labels="kd", teacher=str(teacher_run.run_dir), epochs=1, out=str(tmp_path / "kd")), progress=False)
    assert json.loads((tmp_path / "kd" / "config.json").read_text())["teacher"] == str(tmp_path / "teacher")
    assert 0.0 <= student.metrics["mIoU_D"] <= 1.0
    with pytest.raises(ValueError, match="teacher"):
        fit(tiny(labels="kd"), progress=False)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        fit(tiny(labels="kd", teacher=str(tmp_path / "nope")), progress=False)


def test_ssl_without_unlabeled_data_is_an_error():
    with pytest.raises(ValueError, match="unlabelled data"):
        fit(tiny(labels="ssl"), progress=False)


def test_ssl_with_unlabeled_split():
    result = fit(tiny(labels="ssl", unlabeled_split="unlabeled", steps_per_epoch=2, epochs=1), progress=False)
    assert result.history.step.iloc[-1] == 2


def test_soft_mode_needs_soft_labels():
    with pytest.raises(ValueError, match="soft"):
        fit(tiny(labels="soft"), train_data=_OneHotScenes(), eval_data=_OneHotScenes(), progress=False)


# ----------------------------------------------------------------------------- run folder


def test_run_folder(tmp_path):
    out = tmp_path / "run"
    result = fit(tiny(labels="ls", val_split="val", eval_limit=16, out=str(out)), progress=False)
    assert result.run_dir == out
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "history.csv", "metrics.json", "model.pt"]
    config, history, metrics = load_run(out)
    assert config == result.config
    assert list(history.columns[:4]) == ["epoch", "step", "lr", "train_loss"] and "val_mIoU_D" in history
    assert len(history) == 2
    for key in ("mIoU_D", "ECE_D"):
        assert isinstance(metrics[key], float) and 0.0 <= metrics[key] <= 1.0
        assert metrics[key] == pytest.approx(result.metrics[key])
    assert isinstance(metrics["IoU_per_class"], list) and len(metrics["IoU_per_class"]) == 11
    model = load_checkpoint(out / "model.pt")
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(model(x), result.model.eval()(x))


def test_interrupted_write_leaves_no_half_file(tmp_path, monkeypatch):
    from jmlkit import train as T

    target = tmp_path / "metrics.json"
    T._atomic_write(target, '{"old": 1}')

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(T.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        T._atomic_write(target, '{"new": 2}')
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


# ----------------------------------------------------------------------------- evaluate / predict


def test_evaluate_perfect_model():
    m = evaluate(nn.Identity(), _OneHotScenes(), num_classes=3, batch_size=4)
    assert m["mIoU_D"] == pytest.approx(1.0) and m["Acc"] == pytest.approx(1.0)
    assert m["ECE_D"] == pytest.approx(0.0, abs=1e-3)
    assert all(isinstance(v, float) for k, v in m.items() if k in ("mIoU_D", "ECE_D", "Brier"))


def test_evaluate_needs_num_classes():
    class NoClasses(_OneHotScenes):
        num_classes = None

    with pytest.raises(ValueError, match="num_classes"):
        evaluate(nn.Identity(), NoClasses())


def test_predict_shapes():
    from jmlkit.data import DigitScenes

    ds = DigitScenes("test", num_scenes=4, size=32, digit_size=12)
    net = nn.Sequential(nn.Conv2d(3, 11, 1))
    p = predict(net, ds, n=3)
    assert p.images.shape == (3, 3, 32, 32) and p.labels.shape == (3, 32, 32)
    assert p.probs.shape == (3, 11, 32, 32) and p.soft.shape == (3, 11, 32, 32)
    torch.testing.assert_close(p.probs.sum(1), torch.ones(3, 32, 32))
    assert predict(net, ds, indices=[3, 1]).labels.shape[0] == 2


# ----------------------------------------------------------------------------- command line


def test_cli_train_as_documented(tmp_path):
    """The issue's command, in-process, with the quick profile's data made smaller for speed."""
    from jmlkit.__main__ import main

    out = tmp_path / "DIR"
    rc = main(["train", "--dataset", "digits", "--labels", "ls", "--loss", "ce+jml", "--epochs", "2", "--out", str(out),
               "--dataset-kwargs", "size=32,digit_size=[10,16]", "--train-limit", "48", "--eval-limit", "16",
               "--model", "tiny", "--num-threads", "1", "--no-progress", "--quiet"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["mIoU_D"] <= 1.0 and 0.0 <= metrics["ECE_D"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == "ls" and config["loss"] == "ce+jml" and config["epochs"] == 2
    assert config["dataset_kwargs"] == {**TrainConfig.quick().dataset_kwargs, "size": 32, "digit_size": [10, 16]}


def test_cli_config_file_and_errors(tmp_path, capsys):
    from jmlkit.__main__ import main

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"labels": "ls", "epsilon": 0.3}))
    with pytest.raises(SystemExit) as err:
        main(["train", "--config", str(cfg), "--epsilon", "2"])
    assert err.value.code == 2
    assert "Expected `epsilon` to be a number in [0, 1], but got 2.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--labels", "smooth"])
    assert "invalid choice" in capsys.readouterr().err


def test_cli_help():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    top = subprocess.run([sys.executable, "-m", "jmlkit", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert top.returncode == 0 and "train" in top.stdout and "run" in top.stdout
    train = subprocess.run([sys.executable, "-m", "jmlkit", "train", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert train.returncode == 0
    for flag in ("--dataset", "--labels", "--loss", "--epochs", "--out", "--kd-temperature", "--ssl-method", "--profile"):
        assert flag in train.stdout
