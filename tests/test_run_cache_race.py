"""The run cache under real processes racing on one ``output_dir`` (``multiprocessing`` with ``spawn``, as two
notebook kernels or Dask workers are; four warm worker processes): runs of one name with different configurations never mix, identical runs
and copies racing into one folder never crash, and no half-built folder is ever visible. Smoke runs, about 40 s."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

import pytest

from jmlkit import experiments as ex
from jmlkit.engine import TrainConfig
from jmlkit.engine.checkpoints import read_checkpoint
from jmlkit.io import DONE_FILE, parse_run_folder_name, read_done

pytestmark = pytest.mark.xdist_group("run_cache_race")  # several processes each: not beside another heavy test

#: Every file of a finished run folder.
RUN_FILES = ("config.json", "weights.json", "history.csv", "metrics.json", "model.pt", DONE_FILE)
TIMEOUT_S = 120


def tiny(**options) -> TrainConfig:
    """A run of about a second: 8 scenes of 16x16, the tiny UNet, one epoch, one thread per process."""
    return TrainConfig.from_profile("smoke", train_limit=8, eval_limit=4, batch_size=4, num_threads=1, **options)


# --------------------------------------------------------------------------- workers (spawned processes)
@pytest.fixture(scope="module")
def workers():
    """Four spawned worker processes, started once (importing torch takes seconds): each race gives each its job."""
    with mp.get_context("spawn").Pool(4) as pool:
        assert len(set(pool.map(_warm, range(4), chunksize=1))) == 4  # each imported this module (and torch) once
        yield pool


def _warm(_: int) -> int:
    time.sleep(1.0)  # long enough that the four calls go to four workers
    return os.getpid()


def _train(config: TrainConfig, name: str, output_dir: str, start_at: float) -> dict:
    """Sleep until ``start_at`` (every racer starts at once), run ``{name: config}`` through the cache and read back
    at once, while the others may still be writing, everything this process's table points to."""
    time.sleep(max(0.0, start_at - time.time()))
    try:
        table = ex.run_configs({name: config}, seeds=[0], output_dir=output_dir, verbose=False)
        run_dir = Path(table["run_dir"].item())
        return {"ok": True, "run_dir": str(run_dir), "cached": bool(table["cached"].item()),
                "mIoU_D": float(table["mIoU_D"].item()), "metrics": ex.run_metrics(run_dir),
                "config": json.loads((run_dir / "config.json").read_text()), "done": read_done(run_dir),
                "model_config": read_checkpoint(run_dir / "model.pt")["config"],
                "files": {f: (run_dir / f).read_bytes() for f in RUN_FILES if f != "config.json"}}
    except Exception as err:  # noqa: BLE001 - reported to the test, which fails on it
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}


class _Watcher(threading.Thread):
    """Polls ``runs_dir`` while the racers run: every folder a reader takes for a run (a name that
    :func:`~jmlkit.io.parse_run_folder_name` reads, not hidden) must hold every run file when it first appears."""

    def __init__(self, runs_dir: Path) -> None:
        super().__init__(daemon=True)
        self.runs, self.stop, self.seen, self.bad = runs_dir, threading.Event(), set(), []

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in (self.runs.iterdir() if self.runs.is_dir() else ()):
                if entry.name in self.seen or entry.name.startswith(".") or parse_run_folder_name(entry.name) is None:
                    continue
                self.seen.add(entry.name)
                missing = [f for f in RUN_FILES if not (entry / f).is_file()]
                if missing or read_done(entry) is None:
                    self.bad.append((entry.name, missing))
            time.sleep(0.001)


def _race(pool, jobs: list[tuple[TrainConfig, str, Path]], *, watch: Path | None = None) -> list[dict]:
    """Run ``_train`` for each ``(config, name, output_dir)`` on its own worker process, all at once."""
    watcher = _Watcher(watch) if watch is not None else None
    if watcher is not None:
        watcher.start()
    start_at = time.time() + 0.5  # every worker is idle: each takes one job and sleeps until then
    try:
        results = pool.starmap_async(_train, [(cfg, name, str(out), start_at) for cfg, name, out in jobs],
                                     chunksize=1).get(TIMEOUT_S)
    finally:
        if watcher is not None:
            watcher.stop.set()
            watcher.join()
    assert all(r["ok"] for r in results), results
    if watcher is not None:
        assert watcher.bad == [], watcher.bad  # no half-built folder was ever visible
        results.append({"seen": sorted(watcher.seen)})
    return results


def _leftovers(runs: Path) -> list[str]:
    """Hidden (partial, temporary) folders and duplicates kept aside."""
    return sorted(p.name for p in runs.iterdir() if p.name.startswith(".") or ".kept-" in p.name)


# --------------------------------------------------------------------------- tests
def test_one_name_two_configurations_at_once_never_mix(workers, tmp_path):
    """Two kernels of one notebook run `jml_ls` with ε 0.1 and ε 0.3 into the shared output_dir at the same time:
    each gets back its own run (folder, config, marker hash, model, metrics), and both stay on disk."""
    out = tmp_path / "02_label_smoothing"
    configs = {eps: tiny(labels="ls", loss="jml", epsilon=eps) for eps in (0.1, 0.3)}
    results = _race(workers, [(configs[eps], "jml_ls", out) for eps in configs])
    assert len({r["run_dir"] for r in results}) == 2
    for r in results:
        eps = r["config"]["epsilon"]
        own = configs[eps]
        digest = ex.config_hash(own)
        assert Path(r["run_dir"]) == ex.run_dir_for(out, "jml_ls", 0, own).resolve()
        assert r["done"]["hash"] == digest and Path(r["run_dir"]).name.endswith(f"__{digest[:8]}")
        assert r["model_config"]["epsilon"] == eps and r["model_config"]["labels"] == "ls"
        assert r["metrics"]["mIoU_D"] == r["mIoU_D"] and not r["cached"]
        # and after both finished, the folder still holds this process's run
        assert json.loads((Path(r["run_dir"]) / "config.json").read_text())["epsilon"] == eps
        assert json.loads((Path(r["run_dir"]) / "metrics.json").read_bytes()) == r["metrics"]
    assert {p["config"]["epsilon"] for p in results} == {0.1, 0.3}
    assert _leftovers(out / "runs") == []


def test_one_configuration_trained_at_once_by_three_processes(workers, tmp_path):
    """The same configuration started by three processes at once: no crash, one folder, everyone reads it whole."""
    out = tmp_path / "02_label_smoothing"
    config = tiny(loss="ce")
    *results, watched = _race(workers, [(config, "ce", out)] * 3, watch=out / "runs")
    run_dir = ex.run_dir_for(out, "ce", 0, config).resolve()
    assert {r["run_dir"] for r in results} == {str(run_dir)}
    assert all(r["done"]["hash"] == ex.config_hash(config) for r in results)
    assert all(r["files"] == results[0]["files"] for r in results)  # one run, read whole by everyone
    assert watched["seen"] == [run_dir.name]
    assert _leftovers(out / "runs") == [] and [p.name for p in (out / "runs").iterdir()] == [run_dir.name]


def test_many_processes_reuse_one_sibling_run_at_once(workers, tmp_path):
    """Four processes reuse (copy) the same finished run of a sibling notebook at once: no crash, every copy
    complete and identical to the source, no temporary folder left, no half-copied folder ever visible."""
    config = tiny(loss="ce")
    source = Path(ex.run_configs({"ce": config}, seeds=[0], output_dir=tmp_path / "02_label_smoothing",
                                 verbose=False)["run_dir"].item())
    out = tmp_path / "03_distillation"
    *results, watched = _race(workers, [(config, "hard_ce", out)] * 4, watch=out / "runs")
    run_dir = ex.run_dir_for(out, "hard_ce", 0, config).resolve()
    assert {r["run_dir"] for r in results} == {str(run_dir)} and all(r["cached"] for r in results)
    for r in results:
        for name, data in r["files"].items():
            if name != DONE_FILE:
                assert data == (source / name).read_bytes(), name
        assert r["done"]["hash"] == ex.config_hash(config) and r["done"]["copied_from"] == str(source)
        assert r["config"]["out"] == str(run_dir)
    assert watched["seen"] == [run_dir.name]
    assert _leftovers(out / "runs") == []
