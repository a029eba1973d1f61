"""A short run learns DigitScenes (32x32 grey scenes of 16-px digits): mIoU_D well above the all-background baseline."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from torch import nn

from jmlkit.engine import TrainConfig, evaluate, fit, make_dataset

SCENES = {"size": 32, "digit_size": 16, "digits_per_scene": [1, 2], "in_channels": 1, "blur": 0.0, "noise": 0.02}


class _AllBackground(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 11, *x.shape[2:])
        logits[:, 0] = 10.0
        return logits


@pytest.mark.slow
def test_short_digit_run_is_well_above_chance():
    cfg = TrainConfig(dataset="digits", dataset_kwargs=SCENES, model="small", labels="hard", loss="ce+jml", epochs=4,
                      val_split=None, eval_limit=128, num_threads=1)
    result = fit(cfg, progress=False)
    test = torch.utils.data.Subset(make_dataset("digits", "test", **cfg.dataset_kwargs), range(128))
    chance = evaluate(_AllBackground(), test, num_classes=11)["mIoU_D"]
    assert chance < 0.1
    assert result.metrics["mIoU_D"] > max(2.5 * chance, 0.22), (result.metrics["mIoU_D"], chance)
    assert result.history.train_loss.iloc[-1] < 0.75 * result.history.train_loss.iloc[0]
