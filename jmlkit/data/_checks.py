"""Small argument checks shared by the data modules (errors name the argument)."""
from __future__ import annotations

import numbers
from typing import Any, Sequence

SPLITS = ("train", "val", "test", "unlabeled")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {tuple(choices)}, but got {value!r}.")
    return value


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Expected `{name}` to be an int, but got {type(value).__name__} {value!r}.")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"Expected `{name}` to be an int >= {low}, but got {value}.")
    if high is not None and value > high:
        raise ValueError(f"Expected `{name}` to be an int <= {high}, but got {value}.")
    return value


def check_float(name: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected `{name}` to be a real number, but got {type(value).__name__} {value!r}.")
    value = float(value)
    if low is not None and value < low:
        raise ValueError(f"Expected `{name}` to be >= {low}, but got {value}.")
    if high is not None and value > high:
        raise ValueError(f"Expected `{name}` to be <= {high}, but got {value}.")
    return value


def check_range(name: str, value: Any, *, low: float, integer: bool = False,
                high: float | None = None) -> tuple:
    """Accept ``v`` or ``(lo, hi)`` with ``low <= lo <= hi (<= high)``; return ``(lo, hi)``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"Expected `{name}` to be a number or a pair (low, high), but got {value!r}.")
    lo, hi = value
    check = check_int if integer else check_float
    lo = check(name, lo, low=low, high=high)
    hi = check(name, hi, low=low, high=high)
    if lo > hi:
        raise ValueError(f"Expected `{name}` = (low, high) with low <= high, but got {value!r}.")
    return lo, hi


def check_size(name: str, value: Any) -> tuple[int, int]:
    """Accept ``s`` or ``(h, w)`` positive ints; return ``(h, w)``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value), int(value))
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"Expected `{name}` to be an int or a pair (height, width), but got {value!r}.")
    return check_int(name, value[0], low=1), check_int(name, value[1], low=1)
