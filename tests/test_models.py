"""Tests of jmlkit.models: shapes, presets, SMP architectures, offline pretrained weights."""
from __future__ import annotations

import os
import socket

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from jmlkit.models import PRESETS, SMP_ARCHITECTURES, SmallUNet, build_model, build_preset, count_parameters, list_models, loaded_weights


@pytest.mark.parametrize("size", [(32, 32), (30, 45), (17, 9)])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_small_unet_keeps_spatial_size(size, depth):
    net = SmallUNet(num_classes=5, in_channels=2, width=4, depth=depth)
    out = net(torch.randn(2, 2, *size))
    assert out.shape == (2, 5, *size)


@pytest.mark.parametrize("norm", ["group", "none"])
def test_small_unet_is_batch_independent(norm):
    # GroupNorm: an image's logits do not depend on the rest of the batch (DDP == single process).
    torch.manual_seed(0)
    net = SmallUNet(num_classes=3, in_channels=3, width=8, depth=2, norm=norm).train()
    x = torch.randn(4, 3, 24, 24)
    torch.testing.assert_close(net(x)[:1], net(x[:1]), rtol=1e-5, atol=1e-5)


def test_small_unet_backward():
    net = SmallUNet(num_classes=3, in_channels=1, width=4, depth=2)
    net(torch.randn(2, 1, 16, 16)).logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize(
    "kwargs, err",
    [
        (dict(num_classes=0), "num_classes"),
        (dict(num_classes=3, width=0), "width"),
        (dict(num_classes=3, depth=-1), "depth"),
        (dict(num_classes=3, dropout=1.0), "dropout"),
        (dict(num_classes=3, norm="layer"), "norm"),
    ],
)
def test_small_unet_rejects_bad_arguments(kwargs, err):
    with pytest.raises(ValueError, match=err):
        SmallUNet(**kwargs)


@pytest.mark.parametrize(
    "kwargs, err",
    [
        (dict(num_classes=3.0), r"Expected `num_classes` to be an int, but got 3.0 \(float\)\."),
        (dict(num_classes=3, depth=True), r"Expected `depth` to be an int, but got True \(bool\)\."),
        (dict(num_classes=3, dropout="0.1"), r"Expected `dropout` to be a real number, but got '0.1' \(str\)\."),
    ],
)
def test_small_unet_rejects_bad_argument_types(kwargs, err):
    with pytest.raises(TypeError, match=err):
        SmallUNet(**kwargs)


def test_small_unet_takes_numpy_and_0d_tensor_numbers():
    torch.manual_seed(0)
    plain = SmallUNet(num_classes=3, in_channels=1, width=4, depth=2, dropout=0.25)
    torch.manual_seed(0)
    other = SmallUNet(num_classes=np.int64(3), in_channels=torch.tensor(1), width=np.int32(4), depth=torch.tensor(2),
                      dropout=np.float64(0.25))
    assert (other.num_classes, other.in_channels, other.width, other.depth) == (3, 1, 4, 2)
    assert all(type(v) is int for v in (other.num_classes, other.in_channels, other.width, other.depth))
    for a, b in zip(plain.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_small_unet_rejects_wrong_input_channels():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        SmallUNet(num_classes=2, in_channels=3, width=4, depth=1)(torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize("arch, encoder", [("smp-unet", "resnet18"), ("FPN", "resnet18"), ("deeplabv3+", "resnet18"), ("segformer", "mit_b0")])
def test_build_smp_architectures(arch, encoder):
    model = build_model(arch, encoder, num_classes=4, in_channels=1)
    out = model.eval()(torch.zeros(1, 1, 64, 64))
    assert out.shape == (1, 4, 64, 64)


def test_architecture_names_are_normalised():
    from jmlkit.models import _norm_name

    assert _norm_name("DeepLabV3+") == _norm_name("smp-deeplabv3plus") == "deeplabv3plus"
    assert _norm_name("Small_UNet") == "smallunet" and _norm_name("SMP-Unet") == "unet"


def test_all_architectures_listed():
    names = list_models()
    assert set(SMP_ARCHITECTURES) <= set(names)
    assert "small-unet" in names and set(PRESETS) <= set(names)


@pytest.mark.parametrize("name", ["tiny", "student", "small", "teacher"])
def test_cpu_presets_build_and_run(name):
    model = build_preset(name, num_classes=11, in_channels=3)
    assert isinstance(model, SmallUNet)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 11, 32, 32)


def test_teacher_is_bigger_than_student():
    teacher = build_model("teacher", num_classes=11, in_channels=3)
    student = build_model("student", num_classes=11, in_channels=3)
    assert count_parameters(teacher) > 4 * count_parameters(student)


def test_preset_overrides():
    assert build_model("teacher", num_classes=2, in_channels=1, width=12).width == 12
    assert PRESETS["smp-student"] == {"arch": "unet", "encoder": "resnet18"}


def test_same_seed_same_init():
    torch.manual_seed(3)
    a = build_model("small", num_classes=3, in_channels=3)
    torch.manual_seed(3)
    b = build_model("small", num_classes=3, in_channels=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (("resnet",), dict(num_classes=2), ValueError, "arch"),
        (("unet", "not-an-encoder"), dict(num_classes=2), ValueError, "encoder"),
        (("unet",), dict(num_classes=None), TypeError, r"Expected `num_classes` to be an int, but got None"),
        (("small-unet",), dict(num_classes=2.0), TypeError, r"Expected `num_classes` to be an int, but got 2.0 \(float\)"),
        (("unet", 18), dict(num_classes=2), TypeError, r"Expected `encoder` to be a str or None, but got 18 \(int\)"),
        (("unet", "resnet18"), dict(num_classes=2, encoder_weights=1), TypeError, r"`encoder_weights` to be a str or None"),
        (("unet",), dict(num_classes=2, in_channels=0), ValueError, "in_channels"),
        ((3,), dict(num_classes=2), TypeError, "arch"),
        (("small-unet",), dict(num_classes=2, encoder_weights="imagenet"), ValueError, "encoder_weights"),
        (("unet", "resnet18"), dict(num_classes=2, encoder_weights="not-a-weight-set"), ValueError, "encoder_weights"),
    ],
)
def test_build_model_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build_model(*args, **kwargs)


def test_uncached_pretrained_weights_fail_fast(tmp_path, monkeypatch):
    # An empty hub cache: asking for ImageNet weights must be a clear error, not a download attempt.
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hc, "HUGGINGFACE_HUB_CACHE", str(tmp_path), raising=False)
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)  # jmlkit itself must not try, even where the hub may
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] or kwargs)
        raise OSError("the test forbids network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(FileNotFoundError, match=r"resnet18.*not in the local cache.*encoder_weights=None"):
        build_model("unet", "resnet18", num_classes=3, in_channels=3, encoder_weights="imagenet")
    assert attempts == []  # failed before any download was tried
    assert list(tmp_path.iterdir()) == []  # and wrote nothing into the cache


def test_local_encoder_weights_file(tmp_path):
    torch.manual_seed(0)
    source = build_model("unet", "resnet18", num_classes=3, in_channels=3)
    path = tmp_path / "encoder.pth"
    torch.save(source.encoder.state_dict(), path)
    model = build_model("fpn", "resnet18", num_classes=3, in_channels=3, encoder_weights=str(path))
    for key, value in source.encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[key], value)
    record = loaded_weights(model)
    assert record["source"] == "file" and record["path"] == str(path) and record["tensors"] == len(
        [k for k in source.encoder.state_dict() if not k.endswith("num_batches_tracked")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model("unet", "resnet18", num_classes=3, encoder_weights=str(tmp_path / "missing.pth"))


def test_loaded_weights_records_random_init():
    for model in (build_model("tiny", num_classes=2), build_model("unet", "resnet18", num_classes=2)):
        assert loaded_weights(model)["source"] == "random" and loaded_weights(model)["tensors"] == 0
    assert loaded_weights(torch.nn.Linear(2, 2))["source"] == "unknown"
