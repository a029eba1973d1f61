r"""The training loop: :func:`fit` trains a model as a :class:`~jmlkit.engine.TrainConfig` says.

Every label mode runs the same loop::

    batch ──► objective(net, batch, step) ──► loss ──► AdamW step ──► LR schedule ──► objective.after_step
                 │ (jmlkit.engine.objectives: Hard · Smoothing · Distillation · SoftLabels · SemiSupervised)
                 └─ target from jmlkit.targets, loss from jmlkit.losses

Metrics come from :mod:`jmlkit.metrics` (accuracy and calibration, on a validation split every
``val_every`` epochs and on ``eval_split`` at the end). On the CPU, the same seed gives the same numbers.

Before anything is built, :func:`~jmlkit.engine.preflight` checks what a user can get wrong (the
output folder, device, model, loss, data set, teacher). A run with ``config.out`` writes its folder
(``config.json``, ``weights.json`` (what the model started from: random or which pretrained encoder),
``history.csv``, ``metrics.json``, ``model.pt``, ``evaluations.json`` (with ``evaluators``), and last the
completion marker ``recipe.json`` ``{"hash", "seed", "wall_time_s", "finished"}``) into a hidden sibling folder and renames it to
``out`` only when complete (:mod:`jmlkit.engine.runfolder`): an interrupted run (an exception,
Ctrl-C, ``kill -9``) leaves nothing that looks like a run, and with ``overwrite=True`` the previous
run in ``out`` stays until the new one is complete. Under ``torchrun --nproc_per_node=N`` the same
call trains with DistributedDataParallel (:mod:`jmlkit.engine.distributed`); only rank 0 writes.

Example:
    >>> from jmlkit.engine import TrainConfig, fit
    >>> cfg = TrainConfig.from_profile("smoke", labels="ls", epochs=1)
    >>> result = fit(cfg, progress=False)
    >>> list(result.history.columns[:4])
    ['epoch', 'step', 'lr', 'train_loss']
    >>> 0.0 <= result.metrics["mIoU_D"] <= 1.0 and 0.0 <= result.metrics["ECE_D"] <= 1.0
    True
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from jmlkit.engine import distributed as D
from jmlkit.engine.checkpoints import build_from_spec, model_spec, save_checkpoint
from jmlkit.engine.checks import Preflight, preflight
from jmlkit.engine.config import TrainConfig
from jmlkit.engine.data import run_data, train_batches
from jmlkit.engine.evaluation import check_evaluators, describe_evaluator, evaluate, evaluation_pass
from jmlkit.engine.objectives import OBJECTIVES, ObjectiveContext, build_objective
from jmlkit.engine.optim import make_loss, make_optimizer
from jmlkit.engine.runfolder import RunFolder, config_hash
from jmlkit.engine.runtime import progress as progress_bar
from jmlkit.engine.runtime import memory_layout, resolve_device, runtime, seed_everything
from jmlkit.io import atomic_write, jsonable, mark_done, write_json
from jmlkit.layout import CONFIG_FILE, EVALUATIONS_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE, WEIGHTS_FILE

__all__ = ["fit", "FitResult", "TrainingStopped"]


class TrainingStopped(Exception):
    """What :func:`fit` raises when its ``stop`` was set: the run ended early, and no run folder was written.

    Attributes:
        history: the epochs that finished before the stop (a DataFrame as :attr:`FitResult.history`; may be empty).
        step: the optimisation steps taken.
    """

    def __init__(self, history: pd.DataFrame, step: int) -> None:
        super().__init__(f"training stopped after {len(history)} finished epoch(s), {step} step(s)")
        self.history, self.step = history, step


def _stop_check(stop: Any) -> Callable[[], bool] | None:
    """``stop`` (an object with ``is_set()``, e.g. a ``threading.Event``, or a callable returning a bool) as a
    callable; ``None`` stays ``None``."""
    if stop is None:
        return None
    if callable(getattr(stop, "is_set", None)):
        return stop.is_set
    if callable(stop):
        return lambda: bool(stop())
    raise TypeError(f"Expected `stop` to be None, a threading.Event or a callable returning a bool, "
                    f"but got {type(stop).__name__}.")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (unwrapped from DDP, in eval mode, on the training device).
        history: one row per epoch: ``epoch, step, lr, train_loss``, the objective's terms (e.g.
            ``sup_loss, unsup_loss, mask_ratio`` with ``labels="ssl"``; each the mean over the epoch's steps that
            logged it, NaN when none did), ``time_s``, and ``val_<metric>`` columns.
        metrics: final metrics on ``eval_split`` (python floats; per-class values as lists),
            plus ``train_time_s``, ``epochs`` and ``steps``.
        run_dir: the run folder (complete), or ``None`` when ``config.out`` is ``None``.
        config: the configuration that ran.
        evaluations: ``{name: value}`` of the extra ``evaluators``, computed in the same pass as ``metrics``
            (python types: tables as dicts of lists, NaN as ``None``; see :func:`~jmlkit.engine.evaluation.evaluation_pass`).
    """

    model: nn.Module
    history: pd.DataFrame
    metrics: dict[str, Any]
    run_dir: Path | None
    config: TrainConfig
    evaluations: dict[str, Any] = field(default_factory=dict)


def fit(
    config: TrainConfig | Mapping[str, Any] | None = None,
    *,
    checked: Preflight | None = None,
    teacher: nn.Module | str | os.PathLike | None = None,
    model: nn.Module | None = None,
    train_data: Dataset | None = None,
    val_data: Dataset | None = None,
    eval_data: Dataset | None = None,
    unlabeled_data: Dataset | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    evaluators: Mapping[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any], nn.Module], None] | None = None,
    stop: Any = None,
) -> FitResult:
    """Train a segmentation model as ``config`` says; evaluate it; write the run folder.

    Args:
        config: a :class:`TrainConfig` (or a dict of its options; ``None``: the defaults).
        checked: what :func:`~jmlkit.engine.preflight` returned for this same config (and the same ``model`` and
            ``train_data`` given): ``fit`` then checks nothing again and trains with ``checked.teacher``, loaded
            once (``python -m jmlkit train`` does this). ``None``: ``fit`` runs :func:`~jmlkit.engine.preflight`
            itself. A ``checked`` of another config is a ``ValueError`` (:meth:`~jmlkit.engine.Preflight.require_for`).
        teacher: for ``labels="kd"``: a frozen teacher model (overrides ``config.teacher``) or a
            checkpoint path. It runs in eval mode under ``no_grad``. With ``checked``: ``None`` (its teacher is used).
        model: train this model instead of building ``config.model`` (not saved as a checkpoint
            that :func:`~jmlkit.engine.load_checkpoint` can rebuild unless it came from
            :func:`jmlkit.models.build_model`).
        train_data, val_data, eval_data, unlabeled_data: data sets to use instead of the ones
            ``config.dataset`` names (items ``{"image", "label", ["soft"]}``).
        progress: tqdm progress bars (the notebook kind inside Jupyter), on rank 0 only.
        callback: called with each history row (a dict) at the end of every epoch.
        evaluators: extra evaluators ``{name: torchmetrics Metric, Metric class or functools.partial of one}``
            (:mod:`jmlkit.engine.evaluation`; e.g. ``{"near": partial(BoundaryCalibration, max_distance=6)}``),
            updated in the one evaluation pass on ``eval_split`` with the standard metrics; their values are in
            :attr:`FitResult.evaluations` and, with ``config.out``, in the run folder's ``evaluations.json``
            (``{name: {"evaluator": describe_evaluator(...), "value": ...}}``). They need an ``eval_split``.

    Returns:
        :class:`FitResult` ``(model, history, metrics, run_dir, config, evaluations)``.

    Raises:
        ValueError, TypeError, FileNotFoundError: from :func:`~jmlkit.engine.preflight`, before any work, when
            the configuration cannot run (e.g. ``out`` holds a run and ``overwrite`` is false, an unknown model,
            a missing teacher); anything raised later is a failure of the run itself. Either way, and on
            ``KeyboardInterrupt``, no run folder is written and a previous run in ``out`` is kept.
    """
    if config is None:
        config = TrainConfig()
    elif isinstance(config, Mapping):
        config = TrainConfig.from_dict(config)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"Expected `config` to be a TrainConfig or a dict, but got {type(config).__name__}.")
    config = config.replace()  # validated copy
    stop = _stop_check(stop)
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"Expected `on_epoch` to be None or a callable (row, model), but got {type(on_epoch).__name__}.")
    t_start = time.perf_counter()
    # first: loading the teacher must not shift the run's random stream
    if checked is None:
        checked = preflight(config, teacher=teacher, model=model, train_data=train_data)
    elif isinstance(checked, Preflight):
        checked.require_for(config, teacher=teacher, model=model, train_data=train_data)
    else:
        raise TypeError(f"Expected `checked` to be a Preflight (what preflight(config) returns), but got {type(checked).__name__}.")
    teacher = checked.teacher  # a model (loaded once, by preflight) or None
    evaluators = _check_evaluators(evaluators, config, eval_data)
    info = D.setup_distributed(config.device)
    folder = RunFolder(config.out, overwrite=config.overwrite) if config.out is not None and info.is_main else None
    try:
        work_dir = folder.open() if folder is not None else None
        with runtime(config.num_threads, config.deterministic):
            result = _fit(config, info, teacher=teacher, model=model, progress=progress, callback=callback, work_dir=work_dir,
                          on_epoch=on_epoch, stop=stop,
                          t_start=t_start, evaluators=evaluators, data_sets=dict(train_data=train_data, val_data=val_data, eval_data=eval_data,
                                                          unlabeled_data=unlabeled_data))
        if folder is not None and work_dir is not None:  # rank 0 of a run with `out`
            mark_done(work_dir, hash=config_hash(config), seed=config.seed, wall_time_s=time.perf_counter() - t_start,
                      finished=time.strftime("%Y-%m-%dT%H:%M:%S"))  # last: the folder is complete
            folder.commit()
        return result
    except BaseException:
        if folder is not None:
            folder.abort()
        raise
    finally:
        D.teardown_distributed(info)


def _fit(config: TrainConfig, info: D.DistInfo, *, teacher: nn.Module | None, model: nn.Module | None, progress: bool,
         callback: Callable[[dict[str, Any]], None] | None, work_dir: Path | None, t_start: float,
         evaluators: dict[str, Any], data_sets: dict[str, Dataset | None],
         on_epoch: Callable[[dict[str, Any], nn.Module], None] | None = None,
         stop: Callable[[], bool] | None = None) -> FitResult:
    """The run itself; files go to ``work_dir`` (the partial folder, on rank 0 only)."""
    device = resolve_device(config.device, info.local_rank if info.enabled else None)
    data = run_data(config, model=model, objective_cls=OBJECTIVES[config.labels], **data_sets)

    seed_everything(config.seed)
    spec = model_spec(config, data.num_classes, data.in_channels)
    if model is None:  # the asked-for encoder weights are loaded, or build_model raises: never a silent random init
        model = build_from_spec(spec, encoder_weights=config.encoder_weights)
    layout = memory_layout(config.channels_last)
    net = D.wrap_ddp(model.to(device, memory_format=layout), info, device)
    model = D.unwrap(net)
    if teacher is not None:
        teacher = teacher.to(device, memory_format=layout).eval().requires_grad_(False)
    loss_fn = make_loss(config.loss, ignore_index=data.ignore_index, sync_distributed=info.enabled, **config.loss_kwargs).to(device)
    batches = train_batches(data.labeled, config.batch_size, info, config.num_workers, config.seed)
    u_batches = None
    if data.unlabeled is not None:
        u_batches = train_batches(data.unlabeled, config.unlabeled_batch_size or config.batch_size, info,
                                  config.num_workers, config.seed + 1)
    steps_per_epoch = config.steps_per_epoch or max(len(u_batches if u_batches is not None else batches), 1)
    total_steps = steps_per_epoch * config.epochs
    optimizer, scheduler = make_optimizer(model, config, total_steps)
    use_scaler = config.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    generator = torch.Generator().manual_seed(config.seed * 1000 + 17 + info.rank)
    objective = build_objective(ObjectiveContext(config, loss_fn, data.num_classes, data.ignore_index, device, model=model,
                                                 teacher=teacher, generator=generator, total_steps=total_steps,
                                                 distributed=info.enabled))
    if u_batches is not None:
        objective.unlabeled = u_batches
    objective.prepare(batches)

    run_dir = Path(config.out) if config.out is not None else None
    if work_dir is not None:
        atomic_write(work_dir / CONFIG_FILE, config.to_json())
        from jmlkit.models import loaded_weights

        write_json(work_dir / WEIGHTS_FILE, loaded_weights(model))  # what the model started from
    eval_kwargs = dict(num_classes=data.num_classes, ignore_index=data.ignore_index, n_bins=config.n_bins,
                       batch_size=config.eval_batch_size, device=device, amp=config.amp)

    history: list[dict[str, Any]] = []
    step = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        t_epoch = time.perf_counter()
        # the training loss is summed on the device, in float64 (the same sum as Python's of each step's float), and
        # read once per epoch: no host sync per step; its finiteness is checked every CHECK_EVERY steps
        loss_sum, checked_at = torch.zeros((), dtype=torch.float64, device=device), step
        sums = dict.fromkeys(objective.terms, 0.0)
        counts = dict.fromkeys(sums, 0)
        bar = progress_bar(range(steps_per_epoch), progress and info.is_main, desc=f"epoch {epoch}/{config.epochs}", leave=False)
        for i in bar:
            if stop is not None and stop():
                raise TrainingStopped(pd.DataFrame(history), step)
            loss, terms = objective(net, batches.next(), step)
            _optimizer_step(loss, model, optimizer, scheduler, scaler, config.grad_clip)
            objective.after_step(model)
            step += 1
            loss_sum += loss.detach()
            for key, value in terms.items():
                if not math.isnan(value):  # NaN: a term the step does not log (SSL terms before the warm-up)
                    sums[key] += value
                    counts[key] += 1
            if (i + 1) % CHECK_EVERY == 0 or i + 1 == steps_per_epoch:
                total = float(loss_sum)  # the one host read of these steps: the check, the bar, the epoch's mean
                _check_finite(total, epoch, checked_at, step)
                checked_at = step
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{total / (i + 1):.4f}")
        reduce_on = device if info.enabled and device.type == "cuda" else torch.device("cpu")
        means = D.all_reduce_mean([total / steps_per_epoch,
                                   *[sums[k] / counts[k] if counts[k] else math.nan for k in sums]], info, reduce_on)
        row: dict[str, Any] = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"],
                               **dict(zip(["train_loss", *sums], means))}
        row["time_s"] = time.perf_counter() - t_epoch
        if data.val is not None and (epoch % config.val_every == 0 or epoch == config.epochs):
            row.update({f"val_{k}": v for k, v in _scalars(evaluate(model, data.val, **eval_kwargs)).items()})
        history.append(row)
        _report_epoch(row, history, work_dir, config, show=progress and info.is_main, is_main=info.is_main)
        if callback is not None:
            callback(dict(row))
        if on_epoch is not None:
            on_epoch(dict(row), model)
            if stop is not None and stop():
                raise TrainingStopped(pd.DataFrame(history), step)

    metrics: dict[str, Any] = {}
    evaluations: dict[str, Any] = {}
    train_time = time.perf_counter() - t_start
    model.eval()
    if data.eval is not None:  # the one evaluation pass: standard metrics and the extra evaluators
        metrics, evaluations = evaluation_pass(model, data.eval, evaluators=evaluators, **eval_kwargs)
    metrics = jsonable({**metrics, "train_time_s": train_time, "epochs": config.epochs, "steps": step})
    if work_dir is not None:
        if config.save_checkpoint:
            save_checkpoint(work_dir / MODEL_FILE, model, spec, config=config, epoch=config.epochs)
        atomic_write(work_dir / METRICS_FILE, json.dumps(metrics, indent=2))
        if evaluators:
            write_json(work_dir / EVALUATIONS_FILE, {name: {"evaluator": describe_evaluator(spec), "value": evaluations[name]}
                                                     for name, spec in evaluators.items()})
    return FitResult(model=model, history=pd.DataFrame(history), metrics=metrics, run_dir=run_dir, config=config,
                     evaluations=evaluations)


def _check_evaluators(evaluators: Any, config: TrainConfig, eval_data: Dataset | None) -> dict[str, Any]:
    """``evaluators`` checked before any work: a dict of Metrics or factories, and an evaluation split to run them on."""
    evaluators = check_evaluators(evaluators)
    if evaluators and config.eval_split is None and eval_data is None:
        raise ValueError(f"Expected an `eval_split` (or `eval_data`) for the evaluators {sorted(evaluators)}, but got None.")
    return evaluators


#: Steps between two reads of the training loss on the host (its finiteness; the progress bar).
CHECK_EVERY = 16


def _check_finite(loss_sum: float, epoch: int, first: int, last: int) -> None:
    """A non-finite loss in steps ``first`` to ``last - 1`` makes the epoch's sum non-finite: raise then."""
    if not math.isfinite(loss_sum):
        raise FloatingPointError(f"Loss became {loss_sum} at epoch {epoch}, between steps {first} and {last - 1}; "
                                 "lower `lr` or check the data.")


def _optimizer_step(loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                    grad_clip: float | None) -> None:
    """Back-propagate ``loss`` (scaled under float16 autocast), clip, step the optimiser and the schedule."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()


def _report_epoch(row: dict[str, Any], history: list[dict[str, Any]], work_dir: Path | None, config: TrainConfig, *,
                  show: bool, is_main: bool) -> None:
    """Print the epoch's line (with progress bars on) and rewrite ``history.csv``, on rank 0."""
    if not is_main:
        return
    if show:
        from tqdm.auto import tqdm

        summary = ", ".join(f"{k}={row[k]:.4f}" for k in ("train_loss", "val_mIoU_D", "val_ECE_D") if k in row)
        tqdm.write(f"epoch {row['epoch']}/{config.epochs}: {summary}")
    if work_dir is not None:
        atomic_write(work_dir / HISTORY_FILE, pd.DataFrame(history).to_csv(index=False))


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out

