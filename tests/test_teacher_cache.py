"""Distillation computes the frozen teacher's logits of the training items once (Distillation.prepare) when the
batches are sliced from stacked tensors, and the run is the same, bit for bit, as with a teacher forward per step."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import Subset

import jmlkit.engine.objectives as O
from jmlkit.engine import TrainConfig, fit
from jmlkit.engine.data import Cycle, TensorBatches, make_dataset, stacked_tensors, train_loader
from jmlkit.engine.distributed import DistInfo
from jmlkit.models import build_model

pytestmark = pytest.mark.xdist_group("teacher_cache")


class Counting(torch.nn.Module):
    """A teacher that counts the images it sees."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.seen = net, 0

    def forward(self, x):
        self.seen += len(x)
        return self.net(x)


def _teacher() -> Counting:
    torch.manual_seed(5)
    return Counting(build_model("tiny", num_classes=11, in_channels=3)).eval()


def _config(**changes) -> TrainConfig:
    # 37 scenes in batches of 8: the cache's last chunk is padded to the training's batch size
    base = dict(dataset="digits", dataset_kwargs={"num_scenes": 37, "size": 16, "digit_size": [12, 16],
                                                   "digits_per_scene": 1},
                model="tiny", labels="kd", kd_temperature=2.0, loss="ce+jml", epochs=2, batch_size=8, lr=3e-3,
                eval_limit=16, val_split=None, num_threads=1, device="cpu", seed=1)
    return TrainConfig(**{**base, **changes})


@pytest.mark.parametrize("changes", [{}, {"kd_form": "mixed", "loss": "jml"}, {"train_limit": 20}],
                         ids=["terms", "mixed", "subset"])
def test_cached_teacher_gives_the_same_run(monkeypatch, changes):
    config = _config(**changes)
    cached_teacher = _teacher()
    cached = fit(config, teacher=cached_teacher, progress=False)
    monkeypatch.setattr(O, "TEACHER_CACHE_BYTES", 0)  # too little memory: a teacher forward per step
    stepped_teacher = _teacher()
    stepped = fit(config, teacher=stepped_teacher, progress=False)

    assert cached.history["train_loss"].tolist() == stepped.history["train_loss"].tolist()
    assert cached.metrics["mIoU_D"] == stepped.metrics["mIoU_D"]
    steps = int(cached.history["step"].iloc[-1])
    assert stepped_teacher.seen == steps * config.batch_size
    # once per item the run can draw (padded to whole batches), never per step
    items = config.train_limit or 37
    assert cached_teacher.seen == -(-items // config.batch_size) * config.batch_size


def test_prepare_adds_only_to_the_runs_own_batches():
    scenes = make_dataset("digits", "train", num_scenes=12, size=16, digit_size=[12, 16], digits_per_scene=1)
    data = Subset(scenes, [7, 2, 9, 4, 11])
    info = DistInfo(rank=0, world_size=1, local_rank=0)
    tensors, index = stacked_tensors(data)
    batches = TensorBatches(data, tensors, index, 2, info, seed=0)
    teacher = _teacher()
    ctx = O.ObjectiveContext(_config(), torch.nn.Identity(), 11, 255, torch.device("cpu"), teacher=teacher)
    O.build_objective(ctx).prepare(batches)

    assert O.TEACHER_LOGITS not in tensors  # the stacked tensors given to TensorBatches are left as they were
    assert teacher.seen == 6  # five items, in batches of two: the last one padded
    with torch.no_grad():
        expected = teacher.net(scenes.tensors()["image"][[7, 2]])
    logits = batches.tensors[O.TEACHER_LOGITS]
    assert torch.equal(logits[[7, 2]], expected)
    # and the batches carry their rows of them, with every key the loader gives
    loader = Cycle(train_loader(data, 2, info, num_workers=0, seed=0))
    for _ in range(4):
        fast, slow = batches.next(), loader.next()
        assert set(fast) == set(slow) | {O.TEACHER_LOGITS}
        assert torch.equal(fast[O.TEACHER_LOGITS], logits[fast["index"]])


def test_no_cache_for_a_loader():
    scenes = make_dataset("digits", "train", num_scenes=6, size=16, digit_size=[12, 16], digits_per_scene=1)
    loader = Cycle(train_loader(scenes, 2, DistInfo(rank=0, world_size=1, local_rank=0), num_workers=0, seed=0))
    teacher = _teacher()
    ctx = O.ObjectiveContext(_config(), torch.nn.Identity(), 11, 255, torch.device("cpu"), teacher=teacher)
    O.build_objective(ctx).prepare(loader)
    assert teacher.seen == 0
