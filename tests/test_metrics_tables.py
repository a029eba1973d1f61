"""The forms of compute() (tensors only: 0-d float64 figures, 0-d int64 counts, 1-d vectors, tables as dicts of 1-d
column tensors) and their two conversions, jmlkit.metrics.as_table and jmlkit.metrics.to_python."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from jmlkit.io import jsonable
from jmlkit.metrics import (BoundaryCalibration, CalibrationMetrics, ClasswiseCalibration, SegmentationMetrics,
                            SoftLabelStats, TopLabelCalibrationError, as_table, calibration_by_boundary_distance,
                            calibration_metrics, segmentation_metrics, soft_label_metrics, to_python,
                            top_label_calibration_error)

C, IGN = 3, 255
COUNTS = {"n_pixels", "n_images"}


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(2, C, 7, 6, generator=g), 1)
    target = torch.randint(0, C, (2, 7, 6), generator=g)
    target[0, 0, :3] = IGN
    return probs, target


def _soft(probs, target):
    return torch.softmax(torch.randn(probs.shape, generator=torch.Generator().manual_seed(1)), 1), target != IGN


STREAMING = {
    "segmentation": (lambda: SegmentationMetrics(C, ignore_index=IGN), False),
    "segmentation_no_per_image": (lambda: SegmentationMetrics(C, ignore_index=IGN, per_image=False), False),
    "calibration": (lambda: CalibrationMetrics(C, ignore_index=IGN, n_bins=5), False),
    "calibration_not_classwise": (lambda: CalibrationMetrics(C, ignore_index=IGN, classwise=False), False),
    "top_label": (lambda: TopLabelCalibrationError(C, ignore_index=IGN), False),
    "boundary": (lambda: BoundaryCalibration(C, ignore_index=IGN, max_distance=2), False),
    "classwise": (lambda: ClasswiseCalibration(C, ignore_index=IGN, class_names=["a", "b", "c"]), False),
    "soft": (lambda: SoftLabelStats(C), True),
}


def _check_forms(value, where: str) -> None:
    """Every part of a compute() result has one of the documented forms."""
    if isinstance(value, torch.Tensor):
        assert value.ndim == 0 and value.dtype == torch.float64, where
        return
    assert isinstance(value, dict), where
    tables = {k: v for k, v in value.items() if isinstance(v, dict)}
    is_table = not tables and all(isinstance(v, tuple) or (isinstance(v, torch.Tensor) and v.ndim == 1)
                                  for v in value.values())
    if is_table and not any(isinstance(v, torch.Tensor) and v.ndim == 0 for v in value.values()):
        assert len({len(v) for v in value.values()}) == 1, where  # equal-length columns
        assert all(isinstance(x, str) for v in value.values() if isinstance(v, tuple) for x in v), where
        return
    for key, v in value.items():
        if isinstance(v, dict):
            _check_forms(v, f"{where}.{key}")
        elif key in COUNTS:
            assert isinstance(v, torch.Tensor) and v.ndim == 0 and v.dtype == torch.int64, (where, key)
        else:
            assert isinstance(v, torch.Tensor) and v.ndim in (0, 1), (where, key)
            assert v.dtype == torch.float64 if v.ndim == 0 else v.is_floating_point(), (where, key, v.dtype)


@pytest.mark.parametrize("name", list(STREAMING))
@pytest.mark.parametrize("empty", [False, True], ids=["data", "no_valid_pixel"])
def test_every_compute_returns_tensors_only(name, empty):
    make, soft = STREAMING[name]
    m = make()
    probs, target = _data()
    if empty:
        target = torch.full_like(target, IGN)
    with pytest.warns(UserWarning) if empty and name.startswith(("segmentation", "calibration")) else _no_warning():
        if soft:
            y, mask = _soft(probs, target)
            m.update(probs, y, mask)
        else:
            m.update(probs, target)
        out = m.compute()
    _check_forms(out, name)
    plain = to_python(out)  # plain python, and the same JSON as the tensors give
    assert json.dumps(jsonable(plain), sort_keys=True) == json.dumps(jsonable(out), sort_keys=True)
    assert not _has_tensor(plain)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _has_tensor(value) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_tensor(v) for v in value)
    return False


def test_functional_forms_equal_the_streaming_ones():
    probs, target = _data(2)
    seg, cal = SegmentationMetrics(C, ignore_index=IGN), CalibrationMetrics(C, ignore_index=IGN)
    seg.update(probs, target)
    cal.update(probs, target)
    one_seg = segmentation_metrics(probs, target, C, ignore_index=IGN)
    assert to_python(one_seg) == to_python(seg.compute())
    _check_forms(one_seg, "segmentation_metrics")
    one_cal = calibration_metrics(probs, target.masked_fill(target == IGN, 0), C)
    _check_forms(one_cal, "calibration_metrics")
    ece = top_label_calibration_error(probs, target, C, ignore_index=IGN)
    assert ece.ndim == 0 and ece.dtype == torch.float64
    assert ece.item() == pytest.approx(cal.compute()["ECE_D"].item(), abs=1e-12)
    table = calibration_by_boundary_distance(probs, target, C, max_distance=2, ignore_index=IGN)
    _check_forms(table, "calibration_by_boundary_distance")
    _check_forms(soft_label_metrics(probs, *_soft(probs, target)), "soft_label_metrics")


def test_as_table_and_to_python_of_a_reliability_table():
    probs, target = _data(3)
    out = calibration_metrics(probs, target, C, n_bins=4, ignore_index=IGN)
    table = out["reliability"]
    frame = as_table(table)
    assert list(frame.columns) == list(table) and len(frame) == 4
    assert frame.dtypes.astype(str).tolist() == ["int64", "float64", "float64", "int64"] + ["float64"] * 4
    # a reference: the counts are the histogram of the top-label confidences of the valid pixels
    conf = probs.max(1).values[target != IGN].numpy()
    np.testing.assert_array_equal(frame["count"], np.bincount(np.clip((conf * 4).astype(int), 0, 3), minlength=4))
    assert (frame["fraction"] * frame["gap"].abs()).sum() == pytest.approx(out["ECE_D"].item(), abs=1e-12)
    stored = to_python(table)  # the dict of lists of metrics.json; NaN (empty bins) stay NaN, None once in JSON
    assert all(isinstance(v, list) for v in stored.values())
    pd.testing.assert_frame_equal(as_table(stored), frame)
    pd.testing.assert_frame_equal(as_table(json.loads(json.dumps(jsonable(stored)))), frame)
    pd.testing.assert_frame_equal(as_table(frame), frame)
    assert as_table(frame) is not frame


def test_classwise_table_keeps_its_class_names():
    probs, target = _data(4)
    m = ClasswiseCalibration(C, ignore_index=IGN, class_names=["bg", "x", "y"])
    m.update(probs, target)
    out = m.compute()
    assert out["class_name"] == ("bg", "x", "y")
    frame = as_table(out)
    assert frame["class_name"].tolist() == ["bg", "x", "y"] and frame["class"].tolist() == [0, 1, 2]
    assert frame["frequency"].sum() == pytest.approx(1.0)
    assert to_python(out)["class_name"] == ["bg", "x", "y"]


@pytest.mark.parametrize("value, expected", [
    (torch.tensor(0.25, dtype=torch.float64), 0.25),
    (torch.tensor(7), 7),
    (torch.tensor([0.5]), [0.5]),  # a 1-d vector stays a list, even of one entry
    (torch.tensor([1, 2]), [1, 2]),
    (float("nan"), None),
    ({"a": (torch.tensor(1.0), "x")}, {"a": [1.0, "x"]}),
    (np.float32(0.5), 0.5),
    (pd.DataFrame({"a": [1, 2]}), {"a": [1, 2]}),
])
def test_to_python(value, expected):
    got = to_python(value)
    assert got == expected and type(got) is type(expected)


def test_to_python_keeps_nan_inside_lists():
    got = to_python(torch.tensor([1.0, float("nan")]))
    assert got[0] == 1.0 and math.isnan(got[1])


@pytest.mark.parametrize("table, error, message", [
    ([1, 2], TypeError, "Expected `table` to be a dict of columns or a DataFrame, but got list"),
    ({"a": torch.zeros(2, 2)}, ValueError, r"column 'a' of `table` to be 1-d, but got shape \(2, 2\)"),
    ({"a": torch.zeros(2), "b": torch.zeros(3)}, ValueError, "one length, but got {'a': 2, 'b': 3}"),
    ({"a": 1.0}, TypeError, "column 'a' of `table` to be a 1-d tensor or a list, but got float"),
])
def test_as_table_errors(table, error, message):
    with pytest.raises(error, match=message):
        as_table(table)
