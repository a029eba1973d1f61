"""Argument checks shared by every module of jmlkit.

One rule everywhere: a value of the wrong *type* is a :class:`TypeError`, a value of the right
type but outside what is allowed is a :class:`ValueError`, and the message names the argument,
what was expected and what was given::

    Expected `n_bins` to be an int >= 1, but got 0.

Numbers may come as python numbers, numpy scalars or 0-d tensors (a model's ``.item()`` is not
needed); ``bool`` is never taken for a number. Each check returns the value converted to the
plain python type, so a caller can write ``n = check_int("n", n, low=1)``.

Tensor contracts that belong to one module (shapes of logits, label ranges) stay in that module,
built on these.

Example:
    >>> import numpy as np, torch
    >>> check_int("n_bins", np.int64(15), low=1)
    15
    >>> check_real("epsilon", torch.tensor(0.1, dtype=torch.float64), low=0, high=1)
    0.1
    >>> check_int("n_bins", 0, low=1)
    Traceback (most recent call last):
    ...
    ValueError: Expected `n_bins` to be an int >= 1, but got 0.
    >>> check_ignore_index(1.5)
    Traceback (most recent call last):
    ...
    TypeError: Expected `ignore_index` to be None or an int, but got 1.5 (float).
"""
from __future__ import annotations

import argparse
import inspect
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

__all__ = [
    "check_int",
    "check_real",
    "check_choice",
    "check_bool",
    "check_str",
    "check_ignore_index",
    "check_mapping",
    "check_int_list",
    "check_type",
    "check_callable",
]


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _unwrap_scalar(value: Any) -> Any:
    """A 0-d tensor or numpy scalar/0-d array as the python scalar; anything else unchanged."""
    if hasattr(value, "ndim") and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError, RuntimeError):
            return value
    return value


def _number_text(value: float) -> str:
    """A bound as written: ``3``, ``0.5``, ``1e-06``; ``:g`` alone would print ``1e+06`` for an int and round
    ``1/3`` to six digits."""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _bounds_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_number_text(low)}, {_number_text(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_number_text(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_number_text(high)}"
    return ""


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None, optional: bool = False) -> int | None:
    """``value`` as an ``int`` within ``[low, high]`` (either side may be open-ended).

    ``optional=True`` lets ``None`` through. Floats are refused even when whole (``2.0``): a count
    given as a float is a mistake worth hearing about.

    >>> check_int("epochs", 3, low=1), check_int("limit", None, optional=True)
    (3, None)
    >>> check_int("epochs", 2.0)
    Traceback (most recent call last):
    ...
    TypeError: Expected `epochs` to be an int, but got 2.0 (float).
    """
    if value is None and optional:
        return None
    raw = value
    value = _unwrap_scalar(value)
    kind = "an int" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Expected `{name}` to be {kind}, but got {_describe(raw)}.")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"Expected `{name}` to be an int {_bounds_text(low, high, False, False)}, but got {value!r}.")
    return value


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False,
               high_open: bool = False, optional: bool = False, finite: bool = True) -> float | None:
    """``value`` as a finite ``float`` within the bounds (``low_open``/``high_open`` exclude the ends).

    >>> check_real("lr", 1e-3, low=0, low_open=True)
    0.001
    >>> check_real("lr", 0, low=0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: Expected `lr` to be a number > 0, but got 0.0.
    >>> check_real("lr", "0.1")
    Traceback (most recent call last):
    ...
    TypeError: Expected `lr` to be a real number, but got '0.1' (str).
    """
    if value is None and optional:
        return None
    raw = value
    value = _unwrap_scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "a real number" + (" or None" if optional else "")
        raise TypeError(f"Expected `{name}` to be {kind}, but got {_describe(raw)}.")
    value = float(value)
    bounds = _bounds_text(low, high, low_open, high_open)
    if finite and not math.isfinite(value):
        raise ValueError(f"Expected `{name}` to be a finite number{' ' + bounds if bounds else ''}, but got {value!r}.")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"Expected `{name}` to be a number {bounds}, but got {value!r}.")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """The entry of ``choices`` equal to ``value`` (a :class:`ValueError` listing them otherwise).

    The entry itself is returned, so a numpy string or a 0-d tensor comes back as the plain python value.
    ``bool`` never matches an int (``True`` is not the choice ``1``) nor an int a ``bool``.

    >>> import numpy as np
    >>> check_choice("schedule", "poly", ("poly", "cosine"))
    'poly'
    >>> check_choice("in_channels", np.int64(3), (1, 3)), type(check_choice("in_channels", np.int64(3), (1, 3)))
    (3, <class 'int'>)
    >>> check_choice("schedule", "step", ("poly", "cosine"))
    Traceback (most recent call last):
    ...
    ValueError: Expected `schedule` to be one of ('poly', 'cosine'), but got 'step'.
    >>> check_choice("in_channels", True, (1, 3))
    Traceback (most recent call last):
    ...
    ValueError: Expected `in_channels` to be one of (1, 3), but got True.
    """
    choices = tuple(choices)
    plain = _unwrap_scalar(value)
    for choice in choices:
        if isinstance(choice, bool) != isinstance(plain, bool):
            continue
        try:
            equal = choice == plain
        except Exception:  # odd comparisons
            continue
        if equal is True:  # not an array of element-wise results
            return choice
    raise ValueError(f"Expected `{name}` to be one of {choices}, but got {value!r}.")


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (python, numpy or 0-d tensor booleans; not ``0``/``1``).

    >>> check_bool("amp", 1)
    Traceback (most recent call last):
    ...
    TypeError: Expected `amp` to be a bool, but got 1 (int).
    """
    raw = value
    value = _unwrap_scalar(value)
    if not isinstance(value, bool) and type(value).__name__ not in ("bool_", "bool"):
        raise TypeError(f"Expected `{name}` to be a bool, but got {_describe(raw)}.")
    return bool(value)


def check_str(name: str, value: Any, *, optional: bool = False, nonempty: bool = True) -> str | None:
    """``value`` if it is a (non-empty) ``str``; ``optional=True`` lets ``None`` through."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        kind = "a str" + (" or None" if optional else "")
        raise TypeError(f"Expected `{name}` to be {kind}, but got {_describe(value)}.")
    if nonempty and not value:
        raise ValueError(f"Expected `{name}` to be a non-empty str, but got ''.")
    return value


def check_ignore_index(value: Any, name: str = "ignore_index") -> int | None:
    """``None`` or an ``int`` label value; any other type is a :class:`TypeError`, everywhere in jmlkit."""
    if value is None:
        return None
    raw = value
    value = _unwrap_scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Expected `{name}` to be None or an int, but got {_describe(raw)}.")
    return int(value)


def check_mapping(name: str, value: Any, *, optional: bool = False) -> dict[str, Any] | None:
    """``value`` as a plain ``dict`` if it is a mapping with string keys."""
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"Expected `{name}` to be a dict, but got {_describe(value)}.")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise TypeError(f"Expected `{name}` to have str keys, but got {bad[0]!r}.")
    return dict(value)


def check_int_list(name: str, value: Any, *, low: int | None = None, unique: bool = False, nonempty: bool = True) -> list[int]:
    """``value`` (an iterable of ints, not a string) as a list of ``int`` each ``>= low``.

    >>> check_int_list("seeds", (0, 1), low=0)
    [0, 1]
    >>> check_int_list("seeds", [0, 0], unique=True)
    Traceback (most recent call last):
    ...
    ValueError: Expected `seeds` without repeats, but got [0, 0].
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"Expected `{name}` to be a list of ints, but got {_describe(value)}.")
    items = list(value)
    if nonempty and not items:
        raise ValueError(f"Expected `{name}` to be a non-empty list of ints, but got [].")
    out = [check_int(f"{name}[{i}]", v, low=low) for i, v in enumerate(items)]
    if unique and len(set(out)) != len(out):
        raise ValueError(f"Expected `{name}` without repeats, but got {out!r}.")
    return out


def check_type(name: str, value: Any, types: type | Sequence[type], *, what: str | None = None) -> Any:
    """``value`` if it is an instance of ``types``; ``what`` words the expectation (default: the type names)."""
    types = tuple(types) if isinstance(types, Sequence) else (types,)
    if not isinstance(value, types):
        expected = what or " or ".join(t.__name__ for t in types)
        raise TypeError(f"Expected `{name}` to be {expected}, but got {_describe(value)}.")
    return value


def check_callable(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` if it is callable; ``optional=True`` lets ``None`` through.

    >>> check_callable("transform", None, optional=True) is None
    True
    >>> check_callable("transform", 3, optional=True)
    Traceback (most recent call last):
    ...
    TypeError: Expected `transform` to be callable or None, but got 3 (int).
    """
    if value is None and optional:
        return None
    if not callable(value):
        raise TypeError(f"Expected `{name}` to be callable{' or None' if optional else ''}, but got {_describe(value)}.")
    return value


def keyword_options(owner: str, func: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every keyword-only option of ``func`` with its value in ``options`` or its default; an option ``func`` does
    not take is a ``TypeError`` naming ``owner`` and the options it takes (a check that builds nothing).

    >>> def build(*, size=16, seed=0): ...
    >>> keyword_options("Scenes", build, {"size": 8})
    {'seed': 0, 'size': 8}
    >>> keyword_options("Scenes", build, {"sizes": 8})
    Traceback (most recent call last):
    ...
    TypeError: Expected options of Scenes among ['seed', 'size'], but got unknown ['sizes'].
    """
    params = inspect.signature(func).parameters
    known = sorted(k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"Expected options of {owner} among {known}, but got unknown {unknown}.")
    return {k: options.get(k, params[k].default) for k in known}


class OneLineParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line on stderr (``prog: error: ...``,
    exit code 2), without argparse's usage block: the form of every usage error of ``python -m jmlkit``.

    >>> import contextlib, io
    >>> parser = OneLineParser(prog="demo")
    >>> _ = parser.add_argument("--jobs", type=int)
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         parser.parse_args(["--jobs", "x"])
    ...     except SystemExit as exc:
    ...         print(exc.code)
    2
    >>> err.getvalue()
    "demo: error: argument --jobs: invalid int value: 'x'\\n"
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())}\n")
