"""The README's "Reading" of the full results, written from the result files: every number and every direction of it
comes from ``results/<profile>/<notebook>.csv`` (and notebook 06's ``.metrics.json``) through the functions here.

Each bullet is one question of a notebook, answered per data regime with differences **paired by seed** (Δ with its
95 % interval, :func:`~jmlkit.experiments.stats.paired_difference`): a gain or a loss only when the interval excludes
0, else "no measurable difference". Whether a model is over- or under-confident is the same test on its own runs:
mean confidence minus pixel accuracy, per seed, with its interval. A bullet whose files or configurations are
missing is left out, so the text never states what did not run.

Example:
    >>> runs = pd.DataFrame({"config": ["a"] * 3, "seed": [0, 1, 2], "Confidence": [0.95, 0.96, 0.97],
    ...                      "Acc": [0.93, 0.93, 0.95]})
    >>> confidence_gap(runs, "a")
    'confidence − accuracy +2.3 [0.9, 3.8] points (3 seeds): over-confident'
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jmlkit.experiments.claims import REGIME_ORDER
from jmlkit.experiments.findings_ls import confidence_gaps
from jmlkit.experiments.recipes import label
from jmlkit.experiments.stats import format_difference, paired_difference

__all__ = ["confidence_gap", "reading_markdown", "smoothing_reading", "ablation_reading", "strength_reading",
           "distillation_reading", "ssl_reading",
           "soft_label_reading", "calibration_reading"]


def _read(results_dir: Path, notebook: str) -> pd.DataFrame | None:
    path = results_dir / f"{notebook}.csv"
    return pd.read_csv(path) if path.is_file() else None


def _regimes(frame: pd.DataFrame) -> list[str]:
    found = [str(r) for r in frame["regime"].dropna().unique()]
    return sorted(found, key=lambda r: (REGIME_ORDER.index(r) if r in REGIME_ORDER else len(REGIME_ORDER), r))


def _main_by_regime(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(regime, its runs)`` of a results file's main table, in :data:`REGIME_ORDER`."""
    main = frame[frame["table"] == "main"]
    for regime in _regimes(main):
        yield regime, main[main["regime"] == regime]


def _has(frame: pd.DataFrame, key: str, *names: str) -> bool:
    return set(names) <= set(frame[key].dropna())


def _diff(frame: pd.DataFrame, a: str, b: str, metric: str, *, key: str = "config") -> str:
    return format_difference(paired_difference(frame, a, b, metric, key=key))


def _mean(frame: pd.DataFrame, name: str, metric: str, *, key: str = "config") -> str:
    values = 100 * frame.loc[frame[key] == name, metric].astype(float)
    return f"{values.mean():.1f} %" + (f" ± {values.std(ddof=1):.1f}" if len(values) > 1 else "")


def confidence_gap(frame: pd.DataFrame, name: str, *, key: str = "config") -> str:
    """Whether the runs of ``name`` are over- or under-confident: mean confidence minus pixel accuracy per seed, its
    mean and 95 % t-interval in points, and the verdict: over- or under-confident only when the interval excludes 0.

    >>> runs = pd.DataFrame({"config": "a", "seed": [0, 1, 2], "Confidence": [0.90, 0.91, 0.90], "Acc": [0.95] * 3})
    >>> confidence_gap(runs, "a")
    'confidence − accuracy −4.7 [−6.1, −3.2] points (3 seeds): under-confident'
    """
    gap = confidence_gaps(frame[frame[key] == name], key=key).iloc[0]
    if gap["n"] < 2:
        delta = 100 * float(gap["delta"])
        return f"confidence − accuracy {'+' if delta >= 0 else '−'}{abs(delta):.1f} points (one seed: not measurable)"
    verdict = "no measurable over- or under-confidence" if gap["verdict"] == "no measurable gap" else gap["verdict"]
    return f"confidence − accuracy {gap['text']} ({gap['n']} seeds): {verdict}"


def smoothing_reading(frame: pd.DataFrame) -> list[str]:
    """Notebook 02: per regime, the paper's recipe against CE on hard labels (mIoU_D, ECE_D, each one's confidence
    gap) and every other configuration against CE."""
    out = []
    for regime, runs in _main_by_regime(frame):
        if not _has(runs, "config", "jml_bls", "ce_hard"):
            continue
        text = (f"**02, {regime} regime**: the paper's recipe (CE+JML on boundary-smoothed labels, ε 0.5, 3×3) "
                f"{_mean(runs, 'jml_bls', 'mIoU_D')} mIoU_D against CE with hard labels {_mean(runs, 'ce_hard', 'mIoU_D')}: "
                f"ΔmIoU_D {_diff(runs, 'jml_bls', 'ce_hard', 'mIoU_D')}; ΔECE_D "
                f"{_diff(runs, 'jml_bls', 'ce_hard', 'ECE_D')}. CE with hard labels: {confidence_gap(runs, 'ce_hard')}; "
                f"the recipe: {confidence_gap(runs, 'jml_bls')}.")
        others = [c for c in dict.fromkeys(runs["config"]) if c not in ("jml_bls", "ce_hard")]
        if others:
            text += " Against CE with hard labels, ΔmIoU_D: " + "; ".join(
                f"{label(c)} {_diff(runs, c, 'ce_hard', 'mIoU_D')}" for c in others) + "."
        out.append(text)
    return out


def ablation_reading(frame: pd.DataFrame) -> list[str]:
    """Notebook 02b: per regime, each change of the paper's recipe against the recipe, paired by seed."""
    out = []
    for regime, runs in _main_by_regime(frame):
        if "jml_bls" not in set(runs["config"]):
            continue
        others = [c for c in dict.fromkeys(runs["config"]) if c != "jml_bls"]
        out.append(f"**02b, ablation, {regime} regime** (one change of the recipe at a time, against the recipe): "
                   + "; ".join(f"{label(c)} {_mean(runs, c, 'mIoU_D')}, ΔmIoU_D {_diff(runs, c, 'jml_bls', 'mIoU_D')}"
                               for c in others) + ".")
    return out


def strength_reading(frame: pd.DataFrame) -> list[str]:
    """Notebook 02c: per regime, each ε of the recipe's sweep against the paper's ε 0.5, paired by seed."""
    out = []
    for regime, runs in _main_by_regime(frame):
        eps = sorted(runs["epsilon"].dropna().unique())
        if 0.5 not in eps or len(eps) < 2:
            continue
        ref = runs.loc[runs["epsilon"] == 0.5, "config"].iloc[0]
        parts = []
        for e in eps:
            name = runs.loc[runs["epsilon"] == e, "config"].iloc[0]
            values = f"ε {e:g}: mIoU_D {_mean(runs, name, 'mIoU_D')}, ECE_D {_mean(runs, name, 'ECE_D')}"
            if name != ref:
                values += (f" (against ε 0.5: ΔmIoU_D {_diff(runs, name, ref, 'mIoU_D')}; ΔECE_D "
                           f"{_diff(runs, name, ref, 'ECE_D')})")
            parts.append(values)
        out.append(f"**02c, ε sweep of the recipe, {regime} regime** (same loss, same boundary band): "
                   + "; ".join(parts) + ".")
    return out


def distillation_reading(frame: pd.DataFrame) -> list[str]:
    """Notebook 03: per regime, the kept teacher against the hard-label student (paired over the students' seeds),
    the paper's JML-KD against KL distillation and against the hard-label student, and the JML alone."""
    out = []
    teachers = frame[frame["table"] == "teacher"] if "table" in frame else frame.iloc[:0]
    for regime, runs in _main_by_regime(frame):
        if not _has(runs, "config", "kd_jml", "hard_ce"):
            continue
        text = f"**03, {regime} regime**: "
        kept = teachers[(teachers["regime"] == regime)]
        if "kept" in kept.columns:
            kept = kept[kept["kept"].astype(str).str.lower().isin(["true", "1"])]
        if len(kept) == 1:
            value = float(kept["mIoU_D"].iloc[0])
            student = runs[runs["config"] == "hard_ce"]
            pair = pd.concat([student, student.assign(config="teacher", mIoU_D=value)], ignore_index=True)
            text += (f"the kept teacher {100 * value:.1f} % mIoU_D, against the hard-label student "
                     f"{_mean(runs, 'hard_ce', 'mIoU_D')}: Δ {_diff(pair, 'teacher', 'hard_ce', 'mIoU_D')}. ")
        text += (f"The paper's JML-KD against KL distillation: ΔmIoU_D {_diff(runs, 'kd_jml', 'kd_kl', 'mIoU_D')}, "
                 f"ΔECE_D {_diff(runs, 'kd_jml', 'kd_kl', 'ECE_D')}; against the hard-label student: ΔmIoU_D "
                 f"{_diff(runs, 'kd_jml', 'hard_ce', 'mIoU_D')}, ΔECE_D {_diff(runs, 'kd_jml', 'hard_ce', 'ECE_D')}.")
        if "kd_jml_only" in set(runs["config"]):
            text += f" The JML alone on the teacher (ours): {_mean(runs, 'kd_jml_only', 'mIoU_D')} mIoU_D."
        out.append(text)
    sweep = frame[frame["table"] == "temperature"] if "table" in frame else frame.iloc[:0]
    if len(sweep) and {"method", "temperature"} <= set(sweep.columns):
        for regime in _regimes(sweep):
            runs = sweep[sweep["regime"] == regime]
            parts = []
            for method in dict.fromkeys(runs["method"]):
                m = runs[runs["method"] == method]
                ref = m.loc[m["temperature"] == 1.0, "config"]
                if not len(ref):
                    continue
                parts.append(f"{label(method)}: " + ", ".join(
                    f"T {t:g} ΔmIoU_D {_diff(m, c, ref.iloc[0], 'mIoU_D')}"
                    for t, c in m.drop_duplicates("config")[["temperature", "config"]].itertuples(index=False)
                    if c != ref.iloc[0]))
            if parts:
                out.append(f"**03, temperature sweep, {regime} regime** (against T = 1): " + "; ".join(parts) + ".")
    ablation = frame[frame["table"] == "ablation"] if "table" in frame else frame.iloc[:0]
    for regime in _regimes(ablation) if len(ablation) else []:
        runs = ablation[ablation["regime"] == regime]
        names = [c for c in dict.fromkeys(runs["config"]) if c != "hard_ce"]
        if "hard_ce" in set(runs["config"]) and names:
            out.append(f"**03, why the JML alone fails, {regime} regime** (each against the hard-label student): "
                       + "; ".join(f"{label(c)} {_mean(runs, c, 'mIoU_D')}, ΔmIoU_D {_diff(runs, c, 'hard_ce', 'mIoU_D')}"
                                   for c in names) + ".")
    return out


def ssl_reading(frame: pd.DataFrame) -> list[str]:
    """Notebook 04: at each labelled fraction, soft + CE+JML against hard + CE, each factor alone (the other held),
    each pseudo-label method against labelled only, and the JML term's effect on ECE_D."""
    out = []
    if "fraction" not in frame.columns:
        return out
    for f in sorted(frame["fraction"].dropna().unique()):
        runs = frame[frame["fraction"] == f]
        need = ("labeled_only", "pseudo_hard_ce", "pseudo_soft_ce", "pseudo_hard_jml", "pseudo_soft_jml")
        if not _has(runs, "method", *need):
            continue
        d = lambda a, b, m="mIoU_D": _diff(runs, a, b, m, key="method")  # noqa: E731
        out.append(
            f"**04, {f:g} of the labels**: soft pseudo-labels + CE+JML against hard + CE, ΔmIoU_D "
            f"{d('pseudo_soft_jml', 'pseudo_hard_ce')}. Soft against hard pseudo-labels: with CE "
            f"{d('pseudo_soft_ce', 'pseudo_hard_ce')}, with CE+JML {d('pseudo_soft_jml', 'pseudo_hard_jml')}. CE+JML "
            f"against CE: on hard pseudo-labels {d('pseudo_hard_jml', 'pseudo_hard_ce')}, on soft "
            f"{d('pseudo_soft_jml', 'pseudo_soft_ce')}. Against labelled only: "
            + "; ".join(f"{label(m)} {d(m, 'labeled_only')}" for m in need[1:])
            + f". ECE_D, CE+JML against CE: hard {d('pseudo_hard_jml', 'pseudo_hard_ce', 'ECE_D')}, soft "
            f"{d('pseudo_soft_jml', 'pseudo_soft_ce', 'ECE_D')}.")
    return out


def soft_label_reading(frame: pd.DataFrame) -> list[str]:
    """Notebook 05: the JML against the SJL and CE on the data's own soft labels (mIoU_D, MAE_band)."""
    if not _has(frame, "config", "jml_soft", "sjl_soft"):
        return []
    text = (f"**05, the data's own soft labels** (brain tissue probabilities): JML against SJL, ΔmIoU_D "
            f"{_diff(frame, 'jml_soft', 'sjl_soft', 'mIoU_D')}")
    if "MAE_band" in frame.columns:
        text += (f"; error on the partial-volume pixels (MAE_band, lower is better) JML {_mean(frame, 'jml_soft', 'MAE_band')}, "
                 f"SJL {_mean(frame, 'sjl_soft', 'MAE_band')}: Δ {_diff(frame, 'jml_soft', 'sjl_soft', 'MAE_band')}")
        if "ce_soft" in set(frame["config"]):
            text += f"; JML against CE, Δ MAE_band {_diff(frame, 'jml_soft', 'ce_soft', 'MAE_band')}"
    return [text + "."]


def calibration_reading(metrics: dict[str, Any]) -> list[str]:
    """Notebook 06 (its headline numbers): how many runs it compared, the range of ECE_D, and the ECE at a boundary
    pixel against far from it."""
    need = ("n_runs", "ECE_D_best", "ECE_D_worst")
    if not all(k in metrics for k in need):
        return []
    text = (f"**06, calibration across notebooks**: {int(metrics['n_runs'])} runs (one per trained model), ECE_D from "
            f"{100 * float(metrics['ECE_D_best']):.1f} % to {100 * float(metrics['ECE_D_worst']):.1f} %")
    near, far = metrics.get("ECE_boundary_mean"), metrics.get("ECE_far_mean")
    if near is not None and far is not None and float(far) > 0:
        text += (f"; the mean ECE at a boundary pixel {100 * float(near):.1f} % against {100 * float(far):.1f} % far "
                 f"from it ({float(near) / float(far):.0f}×)")
    return [text + "."]


def reading_markdown(results_dir: str | os.PathLike, notebooks: Sequence[str] = (
        "02_label_smoothing", "02b_smoothing_ablation", "02c_smoothing_strength", "03_distillation",
        "04_semi_supervised", "05_soft_labels")) -> str:
    """The Reading of ``results_dir``, one Markdown bullet per question (see the module docs)."""
    if not isinstance(results_dir, (str, os.PathLike)):
        raise TypeError(f"Expected `results_dir` to be a path, but got {results_dir!r} ({type(results_dir).__name__}).")
    results_dir = Path(results_dir)
    readers = {"02_label_smoothing": smoothing_reading, "02b_smoothing_ablation": ablation_reading,
               "02c_smoothing_strength": strength_reading, "03_distillation": distillation_reading,
               "04_semi_supervised": ssl_reading, "05_soft_labels": soft_label_reading}
    bullets: list[str] = []
    for notebook in notebooks:
        frame = _read(results_dir, notebook)
        if frame is not None and notebook in readers:
            bullets += readers[notebook](frame)
    metrics = results_dir / "06_calibration.metrics.json"
    if metrics.is_file():
        bullets += calibration_reading(json.loads(metrics.read_text(encoding="utf-8")))
    return "\n".join(f"* {b}" for b in bullets) + ("\n" if bullets else "")
