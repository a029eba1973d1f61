"""The paper's claims as data, tested on the committed result files (:func:`claims_table`, :func:`claims_markdown`).

Each :class:`Claim` of :data:`CLAIMS` names two configurations of one result notebook, a metric and the
direction in which Wang, Ning & Blaschko (NeurIPS 2023) report the difference ``a − b``. No number of the paper
is quoted: a claim is only the direction. :func:`claims_table` reads the files that ``jmlkit run --results DIR``
writes (``DIR/<notebook>.csv``, :mod:`jmlkit.runner.results`) and, for each claim and each ``regime`` of the
file, computes the difference paired by seed with its 95 % t-interval (:func:`~jmlkit.experiments.stats.paired_difference`)
and an outcome:

=================  ====================================================================
outcome            when
=================  ====================================================================
``reproduced``     the interval excludes 0 on the side the paper reports
``opposite``       the interval excludes 0 on the other side
``inconclusive``   the interval contains (or touches) 0
``not measurable`` fewer than two paired seeds
``not run``        no file for the notebook, or the configurations / metric are absent
=================  ====================================================================

Example:
    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> results = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"table": "main", "regime": "large", "config": ["jml_bls"] * 3 + ["ce_hard"] * 3,
    ...               "seed": [0, 1, 2] * 2, "mIoU_D": [0.62, 0.65, 0.63, 0.60, 0.62, 0.61],
    ...               "ECE_D": [0.05, 0.04, 0.05, 0.05, 0.05, 0.04]}).to_csv(results / "02_label_smoothing.csv", index=False)
    >>> table = claims_table(results)
    >>> table.loc[table.notebook == "02_label_smoothing", ["metric", "regime", "n", "outcome"]].head(2)
       metric regime  n       outcome
    0  mIoU_D  large  3    reproduced
    1   ECE_D  large  3  inconclusive
    >>> table.loc[table.notebook == "03_distillation", "outcome"].tolist()
    ['not run', 'not run']
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd

from jmlkit._checks import check_str
from jmlkit.experiments.stats import format_difference, paired_difference

__all__ = ["Claim", "CLAIMS", "CLAIM_COLUMNS", "OUTCOMES", "REGIME_ORDER", "claims_table", "claims_markdown"]

REPRODUCED, OPPOSITE, INCONCLUSIVE, NOT_MEASURABLE, NOT_RUN = (
    "reproduced", "opposite", "inconclusive", "not measurable", "not run")
#: Every outcome of a claim, in the order of the module's table.
OUTCOMES = (REPRODUCED, OPPOSITE, INCONCLUSIVE, NOT_MEASURABLE, NOT_RUN)
#: The columns of :func:`claims_table`.
CLAIM_COLUMNS = ("claim", "notebook", "metric", "paper", "regime", "delta", "low", "high", "n", "difference",
                 "outcome")
#: Regimes first in this order in :func:`claims_markdown` (others follow, sorted).
REGIME_ORDER = ("main", "large", "small", "overconfident", "brain")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: ``a − b`` on ``metric`` goes in the paper's direction.

    Attributes:
        claim: the claim in words (no numbers of the paper).
        notebook: the result notebook (``DIR/<notebook>.csv``).
        a, b: the configurations compared, values of the ``config`` column (else of ``method``).
        a_name: ``a`` in words, for the ``paper`` column ("JML+BLS higher").
        metric: the metric column.
        higher: the paper's direction: True when it reports ``a`` higher than ``b``.
        table: the ``table`` of the results file (``"main"``: the notebook's ``runs.csv``).
        by_fraction: one row per value of the ``fraction`` column, when the file has one.
    """

    claim: str
    notebook: str
    a: str
    b: str
    a_name: str
    metric: str
    higher: bool
    table: str = "main"
    by_fraction: bool = False

    @property
    def paper(self) -> str:
        """The paper's direction in words, e.g. ``"JML+BLS higher"``."""
        return f"{self.a_name} {'higher' if self.higher else 'lower'}"


#: The claims of Wang et al. (2023) that notebooks 02–05 test (directions only; the paper's numbers are not quoted).
CLAIMS: tuple[Claim, ...] = (
    Claim("JML + boundary label smoothing vs cross-entropy, mIoU", "02_label_smoothing", "jml_bls", "ce_hard",
          "JML+BLS", "mIoU_D", True),
    Claim("JML + boundary label smoothing vs cross-entropy, calibration", "02_label_smoothing", "jml_bls", "ce_hard",
          "JML+BLS", "ECE_D", False),
    Claim("JML-KD vs KL distillation, mIoU", "03_distillation", "kd_jml", "kd_kl", "JML-KD", "mIoU_D", True),
    Claim("JML-KD vs KL distillation, calibration", "03_distillation", "kd_jml", "kd_kl", "JML-KD", "ECE_D", False),
    Claim("soft pseudo-labels + JML vs hard pseudo-labels + CE, mIoU", "04_semi_supervised", "pseudo_soft_jml",
          "pseudo_hard_ce", "soft pseudo-labels + JML", "mIoU_D", True, by_fraction=True),
    Claim("soft vs hard pseudo-labels, both with CE+JML, mIoU", "04_semi_supervised", "pseudo_soft_jml",
          "pseudo_hard_jml", "soft pseudo-labels", "mIoU_D", True, by_fraction=True),
    Claim("CE+JML vs CE, both on soft pseudo-labels, mIoU", "04_semi_supervised", "pseudo_soft_jml",
          "pseudo_soft_ce", "CE+JML", "mIoU_D", True, by_fraction=True),
    Claim("JML vs soft Jaccard (SJL) on smoothed labels, mIoU", "02_label_smoothing", "jml_bls", "sjl_bls",
          "JML+BLS", "mIoU_D", True),
    Claim("JML vs soft Jaccard (SJL) on the data's soft labels, mIoU", "05_soft_labels", "jml_soft", "sjl_soft",
          "JML", "mIoU_D", True),
)


def _regime_key(regime: str) -> tuple[int, str]:
    return (REGIME_ORDER.index(regime) if regime in REGIME_ORDER else len(REGIME_ORDER), regime)


def _fraction_text(value: Any) -> str:
    frac = Fraction(float(value)).limit_denominator(1000)
    return f"{frac.numerator}/{frac.denominator}" if frac.denominator != 1 else f"{frac.numerator}"


def _row(claim: Claim, name: str, regime: Any, outcome: str, d: Any = None) -> dict[str, Any]:
    nan = float("nan")
    if d is None:
        return {"claim": name, "notebook": claim.notebook, "metric": claim.metric, "paper": claim.paper,
                "regime": regime, "delta": nan, "low": nan, "high": nan, "n": 0, "difference": outcome,
                "outcome": outcome}
    return {"claim": name, "notebook": claim.notebook, "metric": claim.metric, "paper": claim.paper,
            "regime": regime, "delta": d.delta, "low": d.low, "high": d.high, "n": d.n,
            "difference": format_difference(d), "outcome": outcome}


def _outcome(d: Any, higher: bool) -> str:
    if d.n < 2 or not (math.isfinite(d.low) and math.isfinite(d.high)):
        return NOT_MEASURABLE
    if d.low > 0:
        return REPRODUCED if higher else OPPOSITE
    if d.high < 0:
        return OPPOSITE if higher else REPRODUCED
    return INCONCLUSIVE


def _key_column(runs: pd.DataFrame, claim: Claim) -> str | None:
    """``config`` when it holds both configurations, else ``method`` (notebook 04 names configs per fraction)."""
    for column in ("config", "method"):
        if column in runs.columns:
            values = set(runs[column].dropna())
            if claim.a in values and claim.b in values:
                return column
    return None


def _claim_rows(claim: Claim, data: pd.DataFrame | None) -> list[dict[str, Any]]:
    if data is None:
        return [_row(claim, claim.claim, None, NOT_RUN)]
    data = data[data["table"].astype(str) == claim.table] if "table" in data.columns else data
    regimes = (sorted(set(data["regime"].dropna().astype(str)), key=_regime_key) if "regime" in data.columns
               else ["main"])
    if not regimes:
        return [_row(claim, claim.claim, None, NOT_RUN)]
    rows = []
    for regime in regimes:
        in_regime = data[data["regime"].astype(str) == regime] if "regime" in data.columns else data
        groups: list[tuple[str, pd.DataFrame]] = [(claim.claim, in_regime)]
        if claim.by_fraction and "fraction" in in_regime.columns and in_regime["fraction"].notna().any():
            groups = [(f"{claim.claim} @ labelled fraction {_fraction_text(f)}", in_regime[in_regime["fraction"] == f])
                      for f in sorted(in_regime["fraction"].dropna().unique())]
        for name, runs in groups:
            key = _key_column(runs, claim)
            if key is None or claim.metric not in runs.columns or "seed" not in runs.columns:
                rows.append(_row(claim, name, regime, NOT_RUN))
                continue
            pair = runs[runs[key].isin([claim.a, claim.b])]
            d = paired_difference(pair, claim.a, claim.b, claim.metric, key=key, seed="seed",
                                  higher_is_better=claim.higher)
            rows.append(_row(claim, name, regime, _outcome(d, claim.higher), d))
    return rows


def claims_table(results_dir: str | os.PathLike, claims: tuple[Claim, ...] | list[Claim] = CLAIMS) -> pd.DataFrame:
    """Each claim tested in each regime of the results files: the paired difference ``a − b`` and its outcome.

    Args:
        results_dir: a folder of ``<notebook>.csv`` files written by :func:`jmlkit.runner.results.collect_results`.
        claims: the claims to test (default: :data:`CLAIMS`).

    Returns:
        One row per claim and regime (and labelled fraction, for the claims split by fraction), with the columns
        :data:`CLAIM_COLUMNS`: ``delta``, ``low``, ``high`` (raw metric units, NaN when not measured), ``n``
        (paired seeds), ``difference`` (:func:`~jmlkit.experiments.stats.format_difference`, in points) and
        ``outcome`` (one of :data:`OUTCOMES`). A claim whose notebook file is missing is one row ``not run``
        with regime None; a regime without both configurations or the metric is ``not run`` as well.

    Raises:
        TypeError: ``results_dir`` not a path, or a claim not a :class:`Claim`.
        ValueError: ``results_dir`` exists but is not a folder; a configuration run twice with one seed.
    """
    if not isinstance(results_dir, (str, os.PathLike)):
        raise TypeError(f"Expected `results_dir` to be a path, but got {results_dir!r} ({type(results_dir).__name__}).")
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise ValueError(f"Expected `results_dir` to be a folder, but got {str(results_dir)!r} (a file).")
    claims = list(claims)
    for i, claim in enumerate(claims):
        if not isinstance(claim, Claim):
            raise TypeError(f"Expected `claims[{i}]` to be a Claim, but got {type(claim).__name__}.")
    files: dict[str, pd.DataFrame | None] = {}
    rows: list[dict[str, Any]] = []
    for claim in claims:
        if claim.notebook not in files:
            path = results_dir / f"{claim.notebook}.csv"
            files[claim.notebook] = pd.read_csv(path) if path.is_file() else None
        rows.extend(_claim_rows(claim, files[claim.notebook]))
    table = pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
    return table.astype({"n": int})


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def claims_markdown(table: pd.DataFrame) -> str:
    """A markdown table of :func:`claims_table`: one row per claim, one column per regime.

    Each regime's cell is the formatted difference followed by the outcome in bold; ``**not measurable** (1 seed)``
    with fewer than two seeds, ``not run`` when the claim was not run, ``—`` when the claim's notebook has no such
    regime. The table ends with a newline.

    >>> rows = pd.DataFrame([{"claim": "c", "notebook": "02", "metric": "mIoU_D", "paper": "A higher",
    ...                       "regime": "large", "delta": .02, "low": .01, "high": .03, "n": 3,
    ...                       "difference": "+2.0 [1.0, 3.0] points (3 seeds): gain", "outcome": "reproduced"}])
    >>> print(claims_markdown(rows), end="")
    | claim | metric | paper | large |
    |---|---|---|---|
    | c | mIoU_D | A higher | +2.0 [1.0, 3.0] points (3 seeds): gain — **reproduced** |
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Expected `table` to be a pandas DataFrame, but got {type(table).__name__}.")
    missing = [c for c in ("claim", "metric", "paper", "regime", "difference", "outcome") if c not in table.columns]
    if missing:
        raise ValueError(f"Expected `table` to have the columns of claims_table, but it lacks {missing}.")
    regimes = sorted({str(r) for r in table["regime"] if isinstance(r, str)}, key=_regime_key)
    columns = regimes or ["result"]
    lines = ["| claim | metric | paper | " + " | ".join(columns) + " |", "|---" * (3 + len(columns)) + "|"]
    claims: dict[tuple[str, str, str], dict[str, str]] = {}
    for row in table.itertuples(index=False):
        cells = claims.setdefault((check_str("claim", row.claim), row.metric, row.paper), {})
        regime = row.regime if isinstance(row.regime, str) else None
        if row.outcome == NOT_RUN:
            text = NOT_RUN
        elif row.outcome == NOT_MEASURABLE:
            text = f"**{NOT_MEASURABLE}** ({row.n} seed{'' if row.n == 1 else 's'})"
        else:
            text = f"{row.difference} — **{row.outcome}**"
        for column in ([regime] if regime is not None else columns):
            cells[column] = text
    for (claim, metric, paper), cells in claims.items():
        values = [cells.get(c, "—") for c in columns]
        lines.append("| " + " | ".join(_cell(v) for v in (claim, metric, paper, *values)) + " |")
    return "\n".join(lines) + "\n"
