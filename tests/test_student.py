"""Tests of the student copies of the notebooks (jmlkit.runner.student / ``python -m jmlkit student``).

Every repository notebook's copy loses exactly its cells tagged ``solution``, keeps the others in
order, has no outputs and is valid nbformat; the teacher's notebooks are left as they were, and the
runner's executed copies (the smoke batch of tests/test_report.py) still hold the solutions.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest
from test_report import smoke_batch

from jmlkit.__main__ import main
from jmlkit.runner.student import SOLUTION_TAG, main_student, student_notebook, write_student_notebooks

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def is_solution(cell) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def signature(cell) -> tuple:
    """What must survive the copy: type, source, id and tags (not outputs)."""
    return cell.cell_type, cell.source, cell.get("id"), tuple(cell.get("metadata", {}).get("tags", []))


def digest(paths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_student_copies_of_the_repository_notebooks(tmp_path, capsys):
    before = digest(NOTEBOOKS)
    assert main(["student", str(tmp_path / "handout"), "--notebooks-dir", str(REPO / "notebooks")]) == 0
    printed = capsys.readouterr().out
    assert f"{len(NOTEBOOKS)} student notebook(s)" in printed
    assert digest(NOTEBOOKS) == before  # the teacher's notebooks are untouched
    handout = tmp_path / "handout"
    assert sorted(p.name for p in handout.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    readme = (handout / "README.md").read_text(encoding="utf-8")
    assert "## How to start" in readme and "jupyter lab" in readme and "outputs/<notebook>/" in readme
    assert all(f"`{p.name}`" in readme for p in NOTEBOOKS)
    assert (handout / "docs" / "paper.md").read_bytes() == (REPO / "docs" / "paper.md").read_bytes()
    for path in NOTEBOOKS:
        teacher = nbformat.read(path, as_version=4)
        student = nbformat.read(tmp_path / "handout" / path.name, as_version=4)
        nbformat.validate(student)
        assert any(map(is_solution, teacher.cells)), f"{path.name} has no cell tagged {SOLUTION_TAG!r}"
        assert not any(map(is_solution, student.cells))
        kept = [c for c in teacher.cells if not is_solution(c)]
        assert [signature(c)[0::2] for c in student.cells] == [signature(c)[0::2] for c in kept]
        for mine, theirs in zip(student.cells, kept):  # the same cells; only output folders and docs links move
            assert mine.source == theirs.source.replace("../runs/interactive/", "outputs/").replace("](../docs/", "](docs/")
        text = json.dumps([c.source for c in student.cells])
        assert "../runs/interactive" not in text and "../docs/" not in text  # every output inside the folder
        assert '"outputs/' + path.stem in json.dumps(next(c.source for c in student.cells
                                                         if "parameters" in c.metadata.get("tags", [])))
        # no heading is left over a removed solution: a "Solution(s)" heading goes with its cells
        headings = [line for c in student.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                    if line.startswith("#")]
        assert not [h for h in headings if h.lstrip("#").strip().lower().startswith("solution")], path.name
        code = [c for c in student.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code)
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
        removed = len(teacher.cells) - len(student.cells)
        assert f"{path.name}: {len(student.cells)} cells, {removed} solution cell(s) removed" in printed


def test_student_notebook_removes_solutions_anywhere_and_clears_outputs():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    solution = {"tags": ["solution", "other"]}
    cells = [md("# Lab"), code("x = 1", execution_count=3, outputs=[nbformat.v4.new_output("stream", text="1")]),
             md("**Exercise 1.** Compute y."), code("y = 2 * x", metadata=solution),
             md("### Solution", metadata=solution),
             md("**Exercise 2.** Plot y."), code("plot(y)", metadata={"tags": ["keep"]}),
             code("print(y)", metadata=solution, execution_count=4)]
    teacher = nbformat.v4.new_notebook(cells=cells)
    frozen = json.dumps(teacher, sort_keys=True)
    student, removed = student_notebook(teacher)
    assert removed == 3 and json.dumps(teacher, sort_keys=True) == frozen  # the input is not modified
    assert [c.source for c in student.cells] == ["# Lab", "x = 1", "**Exercise 1.** Compute y.",
                                                 "**Exercise 2.** Plot y.", "plot(y)"]
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert student.cells[4].metadata["tags"] == ["keep"]
    nbformat.validate(student)
    other, n = student_notebook(teacher, tag="keep")
    assert n == 1 and "plot(y)" not in [c.source for c in other.cells]


def test_student_checks_its_arguments(tmp_path, capsys):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        ([str(tmp_path / "a_file"), "--notebooks-dir", str(REPO / "notebooks")], "Expected `out_dir` to be a folder",
         "is a file"),
        ([str(nbdir), "--notebooks-dir", str(nbdir)], "Expected `out_dir` to be another folder", "teacher's notebooks"),
        ([str(tmp_path / "out"), "--notebooks-dir", str(tmp_path / "missing")], "Expected `notebooks_dir`",
         "does not exist"),
        ([str(tmp_path / "out"), "--notebooks-dir", str(nbdir)], "Expected `notebooks_dir` to hold", "has none"),
    ]
    for argv, expected, actual in cases:
        with pytest.raises(SystemExit) as exc:
            main(["student", *argv])
        assert exc.value.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith(f"python -m jmlkit student: error: {expected}") and actual in last, last
    assert (tmp_path / "a_file").read_text() == "x" and not (tmp_path / "out").exists()
    with pytest.raises(TypeError, match=r"Expected `out_dir` to be a path .* got None"):
        write_student_notebooks(None)
    with pytest.raises(TypeError, match="Expected `nb` to be a notebook"):
        student_notebook({"cells": []})
    with pytest.raises(TypeError, match="Expected `tag` to be a non-empty str"):
        student_notebook(nbformat.v4.new_notebook(), tag="")


def test_student_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main_student(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "python -m jmlkit student student/" in out and "--notebooks-dir" in out and "solution" in out


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_batch")
def test_the_executed_batch_keeps_the_solutions(tmp_path_factory):
    batch = smoke_batch(tmp_path_factory)
    for path in sorted((REPO / "notebooks").glob("[0-9]*.ipynb")):
        teacher = [c for c in nbformat.read(path, as_version=4).cells if is_solution(c)]
        executed = [c for c in nbformat.read(batch / path.stem / path.name, as_version=4).cells if is_solution(c)]
        assert [c.source for c in executed] == [c.source for c in teacher] != []
        record = json.loads((batch / path.stem / "run.json").read_text())
        if record["status"] == "ok":  # the solutions ran as part of the batch
            assert all(c.execution_count is not None for c in executed if c.cell_type == "code")
