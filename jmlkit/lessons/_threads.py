"""Small tensor work on one torch thread (every lesson's computations are a few scenes or points)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["one_thread"]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread, then restore the number of threads.

    The tensors of the lessons are small: on a 2-core machine shared with other work, two threads wait for each
    other longer than they compute (measured: :func:`jmlkit.lessons.temperature_sweep` of three 64x64 scenes took
    0.3 s on one thread and 2 to 5 s on two).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
