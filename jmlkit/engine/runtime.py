"""Where and how a run computes: device choice, threads and determinism, autocast, seeding, progress bars."""
from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["resolve_device", "autocast", "memory_layout", "runtime", "seed_everything", "progress"]


def resolve_device(device: str | torch.device | None = "auto", local_rank: int | None = None) -> torch.device:
    """``"auto"`` (or ``None``): ``cuda`` when present (``cuda:<local_rank>`` under torchrun), else ``cpu``.

    Anything else goes to :class:`torch.device`; asking for a device that is not there (CUDA without CUDA, ``cuda:3``
    on a one-GPU machine) is a ``ValueError``.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank or 0) if local_rank is not None else torch.device("cuda")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"Expected `device` to be 'auto', 'cpu', 'cuda' or 'cuda:N', but got {device!r}.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Expected `device` to be available, but got {str(device)!r} and CUDA is not available.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"Expected `device` to be available, but got {str(device)!r} and there are "
                         f"{torch.cuda.device_count()} CUDA devices.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"Expected `device` to be available, but got {str(device)!r} and MPS is not available.")
    if dev.type == "cuda" and dev.index is None and local_rank is not None:
        dev = torch.device("cuda", local_rank)
    return dev


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 (or float16) autocast on CUDA when ``amp``; nothing on the CPU."""
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def memory_layout(channels_last: bool) -> torch.memory_format:
    """The memory format a run's model is moved to (``TrainConfig.channels_last``): NHWC, or as it is."""
    return torch.channels_last if channels_last else torch.preserve_format


@contextlib.contextmanager
def runtime(num_threads: int | None, deterministic: bool) -> Iterator[None]:
    """Threads and determinism for the run, restored afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def progress(iterable: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    """``tqdm.auto`` over ``iterable`` when ``enabled`` (the notebook kind inside Jupyter)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
