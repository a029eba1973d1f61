r"""Full results of training runs, kept in memory: what :func:`~jmlkit.experiments.run_configs` trained or found in
its cache, so that nothing a run computed is read back or evaluated again.

A :class:`RunResult` holds a run's metrics (tables included: the reliability table, per-class lists), its history,
the values of its extra evaluators (:func:`jmlkit.engine.fit`'s ``evaluators``) and its model::

    run_configs(configs, evaluators=...)  ──►  tidy table (config, seed, run_dir, scalars)   [unchanged]
         │ every run, trained or cached:
         └─► remember(RunResult)  ──►  run_results(table) / first_results(table) / run_result(run_dir)

A trained run gives its :class:`~jmlkit.engine.FitResult` as it is (model in memory); a cached run is read once from
its folder (``metrics.json``, ``history.csv``, ``evaluations.json``; the model only when asked for). A cached run
that lacks an evaluator the caller asks for (or holds another one under that name) is evaluated once for the
missing ones, and their values are added to its ``evaluations.json`` (:func:`complete_evaluations`): evaluators do
not change training, so they are not part of the configuration hash, and a cache of runs without them is not
trained again.

The memory is this process's (a notebook's kernel), keyed by the run folder; runs of other processes (another
notebook's, read by notebook 06) are read from their folders on first use.

Example:
    >>> import tempfile
    >>> from functools import partial
    >>> from jmlkit.engine import TrainConfig
    >>> from jmlkit.experiments import run_configs
    >>> from jmlkit.metrics import BoundaryCalibration
    >>> near = {"near": partial(BoundaryCalibration, max_distance=2)}
    >>> with tempfile.TemporaryDirectory() as out:
    ...     runs = run_configs({"ce": TrainConfig.from_profile("smoke", loss="ce")}, output_dir=out, verbose=False,
    ...                        evaluators=near)
    ...     result = run_results(runs)[0]
    >>> result.cached, list(result.history.columns[:2]), result.table("near")["distance"].tolist()
    (False, ['epoch', 'step'], [1, 2, 3])
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from jmlkit.engine import TrainConfig
from jmlkit.engine.evaluation import check_evaluators, describe_evaluator, evaluation_pass
from jmlkit.io import write_json
from jmlkit.metrics.tables import as_table
from jmlkit.layout import (CONFIG_FILE, EVALUATIONS_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE, MODEL_USED_FILE,
                           parse_run_folder_name, read_done, require_complete)

__all__ = ["RunResult", "remember", "read_run", "run_result", "run_results", "first_results", "results_table",
           "stored_value",
           "complete_evaluations", "scalar_metrics"]


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a metrics dict as floats (``None``, a NaN in JSON, as NaN); lists and tables left out.

    >>> scalar_metrics({"mIoU_D": 0.5, "steps": 3, "ECE_I": None, "IoU_per_class": [0.1], "ok": True})
    {'mIoU_D': 0.5, 'steps': 3.0, 'ECE_I': nan}
    """
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (bool, np.bool_)):
            continue
        if isinstance(value, (int, float, np.integer, np.floating)):
            out[key] = float(value)
        elif value is None:
            out[key] = float("nan")
    return out


@dataclass(eq=False)
class RunResult:
    """Everything one training run computed.

    Attributes:
        run_dir: its run folder.
        config: the configuration that ran.
        metrics: ``metrics.json`` as :func:`~jmlkit.engine.fit` returned it (scalars, per-class lists, the
            reliability table as a dict of lists).
        history: one row per epoch (``history.csv``).
        evaluations: ``{name: value}`` of the extra evaluators (tables as dicts of lists, see :meth:`table`).
        evaluators: ``{name: describe_evaluator(...)}``: what computed each value.
        cached: whether the run was found in the cache (not trained by this call).
        replayed: whether the run is a committed record (the ``results`` profile, ``config.replay``; its completion
            marker says ``"record": true``): read-only, its model only where the records kept it.
    """

    run_dir: Path
    config: TrainConfig
    metrics: dict[str, Any]
    history: pd.DataFrame
    evaluations: dict[str, Any] = field(default_factory=dict)
    evaluators: dict[str, str] = field(default_factory=dict)
    cached: bool = False
    _model: nn.Module | None = field(default=None, repr=False)
    replayed: bool = False

    @property
    def model(self) -> nn.Module:
        """The trained model: the one training left in memory, or (a cached run) ``model.pt`` read once.

        Reading it leaves a marker in the run folder (:data:`~jmlkit.layout.MODEL_USED_FILE`): the records of a
        batch (:func:`jmlkit.runner.records.write_records`) keep the weights of exactly these runs, those a figure
        cannot do without. A replayed run without its weights is a ``FileNotFoundError`` that says so."""
        if self._model is None:
            from jmlkit.engine import load_checkpoint

            if self.replayed and not (Path(self.run_dir) / MODEL_FILE).is_file():
                raise FileNotFoundError(
                    f"Expected the weights of {Path(self.run_dir).name} ({MODEL_FILE}) among the committed records, but "
                    "they are not there: the records keep only the models a figure of the full profile read. Run "
                    "the full profile (or quick) to train it.")
            self._model = load_checkpoint(self.run_dir)
        marker = Path(self.run_dir) / MODEL_USED_FILE
        if not self.replayed and not marker.exists():
            try:
                marker.touch()
            except OSError:  # a read-only folder: the records then keep no weights for it
                pass
        return self._model

    @property
    def has_model(self) -> bool:
        """Whether :attr:`model` is in memory (no ``model.pt`` needs reading)."""
        return self._model is not None

    @property
    def reliability(self) -> pd.DataFrame:
        """The reliability table of ``metrics`` (one row per confidence bin)."""
        if not self.metrics.get("reliability"):
            raise ValueError(f"Expected metrics with a 'reliability' table, but the run {str(self.run_dir)!r} has none.")
        return as_table(self.metrics["reliability"])

    def table(self, name: str) -> pd.DataFrame:
        """The value of the evaluator ``name`` (a table) as a DataFrame; a ``KeyError`` naming the ones there are."""
        if name not in self.evaluations:
            raise KeyError(f"Expected an evaluator among {sorted(self.evaluations)}, but got {name!r} "
                           f"(pass it in `evaluators` of run_configs).")
        return as_table(self.evaluations[name])

    def evaluation(self, name: str, spec: Any = None) -> Any:
        """The stored value of the evaluator ``name`` (``spec``: only if that evaluator computed it), else ``None``."""
        if name not in self.evaluations or (spec is not None and self.evaluators.get(name) != describe_evaluator(spec)):
            return None
        return self.evaluations[name]


_MEMORY: dict[str, RunResult] = {}


def _key(run_dir: str | os.PathLike) -> str:
    return str(Path(run_dir).resolve())


def remember(result: RunResult) -> RunResult:
    """Keep ``result`` in this process's memory (its model moved to the CPU), under its run folder."""
    if result._model is not None:
        result._model = result._model.cpu().eval()
    _MEMORY[_key(result.run_dir)] = result
    return result


def read_run(run_dir: str | os.PathLike, *, cached: bool = True) -> RunResult:
    """The result of a finished run folder, read from its files (the model only when asked for)."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Expected a finished run folder with {METRICS_FILE}, but {str(path)!r} does not exist.")
    require_complete(run_dir)
    metrics = json.loads(path.read_text(encoding="utf-8"))
    history = pd.read_csv(run_dir / HISTORY_FILE) if (run_dir / HISTORY_FILE).is_file() else pd.DataFrame()
    stored = json.loads((run_dir / EVALUATIONS_FILE).read_text(encoding="utf-8")) if (run_dir / EVALUATIONS_FILE).is_file() else {}
    config = TrainConfig.from_json(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else TrainConfig()
    record = bool((read_done(run_dir) or {}).get("record"))  # a committed record (jmlkit.runner.records): read-only
    return RunResult(run_dir, config, metrics, history, {k: v.get("value") for k, v in stored.items()},
                     {k: v.get("evaluator") for k, v in stored.items()}, cached, replayed=record)


def _store_evaluations(result: RunResult) -> None:
    """Write ``result``'s evaluations and what computed them to its ``evaluations.json`` (atomically)."""
    write_json(Path(result.run_dir) / EVALUATIONS_FILE, {name: {"evaluator": result.evaluators.get(name), "value": value}
                                                        for name, value in result.evaluations.items()})


def stored_value(result: RunResult, name: str, evaluator: str, compute: Callable[[], Any]) -> Any:
    """A value computed once for a finished run and kept with it, in its ``evaluations.json`` under ``name`` with the
    description ``evaluator`` (e.g. a teacher's score on the validation scenes): the stored value when its
    description matches, else ``compute()``, stored. A committed record (``result.replayed``) is never written: a
    value it lacks is a ``ValueError``."""
    if name in result.evaluations and result.evaluators.get(name) == evaluator:
        return result.evaluations[name]
    if result.replayed:
        raise ValueError(f"Expected the records of {Path(result.run_dir).name} to hold {name!r} ({evaluator}), but they "
                         "do not (a replay computes nothing): run the full profile again to write it.")
    value = compute()
    result.evaluations[name] = value
    result.evaluators[name] = evaluator
    _store_evaluations(result)
    return value


def remembered(run_dir: str | os.PathLike) -> RunResult | None:
    """This process's result of the run in ``run_dir`` (one it trained or took from its cache with
    :func:`~jmlkit.experiments.run_configs`); ``None`` when it has none (nothing is read)."""
    return _MEMORY.get(_key(run_dir))


def run_result(run_dir: str | os.PathLike) -> RunResult:
    """The result of the run in ``run_dir``: from memory (:func:`remembered`), else read from its folder (another
    process's run)."""
    found = remembered(run_dir)
    return found if found is not None else read_run(run_dir)


def run_results(runs: pd.DataFrame) -> list[RunResult]:
    """The :func:`run_result` of each row of a table of runs (its ``run_dir`` or ``path`` column), in order."""
    column = "run_dir" if isinstance(runs, pd.DataFrame) and "run_dir" in runs.columns else "path"
    if not isinstance(runs, pd.DataFrame) or column not in runs.columns:
        raise TypeError("Expected `runs` to be a table of runs with a `run_dir` or `path` column (run_configs, find_runs), "
                        f"but got {type(runs).__name__}.")
    return [run_result(d) for d in runs[column]]


def first_results(runs: pd.DataFrame, *, by: str = "config") -> dict[Any, RunResult]:
    """``{value of by: result}`` of the first run of each ``by`` group (table order: the first seed)."""
    if not isinstance(runs, pd.DataFrame) or by not in runs.columns:
        raise TypeError(f"Expected `runs` to be a table of runs with a {by!r} column, but got {type(runs).__name__}.")
    first = runs.drop_duplicates(by, keep="first")
    return dict(zip(first[by], run_results(first)))


def results_table(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per result, as :func:`~jmlkit.experiments.run_configs` has them: ``config`` and ``seed`` (from the
    folder name), ``cached``, ``run_dir`` and every scalar metric."""
    rows = []
    for result in results:
        name, seed = parse_run_folder_name(result.run_dir.name) or (result.run_dir.name, result.config.seed)
        rows.append({"config": name, "seed": seed, "cached": result.cached, "run_dir": str(result.run_dir.resolve()),
                     **scalar_metrics(result.metrics)})
    return pd.DataFrame(rows)


def complete_evaluations(result: RunResult, evaluators: Mapping[str, Any] | None, *, store: bool = True,
                         batch_size: int | None = None, device: Any = None) -> RunResult:
    """``result`` with a value for each of ``evaluators``: the stored ones kept, the missing ones (or those another
    evaluator computed) evaluated in one pass over the run's evaluation split (:func:`jmlkit.engine.evaluation_data`)
    and, with ``store``, added to its ``evaluations.json`` (the file is rewritten atomically; two processes adding
    different evaluators at once may each miss the other's, which is then evaluated again next time).
    ``batch_size`` (default: the run's ``eval_batch_size``) and ``device`` (default: the model's) of that pass."""
    from jmlkit.engine.data import evaluation_data, ignore_index_of

    evaluators = check_evaluators(evaluators)
    missing = {name: spec for name, spec in evaluators.items()
               if name not in result.evaluations or result.evaluators.get(name) != describe_evaluator(spec)}
    if not missing:
        return result
    data = evaluation_data(result.config)
    if data is None:
        raise ValueError(f"Expected an `eval_split` in the config of {str(result.run_dir)!r} to evaluate "
                         f"{sorted(missing)}, but got None.")
    config = result.config
    if result.has_model:
        model = result._model
    else:  # read for this pass only: evaluating a run is no figure's use of its model (the records keep no weights)
        from jmlkit.engine import load_checkpoint

        model = load_checkpoint(result.run_dir)
    if device is not None:
        from jmlkit.engine import resolve_device

        model = model.to(resolve_device(device))
    values = evaluation_pass(model, data, evaluators=missing, standard=False, n_bins=config.n_bins,
                             ignore_index=ignore_index_of(data, config), batch_size=batch_size or config.eval_batch_size,
                             device=device, amp=config.amp).evaluations
    result.evaluations.update(values)
    result.evaluators.update({name: describe_evaluator(spec) for name, spec in missing.items()})
    if store:
        _store_evaluations(result)
    return result


def _forget(run_dirs: Sequence[str | os.PathLike] | None = None) -> None:
    """Drop results from memory (all with ``None``): for tests, and after a folder was replaced by another process."""
    for key in list(_MEMORY) if run_dirs is None else [_key(d) for d in run_dirs]:
        _MEMORY.pop(key, None)
