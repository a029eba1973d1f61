"""The data of a training run: data sets by name, limits, the labelled subset, and endless loaders."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from jmlkit.engine.config import TrainConfig
from jmlkit.engine.distributed import DistInfo

__all__ = ["make_dataset", "split_dataset", "evaluation_data", "ignore_index_of", "RunData", "run_data", "train_loader",
           "Cycle", "TensorBatches", "train_batches", "stacked_tensors", "take_rows", "base_dataset", "num_classes_of"]


def make_dataset(name: str, split: str, **kwargs: Any) -> Dataset:
    """A data set by name and split, through :func:`jmlkit.data.get_dataset` (``"digits"``,
    ``"brain"``, ``"voc"``, ``"cityscapes"``; ``kwargs`` go to its constructor).

    >>> len(make_dataset("digits", "val", num_scenes=5, size=32, digit_size=12))
    5
    """
    from jmlkit.data import get_dataset

    return get_dataset(name, split, **kwargs)


def base_dataset(data: Any) -> Any:
    """The data set under any :class:`~torch.utils.data.Subset` or loader wrappers."""
    while isinstance(data, (Subset, DataLoader)):
        data = data.dataset
    return data


def num_classes_of(model: Any, data: Any) -> int | None:
    """``num_classes`` of the data set (or its base) or of the model, if any says."""
    from jmlkit.engine.distributed import unwrap

    for obj in (data, getattr(data, "dataset", None), unwrap(model) if model is not None else None):
        k = getattr(obj, "num_classes", None)
        if isinstance(k, int):
            return k
    base = data
    while isinstance(base, Subset) or isinstance(getattr(base, "dataset", None), Dataset):
        base = base.dataset
        k = getattr(base, "num_classes", None)
        if isinstance(k, int):
            return k
    return None


def _limit(data: Dataset, limit: int | None) -> Dataset:
    if limit is None or limit >= len(data):
        return data
    return Subset(data, range(limit))


def split_dataset(config: TrainConfig, split: str, limit: int | None = None) -> Dataset:
    """The ``split`` of ``config``'s data set (``dataset``, ``dataset_kwargs``), its first ``limit`` items."""
    return _limit(make_dataset(config.dataset, split, **config.dataset_kwargs), limit)


def evaluation_data(config: TrainConfig) -> Dataset | None:
    """The split a run of ``config`` is evaluated on: ``eval_split``, its first ``eval_limit`` items (``None``
    without an ``eval_split``). The one builder: :func:`jmlkit.engine.fit` and every later reader use it.

    >>> len(evaluation_data(TrainConfig.from_profile("smoke")))
    8
    """
    return split_dataset(config, config.eval_split, config.eval_limit) if config.eval_split is not None else None


def ignore_index_of(data: Any, config: TrainConfig) -> int | None:
    """The label value that does not count: the data set's ``ignore_index``, else the config's (as training uses it)."""
    return getattr(base_dataset(data), "ignore_index", config.ignore_index)


def _labeled_split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    if fraction >= 1.0:
        return data, None
    n = len(data)
    k = max(1, int(round(fraction * n)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7919)).tolist()
    return Subset(data, sorted(perm[:k])), Subset(data, sorted(perm[k:])) if k < n else None


@dataclass
class RunData:
    """The data sets of a run and what the loop needs to know about them."""

    labeled: Dataset
    unlabeled: Dataset | None
    val: Dataset | None
    eval: Dataset | None
    num_classes: int
    ignore_index: int | None
    in_channels: int


def run_data(config: TrainConfig, *, model: Any = None, objective_cls: Any = None, train_data: Dataset | None = None,
             val_data: Dataset | None = None, eval_data: Dataset | None = None,
             unlabeled_data: Dataset | None = None) -> RunData:
    """Build (or take) the run's data sets: the labelled subset, the unlabelled data an objective
    needs, the validation and evaluation splits; check the items fit the objective."""

    def dataset(split: str | None, given: Dataset | None, limit: int | None) -> Dataset | None:
        if given is not None:
            return given
        if split is None:
            return None
        return split_dataset(config, split, limit)

    train_full = dataset(config.train_split, train_data, config.train_limit)
    val_set = dataset(config.val_split, val_data, config.eval_limit)
    eval_set = eval_data if eval_data is not None else evaluation_data(config)
    labeled, rest = _labeled_split(train_full, config.labeled_fraction, config.seed)
    unlabeled = None
    if objective_cls is not None and objective_cls.needs_unlabeled:
        unlabeled = unlabeled_data
        if unlabeled is None and config.unlabeled_split is not None:
            unlabeled = dataset(config.unlabeled_split, None, config.train_limit)
        if unlabeled is None:
            unlabeled = rest
        if unlabeled is None or len(unlabeled) == 0:
            raise ValueError(
                f"Expected unlabelled data for labels={config.labels!r} (labeled_fraction < 1, `unlabeled_split` or "
                f"`unlabeled_data`), but got none (labeled_fraction={config.labeled_fraction})."
            )
    base = base_dataset(train_full)
    num_classes = num_classes_of(model, train_full)
    if num_classes is None:
        raise ValueError("Expected the training data set to have a `num_classes` attribute, but it has none.")
    ignore_index = ignore_index_of(base, config)
    first = train_full[0]
    if objective_cls is not None and objective_cls.needs_soft and "soft" not in first:
        raise ValueError(f"Expected items with a 'soft' label for labels={config.labels!r}, but data set {type(base).__name__} has none.")
    return RunData(labeled, unlabeled, val_set, eval_set, num_classes, ignore_index, int(first["image"].shape[0]))


def train_loader(data: Dataset, batch_size: int, info: DistInfo, num_workers: int, seed: int) -> DataLoader:
    """A shuffled loader of this rank's share of each global batch (the same order in one or N processes)."""
    from torch.utils.data.distributed import DistributedSampler

    if batch_size % info.world_size:
        raise ValueError(
            f"Expected `batch_size` to be divisible by the number of processes ({info.world_size}), but got {batch_size}."
        )
    per_rank = batch_size // info.world_size
    sampler = DistributedSampler(data, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed, drop_last=False)
    drop_last = len(data) >= batch_size
    return DataLoader(data, batch_size=per_rank, sampler=sampler, drop_last=drop_last, num_workers=num_workers)


class Cycle:
    """Endless iteration over a loader with a DistributedSampler, reshuffled on every pass."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.passes = 0
        self._it: Iterator | None = None

    def __len__(self) -> int:
        """Batches per pass."""
        return len(self.loader)

    def next(self) -> Any:
        while True:
            if self._it is None:
                sampler = self.loader.sampler
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(self.passes)
                self.passes += 1
                self._it = iter(self.loader)
            try:
                return next(self._it)
            except StopIteration:
                self._it = None


def stacked_tensors(data: Dataset) -> tuple[dict[str, torch.Tensor], torch.Tensor | None] | None:
    """The tensors of every item of ``data`` stacked once, for batches sliced without per-item dicts:
    ``(tensors, index)``, where item ``k`` of ``data`` is row ``index[k]`` of each tensor (``index`` is ``None`` when
    the rows are the items). ``None`` when ``data`` (under its :class:`~torch.utils.data.Subset` wrappers) has no
    ``tensors()`` method (the generated data sets have one: digit scenes, brain slices) or has a ``transform``,
    whose items are made one by one.

    >>> from torch.utils.data import Subset
    >>> ds = make_dataset("digits", "val", num_scenes=6, size=16, digit_size=12, digits_per_scene=1)
    >>> tensors, index = stacked_tensors(Subset(Subset(ds, [5, 3, 1, 0]), [2, 0]))
    >>> index.tolist(), tuple(tensors["image"].shape)
    ([1, 5], (6, 3, 16, 16))
    """
    index: torch.Tensor | None = None
    while isinstance(data, Subset):
        outer = torch.as_tensor(list(data.indices), dtype=torch.long)
        index = outer if index is None else outer[index]
        data = data.dataset
    if not callable(getattr(data, "tensors", None)) or getattr(data, "transform", None) is not None:
        return None
    return data.tensors(), index


def take_rows(tensors: dict[str, torch.Tensor], rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch of items ``rows`` of stacked tensors (:func:`stacked_tensors`): what collating those items gives."""
    return {key: value.index_select(0, rows) for key, value in tensors.items()}


class TensorBatches:
    """Endless batches sliced from stacked tensors (:func:`stacked_tensors`), in exactly the order of
    :func:`train_loader` over the same data under :class:`Cycle`: the same
    :class:`~torch.utils.data.distributed.DistributedSampler` (seed, pass number, rank), the same batch size and
    ``drop_last``. A batch is ``{key: rows}`` as the loader's default collation gives it, without building, and
    then stacking, one dict per item: at 16x16 that per-item work costs as much as the network.

    Args:
        data: the data set (its length and order); ``tensors``, ``index``: what :func:`stacked_tensors` returned.
        batch_size, info, seed: as in :func:`train_loader`.
    """

    def __init__(self, data: Dataset, tensors: dict[str, torch.Tensor], index: torch.Tensor | None, batch_size: int,
                 info: DistInfo, seed: int) -> None:
        from torch.utils.data.distributed import DistributedSampler

        if batch_size % info.world_size:
            raise ValueError(f"Expected `batch_size` to be divisible by the number of processes ({info.world_size}), "
                             f"but got {batch_size}.")
        self.tensors, self.index = dict(tensors), index  # its own dict: an objective may add keys (prepare)
        self.per_rank = batch_size // info.world_size
        self.sampler = DistributedSampler(data, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed,
                                          drop_last=False)
        self.drop_last = len(data) >= batch_size
        self.passes = 0
        self._order: list[torch.Tensor] = []

    def __len__(self) -> int:
        """Batches per pass."""
        n = len(self.sampler)
        return n // self.per_rank if self.drop_last else -(-n // self.per_rank)

    def rows(self) -> torch.Tensor:
        """The rows of the stacked tensors that the batches can take (each once, ascending)."""
        if self.index is None:
            return torch.arange(len(next(iter(self.tensors.values()))))
        return torch.unique(self.index)

    def batch_rows(self) -> int:
        """The number of items in every batch (``batch_size`` per process; fewer when the data set is smaller)."""
        return self.per_rank if self.drop_last else len(self.sampler)

    def _new_pass(self) -> None:
        self.sampler.set_epoch(self.passes)
        self.passes += 1
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        if self.index is not None:
            order = self.index[order]
        self._order = list(order.split(self.per_rank))
        if self.drop_last and self._order and len(self._order[-1]) < self.per_rank:
            self._order.pop()
        self._order.reverse()  # popped from the end

    def next(self) -> dict[str, torch.Tensor]:
        while not self._order:
            self._new_pass()
        return take_rows(self.tensors, self._order.pop())


def train_batches(data: Dataset, batch_size: int, info: DistInfo, num_workers: int, seed: int) -> TensorBatches | Cycle:
    """The endless training batches of a run: :class:`TensorBatches` when the data set gives its items stacked and
    no worker processes are asked for, else :class:`Cycle` over :func:`train_loader`; both give the same batches in
    the same order, and ``len()`` is the number of batches per pass."""
    stacked = stacked_tensors(data) if num_workers == 0 else None
    if stacked is not None:
        return TensorBatches(data, *stacked, batch_size, info, seed)
    return Cycle(train_loader(data, batch_size, info, num_workers, seed))
