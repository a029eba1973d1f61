"""Student copies of the notebooks: ``python -m jmlkit student OUT [--notebooks-dir notebooks]``.

Each notebook of the folder (every ``*.ipynb``, sorted) is copied to ``OUT/<name>.ipynb`` with

* the cells tagged ``solution`` removed (nbconvert's ``TagRemovePreprocessor`` with
  ``remove_cell_tags={"solution"}``): the exercise prompts, untagged markdown cells, stay (the notebooks tag
  their "Solutions" headings too, so no heading is left over an empty section);
* outputs and execution counts cleared (``ClearOutputPreprocessor``);
* the outputs written inside the student folder: the ``output_dir`` default of the parameters cell,
  ``../runs/interactive/<notebook>``, becomes ``outputs/<notebook>``, and links to the repository's ``docs/``
  become links to ``OUT/docs/``, where the pages the notebooks link or name (``docs/paper.md``) are copied;
* every other cell, its tags (``parameters`` included) and its id kept, in order.

``OUT/README.md`` tells a student how to start (the set-up command, opening JupyterLab in the folder, the order of
the notebooks) and where the outputs go.

The teacher's notebooks are read, never written: ``OUT`` may not be the notebooks folder, and the
batch runner (``jmlkit run``) keeps executing the full notebooks with their solutions. Copies are
written atomically and checked with ``nbformat.validate``. A file already in ``OUT`` under a copy's name
that differs from the copy (a student's edited copy, a link, anything else) is never replaced unless
asked (``force=True``, ``--force``): nothing is written then; a link is replaced, never written through.

Example:

>>> import nbformat
>>> nb = nbformat.v4.new_notebook(cells=[
...     nbformat.v4.new_markdown_cell("## Exercise 1\\nCompute the loss at y = 0.3."),
...     nbformat.v4.new_code_cell("loss(0.3)", metadata={"tags": ["solution"]}),
...     nbformat.v4.new_code_cell("x = 1", execution_count=1,
...                               outputs=[nbformat.v4.new_output("stream", text="hi")])])
>>> copy, removed = student_notebook(nb)
>>> removed, [c.cell_type for c in copy.cells], copy.cells[1].outputs, copy.cells[1].execution_count
(1, ['markdown', 'code'], [], None)
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jmlkit._checks import OneLineParser
from jmlkit.io import atomic_write_text
from jmlkit.runner.report import _check_path

__all__ = ["SOLUTION_TAG", "StudentCopy", "build_parser", "main_student", "student_notebook", "write_student_notebooks"]

#: The cell tag that marks a solution (a teacher's cell left out of the student copies).
SOLUTION_TAG = "solution"


@dataclasses.dataclass(frozen=True)
class StudentCopy:
    """One written student copy: the teacher's notebook, the copy, and how many cells were removed."""

    source: Path
    path: Path
    removed: int
    kept: int


def student_notebook(nb: Any, *, tag: str = SOLUTION_TAG) -> tuple[Any, int]:
    """A student copy of the notebook ``nb`` (not modified) and the number of cells removed.

    Removes the cells tagged ``tag`` and clears every output and execution count.
    """
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

    if not isinstance(tag, str) or not tag:
        raise TypeError(f"Expected `tag` to be a non-empty str, but got {tag!r} ({type(tag).__name__}).")
    if not hasattr(nb, "cells"):
        raise TypeError(f"Expected `nb` to be a notebook (nbformat.NotebookNode), but got {type(nb).__name__}.")
    nb = copy.deepcopy(nb)
    before = len(nb.cells)
    resources: dict[str, Any] = {}
    nb, resources = TagRemovePreprocessor(remove_cell_tags={tag}, enabled=True).preprocess(nb, resources)
    nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
    for cell in nb.cells:
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = _OUTPUT_DIR.sub(lambda m: f"{m.group(1)}{STUDENT_OUTPUTS}/{m.group(2)}{m.group(3)}", source)
        if cell.cell_type == "markdown":
            source = source.replace("](../docs/", "](docs/")
        cell.source = source
    return nb, before - len(nb.cells)


#: Where a student copy writes its outputs, inside the student folder.
STUDENT_OUTPUTS = "outputs"
_OUTPUT_DIR = re.compile(r"""^(output_dir\s*=\s*["'])\.\./runs/interactive/([^"'/]+)(["'])""", re.M)
_DOCS_LINK = re.compile(r"(?<![\w/.])docs/([A-Za-z0-9_.-]+\.md)")  # a link or a mention (`docs/paper.md`)

STUDENT_README = """\
# The notebooks, for students

Each notebook asks a question about Jaccard losses with soft labels, answers it with an experiment and ends with
exercises. The solutions are not in these copies: your teacher has them.

## How to start

1. Set up once, from the project's folder (the one with `Makefile`): `make env` (it creates `.venv`, a few minutes).
2. Open JupyterLab in this folder: `../.venv/bin/jupyter lab` (or `.venv/bin/jupyter lab` from the project's folder,
   then open this folder in the file browser).
3. Run the notebooks in order, top to bottom ({notebooks}). Each starts with a `parameters` cell:
   `profile = "quick"` trains small models in a minute or two on a laptop CPU; leave it so in class.

## Where the outputs go

Every notebook writes its figures, tables and training runs into `{outputs}/<notebook>/` inside this folder
(the `output_dir` of its parameters cell). Running a cell again reuses the runs already there; delete
`{outputs}/` to start afresh. Notebook 06 compares the runs that 02-05 left in `{outputs}/`.
{docs}"""


def write_student_notebooks(out_dir: str | os.PathLike, notebooks_dir: str | os.PathLike | None = None, *,
                            tag: str = SOLUTION_TAG, force: bool = False) -> list[StudentCopy]:
    """Write the student copy of every ``*.ipynb`` of ``notebooks_dir`` (default: ./notebooks, else the
    repository's) into ``out_dir``; returns what was written, sorted by name.

    A file of ``out_dir`` with a copy's name that is not byte-identical to that copy (edited since, or not a
    copy at all) is a ``ValueError`` naming it, before anything is written, unless ``force``.

    >>> write_student_notebooks("notebooks", "notebooks")
    Traceback (most recent call last):
    ...
    ValueError: Expected `out_dir` to be another folder than the notebooks folder 'notebooks' ..., but got 'notebooks'.
    """
    import nbformat

    from jmlkit.runner.notebooks import _default_notebooks_dir

    out = _check_path("out_dir", out_dir)
    folder = _check_path("notebooks_dir", notebooks_dir) if notebooks_dir is not None else _default_notebooks_dir()
    if out.resolve() == folder.resolve():
        raise ValueError(f"Expected `out_dir` to be another folder than the notebooks folder {str(folder)!r} (the "
                         f"copies would replace the teacher's notebooks), but got {str(out_dir)!r}.")
    if not folder.is_dir():
        raise ValueError(f"Expected `notebooks_dir` to be a folder of notebooks, but {str(folder)!r} "
                         + ("is a file." if folder.exists() else "does not exist."))
    if out.exists() and not out.is_dir():
        raise ValueError(f"Expected `out_dir` to be a folder (or a path to create), but {str(out)!r} is a file.")
    sources = sorted(folder.glob("*.ipynb"))
    if not sources:
        raise ValueError(f"Expected `notebooks_dir` to hold *.ipynb notebooks, but {str(folder)!r} has none.")
    copies = []  # all read, made and checked before any write
    for path in sources:
        student, removed = student_notebook(nbformat.read(str(path), as_version=4), tag=tag)
        nbformat.validate(student)
        copies.append((path, nbformat.writes(student), removed, len(student.cells)))
    changed = [] if force else [out / path.name for path, text, _, _ in copies if _differs(out / path.name, text)]
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise ValueError(f"Expected `out_dir` to hold no file under a copy's name other than that copy, but "
                         f"{str(changed[0])!r}{more} differs from the new copy (a student's edited copy?); nothing was "
                         "written: pass --force (force=True) to replace it, or choose another folder.")
    written = []
    for path, text, removed, kept in copies:
        target = atomic_write_text(out / path.name, text)  # a link there is replaced, never written through
        written.append(StudentCopy(source=path, path=target, removed=removed, kept=kept))
    pages = sorted({m.group(1) for _, text, _, _ in copies for m in _DOCS_LINK.finditer(text)})
    for page in pages:  # the pages the copies link to, beside them
        found = folder.parent / "docs" / page
        if found.is_file():
            atomic_write_text(out / "docs" / page, found.read_text(encoding="utf-8"))
    docs = ("\nThe paper's recipes and published numbers, as the notebooks use them: "
            + ", ".join(f"[docs/{p}](docs/{p})" for p in pages) + ".\n") if pages else ""
    atomic_write_text(out / "README.md", STUDENT_README.format(
        notebooks=", ".join(f"`{c.path.name}`" for c in written), outputs=STUDENT_OUTPUTS, docs=docs))
    return written


def _differs(target: Path, text: str) -> bool:
    """Whether ``target`` exists (a link counts, even to nothing) and is not a plain file holding ``text``."""
    if target.is_symlink():
        return True
    if not target.exists():
        return False
    try:
        return not target.is_file() or target.read_bytes() != text.encode("utf-8")
    except OSError:
        return True


_DESCRIPTION = f"""\
Write student copies of the notebooks into OUT: the cells tagged `{SOLUTION_TAG}` are removed
(the exercise prompts stay), outputs and execution counts are cleared, every other cell is kept in
order. The notebooks themselves are not changed.
"""

_EPILOG = """\
examples:
  python -m jmlkit student student/                       # the copies of notebooks/*.ipynb
  python -m jmlkit student handout --notebooks-dir notebooks
  python -m jmlkit student handout --force                # replace copies edited since

exit code: 0 written, 2 usage error (e.g. OUT is a file or the notebooks folder itself, or OUT holds
a copy that was edited since, without --force: nothing is written then).
"""


def build_parser(prog: str = "python -m jmlkit student") -> argparse.ArgumentParser:
    """The ``jmlkit student`` argument parser."""
    parser = OneLineParser(prog=prog, description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", metavar="OUT", help="folder for the student copies (created if needed)")
    parser.add_argument("--notebooks-dir", default=None, metavar="DIR",
                        help="folder of the teacher's notebooks (default: ./notebooks, else the repository's)")
    parser.add_argument("--force", action="store_true",
                        help="replace files of OUT under a copy's name that differ from the new copy (e.g. a "
                             "student's edited copy); without it they are an error and nothing is written")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main_student(argv: Sequence[str] | None = None) -> int:
    """Command line entry of ``jmlkit student``; returns the exit code (usage errors exit with 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["student"]:
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        written = write_student_notebooks(args.out, args.notebooks_dir, force=args.force)
    except (ValueError, TypeError, OSError) as err:
        parser.error(str(err))
    if not args.quiet:
        for item in written:
            print(f"{item.path}: {item.kept} cells, {item.removed} solution cell(s) removed")
        print(f"{len(written)} student notebook(s) in {args.out}")
    return 0
