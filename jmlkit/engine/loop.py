r"""Training engine: one :func:`fit` for hard, smoothed, distilled, semi-supervised and soft labels.

The loop of every label mode is the same::

    batch ──► model ──► logits (B, K, H, W)
      │                    │
      └─ label mode ─► target ──► loss(logits, target[, mask]) ──► AdamW step ──► LR schedule

with the target made per batch by :mod:`jmlkit.targets`:

============  ===============================================================================
``labels``    target passed to the loss
============  ===============================================================================
``"hard"``    the int64 labels ``y`` (``ignore_index`` pixels do not count)
``"ls"``      :func:`~jmlkit.targets.label_smoothing` :math:`(1-\varepsilon)e_y + \varepsilon/K`,
              or :func:`~jmlkit.targets.boundary_label_smoothing` (``smoothing="boundary"``)
``"kd"``      :func:`~jmlkit.targets.distillation_targets`
              :math:`(1-w)\,\mathrm{softmax}(z_t/T) + w\,e_y` of a frozen teacher
``"ssl"``     labels on the labelled batch, plus :math:`\lambda\,` loss on
              :func:`~jmlkit.targets.pseudo_labels` of an unlabelled batch (``ssl_method="fixmatch"``:
              the model's own prediction on a weak view, trained on a strong view;
              ``"ema"``: a mean-teacher's prediction), pixels below ``ssl_threshold`` masked out
``"soft"``    the data set's own soft labels ``item["soft"]`` (e.g. coverage or annotator averages)
============  ===============================================================================

Losses come from :func:`jmlkit.losses.get_loss` by name (``"ce"``, ``"jml"``, ``"sjl"``,
``"dml"``, ``"lovasz"``, ``"ce+jml"``…), metrics from :mod:`jmlkit.metrics` (accuracy and
calibration, on a validation split every epoch and on ``eval_split`` at the end). AdamW with a
linear warm-up then a poly or cosine decay. On the CPU, the same seed gives the same numbers.

Runs write a folder (``config.json``, ``history.csv``, ``metrics.json``, ``model.pt``), each file
atomically (written aside, then renamed), so an interrupted run never leaves a half-written file.

Under ``torchrun --nproc_per_node=N`` the same call trains with DistributedDataParallel (gloo on
CPU, NCCL on GPUs): ``batch_size`` stays the global batch (each rank takes ``batch_size / N``
images of the same shuffled order a single process would), the loss's ``sync_distributed`` is
on, metrics are reduced across ranks and only rank 0 writes.

Example:
    >>> from jmlkit.train import TrainConfig, fit
    >>> cfg = TrainConfig.quick(labels="ls", epochs=1, train_limit=16, eval_limit=8, val_split=None,
    ...                         dataset_kwargs={"size": 32, "digit_size": 12, "num_scenes": 16}, model_kwargs={"width": 4, "depth": 1})
    >>> result = fit(cfg, progress=False)
    >>> list(result.history.columns[:4])
    ['epoch', 'step', 'lr', 'train_loss']
    >>> 0.0 <= result.metrics["mIoU_D"] <= 1.0 and 0.0 <= result.metrics["ECE_D"] <= 1.0
    True
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

__all__ = [
    "LABEL_MODES",
    "TrainConfig",
    "FitResult",
    "Prediction",
    "fit",
    "evaluate",
    "predict",
    "make_dataset",
    "make_loss",
    "load_checkpoint",
    "save_checkpoint",
    "load_run",
    "lr_factor",
]

#: Label modes of :func:`fit`.
LABEL_MODES = ("hard", "ls", "kd", "ssl", "soft")
_SMOOTHINGS = ("uniform", "boundary")
_SSL_METHODS = ("fixmatch", "ema")
_SCHEDULES = ("poly", "cosine", "constant")
_PROFILES = ("quick", "full")

#: DigitScenes options of the quick profile: 32×32 grey scenes of one or two 16-pixel digits
#: (1,000 training scenes). Large enough digits on a small canvas are what lets a small UNet
#: learn the digits' identities (not only digit vs background) within a few hundred steps.
QUICK_DIGITS: dict[str, Any] = {"size": 32, "digit_size": 16, "digits_per_scene": [1, 2], "in_channels": 1, "blur": 0.0, "noise": 0.02}


def _opt(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None, **meta: Any) -> Any:
    metadata = {"help": help, **meta}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# ============================================================================ configuration


@dataclass
class TrainConfig:
    """Every option of :func:`fit`, with defaults; JSON-serialisable (:meth:`to_dict`, :meth:`from_dict`).

    The defaults are the ``"quick"`` profile's (a small UNet on 64×64 digit scenes, seconds per
    epoch on a CPU); :meth:`quick` and :meth:`full` give the two profiles with overrides, and the
    ``python -m jmlkit train`` options are these fields (``--kd-temperature`` for ``kd_temperature``).

    Example:
        >>> cfg = TrainConfig(labels="ls", epsilon=0.2)
        >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
        True
        >>> TrainConfig(labels="smooth")
        Traceback (most recent call last):
        ...
        ValueError: Expected `labels` to be one of ('hard', 'ls', 'kd', 'ssl', 'soft'), but got 'smooth'.
    """

    # --- data
    dataset: str = _opt("digits", "data set of jmlkit.data.get_dataset: 'digits' (DigitScenes), 'brain' (BrainTissueSlices), 'voc' or 'cityscapes' (SegmentationFolder, needs dataset_kwargs root=...)")
    dataset_kwargs: dict[str, Any] = _opt(help="keyword arguments of the data set class, for every split (JSON or k=v,k=v)", factory=lambda: dict(QUICK_DIGITS))
    train_split: str = _opt("train", "split to train on")
    val_split: str | None = _opt("val", "split evaluated after every `val_every` epochs ('none' to skip)")
    eval_split: str | None = _opt("test", "split of the final metrics ('none' to skip)")
    unlabeled_split: str | None = _opt(None, "extra unlabelled split for labels=ssl (e.g. 'unlabeled'); default: the unlabelled rest of the train split")
    train_limit: int | None = _opt(None, "use only the first N training items")
    eval_limit: int | None = _opt(256, "use only the first N items of the val/eval splits")
    labeled_fraction: float = _opt(1.0, "fraction of the training items that keep their labels (a seeded subset); with labels=ssl the rest is the unlabelled data")
    ignore_index: int | None = _opt(255, "label value of pixels that do not count (the data set's own `ignore_index` wins)")
    # --- model
    model: str = _opt("small", "architecture ('small-unet', 'unet', 'fpn', 'deeplabv3plus', 'segformer', ...) or preset ('tiny', 'student', 'small', 'teacher', 'smp-student', 'smp-teacher', ...)")
    encoder: str | None = _opt(None, "SMP encoder (default resnet18 or the preset's)")
    encoder_weights: str | None = _opt(None, "pretrained encoder weights: None, 'imagenet' (local cache only) or a local file")
    model_kwargs: dict[str, Any] = _opt(help="extra model arguments, e.g. {\"width\": 8} for the small UNet", factory=dict)
    # --- labels
    labels: str = _opt("hard", "label mode", choices=LABEL_MODES)
    epsilon: float = _opt(0.1, "label-smoothing epsilon (labels=ls)")
    smoothing: str = _opt("uniform", "label smoothing kind (labels=ls)", choices=_SMOOTHINGS)
    boundary_kernel: int = _opt(3, "window size of boundary label smoothing")
    teacher: str | None = _opt(None, "teacher checkpoint (model.pt or a run folder) for labels=kd")
    kd_temperature: float = _opt(1.0, "temperature T of the teacher's softmax (labels=kd)")
    kd_label_weight: float = _opt(0.0, "weight w of the one-hot label mixed into the teacher's probabilities (labels=kd)")
    ssl_method: str = _opt("fixmatch", "semi-supervised method (labels=ssl)", choices=_SSL_METHODS)
    ssl_threshold: float = _opt(0.9, "confidence threshold of pseudo-labels (labels=ssl)")
    ssl_soft: bool = _opt(True, "soft (probabilities) or hard (one-hot) pseudo-labels (labels=ssl)")
    ssl_weight: float = _opt(1.0, "weight lambda of the unlabelled loss (labels=ssl)")
    ssl_temperature: float = _opt(1.0, "temperature of the pseudo-label softmax (labels=ssl)")
    ssl_warmup: float = _opt(0.0, "fraction of all steps trained on the labelled data alone before pseudo-labels start (labels=ssl)")
    ema_decay: float = _opt(0.99, "EMA decay of the mean teacher (ssl_method=ema)")
    unlabeled_batch_size: int | None = _opt(None, "batch size of unlabelled data (default: batch_size)")
    # --- loss
    loss: str = _opt("ce+jml", "loss name for jmlkit.losses.get_loss: ce, jml, sjl, dml, lovasz, ce+jml, ...")
    loss_kwargs: dict[str, Any] = _opt(help="keyword arguments of the loss (e.g. {\"ce_weight\": 0.5})", factory=dict)
    # --- optimisation
    epochs: int = _opt(6, "number of epochs")
    steps_per_epoch: int | None = _opt(None, "optimisation steps per epoch (default: one pass over the labelled data; with labels=ssl, over the unlabelled data)")
    batch_size: int = _opt(16, "global batch size (split across distributed ranks)")
    lr: float = _opt(3e-3, "peak learning rate of AdamW")
    weight_decay: float = _opt(1e-4, "AdamW weight decay")
    warmup: float = _opt(0.05, "linear warm-up, as a fraction of all steps")
    schedule: str = _opt("poly", "learning-rate decay after the warm-up", choices=_SCHEDULES)
    poly_power: float = _opt(0.9, "power of the poly schedule")
    grad_clip: float | None = _opt(None, "clip the gradient norm to this value")
    # --- runtime
    seed: int = _opt(0, "random seed (model init, shuffling, subsets, augmentations)")
    device: str = _opt("auto", "'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1', ...")
    amp: bool = _opt(True, "mixed precision (bfloat16/float16 autocast) on CUDA; ignored on CPU")
    deterministic: bool = _opt(True, "torch.use_deterministic_algorithms(warn_only=True) during the run")
    num_threads: int | None = _opt(None, "torch CPU threads during the run (default: torch's)")
    num_workers: int = _opt(0, "DataLoader worker processes")
    eval_batch_size: int = _opt(64, "batch size of evaluation")
    val_every: int = _opt(1, "evaluate the val split every N epochs (and after the last)")
    n_bins: int = _opt(15, "confidence bins of the calibration metrics")
    out: str | None = _opt(None, "run folder to write (config.json, history.csv, metrics.json, model.pt); None: nothing written")
    save_checkpoint: bool = _opt(True, "write model.pt into the run folder")

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> TrainConfig:
        """Check every option; raise ``ValueError``/``TypeError`` naming the bad one. Returns ``self``."""
        _choice("labels", self.labels, LABEL_MODES)
        _choice("smoothing", self.smoothing, _SMOOTHINGS)
        _choice("ssl_method", self.ssl_method, _SSL_METHODS)
        _choice("schedule", self.schedule, _SCHEDULES)
        if not isinstance(self.dataset, str):
            raise TypeError(f"Expected `dataset` to be a str, but got {type(self.dataset).__name__}.")
        for name in ("dataset_kwargs", "model_kwargs", "loss_kwargs"):
            if not isinstance(getattr(self, name), Mapping):
                raise TypeError(f"Expected `{name}` to be a dict, but got {type(getattr(self, name)).__name__}.")
            setattr(self, name, dict(getattr(self, name)))
        for name in ("epochs", "batch_size", "eval_batch_size", "val_every", "n_bins", "boundary_kernel"):
            _pos_int(name, getattr(self, name))
        for name in ("train_limit", "eval_limit", "steps_per_epoch", "unlabeled_batch_size", "num_threads"):
            if getattr(self, name) is not None:
                _pos_int(name, getattr(self, name))
        if not isinstance(self.num_workers, int) or isinstance(self.num_workers, bool) or self.num_workers < 0:
            raise ValueError(f"Expected `num_workers` to be a non-negative int, but got {self.num_workers!r}.")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"Expected `seed` to be a non-negative int, but got {self.seed!r}.")
        for name in ("epsilon", "kd_label_weight", "ssl_threshold", "warmup", "ssl_warmup"):
            _unit(name, getattr(self, name))
        if not 0.0 <= float(self.ema_decay) < 1.0:
            raise ValueError(f"Expected `ema_decay` to be in [0, 1), but got {self.ema_decay!r}.")
        if not 0.0 < float(self.labeled_fraction) <= 1.0:
            raise ValueError(f"Expected `labeled_fraction` to be in (0, 1], but got {self.labeled_fraction!r}.")
        for name in ("kd_temperature", "ssl_temperature", "lr", "poly_power"):
            _positive(name, getattr(self, name))
        for name in ("weight_decay", "ssl_weight"):
            value = getattr(self, name)
            if not _is_real(value) or value < 0:
                raise ValueError(f"Expected `{name}` to be a non-negative number, but got {value!r}.")
        if self.grad_clip is not None:
            _positive("grad_clip", self.grad_clip)
        if self.boundary_kernel % 2 == 0:
            raise ValueError(f"Expected `boundary_kernel` to be an odd positive int, but got {self.boundary_kernel}.")
        if self.ignore_index is not None and (not isinstance(self.ignore_index, int) or isinstance(self.ignore_index, bool)):
            raise TypeError(f"Expected `ignore_index` to be None or an int, but got {self.ignore_index!r}.")
        for name in ("amp", "deterministic", "ssl_soft", "save_checkpoint"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Expected `{name}` to be a bool, but got {getattr(self, name)!r}.")
        if not isinstance(self.device, str):
            raise TypeError(f"Expected `device` to be a str, but got {type(self.device).__name__}.")
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every option."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (``kwargs`` go to :func:`json.dumps`)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        if not isinstance(data, Mapping):
            raise TypeError(f"Expected a dict of options, but got {type(data).__name__}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"Expected TrainConfig options among {sorted(names)}, but got unknown {unknown}.")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a ``config.json`` written by :func:`fit` (or by hand)."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ profiles
    @classmethod
    def quick(cls, **overrides: Any) -> TrainConfig:
        """The ``"quick"`` profile: small UNet on 32×32 digit scenes (:data:`QUICK_DIGITS`), ~30 s per run on 2 CPU cores.

        >>> TrainConfig.quick(labels="ls").model
        'small'
        """
        base: dict[str, Any] = dict(
            dataset="digits",
            dataset_kwargs=dict(QUICK_DIGITS),
            model="small",
            train_limit=None,
            eval_limit=256,
            epochs=6,
            batch_size=16,
            lr=3e-3,
        )
        return cls.from_dict(_merge(_for_dataset(base, overrides), overrides))

    @classmethod
    def full(cls, **overrides: Any) -> TrainConfig:
        """The ``"full"`` profile: SMP Unet-ResNet18 on all digit scenes, 40 epochs (meant for a GPU).

        >>> TrainConfig.full().model
        'unet-resnet18'
        """
        base: dict[str, Any] = dict(
            dataset="digits",
            dataset_kwargs={"size": 64, "in_channels": 3},
            model="unet-resnet18",
            train_limit=None,
            eval_limit=None,
            epochs=40,
            batch_size=32,
            lr=1e-3,
            eval_batch_size=128,
        )
        return cls.from_dict(_merge(_for_dataset(base, overrides), overrides))

    @classmethod
    def from_profile(cls, profile: str, **overrides: Any) -> TrainConfig:
        """:meth:`quick` or :meth:`full` by name."""
        _choice("profile", profile, _PROFILES)
        return cls.quick(**overrides) if profile == "quick" else cls.full(**overrides)


def _for_dataset(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A profile's ``dataset_kwargs`` belong to its data set: another data set starts from its own defaults."""
    if overrides.get("dataset", base["dataset"]) != base["dataset"]:
        return {**base, "dataset_kwargs": {}}
    return base


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if key.endswith("_kwargs") and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {tuple(choices)}, but got {value!r}.")


def _pos_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive int, but got {value!r}.")


def _unit(name: str, value: Any) -> None:
    if not _is_real(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected `{name}` to be a number in [0, 1], but got {value!r}.")


def _positive(name: str, value: Any) -> None:
    if not _is_real(value) or value <= 0:
        raise ValueError(f"Expected `{name}` to be a positive number, but got {value!r}.")


# ============================================================================ results


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (unwrapped from DDP, in eval mode, on the training device).
        history: one row per epoch: ``epoch, step, lr, train_loss`` (plus ``sup_loss, unsup_loss,
            mask_ratio`` with ``labels="ssl"``), ``time_s``, and ``val_<metric>`` columns.
        metrics: final metrics on ``eval_split`` (python floats; per-class values as lists),
            plus ``train_time_s``.
        run_dir: the run folder, or ``None`` when ``config.out`` is ``None``.
        config: the configuration that ran.
    """

    model: nn.Module
    history: pd.DataFrame
    metrics: dict[str, Any]
    run_dir: Path | None
    config: TrainConfig


class Prediction(NamedTuple):
    """Images, labels and predicted probabilities of :func:`predict` (CPU tensors)."""

    images: torch.Tensor  # (N, C_in, H, W)
    labels: torch.Tensor  # (N, H, W) int64
    probs: torch.Tensor  # (N, K, H, W)
    soft: torch.Tensor | None  # (N, K, H, W) when the data set has soft labels


# ============================================================================ building blocks


def make_dataset(name: str, split: str, **kwargs: Any) -> Dataset:
    """A data set by name and split, through :func:`jmlkit.data.get_dataset` (``"digits"``,
    ``"brain"``, ``"voc"``, ``"cityscapes"``; ``kwargs`` go to its constructor).

    >>> len(make_dataset("digits", "val", num_scenes=5, size=32, digit_size=12))
    5
    """
    from jmlkit.data import get_dataset

    return get_dataset(name, split, **kwargs)


def make_loss(name: str, *, ignore_index: int | None = None, sync_distributed: bool = False, **kwargs: Any) -> nn.Module:
    """The loss :func:`jmlkit.losses.get_loss` ``(name, **kwargs)`` with ``ignore_index`` and distributed sync set.

    ``sync_distributed`` is only passed on when true, so losses without it keep working single-process.
    """
    from jmlkit import losses

    options = dict(kwargs)
    options.setdefault("ignore_index", ignore_index)
    if sync_distributed:
        options["sync_distributed"] = True
    return losses.get_loss(name, **options)


def lr_factor(step: int, total_steps: int, *, warmup: float = 0.05, schedule: str = "poly", power: float = 0.9) -> float:
    r"""Learning-rate multiplier at optimisation ``step`` (0-based) of ``total_steps``.

    Linear warm-up over :math:`W = \lceil \text{warmup}\cdot N\rceil` steps,
    :math:`f = (s+1)/(W+1)`; then with :math:`t = (s - W)/(N - W)`: poly :math:`(1-t)^p`,
    cosine :math:`\tfrac12(1+\cos \pi t)`, constant :math:`1`.

    >>> [round(lr_factor(s, 10, warmup=0.2), 3) for s in range(0, 10, 3)]
    [0.333, 0.887, 0.536, 0.154]
    >>> round(lr_factor(5, 10, warmup=0.0, schedule="cosine"), 3)
    0.5
    """
    warm = int(math.ceil(warmup * total_steps))
    if step < warm:
        return (step + 1) / (warm + 1)
    if schedule == "constant":
        return 1.0
    t = min(max((step - warm) / max(total_steps - warm, 1), 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return (1.0 - t) ** power


def _resolve_device(device: str | torch.device | None, local_rank: int | None = None) -> torch.device:
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank or 0) if local_rank is not None else torch.device("cuda")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Expected `device` to be available, but got {str(device)!r} and CUDA is not available.")
    if dev.type == "cuda" and dev.index is None and local_rank is not None:
        dev = torch.device("cuda", local_rank)
    return dev


def _atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write(path, buffer.getvalue())


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="list")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
        elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


# ----------------------------------------------------------------------------- checkpoints


def _model_spec(config: TrainConfig, num_classes: int, in_channels: int) -> dict[str, Any]:
    return {
        "arch": config.model,
        "encoder": config.encoder,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "kwargs": dict(config.model_kwargs),
    }


def _build_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    from jmlkit.models import build_model

    return build_model(
        spec["arch"],
        spec.get("encoder"),
        num_classes=spec["num_classes"],
        in_channels=spec["in_channels"],
        **dict(spec.get("kwargs", {})),
    )


def save_checkpoint(path: str | os.PathLike, model: nn.Module, spec: Mapping[str, Any], *, config: TrainConfig | None = None, **extra: Any) -> Path:
    """Write ``{"model_spec", "state_dict", "config", ...}`` to ``path`` atomically; :func:`load_checkpoint` reads it.

    ``spec`` holds ``arch, encoder, num_classes, in_channels, kwargs`` of :func:`jmlkit.models.build_model`.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()}
    payload = {"model_spec": dict(spec), "state_dict": state, "config": config.to_dict() if config else None, **extra}
    _atomic_torch_save(payload, path)
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model saved by :func:`fit` (``model.pt``, or a run folder holding one), in eval mode.

    >>> import tempfile, torch
    >>> from jmlkit.models import build_model
    >>> net = build_model("tiny", num_classes=3, in_channels=1)
    >>> spec = {"arch": "tiny", "encoder": None, "num_classes": 3, "in_channels": 1, "kwargs": {}}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = save_checkpoint(f"{d}/model.pt", net, spec)
    ...     again = load_checkpoint(d)
    >>> x = torch.randn(1, 1, 16, 16)
    >>> bool(torch.equal(net.eval()(x), again(x)))
    True
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"Expected a checkpoint file (model.pt or a run folder holding one), but {str(path)!r} does not exist.")
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, Mapping) or "model_spec" not in payload or "state_dict" not in payload:
        raise ValueError(f"Expected {str(path)!r} to be a jmlkit checkpoint with 'model_spec' and 'state_dict', but it is not.")
    model = _build_from_spec(payload["model_spec"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def load_run(run_dir: str | os.PathLike) -> tuple[TrainConfig, pd.DataFrame, dict[str, Any]]:
    """Read a run folder back: ``(config, history, metrics)`` (the model: :func:`load_checkpoint`)."""
    run_dir = Path(run_dir)
    config = TrainConfig.from_json(run_dir / "config.json")
    history = pd.read_csv(run_dir / "history.csv") if (run_dir / "history.csv").exists() else pd.DataFrame()
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    return config, history, metrics


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# ----------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_pref: str) -> _Dist:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        local = os.environ.get("LOCAL_RANK")
        return _Dist(dist.get_rank(), dist.get_world_size(), int(local) if local is not None else None, False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_available():  # pragma: no cover
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this build of torch.")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_pref in ("auto",) or str(device_pref).startswith("cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return _Dist(dist.get_rank(), dist.get_world_size(), local_rank, True)


def _all_reduce_mean(values: Sequence[float], dist_info: _Dist, device: torch.device) -> list[float]:
    if not dist_info.enabled:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / dist_info.world_size).tolist()


class _ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of a data set, in order, without padding (evaluation)."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


# ============================================================================ evaluation


def _num_classes_of(model: nn.Module | None, data: Any) -> int | None:
    for obj in (data, getattr(data, "dataset", None), _unwrap(model) if model is not None else None):
        k = getattr(obj, "num_classes", None)
        if isinstance(k, int):
            return k
    base = data
    while isinstance(base, Subset) or isinstance(getattr(base, "dataset", None), Dataset):
        base = base.dataset
        k = getattr(base, "num_classes", None)
        if isinstance(k, int):
            return k
    return None


def _base_dataset(data: Any) -> Any:
    while isinstance(data, (Subset, DataLoader)):
        data = data.dataset
    return data


def _make_metrics(num_classes: int, ignore_index: int | None, n_bins: int, device: torch.device) -> list[Any]:
    from jmlkit import metrics as jm

    seg = jm.SegmentationMetrics(num_classes, ignore_index=ignore_index)
    cal = jm.CalibrationMetrics(num_classes, n_bins=n_bins, ignore_index=ignore_index)
    return [cal.to(device), seg.to(device)]  # seg last: its `Acc`, `n_pixels` win the merge


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = 255,
    n_bins: int = 15,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy and calibration of ``model`` on ``data``: :class:`~jmlkit.metrics.SegmentationMetrics`
    and :class:`~jmlkit.metrics.CalibrationMetrics` computed over the whole set, their dicts merged.

    Scalars (``Acc``, ``mIoU_D``, ``mIoU_I``, ``ECE_D``, ``Brier``, ``NLL``, …) are python floats;
    per-class values are lists. Inside an initialised process group the data set is sharded
    across ranks (a :class:`~torch.utils.data.DataLoader` is used as given) and the metric
    states are reduced, so every rank gets the metrics of the whole set.

    Args:
        model: maps ``(B, C_in, H, W)`` to logits ``(B, K, H, W)``; evaluated in eval mode
            (its training mode is restored after).
        data: a data set of ``{"image", "label", ...}`` items or a loader of such batches.
        num_classes: ``K`` (default: the data set's or the model's ``num_classes``).
        ignore_index: label value that does not count (the data set's ``ignore_index`` wins).
        n_bins: confidence bins of the calibration metrics.
        batch_size: batch size when ``data`` is a data set.
        device: default: the model's device.
        amp: autocast on CUDA.
        progress: show a progress bar.

    Example:
        >>> from jmlkit.data import DigitScenes
        >>> from jmlkit.models import build_model
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = build_model("tiny", num_classes=11, in_channels=3)
        >>> m = evaluate(net, DigitScenes("test", num_scenes=4, size=32, digit_size=12))
        >>> 0.0 <= m["mIoU_D"] <= 1.0, 0.0 <= m["ECE_D"] <= 1.0
        (True, True)
    """
    model_ = _unwrap(model)
    if device is None:
        try:
            device = next(model_.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    device = _resolve_device(device)
    if num_classes is None:
        num_classes = _num_classes_of(model_, data)
        if num_classes is None:
            raise ValueError("Expected `num_classes` (the data set and model do not say), but got None.")
    _pos_int("num_classes", num_classes)
    _pos_int("n_bins", n_bins)
    _pos_int("batch_size", batch_size)
    ignore_index = getattr(_base_dataset(data), "ignore_index", ignore_index)
    if isinstance(data, DataLoader):
        loader = data
    else:
        if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
            raise TypeError(f"Expected `data` to be a Dataset or DataLoader, but got {type(data).__name__}.")
        sampler = None
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            sampler = _ShardSampler(len(data), dist.get_rank(), dist.get_world_size())
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=0)
    metrics = _make_metrics(num_classes, ignore_index, n_bins, device)
    was_training = model_.training
    model_.eval()
    try:
        for batch in _progress(loader, progress, desc="eval", leave=False):
            images = batch["image"].to(device, non_blocking=True)
            labels = batch["label"].to(device, non_blocking=True)
            with _autocast(device, amp):
                logits = model_(images)
            probs = torch.softmax(logits.float(), dim=1)
            for metric in metrics:
                metric.update(probs, labels)
        results: dict[str, Any] = {}
        for metric in metrics:
            results.update(metric.compute())
    finally:
        model_.train(was_training)
    return {key: _jsonable(value) for key, value in results.items()}


@torch.no_grad()
def predict(
    model: nn.Module,
    data: Dataset,
    n: int = 8,
    *,
    indices: Sequence[int] | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 32,
) -> Prediction:
    """Images, labels, softmax probabilities (and soft labels, if any) of ``n`` items, for plots.

    Args:
        model: the segmentation model (evaluated in eval mode).
        data: a data set of ``{"image", "label", ["soft"]}`` items.
        n: number of items (the first ``n``) when ``indices`` is not given.
        indices: explicit item indices.
        device: default: the model's device.
        batch_size: forward-pass batch size.

    Returns:
        :class:`Prediction` of CPU tensors: ``images (N, C_in, H, W)``, ``labels (N, H, W)``,
        ``probs (N, K, H, W)``, ``soft (N, K, H, W)`` or ``None``.

    Example:
        >>> from jmlkit.data import DigitScenes
        >>> from jmlkit.models import build_model
        >>> p = predict(build_model("tiny", num_classes=11, in_channels=3), DigitScenes("test", num_scenes=4, size=32, digit_size=12), n=2)
        >>> p.images.shape, p.probs.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 11, 32, 32]))
    """
    model_ = _unwrap(model)
    if indices is None:
        _pos_int("n", n)
        indices = list(range(min(n, len(data))))
    indices = [int(i) for i in indices]
    if device is None:
        try:
            device = next(model_.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    items = [data[i] for i in indices]
    images = torch.stack([it["image"] for it in items])
    labels = torch.stack([torch.as_tensor(it["label"]) for it in items]).long()
    soft = torch.stack([it["soft"] for it in items]) if all("soft" in it for it in items) and items else None
    was_training = model_.training
    model_.eval()
    try:
        probs = torch.cat(
            [torch.softmax(model_(images[i : i + batch_size].to(device)).float(), dim=1).cpu() for i in range(0, len(images), batch_size)]
        ) if len(images) else torch.empty(0)
    finally:
        model_.train(was_training)
    return Prediction(images, labels, probs, soft)


# ============================================================================ training


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _progress(iterable: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def _runtime(config: TrainConfig) -> Iterator[None]:
    """Threads and determinism for the run, restored afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if config.num_threads is not None:
            torch.set_num_threads(config.num_threads)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _limit(data: Dataset, limit: int | None) -> Dataset:
    if limit is None or limit >= len(data):
        return data
    return Subset(data, range(limit))


def _labeled_split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    if fraction >= 1.0:
        return data, None
    n = len(data)
    k = max(1, int(round(fraction * n)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919)).tolist()
    return Subset(data, sorted(perm[:k])), Subset(data, sorted(perm[k:])) if k < n else None


class _Cycle:
    """Endless iteration over a loader with a DistributedSampler, reshuffled on every pass."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.passes = 0
        self._it: Iterator | None = None

    def next(self) -> Any:
        while True:
            if self._it is None:
                sampler = self.loader.sampler
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(self.passes)
                self.passes += 1
                self._it = iter(self.loader)
            try:
                return next(self._it)
            except StopIteration:
                self._it = None


def _train_loader(data: Dataset, batch_size: int, dist_info: _Dist, config: TrainConfig, seed: int) -> DataLoader:
    from torch.utils.data.distributed import DistributedSampler

    if batch_size % dist_info.world_size:
        raise ValueError(
            f"Expected `batch_size` to be divisible by the number of processes ({dist_info.world_size}), but got {batch_size}."
        )
    per_rank = batch_size // dist_info.world_size
    # One sampler for single- and multi-process runs: the same shuffled order either way.
    sampler = DistributedSampler(data, num_replicas=dist_info.world_size, rank=dist_info.rank, shuffle=True, seed=seed, drop_last=False)
    drop_last = len(data) >= batch_size
    return DataLoader(data, batch_size=per_rank, sampler=sampler, drop_last=drop_last, num_workers=config.num_workers)


# ----------------------------------------------------------------------------- SSL views


def _weak_view(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips (per image)."""
    flip = torch.rand(images.shape[0], generator=gen) < 0.5
    out = images.clone()
    out[flip.to(images.device)] = out[flip.to(images.device)].flip(-1)
    return out


def _strong_view(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Photometric jitter (brightness, contrast), Gaussian noise and a cut-out square, per image.

    Geometry is unchanged, so pseudo-labels of the weak view stay aligned with the strong view.
    """
    b, _, h, w = images.shape
    dev = images.device
    shape = (b, 1, 1, 1)
    brightness = ((torch.rand(shape, generator=gen) - 0.5) * 0.6).to(dev)
    contrast = (0.6 + 0.8 * torch.rand(shape, generator=gen)).to(dev)
    noise = (0.1 * torch.randn(images.shape, generator=gen)).to(dev)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * contrast + mean + brightness + noise
    side = max(1, min(h, w) // 4)
    ys = torch.randint(0, max(h - side, 0) + 1, (b,), generator=gen).tolist()
    xs = torch.randint(0, max(w - side, 0) + 1, (b,), generator=gen).tolist()
    for i, (y, x) in enumerate(zip(ys, xs)):
        out[i, :, y : y + side, x : x + side] = 0.0
    return out


@torch.no_grad()
def _ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


# ----------------------------------------------------------------------------- fit


def _resolve_teacher(config: TrainConfig, teacher: nn.Module | str | os.PathLike | None) -> nn.Module | None:
    if config.labels != "kd":
        return None
    source = teacher if teacher is not None else config.teacher
    if source is None:
        raise ValueError("Expected a teacher for labels='kd' (`teacher=` model or `config.teacher` checkpoint path), but got None.")
    if isinstance(source, nn.Module):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_checkpoint(source)
    raise TypeError(f"Expected `teacher` to be an nn.Module or a checkpoint path, but got {type(source).__name__}.")


def fit(
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    teacher: nn.Module | str | os.PathLike | None = None,
    model: nn.Module | None = None,
    train_data: Dataset | None = None,
    val_data: Dataset | None = None,
    eval_data: Dataset | None = None,
    unlabeled_data: Dataset | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train a segmentation model as ``config`` says; evaluate it; write the run folder.

    Args:
        config: a :class:`TrainConfig` (or a dict of its options; ``None``: the defaults).
        teacher: for ``labels="kd"``: a frozen teacher model (overrides ``config.teacher``) or a
            checkpoint path. It runs in eval mode under ``no_grad``.
        model: train this model instead of building ``config.model`` (not saved as a checkpoint
            that :func:`load_checkpoint` can rebuild unless it came from :func:`jmlkit.models.build_model`).
        train_data, val_data, eval_data, unlabeled_data: data sets to use instead of the ones
            ``config.dataset`` names (items ``{"image", "label", ["soft"]}``).
        progress: tqdm progress bars (the notebook kind inside Jupyter), on rank 0 only.
        callback: called with each history row (a dict) at the end of every epoch.

    Returns:
        :class:`FitResult` ``(model, history, metrics, run_dir, config)``.
    """
    if config is None:
        config = TrainConfig()
    elif isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"Expected `config` to be a TrainConfig or a dict, but got {type(config).__name__}.")
    config = config.replace()  # validated copy
    dist_info = _setup_distributed(config.device)
    try:
        with _runtime(config):
            return _fit(config, dist_info, teacher=teacher, model=model, train_data=train_data, val_data=val_data,
                        eval_data=eval_data, unlabeled_data=unlabeled_data, progress=progress, callback=callback)
    finally:
        if dist_info.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _fit(
    config: TrainConfig,
    dist_info: _Dist,
    *,
    teacher: Any,
    model: nn.Module | None,
    train_data: Dataset | None,
    val_data: Dataset | None,
    eval_data: Dataset | None,
    unlabeled_data: Dataset | None,
    progress: bool,
    callback: Callable[[dict[str, Any]], None] | None,
) -> FitResult:
    device = _resolve_device(config.device, dist_info.local_rank if dist_info.enabled else None)
    show = progress and dist_info.is_main
    t_start = time.perf_counter()

    # --- teacher first: loading it (random init + load) must not shift the run's random stream
    kd_teacher = _resolve_teacher(config, teacher)

    # --- data
    def dataset(split: str | None, given: Dataset | None, limit: int | None) -> Dataset | None:
        if given is not None:
            return given
        if split is None:
            return None
        return _limit(make_dataset(config.dataset, split, **config.dataset_kwargs), limit)

    train_full = dataset(config.train_split, train_data, config.train_limit)
    assert train_full is not None
    val_set = dataset(config.val_split, val_data, config.eval_limit)
    eval_set = dataset(config.eval_split, eval_data, config.eval_limit)
    labeled, rest = _labeled_split(train_full, config.labeled_fraction, config.seed)
    unlabeled = None
    if config.labels == "ssl":
        unlabeled = unlabeled_data
        if unlabeled is None and config.unlabeled_split is not None:
            unlabeled = dataset(config.unlabeled_split, None, config.train_limit)
        if unlabeled is None:
            unlabeled = rest
        if unlabeled is None or len(unlabeled) == 0:
            raise ValueError(
                "Expected unlabelled data for labels='ssl' (labeled_fraction < 1, `unlabeled_split` or "
                f"`unlabeled_data`), but got none (labeled_fraction={config.labeled_fraction})."
            )
    base = _base_dataset(train_full)
    num_classes = _num_classes_of(model, train_full)
    if num_classes is None:
        raise ValueError("Expected the training data set to have a `num_classes` attribute, but it has none.")
    ignore_index = getattr(base, "ignore_index", config.ignore_index)
    first = train_full[0]
    in_channels = int(first["image"].shape[0])
    if config.labels == "soft" and "soft" not in first:
        raise ValueError(f"Expected items with a 'soft' label for labels='soft', but data set {type(base).__name__} has none.")

    # --- model, seeded
    _seed_everything(config.seed)
    spec = _model_spec(config, num_classes, in_channels)
    if model is None:
        model = _build_from_spec(spec)
    model = model.to(device)
    if kd_teacher is not None:
        kd_teacher = kd_teacher.to(device).eval()
        for p in kd_teacher.parameters():
            p.requires_grad_(False)
    ema_teacher = None
    if config.labels == "ssl" and config.ssl_method == "ema":
        ema_teacher = copy.deepcopy(model).eval()
        for p in ema_teacher.parameters():
            p.requires_grad_(False)
    net: nn.Module = model
    if dist_info.enabled:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    # --- loss, optimiser, schedule
    loss_fn = make_loss(config.loss, ignore_index=ignore_index, sync_distributed=dist_info.enabled, **config.loss_kwargs).to(device)
    loader = _train_loader(labeled, config.batch_size, dist_info, config, config.seed)
    u_loader = None
    if unlabeled is not None:
        u_loader = _train_loader(unlabeled, config.unlabeled_batch_size or config.batch_size, dist_info, config, config.seed + 1)
    if config.steps_per_epoch is not None:
        steps_per_epoch = config.steps_per_epoch
    elif u_loader is not None:
        steps_per_epoch = max(len(u_loader), 1)
    else:
        steps_per_epoch = max(len(loader), 1)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup=config.warmup, schedule=config.schedule, power=config.poly_power)
    )
    use_scaler = config.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    aug_gen = torch.Generator().manual_seed(config.seed * 1000 + 17 + dist_info.rank)

    # --- run folder
    run_dir = Path(config.out) if config.out is not None else None
    if run_dir is not None and dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(run_dir / "config.json", config.to_json())

    eval_kwargs = dict(num_classes=num_classes, ignore_index=ignore_index, n_bins=config.n_bins,
                       batch_size=config.eval_batch_size, device=device, amp=config.amp)

    def make_target(batch: Mapping[str, torch.Tensor], images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        from jmlkit import targets as T

        labels = batch["label"].to(device, non_blocking=True).long()
        mode = config.labels
        if mode in ("hard", "ssl"):
            return labels, None
        if mode == "ls":
            if config.smoothing == "boundary":
                st = T.boundary_label_smoothing(labels, num_classes, config.epsilon, kernel_size=config.boundary_kernel, ignore_index=ignore_index)
            else:
                st = T.label_smoothing(labels, num_classes, config.epsilon, ignore_index=ignore_index)
            return st.soft, st.mask
        if mode == "kd":
            assert kd_teacher is not None
            with torch.no_grad(), _autocast(device, config.amp):
                t_logits = kd_teacher(images)
            if t_logits.shape[1] != num_classes:
                raise ValueError(f"Expected the teacher to output {num_classes} classes, but it gives {t_logits.shape[1]}.")
            st = T.distillation_targets(t_logits.float(), temperature=config.kd_temperature, target=labels,
                                        label_weight=config.kd_label_weight, ignore_index=ignore_index)
            return st.soft, st.mask
        # soft
        soft = batch["soft"].to(device, non_blocking=True).float()
        mask = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
        return soft, mask

    def compute_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        logits = logits.float()
        if mask is None:
            return loss_fn(logits, target)
        return loss_fn(logits, target, mask=mask)

    history: list[dict[str, Any]] = []
    # pseudo-labels of a network that has not learnt anything yet are noise: start them after a warm-up
    ssl_start = int(math.ceil(config.ssl_warmup * total_steps))
    l_iter = _Cycle(loader)
    u_iter = _Cycle(u_loader) if u_loader is not None else None
    step = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        t_epoch = time.perf_counter()
        sums = {"loss": 0.0, "sup": 0.0, "unsup": 0.0, "mask": 0.0}
        bar = _progress(range(steps_per_epoch), show, desc=f"epoch {epoch}/{config.epochs}", leave=False)
        for _ in bar:
            batch = l_iter.next()
            images = batch["image"].to(device, non_blocking=True)
            if config.labels == "ssl" and step >= ssl_start:
                assert u_iter is not None
                u_images = u_iter.next()["image"].to(device, non_blocking=True)
                weak = _weak_view(u_images, aug_gen)
                strong = _strong_view(weak, aug_gen)
                pseudo_model = ema_teacher if ema_teacher is not None else model
                with torch.no_grad(), _autocast(device, config.amp):
                    was = pseudo_model.training
                    pseudo_model.eval()
                    p_logits = pseudo_model(weak)
                    pseudo_model.train(was)
                from jmlkit import targets as T

                pseudo = T.pseudo_labels(p_logits.float(), threshold=config.ssl_threshold, soft=config.ssl_soft,
                                         temperature=config.ssl_temperature)
                with _autocast(device, config.amp):
                    all_logits = net(torch.cat([images, strong]))
                logits, u_logits = all_logits[: images.shape[0]], all_logits[images.shape[0]:]
                target, mask = make_target(batch, images)
                sup = compute_loss(logits, target, mask)
                unsup = compute_loss(u_logits, pseudo.soft, pseudo.mask)
                loss = sup + config.ssl_weight * unsup
                sums["sup"] += float(sup.detach())
                sums["unsup"] += float(unsup.detach())
                sums["mask"] += float(pseudo.mask.float().mean())
            else:
                target, mask = make_target(batch, images)
                with _autocast(device, config.amp):
                    logits = net(images)
                loss = compute_loss(logits, target, mask)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"Loss became {float(loss)} at epoch {epoch}, step {step}; lower `lr` or check the data.")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            if ema_teacher is not None:
                _ema_update(ema_teacher, model, config.ema_decay)
            step += 1
            sums["loss"] += float(loss.detach())
            if show and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        keys = ["loss", "sup", "unsup", "mask"] if config.labels == "ssl" else ["loss"]
        means = _all_reduce_mean([sums[k] / steps_per_epoch for k in keys], dist_info, device if dist_info.enabled and device.type == "cuda" else torch.device("cpu"))
        row: dict[str, Any] = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], "train_loss": means[0]}
        if config.labels == "ssl":
            row.update(sup_loss=means[1], unsup_loss=means[2], mask_ratio=means[3])
        row["time_s"] = time.perf_counter() - t_epoch
        if val_set is not None and (epoch % config.val_every == 0 or epoch == config.epochs):
            val = _scalars(evaluate(model, val_set, **eval_kwargs))
            row.update({f"val_{k}": v for k, v in val.items()})
        history.append(row)
        if dist_info.is_main:
            if show:
                summary = ", ".join(f"{k}={row[k]:.4f}" for k in ("train_loss", "val_mIoU_D", "val_ECE_D") if k in row)
                from tqdm.auto import tqdm

                tqdm.write(f"epoch {epoch}/{config.epochs}: {summary}")
            if run_dir is not None:
                _atomic_write(run_dir / "history.csv", pd.DataFrame(history).to_csv(index=False))
        if callback is not None:
            callback(dict(row))

    train_time = time.perf_counter() - t_start
    model.eval()
    metrics: dict[str, Any] = {}
    if eval_set is not None:
        metrics.update(evaluate(model, eval_set, **eval_kwargs))
    metrics["train_time_s"] = train_time
    metrics["epochs"] = config.epochs
    metrics["steps"] = step
    metrics = _jsonable(metrics)
    if run_dir is not None and dist_info.is_main:
        if config.save_checkpoint:
            save_checkpoint(run_dir / "model.pt", model, spec, config=config, epoch=config.epochs)
        _atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    return FitResult(model=model, history=pd.DataFrame(history), metrics=metrics, run_dir=run_dir, config=config)
