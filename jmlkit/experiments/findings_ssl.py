"""The findings of notebook 04 (semi-supervised): labelled only and the 2 × 2 design of pseudo-labels × loss, each
factor's paired effect per labelled fraction.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from jmlkit.experiments.recipes import label
from jmlkit.experiments.stats import format_difference, paired_difference

__all__ = ["ssl_headline", "ssl_findings"]


#: Notebook 04's methods: labelled only, then the 2 × 2 design (hard or soft pseudo-labels × CE or CE+JML).
_SSL_METHODS = ("labeled_only", "pseudo_hard_ce", "pseudo_soft_ce", "pseudo_hard_jml", "pseudo_soft_jml")
#: Short names of the methods in the findings' sentences.
_SSL_SHORT = {"labeled_only": "labelled only", "pseudo_hard_ce": "hard + CE", "pseudo_soft_ce": "soft + CE",
              "pseudo_hard_jml": "hard + CE+JML", "pseudo_soft_jml": "soft + CE+JML"}
#: The comparisons of each fraction, a bullet each: (what, note, ((a, b, words), ...)); ``a − b`` on mIoU_D.
_SSL_COMPARISONS = (
    ("soft + CE+JML vs hard + CE", "both factors at once, the paper's question",
     (("pseudo_soft_jml", "pseudo_hard_ce", ""),)),
    ("soft vs hard pseudo-labels", "factor 1, the loss held",
     (("pseudo_soft_ce", "pseudo_hard_ce", "with CE"), ("pseudo_soft_jml", "pseudo_hard_jml", "with CE+JML"))),
    ("CE+JML vs CE", "factor 2, the pseudo-labels held",
     (("pseudo_hard_jml", "pseudo_hard_ce", "on hard pseudo-labels"),
      ("pseudo_soft_jml", "pseudo_soft_ce", "on soft pseudo-labels"))),
    ("pseudo-labels vs labelled only", "", tuple((m, "labeled_only", _SSL_SHORT[m]) for m in _SSL_METHODS[1:])),
)


def ssl_headline(summary: pd.DataFrame, methods: Sequence[str], fractions: Sequence[float]) -> dict[str, float]:
    """``{"<metric>.<method>_f<fraction>": mean}`` of ``mIoU_D`` and ``ECE_D`` for notebook 04's ``metrics.json``
    (notebook 04 passes all five methods of :func:`~jmlkit.experiments.ssl_configs`).

    >>> s = pd.DataFrame({"method": ["a"], "fraction": [0.25], "mIoU_D_mean": [0.5], "ECE_D_mean": [0.1]})
    >>> ssl_headline(s, ["a"], [0.25])
    {'mIoU_D.a_f0.25': 0.5, 'ECE_D.a_f0.25': 0.1}
    """
    table = summary.set_index(["method", "fraction"])
    return {f"{m}.{method}_f{f:g}": float(table.at[(method, f), f"{m}_mean"]) for method in methods for f in fractions
            for m in ("mIoU_D", "ECE_D")}


def _ssl_paired(runs: pd.DataFrame | None, f: float) -> pd.DataFrame | None:
    """The runs of fraction ``f`` when two or more seeds can be paired there, else None."""
    if runs is None:
        return None
    at = runs[runs["fraction"] == f]
    return at if at["seed"].nunique() >= 2 else None


def _ssl_line(table: pd.DataFrame, f: float, at: pd.DataFrame | None) -> str:
    """One fraction: the five means, the highest, and the comparisons (paired by seed with ``at``, else single runs)."""
    iou = {m: 100 * float(table.at[(m, f), "mIoU_D_mean"]) for m in _SSL_METHODS}
    ece = [100 * float(table.at[(m, f), "ECE_D_mean"]) for m in _SSL_METHODS]
    top = [_SSL_SHORT[m] for m, v in iou.items() if round(v, 1) == round(max(iou.values()), 1)]
    best = top[0] if len(top) == 1 else "a tie between " + ", ".join(top[:-1]) + " and " + top[-1]
    highest = f"; highest mean: {best}" if at is not None else ""  # one seed: no run is singled out
    lines = [f"* **Fraction {f:g}**: mIoU_D " + ", ".join(f"{_SSL_SHORT[m]} {v:.1f}%" for m, v in iou.items())
             + f"{highest}. ECE_D in the same order " + ", ".join(f"{v:.1f}%" for v in ece) + "."]
    if at is None:
        deltas = "; ".join(what + " " + ", ".join(f"{iou[a] - iou[b]:+.1f}" + (f" {words}" if words else "")
                                                  for a, b, words in pairs) for what, _, pairs in _SSL_COMPARISONS)
        n = int(table.at[("labeled_only", f), "n_seeds"]) if "n_seeds" in table.columns else 1
        head = ("**One seed: no difference is measurable.** The single-run differences" if n < 2 else
                "**Not paired by seed** (no `runs` given): the differences of the means")
        return "\n".join(lines + [f"  * {head}, in mIoU_D points: {deltas}."])
    for what, note, pairs in _SSL_COMPARISONS:
        texts = [(f"{words} " if words else "")
                 + format_difference(paired_difference(at, a, b, "mIoU_D", key="method")) for a, b, words in pairs]
        lines.append(f"  * **{what[0].upper() + what[1:]}**" + (f" ({note})" if note else "") + ": Δ mIoU_D "
                     + "; ".join(texts) + ".")
    return "\n".join(lines)


def ssl_findings(summary: pd.DataFrame, fractions: Sequence[float], *, profile: str, seeds: Sequence[int],
                 config: Any, runs: pd.DataFrame | None = None) -> str:
    """The findings of notebook 04 (Markdown: a bullet per labelled fraction with the comparisons below it).

    Args:
        summary: :func:`summarize` of ``labeled_fraction_sweep`` over ``ssl_configs`` (the five methods),
            ``by=["method", "fraction"]``, with ``mIoU_D``, ``ECE_D`` and ``epoch_time_s``.
        fractions: the labelled fractions, in the order to report them.
        profile, seeds, config: the setting (``config``: the base TrainConfig).
        runs: the runs (``method``, ``fraction``, ``seed``, ``mIoU_D``): with two or more seeds at a fraction its
            comparisons are differences paired by seed, Δ mIoU_D [95% interval] and verdict (a gain or a loss only
            when the interval excludes 0, else "no measurable difference"); with one seed, or without ``runs``,
            they are single-run differences, called not measurable.

    Each fraction reports the means, with seeds the highest mean ``mIoU_D`` (rounded to 0.1 %; equal values are "a tie
    between" them) and ``a − b`` for: soft + CE+JML vs hard + CE (both factors at once); soft vs hard
    pseudo-labels with each loss (factor 1); CE+JML vs CE on each kind of pseudo-label (factor 2); every
    pseudo-label method vs labelled only. Self-training "helped" at a fraction when some pseudo-label method
    gains over labelled only, paired by seed; with one seed the differences are given and nothing is singled out
    (neither a highest method nor whether self-training helped).

    Raises:
        ValueError: a method of the design or a fraction missing from ``summary``.
    """
    table = summary.set_index(["method", "fraction"])
    missing = [(m, f) for f in fractions for m in _SSL_METHODS if (m, f) not in table.index]
    if missing:
        raise ValueError(f"Expected `summary` to hold the methods {list(_SSL_METHODS)} at every fraction "
                         f"{list(fractions)}, but it lacks (method, fraction) {missing}.")
    paired = {f: _ssl_paired(runs, f) for f in fractions}
    explanation = ("Starting from a randomly initialised model, the first pseudo-labels are mostly wrong and the model "
                   "learns its own mistakes (confirmation bias); practical recipes first train on the labelled images "
                   "alone (this notebook does, for the first `ssl_warmup` share of the steps) or weigh the unlabelled "
                   "loss down (`ssl_weight`).")
    if all(at is not None for at in paired.values()):
        helped = [f"{f:g}" for f, at in paired.items()
                  if any(paired_difference(at, m, "labeled_only", "mIoU_D", key="method").verdict == "gain"
                         for m in _SSL_METHODS[1:])]
        verdict = (f"* **Self-training helped** (a gain over labelled only, paired by seed) at fraction(s) "
                   f"{', '.join(helped)}." if helped else
                   f"* **Self-training did not measurably help** at any fraction (no gain over labelled only, paired "
                   f"by seed). {explanation}")
    else:
        spans = [f"{f:g}: " + ", ".join(
            f"{100 * (table.at[(m, f), 'mIoU_D_mean'] - table.at[('labeled_only', f), 'mIoU_D_mean']):+.1f}"
            for m in _SSL_METHODS[1:]) for f in fractions]
        verdict = ("* **Self-training** against labelled only, in mIoU_D points per pseudo-label method (in the order "
                   "above), at fraction " + "; ".join(spans) + ". One seed: whether self-training helps is not "
                   f"measurable here (the full profile pairs five seeds). {explanation}")
    times = summary.set_index("method")["epoch_time_s_mean"]
    t_lo, t_ssl = float(times[["labeled_only"]].mean()), float(times[list(_SSL_METHODS[1:])].mean())
    return "\n".join([f"* **Setting**: {profile} profile, model `{config.model}`, {config.epochs} epochs, seeds {seeds}."]
                     + [_ssl_line(table, f, paired[f]) for f in fractions] + [verdict]
                     + [f"* **Cost**: a semi-supervised training epoch took {t_ssl / t_lo:.1f}× the time of a labelled-only "
                        f"one ({t_ssl:.2f} s vs {t_lo:.2f} s, same number of steps; the mean of the four pseudo-label "
                        "methods)."])
