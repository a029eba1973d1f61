"""Tests of the runner's dependency graph, progress, kernel transport, summaries and reproducible outputs.

Kernel-free tests cover requirements (metadata, cycles, unknown names, grids), reuse decisions and the
two tables. Kernel tests use tiny notebooks in tmp_path: a graph batch of five (02-05 and 06, which
requires them; shared by a module fixture), a failed requirement, the kernel's stderr, and a notebook
executed twice for byte-identical outputs.

As in test_runner.py, no test asserts on wall-clock durations: the order is checked from time stamps
the notebooks write (06 must start after the others finished), parallel execution by a barrier the
two first notebooks pass only when both run, and "nothing was executed" by a recording papermill.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from fake_notebooks import make_notebook

from jmlkit.runner import (
    Run,
    RunResult,
    execution_order,
    main_run,
    notebook_requires,
    plan_runs,
    predict_reuse,
    run_notebooks,
    with_requirements,
    write_metrics_table,
    write_summary,
)


# Writes <stamps>/<run>.start when the notebook starts and <run>.finish when it ends (time.time(): one clock for
# all kernels of the machine), under JMLKIT_TEST_STAMPS.
STAMP = """\
import json, os, time
def stamp(kind):
    folder = os.environ.get("JMLKIT_TEST_STAMPS")
    if folder:
        with open(os.path.join(folder, f"{os.path.basename(output_dir)}.{kind}"), "w") as fh:
            fh.write(repr(time.time()))
stamp("start")
"""
# Under JMLKIT_TEST_PAIR, the notebooks with this cell wait for each other: they pass only if both run at once.
PAIR = """\
_pair = os.environ.get("JMLKIT_TEST_PAIR")
if _pair:
    open(os.path.join(_pair, os.path.basename(output_dir)), "w").close()
    _guard = time.monotonic() + 100  # against a hang only: far more than a kernel takes to start
    while len(os.listdir(_pair)) < 2:
        if time.monotonic() > _guard:
            raise RuntimeError("the other notebook never ran at the same time as this one")
        time.sleep(0.05)
"""
SLOW_CELL = "time.sleep(1.5)  # long enough for the progress line to show this cell"
FINISH = """\
import json, os
with open(os.path.join(output_dir, "metrics.json"), "w") as fh:
    json.dump({"value": len(os.path.basename(output_dir)) + seed, "flag": True}, fh)
stamp("finish")
"""
# 06 reads what its requirements wrote next to its own run folder, as notebook 06 of the repository does.
READ_REQUIRED = """\
total = 0
for name in ("02_a", "03_b", "04_c", "05_d"):
    with open(os.path.join(os.path.dirname(output_dir), name, "metrics.json")) as fh:
        total += json.load(fh)["value"]
with open(os.path.join(output_dir, "metrics.json"), "w") as fh:
    json.dump({"required_total": total}, fh)
stamp("finish")
"""


def graph_notebooks(folder: Path) -> Path:
    make_notebook(folder / "02_a.ipynb", STAMP + PAIR, SLOW_CELL, FINISH)
    make_notebook(folder / "03_b.ipynb", STAMP + PAIR, SLOW_CELL, FINISH)
    make_notebook(folder / "04_c.ipynb", STAMP, SLOW_CELL, FINISH)
    make_notebook(folder / "05_d.ipynb", STAMP, FINISH)
    make_notebook(folder / "06_e.ipynb", STAMP, SLOW_CELL, READ_REQUIRED, requires=["02_a", "03_b", "04_c", "05_d"])
    return folder


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.to_dict("records")


def write_record(folder: Path, status: str, *, run_id: str | None = None, requires: dict | None = None,
                 metrics: dict | None = None, **params) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({
        "run": folder.name, "status": status, "duration_s": 2.5, "parameters": {"profile": "quick", **params},
        "error": None if status == "ok" else "ValueError: x", "run_id": run_id, "requires": requires or {}}))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))


# --------------------------------------------------------------------------- requirements, without kernels
def test_requirements_are_added_before_their_dependents(tmp_path):
    d = tmp_path / "nbs"
    make_notebook(d / "01_x.ipynb", "pass")
    make_notebook(d / "02_y.ipynb", "pass", requires=["01_x"])
    make_notebook(d / "03_z.ipynb", "pass", requires=["02_y"])
    assert notebook_requires(d / "03_z.ipynb") == ["02_y"] and notebook_requires(d / "01_x.ipynb") == []
    order = with_requirements([d / "03_z.ipynb"])
    assert [(p.name, req, sel) for p, req, sel in order] == [
        ("01_x.ipynb", [], False), ("02_y.ipynb", ["01_x"], False), ("03_z.ipynb", ["02_y"], True)]
    runs = plan_runs([d / "03_z.ipynb", d / "01_x.ipynb"], out_dir=tmp_path / "o")
    assert [(r.name, r.requires, r.selected) for r in runs] == [
        ("01_x", (), True), ("02_y", ("01_x",), False), ("03_z", ("02_y",), True)]


def test_cycles_and_unknown_requirements_fail_before_anything_runs(tmp_path, monkeypatch, capsys):
    d = tmp_path / "nbs"
    make_notebook(d / "01_x.ipynb", "pass", requires=["02_y"])
    make_notebook(d / "02_y.ipynb", "pass", requires=["01_x"])
    make_notebook(d / "03_z.ipynb", "pass", requires=["09_missing"])
    make_notebook(d / "04_w.ipynb", "pass", requires=["04_w"])
    make_notebook(d / "05_v.ipynb", "pass", requires="01_x")
    with pytest.raises(ValueError, match=r"cycle 01_x -> 02_y -> 01_x"):
        plan_runs([d / "01_x.ipynb"], out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match=r"cycle 04_w -> 04_w"):
        plan_runs([d / "04_w.ipynb"], out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match=r"03_z.ipynb requires .*'09_missing'"):
        plan_runs([d / "03_z.ipynb"], out_dir=tmp_path / "o")
    with pytest.raises(TypeError, match=r"05_v.ipynb: .*list of notebook stems.*'01_x'"):
        plan_runs([d / "05_v.ipynb"], out_dir=tmp_path / "o")
    monkeypatch.setattr("papermill.execute_notebook", _refuse_to_execute)
    for name in ("01", "03", "05"):
        with pytest.raises(SystemExit) as exc:
            main_run([name, "--notebooks-dir", str(d), "--out", str(tmp_path / "o"), "--no-progress"])
        assert exc.value.code == 2
    assert "cycle" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing ran, nothing was written
    # Hand-made runs are checked by run_notebooks too.
    a = Run("a", d / "01_x.ipynb", {}, tmp_path / "o" / "a", requires=("b",))
    b = Run("b", d / "02_y.ipynb", {}, tmp_path / "o" / "b", requires=("a",))
    with pytest.raises(ValueError, match="cycle among"):
        run_notebooks([a, b], progress=False)
    with pytest.raises(ValueError, match=r"requires to be in the batch.*\['b'\] missing"):
        execution_order([a])


def test_grid_runs_require_every_run_of_the_required_notebooks(tmp_path):
    """Notebook 06 reads every finished run of 02-05 in the batch folder: each 06 run waits for all of them."""
    d = tmp_path / "nbs"
    make_notebook(d / "02_seeded.ipynb", "pass")
    make_notebook(d / "03_fixed.ipynb", "pass", params='profile = "quick"\noutput_dir = "."\n')
    make_notebook(d / "06_dep.ipynb", "pass", requires=["02_seeded", "03_fixed"])
    runs = plan_runs([d / "06_dep.ipynb"], {"seed": [0, 1]}, out_dir=tmp_path / "o")
    assert [(r.name, r.requires) for r in runs] == [
        ("02_seeded__seed=0", ()), ("02_seeded__seed=1", ()), ("03_fixed", ()),
        ("06_dep__seed=0", ("02_seeded__seed=0", "02_seeded__seed=1", "03_fixed")),
        ("06_dep__seed=1", ("02_seeded__seed=0", "02_seeded__seed=1", "03_fixed"))]
    assert [r.selected for r in runs] == [False, False, False, True, True]


def test_reuse_needs_the_requirements_it_read(tmp_path):
    d = tmp_path / "nbs"
    make_notebook(d / "02_a.ipynb", "pass")
    make_notebook(d / "06_b.ipynb", "pass", requires=["02_a"])
    out = tmp_path / "out"
    runs = plan_runs([d / "06_b.ipynb"], out_dir=out)
    write_record(out / "02_a", "ok", run_id="first")
    write_record(out / "06_b", "ok", run_id="dep", requires={"02_a": "first"})
    for run in runs:  # a finished run needs its executed notebook and the notebook's hash
        nbformat.write(nbformat.read(run.notebook, as_version=4), run.executed_notebook)
        record = json.loads((run.run_dir / "run.json").read_text())
        record["notebook_sha256"] = hashlib.sha256(run.notebook.read_bytes()).hexdigest()
        (run.run_dir / "run.json").write_text(json.dumps(record))
    assert {k: v is not None for k, v in predict_reuse(runs).items()} == {"02_a": True, "06_b": True}
    # --force reruns the named notebook only; its requirement is reused.
    assert {k: v is not None for k, v in predict_reuse(runs, force=True).items()} == {"02_a": True, "06_b": False}
    # 02_a executed again since 06_b ran (another run_id): 06_b is stale.
    record = json.loads((out / "02_a" / "run.json").read_text())
    (out / "02_a" / "run.json").write_text(json.dumps({**record, "run_id": "second"}))
    assert {k: v is not None for k, v in predict_reuse(runs).items()} == {"02_a": True, "06_b": False}


# --------------------------------------------------------------------------- summary and metrics, without kernels
def test_summary_keeps_the_other_runs_after_a_subset_rerun(tmp_path):
    out = tmp_path / "out"
    for i, name in enumerate(["01_a", "02_b", "03_c", "04_d", "05_e", "06_f"]):
        write_record(out / name, "ok" if i != 3 else "failed", metrics={"m": i})
    (out / ".02_b.runs-kept").mkdir()  # hidden folders and folders without run.json are not runs
    (out / "notes").mkdir()
    rerun = Run("01_a", tmp_path / "01_a.ipynb", {"profile": "quick"}, out / "01_a")
    rows = read_csv_rows(write_summary(out, [RunResult(rerun, "failed", duration_s=1.0, error="KeyError: 'k'")]))
    assert [r["run"] for r in rows] == ["01_a", "02_b", "03_c", "04_d", "05_e", "06_f"]
    assert rows[0] == {"run": "01_a", "status": "failed", "duration_s": "1.0", "error": "KeyError: 'k'"}
    assert rows[3]["status"] == "failed" and rows[5] == {"run": "06_f", "status": "ok", "duration_s": "2.5",
                                                         "error": ""}
    # A run of this batch that never started has no run.json: its row comes from the results.
    pending = Run("07_g", tmp_path / "07_g.ipynb", {"profile": "quick"}, out / "07_g")
    rows = read_csv_rows(write_summary(out, [RunResult(pending, "pending")]))
    assert [(r["run"], r["status"]) for r in rows][-1] == ("07_g", "pending") and len(rows) == 7
    with pytest.raises(TypeError, match="`out_dir`"):
        write_summary(3)


def test_metrics_table_is_long_sorted_and_read_by_pandas(tmp_path):
    out = tmp_path / "out"
    write_record(out / "02_b__seed=1", "ok", seed=1, metrics={"mIoU_D": 0.625, "ECE_D": None, "n": 3, "best": True,
                                                              "nested": {"no": 1}})
    write_record(out / "01_a", "ok", metrics={"mIoU_D": 0.1 + 0.2, "train_time_s": 3.2, "curves_wall_s": 1.0})
    write_record(out / "03_c", "failed", metrics={"mIoU_D": 0.9})  # a failed run's metrics are not results
    path = write_metrics_table(out)
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["run", "metric", "value"]
    assert list(zip(frame["run"], frame["metric"])) == [
        ("01_a", "mIoU_D"), ("02_b__seed=1", "ECE_D"), ("02_b__seed=1", "best"), ("02_b__seed=1", "mIoU_D"),
        ("02_b__seed=1", "n")]
    assert frame["value"].dtype == float and frame["value"].iloc[0] == 0.1 + 0.2  # round-trip exact
    assert frame["value"].isna().tolist() == [False, True, False, False, False] and frame["value"].iloc[2] == 1
    first = path.read_bytes()
    assert write_metrics_table(out).read_bytes() == first  # same metrics, same bytes
    rows = read_csv_rows(write_summary(out))  # seed differs between runs: it gets a column
    assert [(r["run"], r["seed"]) for r in rows] == [("01_a", ""), ("02_b__seed=1", "1"), ("03_c", "")]
    assert not list(out.glob(".*.tmp"))  # both written atomically


# --------------------------------------------------------------------------- executions
def _refuse_to_execute(*args, **kwargs):
    raise AssertionError("papermill was asked to execute a notebook")


@pytest.fixture(scope="module")
def graph_batch(tmp_path_factory):
    """02_a ... 05_d and 06_e (which requires them), executed once with --jobs 2 and --progress."""
    base = tmp_path_factory.mktemp("graph")
    nbdir = graph_notebooks(base / "nbs")
    out, stamps, pair = base / "out", base / "stamps", base / "pair"
    stamps.mkdir()
    pair.mkdir()
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JMLKIT_TEST_STAMPS", str(stamps))
        mp.setenv("JMLKIT_TEST_PAIR", str(pair))
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            rc = main_run(["--notebooks-dir", str(nbdir), "--out", str(out), "--figures", str(base / "figs"),
                           "--jobs", "2", "--progress", "--timeout", "300"])
    return {"rc": rc, "nbdir": nbdir, "out": out, "stamps": stamps, "pair": pair, "stdout": stdout.getvalue(),
            "stderr": stderr.getvalue()}


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_dependent_starts_after_its_requirements_with_jobs_2(graph_batch):
    assert graph_batch["rc"] == 0, graph_batch["stdout"]
    stamp = {p.name: float(p.read_text()) for p in graph_batch["stamps"].iterdir()}
    required = ["02_a", "03_b", "04_c", "05_d"]
    assert sorted(stamp) == sorted(f"{n}.{k}" for n in [*required, "06_e"] for k in ("start", "finish"))
    assert stamp["06_e.start"] >= max(stamp[f"{n}.finish"] for n in required)
    # Independent notebooks still ran side by side: 02_a and 03_b each waited until the other one was running.
    assert sorted(os.listdir(graph_batch["pair"])) == ["02_a", "03_b"]
    # 06 read the four finished runs, whatever the timing.
    metrics = {(r["run"], r["metric"]): float(r["value"]) for r in read_csv_rows(graph_batch["out"] / "metrics.csv")}
    assert metrics[("06_e", "required_total")] == sum(metrics[(n, "value")] for n in required) == 16
    rows = read_csv_rows(graph_batch["out"] / "summary.csv")
    assert [(r["run"], r["status"]) for r in rows] == [(n, "ok") for n in [*required, "06_e"]]


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_progress_shows_each_running_notebook_cell_and_time(graph_batch):
    err = graph_batch["stderr"]
    assert re.search(r"notebooks: 100%.*\b5/5\b", err)  # the bar over the runs
    # A line per running notebook: its code cell k of n (the parameters cells included) and its time so far.
    shown = re.findall(r"(0[2-6]_[a-e]): cell (\d)/(\d), (\d\d:\d\d)", err)
    names = {name for name, *_ in shown}
    assert names >= {"02_a", "03_b", "04_c", "06_e"}  # each has a 1.5 s cell: the display, twice a second, saw it
    assert ("02_a", "4", "5") in {(name, k, n) for name, k, n, _ in shown}  # the slow cell of 02_a
    assert all(n == ("4" if name == "05_d" else "5") for name, _, n, _ in shown)
    assert "[ok] 06_e" in graph_batch["stdout"]  # finished runs still get their line


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_running_06_alone_reuses_its_finished_requirements(graph_batch, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(graph_batch["out"], out)
    common = ["--notebooks-dir", str(graph_batch["nbdir"]), "--out", str(out), "--figures", str(tmp_path / "f"),
              "--no-progress"]
    assert main_run(["06", *common, "--dry-run", "--force"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:5]] == [
        ["[cached]", "02_a"], ["[cached]", "03_b"], ["[cached]", "04_c"], ["[cached]", "05_d"], ["[run]", "06_e"]]
    assert lines[4].endswith("after 02_a, 03_b, 04_c, 05_d")
    executed = []

    def recording(input_path, *args, **kwargs):
        executed.append(Path(input_path).name)
        return real(input_path, *args, **kwargs)

    import papermill

    real = papermill.execute_notebook
    monkeypatch.setattr("papermill.execute_notebook", recording)
    assert main_run(["06", *common, "--force"]) == 0
    assert executed == ["06_e.ipynb"]
    printed = capsys.readouterr().out
    assert all(f"[cached] {n}" in printed for n in ("02_a", "03_b", "04_c", "05_d")) and "[ok] 06_e" in printed
    record = json.loads((out / "06_e" / "run.json").read_text())
    assert record["requires"] == {n: json.loads((out / n / "run.json").read_text())["run_id"]
                                  for n in ("02_a", "03_b", "04_c", "05_d")}
    assert len(read_csv_rows(out / "summary.csv")) == 5  # the rows of the reused runs stay


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_failed_requirement_skips_the_dependent_and_keeps_the_others(tmp_path, capsys):
    d = tmp_path / "nbs"
    make_notebook(d / "02_bad.ipynb", "raise ValueError('boom in a requirement')")
    make_notebook(d / "03_good.ipynb", FINISH.replace('stamp("finish")', ""))
    make_notebook(d / "04_next.ipynb", FINISH.replace('stamp("finish")', ""), requires=["03_good"])
    make_notebook(d / "06_dep.ipynb", "raise AssertionError('a skipped notebook was executed')",
                  requires=["02_bad", "03_good"])
    make_notebook(d / "07_after.ipynb", "pass", requires=["06_dep"])
    out = tmp_path / "out"
    rc = main_run(["--notebooks-dir", str(d), "--out", str(out), "--figures", str(tmp_path / "f"), "--jobs", "2",
                   "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 1
    rows = {r["run"]: r for r in read_csv_rows(out / "summary.csv")}
    assert {n: r["status"] for n, r in rows.items()} == {"02_bad": "failed", "03_good": "ok", "04_next": "ok",
                                                        "06_dep": "skipped", "07_after": "skipped"}
    assert rows["06_dep"]["error"] == "not run: its requirement 02_bad failed"
    assert rows["07_after"]["error"] == "not run: its requirement 06_dep skipped"
    assert "SKIPPED 06_dep: not run: its requirement 02_bad failed" in printed
    assert not (out / "06_dep" / "06_dep.ipynb").exists()
    assert json.loads((out / "06_dep" / "run.json").read_text())["status"] == "skipped"
    metrics = read_csv_rows(out / "metrics.csv")
    assert {r["run"] for r in metrics} == {"03_good", "04_next"}  # the others' results are kept


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_kernel_tcp_warning_is_gone_and_errors_still_show(tmp_path, capfd):
    d = tmp_path / "nbs"
    make_notebook(d / "01_err.ipynb", "import os\nos.write(2, b'KERNEL STDERR STILL SHOWS\\n')",
                  "raise ValueError('a real error')")
    rc = main_run(["--notebooks-dir", str(d), "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "f"),
                   "--no-progress"])
    cap = capfd.readouterr()
    both = cap.out + cap.err
    assert rc == 1
    assert "without encryption" not in both and "running over TCP" not in both
    assert "KERNEL STDERR STILL SHOWS" in cap.err  # the kernel's own stderr reaches ours
    assert "[failed] 01_err" in cap.out and "ValueError: a real error" in cap.out


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_two_batches_give_identical_figures_and_metrics(tmp_path):
    d = tmp_path / "nbs"
    make_notebook(d / "01_fig.ipynb", """\
import numpy as np
import matplotlib.pyplot as plt
from jmlkit.io import save_figure, write_metrics
rng = np.random.default_rng(seed)
fig, axes = plt.subplots(1, 2, figsize=(4, 2))
axes[0].scatter(*rng.random((2, 20)), marker="^", label="pts")
axes[0].bar([0, 1], [1, 2], hatch="//")
axes[0].legend()
axes[1].imshow(rng.random((8, 8)))
axes[1].set_title("image")
save_figure(fig, output_dir, "figure")
write_metrics(output_dir, {"mean": float(rng.random(100).mean()), "n": 100})
""")
    for k in range(2):
        args = ["--notebooks-dir", str(d), "--out", str(tmp_path / f"out{k}"), "--figures", str(tmp_path / f"f{k}"),
                "--no-progress"]
        assert main_run(args) == 0
    for name in ("01_fig__figure.png", "01_fig__figure.svg"):
        assert (tmp_path / "f0" / name).read_bytes() == (tmp_path / "f1" / name).read_bytes(), name
    svg = (tmp_path / "f0" / "01_fig__figure.svg").read_text()
    assert "<dc:date>" not in svg
    assert (tmp_path / "out0" / "metrics.csv").read_bytes() == (tmp_path / "out1" / "metrics.csv").read_bytes()
