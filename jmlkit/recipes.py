r"""Experiment recipes for the result notebooks: named configurations × seeds, cached, as tidy tables.

A *recipe* trains a few named :class:`~jmlkit.train.TrainConfig` over a few seeds and returns one
row per run. Every run lives in its own folder::

    output_dir/runs/<name>__seed<k>/
        config.json   history.csv   metrics.json   model.pt     (written by jmlkit.train.fit)
        recipe.json   {"hash", "seed", "wall_time_s", "finished"}   (written here, last)

``recipe.json`` marks a finished run. Its ``hash`` is :func:`config_hash` of the configuration
(everything that changes the numbers; not the output folder, device or thread count). A rerun
with the same configuration reuses the folder instead of training again, and so does *another*
notebook: before training, :func:`run_config` also looks for a finished run with the same hash
under ``output_dir/runs/`` (another name) and, when ``output_dir`` is a notebook's folder (its name
starts with the notebook number, ``02_label_smoothing``), in the sibling notebook folders
(``output_dir/../NN_*/runs/*``: the other notebooks of the same batch run or of
``runs/interactive``), and copies it over.

The tables are tidy: :func:`run_configs` gives one row per ``(config, seed)`` with every scalar
metric as a column; :func:`summarize` reduces them to ``<metric>_mean``, ``<metric>_std`` (sample
standard deviation over seeds, NaN for one seed) and ``n_seeds`` per configuration;
:func:`format_table` prints ``mean ± std``.

Profiles (:data:`PROFILES`, :func:`profile_config`):

=========  ==========================================================================  ==============
profile    data and model                                                              seeds
=========  ==========================================================================  ==============
``smoke``  16 one-digit scenes of 16×16, ``tiny`` UNet, 1 epoch: seconds (tests)      ``[seed]``
``quick``  256 one-digit scenes of 16×16, ``small`` UNet, 20 epochs: 10–25 s per run   ``[seed]``
``full``   1000 scenes of 32×32 (1–3 digits), ``small`` UNet, 15 epochs: ~1–2 min     ``[0, 1, 2]``
           per run on a CPU (2 cores); meant for a GPU
=========  ==========================================================================  ==============

Smoke and quick runs use one CPU thread each (``num_threads=1``): two notebooks side by side on
two cores then do not fight over threads.

Example:
    >>> import tempfile
    >>> base = profile_config("smoke")
    >>> configs = {"ce": base.replace(loss="ce"), "jml_ls": base.replace(labels="ls", loss="jml")}
    >>> with tempfile.TemporaryDirectory() as out:
    ...     runs = run_configs(configs, seeds=[0], output_dir=out, verbose=False)
    ...     again = run_configs(configs, seeds=[0], output_dir=out, verbose=False)
    >>> runs[["config", "seed", "cached"]].values.tolist()
    [['ce', 0, False], ['jml_ls', 0, False]]
    >>> again["cached"].tolist()
    [True, True]
    >>> summarize(runs, ["mIoU_D"]).columns.tolist()
    ['config', 'n_seeds', 'mIoU_D_mean', 'mIoU_D_std']
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jmlkit.train import TrainConfig

__all__ = [
    "PROFILE_NAMES",
    "PROFILES",
    "PROFILE_SEEDS",
    "HASH_EXCLUDE",
    "profile_config",
    "profile_seeds",
    "config_hash",
    "run_dir_for",
    "run_config",
    "run_configs",
    "load_runs",
    "summarize",
    "format_table",
    "headline",
    "sweep",
    "epsilon_sweep",
    "smoothing_configs",
    "train_teacher",
    "distillation_configs",
    "ssl_configs",
    "labeled_fraction_sweep",
    "reliability_table",
    "boundary_calibration",
    "load_model",
    "eval_dataset",
    "LABELS",
    "bar_chart",
    "sweep_plot",
    "target_panel",
    "SWEEP_VALUES",
    "profile_values",
    "examples",
    "compare",
    "DISTILL_MODELS",
    "distill_model",
    "run_metrics",
    "history_plot",
]

PROFILE_NAMES = ("smoke", "quick", "full")

_DIGITS_16 = {"size": 16, "digit_size": [12, 16], "digits_per_scene": [1, 1], "in_channels": 3}
_DIGITS_32 = {"size": 32, "digit_size": [12, 16], "in_channels": 3}

#: :class:`~jmlkit.train.TrainConfig` options of each profile (the recipes' base configuration).
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(dataset="digits", dataset_kwargs=_DIGITS_16, model="tiny", train_limit=16, eval_limit=8,
                  epochs=1, batch_size=8, lr=3e-3, val_split=None, eval_batch_size=8, num_threads=1),
    "quick": dict(dataset="digits", dataset_kwargs=_DIGITS_16, model="small", train_limit=256, eval_limit=64,
                  epochs=20, batch_size=16, lr=2e-3, val_split=None, num_threads=1),
    "full": dict(dataset="digits", dataset_kwargs=_DIGITS_32, model="small", train_limit=None, eval_limit=None,
                 epochs=15, batch_size=16, lr=2e-3, val_split=None, eval_batch_size=128),
}

#: Default seeds of each profile (``None``: the notebook's ``seed`` alone).
PROFILE_SEEDS: dict[str, list[int] | None] = {"smoke": None, "quick": None, "full": [0, 1, 2]}

#: TrainConfig fields that do not change a run's numbers, left out of :func:`config_hash`.
HASH_EXCLUDE = ("out", "device", "num_threads", "num_workers", "eval_batch_size", "save_checkpoint")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_RECIPE_FILE = "recipe.json"
_RUN_FILES = ("config.json", "history.csv", "metrics.json", "model.pt")


# ============================================================================ profiles


def _check_profile(profile: Any) -> str:
    if profile not in PROFILE_NAMES:
        raise ValueError(f"Expected `profile` to be one of {PROFILE_NAMES}, but got {profile!r}.")
    return profile


def profile_config(profile: str, **overrides: Any) -> TrainConfig:
    """The base :class:`~jmlkit.train.TrainConfig` of a profile, with ``overrides``.

    ``None`` overrides are dropped (so a notebook's ``epochs = None`` keeps the profile's);
    ``dataset_kwargs``/``model_kwargs``/``loss_kwargs`` overrides are merged into the profile's.

    Example:
        >>> cfg = profile_config("quick", epochs=None, lr=1e-3)
        >>> cfg.model, cfg.epochs, cfg.lr
        ('small', 20, 0.001)
        >>> profile_config("fast")
        Traceback (most recent call last):
        ...
        ValueError: Expected `profile` to be one of ('smoke', 'quick', 'full'), but got 'fast'.
    """
    options = json.loads(json.dumps(PROFILES[_check_profile(profile)]))
    if overrides.get("dataset") not in (None, options["dataset"]):
        options["dataset_kwargs"] = {}  # the profile's scene settings belong to DigitScenes
        if overrides["dataset"] in ("voc", "cityscapes"):
            options["eval_split"] = "val"  # their test labels are not public
    for key, value in overrides.items():
        if value is None:
            continue
        if key.endswith("_kwargs") and isinstance(value, Mapping):
            options[key] = {**options.get(key, {}), **value}
        else:
            options[key] = value
    return TrainConfig.from_dict(options)


def profile_seeds(profile: str, seeds: Sequence[int] | int | None = None, *, seed: int = 0) -> list[int]:
    """Seeds to run: ``seeds`` when given, else the profile's (``[0, 1, 2]`` in full, ``[seed]`` otherwise).

    Example:
        >>> profile_seeds("quick", seed=3), profile_seeds("full"), profile_seeds("full", [5])
        ([3], [0, 1, 2], [5])
    """
    _check_profile(profile)
    if seeds is None:
        default = PROFILE_SEEDS[profile]
        seeds = [seed] if default is None else default
    elif isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    return _check_seeds(seeds)


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"Expected `seeds` to be a list of non-negative ints, but got {seeds!r}.")
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ValueError(f"Expected `seeds` to be a non-empty list of non-negative ints, but got {seeds!r}.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"Expected `seeds` without repeats, but got {seeds!r}.")
    return [int(s) for s in seeds]


# ============================================================================ hashing and folders


def config_hash(config: TrainConfig) -> str:
    """A 16-hex-digit hash of everything in ``config`` that changes a run's numbers.

    Left out: :data:`HASH_EXCLUDE` (output folder, device, threads...). A distillation teacher
    given as a run folder made by these recipes counts by *its* hash, not its path, so the same
    teacher trained into another folder gives the same student hash.

    Example:
        >>> a = TrainConfig(seed=0, out="/tmp/a")
        >>> config_hash(a) == config_hash(a.replace(out="/tmp/b", num_threads=1))
        True
        >>> config_hash(a) == config_hash(a.replace(seed=1))
        False
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"Expected `config` to be a TrainConfig, but got {type(config).__name__}.")
    data = config.to_dict()
    for key in HASH_EXCLUDE:
        data.pop(key, None)
    if data.get("teacher"):
        data["teacher"] = _teacher_key(data["teacher"])
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _teacher_key(teacher: str) -> str:
    path = Path(teacher)
    folder = path if path.is_dir() else path.parent
    recipe = _read_recipe(folder)
    if recipe is not None and "hash" in recipe:
        return f"run:{recipe['hash']}"
    return f"path:{path.resolve()}"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or "__" in name:
        raise ValueError(
            "Expected a config name of letters, digits and '._+-' (no '__', not starting with a symbol), "
            f"but got {name!r}."
        )
    return name


def run_dir_for(output_dir: str | os.PathLike, name: str, seed: int) -> Path:
    """``output_dir/runs/<name>__seed<seed>``: where :func:`run_config` keeps a run.

    Example:
        >>> run_dir_for("out", "ce_hard", 2).as_posix()
        'out/runs/ce_hard__seed2'
    """
    return Path(output_dir) / "runs" / f"{_check_name(name)}__seed{int(seed)}"


def _read_recipe(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _RECIPE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _finished(folder: Path, digest: str) -> bool:
    recipe = _read_recipe(folder)
    return (recipe is not None and recipe.get("hash") == digest and (folder / "metrics.json").is_file()
            and (folder / "model.pt").is_file())


_NOTEBOOK_DIR_RE = re.compile(r"^\d+_")


def _find_elsewhere(output_dir: Path, digest: str, exclude: Path) -> Path | None:
    """A finished run with this hash in ``output_dir`` or in the ``runs/`` folders of its sibling notebook
    output folders (names starting with digits and ``_``, like ``03_distillation``)."""
    roots = [output_dir]
    parent = output_dir.parent
    if _NOTEBOOK_DIR_RE.match(output_dir.name) and parent.is_dir():
        roots += sorted(p for p in parent.iterdir() if p.is_dir() and p != output_dir and _NOTEBOOK_DIR_RE.match(p.name))
    for root in roots:
        runs = root / "runs"
        if not runs.is_dir():
            continue
        for folder in sorted(runs.iterdir()):
            if folder.resolve() != exclude.resolve() and folder.is_dir() and _finished(folder, digest):
                return folder
    return None


def _copy_run(src: Path, dst: Path, config: TrainConfig) -> None:
    tmp = dst.with_name(f".{dst.name}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in _RUN_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, tmp / name)
    (tmp / "config.json").write_text(config.to_json())
    recipe = _read_recipe(src) or {}
    recipe.update(copied_from=str(src.resolve()))
    (tmp / _RECIPE_FILE).write_text(json.dumps(recipe, indent=2))
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)


# ============================================================================ running


def _scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float, np.integer, np.floating)):
            out[key] = float(value)
        elif value is None:
            out[key] = float("nan")
    return out


def run_config(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    force: bool = False,
    reuse: bool = True,
    progress: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Train ``config`` into ``run_dir`` unless a finished run with the same :func:`config_hash` exists.

    Args:
        config: what to train (its ``out`` is replaced by ``run_dir``).
        run_dir: the run folder.
        force: train even if a finished run exists.
        reuse: also look for a finished run with the same hash under ``output_dir/runs/`` and in the
            sibling notebook folders (``output_dir/../NN_*/runs/*``) and copy it into ``run_dir``.
        progress: progress bars of :func:`jmlkit.train.fit`.

    Returns:
        ``(metrics, cached)``: the run's ``metrics.json`` and whether it was reused.
    """
    from jmlkit.train import fit

    if not isinstance(config, TrainConfig):
        raise TypeError(f"Expected `config` to be a TrainConfig, but got {type(config).__name__}.")
    run_dir = Path(run_dir).resolve()
    config = config.replace(out=str(run_dir), save_checkpoint=True)
    digest = config_hash(config)
    if not force:
        if _finished(run_dir, digest):
            return json.loads((run_dir / "metrics.json").read_text()), True
        if reuse:
            source = _find_elsewhere(run_dir.parent.parent, digest, run_dir)
            if source is not None:
                _copy_run(source, run_dir, config)
                return json.loads((run_dir / "metrics.json").read_text()), True
    (run_dir / _RECIPE_FILE).unlink(missing_ok=True)
    t0 = time.perf_counter()
    result = fit(config, progress=progress)
    recipe = {"hash": digest, "seed": config.seed, "wall_time_s": time.perf_counter() - t0,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (run_dir / _RECIPE_FILE).write_text(json.dumps(recipe, indent=2))
    return result.metrics, False


def run_configs(
    configs: Mapping[str, TrainConfig],
    *,
    seeds: Sequence[int] | int = (0,),
    output_dir: str | os.PathLike,
    force: bool = False,
    reuse: bool = True,
    progress: bool = False,
    verbose: bool = True,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Train every named configuration with every seed (cached, see :func:`run_config`).

    Args:
        configs: ``{name: TrainConfig}``; names become folder names (letters, digits, ``._+-``).
            Each config's own ``seed`` is replaced by the seeds.
        seeds: seeds to run each configuration with.
        output_dir: runs go to ``output_dir/runs/<name>__seed<k>/``.
        force: retrain finished runs.
        reuse: reuse finished runs of sibling output folders (other notebooks).
        progress: per-epoch progress bars.
        verbose: print one line per run (trained or reused, time, mIoU_D, ECE_D).
        extra: ``{name: {column: value}}`` added to that configuration's rows (e.g. an epsilon).

    Returns:
        A tidy DataFrame, one row per run in the order of ``configs`` then ``seeds``: ``config``,
        ``seed``, the ``extra`` columns, ``cached``, ``run_dir``, every scalar metric and ``epoch_time_s``
        (mean wall time of a training epoch, without data set creation and evaluation).
    """
    if not isinstance(configs, Mapping) or not configs:
        raise ValueError(f"Expected `configs` to be a non-empty dict of name -> TrainConfig, but got {configs!r}.")
    for name, cfg in configs.items():
        _check_name(name)
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"Expected `configs[{name!r}]` to be a TrainConfig, but got {type(cfg).__name__}.")
    seeds = _check_seeds([seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds)
    if output_dir is None:
        raise ValueError("Expected `output_dir` to be a folder path, but got None.")
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(configs))
    if unknown:
        raise ValueError(f"Expected `extra` keys among the config names {sorted(configs)}, but got {unknown}.")
    rows = []
    for name, cfg in configs.items():
        for seed in seeds:
            run_dir = run_dir_for(output_dir, name, seed)
            t0 = time.perf_counter()
            metrics, cached = run_config(cfg.replace(seed=seed), run_dir, force=force, reuse=reuse, progress=progress)
            scalars = _scalar_metrics(metrics)
            history = run_dir / "history.csv"
            if history.is_file():
                epoch_times = pd.read_csv(history).get("time_s")
                if epoch_times is not None and len(epoch_times):
                    scalars["epoch_time_s"] = float(epoch_times.mean())
            if verbose:
                what = "reused" if cached else f"trained in {time.perf_counter() - t0:.1f} s"
                print(f"{name} (seed {seed}): {what}; mIoU_D {scalars.get('mIoU_D', float('nan')):.3f}, "
                      f"ECE_D {scalars.get('ECE_D', float('nan')):.3f}", flush=True)
            rows.append({"config": name, "seed": seed, **dict(extra.get(name, {})), "cached": cached,
                         "run_dir": str(run_dir.resolve()), **scalars})
    return pd.DataFrame(rows)


def load_runs(output_dir: str | os.PathLike) -> pd.DataFrame:
    """The tidy table of every finished run under ``output_dir/runs/`` (e.g. another notebook's).

    Columns as :func:`run_configs` (``config``, ``seed``, ``cached`` = True, ``run_dir``, metrics),
    plus ``labels``, ``loss``, ``epsilon``, ``smoothing``, ``model`` from each ``config.json``.
    """
    runs = Path(output_dir) / "runs"
    rows = []
    if runs.is_dir():
        for folder in sorted(runs.iterdir()):
            recipe = _read_recipe(folder)
            if recipe is None or "__seed" not in folder.name or not (folder / "metrics.json").is_file():
                continue
            name, _, seed = folder.name.rpartition("__seed")
            cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
            metrics = json.loads((folder / "metrics.json").read_text())
            rows.append({"config": name, "seed": int(seed), "cached": True, "run_dir": str(folder.resolve()),
                         **{k: cfg.get(k) for k in ("labels", "loss", "epsilon", "smoothing", "model")},
                         **_scalar_metrics(metrics)})
    return pd.DataFrame(rows)


# ============================================================================ tables


def _metric_list(runs: pd.DataFrame, metrics: Sequence[str] | str | None) -> list[str]:
    if metrics is None:
        skip = {"seed", "cached", "epochs", "steps", "n_images", "n_pixels", "train_time_s", "epoch_time_s"}
        return [c for c in runs.columns if pd.api.types.is_float_dtype(runs[c]) and c not in skip]
    if isinstance(metrics, str):
        metrics = [metrics]
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise ValueError(f"Expected metric columns among {list(runs.columns)}, but got unknown {missing}.")
    return list(metrics)


def summarize(runs: pd.DataFrame, metrics: Sequence[str] | str | None = None, *, by: str | Sequence[str] = "config") -> pd.DataFrame:
    r"""Mean and standard deviation over seeds, per configuration.

    Args:
        runs: a tidy table of :func:`run_configs` (one row per run).
        metrics: metric columns (default: every float column).
        by: grouping column(s); groups keep the order in which they first appear.

    Returns:
        One row per group: the ``by`` columns, ``n_seeds``, then ``<metric>_mean`` and
        ``<metric>_std`` for each metric (``std`` is the sample standard deviation,
        :math:`\sqrt{\sum (x-\bar x)^2/(n-1)}`, NaN for a single seed).

    Example:
        >>> runs = pd.DataFrame({"config": ["a", "a", "b"], "seed": [0, 1, 0], "mIoU_D": [0.5, 0.7, 0.4]})
        >>> summarize(runs, "mIoU_D")
          config  n_seeds  mIoU_D_mean  mIoU_D_std
        0      a        2          0.6    0.141421
        1      b        1          0.4         NaN
    """
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"Expected `runs` to be a pandas DataFrame, but got {type(runs).__name__}.")
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in runs.columns]
    if missing:
        raise ValueError(f"Expected grouping columns among {list(runs.columns)}, but got unknown {missing}.")
    names = _metric_list(runs, metrics)
    grouped = runs.groupby(keys, sort=False, dropna=False)
    out = grouped.size().rename("n_seeds").reset_index()
    for m in names:
        stats = grouped[m].agg(["mean", "std"]).reset_index(drop=True)
        out[f"{m}_mean"] = stats["mean"].to_numpy()
        out[f"{m}_std"] = stats["std"].to_numpy()
    return out


def format_table(summary: pd.DataFrame, metrics: Sequence[str] | str, *, percent: bool = True, digits: int = 1,
                 index: str | Sequence[str] = "config") -> pd.DataFrame:
    """``mean ± std`` strings (only ``mean`` for one seed) of a :func:`summarize` table, for display.

    Example:
        >>> s = pd.DataFrame({"config": ["a"], "n_seeds": [2], "mIoU_D_mean": [0.6], "mIoU_D_std": [0.1414]})
        >>> format_table(s, ["mIoU_D"])
                mIoU_D
        config
        a       60.0 ± 14.1
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    scale = 100.0 if percent else 1.0
    table = summary.set_index(index)
    out = pd.DataFrame(index=table.index)
    for m in metrics:
        if f"{m}_mean" not in table.columns:
            raise ValueError(f"Expected `{m}_mean` in the summary, but its columns are {list(summary.columns)}.")
        mean, std = table[f"{m}_mean"] * scale, table[f"{m}_std"] * scale
        out[m] = [f"{a:.{digits}f}" if not np.isfinite(b) else f"{a:.{digits}f} ± {b:.{digits}f}" for a, b in zip(mean, std)]
    return out


def headline(summary: pd.DataFrame, metrics: Sequence[str], *, key: str = "config", prefix: str = "") -> dict[str, float]:
    """Flat ``{"<prefix><metric>.<config>": mean}`` dict for :func:`jmlkit.utils.write_metrics`.

    Example:
        >>> s = pd.DataFrame({"config": ["ce"], "n_seeds": [1], "ECE_D_mean": [0.05], "ECE_D_std": [float("nan")]})
        >>> headline(s, ["ECE_D"])
        {'ECE_D.ce': 0.05}
    """
    out = {}
    for _, row in summary.iterrows():
        for m in metrics:
            value = row[f"{m}_mean"]
            out[f"{prefix}{m}.{row[key]}"] = None if value is None or not math.isfinite(float(value)) else float(value)
    return out


# ============================================================================ sweeps


def sweep(
    configs: Mapping[str, TrainConfig],
    field: str,
    values: Sequence[Any],
    *,
    seeds: Sequence[int] | int,
    output_dir: str | os.PathLike,
    column: str | None = None,
    name_format: str = "{name}_{short}{value:g}",
    short: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Every config × every value of one TrainConfig ``field`` × every seed, as a tidy table.

    The runs are named ``name_format.format(name=..., short=..., value=...)`` (``short`` defaults to
    the field's initials, ``epsilon`` → ``e``), and the table has a column ``column`` (default the
    field name) with the value and ``method`` with the original config name. ``kwargs`` go to
    :func:`run_configs`.
    """
    if not isinstance(field, str) or field not in TrainConfig.__dataclass_fields__:
        raise ValueError(f"Expected `field` to be a TrainConfig option, but got {field!r}.")
    values = list(values)
    if not values:
        raise ValueError(f"Expected `values` to be a non-empty list, but got {values!r}.")
    short = short if short is not None else "".join(w[0] for w in field.split("_"))
    column = column or field
    named: dict[str, TrainConfig] = {}
    extra: dict[str, dict[str, Any]] = {}
    for name, cfg in configs.items():
        for value in values:
            run = name_format.format(name=name, short=short, value=value)
            named[run] = cfg.replace(**{field: value})
            extra[run] = {"method": name, column: value}
    return run_configs(named, seeds=seeds, output_dir=output_dir, extra=extra, **kwargs)


def epsilon_sweep(configs: Mapping[str, TrainConfig], epsilons: Sequence[float], *, seeds: Sequence[int] | int,
                  output_dir: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Label-smoothing ε sweep: each config with ``labels="ls"`` and every ``epsilon`` (runs ``<name>_e<ε>``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as out:
        ...     df = epsilon_sweep({"jml": profile_config("smoke", loss="jml")}, [0.0, 0.2], seeds=0,
        ...                        output_dir=out, verbose=False)
        >>> df[["config", "method", "epsilon"]].values.tolist()
        [['jml_e0', 'jml', 0.0], ['jml_e0.2', 'jml', 0.2]]
    """
    for eps in epsilons:
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0.0 <= eps <= 1.0:
            raise ValueError(f"Expected `epsilons` in [0, 1], but got {eps!r}.")
    ls = {name: cfg.replace(labels="ls") for name, cfg in configs.items()}
    return sweep(ls, "epsilon", [float(e) for e in epsilons], seeds=seeds, output_dir=output_dir, short="e", **kwargs)


def smoothing_configs(base: TrainConfig, *, epsilon: float = 0.1) -> dict[str, TrainConfig]:
    """The label-smoothing comparison of notebook 02 (compound losses are 0.25 CE + 0.75 region loss).

    ============  ================  ==========================
    name          labels            loss
    ============  ================  ==========================
    ``ce_hard``   hard              cross-entropy
    ``ce_ls``     uniform LS, ε     cross-entropy
    ``sjl_ls``    uniform LS, ε     CE + soft Jaccard (SJL)
    ``jml_ls``    uniform LS, ε     CE + Jaccard metric (JML)
    ``jml_bls``   boundary LS, ε    CE + Jaccard metric (JML)
    ============  ================  ==========================

    Example:
        >>> list(smoothing_configs(profile_config("smoke")))
        ['ce_hard', 'ce_ls', 'sjl_ls', 'jml_ls', 'jml_bls']
    """
    ls = dict(labels="ls", epsilon=epsilon, smoothing="uniform")
    return {
        "ce_hard": base.replace(labels="hard", loss="ce"),
        "ce_ls": base.replace(loss="ce", **ls),
        "sjl_ls": base.replace(loss="ce+sjl", **ls),
        "jml_ls": base.replace(loss="ce+jml", **ls),
        "jml_bls": base.replace(loss="ce+jml", labels="ls", epsilon=epsilon, smoothing="boundary"),
    }


# ============================================================================ distillation


def train_teacher(config: TrainConfig, *, output_dir: str | os.PathLike, seed: int = 0, name: str = "teacher",
                  verbose: bool = True, **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse) a teacher; returns ``(run_dir, metrics)``. ``kwargs`` go to :func:`run_configs`."""
    runs = run_configs({name: config}, seeds=[seed], output_dir=output_dir, verbose=verbose, **kwargs)
    row = runs.iloc[0]
    metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
    return Path(row["run_dir"]), metrics


def distillation_configs(student: TrainConfig, teacher: str | os.PathLike, *, temperature: float = 1.0,
                         label_weight: float = 0.0) -> dict[str, TrainConfig]:
    """Students of notebook 03, all with the same model and data.

    ==============  ==============================  =================================================
    name            target                          loss
    ==============  ==============================  =================================================
    ``hard_ce``     hard labels                     cross-entropy
    ``kd_ce``       teacher's softmax (T)           cross-entropy = KL(teacher ‖ student) + const.
    ``kd_jml``      teacher's softmax (T)           Jaccard metric loss
    ``kd_ce+jml``   teacher's softmax (T)           0.25 CE + 0.75 JML
    ==============  ==============================  =================================================

    Example:
        >>> cfgs = distillation_configs(profile_config("smoke"), "runs/teacher__seed0", temperature=2.0)
        >>> [(k, c.labels, c.loss) for k, c in cfgs.items()]
        [('hard_ce', 'hard', 'ce'), ('kd_ce', 'kd', 'ce'), ('kd_jml', 'kd', 'jml'), ('kd_ce+jml', 'kd', 'ce+jml')]
    """
    teacher = str(Path(teacher).resolve())
    kd = dict(labels="kd", teacher=teacher, kd_temperature=temperature, kd_label_weight=label_weight)
    return {
        "hard_ce": student.replace(labels="hard", loss="ce"),
        "kd_ce": student.replace(loss="ce", **kd),
        "kd_jml": student.replace(loss="jml", **kd),
        "kd_ce+jml": student.replace(loss="ce+jml", **kd),
    }


# ============================================================================ semi-supervised


def ssl_configs(base: TrainConfig, *, hard_threshold: float = 0.9, soft_threshold: float = 0.0,
                ssl_weight: float = 1.0, ssl_warmup: float = 0.5,
                steps_per_epoch: int | None = None) -> dict[str, TrainConfig]:
    """Methods of notebook 04; every method takes the same number of optimisation steps.

    ==================  ====================================================================
    name                what
    ==================  ====================================================================
    ``labeled_only``    cross-entropy on the labelled images only
    ``pseudo_hard_ce``  + FixMatch-style hard pseudo-labels (arg-max, confidence ≥ ``hard_threshold``), CE
    ``pseudo_soft_jml`` + soft pseudo-labels (the model's probabilities, ≥ ``soft_threshold``), CE + JML
    ==================  ====================================================================

    The unlabelled loss is weighted by ``ssl_weight`` and starts after ``ssl_warmup`` of the steps (the first
    half by default: pseudo-labels of an untrained network are noise; in our quick runs this warm-up doubled the
    mIoU of hard pseudo-labelling at 1/4 of the labels). ``steps_per_epoch`` defaults to one pass over ``train_limit`` images (the labelled set is cycled); the
    unlabelled batches are half the labelled batch size, to keep a semi-supervised step affordable on a CPU.

    Example:
        >>> [(k, c.labels, c.loss, c.ssl_soft) for k, c in ssl_configs(profile_config("smoke")).items()]
        [('labeled_only', 'hard', 'ce', True), ('pseudo_hard_ce', 'ssl', 'ce', False), ('pseudo_soft_jml', 'ssl', 'ce+jml', True)]
    """
    if steps_per_epoch is None:
        n = base.train_limit if base.train_limit is not None else 1000
        steps_per_epoch = max(1, n // base.batch_size)
    common = dict(steps_per_epoch=steps_per_epoch, unlabeled_batch_size=max(1, base.batch_size // 2))
    ssl = dict(labels="ssl", ssl_weight=ssl_weight, ssl_warmup=ssl_warmup, **common)
    return {
        "labeled_only": base.replace(labels="hard", loss="ce", **common),
        "pseudo_hard_ce": base.replace(loss="ce", ssl_soft=False, ssl_threshold=hard_threshold, **ssl),
        "pseudo_soft_jml": base.replace(loss="ce+jml", ssl_soft=True, ssl_threshold=soft_threshold, **ssl),
    }


def labeled_fraction_sweep(configs: Mapping[str, TrainConfig], fractions: Sequence[float], *,
                           seeds: Sequence[int] | int, output_dir: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Each config with every labelled fraction (runs ``<name>_f<fraction>``), with a ``fraction`` column."""
    for f in fractions:
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0.0 < f <= 1.0:
            raise ValueError(f"Expected `fractions` in (0, 1], but got {f!r}.")
    return sweep(configs, "labeled_fraction", [float(f) for f in fractions], seeds=seeds, output_dir=output_dir,
                 column="fraction", short="f", **kwargs)


# ============================================================================ analysis of finished runs


def reliability_table(run: str | os.PathLike | Mapping[str, Any]) -> pd.DataFrame:
    """The reliability table (one row per confidence bin) of a run folder or a metrics dict."""
    metrics = run if isinstance(run, Mapping) else json.loads((Path(run) / "metrics.json").read_text())
    if "reliability" not in metrics:
        raise ValueError("Expected metrics with a 'reliability' table, but got none.")
    table = metrics["reliability"]
    return table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)


def load_model(run_dir: str | os.PathLike):
    """The trained model of a run folder (eval mode, CPU)."""
    from jmlkit.train import load_checkpoint

    return load_checkpoint(run_dir)


def eval_dataset(config: TrainConfig | str | os.PathLike):
    """The evaluation data of a config (or a run folder's ``config.json``), limited to ``eval_limit``."""
    from torch.utils.data import Subset

    from jmlkit.train import make_dataset

    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_json(Path(config) / "config.json")
    data = make_dataset(config.dataset, config.eval_split or "test", **config.dataset_kwargs)
    if config.eval_limit is not None and config.eval_limit < len(data):
        data = Subset(data, range(config.eval_limit))
    return data


def boundary_calibration(run_dir: str | os.PathLike, *, max_distance: int = 6, n_bins: int = 15,
                         batch_size: int = 64) -> pd.DataFrame:
    """Calibration against distance to the nearest label change, for a run's model on its eval data.

    Returns the table of :class:`jmlkit.metrics.BoundaryCalibration` (``distance``, ``count``,
    ``accuracy``, ``confidence``, ``ECE``), ready for :func:`jmlkit.viz.calibration_vs_boundary_distance`.
    """
    import torch
    from torch.utils.data import DataLoader

    from jmlkit.metrics import BoundaryCalibration

    model = load_model(run_dir)
    data = eval_dataset(run_dir)
    base = data.dataset if hasattr(data, "dataset") else data
    metric = BoundaryCalibration(base.num_classes, max_distance=max_distance, n_bins=n_bins,
                                 ignore_index=getattr(base, "ignore_index", None))
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=batch_size):
            metric.update(torch.softmax(model(batch["image"]).float(), dim=1), batch["label"])
    return metric.compute()


# ============================================================================ figures of the recipes

#: Display names of the recipe configurations (figure labels).
LABELS = {
    "ce_hard": "CE, hard labels",
    "ce_ls": "CE + LS",
    "sjl_ls": "CE+SJL + LS",
    "jml_ls": "CE+JML + LS",
    "jml_bls": "CE+JML + boundary LS",
    "hard_ce": "hard labels, CE",
    "kd_ce": "KD, CE (= KL)",
    "kd_jml": "KD, JML",
    "kd_ce+jml": "KD, CE+JML",
    "labeled_only": "labelled only (CE)",
    "pseudo_hard_ce": "hard pseudo-labels (CE)",
    "pseudo_soft_jml": "soft pseudo-labels (CE+JML)",
}


def _label(name: Any) -> str:
    return LABELS.get(str(name), str(name))


def bar_chart(summary: pd.DataFrame, metrics: Sequence[str], *, key: str = "config", percent: bool = True,
              title: str | None = None, reference: Mapping[str, float] | None = None):
    """One panel per metric: a bar per configuration (mean over seeds) with ±std error bars.

    Args:
        summary: a :func:`summarize` table.
        metrics: metric names (``<metric>_mean`` columns).
        key: the column naming the bars.
        percent: show values ×100.
        title: figure title.
        reference: ``{metric: value}`` drawn as a dashed horizontal line (e.g. the teacher's).

    Example:
        >>> s = summarize(pd.DataFrame({"config": ["a", "b"], "seed": [0, 0], "mIoU_D": [0.5, 0.6]}))
        >>> [ax.get_title() for ax in bar_chart(s, ["mIoU_D"]).axes]
        ['mIoU_D']
    """
    from matplotlib.figure import Figure

    metrics = list(metrics)
    for m in metrics:
        if f"{m}_mean" not in summary.columns:
            raise ValueError(f"Expected `{m}_mean` in the summary, but its columns are {list(summary.columns)}.")
    scale = 100.0 if percent else 1.0
    names = [_label(n) for n in summary[key]]
    fig = Figure(figsize=(2.2 + 0.55 * len(names) * len(metrics), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for i, (ax, m) in enumerate(zip(axes, metrics)):
        mean = summary[f"{m}_mean"].to_numpy(float) * scale
        std = np.nan_to_num(summary[f"{m}_std"].to_numpy(float) * scale)
        x = np.arange(len(names))
        ax.bar(x, mean, yerr=std, capsize=3, color=[f"C{j}" for j in range(len(names))], edgecolor="black", linewidth=0.5)
        for xi, v in zip(x, mean):
            if np.isfinite(v):
                ax.annotate(f"{v:.1f}" if percent else f"{v:.3f}", (xi, v), ha="center", va="bottom", fontsize="x-small",
                            xytext=(0, 2), textcoords="offset points")
        if reference and m in reference and reference[m] is not None:
            ax.axhline(reference[m] * scale, color="gray", linestyle="--", linewidth=1, label="reference" if i else "teacher")
            if i == 0:
                ax.legend(fontsize="small", loc="lower right")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_title(m)
        ax.set_ylabel(f"{m} (%)" if percent else m)
    if title:
        fig.suptitle(title)
    return fig


def sweep_plot(summary: pd.DataFrame, x: str, metrics: Sequence[str], *, hue: str = "method", percent: bool = True,
               logx: bool = False, title: str | None = None):
    """One panel per metric: mean ± std against ``x`` (e.g. ``epsilon`` or ``fraction``), a line per ``hue``.

    ``summary`` is ``summarize(runs, by=[hue, x])``.

    Example:
        >>> runs = pd.DataFrame({"method": ["a", "a"], "epsilon": [0.0, 0.1], "seed": [0, 0], "ECE_D": [0.1, 0.05]})
        >>> fig = sweep_plot(summarize(runs, by=["method", "epsilon"]), "epsilon", ["ECE_D"])
        >>> fig.axes[0].get_xlabel()
        'epsilon'
    """
    from matplotlib.figure import Figure

    metrics = list(metrics)
    scale = 100.0 if percent else 1.0
    fig = Figure(figsize=(3.6 * len(metrics) + 0.6, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, m in zip(axes, metrics):
        for i, (name, part) in enumerate(summary.groupby(hue, sort=False)):
            part = part.sort_values(x)
            mean = part[f"{m}_mean"].to_numpy(float) * scale
            std = np.nan_to_num(part[f"{m}_std"].to_numpy(float) * scale)
            ax.errorbar(part[x].to_numpy(float), mean, yerr=std, marker="o", capsize=3, color=f"C{i}", label=_label(name))
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
        ax.set_ylabel(f"{m} (%)" if percent else m)
        ax.set_title(m)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def target_panel(labels, num_classes: int, epsilon: float, *, kernel_size: int = 3, max_images: int = 2,
                 ignore_index: int | None = None):
    """What the network is asked to predict: the probability of the labelled class under hard labels,
    uniform label smoothing and boundary label smoothing (one row per image; ``ignore_index`` pixels blank).

    Example:
        >>> import torch
        >>> fig = target_panel(torch.zeros(1, 8, 8, dtype=torch.long), 3, 0.2)
        >>> [ax.get_title() for ax in fig.axes[:4]]
        ['label', 'hard: p(y)', 'uniform LS: p(y)', 'boundary LS: p(y)']
    """
    import torch
    from matplotlib.figure import Figure

    from jmlkit import targets as T

    labels = torch.as_tensor(labels).long()
    if labels.ndim == 2:
        labels = labels[None]
    labels = labels[:max_images]
    rows = [
        ("hard", T.one_hot(labels, num_classes, ignore_index=ignore_index)),
        ("uniform LS", T.label_smoothing(labels, num_classes, epsilon, ignore_index=ignore_index)),
        ("boundary LS", T.boundary_label_smoothing(labels, num_classes, epsilon, kernel_size=kernel_size,
                                                   ignore_index=ignore_index)),
    ]
    valid = rows[0][1].mask
    shown = torch.where(valid, labels, torch.zeros_like(labels))
    fig = Figure(figsize=(9.5, 2.4 * labels.shape[0] + 0.3), layout="constrained")
    axes = np.asarray(fig.subplots(labels.shape[0], 4, squeeze=False))
    for r in range(labels.shape[0]):
        axes[r, 0].imshow(np.ma.masked_where(~valid[r].numpy(), labels[r].numpy()), cmap="tab20", vmin=0, vmax=19,
                          interpolation="nearest")
        for c, (name, st) in enumerate(rows, start=1):
            p_y = np.ma.masked_where(~valid[r].numpy(), st.soft[r].gather(0, shown[r][None]).squeeze(0).numpy())
            im = axes[r, c].imshow(p_y, cmap="viridis", vmin=1 - epsilon, vmax=1.0, interpolation="nearest")
        for c, name in enumerate(["label"] + [f"{n}: p(y)" for n, _ in rows]):
            if r == 0:
                axes[r, c].set_title(name)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="target probability of the labelled class")
    return fig


# ============================================================================ small helpers of the notebooks

#: Default sweep values per profile (``profile_values(name, profile)``).
SWEEP_VALUES: dict[str, dict[str, list[float]]] = {
    "epsilon": {"smoke": [0.0, 0.2], "quick": [0.0, 0.1, 0.3], "full": [0.0, 0.05, 0.1, 0.2, 0.3]},
    "fraction": {"smoke": [0.25, 0.5], "quick": [1 / 16, 1 / 4], "full": [1 / 16, 1 / 8, 1 / 4]},
}


def profile_values(name: str, profile: str, values: Sequence[float] | None = None) -> list[float]:
    """``values`` when given, else the profile's default values of a sweep (:data:`SWEEP_VALUES`).

    Example:
        >>> profile_values("epsilon", "quick"), profile_values("epsilon", "full", [0.2])
        ([0.0, 0.1, 0.3], [0.2])
    """
    if name not in SWEEP_VALUES:
        raise ValueError(f"Expected `name` to be one of {tuple(SWEEP_VALUES)}, but got {name!r}.")
    _check_profile(profile)
    out = list(SWEEP_VALUES[name][profile] if values is None else values)
    if not out:
        raise ValueError(f"Expected a non-empty list of {name} values, but got {values!r}.")
    return out


def examples(config: TrainConfig, n: int = 4, *, split: str | None = None) -> dict[str, Any]:
    """The first ``n`` items of a config's evaluation split, stacked: ``image (n, C, H, W)``,
    ``label (n, H, W)``, plus ``num_classes``, ``class_names`` and ``ignore_index`` of the data set."""
    import torch

    data = eval_dataset(config if split is None else config.replace(eval_split=split))
    base = data.dataset if hasattr(data, "dataset") else data
    items = [data[i] for i in range(min(n, len(data)))]
    return {"image": torch.stack([it["image"] for it in items]), "label": torch.stack([it["label"] for it in items]),
            "num_classes": base.num_classes, "class_names": list(getattr(base, "class_names", [])),
            "ignore_index": getattr(base, "ignore_index", None)}


def compare(summary: pd.DataFrame, a: str, b: str, metric: str, *, key: str = "config", percent: bool = True,
            digits: int = 1) -> str:
    """A sentence comparing two configurations on one metric, written from the numbers.

    Example:
        >>> s = pd.DataFrame({"config": ["a", "b"], "n_seeds": [1, 1], "ECE_D_mean": [0.02, 0.05],
        ...                   "ECE_D_std": [float("nan")] * 2})
        >>> compare(s, "a", "b", "ECE_D")
        'a has a lower ECE_D than b (2.0 vs 5.0)'
    """
    table = summary.set_index(key)
    for name in (a, b):
        if name not in table.index:
            raise ValueError(f"Expected `{name}` among the configurations {list(table.index)}, but it is not there.")
    scale = 100.0 if percent else 1.0
    ma, mb = float(table.at[a, f"{metric}_mean"]), float(table.at[b, f"{metric}_mean"])
    sa, sb = float(table.at[a, f"{metric}_std"]), float(table.at[b, f"{metric}_std"])

    def fmt(m: float, s: float) -> str:
        return f"{m * scale:.{digits}f}" + (f" ± {s * scale:.{digits}f}" if math.isfinite(s) else "")

    if round(ma * scale, digits) == round(mb * scale, digits):
        text = f"{_label(a)} and {_label(b)} have the same {metric} ({fmt(ma, sa)})"
    else:
        rel = "higher" if ma > mb else "lower"
        text = f"{_label(a)} has a {rel} {metric} than {_label(b)} ({fmt(ma, sa)} vs {fmt(mb, sb)})"
    if math.isfinite(sa) and math.isfinite(sb) and abs(ma - mb) <= max(sa, sb):
        text += ", within one standard deviation over seeds"
    return text


#: Default models of the distillation recipe per profile: the teacher is the larger one.
DISTILL_MODELS: dict[str, dict[str, str]] = {
    "teacher": {"smoke": "tiny", "quick": "small", "full": "teacher"},
    "student": {"smoke": "tiny", "quick": "student", "full": "student"},
}


def distill_model(role: str, profile: str, model: str | None = None) -> str:
    """``model`` when given, else the profile's default ``"teacher"`` or ``"student"`` model (:data:`DISTILL_MODELS`).

    Example:
        >>> distill_model("teacher", "quick"), distill_model("student", "full"), distill_model("student", "quick", "tiny")
        ('small', 'student', 'tiny')
    """
    if role not in DISTILL_MODELS:
        raise ValueError(f"Expected `role` to be one of {tuple(DISTILL_MODELS)}, but got {role!r}.")
    _check_profile(profile)
    return DISTILL_MODELS[role][profile] if model is None else model


def run_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` of a run folder (scalars, per-class lists and the reliability table as a dict)."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"Expected a finished run folder with metrics.json, but {str(path)!r} does not exist.")
    return json.loads(path.read_text())


def history_plot(runs: Mapping[str, str | os.PathLike], columns: Sequence[str], *, title: str | None = None):
    """Training curves: one panel per ``history.csv`` column (e.g. ``train_loss``, ``mask_ratio``), a line per run.

    Args:
        runs: ``{label: run folder}``.
        columns: history columns; a run without a column is left out of that panel.
        title: figure title.
    """
    from matplotlib.figure import Figure

    columns = list(columns)
    fig = Figure(figsize=(3.8 * len(columns) + 0.4, 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(columns)))
    for i, (label, folder) in enumerate(runs.items()):
        history = pd.read_csv(Path(folder) / "history.csv")
        for ax, col in zip(axes, columns):
            if col in history.columns:
                ax.plot(history["epoch"], history[col], marker=".", color=f"C{i}", label=_label(label))
    for ax, col in zip(axes, columns):
        ax.set_xlabel("epoch")
        ax.set_title(col)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
