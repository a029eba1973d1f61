"""Tables of jmlkit.experiments: summaries, comparisons in words and the findings of notebooks 02-06,
on small hand-made tables (no training)."""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from jmlkit import experiments as ex

NAN = float("nan")


def one_seed(values: dict[str, dict[str, float]], by: str = "config") -> pd.DataFrame:
    """A summarize() table of single-seed runs: ``{config: {metric: value}}``."""
    runs = pd.DataFrame([{by: name, "seed": 0, **metrics} for name, metrics in values.items()])
    return ex.summarize(runs, [c for c in runs.columns if c not in (by, "seed")], by=by)


# --------------------------------------------------------------------------- summaries
def test_summarize_known_values():
    runs = pd.DataFrame({"config": ["b", "a", "b"], "seed": [0, 0, 1], "m": [1.0, 2.0, 3.0]})
    s = ex.summarize(runs, "m")
    assert s["config"].tolist() == ["b", "a"]  # first-appearance order
    assert s["m_mean"].tolist() == [2.0, 2.0]
    assert math.isclose(s.at[0, "m_std"], 2 ** 0.5) and math.isnan(s.at[1, "m_std"])
    assert ex.format_table(s, "m", percent=False).loc["a", "m"] == "2.0"
    assert ex.format_table(s, "m").loc["b", "m"] == "200.0 ± 141.4"
    assert list(ex.summarize(runs, by="config").columns) == ["config", "n_seeds", "m_mean", "m_std"]


@pytest.mark.parametrize("call, error, match", [
    (lambda r: ex.summarize(r, ["nope"]), ValueError, "metric"),
    (lambda r: ex.summarize(r, "m", by="nope"), ValueError, "grouping"),
    (lambda r: ex.summarize([{"config": "a"}]), TypeError, "DataFrame"),
    (lambda r: ex.format_table(ex.summarize(r, "m"), ["x"]), ValueError, "x_mean"),
])
def test_summary_errors(call, error, match):
    runs = pd.DataFrame({"config": ["a"], "seed": [0], "m": [1.0]})
    with pytest.raises(error, match=match):
        call(runs)


def test_headline_flattens_means_and_drops_nan():
    s = pd.DataFrame({"config": ["ce", "jml"], "n_seeds": [1, 1], "ECE_D_mean": [0.05, NAN], "ECE_D_std": [NAN, NAN]})
    assert ex.headline(s, ["ECE_D"], prefix="x.") == {"x.ECE_D.ce": 0.05, "x.ECE_D.jml": None}


def test_compare_sentence_follows_the_numbers():
    s = pd.DataFrame({"config": ["jml_ls", "ce_ls"], "n_seeds": [3, 3], "ECE_D_mean": [0.05, 0.02],
                      "ECE_D_std": [0.001, 0.001]})
    assert ex.compare(s, "jml_ls", "ce_ls", "ECE_D") == ("CE+JML + uniform LS (ours) has a higher ECE_D than CE + uniform LS "
                                                         "(5.0 ± 0.1 vs 2.0 ± 0.1)")
    s.loc[0, "ECE_D_std"] = 0.05
    assert ex.compare(s, "jml_ls", "ce_ls", "ECE_D").endswith(", within one standard deviation over seeds")
    s.loc[0, "ECE_D_mean"] = 0.0201  # equal at one decimal of percent
    assert ex.compare(s, "jml_ls", "ce_ls", "ECE_D").startswith(
        "CE+JML + uniform LS (ours) and CE + uniform LS have the same ECE_D (2.0 ± 5.0)")
    with pytest.raises(ValueError, match="configurations"):
        ex.compare(s, "nope", "ce_ls", "ECE_D")


def test_labels_and_means_per_config():
    assert ex.label("jml_bls") == "CE+JML + boundary LS (paper's recipe)" and ex.label("other") == "other"
    assert ex.LABELS["ce_hard"] == "CE, hard labels"
    curve = pd.DataFrame({"config": ["b", "b", "a"], "seed": [0, 1, 0], "lower": [0, 0, 0], "p": [0.1, 0.3, 0.5]})
    means = ex.per_config_means(curve, ["lower"], ["p"])
    assert list(means) == ["b", "a"] and means["b"]["p"].tolist() == pytest.approx([0.2])
    iou = pd.DataFrame({"config": ["a", "a"], "IoU_per_class": [[0.2, 1.0], [0.4, 0.0]]})
    np.testing.assert_allclose(ex.per_class_means(iou)["a"], [0.3, 0.5])


# --------------------------------------------------------------------------- 02: label smoothing
def smoothing_inputs(seeds=1):
    """The tables of notebook 02 (hand-made, the quick profile's shape): comparison, ε sweep, boundary tables,
    per-class IoU, the regime of two tiny label maps, the ablation and the tug-of-war summaries."""
    import torch

    from jmlkit.targets import smoothing_shares

    m = lambda miou, ece, sce, conf, acc: dict(mIoU_D=miou, ECE_D=ece, SCE_D=sce, Confidence=conf, Acc=acc)  # noqa: E731
    values = {"jml_bls": m(0.32, 0.116, 0.02, 0.80, 0.83), "ce_hard": m(0.54, 0.110, 0.015, 0.95, 0.90),
              "ce_ls": m(0.50, 0.030, 0.02, 0.85, 0.90), "ce_bls": m(0.40, 0.184, 0.03, 0.70, 0.87),
              "sjl_bls": m(0.35, 0.090, 0.02, 0.88, 0.86), "jml_ls": m(0.44, 0.081, 0.01, 0.86, 0.87)}
    if seeds == 1:
        summary = one_seed(values)
    else:  # two seeds, 1 point apart
        runs = pd.DataFrame([{"config": k, "seed": s, **{n: x + 0.01 * s for n, x in v.items()}}
                             for k, v in values.items() for s in range(seeds)])
        summary = ex.summarize(runs, list(values["ce_hard"]))
    rows = [{"method": "jml_bls", "epsilon": e, "seed": 0, "mIoU_D": v, "ECE_D": c}
            for e, v, c in ((0.0, 0.58, 0.07), (0.1, 0.43, 0.05), (0.5, 0.32, 0.116))]
    sweep = ex.summarize(pd.DataFrame(rows), ["mIoU_D", "ECE_D"], by=["method", "epsilon"])
    near = {"ce_hard": pd.DataFrame({"ECE": [0.20, 0.10, 0.05]}), "jml_bls": pd.DataFrame({"ECE": [0.12, 0.06, 0.06]})}
    iou = {"jml_bls": [0.9, 0.0, 0.5, 0.0], "ce_hard": [0.9, 0.4, 0.5, 0.3], "ce_bls": [0.9, 0.1, 0.0, 0.2],
           "jml_bls_eps": [0.9, 0.4, 0.0, 0.3]}
    y = torch.zeros(1, 7, 7, dtype=torch.long)
    y[0, 2:5, 2:5] = 1
    big = torch.zeros(1, 12, 12, dtype=torch.long)
    big[0, 2:10, 2:10] = 1
    regime = {"data": smoothing_shares(y, 4), "uniform": smoothing_shares(y, 4, epsilon=0.1, smoothing="uniform"),
              "large": smoothing_shares(big, 4)}
    ablation = one_seed({"jml_bls": {"mIoU_D": 0.32}, "jml_bls_uniform": {"mIoU_D": 0.245},
                         "jml_bls_eps": {"mIoU_D": 0.429}, "jml_bls_image": {"mIoU_D": 0.14},
                         "jml_bls_present": {"mIoU_D": 0.32}, "jml_bls_large": {"mIoU_D": 0.421},
                         "ce_hard_large": {"mIoU_D": 0.486}})
    tug = {"jml_bls": dict(collapsed=["2", "3"], own_prob=0.068, background_prob=0.328, other_prob=0.604,
                           as_background=0.95, ce_net=0.035, jml_net=-0.0188, jml_to_ce=7.23,
                           background_ce_net=-0.0302, background_jml_net=0.066, ce_down_classes=0, jml_down_classes=1,
                           background_ce_at_objects=-0.0499, background_jml_at_objects=0.0174),
           "jml_bls_no_floor": dict(background_jml_at_objects=-0.0448),
           "ce_bls": dict(collapsed=[], own_prob=NAN, background_prob=NAN, other_prob=NAN, as_background=NAN,
                          ce_net=0.0, jml_net=0.0, jml_to_ce=4.86, background_ce_net=0.010, background_jml_net=0.0333,
                          ce_down_classes=0, jml_down_classes=0, background_ce_at_objects=-0.0237,
                          background_jml_at_objects=-0.0093)}
    config = SimpleNamespace(model="small", epochs=20, dataset="digits",
                             dataset_kwargs={"size": 16, "digit_size": [12, 16], "digits_per_scene": [1, 1]})
    return summary, sweep, near, dict(per_class_iou=iou, regime=regime, ablation=ablation, ablation_epsilon=0.1,
                                      tug=tug), config


def _bullets(text: str) -> dict[str, str]:
    """``{bold heading: the bullet's text}`` of a Markdown list whose items start with ``* **heading**``."""
    items = re.findall(r"^\* \*\*(.+?)\*\*(.*?)(?=^\* \*\*|\Z)", text, flags=re.S | re.M)
    return {head: body.strip() for head, body in items}


def test_smoothing_findings_report_the_numbers_and_verdicts():
    """Every number of the findings is the tables' (percent of the hand-made values), every verdict follows them."""
    summary, sweep, near, extra, config = smoothing_inputs()
    setting = dict(profile="quick", seeds=[0], config=config)
    b = _bullets(ex.smoothing_findings(summary, epsilon=0.1, per_class_iou=extra["per_class_iou"],
                                       regime=extra["regime"], **setting))
    assert list(b) == ["Setting", "Regime of our data", "The paper's recipe", "Against CE with hard labels",
                       "Calibration", "Over- or under-confident?", "Our variation"]
    b_abl = _bullets(ex.ablation_findings(extra["ablation"], per_class_iou=extra["per_class_iou"], regime=extra["regime"],
                                          ablation_epsilon=0.1, tug=extra["tug"], sweep_summary=sweep, **setting))
    assert list(b_abl) == ["Setting", "Ablation", "Large objects", "The collapsed classes"]
    b_eps = _bullets(ex.strength_findings(sweep, near, **setting))
    assert list(b_eps) == ["Setting", "ε sweep", "Near boundaries"]
    assert b_abl["Setting"] == b_eps["Setting"] and "not measurable with one seed" in b_eps["Setting"]
    b.update({k: v for k, v in {**b_abl, **b_eps}.items() if k != "Setting"})
    assert b["Setting"].startswith(": quick profile, seeds [0], model `small`")
    assert "model `small`, 20 epochs, 16×16-px digit scenes with 1 digit(s) of 12–16 px" in b["Setting"]
    assert "**not measurable with one seed**" in b["Setting"]
    # the regime of the hand-made 7x7 label map: a 3x3 object (9 of 49 pixels), all but its centre in the 3x3 band
    assert f"smooths {100 * 8 / 9:.0f}% of the object pixels (objects cover {100 * 9 / 49:.0f}% of the pixels)" \
        in b["Regime of our data"]
    assert "floor is 25%" in b["Regime of our data"] and "its floor is 11%" in b["Regime of our data"]
    # the recipe against CE with hard labels: 32.0 vs 54.0, classes at IoU 0 counted from per_class_iou
    assert "mIoU_D 32.0%, 2 of 3 object classes at IoU 0" in b["The paper's recipe"]
    assert "CE, hard labels: 54.0%, 0 of 3 object classes at IoU 0" in b["The paper's recipe"]
    assert "32.0 vs CE, hard labels 54.0 (-22.0 points; not measurable with one seed)" in b["The paper's recipe"]
    for name, value, diff in [("CE + boundary LS", 40.0, -14.0), ("CE+SJL + boundary LS", 35.0, -19.0),
                              ("CE + uniform LS", 50.0, -4.0), ("CE+JML + uniform LS (ours)", 44.0, -10.0)]:
        assert f"{name} {value:.1f} vs CE, hard labels 54.0 ({diff:+.1f} points" in b["Against CE with hard labels"]
    assert "CE + boundary LS 40.0 vs CE, hard labels 54.0 (-14.0 points; not measurable with one seed), 1 of 3" \
        in b["Against CE with hard labels"]
    # one seed: no run is singled out; every run's ECE_D is given; over-confident when confidence > accuracy
    assert b["Calibration"].startswith(": ECE_D per run: ") and "lowest" not in b["Calibration"]
    assert f"{ex.label('ce_ls')} 3.0%" in b["Calibration"] and "CE, hard labels 11.0%" in b["Calibration"]
    assert "(one seed: no run is singled out, no difference is measurable)" in b["Calibration"]
    assert ("CE with hard labels: mean confidence 95.0% for a pixel accuracy of 90.0% (over-confident on average); "
            "the paper's recipe: 80.0% for 83.0% (under-confident)") in b["Over- or under-confident?"]
    assert "ECE right at a boundary is 20.0% against 5.0% far from it" in b["Near boundaries"]
    assert "for the paper's recipe 12.0% against 6.0% (one seed: no difference is measurable)" in b["Near boundaries"]
    # the ablation: each change's mIoU_D; with one seed no single change is named as the winner
    for change, value in [("uniform instead of boundary LS", 24.5), ("ε 0.1 instead of 0.5", 42.9),
                          ("JML per image instead of per batch", 14.0), ("present instead of all classes", 32.0),
                          ("no smoothing (ε 0, from the sweep)", 58.0)]:
        assert f"{change}: {value:.1f}%" in b["Ablation"]
    assert "highest" not in b["Ablation"]
    assert "(the same as the recipe: every class's floor ε/C = 0.125 exceeds the presence threshold" in b["Ablation"]
    assert "smooths 44% of the object pixels" in b["Large objects"]
    assert "recipe on large digits 42.1 vs CE, hard labels, large digits 48.6 (-6.5 points" in b["Large objects"]
    # the tug of war: the signs of the pushes decide "up" or "down", the values are ×10⁻³
    tug = b["The collapsed classes"]
    assert "classes 2, 3 are labelled but predicted nowhere" in tug
    assert "gives them 7% on average, the background 33% and the other classes 60%" in tug and "95% of these" in tug
    assert "the JML term pushes the background's logits up (+17.4×10⁻³) and the CE term down (-49.9×10⁻³)" in tug
    assert "without the floor (ε 0), the JML term pushes it down (-44.8×10⁻³)" in tug
    assert "the JML term pushes 1 of 2 down (sum -18.8×10⁻³), the CE term 2 of 2 up (sum +35.0×10⁻³)" in tug
    assert "7.2× the CE term's" in tug and "(0 collapsed class(es) in these batches)" in tug
    assert "pushes the background at the objects' pixels down (-9.3×10⁻³), the CE term down (-23.7×10⁻³)" in tug
    assert ("mIoU_D 58.0% at ε 0, 43.0% at ε 0.1, 32.0% at ε 0.5; ECE_D 7.0% at ε 0, 5.0% at ε 0.1, 11.6% at ε 0.5 "
            "(one seed: no ε is singled out)") in b["ε sweep"]
    assert "44.0 vs CE, hard labels 54.0 (-10.0 points" in b["Our variation"]
    assert "floor (uniform LS, ε 0.1) is 11% of each object class's target mass, against 25%" in b["Our variation"]
    # a verdict that follows the numbers: make the recipe the best and the sentences turn round
    better = summary.assign(mIoU_D_mean=summary["mIoU_D_mean"].where(summary["config"] != "jml_bls", 0.60))
    b2 = _bullets(ex.smoothing_findings(better, epsilon=0.1, **setting))
    assert "60.0 vs CE, hard labels 54.0 (+6.0 points" in b2["The paper's recipe"]


def test_smoothing_findings_with_several_seeds_and_without_the_ablation():
    summary, sweep, near, extra, config = smoothing_inputs(seeds=2)
    text = ex.smoothing_findings(summary, profile="full", seeds=[0, 1], config=config, epsilon=0.1)
    assert "2 seeds: ± is the standard deviation over seeds; a difference is Δ [95% interval] paired by seed" in text
    assert "not measurable" not in text  # several seeds, no runs: compare() words the differences
    assert ("CE+JML + boundary LS (paper's recipe) has a lower mIoU_D than CE, hard labels (32.5 ± 0.7 vs 54.5 ± 0.7)"
            in text)
    assert "Ablation" not in text and "Regime" not in text and "collapsed" not in text
    assert text.splitlines()[0].startswith("* **Setting**: full profile, seeds [0, 1]")
    # the paper's recipe is reported first, as the paper's; our variation is called ours
    assert text.index("The paper's recipe") < text.index("Against CE") < text.index("Our variation")


def test_smoothing_findings_pair_by_seed_when_given_the_runs():
    summary, sweep, near, extra, config = smoothing_inputs(seeds=2)
    configs = list(summary["config"])
    rng = np.random.default_rng(0)
    runs = pd.DataFrame([{"config": c, "seed": s, "mIoU_D": float(summary.set_index("config").at[c, "mIoU_D_mean"])
                          + 0.01 * rng.standard_normal(), "ECE_D": 0.05 + 0.01 * s} for c in configs for s in (0, 1)])
    text = ex.smoothing_findings(summary, profile="full", seeds=[0, 1], config=config, epsilon=0.1, runs=runs)
    d = ex.paired_difference(runs, "jml_bls", "ce_hard", "mIoU_D")
    assert f"CE+JML + boundary LS (paper's recipe) − CE, hard labels: ΔmIoU_D {ex.format_difference(d)}" in text
    assert d.verdict in text


def test_smoothing_findings_other_branches():
    summary, sweep, near, extra, config = smoothing_inputs()
    extra["ablation"] = extra["ablation"].assign(mIoU_D_mean=[0.32, 0.2, 0.3, 0.1, 0.33, 0.4, 0.5])
    extra["tug"] = {"jml_bls": {**extra["tug"]["jml_bls"], "jml_net": 0.01, "jml_down_classes": 0, "collapsed": ["5"]}}
    sweep = sweep[sweep["epsilon"] > 0]  # no ε 0 in the sweep
    voc = SimpleNamespace(model="small", epochs=20, dataset="voc", dataset_kwargs={"root": "x"})
    del extra["per_class_iou"]
    text = ex.ablation_findings(extra.pop("ablation"), profile="quick", seeds=[0], config=voc, sweep_summary=sweep,
                                **extra)
    assert "data set `voc`" in text
    assert "present instead of all classes: 33.0%," not in text and "the same as the recipe" not in text
    assert "highest" not in text.split("Ablation")[1].split("\n")[0]  # one seed: no change singled out
    summary2, sweep2, near2, extra2, _ = smoothing_inputs(seeds=2)
    extra2["ablation"] = extra2["ablation"].assign(mIoU_D_mean=[0.32, 0.2, 0.3, 0.1, 0.33, 0.4, 0.5])
    two = ex.ablation_findings(extra2["ablation"].assign(n_seeds=2), profile="full", seeds=[0, 1], config=voc,
                               reference=summary2,
                               sweep_summary=sweep2[sweep2["epsilon"] > 0], ablation_epsilon=extra2.get("ablation_epsilon"))
    assert "**present instead of all classes** (33.0%), still below CE with hard labels" in two
    assert "classes 5 are labelled" in text and "the JML term pushes 0 of 1 down (sum +10.0×10⁻³)" in text
    assert "without the floor" not in text and "CE + boundary LS model" not in text
    no_tug = ex.ablation_findings(smoothing_inputs()[3]["ablation"], profile="quick", seeds=[0], config=voc,
                                  tug={"jml_bls": {**extra["tug"]["jml_bls"], "collapsed": []}})
    assert "collapsed" not in no_tug


# --------------------------------------------------------------------------- 03: distillation
def distillation_summary(hard=0.60, kd_kl=0.62, kd_jml=0.65, only=0.10):
    return one_seed({"kd_jml": {"mIoU_D": kd_jml, "ECE_D": 0.02}, "hard_ce": {"mIoU_D": hard, "ECE_D": 0.05},
                     "kd_kl": {"mIoU_D": kd_kl, "ECE_D": 0.03}, "kd_jml_only": {"mIoU_D": only, "ECE_D": 0.2}})


def _teacher(epsilon=0.5, epochs=40, model="small"):
    return SimpleNamespace(model=model, epochs=epochs, epsilon=epsilon, smoothing="boundary")


def test_distillation_findings_full_text():
    text = ex.distillation_findings(distillation_summary(), {"mIoU_D": 0.7, "ECE_D": 0.015}, profile="quick", seeds=[0],
                                    teacher=_teacher(), student=SimpleNamespace(model="student", epochs=20),
                                    temperature=1.0)
    assert text == """\
* **Setting**: quick profile; teacher `small` (40 epochs, CE+JML with boundary
  label smoothing ε = 0.5, the paper's teacher recipe; random weights; the paper's start from ImageNet encoders), students `student`
  (20 epochs; random weights; the paper's start from ImageNet encoders), T = 1.0, seeds [0].
* **Teacher**: mIoU_D 70.0%, ECE_D 1.5%;
  10.0 points above the hard-label student in mIoU_D.
* **The paper's JML-KD**: JML-KD (the paper's) has a higher mIoU_D than hard labels, CE (65.0 vs 60.0); \
JML-KD (the paper's) has a higher mIoU_D than KL distillation (CE + KL) (65.0 vs 62.0).
  Of the students, mIoU_D per run: JML-KD (the paper's) 65.0%, hard labels, CE 60.0%, KL distillation (CE + KL) 62.0%, \
JML on the teacher alone (ours) 10.0% (one seed: no run is singled out, no difference is measurable). With one seed \
these differences are not measurable: run the full profile for seeds and spreads.
* **JML alone on the teacher** (ours, not the paper's objective): JML on the teacher alone (ours) has a lower mIoU_D \
than JML-KD (the paper's) (10.0 vs 65.0).
* **Calibration**: of the students, ECE_D per run: JML-KD (the paper's) 2.0%, hard labels, CE 5.0%, KL distillation \
(CE + KL) 3.0%, JML on the teacher alone (ours) 20.0% (one seed: no run is singled out, no difference is measurable). \
JML-KD (the paper's) has a lower ECE_D than KL distillation (CE + KL) (2.0 vs 3.0);
  JML-KD (the paper's) has a lower ECE_D than hard labels, CE (2.0 vs 5.0)."""


def test_distillation_findings_winner_and_teacher_below():
    text = ex.distillation_findings(distillation_summary(hard=0.80), {"mIoU_D": 0.7, "ECE_D": 0.015}, profile="full",
                                    seeds=[0, 1, 2], teacher=_teacher(epsilon=0.5, epochs=30, model="teacher"),
                                    student=SimpleNamespace(model="student", epochs=15), temperature=2.0,
                                    teacher_epsilon=0)
    assert "label smoothing ε = 0, ours: the paper's teacher uses ε = 0.5" in text  # the notebook's parameter, not the config's
    assert "10.0 points below the hard-label student in mIoU_D.\n" in text
    assert "Of the students, the highest mean mIoU_D is hard labels, CE (80.0%)." in text and "not measurable" not in text


# --------------------------------------------------------------------------- 04: semi-supervised
SSL_TIMES = {"labeled_only": 1.0, "pseudo_hard_ce": 1.5, "pseudo_soft_ce": 1.5, "pseudo_hard_jml": 2.0, "pseudo_soft_jml": 2.0}


def ssl_runs(values, fractions=(0.25, 0.5), seeds=(0,), jitter=None):
    """One row per method, fraction and seed: ``values[method][i]`` at ``fractions[i]``, plus ``jitter[seed]``."""
    jitter = jitter or {s: 0.0 for s in seeds}
    return pd.DataFrame([{"method": m, "fraction": f, "seed": s, "mIoU_D": v[i] + jitter[s], "ECE_D": 0.1 + 0.01 * i,
                          "epoch_time_s": SSL_TIMES[m]}
                         for m, v in values.items() for i, f in enumerate(fractions) for s in seeds])


def ssl_summary(runs):
    return ex.summarize(runs, ["mIoU_D", "ECE_D", "epoch_time_s"], by=["method", "fraction"])


def test_ssl_findings_one_seed_full_text_and_ties():
    runs = ssl_runs({"labeled_only": (0.50, 0.70), "pseudo_hard_ce": (0.55, 0.70), "pseudo_soft_ce": (0.56, 0.69),
                     "pseudo_hard_jml": (0.57, 0.68), "pseudo_soft_jml": (0.60, 0.6504)})
    text = ex.ssl_findings(ssl_summary(runs), [0.25, 0.5], profile="quick", seeds=[0],
                           config=SimpleNamespace(model="small", epochs=20), runs=runs)
    assert text == """\
* **Setting**: quick profile, model `small`, 20 epochs, seeds [0].
* **Fraction 0.25**: mIoU_D labelled only 50.0%, hard + CE 55.0%, soft + CE 56.0%, hard + CE+JML 57.0%, soft + CE+JML 60.0%. ECE_D in the same order 10.0%, 10.0%, 10.0%, 10.0%, 10.0%.
  * **One seed: no difference is measurable.** The single-run differences, in mIoU_D points: soft + CE+JML vs hard + CE +5.0; soft vs hard pseudo-labels +1.0 with CE, +3.0 with CE+JML; CE+JML vs CE +2.0 on hard pseudo-labels, +4.0 on soft pseudo-labels; pseudo-labels vs labelled only +5.0 hard + CE, +6.0 soft + CE, +7.0 hard + CE+JML, +10.0 soft + CE+JML.
* **Fraction 0.5**: mIoU_D labelled only 70.0%, hard + CE 70.0%, soft + CE 69.0%, hard + CE+JML 68.0%, soft + CE+JML 65.0%. ECE_D in the same order 11.0%, 11.0%, 11.0%, 11.0%, 11.0%.
  * **One seed: no difference is measurable.** The single-run differences, in mIoU_D points: soft + CE+JML vs hard + CE -5.0; soft vs hard pseudo-labels -1.0 with CE, -3.0 with CE+JML; CE+JML vs CE -2.0 on hard pseudo-labels, -4.0 on soft pseudo-labels; pseudo-labels vs labelled only +0.0 hard + CE, -1.0 soft + CE, -2.0 hard + CE+JML, -5.0 soft + CE+JML.
* **Self-training** against labelled only, in mIoU_D points per pseudo-label method (in the order above), at fraction 0.25: +5.0, +6.0, +7.0, +10.0; 0.5: +0.0, -1.0, -2.0, -5.0. One seed: whether self-training helps is not measurable here (the full profile pairs five seeds). Starting from a randomly initialised model, the first pseudo-labels are mostly wrong and the model learns its own mistakes (confirmation bias); practical recipes first train on the labelled images alone (this notebook does, for the first `ssl_warmup` share of the steps) or weigh the unlabelled loss down (`ssl_weight`).
* **Cost**: a semi-supervised training epoch took 1.8× the time of a labelled-only one (1.75 s vs 1.00 s, same number of steps; the mean of the four pseudo-label methods)."""
    # without the runs table: the same single-run differences, from the summary
    assert ex.ssl_findings(ssl_summary(runs), [0.25, 0.5], profile="quick", seeds=[0],
                           config=SimpleNamespace(model="small", epochs=20)) == text


def test_ssl_findings_pairs_each_factor_by_seed():
    """Three seeds: every comparison is Δ [95% interval] paired by seed, with the scipy interval and its verdict."""
    from scipy import stats

    values = {"labeled_only": (0.50,), "pseudo_hard_ce": (0.52,), "pseudo_soft_ce": (0.52,), "pseudo_hard_jml": (0.56,),
              "pseudo_soft_jml": (0.60,)}
    runs = ssl_runs(values, fractions=(0.125,), seeds=(0, 1, 2), jitter={0: 0.0, 1: 0.02, 2: 0.05})
    noise = {("pseudo_soft_ce", 1): 0.006, ("pseudo_soft_ce", 2): -0.002, ("pseudo_soft_jml", 1): 0.003,
             ("pseudo_hard_jml", 2): 0.002, ("labeled_only", 1): -0.001}
    runs["mIoU_D"] += [noise.get((m, s), 0.0) for m, s in zip(runs.method, runs.seed)]
    text = ex.ssl_findings(ssl_summary(runs), [0.125], profile="full", seeds=[0, 1, 2],
                           config=SimpleNamespace(model="small", epochs=30), runs=runs)

    def expected(a, b):
        va = runs[runs.method == a].sort_values("seed").mIoU_D.to_numpy()
        vb = runs[runs.method == b].sort_values("seed").mIoU_D.to_numpy()
        ci = stats.ttest_rel(va, vb).confidence_interval(0.95)
        verdict = "gain" if ci.low > 0 else "loss" if ci.high < 0 else "no measurable difference"
        num = lambda x, signed: (f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}").replace("-", "\u2212")  # noqa: E731
        return f"{num(np.mean(va - vb), True)} [{num(ci.low, False)}, {num(ci.high, False)}] points (3 seeds): {verdict}"

    lines = text.splitlines()
    assert lines[2] == ("  * **Soft + CE+JML vs hard + CE** (both factors at once, the paper's question): Δ mIoU_D "
                        + expected("pseudo_soft_jml", "pseudo_hard_ce") + ".")
    assert lines[3] == ("  * **Soft vs hard pseudo-labels** (factor 1, the loss held): Δ mIoU_D with CE "
                        + expected("pseudo_soft_ce", "pseudo_hard_ce") + "; with CE+JML "
                        + expected("pseudo_soft_jml", "pseudo_hard_jml") + ".")
    assert lines[4] == ("  * **CE+JML vs CE** (factor 2, the pseudo-labels held): Δ mIoU_D on hard pseudo-labels "
                        + expected("pseudo_hard_jml", "pseudo_hard_ce") + "; on soft pseudo-labels "
                        + expected("pseudo_soft_jml", "pseudo_soft_ce") + ".")
    assert lines[5].startswith("  * **Pseudo-labels vs labelled only**: Δ mIoU_D hard + CE "
                               + expected("pseudo_hard_ce", "labeled_only"))
    # soft vs hard with CE is noise around 0, the JML's effects clear gains
    assert expected("pseudo_soft_ce", "pseudo_hard_ce").endswith("no measurable difference")
    assert expected("pseudo_soft_jml", "pseudo_soft_ce").endswith(": gain")
    assert lines[6] == "* **Self-training helped** (a gain over labelled only, paired by seed) at fraction(s) 0.125."
    assert "not measurable" not in text


def test_ssl_findings_did_not_help_missing_methods_and_headline():
    values = {"labeled_only": (0.6, 0.7), "pseudo_hard_ce": (0.5, 0.6), "pseudo_soft_ce": (0.5, 0.6),
              "pseudo_hard_jml": (0.5, 0.6), "pseudo_soft_jml": (0.6, 0.5)}
    summary = ssl_summary(ssl_runs(values))
    text = ex.ssl_findings(summary, [0.25, 0.5], profile="smoke", seeds=[0], config=SimpleNamespace(model="tiny", epochs=1))
    assert ("* **Self-training** against labelled only, in mIoU_D points per pseudo-label method (in the order above), "
            "at fraction 0.25: -10.0, -10.0, -10.0, +0.0; 0.5: -10.0, -10.0, -10.0, -20.0. One seed: whether "
            "self-training helps is not measurable here") in text
    assert "highest" not in text and "did not help" not in text  # one seed: nothing singled out
    paired = ssl_runs(values, seeds=(0, 1, 2), jitter={0: 0.0, 1: 0.01, 2: 0.03})
    assert "* **Self-training did not measurably help** at any fraction" in ex.ssl_findings(
        ssl_summary(paired), [0.25, 0.5], profile="full", seeds=[0, 1, 2], config=SimpleNamespace(model="t", epochs=1),
        runs=paired)
    with pytest.raises(ValueError, match=r"lacks \(method, fraction\) \[\('pseudo_soft_ce', 0.25\)"):
        ex.ssl_findings(summary[summary.method != "pseudo_soft_ce"], [0.25], profile="smoke", seeds=[0],
                        config=SimpleNamespace(model="tiny", epochs=1))
    heads = ex.ssl_headline(summary, list(values), [0.25, 0.5])
    assert len(heads) == 5 * 2 * 2
    assert heads["mIoU_D.pseudo_soft_ce_f0.25"] == 0.5 and heads["ECE_D.pseudo_hard_jml_f0.5"] == pytest.approx(0.11)


# --------------------------------------------------------------------------- 05: soft labels
def soft_summary(sjl_extreme=0.60, sjl_mae=0.20, sjl_ece=0.02):
    row = lambda mae, ext, ece: dict(MAE_band=mae, extreme_band=ext, slope_band=1.5, soft_mIoU=0.8, mIoU_D=0.9, ECE_D=ece)  # noqa: E731
    return one_seed({"ce_soft": row(0.12, 0.10, 0.03), "jml_soft": row(0.10, 0.05, 0.04),
                     "sjl_soft": row(sjl_mae, sjl_extreme, sjl_ece)})


def test_soft_label_findings_full_text():
    text = ex.soft_label_findings(soft_summary(), ["ce", "jml", "sjl"], profile="quick", seeds=[0], epochs=30, n_test=21)
    assert text == """\
*Profile `quick`, 1 seed(s), 30 epochs on 21 test slices.*

- **CE**: mean |p - y| at partial-volume entries 12.0%, 10.0% of them pushed below 0.1 or above 0.9 (slope 1.50); soft mIoU 80.0%, hard mIoU 90.0%, ECE 3.0%.
- **JML**: mean |p - y| at partial-volume entries 10.0%, 5.0% of them pushed below 0.1 or above 0.9 (slope 1.50); soft mIoU 80.0%, hard mIoU 90.0%, ECE 4.0%.
- **SJL**: mean |p - y| at partial-volume entries 20.0%, 60.0% of them pushed below 0.1 or above 0.9 (slope 1.50); soft mIoU 80.0%, hard mIoU 90.0%, ECE 2.0%.

As the theory says, the SJL pushed partial-volume predictions to 0/1 (60% vs 5% for the JML) and missed the soft labels by more (20.0% vs 10.0% mean |p - y| in the band).
Note the ECE against the hard label: the SJL looks *better* calibrated (2.0% vs 4.0%). The hard label is the argmax of the soft one, so a network that predicts hard labels is 'calibrated' against it; against the soft target it is not. Which calibration you want depends on what the probabilities are used for.
Ranked by mean |p - y| in the band (lower is better): JML 10.0% < CE 12.0% < SJL 20.0%. Cross-entropy is also minimised at p = y, so it should sit near the JML, not near the SJL."""


def test_soft_label_findings_branches():
    # the SJL is not clearly biased (band error only 0.5 point above the JML's), and not better calibrated
    text = ex.soft_label_findings(soft_summary(sjl_mae=0.105, sjl_ece=0.05), ["jml", "sjl"], profile="smoke", seeds=[0],
                                  epochs=1, n_test=8)
    assert "In this run the SJL did **not** clearly show its bias towards 0/1" in text
    assert "looks *better*" not in text and "Ranked by" not in text  # no CE run: no ranking
    only = ex.soft_label_findings(soft_summary(), ["ce", "jml"], profile="smoke", seeds=[0], epochs=1, n_test=8)
    assert "SJL pushed" not in only and "Ranked by mean |p - y| in the band (lower is better): JML 10.0% < CE 12.0%." in only


# --------------------------------------------------------------------------- 06: calibration of every run
def calibration_tables():
    summary = ex.summarize(pd.DataFrame([
        {"notebook": "02_ls", "config": "a", "seed": 0, "ECE_D": 0.02, "mIoU_D": 0.7},
        {"notebook": "02_ls", "config": "b", "seed": 0, "ECE_D": 0.05, "mIoU_D": 0.8},
        {"notebook": "03_kd", "config": "c", "seed": 0, "ECE_D": 0.01, "mIoU_D": 0.6},
    ]), ["ECE_D", "mIoU_D"], by=["notebook", "config"])
    ece = {("02_ls", "a"): (0.3, 0.1), ("02_ls", "b"): (0.2, 0.1), ("03_kd", "c"): (0.1, 0.1)}  # ratios 3, 2, 1
    boundary = pd.DataFrame([{"notebook": nb, "config": c, "seed": 0, "distance": d, "ECE": e if d == 1 else f}
                             for (nb, c), (e, f) in ece.items() for d in (1, 2, 3)])
    worst = {("02_ls", "a"): "digit", ("02_ls", "b"): "digit", ("03_kd", "c"): "bg"}
    per_class = pd.DataFrame([{"notebook": nb, "config": c, "seed": 0, "class_name": k,
                               "ECE_class": 0.2 if worst[(nb, c)] == k else 0.1}
                              for (nb, c) in worst for k in ("bg", "digit")])
    return summary, boundary, per_class


def test_calibration_findings_full_text():
    summary, boundary, per_class = calibration_tables()
    text = ex.calibration_findings(summary, boundary, per_class, source="the finished runs in `/b`", n_runs=3)
    assert text == """\
*Source: the finished runs in `/b`; 3 runs, up to 1 seed(s) per configuration (one seed each: no difference between configurations is measurable).*

- **02_ls**: ECE_D from 2.00% to 5.00% over 2 configurations (one seed each: no difference between them is measurable).
- **03_kd**: ECE_D from 1.00% to 1.00% over 1 configurations (one seed each: no difference between them is measurable).
- At the boundary the ECE was more than 1.2x its value far from it for 2 of 3 configurations (median ratio 2.0x): miscalibration concentrates at boundaries, as expected.
- The class with the largest class-wise calibration error was most often `digit` (2 of 3 configurations)."""


def test_calibration_findings_not_concentrated_and_the_other_tables():
    summary, boundary, per_class = calibration_tables()
    boundary.loc[(boundary["config"] == "b") & (boundary["distance"] == 1), "ECE"] = 0.11  # ratio 1.1: not more than 1.2x
    text = ex.calibration_findings(summary, boundary, per_class, source="s", n_runs=3)
    assert "for 1 of 3 configurations (median ratio 1.1x): here miscalibration did *not* clearly concentrate" in text
    table = ex.boundary_table(boundary)
    assert list(table.columns) == ["ECE at boundary (%)", "ECE far away (%)", "ratio"]
    assert table.loc[("02_ls", "a")].tolist() == [30.0, 10.0, 3.0]
    runs = pd.DataFrame({"notebook": ["02_ls", "02_ls", "03_kd"]})
    heads = ex.calibration_headline(runs, summary, boundary, trained_here=False)
    assert heads == {"n_runs": 3, "n_notebooks": 2, "trained_here": 0, "ECE_D_best": 0.01, "ECE_D_worst": 0.05,
                     "ECE_boundary_mean": pytest.approx((0.3 + 0.11 + 0.1) / 3), "ECE_far_mean": pytest.approx(0.1)}
    assert ex.source_note("here", runs, {}) == "**Source:** here. 3 runs of 2 notebook(s)."
    assert ex.skipped_note(pd.DataFrame(columns=["notebook", "config", "seed"])) == ""
    skipped = pd.DataFrame({"notebook": ["02_ls"], "config": ["a"], "seed": [1]})
    assert ex.skipped_note(skipped) == "*Left out below (1 runs whose model could not be rebuilt):* `02_ls a seed 1`"


# --------------------------------------------------------------------------- 02: the over-confident regime
def _over_runs(conf_ce, acc_ce, conf_ls, acc_ls, miou=0.75):
    seeds = range(5)
    jitter = [0.0, 0.004, -0.003, 0.002, -0.001]
    rows = [{"regime": "overconfident", "config": "ce_hard", "seed": k, "Confidence": conf_ce + jitter[k],
             "Acc": acc_ce, "mIoU_D": miou + jitter[k], "ECE_D": conf_ce - acc_ce + jitter[k]} for k in seeds]
    rows += [{"regime": "overconfident", "config": "jml_bls", "seed": k, "Confidence": conf_ls - jitter[k],
              "Acc": acc_ls, "mIoU_D": miou - 0.01 + jitter[k], "ECE_D": abs(conf_ls - acc_ls) + 0.005} for k in seeds]
    return pd.DataFrame(rows)


def test_confidence_gaps_call_over_under_and_no_gap_from_the_interval():
    gaps = ex.confidence_gaps(_over_runs(0.95, 0.91, 0.88, 0.92)).set_index("config")
    assert gaps.loc["ce_hard", "verdict"] == "over-confident" and gaps.loc["ce_hard", "n"] == 5
    assert gaps.loc["ce_hard", "delta"] == pytest.approx(0.04 + sum([0.0, 0.004, -0.003, 0.002, -0.001]) / 5)
    assert gaps.loc["jml_bls", "verdict"] == "under-confident"
    tied = ex.confidence_gaps(_over_runs(0.91, 0.91, 0.92, 0.92)).set_index("config")
    assert tied.loc["ce_hard", "verdict"] == "no measurable gap"


def test_overconfidence_findings_check_the_regime_before_reporting():
    text = ex.overconfidence_findings(_over_runs(0.95, 0.91, 0.92, 0.92))
    assert "over-confident, as the regime was chosen to be" in text
    assert "ΔECE_D" in text and "ΔmIoU_D" in text and "(5 seeds)" in text
    weak = ex.overconfidence_findings(_over_runs(0.95, 0.91, 0.92, 0.92, miou=0.5))
    assert "the regime's condition fails" in weak and "mIoU_D ≥ 70%" in weak
    calibrated = ex.overconfidence_findings(_over_runs(0.915, 0.91, 0.92, 0.92))
    assert "the regime's condition fails" in calibrated
    assert "did not run" in ex.overconfidence_findings(_over_runs(0.95, 0.91, 0.92, 0.92), baseline="ce_ls")


def test_calibration_findings_single_out_only_configurations_with_several_seeds():
    """03 holds configurations of five seeds and one of a single seed (the CE-trained teacher): the extremes are
    named among the seeded ones, and the single-seed one is counted as left out, not called "one seed each"."""
    rows = [{"notebook": "03_kd", "config": c, "seed": s, "ECE_D": e + 0.001 * s, "mIoU_D": 0.8}
            for c, e in (("a", 0.02), ("b", 0.05)) for s in range(3)]
    rows.append({"notebook": "03_kd", "config": "one", "seed": 0, "ECE_D": 0.30, "mIoU_D": 0.5})
    summary = ex.summarize(pd.DataFrame(rows), ["ECE_D", "mIoU_D"], by=["notebook", "config"])
    _, boundary, per_class = calibration_tables()
    text = ex.calibration_findings(summary, boundary, per_class, source="s", n_runs=7)
    assert ("- **03_kd**: lowest mean ECE `a` 2.10% (mIoU 80.0%), highest `b` 5.10% (mIoU 80.0%), among the 2 "
            "configurations with several seeds (1 with one seed left out).") in text
    assert "one seed each" not in text and "`one`" not in text
