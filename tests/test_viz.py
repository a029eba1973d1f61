"""jmlkit.viz: every plot builds a labelled Figure from what jmlkit.metrics produces."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from jmlkit import viz  # noqa: E402
from jmlkit.metrics import (  # noqa: E402
    BoundaryCalibration,
    CalibrationMetrics,
    SegmentationMetrics,
    calibration_by_boundary_distance,
)

C = 4


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, C, (2, 1, 4, 4), generator=g).float()
    target = torch.nn.functional.interpolate(target, size=(16, 16)).squeeze(1).long()
    target[0, :2] = 255
    probs = (torch.randn(2, C, 16, 16, generator=g) + 3 * torch.nn.functional.one_hot(target.clamp(max=C - 1), C)
             .permute(0, 3, 1, 2)).softmax(1)
    return torch.rand(2, 3, 16, 16, generator=g), target, probs


def test_reliability_diagram(batch, tmp_path):
    _, target, probs = batch
    m = CalibrationMetrics(C, ignore_index=255)
    m.update(probs, target)
    out = m.compute()
    for data in (out, out["reliability"]):
        fig = viz.reliability_diagram(data, title="t")
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        assert fig.axes[0].get_ylabel() == "accuracy" and fig.axes[1].get_xlabel() == "confidence"
    assert any("ECE" in t.get_text() for t in viz.reliability_diagram(out).axes[0].get_legend().get_texts())
    fig.savefig(tmp_path / "rel.png")
    assert (tmp_path / "rel.png").stat().st_size > 0
    with pytest.raises(TypeError, match="reliability"):
        viz.reliability_diagram([1, 2])


def test_per_class_iou(batch):
    _, target, probs = batch
    m = SegmentationMetrics(C, ignore_index=255)
    m.update(probs, target)
    out = m.compute()
    fig = viz.per_class_iou(out, class_names=list("abcd"), sort=True, title="IoU")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "IoU" and [t.get_text() for t in ax.get_xticklabels()] != []
    assert len(ax.patches) == C
    fig = viz.per_class_iou({"run1": out, "run2": out["IoU_per_class"] * 0.5})
    assert len(fig.axes[0].patches) == 2 * C
    with pytest.raises(ValueError, match="class_names"):
        viz.per_class_iou(out, class_names=["a"])


def test_segmentation_panel(batch):
    image, target, probs = batch
    fig = viz.segmentation_panel(image, target, probs, ignore_index=255, class_names=list("abcd"), title="panel")
    assert len(fig.axes) == 2 * 5 + 1  # + colorbar
    assert [a.get_title() for a in fig.axes[:5]] == ["image", "target", "prediction", "confidence", "error"]
    fig = viz.segmentation_panel(image[0, 0], target[0], probs[0], max_images=1)
    assert len(fig.axes) == 5 + 1
    with pytest.raises(ValueError, match="same B, H, W"):
        viz.segmentation_panel(image, target[:1], probs)


def test_calibration_vs_boundary_distance(batch):
    _, target, probs = batch
    df = calibration_by_boundary_distance(probs, target, C, max_distance=4, ignore_index=255)
    m = BoundaryCalibration(C, max_distance=4, ignore_index=255)
    m.update(probs, target)
    fig = viz.calibration_vs_boundary_distance({"a": df, "b": m.compute()}, title="x")
    ax_e, ax_a = fig.axes
    assert ax_e.get_ylabel() == "ECE" and ax_a.get_ylabel() == "accuracy / confidence"
    assert [t.get_text() for t in ax_e.get_xticklabels()][-1] == ">4"
    with pytest.raises(TypeError):
        viz.calibration_vs_boundary_distance(42)
