"""Notebook 04's semi-supervised pieces: the 2 × 2 design of :func:`ssl_configs`, the unlabelled terms missing
(NaN) from the training history before the warm-up, and the method figure of a single labelled fraction.

(The findings of notebook 04 are tested with the other findings, in ``test_experiments_tables.py``.)
"""
from __future__ import annotations

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer

from jmlkit import experiments as ex
from jmlkit import plot
from jmlkit.engine import TrainConfig, fit
from jmlkit.engine.objectives import SemiSupervised

#: Every field that tells the methods of notebook 04 apart.
FACTORS = ("labels", "loss", "ssl_soft", "ssl_threshold", "ssl_weight", "ssl_warmup", "steps_per_epoch",
           "unlabeled_batch_size")


def _differences(a: TrainConfig, b: TrainConfig) -> set[str]:
    return {f for f in TrainConfig.__dataclass_fields__ if getattr(a, f) != getattr(b, f)}


# --------------------------------------------------------------------------------------------- the design
def test_ssl_configs_is_a_2x2_design_at_one_threshold():
    base = TrainConfig.from_profile("smoke")
    configs = ex.ssl_configs(base, threshold=0.8, ssl_weight=0.5, ssl_warmup=0.25, steps_per_epoch=3)
    assert list(configs) == ["labeled_only", "pseudo_hard_ce", "pseudo_soft_ce", "pseudo_hard_jml", "pseudo_soft_jml"]
    lo = configs["labeled_only"]
    assert (lo.labels, lo.loss) == ("hard", "ce")
    pseudo = {k: c for k, c in configs.items() if k != "labeled_only"}
    for name, c in pseudo.items():
        assert c.labels == "ssl" and c.ssl_threshold == 0.8 and c.ssl_weight == 0.5 and c.ssl_warmup == 0.25
        assert c.ssl_soft is ("_soft_" in name) and c.loss == ("ce+jml" if name.endswith("_jml") else "ce")
    # neighbours in the 2 × 2 differ in exactly one factor
    assert _differences(pseudo["pseudo_soft_ce"], pseudo["pseudo_hard_ce"]) == {"ssl_soft"}
    assert _differences(pseudo["pseudo_soft_jml"], pseudo["pseudo_hard_jml"]) == {"ssl_soft"}
    assert _differences(pseudo["pseudo_hard_jml"], pseudo["pseudo_hard_ce"]) == {"loss"}
    assert _differences(pseudo["pseudo_soft_jml"], pseudo["pseudo_soft_ce"]) == {"loss"}
    assert _differences(pseudo["pseudo_soft_jml"], pseudo["pseudo_hard_ce"]) == {"ssl_soft", "loss"}
    # every method the same steps and batches; the thresholds of the paper's comparison are equal
    assert {(c.steps_per_epoch, c.epochs, c.batch_size, c.unlabeled_batch_size) for c in configs.values()} == \
        {(3, base.epochs, base.batch_size, max(1, base.batch_size // 2))}
    assert {c.ssl_threshold for c in ex.ssl_configs(base).values() if c.labels == "ssl"} == {0.9}  # FixMatch's


def test_ssl_configs_checks_the_threshold_and_refuses_the_old_options():
    base = TrainConfig.from_profile("smoke")
    with pytest.raises(ValueError, match=r"`threshold` to be a number in \[0, 1\], but got 1.5"):
        ex.ssl_configs(base, threshold=1.5)
    with pytest.raises(TypeError, match="`threshold` to be a real number"):
        ex.ssl_configs(base, threshold="high")
    with pytest.raises(TypeError, match="hard_threshold"):
        ex.ssl_configs(base, hard_threshold=0.9)


# --------------------------------------------------------------------------------------------- the history
def test_unlabelled_terms_are_missing_before_the_warmup(tmp_path, monkeypatch):
    """3 epochs of 2 steps, warm-up 0.5: epoch 1 (steps 0, 1) is all before it, epoch 2 straddles it (step 2 before,
    3 after), epoch 3 after it. The unlabelled terms are NaN in epoch 1 and the mean of the steps after it."""
    logged: list[dict[str, float]] = []
    call = SemiSupervised.__call__

    def recording(self, net, batch, step):
        loss, terms = call(self, net, batch, step)
        logged.append(dict(terms))
        return loss, terms

    monkeypatch.setattr(SemiSupervised, "__call__", recording)
    cfg = TrainConfig.from_profile("smoke", labels="ssl", labeled_fraction=0.5, loss="ce", epochs=3, steps_per_epoch=2,
                                   ssl_warmup=0.5, ssl_threshold=0.0, num_threads=1, out=str(tmp_path / "run"))
    h = fit(cfg, progress=False).history
    assert len(logged) == 6
    assert h.unsup_loss.isna().tolist() == h.mask_ratio.isna().tolist() == [True, False, False]
    assert h.unsup_loss[1] == pytest.approx(logged[3]["unsup_loss"])  # step 3 alone, not (NaN or 0 + step 3) / 2
    assert h.mask_ratio[1] == pytest.approx(logged[3]["mask_ratio"])
    assert h.unsup_loss[2] == pytest.approx((logged[4]["unsup_loss"] + logged[5]["unsup_loss"]) / 2)
    assert h.sup_loss.tolist() == pytest.approx([(logged[2 * e]["sup_loss"] + logged[2 * e + 1]["sup_loss"]) / 2
                                                 for e in range(3)])  # the labelled loss: every step
    assert np.isfinite(h.train_loss).all()
    saved = pd.read_csv(tmp_path / "run" / "history.csv")
    assert math.isnan(saved.unsup_loss[0]) and np.isfinite(saved.unsup_loss[1:]).all()
    # the training figure leaves the missing epoch out: no point, no line into it
    fig = plot.history_plot({"pseudo_hard_ce": saved}, ["mask_ratio", "unsup_loss", "sup_loss"])
    for ax, missing in zip(fig.axes, (True, True, False)):
        y = np.asarray(ax.lines[0].get_ydata(), dtype=float)
        assert bool(np.isnan(y[0])) is missing and np.isfinite(y[1:]).all()


# --------------------------------------------------------------------------------------------- the figure
def _summary(fractions):
    methods = ["labeled_only", "pseudo_hard_ce", "pseudo_soft_ce", "pseudo_hard_jml", "pseudo_soft_jml"]
    runs = pd.DataFrame([{"method": m, "fraction": f, "seed": s, "mIoU_D": 0.4 + 0.02 * i + 0.01 * s, "ECE_D": 0.05}
                         for i, m in enumerate(methods) for f in fractions for s in (0, 1, 2)])
    return ex.summarize(runs, ["mIoU_D", "ECE_D"], by=["method", "fraction"])


def test_one_labelled_fraction_gives_a_row_per_method_and_several_a_sweep():
    fig = plot.sweep_or_comparison_chart(_summary([0.125]), "fraction", ["mIoU_D", "ECE_D"], logx=True,
                                         title="labelled fraction")
    assert fig.get_suptitle() == "labelled fraction 0.125"
    assert [ax.get_title() for ax in fig.axes] == ["mIoU_D", "ECE_D"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        ex.label(m) for m in ("labeled_only", "pseudo_hard_ce", "pseudo_soft_ce", "pseudo_hard_jml", "pseudo_soft_jml")]
    means = ax.containers[0].lines[0].get_xdata()
    assert list(means) == pytest.approx([41, 43, 45, 47, 49])  # means in %
    whiskers = ax.containers[0].lines[2][0].get_segments()
    assert [seg[1, 0] - seg[0, 0] for seg in whiskers] == pytest.approx([2.0] * 5)  # ± std
    sweep = plot.sweep_or_comparison_chart(_summary([0.0625, 0.25]), "fraction", ["mIoU_D"], logx=True, title="labelled fraction")
    assert sweep.get_suptitle() == "labelled fraction" and sweep.axes[0].get_xscale() == "log"
    assert len(sweep.axes[0].containers) == 5 and not sweep.axes[0].patches  # a line per method
    assert plot.sweep_or_comparison_chart(_summary([0.5]), "fraction", ["mIoU_D"]).get_suptitle() == "fraction = 0.5"
    with pytest.raises(ValueError, match="`x` to be a column"):
        plot.sweep_or_comparison_chart(_summary([0.5]), "epsilon", ["mIoU_D"])
