"""Training batches sliced from stacked tensors (engine.data.TensorBatches) are the loader's batches, in its order."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import Subset

from jmlkit.engine.data import Cycle, TensorBatches, make_dataset, stacked_tensors, train_batches, train_loader
from jmlkit.engine.distributed import DistInfo


def _info(rank: int = 0, world: int = 1) -> DistInfo:
    return DistInfo(rank=rank, world_size=world, local_rank=rank)


@pytest.fixture(scope="module")
def scenes():
    return make_dataset("digits", "train", num_scenes=37, size=16, digit_size=[12, 16], digits_per_scene=1)


@pytest.mark.parametrize("batch_size", [4, 5, 16, 64])
@pytest.mark.parametrize("world, rank", [(1, 0), (2, 0), (2, 1)])
@pytest.mark.parametrize("wrap", ["none", "limit", "nested"])
def test_tensor_batches_are_the_loaders_batches(scenes, batch_size, world, rank, wrap):
    """Every key, every value, three passes (reshuffled), under Subset wrappers (a limit, a labelled subset of it)."""
    if batch_size % world:
        pytest.skip("the global batch splits evenly across processes")
    data = {"none": scenes, "limit": Subset(scenes, range(30)),
            "nested": Subset(Subset(scenes, range(30)), [29, 3, 17, 8, 0, 11, 25, 4, 19])}[wrap]
    fast = TensorBatches(data, *stacked_tensors(data), batch_size, _info(rank, world), seed=3)
    slow = Cycle(train_loader(data, batch_size, _info(rank, world), num_workers=0, seed=3))
    assert len(fast) == len(slow)
    for _ in range(3 * len(slow) + 1):
        a, b = fast.next(), slow.next()
        assert a.keys() == b.keys()
        for key in b:
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_data_made_item_by_item_keeps_the_loader(scenes):
    class WithTransform(torch.utils.data.Dataset):
        transform = staticmethod(lambda item: item)

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return scenes[i]

        def tensors(self):
            raise AssertionError("a data set with a transform makes its items one by one")

    assert stacked_tensors(WithTransform()) is None
    assert isinstance(train_batches(WithTransform(), 2, _info(), 0, 0), Cycle)
    assert isinstance(train_batches(scenes, 2, _info(), 0, 0), TensorBatches)
    assert isinstance(train_batches(scenes, 2, _info(), 1, 0), Cycle)  # worker processes: the loader


def test_an_uneven_global_batch_is_named(scenes):
    with pytest.raises(ValueError, match="`batch_size`"):
        TensorBatches(scenes, *stacked_tensors(scenes), 5, _info(0, 2), seed=0)
