"""``channels_last``: the run trains the model in the NHWC memory layout, its numbers match the default layout up to
rounding, its hash is the same, and what it writes loads into a model of the default layout."""
from __future__ import annotations

import math

import pytest
import torch

from jmlkit.engine import TrainConfig, fit, load_checkpoint
from jmlkit.engine.runfolder import config_hash

pytestmark = pytest.mark.xdist_group("engine_layout")


def _config(**changes) -> TrainConfig:
    base = dict(dataset="digits", dataset_kwargs={"num_scenes": 32, "size": 16, "digit_size": [12, 16],
                                                   "digits_per_scene": 1},
                model="tiny", labels="hard", loss="ce+jml", epochs=1, batch_size=8, lr=1e-3, eval_limit=16,
                val_split=None, num_threads=1, device="cpu", seed=2)
    return TrainConfig(**{**base, **changes})


def test_layout_is_not_part_of_the_hash():
    assert config_hash(_config(channels_last=True)) == config_hash(_config(channels_last=False))
    assert TrainConfig().channels_last is True


def test_channels_last_trains_in_nhwc_and_matches_up_to_rounding(tmp_path):
    seen = {}

    def on_epoch(row, model):
        weights = [p for p in model.parameters() if p.dim() == 4]
        seen["nhwc"] = all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
        seen["nchw"] = all(p.is_contiguous() for p in weights)

    nhwc = fit(_config(channels_last=True, out=str(tmp_path / "nhwc")), progress=False, on_epoch=on_epoch)
    assert seen == {"nhwc": True, "nchw": False}
    nchw = fit(_config(channels_last=False), progress=False, on_epoch=on_epoch)
    assert seen == {"nhwc": False, "nchw": True}
    # one epoch of 4 steps from the same start: the same losses but for the order of the sums in a convolution
    assert nhwc.history["train_loss"].tolist() == pytest.approx(nchw.history["train_loss"].tolist(), rel=1e-4)
    assert math.isclose(nhwc.metrics["Acc"], nchw.metrics["Acc"], abs_tol=0.02)

    model = load_checkpoint(tmp_path / "nhwc")
    assert all(p.is_contiguous() for p in model.parameters())  # the default layout, whatever it was trained in
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), nhwc.model.eval()(x), atol=1e-5)
