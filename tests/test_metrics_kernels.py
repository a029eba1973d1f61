"""The class-dimension kernels of the metrics against torch's own reductions, and the evaluation pass's checks."""
from __future__ import annotations

import pytest
import torch

from jmlkit.engine.evaluation import evaluation_pass
from jmlkit.metrics.functional import check_labels, class_argmax
from jmlkit.metrics.functional._common import class_square_sum


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shape", [(3, 2, 5), (4, 11, 6, 7), (1, 5, 0), (2, 3, 4, 4, 2), (2, 300, 9)])
def test_class_argmax_is_torch_argmax_with_ties_and_nan(seed, shape):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 3, shape, generator=g).float()  # many ties: the first maximal class must win
    torch.testing.assert_close(class_argmax(scores), scores.argmax(dim=1), atol=0, rtol=0)
    probs = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), 1)
    torch.testing.assert_close(class_argmax(probs), probs.argmax(dim=1), atol=0, rtol=0)
    if scores.numel():
        scores.view(-1)[1] = float("inf")  # a tie at +inf, then a NaN
        scores.view(-1)[-1] = float("inf")
        torch.testing.assert_close(class_argmax(scores), scores.argmax(dim=1), atol=0, rtol=0)
        scores.view(-1)[0] = float("nan")
        torch.testing.assert_close(class_argmax(scores), scores.argmax(dim=1), atol=0, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_class_square_sum_is_the_sum_of_squares(seed):
    p = torch.rand(4, 7, 50, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    torch.testing.assert_close(class_square_sum(p), (p * p).sum(1), atol=1e-12, rtol=1e-12)


def test_check_labels_names_the_argument_and_the_value():
    check_labels(torch.tensor([[0, 2, 255]]), 3, ignore_index=255)
    with pytest.raises(ValueError, match=r"Expected `target` values in \[0, 2\].*but found 3"):
        check_labels(torch.tensor([[0, 3]]), 3, ignore_index=255)
    with pytest.raises(ValueError, match="integer class indices"):
        check_labels(torch.tensor([[0.0, 1.0]]), 3)


class _Constant(torch.nn.Module):
    def __init__(self, value: float, num_classes: int = 3):
        super().__init__()
        self.value, self.num_classes, self.w = value, num_classes, torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.full((x.shape[0], self.num_classes, *x.shape[2:]), self.value) + self.w


def _items(labels):
    return [{"image": torch.zeros(1, 2, 2), "label": torch.as_tensor(lab)} for lab in labels]


def test_the_evaluation_pass_checks_labels_and_logits_once_per_batch():
    good = [[[0, 1], [2, 255]]]
    ev = evaluation_pass(_Constant(0.0), _items(good), num_classes=3, ignore_index=255)
    assert ev.metrics["n_pixels"] == 3
    with pytest.raises(ValueError, match=r"Expected `target` values in \[0, 2\]"):
        evaluation_pass(_Constant(0.0), _items([[[0, 1], [2, 7]]]), num_classes=3, ignore_index=255)
    with pytest.raises(ValueError, match="finite logits"):
        evaluation_pass(_Constant(float("nan")), _items(good), num_classes=3, ignore_index=255)


@pytest.mark.parametrize("seed", range(4))
def test_calibration_statistics_with_the_callers_argmax_are_the_same(seed):
    """``preds`` (the argmax the evaluation pass shares with the accuracy metrics) gives the statistics that the
    metric's own tie-aware test of correctness gives, ties and ignored pixels included."""
    from jmlkit.metrics.functional import calibration_stats

    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randint(0, 3, (5, 4, 6, 6), generator=g).float(), 1)  # ties at the maximum
    target = torch.randint(0, 4, (5, 6, 6), generator=g)
    target[0, :2] = 255
    own = calibration_stats(probs, target, 4, ignore_index=255)
    shared = calibration_stats(probs, target, 4, ignore_index=255, preds=class_argmax(probs))
    for key in own:
        torch.testing.assert_close(shared[key], own[key], atol=0, rtol=0, msg=key)
    with pytest.raises(ValueError, match="Expected `preds` of shape"):
        calibration_stats(probs, target, 4, ignore_index=255, preds=class_argmax(probs)[:2])


def test_gathered_metric_updates_give_the_per_batch_figures(monkeypatch):
    """The pass gives the standard metrics several batches at once (up to PENDING_ELEMENTS probabilities, one
    spatial shape at a time): the same figures as one update per batch."""
    import jmlkit.engine.evaluation as E
    from jmlkit.data import DigitScenes
    from jmlkit.models import build_model

    torch.manual_seed(0)
    net = build_model("tiny", num_classes=11, in_channels=3)
    data = DigitScenes("test", num_scenes=20, size=16, digit_size=10, digits_per_scene=1)
    gathered = E.evaluation_pass(net, data, batch_size=4).metrics
    monkeypatch.setattr(E, "PENDING_ELEMENTS", 1)  # every batch on its own
    alone = E.evaluation_pass(net, data, batch_size=4).metrics
    assert gathered.keys() == alone.keys()
    for key, value in alone.items():
        if isinstance(value, float):
            assert gathered[key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), key


def test_pending_batches_of_another_shape_are_given_apart():
    import jmlkit.engine.evaluation as E

    seen = []

    class Recorder:
        def update(self, probs, labels, preds=None):
            seen.append(tuple(probs.shape))

    pending = E._PendingBatches([Recorder()])
    for side in (4, 4, 6, 4):
        pending.add(torch.softmax(torch.randn(2, 3, side, side), 1), torch.zeros(2, side, side, dtype=torch.long))
    pending.flush()
    assert seen == [(4, 3, 4, 4), (2, 3, 6, 6), (2, 3, 4, 4)]
