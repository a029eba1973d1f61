"""``jmlkit run -p`` values are checked against each notebook's parameters before any kernel starts.

A value must have the type of the notebook's default and, where the notebook declares them in its
``parameters`` cell's metadata (``jmlkit.choices``), be one of its choices; a value that starts or
ends like a literal but is none (``[1,2``) is a mistake, not a string. Each mistake is one error
line naming the parameter, the notebook, what it expects and the value, exit code 2, no traceback,
and nothing written: the ``--out`` folder is byte-identical (or still absent). The CLI cases run as
real subprocesses, on small notebooks (tests/fake_notebooks.py) and on the repository's notebooks;
none of them may start a kernel (``--out`` would be written).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fake_notebooks import PARAMS, make_notebook
from jmlkit.runner.params import parameter_choices, parameter_problem, parse_assignments, parse_value
from jmlkit.runner.plan import plan_runs

REPO = Path(__file__).resolve().parents[1]
FAKE_PARAMS = PARAMS + ('epsilon = 0.1  # smoothing\nflag = True  # a switch\nname = "a"  # free text\n'
                        'kind = "a"  # one of the choices\nkinds = ["a"]  # several of them\n'
                        'sizes = [64, 64]  # ints\nband = (0.2, 0.8)  # numbers\nextra = None  # anything\n'
                        'subset = ["x"]  # names; None: all of them\nopts = {}  # keyword options\n')
CHOICES = {"kind": ["a", "b"], "kinds": ["a", "b"]}


# --------------------------------------------------------------------------- the rules, one value at a time
@pytest.mark.parametrize("name, value, default, help_, choices, fragment", [
    ("seed", "abc", "0", "", None, "an int (its default is 0), but got 'abc' (str)"),
    ("seed", 1.5, "0", "", None, "an int"),
    ("seed", True, "0", "", None, "an int"),  # a bool is no int here
    ("seed", None, "0", "", None, "an int"),
    ("epsilon", "0.1x", "0.1", "", None, "a number (int or float)"),
    ("epsilon", [1, 2], "0.1", "", None, "but got [1, 2] (list)"),
    ("flag", 1, "True", "", None, "a bool"),
    ("name", 3, '"a"', "", None, "a str (its default is \"a\"), but got 3 (int)"),
    ("kinds", "a", '["a"]', "", None, "a list"),
    ("sizes", [64, "x"], "[64, 64]", "", None, "a list of ints (its default is [64, 64]), but got [64, 'x'] ('x' is a str)"),
    ("band", (0.2, "x"), "(0.2, 0.8)", "", None, "a list of numbers"),
    ("opts", [1], "{}", "", None, "a dict"),
    ("kind", "c", '"a"', "", ["a", "b"], "one of 'a', 'b', but got 'c'"),
    ("kinds", ["a", "nosuch"], '["a"]', "", ["a", "b"], "a list of 'a', 'b', but got ['a', 'nosuch'] ('nosuch'"),
])
def test_a_value_the_parameter_cannot_take_is_named(name, value, default, help_, choices, fragment):
    problem = parameter_problem(name, value, default, help=help_, choices=choices)
    assert problem is not None and fragment in problem, problem


@pytest.mark.parametrize("value, default, help_, choices", [
    (3, "0", "", None), (3, "0.1", "", None), (0.5, "0.1", "", None), (False, "True", "", None),
    ("ls", '"a"', "", None), ([1, 2], "[64, 64]", "", None), ([], "[64, 64]", "", None), ((1, 0.5), "(0.2, 0.8)", "", None),
    ([0.5, 1], "[]", "", None), ("anything", "None", "", None), ([1, "x"], "None", "", None),
    (None, '["x"]', "names; None: all of them", None), ("x", "1 / 16", "", None),  # an expression: not checked
    ({"root": "/data"}, "{}", "", None), ("b", '"a"', "", ["a", "b"]), (["b", "a"], '["a"]', "", ["a", "b"]),
])
def test_a_value_the_parameter_can_take_passes(value, default, help_, choices):
    assert parameter_problem("p", value, default, help=help_, choices=choices) is None


@pytest.mark.parametrize("text, expected", [
    ("ls", "ls"), ("ce+jml", "ce+jml"), ("a b", "a b"), ("1.2.3", "1.2.3"), ("/tmp/x", "/tmp/x"),
    ("[1, 2]", [1, 2]), ("'[1,2'", "[1,2"), ("None", None), ("(0.2, 0.8)", (0.2, 0.8)),
])
def test_plain_words_stay_strings_and_literals_parse(text, expected):
    assert parse_value(text) == expected


@pytest.mark.parametrize("raw", ["[1,2", "{'a': 1", "(1, 2", "'open", '"open', "1, 2]", "[x]", "{'a': f()}"])
def test_a_broken_literal_is_an_error_naming_the_option(raw):
    with pytest.raises(ValueError, match=r"Expected `-p epsilon` to be a Python literal .* but got "):
        parse_assignments([f"epsilon={raw}"])


def test_choices_are_read_from_the_parameters_cell_metadata(tmp_path):
    path = _fake(tmp_path / "nbs")
    assert parameter_choices(path) == CHOICES
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["jmlkit"]["choices"] = {"kind": "a"}
    with pytest.raises(ValueError, match="jmlkit.choices to map names to non-empty lists"):
        parameter_choices(nb)
    assert parameter_choices(nbformat.v4.new_notebook()) == {}


def test_plan_runs_checks_every_value_of_a_grid(tmp_path):
    path = _fake(tmp_path / "nbs")
    assert len(plan_runs([path], {"seed": [0, 1], "kind": ["a", "b"]}, out_dir=tmp_path / "o")) == 4
    with pytest.raises(ValueError, match=r"`-p kind` of 01_a.ipynb to be one of 'a', 'b', but got 'c'"):
        plan_runs([path], {"seed": [0, 1], "kind": ["a", "c"]}, out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- the command line, as subprocesses
def _fake(nbdir: Path) -> Path:
    path = make_notebook(nbdir / "01_a.ipynb", "raise RuntimeError('a kernel ran')", params=FAKE_PARAMS)
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["jmlkit"] = {"choices": CHOICES}
    nbformat.write(nb, path)
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "JMLKIT_HEADLESS": "1"}


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` (hidden ones too) with its bytes; ``None`` when the folder does not exist."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


def _run_cli(args: list[str], out: Path, figs: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "jmlkit", "run", *args, "--out", str(out), "--figures", str(figs), "--no-progress"]
    return subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)


def _check_refused(proc: subprocess.CompletedProcess, needles: list[str]) -> None:
    err = proc.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert proc.returncode == 2, proc.stdout + err
    assert errors == [lines[-1]] and lines[-1].startswith("jmlkit run: error: Expected `-p "), err
    assert "Traceback" not in err and proc.stdout == ""
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


FAKE_CASES = {  # -p value -> what the error line names besides the parameter and the notebook
    "seed=abc": ["`-p seed` of 01_a.ipynb", "an int", "'abc'"],
    "epsilon=[1,2": ["`-p epsilon`", "Python literal", "'[1,2'", "never closed"],
    "epsilon=abc": ["`-p epsilon` of 01_a.ipynb", "a number", "'abc'"],
    "flag=1": ["`-p flag` of 01_a.ipynb", "a bool", "got 1 (int)"],
    "kind=c": ["`-p kind` of 01_a.ipynb", "one of 'a', 'b'", "'c'"],
    "kinds=['a','nosuch']": ["`-p kinds` of 01_a.ipynb", "a list of 'a', 'b'", "'nosuch'"],
    "sizes=[64,'x']": ["`-p sizes` of 01_a.ipynb", "a list of ints", "'x'"],
    "seed=0,x": ["`-p seed` of 01_a.ipynb", "an int", "'x'"],  # one bad value of a grid
}


@pytest.fixture(scope="module")
def fake_nbdir(tmp_path_factory) -> Path:
    nbdir = tmp_path_factory.mktemp("params") / "nbs"
    _fake(nbdir)
    return nbdir


@pytest.mark.parametrize("assignment", list(FAKE_CASES))
def test_a_bad_value_is_refused_before_any_kernel_starts(assignment, fake_nbdir, tmp_path):
    """Into a batch folder with earlier results, which stays byte-identical (the repository cases: an absent one)."""
    out, figs = tmp_path / "out", tmp_path / "figs"
    (out / "01_a").mkdir(parents=True)
    (out / "01_a" / "run.json").write_text('{"status": "ok"}')
    (out / "summary.csv").write_text("run,status\n01_a,ok\n")
    (out / ".hidden").write_text("x")
    before = snapshot(out)
    proc = _run_cli(["--notebooks-dir", str(fake_nbdir), "-p", assignment], out, figs)
    _check_refused(proc, FAKE_CASES[assignment])
    assert snapshot(out) == before and not figs.exists()


def test_good_values_of_every_kind_are_planned(fake_nbdir, tmp_path):
    args = ["--notebooks-dir", str(fake_nbdir), "--dry-run"]
    for assignment in ("seed=0,1", "epsilon=1", "flag=False", "name=ls", "kind=b", "kinds=['b','a']", "sizes=[32,32]",
                       "band=[0,1]", "extra=[1,'x']", "subset=None", "opts={'k':1}"):
        args += ["-p", assignment]
    proc = _run_cli(args, tmp_path / "out", tmp_path / "figs")
    assert proc.returncode == 0, proc.stderr
    assert "2 run(s)" in proc.stdout and not (tmp_path / "out").exists()


REAL_CASES = {  # the repository's notebooks, run for real (no --dry-run): a kernel would write --out
    "02 seed": (["02", "-p", "seed=abc"], ["`-p seed` of 02_label_smoothing.ipynb", "an int", "'abc'"]),
    "02 epsilon": (["02", "-p", "epsilon=[1,2"], ["`-p epsilon`", "Python literal", "'[1,2'"]),
    "02c sweep_configs": (["02c", "-p", "sweep_configs=['nosuch']"],
                          ["`-p sweep_configs` of 02c_smoothing_strength.ipynb", "'jml_bls'", "'jml_ls'", "'nosuch'"]),
    "02 contrast_configs": (["02", "-p", "contrast_configs=ce_hard"],
                            ["`-p contrast_configs` of 02_label_smoothing.ipynb", "a list", "'ce_hard' (str)"]),
    "01 triangle_distribution": (["01", "-p", "triangle_distribution=gauss"],
                                 ["`-p triangle_distribution` of 01_jaccard_losses.ipynb", "'uniform'", "'gauss'"]),
    "05 band": (["05", "-p", "band=(0.2,'x')"], ["`-p band` of 05_soft_labels.ipynb", "numbers", "'x'"]),
    "06 and what it requires": (["06", "-p", "seed=1.5"], ["`-p seed` of 02_label_smoothing.ipynb", "1.5 (float)"]),
}


@pytest.mark.parametrize("case", list(REAL_CASES))
def test_the_repository_notebooks_refuse_bad_values_without_a_kernel(case, tmp_path):
    args, needles = REAL_CASES[case]
    proc = _run_cli([*args, "--notebooks-dir", str(REPO / "notebooks")], tmp_path / "out", tmp_path / "figs")
    _check_refused(proc, needles)
    assert not (tmp_path / "out").exists() and not (tmp_path / "figs").exists()


def test_declared_choices_are_the_names_jmlkit_knows():
    """02's and 02c's config choices are the configurations of the recipe; 01's distributions those the triangle
    check takes."""
    from jmlkit.engine import TrainConfig
    from jmlkit.experiments.recipes import smoothing_configs
    from jmlkit.lessons.geometry import triangle_check

    names = list(smoothing_configs(TrainConfig.from_profile("smoke")))
    assert parameter_choices(REPO / "notebooks" / "02_label_smoothing.ipynb") == {"contrast_configs": names}
    assert parameter_choices(REPO / "notebooks" / "02c_smoothing_strength.ipynb") == {"sweep_configs": names}
    assert parameter_choices(REPO / "notebooks" / "02b_smoothing_ablation.ipynb") == {}
    distributions = parameter_choices(REPO / "notebooks" / "01_jaccard_losses.ipynb")["triangle_distribution"]
    for distribution in distributions:
        triangle_check(2, distribution=distribution)
    with pytest.raises(ValueError, match="`distribution`"):
        triangle_check(2, distribution="gauss")
