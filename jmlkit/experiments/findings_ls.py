"""The findings of notebooks 02, 02b and 02c (label smoothing), written from their tables as Markdown bullets.

=====================================================  ========  ==========================================
function                                               notebook  reads
=====================================================  ========  ==========================================
:func:`smoothing_findings`, :func:`regime_findings`,   02        the comparison in each data regime, the
:func:`overconfidence_findings`                                  over-confident regime
:func:`ablation_findings`                              02b       the ablation, the gradients' tug of war
:func:`strength_findings`                              02c       the ε sweep, ECE near boundaries
=====================================================  ========  ==========================================

Every sentence that states a number or a direction is written here from the data; with one seed none names a
winner. The wording helpers shared with the other notebooks live in :mod:`jmlkit.experiments.findings`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jmlkit.experiments.findings import _difference, _extreme, _measured, _n_seeds
from jmlkit.experiments.recipes import label
from jmlkit.experiments.stats import format_difference, from_record, paired_difference

__all__ = ["smoothing_findings", "ablation_findings", "strength_findings", "regime_findings", "confidence_gaps",
           "overconfidence_findings"]


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


def _setting(profile: str, seeds: Sequence[int], config: Any, n_seeds: int, extra: str = "") -> str:
    """The first bullet of each part's findings: profile, seeds, model, schedule, scenes, and what one seed means."""
    return (f"* **Setting**: {profile} profile, seeds {list(seeds)}, model `{config.model}`, {config.epochs} epochs, "
            f"{_scene_words(config)}{extra}. "
            + ("One seed: differences are given with their sign but are **not measurable with one seed**."
               if n_seeds == 1 else f"{n_seeds} seeds: ± is the standard deviation over seeds; a difference is Δ "
               "[95% interval] paired by seed, a gain or a loss only when the interval excludes 0."))


def _zeros(per_class_iou: Mapping[str, Any] | None, name: str) -> str:
    if not per_class_iou or name not in per_class_iou:
        return ""
    k, n = _zero_classes(per_class_iou[name])
    return f", {k} of {n} object classes at IoU 0"


def _miou(table: pd.DataFrame, name: str) -> str:
    return f"{100 * table.at[name, 'mIoU_D_mean']:.1f}%"


def smoothing_findings(summary: pd.DataFrame, *, profile: str, seeds: Sequence[int], config: Any, epsilon: float,
                       per_class_iou: Mapping[str, Any] | None = None, regime: Mapping[str, Any] | None = None,
                       runs: pd.DataFrame | None = None) -> str:
    """The findings of notebook 02 (Markdown bullets): the paper's recipe first, against CE with hard labels, with
    the regime of the data.

    Args:
        summary: :func:`summarize` of :func:`~jmlkit.experiments.smoothing_configs` (``mIoU_D``, ``ECE_D``,
            ``SCE_D``, ``Confidence``, ``Acc``); ``jml_bls`` (the paper's recipe) and ``ce_hard`` are required.
        profile, seeds, config, epsilon: the setting (``config``: the base TrainConfig; ``epsilon``: the ε of
            the uniform-LS runs).
        per_class_iou: ``{config: per-class IoU}`` (:func:`per_class_means`), to count the classes at IoU 0.
        regime: ``{"data": SmoothingShares, "uniform": ...}`` of :func:`jmlkit.targets.smoothing_shares`
            (the paper's boundary LS on the notebook's data, uniform LS with ``epsilon``); either may be missing.
        runs: one row per run (``config``, ``seed``, metrics) of the comparison (the regime of ``summary``):
            differences are then paired by seed, with their 95% interval.

    With one seed every difference is given with its sign and called "not measurable with one seed"; with
    several seeds and the runs, Δ with its 95% interval paired by seed and the verdict (gain, loss, no
    measurable difference); with only the summaries, :func:`compare` words it.
    """
    s_ = summary.set_index("config")
    recipe, ref = "jml_bls", "ce_hard"
    n_seeds = _n_seeds(summary, *summary["config"])
    zeros = lambda name: _zeros(per_class_iou, name)  # noqa: E731
    lines = [_setting(profile, seeds, config, n_seeds, f"; uniform LS at ε = {epsilon:g}")]
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
                 f"mIoU_D {_miou(s_, recipe)}{zeros(recipe)}; {label(ref)}: {_miou(s_, ref)}{zeros(ref)}. "
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
    if "jml_ls" in s_.index:
        floors = ""
        if "uniform" in reg and "data" in reg:
            floors = (f"; its floor (uniform LS, ε {reg['uniform'].epsilon:g}) is {_floor_span(reg['uniform'])} of "
                      f"each object class's target mass, against {_floor_span(reg['data'])} for the paper's boundary "
                      "LS here")
        lines.append(f"* **Our variation** ({label('jml_ls')}, not the paper's recipe): "
                     f"{_measured(summary, 'jml_ls', ref, runs=runs)}{zeros('jml_ls')}{floors}.")
    return "\n".join(lines)


def ablation_findings(ablation: pd.DataFrame, *, profile: str, seeds: Sequence[int], config: Any,
                      reference: pd.DataFrame | None = None, per_class_iou: Mapping[str, Any] | None = None,
                      regime: Mapping[str, Any] | None = None, ablation_epsilon: float | None = None,
                      tug: Mapping[str, Mapping[str, Any]] | None = None, ablation_runs: pd.DataFrame | None = None,
                      sweep_summary: pd.DataFrame | None = None) -> str:
    """The findings of notebook 02b (Markdown bullets): the ablation of the paper's recipe and the gradients.

    Args:
        ablation: :func:`summarize` of :func:`~jmlkit.experiments.recipes.smoothing_ablation_configs` (with
            ``jml_bls`` and, for the large-object factor, ``jml_bls_large`` and ``ce_hard_large``).
        profile, seeds, config: the setting (``config``: the base TrainConfig).
        reference: :func:`summarize` of runs of the main comparison with ``ce_hard`` (the CE reference when the
            ablation did not run it on its own data).
        per_class_iou: ``{config: per-class IoU}``, to count the classes at IoU 0.
        regime: ``{"data": ..., "large": ...}`` :class:`~jmlkit.targets.SmoothingShares` reports.
        ablation_epsilon: the ε of the ``jml_bls_eps`` run.
        tug: ``{name: tug_summary}`` of :func:`jmlkit.lessons.tug_summary`: ``jml_bls`` (the recipe's model and
            targets), optionally ``jml_bls_no_floor`` (the same model, targets with ε = 0) and ``ce_bls``.
        ablation_runs: one row per run of the ablation: differences are then paired by seed.
        sweep_summary: the ε sweep (``by=["method", "epsilon"]``): its ε 0 of ``jml_bls`` joins the changes.

    The "single change with the highest mIoU_D" is named only with several seeds.
    """
    a_ = ablation.set_index("config")
    recipe, ref = "jml_bls", "ce_hard"
    n_seeds = _n_seeds(ablation, *ablation["config"])
    zeros = lambda name: _zeros(per_class_iou, name)  # noqa: E731
    reg = regime or {}
    lines = [_setting(profile, seeds, config, n_seeds)]
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
    if sweep_summary is not None and recipe in set(sweep_summary["method"]):
        sw = sweep_summary[sweep_summary["method"] == recipe].set_index("epsilon")
        if 0.0 in sw.index:
            candidates["no smoothing (ε 0, one-hot targets)"] = float(sw.at[0.0, "mIoU_D_mean"])
            parts.append(f"no smoothing (ε 0, from the sweep): {100 * sw.at[0.0, 'mIoU_D_mean']:.1f}%")
    ref_table = a_ if ref in a_.index else (reference.set_index("config") if reference is not None else None)
    against = f", CE with hard labels {_miou(ref_table, ref)}" if ref_table is not None and ref in ref_table.index else ""
    line = (f"* **Ablation** (one change of the paper's recipe at a time, {n_seeds} seed(s); the recipe: "
            f"{_miou(a_, recipe)}{against}): " + "; ".join(parts) + ".")
    if candidates and n_seeds > 1 and against:  # with one seed no change is singled out
        best = max(candidates, key=candidates.get)
        back = candidates[best] >= ref_table.at[ref, "mIoU_D_mean"]
        line += (f" The single change with the highest mIoU_D is **{best}** ({100 * candidates[best]:.1f}%), "
                 + ("as high as CE with hard labels or higher" if back else "still below CE with hard labels")
                 + " (the paired differences above say which changes are measurable).")
    lines.append(line)
    if {"jml_bls_large", "ce_hard_large"} <= set(a_.index):
        big = f" (regime: boundary LS {_regime_line(reg['large'])})" if "large" in reg else ""
        lines.append(f"* **Large objects**{big}: the paper's recipe {_miou(a_, 'jml_bls_large')}{zeros('jml_bls_large')}, "
                     f"CE with hard labels {_miou(a_, 'ce_hard_large')}{zeros('ce_hard_large')}: "
                     f"{_measured(ablation, 'jml_bls_large', 'ce_hard_large', runs=ablation_runs)}.")
    if tug and recipe in tug and tug[recipe]["collapsed"]:
        lines.append(_tug_line(tug))
    return "\n".join(lines)


def _tug_line(tug: Mapping[str, Mapping[str, Any]]) -> str:
    t = tug["jml_bls"]
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
    return text + " These are snapshots at the end of training; the ablation is the test of cause."


def strength_findings(sweep_summary: pd.DataFrame, boundary: Mapping[str, pd.DataFrame], *, profile: str,
                      seeds: Sequence[int], config: Any) -> str:
    """The findings of notebook 02c (Markdown bullets): the ε sweep of the paper's recipe and calibration near
    boundaries.

    Args:
        sweep_summary: :func:`summarize` of the ε sweep, ``by=["method", "epsilon"]``; the ``jml_bls`` method
            (the recipe's ε) is reported when present, else the first one.
        boundary: ``{config: boundary_calibration table}`` with ``jml_bls`` and ``ce_hard``; the first row is the
            boundary, the last the pixels far from it. Without either, no bullet on boundaries.
        profile, seeds, config: the setting.

    The ε with the lowest mean ECE_D is named only with several seeds.
    """
    recipe, ref = "jml_bls", "ce_hard"
    method = recipe if recipe in set(sweep_summary["method"]) else sweep_summary["method"].iloc[0]
    sw = sweep_summary[sweep_summary["method"] == method].set_index("epsilon").sort_index()
    n_seeds = int(sw["n_seeds"].min()) if "n_seeds" in sw.columns else 1
    lines = [_setting(profile, seeds, config, n_seeds)]
    eps, m_, e_ = sw.index, sw["mIoU_D_mean"].to_numpy(), sw["ECE_D_mean"].to_numpy()
    lines.append(f"* **ε sweep** ({label(method)}): mIoU_D "
                 + ", ".join(f"{100 * v:.1f}% at ε {e:g}" for e, v in zip(eps, m_))
                 + "; ECE_D " + ", ".join(f"{100 * v:.1f}% at ε {e:g}" for e, v in zip(eps, e_))
                 + (f"; the lowest mean ECE_D at ε = {sw['ECE_D_mean'].idxmin():g}." if n_seeds > 1 else
                    " (one seed: no ε is singled out)."))
    if recipe in boundary and ref in boundary:
        (edge, far), (edge_r, far_r) = ((boundary[n]["ECE"].iloc[0], boundary[n]["ECE"].iloc[-1]) for n in (ref, recipe))
        lines.append(f"* **Near boundaries** (the first seed): for CE with hard labels the ECE right at a boundary is "
                     f"{100 * edge:.1f}% against {100 * far:.1f}% far from it; for the paper's recipe {100 * edge_r:.1f}% "
                     f"against {100 * far_r:.1f}%"
                     + (f" ({'lower' if edge_r < edge else 'not lower'} than CE at the boundary, in this seed)."
                        if n_seeds > 1 else " (one seed: no difference is measurable)."))
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


