"""Training engine: one :func:`fit` for every label mode.

============================  =====================================================================
module                        owns
============================  =====================================================================
:mod:`~.config`               :class:`TrainConfig`, in sections (data, model, labels, loss,
                              optimisation, runtime) whose fields carry their own checks
:mod:`~.registry`             the label modes by name (:data:`OBJECTIVES`), imported by the config
                              and filled by the objectives; it imports nothing of jmlkit
:mod:`~.objectives`           one objective per label mode (:class:`Hard`, :class:`Smoothing`,
                              :class:`Distillation`, :class:`SoftLabels`, :class:`SemiSupervised`),
                              registered by name
:mod:`~.loop`                 :func:`fit`: the loop, the run folder
:mod:`~.checks`               :func:`preflight`: what a user can get wrong, checked before any work (once:
                              ``fit(config, checked=preflight(config))``), and the teacher loaded
:mod:`~.runfolder`            run folders built aside and moved into place when complete;
                              :func:`config_hash`, the completion check of every reader
:mod:`~.evaluation`           :func:`evaluate` (accuracy + calibration), :func:`predict`
:mod:`~.checkpoints`          ``model.pt`` and reading a complete run folder back
:mod:`~.data`                 data sets by name, the labelled subset, loaders
:mod:`~.optim`                loss by name, AdamW, the learning-rate schedule
:mod:`~.distributed`          DistributedDataParallel under ``torchrun``
:mod:`~.runtime`              device choice, threads, determinism, autocast, seeding
============================  =====================================================================
"""
from jmlkit.engine.checkpoints import load_checkpoint, load_run, read_checkpoint, save_checkpoint
from jmlkit.engine.config import SECTIONS, TrainConfig
from jmlkit.engine.data import make_dataset
from jmlkit.engine.evaluation import Prediction, evaluate, predict
from jmlkit.engine.loop import FitResult, TrainingStopped, fit
from jmlkit.engine.objectives import (OBJECTIVES, Distillation, Hard, Objective, ObjectiveContext, SemiSupervised,
                                      Smoothing, SoftLabels, build_objective, label_modes, register_objective)
from jmlkit.engine.optim import lr_factor, make_loss
from jmlkit.engine.checks import Preflight, preflight
from jmlkit.engine.runfolder import HASH_EXCLUDE, config_hash, is_complete, require_complete
from jmlkit.engine.runtime import resolve_device

#: The label modes known when jmlkit was imported (a registered objective adds one: :func:`label_modes`).
LABEL_MODES = label_modes()

__all__ = [
    "TrainConfig", "SECTIONS", "fit", "FitResult", "TrainingStopped", "evaluate", "predict", "Prediction",
    "preflight", "Preflight", "config_hash", "HASH_EXCLUDE", "is_complete", "require_complete",
    "load_checkpoint", "read_checkpoint", "save_checkpoint", "load_run", "make_dataset", "make_loss", "lr_factor", "resolve_device",
    "Objective", "ObjectiveContext", "Hard", "Smoothing", "Distillation", "SoftLabels", "SemiSupervised",
    "OBJECTIVES", "register_objective", "label_modes", "build_objective", "LABEL_MODES",
]
