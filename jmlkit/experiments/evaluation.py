"""Finished runs evaluated again: their model and data rebuilt, reliability tables read and pooled.

What a run's ``metrics.json`` holds is read back (:func:`reliability_table`, pooled over seeds by
:func:`pool_reliability` and :func:`reliability_tables`); what it does not hold is measured by
rebuilding the model (``model.pt``) and the evaluation split of its ``config.json``
(:func:`evaluate_run`, :func:`evaluate_runs`: calibration by distance to the nearest boundary,
class-wise calibration, errors against the data's soft labels)::

    find_runs(OUT) / run_configs(...)  ──►  one row per run folder
        ├─► reliability_tables   (from metrics.json, pooled over seeds)
        └─► evaluate_runs        (rebuilds each model and its eval split):
              ECE by distance to the boundary, class-wise calibration, soft-label errors

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
from jmlkit.engine.data import base_dataset
from jmlkit.experiments.runs import _check_runs, run_metrics
from jmlkit.experiments.soft import SoftLabelStats

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
    "boundary_calibration",
    "evaluate_run",
    "evaluate_runs",
    "mean_boundary_tables",
]

_RELIABILITY_COLUMNS = ("lower", "upper", "count", "confidence", "accuracy")


# ============================================================================ models and data of a run


def load_model(run_dir: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The trained model of a complete run folder (eval mode, on ``map_location``); a folder without its completion
    marker (an interrupted run, one still running) is a ``ValueError`` naming it (:func:`jmlkit.engine.load_checkpoint`).

    ``model.pt`` is read with ``torch.load(weights_only=True)``: a file holding a pickled Python object (a
    poisoned copy in a run cache, say) is a ``ValueError`` naming it, and none of its code runs."""
    from jmlkit.engine import load_checkpoint

    return load_checkpoint(run_dir, map_location=map_location)


def eval_dataset(config: TrainConfig | str | os.PathLike):
    """The evaluation data of a config (or a run folder's ``config.json``), limited to ``eval_limit``."""
    from torch.utils.data import Subset

    from jmlkit.data import get_dataset

    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_json(Path(config) / "config.json")
    data = get_dataset(config.dataset, config.eval_split or "test", **config.dataset_kwargs)
    if config.eval_limit is not None and config.eval_limit < len(data):
        data = Subset(data, range(config.eval_limit))
    return data


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
            itself as stored in ``metrics.json`` (a dict of lists) or a DataFrame.

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
        run = pd.DataFrame(dict(run))
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


@torch.no_grad()
def boundary_calibration(run_dir: str | os.PathLike, *, max_distance: int = 6, n_bins: int = 15,
                         batch_size: int = 64) -> pd.DataFrame:
    """Calibration against distance to the nearest label change, for a run's model on its eval data.

    Returns the table of :class:`jmlkit.metrics.BoundaryCalibration` (``distance``, ``count``,
    ``accuracy``, ``confidence``, ``ECE``), ready for ``jmlkit.plot.calibration_vs_boundary_distance``.
    """
    from torch.utils.data import DataLoader

    from jmlkit.metrics import BoundaryCalibration

    model = load_model(run_dir)
    data = eval_dataset(run_dir)
    base = base_dataset(data)
    metric = BoundaryCalibration(base.num_classes, max_distance=max_distance, n_bins=n_bins,
                                 ignore_index=getattr(base, "ignore_index", None))
    for batch in DataLoader(data, batch_size=batch_size):
        metric.update(torch.softmax(model(batch["image"]).float(), dim=1), batch["label"])
    return metric.compute()


@torch.no_grad()
def evaluate_run(
    path: str | os.PathLike,
    *,
    max_distance: int = 8,
    n_bins: int = 15,
    band: tuple[float, float] = (0.2, 0.8),
    batch_size: int = 32,
    device: str | torch.device | None = "auto",
) -> dict[str, Any]:
    """Rebuild a run's model (``model.pt``) and its evaluation data (:func:`eval_dataset`: the run's
    ``eval_split``, first ``eval_limit`` items) and measure what ``metrics.json`` does not hold.

    Args:
        path: the run folder.
        max_distance: distances to the boundary tracked one by one (farther ones are pooled).
        n_bins: confidence bins.
        band: target interval of the soft-label "band" (data sets with soft labels only).
        batch_size: evaluation batch size.
        device: ``"auto"`` (cuda when available), ``"cpu"``...

    Returns:
        ``{"boundary": DataFrame (distance, count, accuracy, confidence, ECE)``,
        ``"per_class": DataFrame (class, class_name, ECE_class, frequency, mean_prob)``,
        ``"soft": dict of`` :class:`~jmlkit.experiments.SoftLabelStats` ``or None}``.
    """
    from jmlkit.engine import resolve_device
    from jmlkit.metrics import BoundaryCalibration
    from jmlkit.metrics.functional import calibration_stats

    path = Path(path)
    config = TrainConfig.from_json(path / "config.json")
    dev = resolve_device(device)
    model = load_model(path, map_location=dev).to(dev)
    data = eval_dataset(config)
    base = base_dataset(data)
    k = int(base.num_classes)
    ignore = getattr(base, "ignore_index", config.ignore_index)
    names = list(getattr(base, "class_names", [str(i) for i in range(k)]))
    boundary = BoundaryCalibration(k, max_distance=max_distance, n_bins=n_bins, ignore_index=ignore, validate_args=False)
    cw = torch.zeros(k, n_bins, 2, dtype=torch.float64)
    n_valid = 0.0
    soft_stats = None
    for batch in torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False):
        probs = torch.softmax(model(batch["image"].to(dev)).float(), dim=1).cpu()
        labels = batch["label"].long()
        boundary.update(probs, labels)
        st = calibration_stats(probs, labels, k, n_bins=n_bins, fine_bins=n_bins, ignore_index=ignore,
                               scores=False, per_image=False, validate_args=False)
        cw += st["classwise"].cpu()
        n_valid += float(st["top"][:, 0].sum())
        if "soft" in batch:
            if soft_stats is None:
                soft_stats = SoftLabelStats(k, band=band)
            soft_stats.update(probs, batch["soft"].float(), labels != ignore if ignore is not None else None)
    # class-wise calibration: sum_b |sum_y - sum_p| / N for each class (SCE_D is their mean)
    per_class = pd.DataFrame({
        "class": np.arange(k),
        "class_name": names[:k],
        "ECE_class": ((cw[..., 1] - cw[..., 0]).abs().sum(-1) / max(n_valid, 1.0)).numpy(),
        "frequency": (cw[..., 1].sum(-1) / max(n_valid, 1.0)).numpy(),
        "mean_prob": (cw[..., 0].sum(-1) / max(n_valid, 1.0)).numpy(),
    })
    return {"boundary": boundary.compute(), "per_class": per_class,
            "soft": soft_stats.compute() if soft_stats is not None else None}


def evaluate_runs(runs: pd.DataFrame, *, on_error: str = "warn", **kwargs: Any) -> dict[str, pd.DataFrame]:
    """:func:`evaluate_run` on every run with a ``model.pt``, as tidy tables.

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
        if "has_model" in runs.columns and not row["has_model"]:
            continue
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
