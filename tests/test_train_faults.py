"""Faults during `python -m jmlkit train`, with real processes: SIGTERM and `kill -9` in the middle of training.

Neither leaves a folder that looks complete: SIGTERM exits 130 with one line and removes the partial folder;
`kill -9` leaves only the hidden partial folder, which every reader ignores and the next run into the same
folder removes. A previous run in the folder stays byte-identical, and a rerun to completion gives the
metrics of an uninterrupted run (training is deterministic on the CPU with a fixed seed). About 25 s.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from jmlkit.__main__ import main
from jmlkit.engine import is_complete
from jmlkit.io import read_done

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train_faults"),
              pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]

#: A smoke run long enough to be interrupted (about 50 ms an epoch).
ARGS = ["--profile", "smoke", "--no-progress", "--quiet", "--epochs", "50"]
#: Keys of metrics.json that are wall-clock times, not results.
TIMING = ("train_time_s",)


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def results(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in TIMING}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two uninterrupted runs of the killable configuration (in-process), and a finished run of another one."""
    root = tmp_path_factory.mktemp("faults")
    for name in ("reference", "again"):
        assert main(["train", *ARGS, "--out", str(root / name)]) == 0
    assert main(["train", "--profile", "smoke", "--quiet", "--no-progress", "--out", str(root / "previous")]) == 0
    return root


def test_identical_runs_give_identical_metrics(runs):
    """The premise of the rerun check: with a fixed seed on the CPU, only the timings differ."""
    assert results(runs / "reference") == results(runs / "again")
    assert read_done(runs / "reference")["hash"] == read_done(runs / "again")["hash"]


def _start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "jmlkit", "train", *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_until_training(proc: subprocess.Popen, out: Path, timeout: float = 120.0) -> Path:
    """The partial folder of ``proc`` once its history.csv shows a finished epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for partial in out.parent.glob(f".{out.name}.partial-{proc.pid}-*"):
            if (partial / "history.csv").is_file():
                return partial
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before it could be interrupted: {proc.communicate()[1]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no epoch finished within {timeout} s")


def test_sigterm_exits_130_and_leaves_no_folder(runs, tmp_path):
    out = tmp_path / "run"
    proc = _start(out)
    partial = _wait_until_training(proc, out)
    assert not is_complete(partial) and not out.exists()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == 130, stderr
    assert lines == [f"python -m jmlkit train: interrupted: no run folder written to {out}"], stderr
    assert stdout == "" and list(tmp_path.iterdir()) == []  # no run folder, no partial folder


def test_kill_9_keeps_the_previous_run_and_a_rerun_completes(runs, tmp_path):
    from jmlkit.experiments import find_runs, load_runs

    out = tmp_path / "runs" / "ce__seed0"
    shutil.copytree(runs / "previous", out)
    before = digest(out)
    proc = _start(out, "--overwrite")
    partial = _wait_until_training(proc, out)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert digest(out) == before and partial.is_dir()  # the old run intact, the dead run's partial folder left
    assert load_runs(tmp_path)["run_dir"].tolist() == [str(out.resolve())]  # readers see the old run only
    assert find_runs(tmp_path)["path"].tolist() == [str(out)]

    assert main(["train", *ARGS, "--out", str(out), "--overwrite"]) == 0  # the rerun, to completion
    assert not partial.exists() and sorted(p.name for p in out.parent.iterdir()) == [out.name]
    assert results(out) == results(runs / "reference")
    assert read_done(out)["hash"] == read_done(runs / "reference")["hash"]
