r"""The findings of notebooks 02–06.

The *findings* functions write the "What we saw" section of each result notebook from its tables,
as Markdown: they pick the winners and word the results, so the notebooks only display them.

=====================================================  ========  ==========================================
function                                               notebook  reads
=====================================================  ========  ==========================================
:func:`smoothing_findings`                             02        the comparison, the ε sweep, ECE near
                                                                 boundaries, the over-confident regime
:mod:`~jmlkit.experiments.findings_kd`                 03        the students, the teacher's gap, the
                                                                 temperature sweep, the JML-alone ablation
:mod:`~jmlkit.experiments.findings_ssl`                04        the 2 × 2 design × labelled fractions
:func:`soft_label_findings`                            05        soft-label errors of each loss
:func:`calibration_findings`                           06        every notebook's runs, boundary and class
                                                                 tables
=====================================================  ========  ==========================================

Notebook 03's findings (the students, the teacher's gap, the temperature sweep, the JML-alone ablation) are in
:mod:`jmlkit.experiments.findings_kd`, notebook 04's in :mod:`jmlkit.experiments.findings_ssl`; both use the
wording helpers of this module.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jmlkit.experiments.recipes import LABELS, label
from jmlkit.experiments.stats import format_difference, from_record, paired_difference
from jmlkit.experiments.tables import compare

__all__ = [
    "smoothing_findings",
    "regime_findings",
    "confidence_gaps",
    "overconfidence_findings",
    "soft_label_findings",
    "source_note",
    "skipped_note",
    "boundary_table",
    "calibration_headline",
    "calibration_findings",
]


# ============================================================================ 02: label smoothing


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


def _zero_classes(iou: Any, background: int | None = 0) -> tuple[int, int]:
    """(object classes at IoU 0 (below 0.5 %), object classes) of a per-class IoU vector."""
    v = np.asarray(iou, dtype=float)
    keep = np.ones(len(v), dtype=bool)
    if background is not None and len(v):
        keep[background] = False
    v = v[keep & np.isfinite(v)]
    return int((v < 0.005).sum()), int(len(v))


def _floor_span(shares: Any) -> str:
    """The range of the floor's share of the target mass over the present object classes, e.g. ``"46–60%"``."""
    t = shares.per_class
    objects = t[t["object"] & (t["pixels"] > 0)]
    lo, hi = f"{100 * objects['floor_share'].min():.0f}", f"{100 * objects['floor_share'].max():.0f}"
    return f"{lo}%" if lo == hi else f"{lo}–{hi}%"


def _regime_line(shares: Any) -> str:
    """One sentence of a :class:`~jmlkit.targets.SmoothingShares` report: object share smoothed, floor shares."""
    cover = 100 * shares.object_pixels / shares.pixels if shares.pixels else float("nan")
    return (f"smooths {100 * shares.object_share_smoothed:.0f}% of the object pixels (objects cover {cover:.0f}% of "
            f"the pixels); the ε/C floor is {_floor_span(shares)} of each object class's target mass")


def _scene_words(config: Any) -> str:
    kw = dict(getattr(config, "dataset_kwargs", {}) or {})
    if getattr(config, "dataset", None) != "digits":
        return f"data set `{getattr(config, 'dataset', '?')}`"
    size, digit = kw.get("size", 64), kw.get("digit_size", (14, 24))
    digit = digit if isinstance(digit, (list, tuple)) else (digit, digit)
    per = kw.get("digits_per_scene", (1, 3))
    per = per if isinstance(per, (list, tuple)) else (per, per)
    many = f"{per[0]}" if per[0] == per[1] else f"{per[0]}–{per[1]}"
    return f"{size}×{size}-px digit scenes with {many} digit(s) of {digit[0]}–{digit[1]} px"


def _push(value: float) -> str:
    return f"{'up' if value > 0 else 'down'} ({_num(value)})"


def _num(value: float) -> str:
    return f"{1e3 * value:+.1f}×10⁻³"


def smoothing_findings(summary: pd.DataFrame, sweep_summary: pd.DataFrame, boundary: Mapping[str, pd.DataFrame], *,
                       profile: str, seeds: Sequence[int], config: Any, epsilon: float,
                       per_class_iou: Mapping[str, Any] | None = None, regime: Mapping[str, Any] | None = None,
                       ablation: pd.DataFrame | None = None, ablation_epsilon: float | None = None,
                       tug: Mapping[str, Mapping[str, Any]] | None = None, runs: pd.DataFrame | None = None,
                       ablation_runs: pd.DataFrame | None = None) -> str:
    """The findings of notebook 02 (Markdown bullets): the paper's recipe first, with the regime of the data.

    Args:
        summary: :func:`summarize` of :func:`~jmlkit.experiments.smoothing_configs` (``mIoU_D``, ``ECE_D``,
            ``SCE_D``, ``Confidence``, ``Acc``); ``jml_bls`` (the paper's recipe) and ``ce_hard`` are required.
        sweep_summary: :func:`summarize` of the ε sweep, ``by=["method", "epsilon"]``; the ``jml_bls`` method
            (the recipe's ε) is reported when present, else the first one.
        boundary: ``{config: boundary_calibration table}`` of ``jml_bls`` and ``ce_hard``; the first row is the
            boundary, the last the pixels far from it.
        profile, seeds, config, epsilon: the setting (``config``: the base TrainConfig; ``epsilon``: the ε of
            the uniform-LS runs).
        per_class_iou: ``{config: per-class IoU}`` (:func:`per_class_means`), to count the classes at IoU 0.
        regime: ``{"data": SmoothingShares, "large": ..., "uniform": ...}`` of :func:`jmlkit.targets.smoothing_shares`
            (the paper's boundary LS on the notebook's data and on the large-object data, uniform LS with
            ``epsilon`` on the notebook's data); any may be missing.
        ablation: :func:`summarize` of :func:`~jmlkit.experiments.recipes.smoothing_ablation_configs` (with
            ``jml_bls`` and, for the large-object factor, ``jml_bls_large`` and ``ce_hard_large``).
        ablation_epsilon: the ε of the ``jml_bls_eps`` run.
        tug: ``{name: tug_summary}`` of :func:`jmlkit.lessons.tug_summary`: ``jml_bls`` (the recipe's model and
            targets), optionally ``jml_bls_no_floor`` (the same model, targets with ε = 0) and ``ce_bls``.
        runs, ablation_runs: one row per run (``config``, ``seed``, metrics) of the comparison (the regime of
            ``summary``) and of the ablation: differences are then paired by seed, with their 95% interval.

    With one seed every difference is given with its sign and called "not measurable with one seed"; with
    several seeds and the runs, Δ with its 95% interval paired by seed and the verdict (gain, loss, no
    measurable difference); with only the summaries, :func:`compare` words it. The ablation's "best single change" is the one-factor change
    (on the same data) with the highest ``mIoU_D``, the ε sweep's runs included.
    """
    s_ = summary.set_index("config")
    recipe, ref = "jml_bls", "ce_hard"
    n_seeds = _n_seeds(summary, *summary["config"])
    cls = per_class_iou or {}

    def zeros(name: str) -> str:
        if name not in cls:
            return ""
        k, n = _zero_classes(cls[name])
        return f", {k} of {n} object classes at IoU 0"

    def miou(name: str, table: pd.DataFrame = s_) -> str:
        return f"{100 * table.at[name, 'mIoU_D_mean']:.1f}%"

    lines = [f"* **Setting**: {profile} profile, seeds {list(seeds)}, model `{config.model}`, {config.epochs} epochs, "
             f"{_scene_words(config)}; uniform LS at ε = {epsilon:g}. "
             + ("One seed: differences are given with their sign but are **not measurable with one seed**."
                if n_seeds == 1 else f"{n_seeds} seeds: ± is the standard deviation over seeds; a difference is Δ "
                "[95% interval] paired by seed, a gain or a loss only when the interval excludes 0.")]
    reg = regime or {}
    if "data" in reg:
        regime_text = f"* **Regime of our data**: the paper's boundary LS (ε 0.5, 3×3) {_regime_line(reg['data'])}"
        if "uniform" in reg:
            regime_text += (f"; uniform LS (ε {reg['uniform'].epsilon:g}) smooths every pixel, its floor is "
                            f"{_floor_span(reg['uniform'])}")
        most = reg["data"].object_share_smoothed > 0.5
        lines.append(regime_text + ". On the paper's benchmarks (512–1024-px Cityscapes, VOC, ADE20K crops, "
                     "ImageNet-pretrained encoders, 40k iterations) the 3×3 band is a thin rim of each object; here it is "
                     + ("most of it" if most else "a minority of it too, as in the paper")
                     + f", and a small network (`{config.model}`) is trained from scratch for {config.epochs} epochs.")
    lines.append(f"* **The paper's recipe** (0.25 CE + 0.75 JML on boundary LS, ε 0.5, 3×3): "
                 f"mIoU_D {miou(recipe)}{zeros(recipe)}; {label(ref)}: {miou(ref)}{zeros(ref)}. "
                 f"{_measured(summary, recipe, ref, runs=runs)}.")
    others = [n for n in ("ce_bls", "sjl_bls", "ce_ls", "jml_ls") if n in s_.index]
    if others:
        lines.append("* **Against CE with hard labels**: " + "; ".join(
            f"{_measured(summary, n, ref, runs=runs)}{zeros(n)}" for n in others) + ".")
    if n_seeds > 1:
        lines.append(f"* **Calibration**: {_extreme(summary, 'ECE_D', n_seeds, lowest=True)}; the paper's recipe "
                     f"{100 * s_.at[recipe, 'ECE_D_mean']:.1f}%, CE with hard labels {100 * s_.at[ref, 'ECE_D_mean']:.1f}%. "
                     f"{_measured(summary, recipe, ref, 'ECE_D', runs=runs)}.")
    else:
        lines.append(f"* **Calibration**: {_extreme(summary, 'ECE_D', n_seeds, lowest=True)}.")
    conf, acc = s_.at[ref, "Confidence_mean"], s_.at[ref, "Acc_mean"]
    conf_r, acc_r = s_.at[recipe, "Confidence_mean"], s_.at[recipe, "Acc_mean"]
    lines.append(f"* **Over- or under-confident?** CE with hard labels: mean confidence {100 * conf:.1f}% for a pixel "
                 f"accuracy of {100 * acc:.1f}% ({'over' if conf > acc else 'under'}-confident on average); the paper's "
                 f"recipe: {100 * conf_r:.1f}% for {100 * acc_r:.1f}% ({'over' if conf_r > acc_r else 'under'}-confident).")
    if recipe in boundary and ref in boundary:
        (edge, far), (edge_r, far_r) = ((boundary[n]["ECE"].iloc[0], boundary[n]["ECE"].iloc[-1]) for n in (ref, recipe))
        lines.append(f"* **Near boundaries**: for CE with hard labels the ECE right at a boundary is {100 * edge:.1f}% "
                     f"against {100 * far:.1f}% far from it; for the paper's recipe {100 * edge_r:.1f}% against "
                     f"{100 * far_r:.1f}% ({'lower' if edge_r < edge else 'not lower'} than CE at the boundary).")
    sweep_method = recipe if recipe in set(sweep_summary["method"]) else sweep_summary["method"].iloc[0]
    sw = sweep_summary[sweep_summary["method"] == sweep_method].set_index("epsilon").sort_index()
    if ablation is not None and len(ablation):
        a_ = ablation.set_index("config")
        parts, candidates = [], {}
        for name in ("jml_bls_uniform", "jml_bls_eps", "jml_bls_image", "jml_bls_present"):
            if name not in a_.index:
                continue
            what = {"jml_bls_uniform": "uniform instead of boundary LS",
                    "jml_bls_eps": f"ε {ablation_epsilon:g} instead of 0.5" if ablation_epsilon is not None else "a smaller ε",
                    "jml_bls_image": "JML per image instead of per batch",
                    "jml_bls_present": "present instead of all classes"}[name]
            value = float(a_.at[name, "mIoU_D_mean"])
            candidates[what] = value
            text = f"{what}: {100 * value:.1f}%{zeros(name)}"
            if ablation_runs is not None and n_seeds > 1:
                d = paired_difference(ablation_runs, name, recipe, "mIoU_D")
                text += f" (Δ against the recipe {format_difference(d)})"
            if name == "jml_bls_present" and abs(value - float(a_.at[recipe, "mIoU_D_mean"])) < 5e-4:
                C = _classes_of(reg)
                text += (f" (the same as the recipe: every class's floor ε/C = {0.5 / C:.3f} exceeds the presence "
                         "threshold 0.01 wherever an image has a boundary, so every class is 'present')"
                         if C and 0.5 / C > 0.01 else " (the same as the recipe)")
            parts.append(text)
        if 0.0 in sw.index and sweep_method == recipe:
            candidates["no smoothing (ε 0, one-hot targets)"] = float(sw.at[0.0, "mIoU_D_mean"])
            parts.append(f"no smoothing (ε 0, from the sweep): {100 * sw.at[0.0, 'mIoU_D_mean']:.1f}%")
        ref_table = a_ if ref in a_.index else s_  # the CE reference on the ablation's own data when it ran there
        line = (f"* **Ablation** (one change of the paper's recipe at a time, {n_seeds} seed(s); the recipe: "
                f"{miou(recipe, a_)}, CE with hard labels {miou(ref, ref_table)}): " + "; ".join(parts) + ".")
        if candidates and n_seeds > 1:  # with one seed no change is singled out
            best = max(candidates, key=candidates.get)
            back = candidates[best] >= ref_table.at[ref, "mIoU_D_mean"]
            line += (f" The single change with the highest mIoU_D is **{best}** ({100 * candidates[best]:.1f}%), "
                     + ("as high as CE with hard labels or higher" if back else "still below CE with hard labels")
                     + " (the paired differences above say which changes are measurable).")
        lines.append(line)
        if {"jml_bls_large", "ce_hard_large"} <= set(a_.index):
            big = f" (regime: boundary LS {_regime_line(reg['large'])})" if "large" in reg else ""
            lines.append(f"* **Large objects**{big}: the paper's recipe {miou('jml_bls_large', a_)}{zeros('jml_bls_large')}, "
                         f"CE with hard labels {miou('ce_hard_large', a_)}{zeros('ce_hard_large')}: "
                         f"{_measured(ablation, 'jml_bls_large', 'ce_hard_large', runs=ablation_runs)}.")
    if tug and recipe in tug and tug[recipe]["collapsed"]:
        t = tug[recipe]
        n_bad = len(t["collapsed"])
        text = (f"* **The collapsed classes** (the paper's loss at the recipe's model, on training batches): classes "
                f"{', '.join(t['collapsed'])} are labelled but predicted nowhere. On their pixels the model gives them "
                f"{100 * t['own_prob']:.0f}% on average, the background {100 * t['background_prob']:.0f}% and the other "
                f"classes {100 * t['other_prob']:.0f}% together; {100 * t['as_background']:.0f}% of these pixels are "
                f"predicted as background. At the pixels of all objects, the JML term pushes the background's logits "
                f"{_push(t['background_jml_at_objects'])} and the CE term {_push(t['background_ce_at_objects'])}")
        if "jml_bls_no_floor" in tug:
            f = tug["jml_bls_no_floor"]
            text += (f"; for the same model and pixels with targets without the floor (ε 0), the JML term pushes it "
                     f"{_push(f['background_jml_at_objects'])}")
        text += (f". On the collapsed classes' own logits (summed over all pixels: what a step does to a class's "
                 f"output bias), the JML term pushes {t['jml_down_classes']} of {n_bad} down "
                 f"(sum {_num(t['jml_net'])}), the CE term {n_bad - t['ce_down_classes']} of {n_bad} up "
                 f"(sum {_num(t['ce_net'])}). Over the object classes the JML term's pushes (pull-up and "
                 f"push-down) are {t['jml_to_ce']:.1f}× the CE term's.")
        if "ce_bls" in tug:
            c = tug["ce_bls"]
            text += (f" At the CE + boundary LS model ({len(c['collapsed'])} collapsed class(es) in these batches) the "
                     f"JML term pushes the background at the objects' pixels {_push(c['background_jml_at_objects'])}, "
                     f"the CE term {_push(c['background_ce_at_objects'])}.")
        text += " These are snapshots at the end of training; the ablation is the test of cause."
        lines.append(text)
    eps, m_, e_ = sw.index, sw["mIoU_D_mean"].to_numpy(), sw["ECE_D_mean"].to_numpy()
    lines.append(f"* **ε sweep** ({label(sweep_method)}): mIoU_D "
                 + ", ".join(f"{100 * v:.1f}% at ε {e:g}" for e, v in zip(eps, m_))
                 + "; ECE_D " + ", ".join(f"{100 * v:.1f}% at ε {e:g}" for e, v in zip(eps, e_))
                 + (f"; the lowest mean ECE_D at ε = {sw['ECE_D_mean'].idxmin():g}." if n_seeds > 1 else
                    " (one seed: no ε is singled out)."))
    if "jml_ls" in s_.index:
        floors = ""
        if "uniform" in reg and "data" in reg:
            floors = (f"; its floor (uniform LS, ε {reg['uniform'].epsilon:g}) is {_floor_span(reg['uniform'])} of "
                      f"each object class's target mass, against {_floor_span(reg['data'])} for the paper's boundary "
                      "LS here")
        lines.append(f"* **Our variation** ({label('jml_ls')}, not the paper's recipe): "
                     f"{_measured(summary, 'jml_ls', ref, runs=runs)}{zeros('jml_ls')}{floors}.")
    return "\n".join(lines)


def regime_findings(differences: pd.DataFrame, *, metrics: Sequence[str] = ("mIoU_D", "ECE_D"),
                    configs: Sequence[str] | None = None, descriptions: Mapping[str, str] | None = None,
                    shares: Mapping[str, Any] | None = None) -> str:
    """One Markdown bullet per data regime: each configuration against the baseline, Δ [95% interval] and verdict.

    Args:
        differences: :func:`~jmlkit.experiments.stats.regime_differences` (columns ``regime``, ``a``, ``b``,
            ``metric`` and the fields of :class:`~jmlkit.experiments.stats.PairedDifference`).
        metrics: the metrics to report, in order; configs: the configurations (``a``) to report (default all).
        descriptions: ``{regime: words}`` (:data:`jmlkit.profiles.REGIME_DESCRIPTIONS`).
        shares: ``{regime: SmoothingShares}``: the share of object pixels the paper's 3×3 band smooths there.

    >>> from jmlkit.experiments.stats import regime_differences
    >>> runs = pd.DataFrame({"regime": ["large"] * 4, "config": ["ce_hard", "ce_hard", "jml_bls", "jml_bls"],
    ...                      "seed": [0, 1, 0, 1], "mIoU_D": [.80, .82, .83, .84]})
    >>> print(regime_findings(regime_differences(runs, "ce_hard", "mIoU_D"), metrics=["mIoU_D"]))
    * **large**: CE+JML + boundary LS (paper's recipe) − CE, hard labels: ΔmIoU_D +2.5 [−3.9, 8.9] points (2 seeds): no measurable difference.
    """
    descriptions = dict(descriptions or {})
    shares = dict(shares or {})
    lines = []
    for regime, rows in differences.groupby("regime", sort=False):
        if configs is not None:
            rows = rows[rows["a"].isin(list(configs))]
        parts = []
        if len(rows) and (rows["n"] < 2).all():
            parts.append(f"{int(rows['n'].max())} seed: no difference is measurable (the full profile has five)")
            rows = rows.iloc[:0]
        for a, by_a in rows.groupby("a", sort=False):
            texts = []
            for metric in metrics:
                row = by_a[by_a["metric"] == metric]
                if len(row):
                    r = row.iloc[0]
                    d = from_record(r)
                    texts.append(f"Δ{metric} {format_difference(d)}")
            if texts:
                parts.append(f"{label(a)} − {label(by_a['b'].iloc[0])}: " + ", ".join(texts))
        words = descriptions.get(regime, "")
        if regime in shares:
            words = (words + "; " if words else "") + (f"the 3×3 band smooths {100 * shares[regime].object_share_smoothed:.0f}% "
                                                       "of the object pixels")
        lines.append(f"* **{regime}**" + (f" ({words})" if words else "") + ": " + "; ".join(parts) + ".")
    return "\n".join(lines)


def confidence_gaps(runs: pd.DataFrame, *, key: str = "config") -> pd.DataFrame:
    """Per configuration: confidence − accuracy (percentage points: positive is over-confidence) over seeds, as
    the paired difference of the two columns of the same runs, with its 95% interval.

    >>> runs = pd.DataFrame({"config": ["ce_hard"] * 3, "seed": [0, 1, 2], "Confidence": [.95, .96, .94],
    ...                      "Acc": [.91, .93, .90]})
    >>> confidence_gaps(runs)[["config", "n", "delta", "verdict"]].round(3).values.tolist()
    [['ce_hard', 3, 0.037, 'over-confident']]
    """
    rows = []
    for name, group in runs.groupby(key, sort=False):
        pair = pd.concat([group.assign(_side="confidence", _v=group["Confidence"]),
                          group.assign(_side="accuracy", _v=group["Acc"])], ignore_index=True)
        d = paired_difference(pair, "confidence", "accuracy", "_v", key="_side", higher_is_better=True)
        side = ("over-confident" if d.low > 0 else "under-confident" if d.high < 0 else "no measurable gap") \
            if d.n >= 2 else "not measurable (one seed)"
        rows.append({key: name, "n": d.n, "delta": d.delta, "low": d.low, "high": d.high,
                     "text": format_difference(d).split(" (")[0] if d.n >= 2 else f"{100 * d.delta:+.1f} points",
                     "verdict": side})
    return pd.DataFrame(rows)


def overconfidence_findings(runs: pd.DataFrame, *, regime: str = "overconfident", baseline: str = "ce_hard",
                            description: str | None = None, min_gap: float = 0.02, min_miou: float = 0.70) -> str:
    """Notebook 02's calibration regime in words: is cross-entropy on hard labels over-confident there (its
    confidence above its accuracy, paired by seed, by at least ``min_gap``) while it still learns
    (mIoU_D ≥ ``min_miou``), and what each smoothed configuration does to calibration and accuracy (Δ against
    ``baseline`` paired by seed, a gain or a loss only when the 95% interval excludes 0).

    >>> runs = pd.DataFrame({"regime": "overconfident", "config": ["ce_hard"] * 2 + ["jml_bls"] * 2, "seed": [0, 1] * 2,
    ...                      "Confidence": [.95, .97, .90, .91], "Acc": [.91, .925, .90, .92],
    ...                      "mIoU_D": [.74, .76, .73, .76], "ECE_D": [.04, .05, .01, .015]})
    >>> print(overconfidence_findings(runs).splitlines()[0])  # doctest: +ELLIPSIS
    * **Is the regime over-confident?** CE, hard labels: confidence − accuracy +4.2 [...] points (2 seeds), mIoU_D 75.0%, ECE_D 4.5%: over-confident, as the regime was chosen to be.
    """
    rows = runs[runs["regime"] == regime] if "regime" in runs.columns else runs
    if baseline not in set(rows["config"]):
        return f"* The {regime} regime did not run {label(baseline)}: nothing to report."
    gaps = confidence_gaps(rows).set_index("config")
    means = rows.groupby("config", sort=False)[["mIoU_D", "ECE_D"]].mean()
    base = gaps.loc[baseline]
    miou, ece = means.at[baseline, "mIoU_D"], means.at[baseline, "ECE_D"]
    holds = base["n"] >= 2 and base["low"] > 0 and base["delta"] >= min_gap and miou >= min_miou
    verdict = ("over-confident, as the regime was chosen to be" if holds else
               f"the regime's condition fails (confidence above accuracy by ≥ {100 * min_gap:.0f} points with an "
               f"interval above 0, and mIoU_D ≥ {100 * min_miou:.0f}%)")
    lines = [f"* **Is the regime over-confident?**" + (f" ({description})" if description else "")
             + f" {label(baseline)}: confidence − accuracy {base['text']} "
             + (f"({int(base['n'])} seeds), " if base["n"] >= 2 else "(one seed: not measurable), ")
             + f"mIoU_D {100 * miou:.1f}%, ECE_D {100 * ece:.1f}%: {verdict}."]
    for name in [c for c in gaps.index if c != baseline]:
        g = gaps.loc[name]
        lines.append(f"* **{label(name)}**: confidence − accuracy {g['text']} ({g['verdict']}); "
                     f"{_difference(rows, name, baseline, 'ECE_D')}; {_difference(rows, name, baseline, 'mIoU_D')}.")
    return "\n".join(lines)


def _classes_of(regime: Mapping[str, Any]) -> int | None:
    """The number of classes ``C`` of the regime reports (``None`` without one)."""
    for shares in regime.values():
        return int(shares.num_classes)
    return None


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
        lo, hi = rows.iloc[0], rows.iloc[-1]
        if int(rows["n_seeds"].min()) < 2:  # one seed: the range, no configuration singled out
            lines.append(f"- **{nb}**: ECE_D from {100 * lo['ECE_D_mean']:.2f}% to {100 * hi['ECE_D_mean']:.2f}% over "
                         f"{len(rows)} configurations (one seed each: no difference between them is measurable).")
            continue
        lines.append(f"- **{nb}**: lowest mean ECE `{lo['config']}` {100 * lo['ECE_D_mean']:.2f}% (mIoU {100 * lo['mIoU_D_mean']:.1f}%), "
                     f"highest `{hi['config']}` {100 * hi['ECE_D_mean']:.2f}% (mIoU {100 * hi['mIoU_D_mean']:.1f}%).")
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
