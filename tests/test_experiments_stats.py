"""Paired differences with confidence intervals (jmlkit.experiments.stats)."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from jmlkit.experiments import format_difference, paired_difference, paired_differences
from jmlkit.experiments.stats import PairedDifference, higher_is_better


def make_runs(values: dict, seeds=None, metric="mIoU_D") -> pd.DataFrame:
    rows = []
    for config, vals in values.items():
        for i, v in enumerate(vals):
            rows.append({"config": config, "seed": (seeds[config][i] if seeds else i), metric: v})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- agreement with scipy

@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_agrees_with_scipy(n, confidence):
    rng = np.random.default_rng(1000 * n + int(confidence * 100))
    a = rng.normal(0.6, 0.05, n)
    b = a - rng.normal(0.01, 0.02, n)
    d = paired_difference(make_runs({"a": a, "b": b}), "a", "b", "mIoU_D", confidence=confidence)
    diff = a - b
    assert d.n == n and d.seeds == tuple(range(n))
    assert d.delta == pytest.approx(diff.mean(), abs=1e-12)
    assert d.std == pytest.approx(diff.std(ddof=1), abs=1e-12)
    low, high = sps.t.interval(confidence, n - 1, loc=diff.mean(), scale=sps.sem(diff))
    assert d.low == pytest.approx(low, rel=1e-12, abs=1e-12)
    assert d.high == pytest.approx(high, rel=1e-12, abs=1e-12)
    res = sps.ttest_rel(a, b)
    ci = res.confidence_interval(confidence_level=confidence)
    assert d.low == pytest.approx(ci.low, rel=1e-12, abs=1e-12)
    assert d.high == pytest.approx(ci.high, rel=1e-12, abs=1e-12)
    assert d.delta / (d.std / math.sqrt(n)) == pytest.approx(res.statistic, rel=1e-12)
    # the interval excludes 0 exactly when the two-sided test rejects at 1 - confidence
    assert (d.verdict != "no measurable difference") == (res.pvalue < 1 - confidence)


def test_extreme_quantiles():
    from jmlkit.experiments.stats import _t_quantile_upper
    assert _t_quantile_upper(0.0005, 1) == pytest.approx(1 / math.tan(math.pi * 0.0005), rel=1e-14)
    for df in (3, 7, 49, 200):
        for c in (0.01, 0.999):
            assert _t_quantile_upper((1 - c) / 2, df) == pytest.approx(sps.t.ppf((1 + c) / 2, df), rel=1e-11)


# --------------------------------------------------------------------------------------------------------- pairing

def test_pairs_only_common_seeds_in_any_order():
    runs = make_runs({"a": [0.70, 0.72, 0.75, 0.71], "b": [0.65, 0.66, 0.69]},
                     seeds={"a": [3, 1, 2, 9], "b": [2, 1, 3]})
    d = paired_difference(runs, "a", "b", "mIoU_D")
    assert d.seeds == (1, 2, 3) and d.n == 3
    diff = np.array([0.72 - 0.66, 0.75 - 0.65, 0.70 - 0.69])  # seeds 1, 2, 3
    assert d.delta == pytest.approx(diff.mean(), abs=1e-15)
    shuffled = paired_difference(runs.sample(frac=1.0, random_state=0), "a", "b", "mIoU_D")
    assert shuffled == d


def test_no_common_seed():
    runs = make_runs({"a": [0.7, 0.8], "b": [0.6, 0.5]}, seeds={"a": [0, 1], "b": [2, 3]})
    d = paired_difference(runs, "a", "b", "mIoU_D")
    assert d.n == 0 and d.seeds == () and math.isnan(d.delta) and math.isnan(d.low)
    assert d.verdict == "not measurable (n < 2)"
    assert format_difference(d) == "not measurable with 0 seeds"


def test_one_seed():
    d = paired_difference(make_runs({"a": [0.7], "b": [0.6]}), "a", "b", "mIoU_D")
    assert d.n == 1 and d.delta == pytest.approx(0.1)
    assert math.isnan(d.low) and math.isnan(d.high) and math.isnan(d.std)
    assert d.verdict == "not measurable (n < 2)"
    assert format_difference(d) == "not measurable with 1 seed"


def test_nan_dropped_with_warning_naming_seeds():
    runs = make_runs({"a": [0.7, float("nan"), 0.72, 0.71], "b": [0.6, 0.61, float("nan"), 0.62]})
    with pytest.warns(UserWarning, match=r"seeds \[1, 2\]"):
        d = paired_difference(runs, "a", "b", "mIoU_D")
    assert d.seeds == (0, 3) and d.n == 2


def test_duplicate_seed_is_an_error():
    runs = make_runs({"a": [0.7, 0.8], "b": [0.6, 0.5]}, seeds={"a": [0, 0], "b": [0, 1]})
    with pytest.raises(ValueError, match="`a`"):
        paired_difference(runs, "a", "b", "mIoU_D")


# -------------------------------------------------------------------------------------------------------- verdicts

def test_verdict_interval_touching_zero():
    # differences [1, 3]: mean 2, s = sqrt(2), half width = t_{1,(1+c)/2} * 1; choose c with t = 2 exactly
    c = 1 - 2 * sps.t.sf(2.0, 1)
    runs = make_runs({"a": [1.0, 3.0], "b": [0.0, 0.0]})
    d = paired_difference(runs, "a", "b", "mIoU_D", confidence=c)
    assert d.low == pytest.approx(0.0, abs=1e-14)
    # a nudge of the confidence either side of touching
    above = paired_difference(runs, "a", "b", "mIoU_D", confidence=c - 1e-9)
    below = paired_difference(runs, "a", "b", "mIoU_D", confidence=c + 1e-9)
    assert above.low > 0 and above.verdict == "gain"
    assert below.low < 0 and below.verdict == "no measurable difference"


def test_verdict_exactly_zero_bound():
    # identical differences: std 0, interval [0, 0] when the difference is 0 -> touches 0
    d = paired_difference(make_runs({"a": [0.5, 0.6, 0.7], "b": [0.5, 0.6, 0.7]}), "a", "b", "mIoU_D")
    assert d.low == 0.0 and d.high == 0.0 and d.verdict == "no measurable difference"
    # constant non-zero difference: a degenerate interval that excludes 0
    d = paired_difference(make_runs({"a": [1.5, 2.5, 3.5], "b": [1.0, 2.0, 3.0]}), "a", "b", "mIoU_D")
    assert d.low == d.high == 0.5 and d.verdict == "gain"


def test_gain_loss_and_lower_is_better_flip():
    a, b = [0.70, 0.72, 0.71, 0.73], [0.60, 0.61, 0.60, 0.62]
    assert paired_difference(make_runs({"a": a, "b": b}), "a", "b", "mIoU_D").verdict == "gain"
    assert paired_difference(make_runs({"a": a, "b": b}), "b", "a", "mIoU_D").verdict == "loss"
    for metric in ("ECE_D", "SCE_I", "MCE_D", "ACE_D", "RMSCE_D", "Brier", "NLL"):
        runs = make_runs({"a": a, "b": b}, metric=metric)
        d = paired_difference(runs, "a", "b", metric)
        assert d.delta > 0 and d.verdict == "loss" and d.higher_is_better is False
        assert paired_difference(runs, "b", "a", metric).verdict == "gain"
        assert paired_difference(runs, "a", "b", metric, higher_is_better=True).verdict == "gain"
    runs = make_runs({"a": a, "b": b}, metric="mIoU_D")
    assert paired_difference(runs, "a", "b", "mIoU_D", higher_is_better=False).verdict == "loss"
    assert higher_is_better("accuracy") and higher_is_better("mIoU_D") and not higher_is_better("ECE_class")


def test_no_measurable_difference():
    runs = make_runs({"a": [0.70, 0.60, 0.72, 0.61], "b": [0.65, 0.66, 0.67, 0.64]})
    assert paired_difference(runs, "a", "b", "mIoU_D").verdict == "no measurable difference"


# ---------------------------------------------------------------------------------------------------------- errors

def test_errors_name_the_argument():
    runs = make_runs({"a": [0.7, 0.8], "b": [0.6, 0.5]})
    with pytest.raises(ValueError, match="`a`"):
        paired_difference(runs, "x", "b", "mIoU_D")
    with pytest.raises(ValueError, match="`b`"):
        paired_difference(runs, "a", "x", "mIoU_D")
    with pytest.raises(ValueError, match="`metric`"):
        paired_difference(runs, "a", "b", "nope")
    with pytest.raises(TypeError, match="`metric`"):
        paired_difference(runs, "a", "b", 3)
    for bad in (0, 1, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="`confidence`"):
            paired_difference(runs, "a", "b", "mIoU_D", confidence=bad)
    with pytest.raises(TypeError, match="`confidence`"):
        paired_difference(runs, "a", "b", "mIoU_D", confidence="0.95")
    with pytest.raises(TypeError, match="`runs`"):
        paired_difference(runs.to_dict(), "a", "b", "mIoU_D")
    with pytest.raises(ValueError, match="`key`"):
        paired_difference(runs, "a", "b", "mIoU_D", key="method")
    with pytest.raises(ValueError, match="`seed`"):
        paired_difference(runs, "a", "b", "mIoU_D", seed="rep")
    with pytest.raises(TypeError, match="`higher_is_better`"):
        paired_difference(runs, "a", "b", "mIoU_D", higher_is_better=1)
    with pytest.raises(ValueError, match="`baseline`"):
        paired_differences(runs, "x", "mIoU_D")
    with pytest.raises(ValueError, match="`metrics`"):
        paired_differences(runs, "a", ["mIoU_D", "nope"])
    with pytest.raises(TypeError, match="`d`"):
        format_difference({"n": 2})
    d = paired_difference(runs, "a", "b", "mIoU_D")
    with pytest.raises(ValueError, match="`digits`"):
        format_difference(d, digits=-1)


# --------------------------------------------------------------------------------------------------------- table

def test_paired_differences_table():
    runs = pd.concat([make_runs({"ce": [0.60, 0.61, 0.62], "ls": [0.65, 0.66, 0.68], "kd": [0.61, 0.60, 0.63]},
                                metric="mIoU_D")], ignore_index=True)
    runs["ECE_D"] = [0.05, 0.06, 0.05, 0.03, 0.035, 0.032, 0.05, 0.06, 0.05]
    table = paired_differences(runs, "ce", ["mIoU_D", "ECE_D"])
    assert list(table.columns) == ["a", "b", "metric", "n", "delta", "low", "high", "std", "seeds", "verdict",
                                   "confidence", "higher_is_better"]
    assert list(zip(table["a"], table["metric"])) == [("ls", "mIoU_D"), ("ls", "ECE_D"),
                                                      ("kd", "mIoU_D"), ("kd", "ECE_D")]
    assert (table["b"] == "ce").all()
    assert table.loc[0, "verdict"] == "gain" and table.loc[1, "verdict"] == "gain"  # lower ECE is a gain
    row = table.iloc[2]
    d = paired_difference(runs, "kd", "ce", "mIoU_D")
    assert row["delta"] == d.delta and row["low"] == d.low and row["seeds"] == d.seeds
    table = paired_differences(runs, "ce", "ECE_D", higher_is_better={"ECE_D": True})
    assert table.loc[0, "verdict"] == "loss"


# -------------------------------------------------------------------------------------------------------- format

def test_format_difference():
    d = PairedDifference("a", "b", "mIoU_D", 5, 0.023, 0.008, 0.038, 0.012, (0, 1, 2, 3, 4), "gain")
    assert format_difference(d) == "+2.3 [0.8, 3.8] points (5 seeds): gain"
    d = PairedDifference("a", "b", "mIoU_D", 5, -0.004, -0.019, 0.011, 0.012, (0, 1, 2, 3, 4),
                         "no measurable difference")
    assert format_difference(d, percent=False, digits=3) == "\u22120.004 [\u22120.019, 0.011] (5 seeds): no measurable difference"
    assert format_difference(d) == "\u22120.4 [\u22121.9, 1.1] points (5 seeds): no measurable difference"
    d = PairedDifference("a", "b", "mIoU_D", 3, -0.0001, -0.0004, 0.0002, 0.0001, (0, 1, 2), "no measurable difference")
    assert format_difference(d) == "0.0 [0.0, 0.0] points (3 seeds): no measurable difference"


# ------------------------------------------------------------------------------------------------------ property

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-10, 10), st.floats(-10, 10)), min_size=2, max_size=12),
       st.floats(-100, 100), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_shift_of_a_shifts_delta_and_interval(pairs, c, confidence):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    # values on a dyadic grid so that a + c and the mean are exact in floating point
    a, b, c = np.round(a * 64) / 64, np.round(b * 64) / 64, round(c * 64) / 64
    base = paired_difference(make_runs({"a": a, "b": b}), "a", "b", "mIoU_D", confidence=confidence)
    shifted = paired_difference(make_runs({"a": a + c, "b": b}), "a", "b", "mIoU_D", confidence=confidence)
    assert shifted.delta == pytest.approx(base.delta + c, abs=1e-12)
    assert shifted.low == pytest.approx(base.low + c, abs=1e-12)
    assert shifted.high == pytest.approx(base.high + c, abs=1e-12)
    assert shifted.n == base.n and shifted.std == pytest.approx(base.std, abs=1e-12)
