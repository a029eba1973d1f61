"""Tests of the notebook batch runner (jmlkit.runner / ``jmlkit run``).

Kernel-free tests cover planning, parsing, profiles, resume decisions and outputs;
five notebook executions (two shared by a module fixture) cover parallel jobs,
failure isolation, figures, resume, the per-run timeout and Ctrl-C. The last test
checks the repository's notebooks are committed clean with one ``parameters`` cell.

No test asserts on wall-clock time (the machine may be small and shared): parallel
execution is shown by a barrier the notebooks pass only when both are running, and
"nothing was executed" by a papermill that refuses to run. Waiting loops have generous
guards against hangs only.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from jmlkit.profiles import PROFILE_NAMES
from jmlkit.runner import (
    PROFILES,
    Run,
    RunResult,
    build_parser,
    check_notebook_clean,
    collect_figures,
    expand_grid,
    find_parameters_cell,
    main_run,
    notebook_parameters,
    parse_assignments,
    plan_runs,
    resolve_notebooks,
    run_name,
    run_notebooks,
    write_summary,
)

REPO = Path(__file__).resolve().parents[1]
PARAMS = 'profile = "quick"  # quick or full\nseed = 0  # random seed\noutput_dir = "."  # run folder\n'

# Active only under JMLKIT_TEST_BARRIER (the module fixture): each notebook waits until the other one is
# running too, so the batch passes only if its two notebooks really run side by side. The wait has a guard
# against a hang, well beyond the time a kernel takes to start; it measures nothing.
BARRIER = """\
import os, time
_barrier = os.environ.get("JMLKIT_TEST_BARRIER")
if _barrier:
    open(os.path.join(_barrier, os.path.basename(output_dir)), "w").close()
    _guard = time.monotonic() + 100
    while len(os.listdir(_barrier)) < 2:
        if time.monotonic() > _guard:
            raise RuntimeError("the other notebook never ran at the same time as this one")
        time.sleep(0.05)
"""
OK_SOURCE = BARRIER + """\
import json, os
import matplotlib
backend = matplotlib.get_backend()
import matplotlib.pyplot as plt
os.makedirs(os.path.join(output_dir, "sub"), exist_ok=True)
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [seed, 1])
fig.savefig(os.path.join(output_dir, "fig.png"))
fig.savefig(os.path.join(output_dir, "sub", "curve.svg"))
with open(os.path.join(output_dir, "metrics.json"), "w") as fh:
    json.dump({"score": seed + 0.5, "n": 3, "profile_len": len(profile), "cwd": os.path.basename(os.getcwd()),
               "backend": backend}, fh)
"""
FAIL_SOURCE = BARRIER + """\
import os
open(os.path.join(output_dir, "partial.png"), "wb").close()
raise ValueError("boom from the notebook")
"""
SLEEP_SOURCE = """\
import os, time
open(os.path.join(output_dir, "started"), "w").close()
time.sleep(120)
"""


def make_notebook(path: Path, body: str, *, params: str = PARAMS, outputs: bool = False) -> Path:
    cells = [
        nbformat.v4.new_markdown_cell(f"# {path.stem}"),
        nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
        nbformat.v4.new_code_cell("after_error = True"),
    ]
    if outputs:
        cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
        cells[2].execution_count = 1
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    d = tmp_path / "nbs"
    make_notebook(d / "01_ok.ipynb", OK_SOURCE)
    make_notebook(d / "02_fail.ipynb", FAIL_SOURCE)
    make_notebook(d / "03_sleep.ipynb", SLEEP_SOURCE)
    make_notebook(d / "helper.ipynb", "x = 1")  # no digit prefix: not run by default
    return d


def read_summary(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def read_metrics_table(out: Path) -> dict[str, dict[str, str]]:
    """``OUT/metrics.csv`` as ``{run: {metric: value}}``, checking its long format on the way."""
    rows = read_summary(out / "metrics.csv")
    assert all(list(r) == ["run", "metric", "value"] for r in rows)
    table: dict[str, dict[str, str]] = {}
    for r in rows:
        assert r["metric"] not in table.get(r["run"], {})
        table.setdefault(r["run"], {})[r["metric"]] = r["value"]
    return table


# --------------------------------------------------------------------------- pure functions
def test_parse_assignments_grids_and_literals():
    grid = parse_assignments(["seed=0,1,2", "lr=1e-3", "loss=ce+jml", "size=[64, 64]", "tag='a,b'", "x=(1,2)"])
    assert grid == {"seed": [0, 1, 2], "lr": [0.001], "loss": ["ce+jml"], "size": [[64, 64]],
                    "tag": ["a,b"], "x": [(1, 2)]}
    assert parse_assignments(["mode=a,b"]) == {"mode": ["a", "b"]}


@pytest.mark.parametrize("bad, match", [
    (["seed"], "name=value"),
    (["1x=2"], "identifier"),
    (["profile=full"], "--profile"),
    (["output_dir=/tmp"], "--out"),
    (["seed=1", "seed=2"], "twice"),
    (["seed=1,,2"], "single commas"),
])
def test_parse_assignments_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_assignments(bad)


def test_expand_grid_is_the_product():
    runs = expand_grid({"seed": [0, 1, 2], "loss": ["ce", "jml"]})
    assert len(runs) == 6
    assert runs[0] == {"seed": 0, "loss": "ce"} and runs[-1] == {"seed": 2, "loss": "jml"}
    assert len({json.dumps(r, sort_keys=True) for r in runs}) == 6
    assert expand_grid({}) == [{}]
    with pytest.raises(ValueError, match="non-empty list"):
        expand_grid({"seed": []})


def test_run_name_sorted_sanitised_and_bounded():
    assert run_name("01_x", {}) == "01_x"
    assert run_name("01_x", {"seed": 1, "a": "p/q r"}) == run_name("01_x", {"a": "p/q r", "seed": 1})
    assert run_name("01_x", {"seed": 1, "a": "p/q r"}) == "01_x__a=p-q-r,seed=1"
    long = run_name("01_x", {"tag": "y" * 500})
    assert len(long) < 40 and long.startswith("01_x__")


def test_plan_runs_injects_only_declared_parameters(nbdir, tmp_path):
    make_notebook(nbdir / "04_noseed.ipynb", "pass", params='profile = "quick"\noutput_dir = "."\n')
    warnings = []
    nbs = [nbdir / "01_ok.ipynb", nbdir / "04_noseed.ipynb"]
    # seed is declared by 01_ok only: allowed, injected only there.
    runs = plan_runs(nbs, {"seed": [0, 1]}, profile="full", out_dir=tmp_path / "o", warn=warnings.append)
    assert [r.name for r in runs] == ["01_ok__seed=0", "01_ok__seed=1", "04_noseed"]
    assert runs[1].parameters == {"profile": "full", "seed": 1}
    assert runs[1].papermill_parameters()["output_dir"] == str((tmp_path / "o" / "01_ok__seed=1").resolve())
    assert runs[2].parameters == {"profile": "full"}
    assert warnings == []
    # A name that no selected notebook declares is an error listing each notebook's parameters (name = default).
    with pytest.raises(ValueError, match=r"'typo'; their parameters: 01_ok.ipynb: seed = 0; 04_noseed.ipynb: \(none\)"):
        plan_runs(nbs, {"seed": [0, 1], "typo": [3]}, out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="profile"):
        plan_runs(nbs, profile="medium")


def test_resolve_notebooks(nbdir):
    assert [p.name for p in resolve_notebooks([], nbdir)] == ["01_ok.ipynb", "02_fail.ipynb", "03_sleep.ipynb"]
    assert [p.name for p in resolve_notebooks(["02", "01_ok", "03_sleep.ipynb"], nbdir)] == [
        "02_fail.ipynb", "01_ok.ipynb", "03_sleep.ipynb"]
    assert resolve_notebooks([str(nbdir / "helper.ipynb")], nbdir)[0].name == "helper.ipynb"
    make_notebook(nbdir / "01_other.ipynb", "pass")
    with pytest.raises(ValueError, match="2 notebooks"):
        resolve_notebooks(["01"], nbdir)
    with pytest.raises(ValueError, match="no notebook"):
        resolve_notebooks(["99"], nbdir)


def test_parameters_cell_helpers(nbdir, tmp_path):
    nb = nbformat.read(nbdir / "01_ok.ipynb", as_version=4)
    assert find_parameters_cell(nb) == 1
    params = notebook_parameters(nb)
    assert list(params) == ["profile", "seed", "output_dir"]
    assert params["profile"] == {"default": '"quick"', "help": "quick or full"}
    nb.cells[2].metadata["tags"] = ["parameters"]
    with pytest.raises(ValueError, match="exactly one"):
        find_parameters_cell(nb)
    assert check_notebook_clean(nbdir / "01_ok.ipynb") == []
    dirty = make_notebook(tmp_path / "dirty.ipynb", "x = 1", params="seed = 0\n", outputs=True)
    problems = " | ".join(check_notebook_clean(dirty))
    assert "has outputs" in problems and "execution_count" in problems and "'profile', 'output_dir'" in problems


def fake_result(tmp_path: Path, name: str, state: str, **params) -> RunResult:
    run = Run(name=name, notebook=tmp_path / f"{name}.ipynb", parameters={"profile": "quick", **params},
              run_dir=tmp_path / "out" / name)
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "a.png").write_bytes(b"png")
    (run.run_dir / "notes.txt").write_text("not a figure")
    return RunResult(run=run, status=state, duration_s=1.25, metrics={"mIoU": 0.5} if state == "ok" else {},
                     error=None if state == "ok" else "ValueError: x")


def test_summary_and_figures_without_kernels(tmp_path):
    results = [fake_result(tmp_path, "01_a__seed=1", "ok", seed=1, status="clash"),
               fake_result(tmp_path, "02_b", "failed")]
    copied = collect_figures(results, tmp_path / "figs")
    assert [p.name for p in copied] == ["01_a__seed=1__a.png"]  # failed runs' figures are not collected
    rows = read_summary(write_summary(tmp_path / "out", results))
    # Short: run, status, duration, error, then the parameters that differ between runs (not the constant profile).
    assert list(rows[0]) == ["run", "status", "duration_s", "error", "seed", "p.status"]
    assert rows[0] == {"run": "01_a__seed=1", "status": "ok", "duration_s": "1.25", "error": "", "seed": "1",
                       "p.status": "clash"}
    assert rows[1] == {"run": "02_b", "status": "failed", "duration_s": "1.25", "error": "ValueError: x", "seed": "",
                       "p.status": ""}
    assert not list((tmp_path / "out").glob(".summary.csv.*"))  # atomic write leaves no temp file


def test_cli_list_dry_run_and_usage_errors(nbdir, tmp_path, capsys):
    assert main_run(["--list", "--notebooks-dir", str(nbdir), "01"]) == 0
    assert "seed       = 0  # random seed" in capsys.readouterr().out
    assert main_run(["run", "--dry-run", "--notebooks-dir", str(nbdir), "--out", str(tmp_path / "o"),
                     "-p", "seed=0,1"]) == 0
    cap = capsys.readouterr()
    assert "[run] 01_ok__seed=1" in cap.out and "[run] 03_sleep__seed=0" in cap.out and "6 run(s)" in cap.out
    assert cap.err == ""
    for argv in (["--profile", "medium"], ["--jobs", "0"], ["-p", "profile=full"], ["99"], ["-p", "nope=1"]):
        with pytest.raises(SystemExit) as exc:
            main_run([*argv, "--notebooks-dir", str(nbdir), "--dry-run"])
        assert exc.value.code == 2
    capsys.readouterr()


def test_profile_smoke_is_accepted(nbdir, tmp_path, monkeypatch, capsys):
    """`--profile` takes every profile of jmlkit.profiles, smoke included (planned only, nothing executed)."""
    assert PROFILES == PROFILE_NAMES == ("smoke", "quick", "full", "results")
    runs = plan_runs([nbdir / "01_ok.ipynb"], {"seed": [3]}, profile="smoke", out_dir=tmp_path / "o")
    assert [(r.name, r.parameters) for r in runs] == [("01_ok__seed=3", {"profile": "smoke", "seed": 3})]
    monkeypatch.chdir(tmp_path)
    assert main_run(["01", "--profile", "smoke", "--dry-run", "--notebooks-dir", str(nbdir)]) == 0
    out = capsys.readouterr().out
    assert '[run] 01_ok  {"profile": "smoke"}' in out and f"-> {Path('runs') / 'smoke'}" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    text = " ".join(build_parser().format_help().split())
    assert "{smoke,quick,full,results}" in text and "smoke, quick, full, results" in text


def test_run_notebooks_checks_its_arguments():
    with pytest.raises(ValueError, match="`jobs`"):
        run_notebooks([], jobs=0)
    with pytest.raises(TypeError, match="`jobs`"):
        run_notebooks([], jobs="2")
    with pytest.raises(ValueError, match="`timeout`"):
        run_notebooks([], timeout=0)
    assert run_notebooks([], jobs=1, timeout=None, progress=False) == []


# --------------------------------------------------------------------------- executions
@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """01_ok and 02_fail executed once, in parallel (2 kernel executions shared by several tests)."""
    base = tmp_path_factory.mktemp("runner")
    nbdir = base / "nbs"
    make_notebook(nbdir / "01_ok.ipynb", OK_SOURCE)
    make_notebook(nbdir / "02_fail.ipynb", FAIL_SOURCE)
    out, figs, barrier = base / "out", base / "figs", base / "barrier"
    barrier.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPLBACKEND", "Agg")  # as under `make`: kernels must still get the inline backend
        mp.setenv("JMLKIT_TEST_BARRIER", str(barrier))  # kernels inherit it: both notebooks wait for each other
        rc = main_run(["--notebooks-dir", str(nbdir), "--out", str(out), "--figures", str(figs), "--jobs", "2",
                       "--no-progress", "--timeout", "120"])
    return {"rc": rc, "nbdir": nbdir, "out": out, "figs": figs, "barrier": barrier}


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_jobs_run_notebooks_side_by_side(first_run):
    # Both notebooks got past the barrier, which each passes only once the other one is running too:
    # with --jobs 2 the two kernels were alive at the same time (one after the other, 01_ok would fail).
    assert sorted(os.listdir(first_run["barrier"])) == ["01_ok", "02_fail"]
    rows = {r["run"]: r for r in read_summary(first_run["out"] / "summary.csv")}
    assert rows["01_ok"]["status"] == "ok"
    assert rows["02_fail"]["error"] == "ValueError: boom from the notebook"  # past the barrier, to its own error


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_failure_is_isolated(first_run):
    out = first_run["out"]
    assert first_run["rc"] == 1
    rows = {r["run"]: r for r in read_summary(out / "summary.csv")}
    assert set(rows) == {"01_ok", "02_fail"}
    assert rows["01_ok"]["status"] == "ok" and rows["01_ok"]["error"] == ""
    assert rows["02_fail"]["status"] == "failed"
    assert rows["02_fail"]["error"] == "ValueError: boom from the notebook"
    # The failed notebook is kept, with the traceback in its outputs and the later cell not run.
    failed = nbformat.read(out / "02_fail" / "02_fail.ipynb", as_version=4)
    errors = [o for c in failed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert errors and errors[0].ename == "ValueError" and any("boom" in line for line in errors[0].traceback)
    assert json.loads((out / "02_fail" / "run.json").read_text())["status"] == "failed"
    record = json.loads((out / "01_ok" / "run.json").read_text())
    assert record["status"] == "ok" and record["parameters"] == {"profile": "quick"}
    assert record["notebook_sha256"] and record["duration_s"] > 0


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_summary_columns_metrics_and_figures(first_run):
    out, figs = first_run["out"], first_run["figs"]
    rows = {r["run"]: r for r in read_summary(out / "summary.csv")}
    assert list(rows["01_ok"]) == ["run", "status", "duration_s", "error"]  # no grid: no parameter column
    assert float(rows["01_ok"]["duration_s"]) > 0
    metrics = read_metrics_table(out)
    assert {m: metrics["01_ok"][m] for m in ("score", "n", "profile_len")} == {"score": "0.5", "n": "3",
                                                                               "profile_len": "5"}  # injected profile
    assert metrics["01_ok"]["cwd"] == "nbs"  # kernels run in the notebook's folder, as in Jupyter
    assert "inline" in metrics["01_ok"]["backend"]  # even under MPLBACKEND=Agg: executed notebooks keep their figures
    assert "02_fail" not in metrics  # a failed run has no metrics
    assert sorted(p.name for p in figs.iterdir()) == ["01_ok__fig.png", "01_ok__sub__curve.svg"]
    assert (out / "02_fail" / "partial.png").exists()  # kept in its run folder, not collected
    executed = nbformat.read(out / "01_ok" / "01_ok.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and str(out / "01_ok") in injected[0].source


def _refuse_to_execute(*args, **kwargs):
    raise AssertionError("a cached run was executed again")


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_resume_skips_finished_runs_and_reruns_changed_ones(first_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(first_run["out"], out)
    nbdir = first_run["nbdir"]
    common = ["--notebooks-dir", str(nbdir), "--out", str(out), "--figures", str(tmp_path / "figs"), "--no-progress"]
    # Decisions, without kernels: done -> cached; failed, new parameters or --force -> run.
    main_run([*common, "--dry-run"])
    main_run([*common, "--dry-run", "--force", "01"])
    main_run([*common, "--dry-run", "01", "-p", "seed=0,1"])
    lines = capsys.readouterr().out
    assert "[cached] 01_ok " in lines and "[run] 02_fail " in lines and "[run] 01_ok " in lines
    assert "[run] 01_ok__seed=0 " in lines and "[run] 01_ok__seed=1 " in lines
    before = (out / "01_ok" / "run.json").read_text()
    executed = (out / "01_ok" / "01_ok.ipynb").stat().st_mtime_ns
    # A real rerun of the finished notebook executes nothing (a papermill that refuses to run proves it)...
    with monkeypatch.context() as mp:
        mp.setattr("papermill.execute_notebook", _refuse_to_execute)
        assert main_run([*common, "01"]) == 0
    assert (out / "01_ok" / "run.json").read_text() == before
    assert (out / "01_ok" / "01_ok.ipynb").stat().st_mtime_ns == executed
    assert "[cached] 01_ok" in capsys.readouterr().out
    rows = read_summary(out / "summary.csv")  # the failed run of the earlier batch keeps its row
    assert [(r["run"], r["status"]) for r in rows] == [("01_ok", "ok"), ("02_fail", "failed")]
    assert read_metrics_table(out)["01_ok"]["score"] == "0.5"
    # ... while a changed parameter is a new run.
    assert main_run([*common, "01", "-p", "seed=1"]) == 0
    assert "[ok] 01_ok__seed=1" in capsys.readouterr().out
    rows = read_summary(out / "summary.csv")
    assert [(r["run"], r["status"], r["seed"]) for r in rows] == [
        ("01_ok", "ok", ""), ("01_ok__seed=1", "ok", "1"), ("02_fail", "failed", "")]
    assert read_metrics_table(out)["01_ok__seed=1"]["score"] == "1.5"
    assert json.loads((out / "01_ok__seed=1" / "run.json").read_text())["parameters"] == {"profile": "quick",
                                                                                          "seed": 1}
    # Editing the notebook invalidates its finished runs.
    nb = nbformat.read(nbdir / "01_ok.ipynb", as_version=4)
    nb.cells[0].source += " (edited)"
    edited = tmp_path / "nbs" / "01_ok.ipynb"
    edited.parent.mkdir()
    nbformat.write(nb, edited)
    capsys.readouterr()
    main_run(["--notebooks-dir", str(edited.parent), "--out", str(out), "--dry-run"])
    assert "[run] 01_ok " in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_timeout_fails_the_run_and_keeps_the_notebook(nbdir, tmp_path):
    rc = main_run(["03", "--notebooks-dir", str(nbdir), "--out", str(tmp_path / "out"), "--figures",
                   str(tmp_path / "figs"), "--timeout", "8", "--no-progress"])
    assert rc == 1
    (row,) = read_summary(tmp_path / "out" / "summary.csv")
    assert row["status"] == "failed" and row["error"].startswith("TimeoutError")
    assert json.loads((tmp_path / "out" / "03_sleep" / "run.json").read_text())["status"] == "failed"
    executed = nbformat.read(tmp_path / "out" / "03_sleep" / "03_sleep.ipynb", as_version=4)
    # The run was stopped, not finished: the cell after the 120 s sleep never ran.
    (after,) = [c for c in executed.cells if c.cell_type == "code" and c.source == "after_error = True"]
    assert after.execution_count is None and not after.get("outputs")
    if (tmp_path / "out" / "03_sleep" / "started").exists():  # else the kernel was still starting at 8 s
        assert any(o.get("ename") == "KeyboardInterrupt" for c in executed.cells for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_writes_the_summary_of_what_finished(nbdir, tmp_path):
    out = tmp_path / "out"
    code = "import sys; from jmlkit.runner import main_run; sys.exit(main_run(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "03", "--notebooks-dir", str(nbdir), "--out", str(out), "--figures",
         str(tmp_path / "figs"), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        guard = time.monotonic() + 300  # against a hang only: a kernel starts far sooner, even on a busy machine
        while not (out / "03_sleep" / "started").exists():
            assert proc.poll() is None and time.monotonic() < guard, "the notebook never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=300)  # guard against a hang, as above
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    (row,) = read_summary(out / "summary.csv")
    assert row["status"] == "interrupted"
    assert json.loads((out / "03_sleep" / "run.json").read_text())["status"] == "interrupted"
    assert (out / "03_sleep" / "03_sleep.ipynb").exists()


# --------------------------------------------------------------------------- repository notebooks
REPO_NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name) for p in REPO_NOTEBOOKS]
    or [pytest.param(None, marks=pytest.mark.skip(reason="no notebooks in notebooks/ yet"))],
)
def test_repository_notebooks_are_clean(path):
    assert check_notebook_clean(path) == []


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_rerun_of_a_changed_notebook_keeps_the_training_cache(tmp_path):
    """A changed notebook reruns in a fresh folder, but its runs/ (training runs cached by configuration hash) stays:
    wiping it once cost 2.5 hours of full-profile training."""
    nbdir, out = tmp_path / "nbs", tmp_path / "out"
    make_notebook(nbdir / "01_ok.ipynb", "x = 1")
    args = ["--notebooks-dir", str(nbdir), "--out", str(out), "--figures", str(tmp_path / "figs"), "--no-progress"]
    assert main_run(args) == 0
    (out / "01_ok" / "runs" / "ce__seed0").mkdir(parents=True)
    (out / "01_ok" / "runs" / "ce__seed0" / "metrics.json").write_text("{}")
    (out / "01_ok" / "stale.png").write_bytes(b"")
    make_notebook(nbdir / "01_ok.ipynb", "x = 2")  # changed: the runner reruns it
    assert main_run(args) == 0
    assert (out / "01_ok" / "runs" / "ce__seed0" / "metrics.json").read_text() == "{}"
    assert not (out / "01_ok" / "stale.png").exists()
    assert not list(tmp_path.glob("out/.*"))  # nothing left aside
