"""Small notebooks written for the runner's tests: a ``parameters`` cell and a few code cells, no kernel needed to build.

>>> import tempfile
>>> from pathlib import Path
>>> path = make_notebook(Path(tempfile.mkdtemp()) / "01_a.ipynb", "x = 1", params="seed = 0\\n", requires=["00_b"])
>>> nb = nbformat.read(path, as_version=4)
>>> [c.cell_type for c in nb.cells], nb.metadata["jmlkit"]
(['markdown', 'code', 'code'], {'requires': ['00_b']})
"""
from __future__ import annotations

from pathlib import Path

import nbformat

#: The parameters every runner notebook declares.
PARAMS = 'profile = "quick"  # quick or full\nseed = 0  # random seed\noutput_dir = "."  # run folder\n'


def make_notebook(path: Path, *cells: str, requires: list[str] | None = None, params: str = PARAMS,
                  title: bool = True) -> Path:
    """Write ``path``: a markdown title (``title``), the ``parameters`` cell, then ``cells`` as code cells.

    ``requires`` becomes ``metadata["jmlkit"]["requires"]``; the kernel is ``python3``.
    """
    nb = nbformat.v4.new_notebook(cells=[
        *([nbformat.v4.new_markdown_cell(f"# {path.stem}")] if title else []),
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        *(nbformat.v4.new_code_cell(c) for c in cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if requires is not None:
        nb.metadata["jmlkit"] = {"requires": requires}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
