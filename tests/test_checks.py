"""Tests of jmlkit._checks, the one set of argument checks, and of its use across losses, metrics, targets and data.

The rule: a wrong type is a TypeError, a wrong value a ValueError, and the message names the argument, what was
expected and what was given. Numbers may be python numbers, numpy scalars or 0-d tensors; a bool is never a number.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import jmlkit.losses as L
import jmlkit.metrics as M
import jmlkit.metrics.functional as MF
import jmlkit.targets as TG
from jmlkit._checks import (check_bool, check_callable, check_choice, check_ignore_index, check_int, check_int_list,
                            check_mapping, check_real, check_str, check_type)
from jmlkit.data import DigitScenes, make_loader
from jmlkit.data import transforms as T

names = st.from_regex(r"[a-z][a-z_0-9]{0,11}", fullmatch=True)
ints = st.integers(-(2**62), 2**62)
reals = st.floats(allow_nan=False, allow_infinity=False, width=64)


def as_numpy_int(v):
    return np.int64(v)


def as_tensor_int(v):
    return torch.tensor(v, dtype=torch.int64)


INT_KINDS = {"python": int, "numpy": as_numpy_int, "tensor": as_tensor_int}
REAL_KINDS = {
    "python": float,
    "numpy": np.float64,
    "tensor": lambda v: torch.tensor(v, dtype=torch.float64),
}
BOOLS = [True, False, np.bool_(True), torch.tensor(False)]
NOT_NUMBERS = ["3", b"3", None, [1], (1,), {"a": 1}, object(), torch.ones(2), np.ones(2), torch.ones(1)]


def expect(exc, name, *, given=None):
    """``pytest.raises`` for a message in the house style naming ``name`` (and ``given``, the value's repr)."""
    pattern = rf"^Expected `{re.escape(name)}` .*but got "
    if given is not None:
        pattern += re.escape(given)
    return pytest.raises(exc, match=pattern)


# ------------------------------------------------------------------------------------------ check_int
@pytest.mark.parametrize("kind", INT_KINDS)
@given(name=names, v=ints)
def test_check_int_accepts_python_numpy_and_0d_tensor_ints(kind, name, v):
    out = check_int(name, INT_KINDS[kind](v))
    assert out == v and type(out) is int


@given(v=st.integers(-1000, 1000), low=st.integers(-1000, 1000), span=st.integers(0, 1000))
def test_check_int_bounds_are_closed(v, low, span):
    high = low + span
    if low <= v <= high:
        assert check_int("n", v, low=low, high=high) == v
    else:
        with expect(ValueError, "n", given=str(v)):
            check_int("n", v, low=low, high=high)
    assert check_int("n", low, low=low) == low and check_int("n", high, high=high) == high


@pytest.mark.parametrize("value", BOOLS + [2.0, np.float64(2.0), torch.tensor(2.0), 2.5] + NOT_NUMBERS)
def test_check_int_refuses_bools_floats_and_non_numbers(value):
    with expect(TypeError, "count", given=repr(value)[:20]):
        check_int("count", value, low=0)


def test_check_int_messages_and_optional():
    with pytest.raises(ValueError, match=r"^Expected `n_bins` to be an int >= 1, but got 0\.$"):
        check_int("n_bins", 0, low=1)
    with pytest.raises(ValueError, match=r"^Expected `size` to be an int in \[8, 512\], but got 513\.$"):
        check_int("size", 513, low=8, high=512)
    with pytest.raises(ValueError, match=r"^Expected `k` to be an int <= 1000000, but got 1000001\.$"):
        check_int("k", 1_000_001, high=1_000_000)
    assert check_int("limit", None, optional=True) is None
    with pytest.raises(TypeError, match=r"^Expected `limit` to be an int, but got None \(NoneType\)\.$"):
        check_int("limit", None)
    with pytest.raises(TypeError, match=r"^Expected `limit` to be an int or None, but got 'a' \(str\)\.$"):
        check_int("limit", "a", optional=True)


# ------------------------------------------------------------------------------------------ check_real
@pytest.mark.parametrize("kind", REAL_KINDS)
@given(name=names, v=reals)
def test_check_real_accepts_python_numpy_and_0d_tensor_numbers(kind, name, v):
    out = check_real(name, REAL_KINDS[kind](v))
    assert out == v and type(out) is float


@pytest.mark.parametrize("kind", INT_KINDS)
@given(v=st.integers(-(2**40), 2**40))
def test_check_real_accepts_ints(kind, v):
    out = check_real("x", INT_KINDS[kind](v))
    assert out == float(v) and type(out) is float


@given(v=st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_check_real_keeps_the_value_of_a_float32(v):
    assert check_real("x", np.float32(v)) == float(np.float32(v))
    assert check_real("x", torch.tensor(v, dtype=torch.float32)) == float(np.float32(v))


@pytest.mark.parametrize("value", BOOLS + NOT_NUMBERS + [1 + 2j])
def test_check_real_refuses_bools_and_non_numbers(value):
    with expect(TypeError, "lr", given=repr(value)[:20]):
        check_real("lr", value)


@given(v=reals, low=st.floats(-1e6, 1e6), span=st.floats(0, 1e6), low_open=st.booleans(), high_open=st.booleans())
def test_check_real_bounds_open_and_closed(v, low, span, low_open, high_open):
    high = low + span
    ok_low = v > low if low_open else v >= low
    ok_high = v < high if high_open else v <= high
    if ok_low and ok_high:
        assert check_real("x", v, low=low, high=high, low_open=low_open, high_open=high_open) == v
    else:
        with expect(ValueError, "x", given=repr(v)):
            check_real("x", v, low=low, high=high, low_open=low_open, high_open=high_open)


def test_check_real_edges_messages_and_finiteness():
    assert check_real("p", 0.0, low=0.0, high=1.0) == 0.0 and check_real("p", 1, low=0.0, high=1.0) == 1.0
    with pytest.raises(ValueError, match=r"^Expected `lr` to be a number > 0, but got 0\.0\.$"):
        check_real("lr", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"^Expected `d` to be a number in \[0, 1\), but got 1\.0\.$"):
        check_real("d", 1.0, low=0, high=1, high_open=True)
    with pytest.raises(ValueError, match=r"^Expected `s` to be a number >= 1e-06, but got 0\.0\.$"):
        check_real("s", 0.0, low=1e-6)
    with pytest.raises(ValueError, match=r"^Expected `t` to be a number <= 0\.3333333333333333, but got 0\.5\.$"):
        check_real("t", 0.5, high=1 / 3)
    for bad in (float("nan"), float("inf"), -float("inf"), np.float64("nan"), torch.tensor(float("inf"))):
        with expect(ValueError, "eps"):
            check_real("eps", bad)
    assert check_real("cap", float("inf"), low=0, finite=False) == float("inf")
    with expect(ValueError, "cap"):
        check_real("cap", -float("inf"), low=0, finite=False)
    assert check_real("clip", None, optional=True) is None
    with pytest.raises(TypeError, match=r"^Expected `clip` to be a real number or None, but got '1' \(str\)\.$"):
        check_real("clip", "1", optional=True)


# ------------------------------------------------------------------------------------------ check_choice
@given(name=names, choices=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=5, unique=True),
       data=st.data())
def test_check_choice_returns_the_choice_or_names_them_all(name, choices, data):
    pick = data.draw(st.sampled_from(choices))
    assert check_choice(name, pick, choices) == pick
    assert check_choice(name, np.str_(pick), choices) == pick and type(check_choice(name, np.str_(pick), choices)) is str
    other = data.draw(st.text(max_size=6).filter(lambda s: s not in choices))
    with pytest.raises(ValueError, match=rf"^Expected `{name}` to be one of {re.escape(str(tuple(choices)))}, but got "):
        check_choice(name, other, choices)


def test_check_choice_numbers_bools_and_odd_values():
    for value in (3, np.int64(3), torch.tensor(3)):
        out = check_choice("in_channels", value, (1, 3))
        assert out == 3 and type(out) is int
    for bad in (True, np.bool_(True), torch.tensor(True), 2, "3", None, [3], {3: 1}, np.array([1, 3])):
        with expect(ValueError, "in_channels"):
            check_choice("in_channels", bad, (1, 3))
    assert check_choice("flag", False, (False, "auto")) is False
    with expect(ValueError, "flag"):
        check_choice("flag", 0, (False, "auto"))
    assert check_choice("mode", "poly", iter(["poly", "cosine"])) == "poly"  # any iterable of choices


# ------------------------------------------------------------------------------------------ check_bool
@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False), torch.tensor(True)])
def test_check_bool_accepts_bools(value):
    out = check_bool("amp", value)
    assert type(out) is bool and out == bool(value)


@pytest.mark.parametrize("value", [0, 1, 1.0, "yes", "True", None, np.int64(1), torch.tensor(1), torch.tensor([True])])
def test_check_bool_refuses_the_rest(value):
    with expect(TypeError, "amp", given=repr(value)[:12]):
        check_bool("amp", value)


# ------------------------------------------------------------------------------------------ check_str
@given(name=names, value=st.text(min_size=1))
def test_check_str(name, value):
    assert check_str(name, value) == value
    assert check_str(name, None, optional=True) is None


@pytest.mark.parametrize("value", [3, None, b"x", ["x"], np.int64(1)])
def test_check_str_refuses_non_strings(value):
    with expect(TypeError, "arch", given=repr(value)):
        check_str("arch", value)


def test_check_str_empty():
    with pytest.raises(ValueError, match=r"^Expected `split` to be a non-empty str, but got ''\.$"):
        check_str("split", "")
    assert check_str("split", "", nonempty=False) == ""
    with pytest.raises(TypeError, match=r"^Expected `x` to be a str or None, but got 1 \(int\)\.$"):
        check_str("x", 1, optional=True)


# ------------------------------------------------------------------------------------------ check_ignore_index
@pytest.mark.parametrize("kind", INT_KINDS)
@given(v=ints)
def test_check_ignore_index_accepts_any_int(kind, v):
    out = check_ignore_index(INT_KINDS[kind](v))
    assert out == v and type(out) is int


@pytest.mark.parametrize("value", [1.5, 255.0, np.float64(255), torch.tensor(255.0), True, np.bool_(False), "255",
                                   [255], torch.tensor([255])])
def test_check_ignore_index_refuses_non_ints_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^Expected `ignore_index` to be None or an int, but got "):
        check_ignore_index(value)
    with expect(TypeError, "void_label"):
        check_ignore_index(value, "void_label")


def test_check_ignore_index_none():
    assert check_ignore_index(None) is None


# ------------------------------------------------------------------------------------------ containers and types
def test_check_mapping():
    src = {"a": 1}
    out = check_mapping("kw", src)
    assert out == src and out is not src and type(out) is dict
    assert check_mapping("kw", None, optional=True) is None
    for bad in ([("a", 1)], None, "a=1", 3):
        with expect(TypeError, "kw", given=repr(bad)):
            check_mapping("kw", bad)
    with pytest.raises(TypeError, match=r"^Expected `kw` to have str keys, but got 1\.$"):
        check_mapping("kw", {1: "a"})


@given(values=st.lists(st.integers(0, 100), min_size=1, max_size=8))
def test_check_int_list_accepts_sequences_arrays_and_tensors(values):
    for value in (values, tuple(values), np.array(values), torch.tensor(values)):
        out = check_int_list("seeds", value, low=0)
        assert out == values and all(type(v) is int for v in out)


def test_check_int_list_errors():
    with expect(TypeError, "seeds", given="'012'"):
        check_int_list("seeds", "012")
    with expect(TypeError, "seeds", given="3"):
        check_int_list("seeds", 3)
    with pytest.raises(TypeError, match=r"^Expected `seeds\[1\]` to be an int, but got 1\.5 \(float\)\.$"):
        check_int_list("seeds", [0, 1.5])
    with pytest.raises(TypeError, match=r"^Expected `seeds\[0\]` to be an int, but got True \(bool\)\.$"):
        check_int_list("seeds", [True])
    with pytest.raises(ValueError, match=r"^Expected `seeds\[1\]` to be an int >= 0, but got -1\.$"):
        check_int_list("seeds", [0, -1], low=0)
    with pytest.raises(ValueError, match=r"^Expected `seeds` to be a non-empty list of ints, but got \[\]\.$"):
        check_int_list("seeds", [])
    assert check_int_list("seeds", [], nonempty=False) == []
    with pytest.raises(ValueError, match=r"^Expected `seeds` without repeats, but got \[1, 1\]\.$"):
        check_int_list("seeds", [1, np.int64(1)], unique=True)


def test_check_type_and_check_callable():
    assert check_type("x", 3, int) == 3 and check_type("x", 3, (str, int)) == 3
    with pytest.raises(TypeError, match=r"^Expected `x` to be str or bytes, but got 3 \(int\)\.$"):
        check_type("x", 3, (str, bytes))
    with pytest.raises(TypeError, match=r"^Expected `x` to be a floating torch\.dtype, but got 3 \(int\)\.$"):
        check_type("x", 3, torch.dtype, what="a floating torch.dtype")
    assert check_callable("fn", len) is len and check_callable("fn", None, optional=True) is None
    with pytest.raises(TypeError, match=r"^Expected `fn` to be callable, but got None \(NoneType\)\.$"):
        check_callable("fn", None)


def test_long_values_are_shortened_in_messages():
    with pytest.raises(TypeError, match=r"but got '(x{76})\.\.\. \(str\)\.$"):
        check_int("n", "x" * 500)


# ------------------------------------------------------------------------------------------ across jmlkit
G = torch.Generator().manual_seed(0)
LOGITS = torch.randn(2, 3, 6, 5, generator=G, dtype=torch.float64)
LABELS = torch.randint(0, 3, (2, 6, 5), generator=G)
LABELS[0, 0] = 255
SOFT = torch.softmax(torch.randn(2, 3, 6, 5, generator=G, dtype=torch.float64), 1)
PROBS = torch.softmax(torch.randn(2, 3, 6, 5, generator=G), 1)

# Every number option of the public functions, given as i(int) / r(real) in python, numpy or 0-d tensor form.
# The values are exact in float32, so every form must give bit-identical results.
NUMBER_OPTIONS = {
    "losses.jaccard_metric_loss": lambda i, r: L.jaccard_metric_loss(
        LOGITS, LABELS, ignore_index=i(255), smooth=r(0.5), gamma=r(2.0), threshold=r(0.25), variant=i(2),
        classes=[i(0), i(2)], aggregate={"batch": r(0.5), "class": i(1)}),
    "losses.dice_semimetric_loss": lambda i, r: L.dice_semimetric_loss(LOGITS, SOFT, smooth=i(0), threshold=r(0.75),
                                                                    aggregate={"image": r(1.0)}),
    "losses.tversky_metric_loss": lambda i, r: L.tversky_metric_loss(LOGITS, SOFT, alpha=r(0.25), beta=i(2)),
    "losses.lovasz_softmax_loss": lambda i, r: L.lovasz_softmax_loss(LOGITS, LABELS, ignore_index=i(255),
                                                                  classes=[i(1)]),
    "losses.soft_cross_entropy": lambda i, r: L.soft_cross_entropy(LOGITS, LABELS, ignore_index=i(255)),
    "losses.CompoundLoss": lambda i, r: L.CompoundLoss("dml", ce_weight=r(0.5), region_weight=i(2), ignore_index=i(255),
                                                        smooth=r(0.25))(LOGITS, LABELS),
    "losses.TverskyMetricLoss": lambda i, r: L.TverskyMetricLoss(alpha=r(0.5), beta=r(0.25), gamma=i(3))(LOGITS, SOFT),
    "losses.get_loss": lambda i, r: L.get_loss("ce+jml", ce_weight=r(0.25), region_weight=r(0.75),
                                                ignore_index=i(255), smooth=r(0.5))(LOGITS, LABELS),
    "metrics.segmentation_metrics": lambda i, r: MF.segmentation_metrics(PROBS, LABELS, i(3), ignore_index=i(255)),
    "metrics.calibration_metrics": lambda i, r: MF.calibration_metrics(
        PROBS, LABELS, i(3), n_bins=i(7), fine_bins=i(70), ignore_index=i(255), region="boundary",
        boundary_width=i(1)),
    "metrics.segmentation_scores": lambda i, r: MF.segmentation_scores(
        *MF.segmentation_stats(PROBS, LABELS, 3, ignore_index=255), worst_fraction=r(0.5)),
    "metrics.calibration_by_boundary_distance": lambda i, r: MF.calibration_by_boundary_distance(
        PROBS, LABELS, i(3), max_distance=i(2), n_bins=i(4), ignore_index=i(255)),
    "metrics.boundary_mask": lambda i, r: (MF.boundary_mask(LABELS, i(2)), MF.boundary_distance(LABELS, i(3))),
    "metrics.SegmentationMetrics": lambda i, r: _compute(M.SegmentationMetrics(i(3), ignore_index=i(255))),
    "metrics.CalibrationMetrics": lambda i, r: _compute(M.CalibrationMetrics(
        i(3), n_bins=i(5), fine_bins=i(50), ignore_index=i(255), region="all", boundary_width=i(1))),
    "metrics.TopLabelCalibrationError": lambda i, r: _compute(M.TopLabelCalibrationError(i(3), n_bins=i(6),
                                                                                         ignore_index=i(255))),
    "metrics.BoundaryCalibration": lambda i, r: _compute(M.BoundaryCalibration(i(3), max_distance=i(2), n_bins=i(3),
                                                                               ignore_index=i(255))),
    "targets.one_hot": lambda i, r: TG.one_hot(LABELS, i(3), ignore_index=i(255)),
    "targets.label_smoothing": lambda i, r: TG.label_smoothing(LABELS, i(3), r(0.25), ignore_index=i(255)),
    "targets.boundary_label_smoothing": lambda i, r: TG.boundary_label_smoothing(
        LABELS, i(3), r(0.5), kernel_size=(i(3), i(5)), ignore_index=i(255)),
    "targets.distillation_targets": lambda i, r: TG.distillation_targets(
        LOGITS, temperature=r(2.0), target=LABELS, label_weight=r(0.25), ignore_index=i(255)),
    "targets.pseudo_labels": lambda i, r: TG.pseudo_labels(LOGITS, threshold=r(0.5), temperature=r(0.5)),
    "targets.average_annotators": lambda i, r: TG.average_annotators([LABELS, LABELS.flip(1)], i(3),
                                                                     ignore_index=i(255)),
    "data.DigitScenes": lambda i, r: DigitScenes(
        "val", num_scenes=i(2), size=i(32), digits_per_scene=(i(1), i(2)), digit_size=(i(10), i(16)), seed=i(1),
        noise=r(0.0625), blur=r(0.5), in_channels=i(1))[1],
    "data.transforms": lambda i, r: T.Resize((i(16), i(20)))(DigitScenes("val", num_scenes=2, size=32, digit_size=16)[0]),
    "data.make_loader": lambda i, r: next(iter(make_loader(DigitScenes("val", num_scenes=4, size=32, digit_size=16),
                                                           i(2), shuffle=True, seed=i(7))))["index"],
}


def _compute(metric):
    metric.update(PROBS, LABELS)
    return metric.compute()


def _to_comparable(out):
    if hasattr(out, "to_dict"):  # DataFrame
        return _to_comparable(out.to_dict())
    if isinstance(out, dict):
        return {k: _to_comparable(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [_to_comparable(v) for v in out]
    return out


def _assert_identical(a, b, path="out"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(a.nan_to_num(-7.0), b.nan_to_num(-7.0)) and torch.equal(a.isnan(), b.isnan()), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_identical(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for n, (u, v) in enumerate(zip(a, b)):
            _assert_identical(u, v, f"{path}[{n}]")
    elif isinstance(a, float) and a != a:
        assert isinstance(b, float) and b != b, path
    else:
        assert a == b and type(a) is type(b), f"{path}: {a!r} != {b!r}"


NUMBER_FORMS = {
    "numpy": (np.int64, np.float64),
    "numpy32": (np.int32, np.float32),
    "tensor": (lambda v: torch.tensor(v), lambda v: torch.tensor(v, dtype=torch.float64)),
    "tensor32": (lambda v: torch.tensor(v, dtype=torch.int32), lambda v: torch.tensor(v, dtype=torch.float32)),
}


@pytest.mark.parametrize("form", NUMBER_FORMS)
@pytest.mark.parametrize("call", NUMBER_OPTIONS)
def test_numbers_may_be_numpy_scalars_or_0d_tensors(call, form):
    """Each number option of losses, metrics, targets and data takes numpy scalars and 0-d tensors, with results
    bit-identical to those of python numbers."""
    torch.manual_seed(0)
    plain = _to_comparable(NUMBER_OPTIONS[call](int, float))
    torch.manual_seed(0)
    other = _to_comparable(NUMBER_OPTIONS[call](*NUMBER_FORMS[form]))
    _assert_identical(plain, other)


IGNORE_INDEX_USERS = {
    "losses.jaccard_metric_loss": lambda v: L.jaccard_metric_loss(LOGITS, LABELS, ignore_index=v),
    "losses.dice_semimetric_loss": lambda v: L.dice_semimetric_loss(LOGITS, LABELS, ignore_index=v, validate_args=False),
    "losses.lovasz_softmax_loss": lambda v: L.lovasz_softmax_loss(LOGITS, LABELS, ignore_index=v),
    "losses.soft_cross_entropy": lambda v: L.soft_cross_entropy(LOGITS, LABELS, ignore_index=v),
    "losses.JaccardMetricLoss": lambda v: L.JaccardMetricLoss(ignore_index=v),
    "losses.LovaszSoftmaxLoss": lambda v: L.LovaszSoftmaxLoss(ignore_index=v),
    "losses.CrossEntropyLoss": lambda v: L.CrossEntropyLoss(ignore_index=v),
    "losses.get_loss": lambda v: L.get_loss("ce+sjl", ignore_index=v),
    "metrics.segmentation_metrics": lambda v: MF.segmentation_metrics(PROBS, LABELS, 3, ignore_index=v),
    "metrics.calibration_metrics": lambda v: MF.calibration_metrics(PROBS, LABELS, 3, ignore_index=v),
    "metrics.top_label_calibration_error": lambda v: MF.top_label_calibration_error(PROBS, LABELS, 3, ignore_index=v),
    "metrics.calibration_by_boundary_distance": lambda v: MF.calibration_by_boundary_distance(PROBS, LABELS, 3,
                                                                                             ignore_index=v),
    "metrics.SegmentationMetrics": lambda v: M.SegmentationMetrics(3, ignore_index=v),
    "metrics.CalibrationMetrics": lambda v: M.CalibrationMetrics(3, ignore_index=v),
    "metrics.TopLabelCalibrationError": lambda v: M.TopLabelCalibrationError(3, ignore_index=v),
    "metrics.BoundaryCalibration": lambda v: M.BoundaryCalibration(3, ignore_index=v),
    "targets.one_hot": lambda v: TG.one_hot(LABELS, 3, ignore_index=v),
    "targets.label_smoothing": lambda v: TG.label_smoothing(LABELS, 3, 0.1, ignore_index=v),
    "targets.boundary_label_smoothing": lambda v: TG.boundary_label_smoothing(LABELS, 3, 0.1, ignore_index=v),
    "targets.distillation_targets": lambda v: TG.distillation_targets(LOGITS, target=LABELS, ignore_index=v),
    "targets.average_annotators": lambda v: TG.average_annotators([LABELS], 3, ignore_index=v),
}


@pytest.mark.parametrize("value", [1.5, 255.0, True, "255"])
@pytest.mark.parametrize("call", IGNORE_INDEX_USERS)
def test_a_non_int_ignore_index_is_a_type_error_everywhere(call, value):
    with pytest.raises(TypeError, match=r"^Expected `ignore_index` to be (None or )?an int, but got "):
        IGNORE_INDEX_USERS[call](value)
