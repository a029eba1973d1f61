"""Faults of ``jmlkit run``: nothing lost, nothing mixed.

* Bad input (output paths that are files or cannot be written, ``-p`` names no notebook declares, another
  batch in the same folder) is one line and exit code 2 before anything runs, and the previous results in
  ``OUT`` stay byte-identical (kernel-free, table-driven).
* A notebook that is not JSON or not a notebook fails alone, named, and does not block the others or ``--list``.
* A rerun keeps the previous run folder aside until it finishes: Ctrl-C or SIGTERM during a ``--force`` rerun
  gives the old folder back; after ``kill -9`` the next batch (or summary) recovers it (state table, kernel-free).
* SIGTERM is handled as Ctrl-C (exit 130, summary written, no run left ``running``); ``kill -9`` of the runner
  kills its kernels, and the rerun gives the same tables as an uninterrupted batch.

Kernel tests drive ``python -m jmlkit run`` in a subprocess on tiny notebooks. A notebook named in
``JMLKIT_TEST_HOLD`` writes ``<markers>/<run>.started`` (its kernel's pid) and then waits for
``<markers>/release``: the tests signal the runner once a notebook is really executing, without fixed sleeps.
Waiting loops have generous guards against hangs only; no test asserts on wall-clock time.
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

import fake_notebooks
import pytest

from jmlkit.runner import main_run, plan_runs, write_summary
from jmlkit.runner.kernels import die_with_parent
from jmlkit.runner.outdir import LOCK_FILE, OutDirBusy, hold_out_dir, previous_path, recover, set_aside

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and locks"),
              pytest.mark.xdist_group("faults")]  # one worker builds the reference batch

PARAMS = 'profile = "quick"\nseed = 0  # random seed\noutput_dir = "."\n'
BODY = """\
import json, os, time
name = os.path.basename(output_dir)
markers = os.environ.get("JMLKIT_TEST_MARKERS")
if markers and name in os.environ.get("JMLKIT_TEST_HOLD", "").split(","):
    os.makedirs(os.path.join(output_dir, "runs", "new__seed0"), exist_ok=True)  # a training run finished meanwhile
    with open(os.path.join(output_dir, "runs", "new__seed0", "metrics.json"), "w") as fh:
        fh.write("{}")
    with open(os.path.join(markers, name + ".started"), "w") as fh:
        fh.write(str(os.getpid()))
    guard = time.monotonic() + 120  # against a hang only
    while not os.path.exists(os.path.join(markers, "release")) and time.monotonic() < guard:
        time.sleep(0.05)
    open(os.path.join(markers, name + ".late"), "w").close()
with open(os.path.join(output_dir, "fig.png"), "wb") as fh:
    fh.write(b"\\x89PNG\\r\\n\\x1a\\n" + name.encode())
with open(os.path.join(output_dir, "metrics.json"), "w") as fh:
    json.dump({"score": seed + 0.5, "name_len": len(name)}, fh)
"""
GUARD_S = 180  # against hangs only: a kernel starts far sooner, even on a busy machine


def make_notebook(path: Path, body: str = BODY, *, requires: list[str] | None = None, params: str = PARAMS) -> Path:
    return fake_notebooks.make_notebook(path, body, requires=requires, params=params, title=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def table(path: Path, drop: tuple[str, ...] = ("duration_s",)) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the system
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_for(predicate, proc: subprocess.Popen | None = None, what: str = "the notebook to start") -> None:
    guard = time.monotonic() + GUARD_S
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the runner exited ({proc.returncode}) before {what}: {proc.stdout.read()}")
        assert time.monotonic() < guard, f"timed out waiting for {what}"
        time.sleep(0.05)


class Batch:
    """``python -m jmlkit run`` in a subprocess over the notebooks of ``nbdir``, into ``out``."""

    def __init__(self, base: Path):
        self.base, self.nbdir, self.out, self.figs = base, base / "nbs", base / "out", base / "figs"
        self.markers = base / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)

    def start(self, *args: str, hold: str = "") -> subprocess.Popen:
        env = {**os.environ, "JMLKIT_TEST_MARKERS": str(self.markers), "JMLKIT_TEST_HOLD": hold,
               "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "jmlkit", "run", *args, "--notebooks-dir", str(self.nbdir), "--out",
               str(self.out), "--figures", str(self.figs), "--no-progress"]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run(self, *args: str) -> tuple[int, str]:
        proc = self.start(*args)
        output, _ = proc.communicate(timeout=GUARD_S)
        return proc.returncode, output

    def started(self, name: str) -> Path:
        return self.markers / f"{name}.started"


def copy_batch(source: Batch, base: Path) -> Batch:
    shutil.copytree(source.base, base, ignore=shutil.ignore_patterns("markers"))
    return Batch(base)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Batch:
    """An uninterrupted batch of 01_a and 02_b (two kernels), the previous results of the other tests."""
    batch = Batch(tmp_path_factory.mktemp("faults") / "ref")
    make_notebook(batch.nbdir / "01_a.ipynb")
    make_notebook(batch.nbdir / "02_b.ipynb")
    rc, output = batch.run()
    assert rc == 0, output
    return batch


# --------------------------------------------------------------------------- bad input: exit 2, nothing touched
def _unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root writes into read-only folders: the system's answer is simulated
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == folder
                            else access(path, mode, **kw))
    return str(folder / "out")


CASES = {  # id: (arguments from tmp_path and monkeypatch, fragment of the error line)
    "out is a file": (lambda t, m: ["--out", str(t / "a_file")], "argument --out: expected a folder, but"),
    "out inside a file": (lambda t, m: ["--out", str(t / "a_file" / "sub")], "argument --out: expected a folder"),
    "out not writable": (lambda t, m: ["--out", _unwritable(t, m)], "argument --out: expected a folder you can write"),
    "figures is a file": (lambda t, m: ["--figures", str(t / "a_file")], "argument --figures: expected a folder"),
    "results is a file": (lambda t, m: ["--results", str(t / "a_file")], "argument --results: expected a folder"),
    "unknown -p name": (lambda t, m: ["-p", "nosuch=1"],
                        "`-p` name to be a parameter of a selected notebook, but no notebook declares 'nosuch'; "
                        "their parameters: 01_a.ipynb: seed = 0; 02_b.ipynb: seed = 0."),
    "jobs 0": (lambda t, m: ["--jobs", "0"], "argument -j/--jobs: expected a positive int, but got 0"),
    "timeout 0": (lambda t, m: ["--timeout", "0"], "argument --timeout: expected a positive number"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case, reference, tmp_path, capsys, monkeypatch):
    batch = copy_batch(reference, tmp_path / "b")
    (tmp_path / "a_file").write_text("not a folder")
    build, fragment = CASES[case]
    extra = build(tmp_path, monkeypatch)
    before = {folder: snapshot(folder) for folder in (batch.out, batch.figs)}
    common = ["--notebooks-dir", str(batch.nbdir), "--out", str(batch.out), "--figures", str(batch.figs),
              "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        main_run([*common, *extra])  # later options win: extra replaces --out / --figures
    err = capsys.readouterr().err
    assert exc.value.code == 2
    lines = err.strip().splitlines()
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]] and lines[-1].startswith("jmlkit run: error: "), err
    assert fragment in lines[-1] and "Traceback" not in err
    assert {folder: snapshot(folder) for folder in (batch.out, batch.figs)} == before
    assert not (tmp_path / "a_file" / "sub").exists() and (tmp_path / "a_file").read_text() == "not a folder"


def test_debug_raises_usage_errors_with_their_traceback(reference):
    with pytest.raises(ValueError, match="no notebook declares 'nosuch'"):
        main_run(["--notebooks-dir", str(reference.nbdir), "--dry-run", "-p", "nosuch=1", "--debug"])


def test_a_name_declared_by_some_notebooks_is_injected_only_there(tmp_path):
    make_notebook(tmp_path / "01_a.ipynb")
    make_notebook(tmp_path / "02_c.ipynb", "x = 1", params='profile = "quick"\noutput_dir = "."\n')
    runs = plan_runs([tmp_path / "01_a.ipynb", tmp_path / "02_c.ipynb"], {"seed": [1]}, out_dir=tmp_path / "o")
    assert [(r.name, r.parameters) for r in runs] == [("01_a__seed=1", {"profile": "quick", "seed": 1}),
                                                      ("02_c", {"profile": "quick"})]


def test_a_second_batch_in_the_same_folder_is_refused(reference, tmp_path, capsys):
    batch = copy_batch(reference, tmp_path / "b")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jmlkit.runner.outdir import hold_out_dir\n"
         "with hold_out_dir(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)", str(batch.out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutDirBusy, match=f"pid {holder.pid}"):
            with hold_out_dir(batch.out):
                pass
        before = snapshot(batch.out)
        with pytest.raises(SystemExit) as exc:
            main_run(["01", "--force", "--notebooks-dir", str(batch.nbdir), "--out", str(batch.out), "--figures",
                      str(batch.figs), "--no-progress"])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"argument --out: Expected `out_dir` {str(batch.out)!r} to be free" in err
        assert snapshot(batch.out) == before
    finally:
        holder.kill()
        holder.wait()
    with hold_out_dir(batch.out):  # the lock dies with its holder
        pass
    assert not (batch.out / LOCK_FILE).exists()


def test_figures_that_cannot_be_copied_do_not_cost_the_summary(reference, tmp_path, capsys, monkeypatch):
    batch = copy_batch(reference, tmp_path / "b")
    (batch.out / "summary.csv").unlink()

    def broken(results, figures_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("jmlkit.runner.cli.collect_figures", broken)
    rc = main_run(["--notebooks-dir", str(batch.nbdir), "--out", str(batch.out), "--figures", str(batch.figs),
                   "--no-progress"])  # every run cached: no kernel
    out = capsys.readouterr().out
    assert rc == 1 and "FAILED collecting the figures into" in out and "No space left" in out
    assert table(batch.out / "summary.csv") == table(reference.out / "summary.csv")


# --------------------------------------------------------------------------- unreadable notebooks
@pytest.mark.slow
def test_unreadable_notebooks_fail_alone_and_are_named(tmp_path, capsys):
    nbdir, out = tmp_path / "nbs", tmp_path / "out"
    make_notebook(nbdir / "01_a.ipynb")
    (nbdir / "02_broken.ipynb").write_text('{"cells": [')
    (nbdir / "03_notnb.ipynb").write_text('{"a": 1}')
    make_notebook(nbdir / "04_dep.ipynb", requires=["02_broken"])
    # An earlier run of the notebook that is broken now: its folder is left as it is.
    (out / "02_broken").mkdir(parents=True)
    (out / "02_broken" / "run.json").write_text(json.dumps({"status": "ok", "parameters": {"profile": "quick"}}))
    old = snapshot(out / "02_broken")
    assert main_run(["--list", "--notebooks-dir", str(nbdir)]) == 0
    listed = capsys.readouterr().out
    assert "02_broken.ipynb  (not a readable notebook: NotJSONError: " in listed
    assert "03_notnb.ipynb  (not a readable notebook: ValidationError: " in listed
    assert "01_a.ipynb" in listed and "requires: 02_broken" in listed
    rc = main_run(["--notebooks-dir", str(nbdir), "--out", str(out), "--figures", str(tmp_path / "figs"),
                   "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 1
    rows = {r["run"]: r for r in table(out / "summary.csv")}
    assert {k: r["status"] for k, r in rows.items()} == {"01_a": "ok", "02_broken": "failed", "03_notnb": "failed",
                                                          "04_dep": "skipped"}
    assert f"{nbdir / '02_broken.ipynb'} is not a readable notebook: NotJSONError" in rows["02_broken"]["error"]
    assert "03_notnb.ipynb is not a readable notebook: ValidationError" in rows["03_notnb"]["error"]
    assert "02_broken failed" in rows["04_dep"]["error"]
    assert f"FAILED 02_broken: {nbdir / '02_broken.ipynb'}" in printed
    assert json.loads((out / "01_a" / "metrics.json").read_text()) == {"score": 0.5, "name_len": 4}
    assert (tmp_path / "figs" / "01_a__fig.png").is_file()
    assert snapshot(out / "02_broken") == old


# --------------------------------------------------------------------------- reruns keep the previous run
@pytest.mark.parametrize("status, restored", [(None, True), ("running", True), ("interrupted", True),
                                              ("ok", False), ("failed", False), ("skipped", False)])
def test_recover_restores_an_unfinished_rerun_and_drops_a_finished_ones_previous(tmp_path, status, restored):
    out = tmp_path / "out"
    old = out / "01_a"
    (old / "runs" / "ce__seed0").mkdir(parents=True)
    (old / "runs" / "ce__seed0" / "metrics.json").write_text("{}")
    (old / "run.json").write_text(json.dumps({"status": "ok", "marker": "old"}))
    (old / "fig.png").write_bytes(b"old figure")
    before = snapshot(old)
    assert set_aside(old) == previous_path(old) == out / ".01_a.previous"
    assert sorted(p.name for p in old.iterdir()) == ["runs"]  # the training cache went along, nothing else
    (old / "runs" / "new__seed0").mkdir()
    (old / "runs" / "new__seed0" / "metrics.json").write_text("{}")  # finished during the rerun
    (old / "partial.png").write_bytes(b"new")
    if status is not None:
        (old / "run.json").write_text(json.dumps({"status": status}))
    (out / ".02_b.discard").mkdir()  # a restore killed half-way
    with hold_out_dir(out):  # a batch of this process holds the folder: its aside copies are in use
        assert recover(out) == []
    assert recover(out) == (["01_a"] if restored else [])
    assert sorted(p.name for p in out.iterdir()) == ["01_a"]
    if restored:
        assert snapshot(old) == {**before, "runs/new__seed0/metrics.json": b"{}"}
    else:
        assert json.loads((old / "run.json").read_text())["status"] == status and (old / "partial.png").exists()
    assert recover(out) == []


def test_summary_recovers_first_and_ignores_hidden_folders(tmp_path):
    out = tmp_path / "out"
    for name in ("01_a", "02_b"):
        (out / name).mkdir(parents=True)
        (out / name / "run.json").write_text(json.dumps({"status": "ok", "duration_s": 1.0, "parameters": {}}))
    set_aside(out / "01_a")  # killed before the rerun wrote its run.json
    assert [r["status"] for r in table(write_summary(out))] == ["ok", "ok"]
    assert not previous_path(out / "01_a").exists() and (out / "01_a" / "run.json").exists()


def test_kernels_die_with_the_runner(tmp_path):
    """The kernel command runs under PR_SET_PDEATHSIG: killed with its parent, even when it never polls it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    assert die_with_parent(["k", "-f"])[-3:] == [str(os.getpid()), "k", "-f"]
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time\nfrom jmlkit.runner.kernels import die_with_parent\n"
         "child = subprocess.Popen(die_with_parent([sys.executable, '-c', 'import time; time.sleep(120)']))\n"
         "print(child.pid, flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.kill()
    parent.wait()
    wait_for(lambda: not alive(child), what="the child to die with its parent")


# --------------------------------------------------------------------------- signals, with kernels
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_force_rerun_gives_the_previous_run_back(reference, tmp_path, signum):
    batch = copy_batch(reference, tmp_path / "b")
    (batch.out / "01_a" / "runs" / "ce__seed0").mkdir(parents=True)  # the training cache of the finished run
    (batch.out / "01_a" / "runs" / "ce__seed0" / "metrics.json").write_text('{"mIoU": 0.5}')
    before = snapshot(batch.out)
    proc = batch.start("01", "--force", hold="01_a")
    try:
        wait_for(lambda: batch.started("01_a").exists(), proc)
        assert previous_path(batch.out / "01_a").is_dir()  # the finished run waits aside, it is not deleted
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert f"Interrupted ({'Ctrl-C' if signum == signal.SIGINT else 'SIGTERM'})" in output
    # (the kernel's own stderr may show where the interrupt hit it; the runner itself raises nothing)
    assert "INTERRUPTED 01_a: the previous run is back" in output and "jmlkit/runner/" not in output
    after = snapshot(batch.out)
    # Everything as before (summary.csv and metrics.csv included), plus the training run finished meanwhile.
    assert after == {**before, "01_a/runs/new__seed0/metrics.json": b"{}"}
    assert [(r["run"], r["status"]) for r in table(batch.out / "summary.csv")] == [("01_a", "ok"), ("02_b", "ok")]


@pytest.mark.slow
def test_sigterm_is_handled_as_ctrl_c(reference, tmp_path):
    batch = Batch(tmp_path / "b")
    shutil.copytree(reference.nbdir, batch.nbdir)
    proc = batch.start("--jobs", "1", hold="01_a")
    try:
        wait_for(lambda: batch.started("01_a").exists(), proc)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "Interrupted (SIGTERM): stopping the running notebooks" in output and "jmlkit/runner/" not in output
    rows = table(batch.out / "summary.csv")
    assert [(r["run"], r["status"]) for r in rows] == [("01_a", "interrupted"), ("02_b", "pending")]
    assert json.loads((batch.out / "01_a" / "run.json").read_text())["status"] == "interrupted"
    wait_for(lambda: not alive(int(batch.started("01_a").read_text())), what="the kernel to stop")
    assert not (batch.out / LOCK_FILE).exists()


@pytest.mark.slow
def test_kill_9_then_rerun_equals_an_uninterrupted_batch(reference, tmp_path):
    batch = Batch(tmp_path / "b")
    shutil.copytree(reference.nbdir, batch.nbdir)
    proc = batch.start(hold="02_b")  # 01_a finishes, 02_b is executing when the runner dies
    try:
        wait_for(lambda: batch.started("02_b").exists(), proc)
        kernel = int(batch.started("02_b").read_text())
        proc.kill()
        proc.communicate(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_for(lambda: not alive(kernel), what="the orphaned kernel to die")
    (batch.markers / "release").touch()  # an orphan still alive would now finish and write its results
    time.sleep(0.5)
    assert not (batch.markers / "02_b.late").exists() and not (batch.out / "02_b" / "metrics.json").exists()
    assert json.loads((batch.out / "02_b" / "run.json").read_text())["status"] == "running"
    (batch.markers / "release").unlink()
    rc, output = batch.run("02")  # only the killed notebook: 01_a's row stays
    assert rc == 0, output
    for name in ("summary.csv", "metrics.csv"):
        assert table(batch.out / name) == table(reference.out / name), name
    assert sorted(p.name for p in batch.out.iterdir()) == sorted(p.name for p in reference.out.iterdir())
    rc, output = batch.run()  # everything cached now: collects 01_a's figures, which the killed batch never did
    assert rc == 0 and "[cached] 01_a" in output and "[cached] 02_b" in output, output
    assert snapshot(batch.figs) == snapshot(reference.figs)
    for name in ("summary.csv", "metrics.csv"):
        assert table(batch.out / name) == table(reference.out / name), name
