r"""The findings of notebooks 02–06.

The *findings* functions write the "What we saw" section of each result notebook from its tables,
as Markdown: they pick the winners and word the results, so the notebooks only display them.

=====================================================  ========  ==========================================
function                                               notebook  reads
=====================================================  ========  ==========================================
:mod:`~jmlkit.experiments.findings_ls`                 02–02c    the comparison in each regime, the
                                                                 ablation, the ε sweep, ECE near boundaries
:mod:`~jmlkit.experiments.findings_kd`                 03        the students, the teacher's gap, the
                                                                 temperature sweep, the JML-alone ablation
:mod:`~jmlkit.experiments.findings_ssl`                04        the 2 × 2 design × labelled fractions
:func:`soft_label_findings`                            05        soft-label errors of each loss
:func:`calibration_findings`                           06        every notebook's runs, boundary and class
                                                                 tables
=====================================================  ========  ==========================================

Notebook 02's findings are in :mod:`jmlkit.experiments.findings_ls`. Notebook 03's findings (the students, the teacher's gap, the temperature sweep, the JML-alone ablation) are in
:mod:`jmlkit.experiments.findings_kd`, notebook 04's in :mod:`jmlkit.experiments.findings_ssl`; both use the
wording helpers of this module.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from jmlkit.experiments.recipes import label
from jmlkit.experiments.stats import format_difference, paired_difference
from jmlkit.experiments.tables import compare

__all__ = [
    "soft_label_findings",
    "source_note",
    "skipped_note",
    "boundary_table",
    "calibration_headline",
    "calibration_findings",
]


# ============================================================================ wording shared by 02–05


def _n_seeds(summary: pd.DataFrame, *names: str, key: str = "config") -> int:
    table = summary.set_index(key)
    return int(min(table.at[n, "n_seeds"] for n in names)) if "n_seeds" in table.columns else 1


def _difference(runs: pd.DataFrame, a: str, b: str, metric: str = "mIoU_D", *, key: str = "config",
                higher_is_better: bool | None = None) -> str:
    """``a − b`` on ``metric`` in words, paired by seed: Δ with its 95% interval and the verdict (gain, loss or
    no measurable difference; :func:`~jmlkit.experiments.stats.paired_difference`)."""
    d = paired_difference(runs, a, b, metric, key=key, higher_is_better=higher_is_better)
    return f"{label(a)} − {label(b)}: {_delta(d, metric)}"


def _delta(d: Any, metric: str) -> str:
    """A paired difference in words: ``Δ<metric> <format_difference>``, or with one seed the difference and
    "(one seed: not measurable)"."""
    if d.n < 2:
        return f"{100 * d.delta:+.1f} points of {metric} (one seed: not measurable)"
    return f"Δ{metric} {format_difference(d)}"


def _extreme(summary: pd.DataFrame, metric: str, n_seeds: int, *, lowest: bool, key: str = "config",
             names: Any = None) -> str:
    """Which configuration has the lowest (or highest) mean ``metric``, in words, only when there are seeds to
    measure with: with one seed no run is singled out; the sentence lists every run's value and says why.

    >>> s = pd.DataFrame({"config": ["ce_hard", "jml_bls"], "ECE_D_mean": [0.01, 0.06]})
    >>> _extreme(s, "ECE_D", 5, lowest=True)
    'the lowest mean ECE_D is CE, hard labels (1.0%)'
    >>> _extreme(s, "ECE_D", 1, lowest=True)
    "ECE_D per run: CE, hard labels 1.0%, CE+JML + boundary LS (paper's recipe) 6.0% (one seed: no run is singled out, no difference is measurable)"
    """
    name = names or label
    values = summary.set_index(key)[f"{metric}_mean"].astype(float)
    if n_seeds < 2:
        return (f"{metric} per run: " + ", ".join(f"{name(k)} {100 * v:.1f}%" for k, v in values.items())
                + " (one seed: no run is singled out, no difference is measurable)")
    pick = values.idxmin() if lowest else values.idxmax()
    return f"the {'lowest' if lowest else 'highest'} mean {metric} is {name(pick)} ({100 * values[pick]:.1f}%)"


def _measured(summary: pd.DataFrame, a: str, b: str, metric: str = "mIoU_D", *, key: str = "config",
              runs: pd.DataFrame | None = None) -> str:
    """``a`` against ``b`` in words. With the ``runs`` (one row per run) and two or more seeds: the paired
    difference with its 95% interval (:func:`_difference`); with one seed the difference is given and called not
    measurable; with only the summary, :func:`compare`'s sentence."""
    if runs is not None and {a, b} <= set(runs[key]):
        return _difference(runs, a, b, metric, key=key)
    if _n_seeds(summary, a, b, key=key) > 1:
        return compare(summary, a, b, metric, key=key)
    table = summary.set_index(key)
    ma, mb = 100 * float(table.at[a, f"{metric}_mean"]), 100 * float(table.at[b, f"{metric}_mean"])
    return (f"{label(a)} {ma:.1f} vs {label(b)} {mb:.1f} ({ma - mb:+.1f} points; not measurable with one seed)")


# ============================================================================ 05: soft labels of the data


def soft_label_findings(summary: pd.DataFrame, losses: Sequence[str], *, profile: str, seeds: Sequence[int],
                        epochs: int, n_test: int, runs: pd.DataFrame | None = None) -> str:
    """The findings of notebook 05 (Markdown), from the soft-label errors of the ``<loss>_soft`` runs.

    Args:
        summary: :func:`summarize` of the runs joined with their soft-label errors (``MAE_band``,
            ``extreme_band``, ``slope_band``, ``soft_mIoU``, ``mIoU_D``, ``ECE_D``).
        losses: the losses trained, in the order to report them.
        profile, seeds, epochs, n_test: the setting (``n_test``: number of test slices).
        runs: one row per run (``config``, ``seed`` and the same columns): the JML is then compared with the
            SJL and the CE paired by seed, Δ [95% interval] and verdict (lower is better for the band errors).

    With both ``jml`` and ``sjl``, the SJL counts as biased towards 0/1 when its share of extreme
    band predictions is more than 5 points and its band error more than 1 point above the JML's.
    """
    s = summary.set_index("config")

    def val(cfg: str, metric: str, scale: float = 100) -> float:
        return s.loc[f"{cfg}_soft", f"{metric}_mean"] * scale

    lines = [f"*Profile `{profile}`, {len(seeds)} seed(s), {epochs} epochs on {n_test} test slices.*", ""]
    for c in losses:
        lines.append(f"- **{c.upper()}**: mean |p - y| at partial-volume entries {val(c, 'MAE_band'):.1f}%, "
                     f"{val(c, 'extreme_band'):.1f}% of them pushed below 0.1 or above 0.9 (slope {val(c, 'slope_band', 1):.2f}); "
                     f"soft mIoU {val(c, 'soft_mIoU'):.1f}%, hard mIoU {val(c, 'mIoU_D'):.1f}%, ECE {val(c, 'ECE_D'):.1f}%.")
    if {"jml", "sjl"} <= set(losses):
        lines.append("")
        if val("sjl", "extreme_band") > val("jml", "extreme_band") + 5 and val("sjl", "MAE_band") > val("jml", "MAE_band") + 1:
            lines.append(f"As the theory says, the SJL pushed partial-volume predictions to 0/1 "
                         f"({val('sjl', 'extreme_band'):.0f}% vs {val('jml', 'extreme_band'):.0f}% for the JML) and missed the soft "
                         f"labels by more ({val('sjl', 'MAE_band'):.1f}% vs {val('jml', 'MAE_band'):.1f}% mean |p - y| in the band).")
        else:
            lines.append(f"In this run the SJL did **not** clearly show its bias towards 0/1 (extreme predictions "
                         f"{val('sjl', 'extreme_band'):.1f}% vs {val('jml', 'extreme_band'):.1f}% for the JML, mean |p - y| "
                         f"{val('sjl', 'MAE_band'):.1f}% vs {val('jml', 'MAE_band'):.1f}%); with so little training the "
                         "networks may not have fitted the soft labels yet: try the quick or full profile.")
        if val("sjl", "ECE_D") < val("jml", "ECE_D"):
            lines.append(f"Note the ECE against the hard label: the SJL looks *better* calibrated ({val('sjl', 'ECE_D'):.1f}% vs "
                         f"{val('jml', 'ECE_D'):.1f}%). The hard label is the argmax of the soft one, so a network that predicts "
                         "hard labels is 'calibrated' against it; against the soft target it is not. Which calibration you "
                         "want depends on what the probabilities are used for.")
    if runs is not None and "jml" in losses and runs["seed"].nunique() > 1:
        lines.append("")
        for other in (c for c in losses if c != "jml"):
            texts = [f"Δ{m} {format_difference(paired_difference(runs, 'jml_soft', f'{other}_soft', m, higher_is_better=up))}"
                     for m, up in (("MAE_band", False), ("extreme_band", False), ("soft_mIoU", True))]
            lines.append(f"- **JML − {other.upper()}**, paired by seed: " + "; ".join(texts) + ".")
    if "ce" in losses and "jml" in losses:
        ranked = sorted(losses, key=lambda c: val(c, "MAE_band"))
        lines.append("Ranked by mean |p - y| in the band (lower is better): "
                     + " < ".join(f"{c.upper()} {val(c, 'MAE_band'):.1f}%" for c in ranked)
                     + ". Cross-entropy is also minimised at p = y, so it should sit near the JML, not near the SJL.")
    return "\n".join(lines)


# ============================================================================ 06: calibration of every run


def source_note(source: str, runs: pd.DataFrame, skipped: Mapping[str, str]) -> str:
    """Where notebook 06's runs come from, in one Markdown line.

    >>> source_note("the runs in `x`", pd.DataFrame({"notebook": ["02", "02", "03"]}), {"04": "failed"})
    "**Source:** the runs in `x`. 3 runs of 2 notebook(s); left out (not finished): {'04': 'failed'}."
    >>> source_note("x", pd.DataFrame({"notebook": ["02", "02"], "config": ["a", "b"], "aliases": ["a_e1, c", ""]}), {})
    '**Source:** x. 2 runs of 2 configuration(s) in 1 notebook(s); 2 more folders are copies of one of them under another name (a sweep or an ablation that asked for a configuration already trained), counted once.'
    """
    n_configs = f" of {runs[['notebook', 'config']].drop_duplicates().shape[0]} configuration(s) in" if (
        "config" in runs) else " of"
    copies = sum(len([a for a in str(x).split(", ") if a]) for x in runs["aliases"]) if "aliases" in runs else 0
    return (f"**Source:** {source}. {len(runs)} runs{n_configs} {runs['notebook'].nunique()} notebook(s)"
            + (f"; left out (not finished): {dict(skipped)}" if skipped else "")
            + (f"; {copies} more folders are copies of one of them under another name (a sweep or an ablation that "
               "asked for a configuration already trained), counted once" if copies else "") + ".")


def skipped_note(skipped: pd.DataFrame) -> str:
    """The runs :func:`~jmlkit.experiments.evaluate_runs` left out, in one Markdown line ("" when none)."""
    if not len(skipped):
        return ""
    return (f"*Left out below ({len(skipped)} runs whose model could not be rebuilt):* "
            + ", ".join(f"`{r.notebook} {r.config} seed {r.seed}`" for r in skipped.itertuples()))


def _near_far(boundary: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    near = boundary[boundary["distance"] == 1].groupby(["notebook", "config"], sort=False)["ECE"].mean()
    far = boundary[boundary["distance"] == boundary["distance"].max()].groupby(["notebook", "config"], sort=False)["ECE"].mean()
    return near, far


def boundary_table(boundary: pd.DataFrame) -> pd.DataFrame:
    """ECE at the boundary (distance 1) and far from it (the pooled last distance), mean over seeds,
    per notebook and configuration, in % (rounded to 0.01), and their ratio.

    ``boundary``: the ``"boundary"`` table of :func:`~jmlkit.experiments.evaluate_runs`.
    """
    near, far = _near_far(boundary)
    return pd.DataFrame({"ECE at boundary (%)": 100 * near, "ECE far away (%)": 100 * far,
                         "ratio": near / far}).round(2)


def calibration_headline(runs: pd.DataFrame, summary: pd.DataFrame, boundary: pd.DataFrame, *,
                         trained_here: bool) -> dict[str, float]:
    """The ``metrics.json`` of notebook 06: ``n_runs``, ``n_notebooks``, ``trained_here``, the lowest and
    highest ``ECE_D`` of any configuration, and the mean ECE at the boundary and far from it."""
    near, far = _near_far(boundary)
    return {"n_runs": len(runs), "n_notebooks": runs["notebook"].nunique(), "trained_here": int(trained_here),
            "ECE_D_best": summary["ECE_D_mean"].min(), "ECE_D_worst": summary["ECE_D_mean"].max(),
            "ECE_boundary_mean": near.mean(), "ECE_far_mean": far.mean()}


def calibration_findings(summary: pd.DataFrame, boundary: pd.DataFrame, per_class: pd.DataFrame, *, source: str,
                         n_runs: int) -> str:
    """The findings of notebook 06 (Markdown).

    Args:
        summary: :func:`summarize` of every run, ``by=["notebook", "config"]`` (``ECE_D``, ``mIoU_D``).
        boundary, per_class: the tables of :func:`~jmlkit.experiments.evaluate_runs`.
        source: where the runs come from (:func:`~jmlkit.experiments.calibration_runs`).
        n_runs: the number of runs.

    Per notebook, the configurations with the lowest and highest mean ``ECE_D`` (with one seed, only the range:
    no configuration is singled out); miscalibration
    "concentrates at boundaries" when the ECE at distance 1 is more than 1.2× the far ECE for more
    than half the configurations; the class with the largest class-wise error, counted over configurations.
    """
    n_seeds = int(summary["n_seeds"].max())
    lines = [f"*Source: {source}; {n_runs} runs, up to {n_seeds} seed(s) per configuration"
             + (" (one seed each: no difference between configurations is measurable)." if n_seeds == 1 else ".")
             + "*", ""]
    for nb, rows in summary.groupby("notebook", sort=False):
        rows = rows.sort_values("ECE_D_mean")
        seeded = rows[rows["n_seeds"] >= 2]  # only configurations with several seeds are singled out
        if not len(seeded):  # one seed each: the range
            lo, hi = rows.iloc[0], rows.iloc[-1]
            lines.append(f"- **{nb}**: ECE_D from {100 * lo['ECE_D_mean']:.2f}% to {100 * hi['ECE_D_mean']:.2f}% over "
                         f"{len(rows)} configurations (one seed each: no difference between them is measurable).")
            continue
        lo, hi = seeded.iloc[0], seeded.iloc[-1]
        single = len(rows) - len(seeded)
        lines.append(f"- **{nb}**: lowest mean ECE `{lo['config']}` {100 * lo['ECE_D_mean']:.2f}% (mIoU {100 * lo['mIoU_D_mean']:.1f}%), "
                     f"highest `{hi['config']}` {100 * hi['ECE_D_mean']:.2f}% (mIoU {100 * hi['mIoU_D_mean']:.1f}%)"
                     + (f", among the {len(seeded)} configurations with several seeds ({single} with one seed left "
                        "out)." if single else "."))
    near, far = _near_far(boundary)
    ratio = near / far
    more = int((ratio > 1.2).sum())
    lines.append(f"- At the boundary the ECE was more than 1.2x its value far from it for {more} of {len(ratio)} configurations "
                 f"(median ratio {ratio.median():.1f}x): " + ("miscalibration concentrates at boundaries, as expected."
                 if more > len(ratio) / 2 else "here miscalibration did *not* clearly concentrate at the boundary."))
    means = per_class.groupby(["notebook", "config", "class_name"], sort=False)["ECE_class"].mean()
    worst = means.groupby(["notebook", "config"], sort=False).idxmax().map(lambda key: key[-1])
    worst_counts = worst.value_counts()
    lines.append(f"- The class with the largest class-wise calibration error was most often `{worst_counts.index[0]}` "
                 f"({worst_counts.iloc[0]} of {len(worst)} configurations).")
    return "\n".join(lines)
