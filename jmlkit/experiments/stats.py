r"""Differences between two methods with a confidence interval, paired by seed.

The rule of the project: a difference between two configurations is a *gain* or a *loss* only when
its confidence interval (95% by default), **paired by seed**, excludes 0; otherwise it is "no
measurable difference". With one seed there is no interval at all.

Pairing by seed: run ``a`` with seed ``s`` and run ``b`` with seed ``s`` saw the same initialisation
and the same data order, so the per-seed differences :math:`d_s = a_s - b_s` remove what the two runs
share. Only the seeds present for both configurations are paired (:attr:`PairedDifference.seeds`
lists them); a seed whose value is NaN for either is dropped with a warning naming it.

The interval is the Student-t interval of the mean of the :math:`n` differences,

.. math:: \bar d \pm t_{n-1,\,(1+c)/2}\; s_d / \sqrt{n},

with :math:`s_d` the sample standard deviation (``ddof=1``) and :math:`c` the confidence. It is the
interval of :func:`scipy.stats.ttest_rel` (the quantile comes from :data:`scipy.stats.t`). An interval
that touches 0 does not exclude it.

Which direction is better: higher, except for the metrics whose name starts with ``ECE``, ``SCE``,
``MCE``, ``ACE``, ``RMSCE``, ``Brier`` or ``NLL`` (calibration errors, Brier score, negative
log-likelihood), which are lower-is-better (see :func:`higher_is_better`); ``higher_is_better=`` overrides.

Example:
    >>> import pandas as pd
    >>> runs = pd.DataFrame({"config": ["ls"] * 3 + ["ce"] * 3, "seed": [0, 1, 2] * 2,
    ...                      "mIoU_D": [0.62, 0.65, 0.63, 0.60, 0.62, 0.61]})
    >>> d = paired_difference(runs, "ls", "ce", "mIoU_D")
    >>> d.n, d.verdict
    (3, 'gain')
    >>> format_difference(d)
    '+2.3 [0.9, 3.8] points (3 seeds): gain'
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from jmlkit._checks import check_bool, check_int, check_real, check_str

__all__ = ["PairedDifference", "paired_difference", "paired_differences", "regime_differences", "differences_table", "from_record",
           "fraction_differences",
           "format_difference", "higher_is_better"]

LOWER_IS_BETTER_PREFIXES = ("ECE", "SCE", "MCE", "ACE", "RMSCE", "Brier", "NLL", "MAE", "L1", "extreme")

GAIN, LOSS, NO_DIFFERENCE, NOT_MEASURABLE = "gain", "loss", "no measurable difference", "not measurable (n < 2)"


@dataclass(frozen=True)
class PairedDifference:
    """One paired comparison ``a − b`` on ``metric`` (see the module for the rule).

    Attributes:
        a, b: the two configurations; ``delta`` is ``a − b``.
        metric: the metric column.
        n: the number of paired seeds.
        delta: mean over the paired seeds of ``a − b`` (NaN for ``n = 0``).
        low, high: the confidence interval of ``delta`` (NaN for ``n < 2``).
        std: sample standard deviation (``ddof=1``) of the per-seed differences (NaN for ``n < 2``).
        seeds: the paired seeds, sorted.
        verdict: ``"gain"``, ``"loss"``, ``"no measurable difference"`` or ``"not measurable (n < 2)"``.
        confidence: the confidence level of the interval.
        higher_is_better: the direction used for the verdict.
    """

    a: Any
    b: Any
    metric: str
    n: int
    delta: float
    low: float
    high: float
    std: float
    seeds: tuple
    verdict: str
    confidence: float = 0.95
    higher_is_better: bool = True


def higher_is_better(metric: str) -> bool:
    """False for the metrics whose name starts with ECE, SCE, MCE, ACE, RMSCE, Brier, NLL, or one of the soft-label
    errors MAE, L1 and extreme (notebook 05's ``MAE_band``, ``L1``, ``extreme_band``); True otherwise.

    >>> higher_is_better("mIoU_D"), higher_is_better("ECE_D"), higher_is_better("Brier")
    (True, False, False)
    """
    metric = check_str("metric", metric)
    return not metric.startswith(LOWER_IS_BETTER_PREFIXES)


def _t_quantile_upper(q: float, df: int) -> float:
    """The t quantile with upper-tail probability ``q`` (scipy's ``t.isf``)."""
    from scipy import stats

    return float(stats.t.isf(q, df))


def _check_runs(runs: Any, key: str, seed: str) -> pd.DataFrame:
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"Expected `runs` to be a pandas DataFrame, but got {type(runs).__name__}.")
    for name, column in (("key", key), ("seed", seed)):
        check_str(name, column)
        if column not in runs.columns:
            raise ValueError(f"Expected `{name}`={column!r} to be a column of `runs`, but its columns are "
                             f"{list(runs.columns)}.")
    return runs


def _check_metric(runs: pd.DataFrame, metric: Any, name: str = "metric") -> str:
    check_str(name, metric)
    if metric not in runs.columns:
        raise ValueError(f"Expected `{name}`={metric!r} to be a column of `runs`, but its columns are "
                         f"{list(runs.columns)}.")
    return metric


def _check_config(runs: pd.DataFrame, key: str, name: str, value: Any) -> None:
    configs = list(pd.unique(runs[key]))
    if value not in configs:
        raise ValueError(f"Expected `{name}` to be one of the configurations {configs}, but got {value!r}.")


def _values(runs: pd.DataFrame, key: str, seed: str, metric: str, config: Any, name: str) -> pd.Series:
    rows = runs[runs[key] == config]
    if rows[seed].duplicated().any():
        dup = sorted(rows.loc[rows[seed].duplicated(), seed].tolist())
        raise ValueError(f"Expected one run per seed for `{name}`={config!r}, but seeds {dup} appear more than once.")
    try:
        values = pd.to_numeric(rows[metric])
    except (TypeError, ValueError) as err:
        raise TypeError(f"Expected `metric`={metric!r} to hold numbers for `{name}`={config!r}: {err}") from None
    return pd.Series(values.to_numpy(dtype=float), index=rows[seed].to_numpy())


def _resolve_direction(metric: str, value: Any) -> bool:
    if value is None:
        return higher_is_better(metric)
    if isinstance(value, Mapping):
        return check_bool(f"higher_is_better[{metric!r}]", value[metric]) if metric in value else higher_is_better(metric)
    return check_bool("higher_is_better", value)


def paired_difference(runs: pd.DataFrame, a: Any, b: Any, metric: str, *, key: str = "config", seed: str = "seed",
                      confidence: float = 0.95, higher_is_better: bool | None = None) -> PairedDifference:
    r"""The difference ``a − b`` on ``metric``, paired by seed, with its Student-t confidence interval.

    Args:
        runs: one row per run, with the columns ``key``, ``seed`` and ``metric``; one run per (config, seed).
        a, b: the two configurations (values of ``runs[key]``).
        metric: the metric column.
        key, seed: the columns naming the configuration and the seed.
        confidence: the confidence level, in (0, 1).
        higher_is_better: the direction for the verdict; ``None`` uses :func:`higher_is_better` of ``metric``
            (lower-is-better for ECE/SCE/MCE/ACE/RMSCE/Brier/NLL).

    Returns:
        A :class:`PairedDifference`; ``delta`` is the mean of the per-seed differences over the seeds present
        (and not NaN) for both configurations, ``[low, high]`` the interval
        :math:`\bar d \pm t_{n-1,(1+c)/2}\, s_d/\sqrt n`. The verdict is ``"gain"`` when the interval lies
        strictly on the better side of 0, ``"loss"`` on the worse side, ``"no measurable difference"``
        when it contains or touches 0, and ``"not measurable (n < 2)"`` with fewer than two paired seeds.

    Raises:
        TypeError: ``runs`` not a DataFrame, a column name not a str, a non-numeric metric.
        ValueError: an unknown configuration or column, ``confidence`` outside (0, 1), a seed run twice.
    """
    runs = _check_runs(runs, key, seed)
    metric = _check_metric(runs, metric)
    _check_config(runs, key, "a", a)
    _check_config(runs, key, "b", b)
    confidence = check_real("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    better_up = _resolve_direction(metric, higher_is_better)

    va = _values(runs, key, seed, metric, a, "a")
    vb = _values(runs, key, seed, metric, b, "b")
    common = sorted(set(va.index) & set(vb.index))
    nan_seeds = [s for s in common if not (math.isfinite(va[s]) and math.isfinite(vb[s]))]
    if nan_seeds:
        warnings.warn(f"paired_difference: {metric} is NaN (or infinite) for {a!r} or {b!r} at seeds {nan_seeds}; "
                      f"these seeds are dropped.", UserWarning, stacklevel=2)
    seeds = tuple(s.item() if hasattr(s, "item") else s for s in common if s not in nan_seeds)
    diffs = np.array([va[s] - vb[s] for s in seeds], dtype=float)
    n = len(diffs)
    nan = float("nan")
    delta = float(diffs.mean()) if n else nan
    if n < 2:
        return PairedDifference(a, b, metric, n, delta, nan, nan, nan, seeds, NOT_MEASURABLE, confidence, better_up)
    std = float(diffs.std(ddof=1))
    half = _t_quantile_upper((1.0 - confidence) / 2.0, n - 1) * std / math.sqrt(n)
    low, high = delta - half, delta + half
    if low > 0:
        verdict = GAIN if better_up else LOSS
    elif high < 0:
        verdict = LOSS if better_up else GAIN
    else:
        verdict = NO_DIFFERENCE
    return PairedDifference(a, b, metric, n, delta, low, high, std, seeds, verdict, confidence, better_up)


def paired_differences(runs: pd.DataFrame, baseline: Any, metrics: str | Sequence[str], *, key: str = "config",
                       seed: str = "seed", confidence: float = 0.95,
                       higher_is_better: bool | Mapping[str, bool] | None = None) -> pd.DataFrame:
    """Every other configuration against ``baseline``: one row per (config, metric), for tables.

    Configurations in their order of first appearance in ``runs``, metrics in the order given. The columns
    are the fields of :class:`PairedDifference` (``a`` is the configuration, ``b`` the baseline).
    ``higher_is_better`` may be a bool for all metrics or a ``{metric: bool}`` mapping (others by the rule).

    >>> runs = pd.DataFrame({"config": ["ce", "ce", "ls", "ls"], "seed": [0, 1, 0, 1], "ECE_D": [.05, .06, .03, .05]})
    >>> paired_differences(runs, "ce", "ECE_D")[["a", "b", "metric", "n", "verdict"]]
        a   b metric  n                   verdict
    0  ls  ce  ECE_D  2  no measurable difference
    """
    runs = _check_runs(runs, key, seed)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("Expected `metrics` to name at least one metric column, but got none.")
    for m in metrics:
        _check_metric(runs, m, "metrics")
    _check_config(runs, key, "baseline", baseline)
    if higher_is_better is not None and not isinstance(higher_is_better, Mapping):
        higher_is_better = check_bool("higher_is_better", higher_is_better)
    rows = []
    for config in pd.unique(runs[key]):
        if config == baseline:
            continue
        for m in metrics:
            direction = _resolve_direction(m, higher_is_better)
            rows.append(asdict(paired_difference(runs, config, baseline, m, key=key, seed=seed,
                                                 confidence=confidence, higher_is_better=direction)))
    return pd.DataFrame(rows, columns=[f.name for f in fields(PairedDifference)])


def regime_differences(runs: pd.DataFrame, baseline: Any, metrics: str | Sequence[str], *, regime: str = "regime",
                       configs: Sequence[Any] | None = None, **kwargs: Any) -> pd.DataFrame:
    """:func:`paired_differences` against ``baseline`` within each data regime (the ``regime`` column of ``runs``),
    with a ``regime`` column first; ``configs`` keeps only these configurations (``a``). Regimes without the
    baseline are left out. ``kwargs`` go to :func:`paired_differences`.

    >>> runs = pd.DataFrame({"regime": ["large"] * 4 + ["small"] * 4, "config": ["ce", "ce", "jml", "jml"] * 2,
    ...                      "seed": [0, 1] * 4, "mIoU_D": [.80, .82, .83, .84, .50, .55, .52, .50]})
    >>> regime_differences(runs, "ce", "mIoU_D")[["regime", "a", "b", "n", "verdict"]]
      regime    a   b  n                   verdict
    0  large  jml  ce  2  no measurable difference
    1  small  jml  ce  2  no measurable difference
    """
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"Expected `runs` to be a pandas DataFrame, but got {type(runs).__name__}.")
    check_str("regime", regime)
    if regime not in runs.columns:
        raise ValueError(f"Expected `regime`={regime!r} to be a column of `runs`, but its columns are {list(runs.columns)}.")
    key = kwargs.get("key", "config")
    frames = []
    for name, rows in runs.groupby(regime, sort=False):
        if baseline not in set(rows[key]):
            continue
        table = paired_differences(rows, baseline, metrics, **kwargs)
        if configs is not None:
            table = table[table["a"].isin(list(configs))]
        table.insert(0, "regime", name)
        frames.append(table)
    columns = ["regime"] + [f.name for f in fields(PairedDifference)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def fraction_differences(runs: pd.DataFrame, baseline: Any, metrics: str | Sequence[str], *, fraction: str = "fraction",
                         key: str = "method", **kwargs: Any) -> pd.DataFrame:
    """:func:`regime_differences` at each labelled fraction (notebook 04): the runs of one fraction paired by seed,
    with a ``fraction`` column last."""
    check_str("fraction", fraction)
    if fraction not in runs.columns:
        raise ValueError(f"Expected `fraction`={fraction!r} to be a column of `runs`, but its columns are {list(runs.columns)}.")
    return pd.concat([regime_differences(rows, baseline, metrics, key=key, **kwargs).assign(**{fraction: f})
                      for f, rows in runs.groupby(fraction, sort=True)], ignore_index=True)


def from_record(record: Mapping[str, Any] | pd.Series) -> PairedDifference:
    """The :class:`PairedDifference` of one row of a differences table (:func:`paired_differences`,
    :func:`regime_differences`); other columns (``regime``) are ignored."""
    return PairedDifference(**{f.name: record[f.name] for f in fields(PairedDifference) if f.name in record})


def differences_table(differences: pd.DataFrame, *, percent: bool = True, digits: int = 1) -> pd.DataFrame:
    """A display table of :func:`regime_differences` (or :func:`paired_differences`): one row per (regime,) ``a``,
    one column per metric holding ``format_difference``'s text ("+2.3 [0.8, 3.8] points (5 seeds): gain"). Columns
    that are not fields of :class:`PairedDifference` (``regime``, a ``fraction``) lead the table.

    >>> d = pd.DataFrame([dict(regime="large", a="jml", b="ce", metric="mIoU_D", n=5, delta=.023, low=.008,
    ...                        high=.038, std=.012, seeds=(0, 1, 2, 3, 4), verdict="gain")])
    >>> differences_table(d).to_dict("records")
    [{'regime': 'large', 'config': 'jml', 'baseline': 'ce', 'mIoU_D': '+2.3 [0.8, 3.8] points (5 seeds): gain'}]
    """
    if not isinstance(differences, pd.DataFrame):
        raise TypeError(f"Expected `differences` to be a pandas DataFrame, but got {type(differences).__name__}.")
    names = {f.name for f in fields(PairedDifference)}
    index = [c for c in differences.columns if c not in names] + ["a", "b"]  # e.g. regime, fraction
    rows: dict[tuple, dict[str, str]] = {}
    for record in differences.to_dict("records"):
        d = from_record(record)
        rows.setdefault(tuple(record[c] for c in index), {})[record["metric"]] = format_difference(
            d, percent=percent, digits=digits)
    rename = {"a": "config", "b": "baseline"}
    return pd.DataFrame([{**{rename.get(c, c): v for c, v in zip(index, k)}, **texts} for k, texts in rows.items()])


def _num(x: float, digits: int, signed: bool) -> str:
    text = f"{x:.{digits}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
        return text
    if signed and not text.startswith("-"):
        text = "+" + text
    return text.replace("-", "\u2212")


def format_difference(d: PairedDifference, *, percent: bool = True, digits: int = 1) -> str:
    """One line for a :class:`PairedDifference`: delta, interval, seeds and verdict.

    ``percent=True`` writes the difference in percentage points (values × 100, "points"); negatives use the
    minus sign ``−``.

    >>> d = PairedDifference("a", "b", "mIoU_D", 5, 0.023, 0.008, 0.038, 0.012, (0, 1, 2, 3, 4), "gain")
    >>> format_difference(d)
    '+2.3 [0.8, 3.8] points (5 seeds): gain'
    >>> format_difference(PairedDifference("a", "b", "ECE_D", 1, 0.01, *[float("nan")] * 3, (0,), "not measurable (n < 2)"))
    'not measurable with 1 seed'
    """
    if not isinstance(d, PairedDifference):
        raise TypeError(f"Expected `d` to be a PairedDifference, but got {type(d).__name__}.")
    percent = check_bool("percent", percent)
    digits = check_int("digits", digits, low=0)
    if d.n < 2:
        return f"not measurable with {d.n} seed" + ("" if d.n == 1 else "s")
    scale = 100.0 if percent else 1.0
    unit = " points" if percent else ""
    return (f"{_num(d.delta * scale, digits, True)} [{_num(d.low * scale, digits, False)}, "
            f"{_num(d.high * scale, digits, False)}]{unit} ({d.n} seeds): {d.verdict}")
