"""Data regimes: the same comparison with the options of each regime on top (larger objects, smaller ones...).

A regime is a dict of :class:`~jmlkit.engine.TrainConfig` options (:func:`jmlkit.profiles.regime_settings`): its
``dataset_kwargs`` are merged into each configuration's, its other options replace the configuration's.
:func:`run_regimes` trains a comparison in every regime, :func:`run_per_regime` each regime's own configurations,
through :func:`~jmlkit.experiments.run_configs` (one call, so that a Dask scheduler gets every run at once); both
return one table with a ``regime`` column.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from jmlkit._checks import check_type
from jmlkit.engine import TrainConfig
from jmlkit.experiments.runs import _check_name, run_configs

__all__ = ["in_regime", "regime_configs", "run_regimes", "run_per_regime"]


def in_regime(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """``config`` in a data regime (:func:`jmlkit.profiles.regime_settings`): the regime's ``dataset_kwargs`` merged
    into the config's, its other options replacing the config's.

    >>> from jmlkit.engine import TrainConfig
    >>> c = in_regime(TrainConfig.from_profile("smoke"), {"dataset_kwargs": {"size": 24}, "epochs": 2})
    >>> c.dataset_kwargs["size"], c.dataset_kwargs["digit_size"], c.epochs
    (24, [12, 16], 2)
    """
    check_type("config", config, TrainConfig)
    options = dict(overrides)
    data = dict(options.pop("dataset_kwargs", None) or {})
    return config.replace(dataset_kwargs={**config.dataset_kwargs, **data}, **options)


def regime_configs(config: TrainConfig, regimes: Mapping[str, Mapping[str, Any]]) -> dict[str, TrainConfig]:
    """``{regime: config in that regime}`` (:func:`in_regime` for each of ``regimes``).

    >>> from jmlkit.engine import TrainConfig
    >>> from jmlkit.profiles import regime_settings
    >>> {k: c.dataset_kwargs["size"] for k, c in regime_configs(TrainConfig.from_profile("smoke"), regime_settings("smoke")).items()}
    {'small': 16, 'large': 24}
    """
    return {name: in_regime(config, overrides) for name, overrides in regimes.items()}


def run_regimes(
    configs: Mapping[str, TrainConfig],
    regimes: Mapping[str, Mapping[str, Any]],
    *,
    seeds: Sequence[int] | int = (0,),
    output_dir: str | os.PathLike,
    only: Mapping[str, Sequence[str]] | None = None,
    run: Callable[..., pd.DataFrame] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`run_configs` (or ``run``) in each data regime: every configuration with the regime's options on top.

    Args:
        configs: ``{name: TrainConfig}`` (the comparison).
        regimes: ``{regime: TrainConfig options}``, e.g. :func:`jmlkit.profiles.regime_settings`: its
            ``dataset_kwargs`` are merged into each configuration's, other options replace the configuration's
            (a regime of larger images may train on fewer of them); ``{}`` keeps a configuration as it is.
        seeds, output_dir, **kwargs: as in :func:`run_configs`. Runs go to
            ``output_dir/runs/<regime>.<name>__seed<k>/``.
        only: ``{regime: [names]}``: run only these configurations in that regime (others: all).
        run: what trains a dict of configurations (default :func:`run_configs`; e.g.
            :func:`~jmlkit.experiments.labeled_fraction_sweep`), called as ``run(configs, seeds=..., output_dir=...,
            **kwargs)``; it must return a table with a ``config`` column (and may have ``method``).

    Returns:
        ``run``'s table with a ``regime`` column first; ``config`` (and ``method``) without the regime prefix.

    Example:
        >>> import tempfile
        >>> from jmlkit.engine import TrainConfig
        >>> cfg = TrainConfig.from_profile("smoke", labels="hard", loss="ce")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     runs = run_regimes({"ce": cfg}, {"small": {}, "large": {"dataset_kwargs": {"size": 24}}}, output_dir=d,
        ...                        verbose=False)
        >>> runs[["regime", "config", "seed"]].values.tolist()
        [['small', 'ce', 0], ['large', 'ce', 0]]
    """
    if not isinstance(regimes, Mapping) or not regimes:
        raise ValueError(f"Expected `regimes` to be a non-empty dict of regime -> dataset_kwargs, but got {regimes!r}.")
    only = dict(only or {})
    unknown = sorted(set(only) - set(regimes))
    if unknown:
        raise ValueError(f"Expected `only` keys among the regimes {list(regimes)}, but got {unknown}.")
    per_regime = {}
    for regime, overrides in regimes.items():
        names = list(configs) if regime not in only else [n for n in configs if n in set(only[regime])]
        per_regime[regime] = {name: in_regime(configs[name], overrides) for name in names}
    return run_per_regime(per_regime, seeds=seeds, output_dir=output_dir, run=run, **kwargs)


def run_per_regime(
    per_regime: Mapping[str, Mapping[str, TrainConfig]],
    *,
    seeds: Sequence[int] | int = (0,),
    output_dir: str | os.PathLike,
    run: Callable[..., pd.DataFrame] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Train ``{regime: {name: config}}`` in one call of ``run`` (default :func:`run_configs`), so that a Dask
    scheduler gets the runs of every regime at once: :func:`run_regimes` when each regime has its own
    configurations (e.g. built from each regime's base configuration). Runs go to
    ``output_dir/runs/<regime>.<name>__seed<k>/``; returns ``run``'s table as :func:`run_regimes` does.
    """
    if not isinstance(per_regime, Mapping) or not per_regime:
        raise ValueError(f"Expected `per_regime` to be a non-empty dict of regime -> configurations, but got {per_regime!r}.")
    named: dict[str, TrainConfig] = {}
    for regime, configs in per_regime.items():
        _check_name(regime)
        for name, config in configs.items():
            full = f"{regime}.{name}"
            if full in named:
                raise ValueError(f"Expected one run per name, but regime {regime!r} and an earlier regime both give "
                                 f"{full!r}; rename a regime or a configuration.")
            named[full] = config
    table = (run or run_configs)(named, seeds=seeds, output_dir=output_dir, **kwargs)
    by_length = sorted(per_regime, key=len, reverse=True)  # the longest regime name that prefixes the run's name
    regime_of = table["config"].map(lambda c: next(r for r in by_length if c.startswith(f"{r}.")))
    for column in ("config", "method"):
        if column in table.columns:
            table[column] = [value[len(r) + 1:] for value, r in zip(table[column], regime_of)]
    table.insert(0, "regime", regime_of.to_numpy())
    return table.reset_index(drop=True)
