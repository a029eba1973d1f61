"""What finished runs measured: reliability tables (pooled over seeds), calibration by distance to the boundary,
class-wise calibration and soft-label errors, as tables.

A run's metrics come from memory when this process trained it (:mod:`jmlkit.experiments.results`), else from its
``metrics.json`` (:func:`reliability_table`, pooled over seeds by :func:`pool_reliability` and
:func:`reliability_tables`). The rest comes from the extra evaluators of :func:`evaluators`, computed in each run's
one evaluation pass (``run_configs(..., evaluators=evaluators())``) and stored with it: :func:`evaluate_run` and
:func:`evaluate_runs` only read them. A run without them (one trained before, or with other options) is evaluated
for the missing ones once, its model (``model.pt``) and evaluation split rebuilt::

    run_configs(configs, evaluators=evaluators())  /  find_runs(OUT)  ──►  one row per run folder
        ├─► reliability_tables   (metrics, pooled over seeds)
        └─► evaluate_runs        (the stored evaluations: ECE by distance to the boundary,
                                  class-wise calibration, soft-label errors)

Example:
    >>> t = {"bin": [0, 1], "lower": [0.0, 0.5], "upper": [0.5, 1.0], "count": [1, 3],
    ...      "confidence": [0.4, 0.9], "accuracy": [0.0, 1.0]}
    >>> reliability_table({"reliability": t})["count"].tolist()
    [1, 3]
    >>> pool_reliability([t, t])[["count", "accuracy", "gap"]].round(2).values.tolist()
    [[2.0, 0.0, -0.4], [6.0, 1.0, 0.1]]
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from jmlkit._checks import check_choice, check_int
from jmlkit.engine import TrainConfig
from jmlkit.engine.data import base_dataset, evaluation_data
from jmlkit.experiments.results import complete_evaluations, run_result
from jmlkit.experiments.runs import _check_runs, run_metrics
from jmlkit.layout import CONFIG_FILE, EVALUATIONS_FILE
from jmlkit.metrics.tables import as_table

__all__ = [
    "load_model",
    "eval_dataset",
    "examples",
    "training_shares",
    "regime_shares",
    "regime_summary",
    "reliability_table",
    "pool_reliability",
    "reliability_tables",
    "evaluators",
    "boundary_calibration",
    "evaluate_run",
    "evaluation_tables",
    "evaluate_runs",
    "mean_boundary_tables",
]

_RELIABILITY_COLUMNS = ("lower", "upper", "count", "confidence", "accuracy")


# ============================================================================ models and data of a run


def load_model(run_dir: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model of a complete run folder, read from its ``model.pt`` (eval mode, on ``map_location``); a
    folder without its completion marker (an interrupted run, one still running) is a ``ValueError`` naming it
    (:func:`jmlkit.engine.load_checkpoint`). A run this process trained has its model in memory:
    :attr:`RunResult.model <jmlkit.experiments.results.RunResult.model>` of :func:`~jmlkit.experiments.run_results`.

    ``model.pt`` is read with ``torch.load(weights_only=True)``: a file holding a pickled Python object (a
    poisoned copy in a run cache, say) is a ``ValueError`` naming it, and none of its code runs."""
    from jmlkit.engine import load_checkpoint

    return load_checkpoint(run_dir, map_location=map_location)


def eval_dataset(config: TrainConfig | str | os.PathLike):
    """The evaluation data of a config (or a run folder's ``config.json``): :func:`jmlkit.engine.evaluation_data`
    (``eval_split``, here ``"test"`` when the config has none; its first ``eval_limit`` items)."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_json(Path(config) / CONFIG_FILE)
    return evaluation_data(config if config.eval_split is not None else config.replace(eval_split="test"))


def examples(config: TrainConfig, n: int = 4, *, split: str | None = None) -> dict[str, Any]:
    """The first ``n`` items of a config's evaluation split, stacked: ``image (n, C, H, W)``,
    ``label (n, H, W)``, plus ``num_classes``, ``class_names`` and ``ignore_index`` of the data set."""
    data = eval_dataset(config if split is None else config.replace(eval_split=split))
    base = base_dataset(data)
    items = [data[i] for i in range(min(check_int("n", n, low=1), len(data)))]
    return {"image": torch.stack([it["image"] for it in items]), "label": torch.stack([it["label"] for it in items]),
            "num_classes": base.num_classes, "class_names": list(getattr(base, "class_names", [])),
            "ignore_index": getattr(base, "ignore_index", None)}


def training_shares(config: TrainConfig, n: int = 256, **kwargs: Any) -> Any:
    """The regime of the paper's label smoothing on a config's data: :func:`jmlkit.targets.smoothing_shares` of the
    label maps of its first ``n`` training items (``kwargs``: ``epsilon``, ``smoothing``, … of that function).

    >>> from jmlkit.engine import TrainConfig
    >>> 0.6 < training_shares(TrainConfig.from_profile("smoke"), 16).object_share_smoothed < 0.9
    True
    """
    from jmlkit.targets import smoothing_shares

    batch = examples(config.replace(eval_limit=None), n=n, split=config.train_split)
    return smoothing_shares(batch["label"], batch["num_classes"], ignore_index=batch["ignore_index"], **kwargs)


def regime_shares(configs: Mapping[str, TrainConfig], n: int = 256, **kwargs: Any) -> dict[str, Any]:
    """``{regime: training_shares(config, n, **kwargs)}`` for ``{regime: config}`` (:func:`~jmlkit.experiments.regime_configs`)."""
    return {name: training_shares(config, n, **kwargs) for name, config in configs.items()}


def ablation_shares(base: TrainConfig, configs: Mapping[str, TrainConfig], n: int = 256, *,
                    large: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The regimes of label smoothing that notebook 02b's ablation is read against: ``data`` (the paper's boundary
    LS on ``base``'s scenes, where the ablation runs), each regime of ``configs`` (:func:`regime_shares`),
    ``uniform`` (uniform LS at the default ε on ``base``'s scenes) and, when ``large`` (``dataset_kwargs`` of the
    ablation's larger digits) is given and no regime is named ``large``, ``large``."""
    reports = {"data": training_shares(base, n), **regime_shares(configs, n),
               "uniform": training_shares(base, n, smoothing="uniform")}
    if large is not None and "large" not in configs:
        reports["large"] = training_shares(base.replace(dataset_kwargs={**base.dataset_kwargs, **large}), n)
    return reports


def regime_summary(configs: Mapping[str, TrainConfig]) -> str:
    """One line per data regime of ``{regime: config}``: model, schedule, scenes, and what the regime is
    (:data:`jmlkit.profiles.REGIME_DESCRIPTIONS`).

    >>> from jmlkit.experiments.regimes import regime_configs
    >>> from jmlkit.profiles import regime_settings
    >>> print(regime_summary(regime_configs(TrainConfig.from_profile("smoke"), regime_settings("smoke", ["large"]))))
    regime 'large': model 'tiny', 1 epochs, 16 training scenes of 24x24, lr 0.003; paper-like: one thick digit per scene, large against the 3x3 smoothing window (about a quarter or less of its pixels in the boundary band)
    """
    from jmlkit.profiles import REGIME_DESCRIPTIONS

    lines = []
    for name, cfg in configs.items():
        size = cfg.dataset_kwargs.get("size")
        scenes = f"scenes of {size}x{size}" if size is not None else f"items of {cfg.dataset!r}"
        lines.append(f"regime {name!r}: model {cfg.model!r}, {cfg.epochs} epochs, {cfg.train_limit or 'all'} training "
                     f"{scenes}, lr {cfg.lr:g}; {REGIME_DESCRIPTIONS.get(name, 'the data set as given')}")
    return "\n".join(lines)


# ============================================================================ reliability tables


def reliability_table(run: str | os.PathLike | Mapping[str, Any] | pd.DataFrame) -> pd.DataFrame:
    """The reliability table (one row per confidence bin) as a DataFrame: the one way to get it.

    Args:
        run: a run folder (its ``metrics.json``), a metrics dict holding ``"reliability"``
            (``metrics.json`` or :meth:`jmlkit.metrics.CalibrationMetrics.compute`), the table
            itself as stored in ``metrics.json`` (a dict of lists), as ``compute()`` returns it (a dict of
            1-d tensors) or a DataFrame.

    Returns:
        The table with at least ``lower, upper, count, confidence, accuracy``.
    """
    if isinstance(run, (str, os.PathLike)):
        run = run_metrics(run)
    if isinstance(run, Mapping) and "reliability" in run:
        run = run["reliability"]
    elif isinstance(run, Mapping) and not set(_RELIABILITY_COLUMNS) <= set(run):
        raise ValueError("Expected metrics with a 'reliability' table, but got none.")
    if isinstance(run, Mapping):
        run = as_table(run)
    if not isinstance(run, pd.DataFrame):
        raise TypeError("Expected `run` to be a run folder, a metrics dict or a reliability table, "
                        f"but got {type(run).__name__}.")
    if not set(_RELIABILITY_COLUMNS) <= set(run.columns):
        raise ValueError(f"Expected a reliability table with columns {sorted(_RELIABILITY_COLUMNS)}, "
                         f"but got {list(run.columns)}.")
    return run


def pool_reliability(tables: Iterable[Any]) -> pd.DataFrame:
    """Pool the reliability tables of several runs (same bins): counts add, confidence and accuracy
    are count-weighted means. Each table is anything :func:`reliability_table` accepts.

    Returns ``bin`` (when given), ``lower``, ``upper``, ``count``, ``fraction``, ``confidence``,
    ``accuracy`` and ``gap`` (accuracy − confidence).

    >>> a = {"lower": [0.0, 0.5], "upper": [0.5, 1.0], "count": [0, 2], "confidence": [float("nan"), 0.8],
    ...      "accuracy": [float("nan"), 1.0]}
    >>> pool_reliability([a, a])["count"].tolist()
    [0.0, 4.0]
    """
    frames = [reliability_table(t) for t in tables]
    if not frames:
        raise ValueError("Expected at least one reliability table, but got none.")
    n_bins = {len(f) for f in frames}
    if len(n_bins) != 1:
        raise ValueError(f"Expected reliability tables with the same number of bins, but got {sorted(n_bins)}.")
    keys = [c for c in ("bin", "lower", "upper") if c in frames[0].columns]
    base = frames[0][keys].reset_index(drop=True).copy()
    counts = np.stack([f["count"].to_numpy(float) for f in frames])
    conf = np.stack([np.nan_to_num(f["confidence"].to_numpy(float)) for f in frames])
    acc = np.stack([np.nan_to_num(f["accuracy"].to_numpy(float)) for f in frames])
    total = counts.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        base["count"] = total
        base["fraction"] = total / total.sum() if total.sum() > 0 else 0.0
        base["confidence"] = np.where(total > 0, (counts * conf).sum(0) / total, np.nan)
        base["accuracy"] = np.where(total > 0, (counts * acc).sum(0) / total, np.nan)
    base["gap"] = base["accuracy"] - base["confidence"]
    return base


def _ece_of(pooled: pd.DataFrame) -> float:
    w = pooled["fraction"].to_numpy(float)
    gap = np.nan_to_num(pooled["gap"].to_numpy(float))
    return float((w * np.abs(gap)).sum())


def reliability_tables(runs: pd.DataFrame, *, by: Sequence[str] = ("notebook", "config")) -> dict[tuple, dict[str, Any]]:
    """:func:`pool_reliability` of the runs of each group (the seeds of a configuration).

    Returns ``{group key: {"reliability": DataFrame, "ECE_D": pooled ECE}}`` (the dict form the
    reliability plots accept), keys as tuples of the values of the ``by`` columns that ``runs``
    has (a :func:`~jmlkit.experiments.run_configs` table has ``config`` but no ``notebook``).
    Runs whose ``metrics.json`` has no ``reliability`` table are skipped.
    """
    runs = _check_runs(runs)
    by = [c for c in by if c in runs.columns]
    if not by:
        raise ValueError(f"Expected `runs` to have a grouping column among `by`, but its columns are {list(runs.columns)}.")
    out: dict[tuple, dict[str, Any]] = {}
    for key, group in runs.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        tables = [m["reliability"] for m in map(run_metrics, group["path"]) if m.get("reliability")]
        if tables:
            pooled = pool_reliability(tables)
            out[key] = {"reliability": pooled, "ECE_D": _ece_of(pooled)}
    return out


# ============================================================================ evaluating runs again


def evaluators(*, max_distance: int = 6, n_bins: int = 15, band: tuple[float, float] = (0.2, 0.8)) -> dict[str, Any]:
    """The extra evaluators that :func:`evaluate_run` reads (``run_configs(..., evaluators=evaluators())``):
    ``"boundary"`` (:class:`~jmlkit.metrics.BoundaryCalibration`), ``"per_class"``
    (:class:`~jmlkit.metrics.ClasswiseCalibration`) and ``"soft"`` (:class:`~jmlkit.metrics.SoftLabelStats`, on data
    with soft labels), as factories the run completes with its number of classes, ``ignore_index`` and class names.

    >>> sorted(evaluators())
    ['boundary', 'per_class', 'soft']
    """
    from functools import partial

    from jmlkit.metrics import BoundaryCalibration, ClasswiseCalibration, SoftLabelStats

    max_distance, n_bins = check_int("max_distance", max_distance, low=1), check_int("n_bins", n_bins, low=1)
    return {"boundary": partial(BoundaryCalibration, max_distance=max_distance, n_bins=n_bins, validate_args=False),
            "per_class": partial(ClasswiseCalibration, n_bins=n_bins, validate_args=False),
            "soft": partial(SoftLabelStats, band=tuple(float(b) for b in band))}


def boundary_calibration(run_dir: str | os.PathLike, *, max_distance: int = 6, n_bins: int = 15) -> pd.DataFrame:
    """Calibration against distance to the nearest label change, for a run's model on its eval data: the table of
    :class:`jmlkit.metrics.BoundaryCalibration` (``distance``, ``count``, ``accuracy``, ``confidence``, ``ECE``),
    ready for ``jmlkit.plot.calibration_vs_boundary_distance``; :func:`evaluate_run`'s ``"boundary"``."""
    return evaluate_run(run_dir, max_distance=max_distance, n_bins=n_bins, parts=("boundary",))["boundary"]


def evaluate_run(
    path: str | os.PathLike,
    *,
    max_distance: int = 6,
    n_bins: int = 15,
    band: tuple[float, float] = (0.2, 0.8),
    parts: Sequence[str] = ("boundary", "per_class", "soft"),
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """What the :func:`evaluators` of a run measured: stored with the run (in memory when this process trained it,
    else its ``evaluations.json``); those it lacks (a run trained without them, or with other options) are
    evaluated once on its evaluation split (:func:`jmlkit.engine.evaluation_data`), its ``model.pt`` read.

    Args:
        path: the run folder.
        max_distance: distances to the boundary tracked one by one (farther ones are pooled).
        n_bins: confidence bins.
        band: target interval of the soft-label "band" (data sets with soft labels only).
        parts: which of ``"boundary"``, ``"per_class"``, ``"soft"`` to return.
        batch_size, device: of the evaluation of missing ones (default: the run's ``eval_batch_size``, the CPU).

    Returns:
        ``{"boundary": DataFrame (distance, count, accuracy, confidence, ECE)``,
        ``"per_class": DataFrame (class, class_name, ECE_class, frequency, mean_prob)``,
        ``"soft": dict of`` :class:`~jmlkit.experiments.SoftLabelStats` ``or None}`` (the ``parts`` asked for).
    """
    wanted = {k: v for k, v in evaluators(max_distance=max_distance, n_bins=n_bins, band=band).items() if k in parts}
    result = complete_evaluations(run_result(path), wanted, store=False, batch_size=batch_size, device=device)
    out: dict[str, Any] = {}
    for name in wanted:
        value = result.evaluations.get(name)
        if name == "soft":
            out[name] = None if value is None else {k: as_table(v) if isinstance(v, Mapping) else
                                                    (float("nan") if v is None else v) for k, v in value.items()}
        else:
            out[name] = as_table(value)
    return out


def evaluation_tables(runs: pd.DataFrame, *, on_error: str = "warn", **kwargs: Any) -> dict[str, pd.DataFrame]:
    """:func:`evaluate_run` of every run with a ``model.pt``, as tidy tables: what each run's :func:`evaluators`
    measured in its evaluation pass (nothing is evaluated again for the runs that hold them). Also called
    ``evaluate_runs``.

    Args:
        runs: a :func:`~jmlkit.experiments.find_runs` (or :func:`~jmlkit.experiments.run_configs`) table.
        on_error: ``"warn"``: a run whose model or data cannot be rebuilt (e.g. a checkpoint of an
            older model definition) is skipped with a ``UserWarning`` and listed in ``"skipped"``;
            ``"raise"``: the error propagates.
        **kwargs: options of :func:`evaluate_run`.

    Returns ``{"boundary", "per_class", "soft", "curve", "band_hist", "skipped"}``: each the run
    columns (``notebook, config, seed``...) joined with the per-run rows (``soft``: one row of the
    scalar soft-label errors per run; ``soft``, ``curve`` and ``band_hist`` are empty for data
    without soft labels; ``skipped``: ``path`` and ``error`` of each skipped run).
    """
    check_choice("on_error", on_error, ("warn", "raise"))
    runs = _check_runs(runs)
    keep = [c for c in ("notebook", "config", "seed", "dataset", "labels", "loss") if c in runs.columns]
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("boundary", "per_class", "soft", "curve", "band_hist")}
    skipped = []
    for _, row in runs.iterrows():
        if "has_model" in runs.columns and not row["has_model"] and not (Path(row["path"]) / EVALUATIONS_FILE).is_file():
            continue  # nothing stored and no model to evaluate (a record keeps its evaluations, not always its weights)
        try:
            res = evaluate_run(row["path"], **kwargs)
        except (RuntimeError, ValueError, TypeError, KeyError, OSError) as err:
            if on_error == "raise":
                raise
            message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            warnings.warn(f"evaluate_runs: skipped {row['path']} ({message})", UserWarning, stacklevel=2)
            skipped.append({c: row[c] for c in keep} | {"path": row["path"], "error": message})
            continue
        ident = {c: row[c] for c in keep}
        for name in ("boundary", "per_class"):
            parts[name].append(res[name].assign(**ident))
        if res["soft"] is not None:
            s = res["soft"]
            scalars = {k: v for k, v in s.items() if isinstance(v, float)}
            parts["soft"].append(pd.DataFrame([{**ident, **scalars}]))
            parts["curve"].append(s["curve"].assign(**ident))
            parts["band_hist"].append(s["band_hist"].assign(**ident))
    out = {}
    for name, frames in parts.items():
        if frames:
            df = pd.concat(frames, ignore_index=True)
            out[name] = df[keep + [c for c in df.columns if c not in keep]]
        else:
            out[name] = pd.DataFrame(columns=keep)
    out["skipped"] = pd.DataFrame(skipped, columns=[*keep, "path", "error"])
    return out


evaluate_runs = evaluation_tables


def mean_boundary_tables(boundary: pd.DataFrame, *, by: Sequence[str] = ("config",)) -> dict[str, pd.DataFrame]:
    """Per-distance tables averaged over seeds, keyed by the ``by`` values joined with ``" / "``:
    columns ``distance, count`` (summed), ``accuracy, confidence, ECE`` (means) and ``ECE_std``;
    ready for ``jmlkit.plot.calibration_vs_boundary_distance``."""
    by = list(by)
    out = {}
    for key, group in boundary.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = group.groupby("distance", sort=True)
        table = pd.DataFrame({"count": g["count"].sum(), "accuracy": g["accuracy"].mean(),
                              "confidence": g["confidence"].mean(), "ECE": g["ECE"].mean(),
                              "ECE_std": g["ECE"].std()}).reset_index()
        out[" / ".join(str(k) for k in key)] = table
    return out
