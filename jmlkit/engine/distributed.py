"""DistributedDataParallel support: process group, sharded evaluation, reductions.

Under ``torchrun --nproc_per_node=N`` :func:`jmlkit.engine.fit` trains with DDP (gloo on the CPU,
NCCL on GPUs). ``batch_size`` stays the global batch: each rank takes ``batch_size / N`` images of
the same shuffled order a single process would; only rank 0 writes.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Sampler

__all__ = ["DistInfo", "setup_distributed", "teardown_distributed", "all_reduce_mean", "ShardSampler", "unwrap", "wrap_ddp"]


@dataclass
class DistInfo:
    """Rank, world size and local rank of this process (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_pref: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1), or use an existing one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        local = os.environ.get("LOCAL_RANK")
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(local) if local is not None else None, False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():  # pragma: no cover
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this build of torch.")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_pref in ("auto",) or str(device_pref).startswith("cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, True)


def teardown_distributed(info: DistInfo) -> None:
    """Destroy the process group if :func:`setup_distributed` created it."""
    if info.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()


def all_reduce_mean(values: Sequence[float], info: DistInfo, device: torch.device) -> list[float]:
    """The mean of ``values`` over ranks (the values themselves in one process)."""
    if not info.enabled:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / info.world_size).tolist()


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of a data set, in order, without padding (evaluation)."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def wrap_ddp(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``model`` wrapped in DDP (SyncBatchNorm on CUDA) when running distributed; else ``model``."""
    if not info.enabled:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
