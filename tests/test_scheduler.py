"""The scheduler of training runs (jmlkit.parallel): parsing, the environment variable, serial runs."""
from __future__ import annotations

import pytest

from jmlkit.parallel import (SCHEDULER_ENV, SchedulerSpec, current_scheduler, parse_scheduler, run_tasks,
                                          threads_per_run)


@pytest.mark.parametrize("text,spec", [
    (None, SchedulerSpec("serial")),
    ("", SchedulerSpec("serial")),
    ("serial", SchedulerSpec("serial")),
    (" local:3 ", SchedulerSpec("local", workers=3)),
    ("tcp://10.0.0.5:8786", SchedulerSpec("address", address="tcp://10.0.0.5:8786")),
    ("tls://scheduler.example.org:8786", SchedulerSpec("address", address="tls://scheduler.example.org:8786")),
])
def test_parse_scheduler(text, spec):
    assert parse_scheduler(text) == spec
    assert parse_scheduler(str(spec)) == spec  # str() gives the text back


@pytest.mark.parametrize("text,exc,match", [
    ("local:0", ValueError, r"'local:N' with N >= 1 worker processes, but got 'local:0'"),
    ("local", ValueError, r"Expected `scheduler` to be 'serial', 'local:N' .* but got 'local'"),
    ("localhost:8786", ValueError, r"address of a Dask scheduler such as 'tcp://host:8786', but got 'localhost:8786'"),
    ("local:-1", ValueError, "but got 'local:-1'"),
    (2, TypeError, r"Expected `scheduler` to be a str .* but got 2 \(int\)"),
])
def test_bad_scheduler_names_the_argument(text, exc, match):
    with pytest.raises(exc, match=match):
        parse_scheduler(text)


def test_environment_variable_chooses_the_scheduler(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    assert current_scheduler() == SchedulerSpec("serial")
    monkeypatch.setenv(SCHEDULER_ENV, "local:2")
    assert current_scheduler() == SchedulerSpec("local", workers=2)
    assert current_scheduler("serial") == SchedulerSpec("serial")  # an explicit choice wins
    monkeypatch.setenv(SCHEDULER_ENV, "nonsense")
    with pytest.raises(ValueError, match=f"Expected `{SCHEDULER_ENV}` to be 'serial'"):
        current_scheduler()


def test_threads_per_run_divides_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert threads_per_run(SchedulerSpec("local", workers=4)) == 4
    assert threads_per_run(SchedulerSpec("local", workers=32)) == 1
    assert threads_per_run(SchedulerSpec("serial")) is None
    assert threads_per_run(SchedulerSpec("address", address="tcp://h:1")) is None


def test_serial_run_tasks_keeps_the_order_and_raises_the_first_error():
    assert run_tasks(divmod, [(7, 2), (9, 4), (1, 1)], scheduler="serial") == [(3, 1), (2, 1), (1, 0)]
    assert run_tasks(divmod, [], scheduler="local:2") == []  # nothing to do: no cluster is started
    with pytest.raises(ZeroDivisionError):
        run_tasks(divmod, [(1, 1), (1, 0)], scheduler="serial")
    with pytest.raises(ValueError, match="Expected `keys` to name each of the 2 tasks, but got 1 keys"):
        run_tasks(divmod, [(1, 1), (2, 1)], scheduler="serial", keys=["a"])


# ---------------------------------------------------------------------------------------- a real local cluster
distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")


def _sweep(out, scheduler):
    from jmlkit.engine import TrainConfig
    from jmlkit.experiments import run_configs

    base = TrainConfig.from_profile("smoke", num_threads=1)
    configs = {"ce": base.replace(loss="ce"), "jml_ls": base.replace(labels="ls", loss="jml", epsilon=0.2)}
    return run_configs(configs, seeds=[0, 1], output_dir=out, verbose=False, scheduler=scheduler)


def _numbers(table):
    return table.drop(columns=["run_dir", "cached", *[c for c in table.columns if "time" in c]])


@pytest.fixture(scope="module")
def serial_table(tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("serial"), "serial")


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_local_cluster_gives_the_serial_results(tmp_path, serial_table):
    """Four smoke runs on two worker processes: the same table, row for row and number for number."""
    import pandas as pd

    dask = _sweep(tmp_path, "local:2")
    pd.testing.assert_frame_equal(_numbers(serial_table), _numbers(dask))
    assert not dask["cached"].any()
    again = _sweep(tmp_path, "local:2")  # finished runs are found here, nothing is submitted
    assert again["cached"].all()
    pd.testing.assert_frame_equal(_numbers(again), _numbers(dask))


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_a_killed_worker_does_not_change_the_results(tmp_path, serial_table):
    """kill -9 of a worker process while it trains: Dask runs its task again elsewhere (the nanny starts a new
    worker), the half-written run is never taken for a finished one, and the table equals the serial one."""
    import os
    import signal
    import threading
    import time

    import pandas as pd

    from jmlkit.parallel import dask_client

    client = dask_client("local:2", verbose=False)
    pids = client.run(os.getpid)  # worker address -> pid
    killed: list[int] = []

    def kill_a_training_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            partial = list((tmp_path / "runs").glob(".*partial*")) if (tmp_path / "runs").is_dir() else []
            busy = [addr for addr, keys in client.processing().items() if keys and addr in pids]
            if partial and busy:  # a run is half-written by a worker that is still training
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_training_worker, daemon=True)
    killer.start()
    dask = _sweep(tmp_path, "local:2")
    killer.join(timeout=5)
    assert killed, "no worker was caught training"
    pd.testing.assert_frame_equal(_numbers(serial_table), _numbers(dask))
    assert not list((tmp_path / "runs").glob(".*partial*"))  # the dead worker's partial folder was removed


SWEEP_NOTEBOOK = '''\
import os
from jmlkit.engine import TrainConfig
from jmlkit.experiments import run_configs
base = TrainConfig.from_profile("smoke", num_threads=1)
runs = run_configs({"ce": base.replace(loss="ce"), "jml": base.replace(loss="jml")}, seeds=[0, 1],
                   output_dir=output_dir, verbose=False)
runs.drop(columns=["run_dir", "cached", *[c for c in runs.columns if "time" in c]]).to_csv(
    os.path.join(output_dir, "table.csv"), index=False)
print("scheduler:", os.environ.get("JMLKIT_SCHEDULER"))
'''


def _sweep_notebook(folder):
    from fake_notebooks import make_notebook

    make_notebook(folder / "01_sweep.ipynb", SWEEP_NOTEBOOK, params='profile = "smoke"\nseed = 0\noutput_dir = "out"\n')
    return folder


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_runner_scheduler_gives_the_serial_table(tmp_path):
    """`jmlkit run --scheduler local:2`: one cluster started by the runner, its address given to the kernel, and
    the notebook's table equal to the one of a serial batch."""
    import os
    import subprocess
    import sys

    notebooks = _sweep_notebook(tmp_path / "nb")
    tables = {}
    for scheduler in ("serial", "local:2"):
        out = tmp_path / scheduler.replace(":", "")
        proc = subprocess.run([sys.executable, "-m", "jmlkit", "run", "--notebooks-dir", str(notebooks), "--out", str(out),
                               "--figures", str(tmp_path / "figures"), "--no-progress", "--scheduler", scheduler],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        tables[scheduler] = (out / "01_sweep" / "table.csv").read_text()
        executed = (out / "01_sweep" / "01_sweep.ipynb").read_text()
        assert ("scheduler: tcp://127.0.0.1:" if scheduler != "serial" else "scheduler: serial") in executed
    assert tables["serial"] == tables["local:2"]


def test_runner_rejects_a_bad_scheduler_in_one_line(tmp_path, capsys):
    from jmlkit.runner import main_run

    notebooks = _sweep_notebook(tmp_path / "nb")
    with pytest.raises(SystemExit) as exit_info:
        main_run(["--notebooks-dir", str(notebooks), "--out", str(tmp_path / "out"), "--scheduler", "locale:2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("jmlkit run: error: Expected `--scheduler` to be 'serial', 'local:N'")
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("dask")
def test_local_workers_get_their_threads_and_no_malloc_trim():
    """The workers of local:2 have cores // 2 torch threads and run without Dask's MALLOC_TRIM_THRESHOLD_ (which
    made training 1.6x slower), so that a run on a worker is as fast as one in a plain process."""
    import os

    from jmlkit.parallel import MALLOC_TRIM_VARIABLE, dask_client

    client = dask_client("local:2", verbose=False)
    env = client.run(lambda: (os.environ.get("OMP_NUM_THREADS"), os.environ.get(MALLOC_TRIM_VARIABLE)))
    assert len(env) == 2
    assert set(env.values()) == {(str(max(1, (os.cpu_count() or 1) // 2)), None)}
