"""Tables of jmlkit.experiments: summaries, comparisons in words and the findings of notebooks 02-06,
on small hand-made tables (no training)."""
from __future__ import annotations

import math
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
    assert ex.compare(s, "jml_ls", "ce_ls", "ECE_D") == "CE+JML + LS has a higher ECE_D than CE + LS (5.0 ± 0.1 vs 2.0 ± 0.1)"
    s.loc[0, "ECE_D_std"] = 0.05
    assert ex.compare(s, "jml_ls", "ce_ls", "ECE_D").endswith(", within one standard deviation over seeds")
    s.loc[0, "ECE_D_mean"] = 0.0201  # equal at one decimal of percent
    assert ex.compare(s, "jml_ls", "ce_ls", "ECE_D").startswith("CE+JML + LS and CE + LS have the same ECE_D (2.0 ± 5.0)")
    with pytest.raises(ValueError, match="configurations"):
        ex.compare(s, "nope", "ce_ls", "ECE_D")


def test_labels_and_means_per_config():
    assert ex.label("kd_ce+jml") == "KD, CE+JML" and ex.label("other") == "other" and ex.LABELS["ce_hard"] == "CE, hard labels"
    curve = pd.DataFrame({"config": ["b", "b", "a"], "seed": [0, 1, 0], "lower": [0, 0, 0], "p": [0.1, 0.3, 0.5]})
    means = ex.per_config_means(curve, ["lower"], ["p"])
    assert list(means) == ["b", "a"] and means["b"]["p"].tolist() == pytest.approx([0.2])
    iou = pd.DataFrame({"config": ["a", "a"], "IoU_per_class": [[0.2, 1.0], [0.4, 0.0]]})
    np.testing.assert_allclose(ex.per_class_means(iou)["a"], [0.3, 0.5])


# --------------------------------------------------------------------------- 02: label smoothing
def smoothing_tables(ce_conf=0.95, eps_ece=(0.10, 0.04, 0.07), methods=("jml",)):
    m = lambda miou, ece, sce, conf, acc: dict(mIoU_D=miou, ECE_D=ece, SCE_D=sce, Confidence=conf, Acc=acc)  # noqa: E731
    summary = one_seed({"ce_hard": m(0.70, 0.080, 0.020, ce_conf, 0.90), "ce_ls": m(0.72, 0.030, 0.015, 0.85, 0.90),
                        "sjl_ls": m(0.71, 0.060, 0.030, 0.90, 0.90), "jml_ls": m(0.75, 0.040, 0.010, 0.86, 0.91),
                        "jml_bls": m(0.74, 0.040, 0.012, 0.88, 0.91)})
    rows = [{"method": meth, "epsilon": e, "seed": 0, "mIoU_D": 0.7 + e, "ECE_D": ece}
            for meth in methods for e, ece in zip((0.0, 0.1, 0.3), eps_ece)]
    sweep = ex.summarize(pd.DataFrame(rows), ["mIoU_D", "ECE_D"], by=["method", "epsilon"])
    near = {"ce_hard": pd.DataFrame({"ECE": [0.20, 0.10, 0.05]}), "jml_ls": pd.DataFrame({"ECE": [0.12, 0.06, 0.06]})}
    return summary, sweep, near


def test_smoothing_findings_full_text():
    summary, sweep, near = smoothing_tables()
    text = ex.smoothing_findings(summary, sweep, near, profile="quick", seeds=[0],
                                 config=SimpleNamespace(model="small", epochs=20), epsilon=0.1)
    assert text == """\
* **Setting**: quick profile, seeds [0], model `small`, 20 epochs, ε = 0.1.
* **Accuracy**: the highest mIoU_D comes from CE+JML + LS (75.0%).
  CE + LS has a higher mIoU_D than CE, hard labels (72.0 vs 70.0); CE+JML + LS has a higher mIoU_D than CE + LS (75.0 vs 72.0).
* **Calibration**: the lowest ECE_D comes from CE + LS. CE + LS has a lower ECE_D than CE, hard labels (3.0 vs 8.0);
  CE+JML + LS has a lower ECE_D than CE+SJL + LS (4.0 vs 6.0); CE+JML + LS has a higher ECE_D than CE + LS (4.0 vs 3.0);
  CE+JML + boundary LS and CE+JML + LS have the same ECE_D (4.0).
* **Over- or under-confident?** Hard-label CE has a mean confidence of 95.0% for
  a pixel accuracy of 90.0%, so it is
  over-confident on average;
  CE+JML + LS: 86.0% for 91.0%.
* **Class-wise calibration**: CE+JML + LS has a lower SCE_D than CE+SJL + LS (1.0 vs 3.0).
* **Near boundaries**: for hard-label CE, the ECE of pixels right at a boundary is 20.0% against
  5.0% far from any boundary (higher at the boundary); for CE+JML + LS
  it is 12.0% against 6.0%, so lower than hard-label CE
  right at the boundary.
* **ε sweep** (CE+JML + LS): mIoU_D goes from 70.0% at ε = 0 to
  100.0% at ε = 0.3; ECE_D goes from 10.0% at ε = 0 to
  7.0% at ε = 0.3; the lowest is at ε = 0.1."""


def test_smoothing_findings_other_branches():
    summary, sweep, near = smoothing_tables(ce_conf=0.80, eps_ece=(0.02, 0.04, 0.07), methods=("ce",))
    near["ce_hard"]["ECE"] = [0.05, 0.1, 0.2]
    near["jml_ls"]["ECE"] = [0.3, 0.1, 0.1]
    text = ex.smoothing_findings(summary, sweep, near, profile="full", seeds=[0, 1, 2],
                                 config=SimpleNamespace(model="small", epochs=15), epsilon=0.2)
    assert "under-confident on average" in text
    assert "(not higher at the boundary)" in text and "so not lower than hard-label CE" in text
    # without a "jml" method in the sweep, the first method is reported under its own label
    assert "* **ε sweep** (CE + LS)" in text and "the lowest is at ε = 0." in text


# --------------------------------------------------------------------------- 03: distillation
def distillation_summary(hard=0.60, kd_ce=0.62, kd_jml=0.65, both=0.64):
    return one_seed({"hard_ce": {"mIoU_D": hard, "ECE_D": 0.05}, "kd_ce": {"mIoU_D": kd_ce, "ECE_D": 0.03},
                     "kd_jml": {"mIoU_D": kd_jml, "ECE_D": 0.02}, "kd_ce+jml": {"mIoU_D": both, "ECE_D": 0.04}})


def test_distillation_findings_full_text():
    teacher = SimpleNamespace(model="small", epochs=40, epsilon=0.1)
    text = ex.distillation_findings(distillation_summary(), {"mIoU_D": 0.7, "ECE_D": 0.015}, profile="quick", seeds=[0],
                                    teacher=teacher, student=SimpleNamespace(model="student", epochs=20), temperature=1.0)
    assert text == """\
* **Setting**: quick profile, teacher `small` (40 epochs, LS ε = 0.1),
  students `student` (20 epochs), T = 1.0, student seeds [0].
* **Teacher**: mIoU_D 70.0%, ECE_D 1.5%; it is
  10.0 points above the hard-label student in mIoU_D (students of the quick profile are small and trained briefly).
* **Accuracy**: the best student by mIoU_D is KD, JML. KD, CE (= KL) has a higher mIoU_D than hard labels, CE (62.0 vs 60.0);
  KD, JML has a higher mIoU_D than KD, CE (= KL) (65.0 vs 62.0); KD, CE+JML has a higher mIoU_D than KD, CE (= KL) (64.0 vs 62.0);
  KD, CE+JML has a higher mIoU_D than hard labels, CE (64.0 vs 60.0).
* **Calibration**: the best calibrated student is KD, JML. KD, JML has a lower ECE_D than KD, CE (= KL) (2.0 vs 3.0);
  KD, CE (= KL) has a lower ECE_D than hard labels, CE (3.0 vs 5.0); KD, CE+JML has a lower ECE_D than hard labels, CE (4.0 vs 5.0)."""


def test_distillation_findings_winner_and_teacher_below():
    teacher = SimpleNamespace(model="teacher", epochs=30, epsilon=0.0)
    text = ex.distillation_findings(distillation_summary(hard=0.80), {"mIoU_D": 0.7, "ECE_D": 0.015}, profile="full",
                                    seeds=[0, 1, 2], teacher=teacher, student=SimpleNamespace(model="student", epochs=15),
                                    temperature=2.0, teacher_epsilon=0)
    assert "LS ε = 0)," in text  # the notebook's parameter, not the config's float
    assert "10.0 points below the hard-label student in mIoU_D.\n" in text  # no note on short runs in full
    assert "the best student by mIoU_D is hard labels, CE." in text


# --------------------------------------------------------------------------- 04: semi-supervised
def ssl_summary(values, fractions=(0.25, 0.5)):
    rows = [{"method": m, "fraction": f, "seed": 0, "mIoU_D": v[i], "ECE_D": 0.1 + 0.01 * i,
             "epoch_time_s": {"labeled_only": 1.0, "pseudo_hard_ce": 1.5, "pseudo_soft_jml": 2.0}[m]}
            for m, v in values.items() for i, f in enumerate(fractions)]
    return ex.summarize(pd.DataFrame(rows), ["mIoU_D", "ECE_D", "epoch_time_s"], by=["method", "fraction"])


def test_ssl_findings_full_text_and_ties():
    summary = ssl_summary({"labeled_only": (0.50, 0.70), "pseudo_hard_ce": (0.55, 0.70), "pseudo_soft_jml": (0.60, 0.6504)})
    text = ex.ssl_findings(summary, [0.25, 0.5], profile="quick", seeds=[0], config=SimpleNamespace(model="small", epochs=20))
    assert text == """\
* **Setting**: quick profile, model `small`, 20 epochs, seeds [0].
* **Fraction 0.25**: mIoU_D 50.0% labelled only, 55.0% with hard pseudo-labels (+5.0), 60.0% with soft pseudo-labels and JML (+10.0); best: soft pseudo-labels. ECE_D 10.0%, 10.0%, 10.0%.
* **Fraction 0.5**: mIoU_D 70.0% labelled only, 70.0% with hard pseudo-labels (+0.0), 65.0% with soft pseudo-labels and JML (-5.0); best: a tie between labelled only and hard pseudo-labels. ECE_D 11.0%, 11.0%, 11.0%.
* **Self-training helped** (in mIoU_D) at fraction(s) 0.25.
* **Cost**: a semi-supervised training epoch took 2.0× the time of a labelled-only one (2.00 s vs 1.00 s, same number of steps)."""


def test_ssl_findings_did_not_help_and_headline():
    summary = ssl_summary({"labeled_only": (0.6, 0.7), "pseudo_hard_ce": (0.5, 0.6), "pseudo_soft_jml": (0.6, 0.5)})
    text = ex.ssl_findings(summary, [0.25, 0.5], profile="smoke", seeds=[0], config=SimpleNamespace(model="tiny", epochs=1))
    assert "* **Here self-training did not help** at any fraction." in text
    assert "best: a tie between labelled only and soft pseudo-labels." in text
    heads = ex.ssl_headline(summary, ["labeled_only", "pseudo_soft_jml"], [0.25, 0.5])
    assert heads == {"mIoU_D.labeled_only_f0.25": 0.6, "ECE_D.labeled_only_f0.25": 0.1,
                     "mIoU_D.labeled_only_f0.5": 0.7, "ECE_D.labeled_only_f0.5": pytest.approx(0.11),
                     "mIoU_D.pseudo_soft_jml_f0.25": 0.6, "ECE_D.pseudo_soft_jml_f0.25": 0.1,
                     "mIoU_D.pseudo_soft_jml_f0.5": 0.5, "ECE_D.pseudo_soft_jml_f0.5": pytest.approx(0.11)}


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
*Source: the finished runs in `/b`; 3 runs, up to 1 seed(s) per configuration (single seeds: differences below a point or two may be noise).*

- **02_ls**: lowest ECE `a` 2.00% (mIoU 70.0%), highest `b` 5.00% (mIoU 80.0%).
- **03_kd**: lowest ECE `c` 1.00% (mIoU 60.0%), highest `c` 1.00% (mIoU 60.0%).
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
