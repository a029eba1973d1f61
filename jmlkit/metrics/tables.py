"""The forms of what ``compute()`` returns, and their two conversions: :func:`as_table` and :func:`to_python`.

Every ``compute()`` of :mod:`jmlkit.metrics` (and every one-shot form of :mod:`jmlkit.metrics.functional`) returns
tensors, as ``torchmetrics`` does:

* a scalar figure is a 0-d ``float64`` tensor (NaN where it is undefined); a count (``n_pixels``, ``n_images``)
  is a 0-d ``int64`` tensor;
* a per-class vector (``IoU_per_class``, ``soft_IoU_per_class``...) is a 1-d tensor, NaN for a class that
  never occurs;
* a table (``reliability``, the per-distance table of :class:`~jmlkit.metrics.BoundaryCalibration`, ``curve``...)
  is a dict ``{column: 1-d tensor}`` of equal-length columns, one row per bin, distance or class; a column of
  names (``class_name`` of :class:`~jmlkit.metrics.ClasswiseCalibration`) is a tuple of ``str``, as a tensor
  holds no text.

:func:`as_table` turns a table into a :class:`pandas.DataFrame`; :func:`to_python` turns any of these (a whole
``compute()`` dict included) into plain Python values: numbers, lists, and tables as dicts of lists, the form
``metrics.json`` and ``evaluations.json`` store.

Example:
    >>> import torch
    >>> table = {"bin": torch.tensor([0, 1]), "accuracy": torch.tensor([0.5, float("nan")], dtype=torch.float64)}
    >>> as_table(table)
       bin  accuracy
    0    0       0.5
    1    1       NaN
    >>> to_python({"ECE_D": torch.tensor(0.25, dtype=torch.float64), "n_pixels": torch.tensor(4), "t": table})
    {'ECE_D': 0.25, 'n_pixels': 4, 't': {'bin': [0, 1], 'accuracy': [0.5, nan]}}
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor

__all__ = ["as_table", "to_python"]


def as_table(table: Any) -> pd.DataFrame:
    """A table as a new :class:`pandas.DataFrame`: the dict of 1-d column tensors that ``compute()`` returns, the
    dict of lists that ``metrics.json`` stores (``None`` for NaN; numeric columns stay numeric), or a DataFrame.

    Raises:
        TypeError: ``table`` is none of these.
        ValueError: its columns are not 1-d or differ in length.

    >>> import torch
    >>> as_table({"distance": torch.tensor([1, 2]), "ECE": [None, 0.5]}).dtypes.astype(str).tolist()
    ['int64', 'float64']
    """
    if isinstance(table, pd.DataFrame):
        return _numeric_columns(table.copy())
    if not isinstance(table, Mapping):
        raise TypeError(f"Expected `table` to be a dict of columns or a DataFrame, but got {type(table).__name__}.")
    columns: dict[str, Any] = {}
    for name, column in table.items():
        if isinstance(column, Tensor):
            if column.ndim != 1:
                raise ValueError(f"Expected the column {name!r} of `table` to be 1-d, but got shape {tuple(column.shape)}.")
            column = column.detach().cpu().numpy()
        elif not isinstance(column, (list, tuple, np.ndarray, pd.Series)):
            raise TypeError(f"Expected the column {name!r} of `table` to be a 1-d tensor or a list, "
                            f"but got {type(column).__name__}.")
        columns[str(name)] = column
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"Expected the columns of `table` to have one length, but got {lengths}.")
    return _numeric_columns(pd.DataFrame(columns))


def _numeric_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each object column of numbers and ``None`` (NaN as stored in JSON) made a float column."""
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                                          for v in values):
            frame[name] = values.astype(float)
    return frame


def to_python(value: Any) -> Any:
    """``value`` (a ``compute()`` result, or any of its parts) as plain Python: a 0-d tensor as a number, a 1-d
    tensor as a list, a table as a dict of lists, a DataFrame as a dict of lists; NaN scalars as ``None``.

    NaN inside lists stay NaN (:func:`jmlkit.io.jsonable` writes them as ``null``).
    """
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        return value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="list")
    if isinstance(value, Mapping):
        return {str(k): to_python(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_python(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value

