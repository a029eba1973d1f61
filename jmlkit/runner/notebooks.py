"""Which notebooks run: discovery, names from the command line, requirements, and the commit check.

By default every ``notebooks/NN_*.ipynb`` (names starting with a digit), sorted. A notebook is
named by a path, its file name, its stem, or a unique prefix of its name (``03``).

A notebook that reads what other notebooks wrote declares them in its metadata, by stem::

    "metadata": {"jmlkit": {"requires": ["02_label_smoothing", "03_distillation"]}}

:func:`notebook_requires` reads that list and :func:`with_requirements` adds the required notebooks
(looked up among the given notebooks, else in the requiring notebook's folder) to a selection, each
before the notebooks that need it; an unknown name or a cycle is a ``ValueError``.

A notebook file that cannot be read (not JSON, not a notebook: :func:`notebook_error`) does not stop the
others: it requires nothing, and the runner reports it (``--list``) or fails its run.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmlkit.layout import notebook_number
from jmlkit.runner.params import find_parameters_cell, notebook_parameters, read_notebook

__all__ = ["REQUIRED_PARAMETERS", "REQUIRES_KEY", "check_notebook_clean", "discover_notebooks", "notebook_error",
           "notebook_requires", "resolve_notebooks", "with_requirements"]

#: Parameters every repository notebook must declare.
REQUIRED_PARAMETERS = ("profile", "seed", "output_dir")
#: Where a notebook declares the notebooks it reads: ``metadata["jmlkit"]["requires"]``, a list of stems.
REQUIRES_KEY = ("jmlkit", "requires")


def notebook_error(path: str | os.PathLike) -> str | None:
    """Why the file at ``path`` cannot be read as a notebook, in one line naming it; ``None`` when it can.

    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "03_broken.ipynb"
    >>> _ = bad.write_text('{"cells": [')
    >>> print(notebook_error(bad))  # doctest: +ELLIPSIS
    /.../03_broken.ipynb is not a readable notebook: NotJSONError: Notebook does not appear to be JSON: '{"cells": ['
    """
    why = _read_problem(path)
    return None if why is None else f"{str(path)} is not a readable notebook: {why}"


def _read_problem(path: str | os.PathLike) -> str | None:
    try:
        read_notebook(path)
    except Exception as err:  # OSError, not JSON, not valid nbformat (jsonschema's ValidationError)
        text = " ".join(str(err).split("\n", 1)[0].split())
        return f"{type(err).__name__}: {text}"[:240]
    return None


def check_notebook_clean(path: str | os.PathLike, *, required: Sequence[str] = REQUIRED_PARAMETERS) -> list[str]:
    """Problems that keep a notebook from being committed; ``[]`` when it is clean.

    Checks: no code cell has outputs or an execution count, there is exactly one
    ``parameters`` code cell, it is valid Python and declares ``required``.
    """
    path = Path(path)
    try:
        nb = read_notebook(path)
    except Exception as err:  # unreadable JSON / nbformat
        return [f"{path.name}: cannot be read as a notebook ({type(err).__name__}: {err})"]
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{path.name}: cell {i} has outputs (clear them before committing)")
        if cell.get("execution_count") is not None:
            problems.append(f"{path.name}: cell {i} has execution_count {cell.execution_count}")
    try:
        find_parameters_cell(nb)
        declared = notebook_parameters(nb)
    except ValueError as err:
        return problems + [f"{path.name}: {err}"]
    missing = [p for p in required if p not in declared]
    if missing:
        problems.append(f"{path.name}: the parameters cell does not declare {missing}")
    try:
        notebook_requires(nb, name=path.name)
    except (TypeError, ValueError) as err:
        problems.append(f"{path.name}: {err}")
    return problems


def notebook_requires(nb: Mapping[str, Any] | str | os.PathLike, *, name: str | None = None) -> list[str]:
    """The stems a notebook declares in ``metadata["jmlkit"]["requires"]``; ``[]`` when it declares none.

    ``nb`` is a notebook node or a path; ``name`` names it in error messages (default: the path's file name).
    Raises ``TypeError`` when the entry is not a list of strings, ``ValueError`` for an empty or repeated name.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(metadata={"jmlkit": {"requires": ["02_label_smoothing"]}})
    >>> notebook_requires(nb)
    ['02_label_smoothing']
    >>> notebook_requires(nbformat.v4.new_notebook())
    []
    """
    if isinstance(nb, (str, os.PathLike)):
        name = name or Path(nb).name
        nb = read_notebook(Path(nb))
    where = f"{name}: " if name else ""
    section = nb.get("metadata", {}).get(REQUIRES_KEY[0])
    if section is None:
        return []
    if not isinstance(section, Mapping):
        raise TypeError(f"{where}Expected notebook metadata['jmlkit'] to be a JSON object, "
                        f"but got {type(section).__name__} {section!r}.")
    requires = section.get(REQUIRES_KEY[1], [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise TypeError(f"{where}Expected notebook metadata['jmlkit']['requires'] to be a list of notebook stems "
                        f"(strings), but got {requires!r}.")
    if any(not r.strip() for r in requires) or len(set(requires)) != len(requires):
        raise ValueError(f"{where}Expected notebook metadata['jmlkit']['requires'] to hold distinct, non-empty "
                         f"notebook stems, but got {requires!r}.")
    return list(requires)


def with_requirements(notebooks: Sequence[str | os.PathLike]) -> list[tuple[Path, list[str], bool]]:
    """The notebooks and, transitively, the notebooks they require, each after all of its requirements.

    Returns ``(path, required stems, selected)`` triples; ``selected`` is False for a notebook added only because
    another one requires it. A required stem is looked up among ``notebooks``, else as ``<stem>.ipynb`` in the
    folder of the notebook that requires it. The order is the given one, with each notebook's missing requirements
    inserted just before it.

    A notebook that cannot be read (:func:`notebook_error`) requires nothing.

    Raises:
        ValueError: a required notebook that does not exist, or notebooks that require each other in a cycle
            (both before anything runs).
    """
    paths = [Path(p) for p in notebooks]
    by_stem = {p.stem: p for p in paths}
    selected = {p.resolve() for p in paths}
    order: list[tuple[Path, list[str], bool]] = []
    done: set[str] = set()
    stack: list[str] = []

    def visit(path: Path) -> None:
        stem = path.stem
        if stem in done:
            return
        if stem in stack:
            cycle = " -> ".join([*stack[stack.index(stem):], stem])
            raise ValueError(f"Expected notebooks whose metadata['jmlkit']['requires'] has no cycle, but got the "
                             f"cycle {cycle}.")
        requires = [] if notebook_error(path) is not None else notebook_requires(path)
        stack.append(stem)
        for req in requires:
            target = by_stem.get(req, path.parent / f"{req}.ipynb")
            if not target.is_file():
                raise ValueError(f"Expected each notebook that {path.name} requires (metadata['jmlkit']['requires']) "
                                 f"to exist, but got {req!r}: no notebook {req}.ipynb among the selected ones or in "
                                 f"{str(path.parent)!r}.")
            by_stem.setdefault(req, target)
            visit(target)
        stack.pop()
        done.add(stem)
        order.append((path, requires, path.resolve() in selected))

    for p in paths:
        visit(p)
    return order


def _default_notebooks_dir() -> Path:
    local = Path("notebooks")
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[2] / "notebooks"  # the repository's (jmlkit/runner/ -> repo)


def discover_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The runnable notebooks of a folder: ``*.ipynb`` whose name starts with a digit, sorted."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else _default_notebooks_dir()
    if not folder.is_dir():
        raise ValueError(f"Expected `notebooks_dir` to be a folder, but got {str(folder)!r}.")
    return sorted(p for p in folder.glob("*.ipynb") if p.name[:1].isdigit())


def resolve_notebooks(names: Sequence[str], notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """Notebook paths from command-line names (paths, file names, stems, numbers or unique prefixes): a notebook's
    number (:func:`jmlkit.layout.notebook_number`) names it before a prefix does, so ``02`` is
    ``02_label_smoothing`` and ``02b`` its second part.

    No names means every notebook of :func:`discover_notebooks`.
    """
    folder = Path(notebooks_dir) if notebooks_dir is not None else _default_notebooks_dir()
    if not names:
        found = discover_notebooks(folder)
        if not found:
            raise ValueError(f"Expected notebooks named NN_*.ipynb in {str(folder)!r}, but found none.")
        return found
    candidates = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            paths.append(path)
            continue
        matches = [p for p in candidates if name in (p.name, p.stem)] or [
            p for p in candidates if notebook_number(p) == name] or [p for p in candidates if p.name.startswith(name)]
        if len(matches) != 1:
            what = "no notebook" if not matches else f"{len(matches)} notebooks ({', '.join(p.name for p in matches)})"
            raise ValueError(f"Expected {name!r} to name one notebook (path, name, stem or unique prefix "
                             f"in {str(folder)!r}), but it matches {what}.")
        paths.append(matches[0])
    unique, stems = [], {}
    for p in paths:
        rp = p.resolve()
        if rp in (u.resolve() for u in unique):
            continue
        if p.stem in stems:
            raise ValueError(f"Expected notebooks with distinct names, but got {str(stems[p.stem])!r} and {str(p)!r}.")
        stems[p.stem] = p
        unique.append(p)
    return unique
