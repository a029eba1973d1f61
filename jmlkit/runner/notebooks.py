"""Which notebooks run: discovery, names from the command line, and the commit check.

By default every ``notebooks/NN_*.ipynb`` (names starting with a digit), sorted. A notebook is
named by a path, its file name, its stem, or a unique prefix of its name (``03``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from jmlkit.runner.params import find_parameters_cell, notebook_parameters, read_notebook

__all__ = ["REQUIRED_PARAMETERS", "check_notebook_clean", "discover_notebooks", "resolve_notebooks"]

#: Parameters every repository notebook must declare.
REQUIRED_PARAMETERS = ("profile", "seed", "output_dir")


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
    return problems


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
    """Notebook paths from command-line names (paths, file names, stems or unique prefixes).

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
            p for p in candidates if p.name.startswith(name)]
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
