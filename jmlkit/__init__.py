"""jmlkit: Jaccard Metric Losses for hard and soft labels.

Submodules are imported lazily so that ``import jmlkit`` stays cheap:

* the math: ``jmlkit.losses``, ``jmlkit.targets`` (soft-label builders), ``jmlkit.metrics``;
* training: ``jmlkit.data``, ``jmlkit.models``, ``jmlkit.engine`` (config, objectives, ``fit``),
  ``jmlkit.profiles`` (the one table of smoke/quick/full);
* experiments and figures: ``jmlkit.experiments`` (run cache, recipes, tables), ``jmlkit.plot``,
  ``jmlkit.lessons`` (notebook 01's loss geometry);
* batch runs: ``jmlkit.runner``; independent tasks serially or on Dask: ``jmlkit.parallel``;
* files: ``jmlkit.layout`` (what lies in a run folder), ``jmlkit.io`` (atomic writes).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("losses", "targets", "metrics", "data", "models", "engine", "profiles", "experiments", "plot", "lessons",
               "runner", "parallel", "layout", "io")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'jmlkit' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]
