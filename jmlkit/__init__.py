"""jmlkit: Jaccard Metric Losses for hard and soft labels.

Submodules are imported lazily so that ``import jmlkit`` stays cheap:
``jmlkit.losses``, ``jmlkit.targets``, ``jmlkit.metrics``, ``jmlkit.data``,
``jmlkit.models``, ``jmlkit.train``, ``jmlkit.viz``, ``jmlkit.runner``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("losses", "targets", "metrics", "data", "models", "train", "viz", "runner", "utils")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'jmlkit' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]
