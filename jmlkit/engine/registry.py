"""The label modes by name: the table that the objectives register into and that the config checks against.

This module imports nothing of jmlkit. :mod:`~jmlkit.engine.config` checks ``labels`` against
:func:`label_modes` and :mod:`~jmlkit.engine.objectives` fills :data:`OBJECTIVES` (with
:func:`~jmlkit.engine.objectives.register_objective`), so both sit above this module and neither imports
the other. Importing :mod:`jmlkit.engine` registers the built-in objectives.

Example:
    >>> import jmlkit.engine
    >>> label_modes()
    ('hard', 'ls', 'kd', 'ssl', 'soft')
    >>> OBJECTIVES["ls"].__name__
    'Smoothing'
    >>> register("", object)
    Traceback (most recent call last):
    ...
    ValueError: Expected `name` to be a non-empty str, but got ''.
"""
from __future__ import annotations

__all__ = ["OBJECTIVES", "register", "label_modes"]

#: Label mode name -> objective class, in registration order.
OBJECTIVES: dict[str, type] = {}


def register(name: str, cls: type, *, base: type | None = None) -> type:
    """Make the class ``cls`` (a subclass of ``base``, when given) the objective of the label mode ``name``.

    A later registration of ``name`` replaces the earlier one. :func:`jmlkit.engine.objectives.register_objective`
    is the decorator that calls this with ``base=Objective``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Expected `name` to be a non-empty str, but got {name!r}.")
    if not (isinstance(cls, type) and (base is None or issubclass(cls, base))):
        raise TypeError(f"Expected {'a class' if base is None else f'an {base.__name__} subclass'}, but got {cls!r}.")
    OBJECTIVES[name] = cls
    return cls


def label_modes() -> tuple[str, ...]:
    """The registered label modes, in registration order."""
    return tuple(OBJECTIVES)
