"""Checks before a run: everything a user can get wrong, found before any data is built or any step trained.

:func:`preflight` is the first thing :func:`jmlkit.engine.fit` does (and ``python -m jmlkit train``,
which turns its errors into one line and exit code 2). It checks, cheaply:

==============  ============================================================================
what            checked
==============  ============================================================================
``out``         not a file; new or empty unless ``overwrite`` (then: holding a run and
                nothing else); its parent writable (:func:`~jmlkit.engine.runfolder.check_out`)
``device``      exists (``cuda`` without CUDA, ``cuda:3`` on a one-GPU machine)
``model``       an architecture or preset of :func:`jmlkit.models.build_model`; ``encoder`` known to
                SMP, ``encoder_weights`` on this machine, ``model_kwargs`` taken by the model and
                each only where the model uses it (:func:`jmlkit.models.check_model_options`)
``loss``        a loss of :func:`jmlkit.losses.get_loss` that takes ``loss_kwargs``
``dataset``     a known data set; ``dataset_kwargs`` and the splits as its constructor checks them
                (:func:`jmlkit.data.check_dataset_options`: nothing rendered); for the folder data
                sets (VOC, Cityscapes) the ``root`` folder and the splits' files
``teacher``     given when the label mode needs one; a readable checkpoint or complete run
                folder (loaded here, once: eval mode, frozen); the data set's class count and
                input channels
==============  ============================================================================

``fit(config, checked=preflight(config))`` trains with what was checked (``checked.teacher``) and checks
nothing again; :meth:`Preflight.require_for` refuses a ``checked`` of another config.

Errors are ``ValueError``, ``TypeError`` or ``FileNotFoundError`` whose message names the option
and the path. Nothing is written; partial folders of dead runs next to ``out`` are removed.

Example:
    >>> from jmlkit.engine import TrainConfig
    >>> checked = preflight(TrainConfig.from_profile("smoke"))
    >>> checked.device.type, checked.num_classes, checked.teacher is None
    ('cpu', 11, True)
    >>> checked.require_for(TrainConfig.from_profile("smoke", epochs=3))
    Traceback (most recent call last):
    ...
    ValueError: Expected `checked` to be the preflight of this config, but it checked another one (differing in ['epochs']).
    >>> preflight(TrainConfig.from_profile("smoke", model="nosuch"))
    Traceback (most recent call last):
    ...
    ValueError: Expected `model` to be one of ['small-unet', ...], but got 'nosuch'.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from jmlkit._checks import check_choice
from jmlkit.engine.config import TrainConfig
from jmlkit.engine.registry import OBJECTIVES
from jmlkit.engine.runfolder import check_out
from jmlkit.engine.runtime import resolve_device

__all__ = ["Preflight", "preflight"]


@dataclass
class Preflight:
    """What :func:`preflight` found.

    Attributes:
        out: the run folder as an absolute path (``None``: nothing is written).
        device: the device the run trains on.
        teacher: the teacher model when the label mode needs one (loaded from its checkpoint, in eval mode,
            frozen; or the model given), else ``None``.
        num_classes, in_channels: of the training data, when known without building it.
        config: a copy of the config that was checked.
        skipped: the checks skipped for what was given: ``"model"`` (a ``model``), ``"dataset"`` (``train_data``).
    """

    out: Path | None
    device: torch.device
    teacher: nn.Module | None
    num_classes: int | None
    in_channels: int | None
    config: TrainConfig | None = None
    skipped: tuple[str, ...] = ()

    def require_for(self, config: TrainConfig, *, teacher: Any = None, model: nn.Module | None = None,
                    train_data: Dataset | None = None) -> None:
        """Check that this is the preflight of ``config`` and of what :func:`~jmlkit.engine.fit` was given with it.

        Raises ``ValueError`` when ``config`` differs from the checked one in any option, when a ``teacher`` other
        than :attr:`teacher` is given (the checked one is used), or when a check was skipped for a ``model`` or
        ``train_data`` that is not given now; ``TypeError`` when ``config`` is not a :class:`TrainConfig`.
        """
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Expected `config` to be a TrainConfig, but got {type(config).__name__}.")
        if self.config is None:
            raise ValueError("Expected `checked` to be the preflight of this config, but it records no config "
                             "(made by hand?); call preflight(config).")
        if self.config != config:
            theirs, ours = self.config.to_dict(), config.to_dict()
            differ = [k for k in ours if theirs.get(k) != ours[k]]
            raise ValueError(f"Expected `checked` to be the preflight of this config, but it checked another one "
                             f"(differing in {differ}).")
        if teacher is not None and teacher is not self.teacher:
            shown = repr(str(teacher)) if isinstance(teacher, (str, os.PathLike)) else type(teacher).__name__
            raise ValueError(f"Expected `teacher` to be None when `checked` is given (its teacher is used), but got {shown}.")
        for name, given, what in (("model", model, "model"), ("train_data", train_data, "dataset")):
            if what in self.skipped and given is None:
                raise ValueError(f"Expected `{name}` to be given, as it was to the preflight of `checked` (which "
                                 f"skipped the {what} checks), but got None: the config's {what} is not checked.")


def preflight(config: TrainConfig | Mapping[str, Any], *, teacher: nn.Module | str | os.PathLike | None = None,
              model: nn.Module | None = None, train_data: Dataset | None = None) -> Preflight:
    """Check that ``config`` can run (see the module's table) without building its data or training.

    Args:
        config: a :class:`~jmlkit.engine.TrainConfig` (or a dict of its options).
        teacher, model, train_data: as given to :func:`~jmlkit.engine.fit` (a given ``model`` skips the model
            name check, given ``train_data`` the data set checks).

    Returns:
        :class:`Preflight`; ``fit(config, checked=...)`` trains with it (nothing checked twice, the teacher
        loaded once).

    Raises:
        ValueError, TypeError, FileNotFoundError: with a message naming the option and the path.
    """
    if isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"Expected `config` to be a TrainConfig or a dict, but got {type(config).__name__}.")
    if config.replay is not None:
        raise ValueError(f"Expected `replay` to be None for a run that trains, but got {config.replay!r}: a replayed "
                         "configuration (the `results` profile) reads finished runs from its records and trains "
                         "nothing; use profile 'full' (or 'quick') to train it.")
    out = check_out(config.out, overwrite=config.overwrite, clean=int(os.environ.get("RANK", "0")) == 0)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")) if distributed else None)
    if model is None:
        _check_model(config)
    _check_loss(config)
    num_classes, in_channels = _check_data(config, model, train_data)
    teacher_model = _check_teacher(config, teacher, num_classes, in_channels)
    skipped = tuple(what for what, given in (("model", model), ("dataset", train_data)) if given is not None)
    return Preflight(out, device, teacher_model, num_classes, in_channels, config.replace(), skipped)


def _check_model(config: TrainConfig) -> None:
    """The model options as :func:`jmlkit.models.check_model_options` checks them (nothing built, nothing read), with
    the error naming the option: an unknown ``model``, an ``encoder`` SMP does not know, an ``encoder``,
    ``encoder_weights`` or ``model_kwargs`` the model does not use, weights not on this machine."""
    from jmlkit.models import _SMALL_UNET_NAMES, PRESETS, SMP_ARCHITECTURES, _norm_name, check_model_options, list_models

    if config.model not in PRESETS and _norm_name(config.model) not in (*_SMALL_UNET_NAMES, *SMP_ARCHITECTURES):
        raise ValueError(f"Expected `model` to be one of {list_models()}, but got {config.model!r}.")
    try:
        check_model_options(config.model, config.encoder, encoder_weights=config.encoder_weights, **config.model_kwargs)
    except (ValueError, TypeError, FileNotFoundError) as err:
        if str(err).startswith(("Expected `encoder`", "Expected `encoder_weights`")):
            raise  # names its option already
        where = "`encoder_weights`" if isinstance(err, FileNotFoundError) else "`model_kwargs`"
        raise type(err)(f"{where} of model={config.model!r}: {err}") from err


def _check_loss(config: TrainConfig) -> None:
    from jmlkit.engine.objectives import OBJECTIVES, Distillation, ObjectiveContext, _distillation_loss
    from jmlkit.engine.optim import make_loss

    given = f" with loss_kwargs {config.loss_kwargs}" if config.loss_kwargs else ""
    objective = OBJECTIVES.get(config.labels)
    try:
        make_loss(config.loss, ignore_index=config.ignore_index, **config.loss_kwargs)
        if objective is not None and issubclass(objective, Distillation) and config.kd_form == "terms":
            _distillation_loss(ObjectiveContext(config, nn.Identity(), 2, config.ignore_index, torch.device("cpu")))
    except (ValueError, TypeError) as err:
        raise type(err)(f"`loss` = {config.loss!r}{given}: {err}") from err


def _check_data(config: TrainConfig, model: nn.Module | None, train_data: Dataset | None) -> tuple[int | None, int | None]:
    """``(num_classes, in_channels)`` of the training data, after checking the data set's name and its options for
    every split the run reads (:func:`jmlkit.data.check_dataset_options`: nothing rendered or read)."""
    from jmlkit.data import DATASETS, check_dataset_options

    if train_data is not None:
        from jmlkit.engine.data import num_classes_of

        return num_classes_of(model, train_data), None
    name = check_choice("dataset", config.dataset, DATASETS)
    splits = (config.train_split, config.val_split, config.eval_split, config.unlabeled_split)
    found: dict[str, Any] = {}
    for split in dict.fromkeys(s for s in splits if s is not None):
        try:
            found = check_dataset_options(name, split, **config.dataset_kwargs)
        except (ValueError, TypeError, FileNotFoundError) as err:
            if str(err).startswith("Expected `split`"):
                field = next(f for f in ("train_split", "val_split", "eval_split", "unlabeled_split")
                             if getattr(config, f) == split)
                raise type(err)(f"`{field}` of dataset={name!r}: {err}") from err
            raise type(err)(f"`dataset_kwargs` of dataset={name!r}: {err}") from err
    return found.get("num_classes"), found.get("in_channels")


def _check_teacher(config: TrainConfig, teacher: Any, num_classes: int | None, in_channels: int | None) -> nn.Module | None:
    """The teacher of a label mode that needs one: ``teacher`` (a model, used as it is) or the checkpoint ``teacher``
    or ``config.teacher`` names, loaded here (the run's only load) in eval mode and frozen; checked against the data."""
    from jmlkit.engine.checkpoints import load_checkpoint

    cls = OBJECTIVES.get(config.labels)
    if cls is None or not cls.needs_teacher:
        return None
    source = teacher if teacher is not None else config.teacher
    if source is None:
        raise ValueError(f"Expected a teacher for labels={config.labels!r} (`teacher`: a checkpoint, model.pt or a run "
                         "folder; or fit(teacher=model)), but got None.")
    if isinstance(source, nn.Module):
        model, where = source, "the teacher model"
    elif isinstance(source, (str, os.PathLike)):
        where = f"`teacher` = {str(source)!r}"
        try:
            model = load_checkpoint(source).requires_grad_(False)  # in eval mode
        except (ValueError, FileNotFoundError) as err:
            raise type(err)(f"`teacher` = {str(source)!r}: {err}") from err
    else:
        raise TypeError(f"Expected `teacher` to be an nn.Module or a checkpoint path, but got {type(source).__name__}.")
    spec = getattr(model, "jmlkit_spec", None) or {}
    for key, wanted, what in (("num_classes", num_classes, "classes"), ("in_channels", in_channels, "input channels")):
        have = spec.get(key, getattr(model, key, None))
        if isinstance(wanted, int) and isinstance(have, int) and have != wanted:
            raise ValueError(f"Expected the teacher ({where}) to have the {wanted} {what} of dataset={config.dataset!r}, "
                             f"but it has {have}.")
    return model
