r"""The configuration of a training run, in sections whose fields carry their own checks.

:class:`TrainConfig` is one flat, JSON-serialisable dataclass (``config.json`` of a run folder,
``--kd-temperature`` on the command line, ``cfg.replace(epsilon=0.2)`` in a notebook), built from
six sections, each a dataclass that owns its fields:

=================  ==========================================================================
section            fields
=================  ==========================================================================
``data``           data set, its options, splits, limits, labelled fraction, ``ignore_index``
``model``          architecture or preset, encoder, encoder weights, model options
``labels``         the label mode (an objective of :mod:`jmlkit.engine.objectives`) and its options
``loss``           the loss name of :func:`jmlkit.losses.get_loss` and its options
``optimisation``   epochs, batch size, AdamW, warm-up and decay, gradient clipping
``runtime``        seed, device, precision, threads, evaluation, run folder
=================  ==========================================================================

Every field is declared with :func:`option`, which stores its help text and its check (a
function of ``(name, value)`` from :mod:`jmlkit._checks` returning the clean value).
:meth:`TrainConfig.sections` gives the nested view, :meth:`TrainConfig.from_profile` a profile of
:mod:`jmlkit.profiles` with overrides.

Example:
    >>> cfg = TrainConfig(labels="ls", epsilon=0.2)
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> sorted(cfg.sections())
    ['data', 'labels', 'loss', 'model', 'optimisation', 'runtime']
    >>> cfg.sections()["labels"]["epsilon"]
    0.2
    >>> TrainConfig(labels="smooth")
    Traceback (most recent call last):
    ...
    ValueError: Expected `labels` to be one of ('hard', 'ls', 'kd', 'ssl', 'soft'), but got 'smooth'.
    >>> TrainConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: Expected `epochs` to be an int >= 1, but got 0.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from jmlkit._checks import (check_bool, check_choice, check_ignore_index, check_int, check_mapping, check_real,
                            check_str)
from jmlkit.engine.registry import label_modes

__all__ = ["TrainConfig", "SECTIONS", "option", "SMOOTHINGS", "SSL_METHODS", "SCHEDULES", "KD_FORMS"]

SMOOTHINGS = ("uniform", "boundary")
SSL_METHODS = ("fixmatch", "ema")
SCHEDULES = ("poly", "cosine", "constant")
KD_FORMS = ("terms", "mixed")

Check = Callable[[str, Any], Any]


def option(default: Any = dataclasses.MISSING, help: str = "", *, check: Check | None = None,
           factory: Callable[[], Any] | None = None, choices: tuple[Any, ...] | None = None) -> Any:
    """A config field with its help text and its check (``check(name, value) -> clean value``)."""
    metadata: dict[str, Any] = {"help": help, "check": check}
    if choices is not None:
        metadata["choices"] = choices
        metadata["check"] = check or (lambda name, value: check_choice(name, value, choices))
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# --- field checks (each: (name, value) -> clean value)
_pos_int = partial(check_int, low=1)
_opt_pos_int = partial(check_int, low=1, optional=True)
_nonneg_int = partial(check_int, low=0)
_unit = partial(check_real, low=0.0, high=1.0)
_positive = partial(check_real, low=0.0, low_open=True)
_nonneg = partial(check_real, low=0.0)
_opt_str = partial(check_str, optional=True)
_dict = check_mapping


def _odd_pos_int(name: str, value: Any) -> int:
    value = check_int(name, value, low=1)
    if value % 2 == 0:
        raise ValueError(f"Expected `{name}` to be an odd positive int, but got {value}.")
    return value


def _label_mode(name: str, value: Any) -> str:
    return check_choice(name, value, label_modes())  # the registry of jmlkit.engine.registry


@dataclass
class _Section:
    """Base of the sections: subclasses declare fields with :func:`option`."""

    title: ClassVar[str] = ""


@dataclass
class DataSection(_Section):
    title: ClassVar[str] = "data"
    dataset: str = option("digits", "data set of jmlkit.data.get_dataset: 'digits' (DigitScenes), 'brain' (BrainTissueSlices), 'voc' or 'cityscapes' (SegmentationFolder, needs dataset_kwargs root=...)", check=check_str)
    dataset_kwargs: dict[str, Any] = option(help="keyword arguments of the data set class, for every split (JSON or k=v,k=v)", check=_dict, factory=dict)
    train_split: str = option("train", "split to train on", check=check_str)
    val_split: str | None = option("val", "split evaluated after every `val_every` epochs ('none' to skip)", check=_opt_str)
    eval_split: str | None = option("test", "split of the final metrics ('none' to skip)", check=_opt_str)
    unlabeled_split: str | None = option(None, "extra unlabelled split for labels=ssl (e.g. 'unlabeled'); default: the unlabelled rest of the train split", check=_opt_str)
    train_limit: int | None = option(None, "use only the first N training items", check=_opt_pos_int)
    eval_limit: int | None = option(256, "use only the first N items of the val/eval splits", check=_opt_pos_int)
    labeled_fraction: float = option(1.0, "fraction of the training items that keep their labels (a seeded subset); with labels=ssl the rest is the unlabelled data", check=partial(check_real, low=0.0, high=1.0, low_open=True))
    ignore_index: int | None = option(255, "label value of pixels that do not count (the data set's own `ignore_index` wins)", check=lambda name, v: check_ignore_index(v, name))


@dataclass
class ModelSection(_Section):
    title: ClassVar[str] = "model"
    model: str = option("small", "architecture ('small-unet', 'unet', 'fpn', 'deeplabv3plus', 'segformer', ...) or preset ('tiny', 'student', 'small', 'teacher', 'smp-student', 'smp-teacher', ...)", check=check_str)
    encoder: str | None = option(None, "SMP encoder (default resnet18 or the preset's)", check=_opt_str)
    encoder_weights: str | None = option(None, "pretrained encoder weights: None, 'imagenet' (local cache only) or a local file", check=_opt_str)
    model_kwargs: dict[str, Any] = option(help="extra model arguments, e.g. {\"width\": 8} for the small UNet", check=_dict, factory=dict)


@dataclass
class LabelSection(_Section):
    title: ClassVar[str] = "labels"
    labels: str = option("hard", "label mode: an objective of jmlkit.engine.objectives (hard, ls, kd, ssl, soft)", check=_label_mode)
    epsilon: float = option(0.5, "label-smoothing epsilon (labels=ls; the paper's boundary smoothing: 0.5)", check=_unit)
    smoothing: str = option("boundary", "label smoothing kind (labels=ls): 'boundary' (the paper's: pixels whose window holds another class) or 'uniform' (every pixel)", choices=SMOOTHINGS)
    boundary_kernel: int = option(3, "window size of boundary label smoothing (odd; the paper's: 3)", check=_odd_pos_int)
    teacher: str | None = option(None, "teacher checkpoint (model.pt or a run folder) for labels=kd", check=_opt_str)
    kd_temperature: float = option(1.0, "temperature T of the teacher's softmax (labels=kd)", check=_positive)
    kd_form: str = option("terms", "distillation objective (labels=kd): 'terms' (the paper's: jmlkit.losses.JMLDistillationLoss, hard-label and teacher terms of CE/KL and JML weighted apart) or 'mixed' (ours: one target (1-w) teacher + w one-hot through `loss`)", choices=KD_FORMS)
    kd_label_weight: float = option(0.5, "weight of the hard labels (labels=kd): of the hard-label terms ('terms'), or w of the one-hot mixed into the teacher's probabilities ('mixed')", check=_unit)
    kd_teacher_weight: float = option(0.5, "weight of the teacher's terms (labels=kd, kd_form='terms')", check=_unit)
    ssl_method: str = option("fixmatch", "semi-supervised method (labels=ssl)", choices=SSL_METHODS)
    ssl_threshold: float = option(0.9, "confidence threshold of pseudo-labels (labels=ssl)", check=_unit)
    ssl_soft: bool = option(True, "soft (probabilities) or hard (one-hot) pseudo-labels (labels=ssl)", check=check_bool)
    ssl_weight: float = option(1.0, "weight lambda of the unlabelled loss (labels=ssl)", check=_nonneg)
    ssl_temperature: float = option(1.0, "temperature of the pseudo-label softmax (labels=ssl)", check=_positive)
    ssl_warmup: float = option(0.0, "fraction of all steps trained on the labelled data alone before pseudo-labels start (labels=ssl)", check=_unit)
    ema_decay: float = option(0.99, "EMA decay of the mean teacher (ssl_method=ema)", check=partial(check_real, low=0.0, high=1.0, high_open=True))
    unlabeled_batch_size: int | None = option(None, "batch size of unlabelled data (default: batch_size)", check=_opt_pos_int)


@dataclass
class LossSection(_Section):
    title: ClassVar[str] = "loss"
    loss: str = option("ce+jml", "loss name for jmlkit.losses.get_loss: ce, jml, sjl, dml, lovasz, ce+jml, ...", check=check_str)
    loss_kwargs: dict[str, Any] = option(help="keyword arguments of the loss (e.g. {\"ce_weight\": 0.5})", check=_dict, factory=dict)


@dataclass
class OptimisationSection(_Section):
    title: ClassVar[str] = "optimisation"
    epochs: int = option(6, "number of epochs", check=_pos_int)
    steps_per_epoch: int | None = option(None, "optimisation steps per epoch (default: one pass over the labelled data; with labels=ssl, over the unlabelled data)", check=_opt_pos_int)
    batch_size: int = option(16, "global batch size (split across distributed ranks)", check=_pos_int)
    lr: float = option(3e-3, "peak learning rate of AdamW", check=_positive)
    weight_decay: float = option(1e-4, "AdamW weight decay", check=_nonneg)
    decoder_lr_mult: float = option(1.0, "learning-rate multiplier of every parameter outside `model.encoder` (the paper: 10 with a pretrained encoder)", check=_positive)
    no_decay_1d: bool = option(False, "no weight decay on 1-D parameters (biases, norms; the paper's setting)", check=check_bool)
    warmup: float = option(0.05, "linear warm-up, as a fraction of all steps", check=_unit)
    schedule: str = option("poly", "learning-rate decay after the warm-up", choices=SCHEDULES)
    poly_power: float = option(0.9, "power of the poly schedule", check=_positive)
    grad_clip: float | None = option(None, "clip the gradient norm to this value", check=partial(check_real, low=0.0, low_open=True, optional=True))


@dataclass
class RuntimeSection(_Section):
    title: ClassVar[str] = "runtime"
    seed: int = option(0, "random seed (model init, shuffling, subsets, augmentations)", check=_nonneg_int)
    device: str = option("auto", "'auto' (cuda when available), 'cpu', 'cuda', 'cuda:1', ...", check=check_str)
    amp: bool = option(True, "mixed precision (bfloat16/float16 autocast) on CUDA; ignored on CPU", check=check_bool)
    channels_last: bool = option(True, "the model's convolutions in the channels-last memory layout (NHWC): faster on CPU (oneDNN) and with CUDA tensor cores; the same numbers as the default layout up to rounding, so not part of the configuration's hash", check=check_bool)
    deterministic: bool = option(True, "torch.use_deterministic_algorithms(warn_only=True) during the run", check=check_bool)
    num_threads: int | None = option(None, "torch CPU threads during the run (default: torch's)", check=_opt_pos_int)
    num_workers: int = option(0, "DataLoader worker processes", check=_nonneg_int)
    eval_batch_size: int = option(64, "batch size of evaluation", check=_pos_int)
    val_every: int = option(1, "evaluate the val split every N epochs (and after the last)", check=_pos_int)
    n_bins: int = option(15, "confidence bins of the calibration metrics", check=_pos_int)
    out: str | None = option(None, "run folder to write (config.json, history.csv, metrics.json, model.pt, recipe.json), built aside and moved into place when complete; it must be new or empty unless `overwrite`; None: nothing written", check=_opt_str)
    overwrite: bool = option(False, "replace the run already in `out` when the new run finishes (an interrupted run keeps the old one); the command line takes it from its own options only, never from a --config file", check=check_bool)
    save_checkpoint: bool = option(True, "write model.pt into the run folder", check=check_bool)
    replay: str | None = option(None, "a folder of committed run records (the `results` profile: results/full/records): a run of this configuration is read from there instead of trained, one that is not there is an error, and fit refuses to train; not part of the configuration's hash", check=_opt_str)


#: The sections in the order of their fields.
SECTIONS: tuple[type[_Section], ...] = (DataSection, ModelSection, LabelSection, LossSection, OptimisationSection, RuntimeSection)


@dataclass
class TrainConfig(RuntimeSection, OptimisationSection, LossSection, LabelSection, ModelSection, DataSection):
    """Every option of :func:`jmlkit.engine.fit`, with defaults; JSON-serialisable.

    The fields are those of the six sections (:data:`SECTIONS`), flat: ``TrainConfig(labels="ls",
    epsilon=0.2)``. The defaults are the library's; the named profiles (``smoke``, ``quick``,
    ``full``) of :mod:`jmlkit.profiles` come from :meth:`from_profile`. Every field is checked when
    the config is made or :meth:`replace`-d: a wrong type is a ``TypeError``, a wrong value a
    ``ValueError``, and the message names the field.
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> TrainConfig:
        """Run every field's check, storing the clean value. Returns ``self``."""
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))
        return self

    # ------------------------------------------------------------------ views
    @classmethod
    def section_of(cls, name: str) -> str:
        """The title of the section that owns field ``name``."""
        for section in SECTIONS:
            if name in {f.name for f in dataclasses.fields(section)}:
                return section.title
        raise ValueError(f"Expected `name` to be a TrainConfig field, but got {name!r}.")

    def sections(self) -> dict[str, dict[str, Any]]:
        """The options grouped by section: ``{"data": {...}, "model": {...}, ...}``."""
        flat = self.to_dict()
        return {s.title: {f.name: flat[f.name] for f in dataclasses.fields(s)} for s in SECTIONS}

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable flat dict of every option."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (``kwargs`` go to :func:`json.dumps`)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (a flat dict, or the nested one of :meth:`sections`); unknown keys raise ``ValueError``."""
        if not isinstance(data, Mapping):
            raise TypeError(f"Expected a dict of TrainConfig options, but got {type(data).__name__}.")
        titles = {s.title for s in SECTIONS}
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if key in titles and isinstance(value, Mapping):  # a section (field values are never dicts there)
                flat.update(value)
            else:
                flat[key] = value
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(flat) - names)
        if unknown:
            raise ValueError(f"Expected TrainConfig options among {sorted(names)}, but got unknown {unknown}.")
        return cls(**flat)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a ``config.json`` written by :func:`jmlkit.engine.fit` (or by hand)."""
        with open(path, encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as err:
                raise ValueError(f"Expected {str(path)!r} to hold a JSON object of TrainConfig options, but it is not JSON ({err}).") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ profiles
    @classmethod
    def from_profile(cls, profile: str, *, keep_none: bool = False, **overrides: Any) -> TrainConfig:
        """The training options of a profile of :mod:`jmlkit.profiles`, with ``overrides``.

        ``None`` overrides are dropped (so a notebook's ``epochs = None`` keeps the profile's) unless
        ``keep_none`` (the command line's ``--val-split none`` means no validation split);
        ``dataset_kwargs``/``model_kwargs``/``loss_kwargs`` overrides are merged into the profile's;
        another data set than the profile's starts from its own defaults (the profile's scene
        options belong to the digit scenes), and VOC/Cityscapes evaluate on ``val`` (their test
        labels are not public).

        Example:
            >>> cfg = TrainConfig.from_profile("quick", epochs=None, lr=1e-3)
            >>> cfg.model, cfg.epochs, cfg.lr
            ('small', 10, 0.001)
            >>> TrainConfig.from_profile("quick", dataset="brain").dataset_kwargs
            {}
        """
        from jmlkit.profiles import train_options

        options = train_options(profile)
        if overrides.get("dataset") not in (None, options["dataset"]):
            options["dataset_kwargs"] = {}
            if overrides["dataset"] in ("voc", "cityscapes"):
                options["eval_split"] = "val"
        for key, value in overrides.items():
            if value is None and not keep_none:
                continue
            if key.endswith("_kwargs") and isinstance(value, Mapping):
                options[key] = {**options.get(key, {}), **value}
            else:
                options[key] = value
        return cls.from_dict(options)
