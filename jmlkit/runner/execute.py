"""Executing runs with papermill: one kernel per worker thread, failures isolated, timeouts and Ctrl-C.

The executed notebook is ``OUT/<run>/<stem>.ipynb``; the kernel runs with the *notebook's folder* as
working directory, as in Jupyter, so relative paths behave the same interactively and in batch.
A failing notebook never stops the others: its partially executed copy (with the traceback) is
kept and its status is ``failed``. ``timeout`` bounds the wall time of each run (the kernel is
interrupted, then killed). Ctrl-C interrupts the running kernels and :func:`run_notebooks` returns
what finished.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from jmlkit._checks import check_int, check_real
from jmlkit.runner.kernels import kernel_for, kernel_manager_class, release, stop_reason, stop_worker
from jmlkit.runner.plan import RUN_FILE, Run, RunResult, cached_result, now, read_metrics, sha256, write_run_json

__all__ = ["run_notebooks"]


@dataclasses.dataclass
class _Session:
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    active: set = dataclasses.field(default_factory=set)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def _execute_run(run: Run, *, kernel_name: str | None, timeout: float | None, session: _Session,
                 start_timeout: float = 120.0) -> RunResult:
    ident = threading.get_ident()
    with session.lock:
        session.active.add(ident)
    try:
        if session.stop.is_set():
            return RunResult(run=run, status="pending")
        return _execute_run_inner(run, kernel_name=kernel_name, timeout=timeout, ident=ident,
                                  start_timeout=start_timeout)
    except BaseException as err:  # never lose a result: the summary must list every run
        return RunResult(run=run, status="failed", error=f"{type(err).__name__}: {err}")
    finally:
        with session.lock:
            session.active.discard(ident)
        release(ident)


def _execute_run_inner(run: Run, *, kernel_name: str | None, timeout: float | None, ident: int,
                       start_timeout: float) -> RunResult:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    manager_class = kernel_manager_class()
    sha = sha256(run.notebook)
    kernel = kernel_for(run, kernel_name)
    # A fresh folder, so that stale figures or metrics of an earlier attempt never leak in;
    # only folders the runner created (with a run.json) are wiped. The training runs under runs/ are kept:
    # each is reused only when its configuration hash and completion marker match (jmlkit.experiments.runs),
    # so a rerun of a changed notebook does not retrain hours of unchanged runs.
    if (run.run_dir / RUN_FILE).exists():
        cache, kept = run.run_dir / "runs", run.run_dir.with_name(f".{run.run_dir.name}.runs-kept")
        if cache.is_dir():
            shutil.rmtree(kept, ignore_errors=True)
            os.replace(cache, kept)
        shutil.rmtree(run.run_dir)
        if kept.is_dir():
            run.run_dir.mkdir(parents=True)
            os.replace(kept, cache)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(run=run, status="running", started=now())
    write_run_json(result, sha, kernel)
    t0 = time.perf_counter()
    timer = None
    if timeout:
        timer = threading.Timer(timeout, stop_worker, args=(ident, "timeout"))
        timer.daemon = True
        timer.start()
    try:
        pm.execute_notebook(
            str(run.notebook), str(run.executed_notebook),
            parameters=run.papermill_parameters(),
            kernel_name=kernel,
            progress_bar=False,
            start_timeout=start_timeout,
            # cwd=None: papermill would os.chdir() the whole process, which races between threads;
            # nbclient starts the kernel in resources["metadata"]["path"] instead.
            resources={"metadata": {"path": str(run.notebook.parent)}},
            kernel_manager_class=manager_class,
        )
        result.status = "ok"
    except PapermillExecutionError as err:
        result.status, result.error = "failed", f"{err.ename}: {err.evalue}"
    except Exception as err:
        result.status, result.error = "failed", f"{type(err).__name__}: {err}"
    finally:
        if timer is not None:
            timer.cancel()
    reason = stop_reason(ident)
    if reason and result.status != "ok":
        if reason == "timeout":
            result.status, result.error = "failed", f"TimeoutError: the run exceeded --timeout {timeout:g} s"
        else:
            result.status, result.error = "interrupted", "KeyboardInterrupt: interrupted by the user"
    result.duration_s = round(time.perf_counter() - t0, 3)
    result.finished = now()
    result.metrics = read_metrics(run.run_dir)
    write_run_json(result, sha, kernel)
    return result


def run_notebooks(
    runs: Sequence[Run],
    *,
    jobs: int = 1,
    kernel_name: str | None = None,
    timeout: float | None = None,
    force: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Execute runs in parallel (``jobs`` threads, each driving one kernel); results in ``runs`` order.

    Runs already done (see :func:`~jmlkit.runner.plan.cached_result`) are returned with
    ``cached=True`` unless ``force``. A failing run never stops the others. On Ctrl-C the
    running kernels are interrupted, and the function *returns* with those runs
    ``interrupted`` and the unstarted ones ``pending`` instead of raising.
    ``progress``: tqdm bar (None: only on a terminal). ``kernel_name``: None
    uses each notebook's kernelspec, else ``python3``.
    """
    jobs = check_int("jobs", jobs, low=1)
    timeout = check_real("timeout", timeout, low=0, low_open=True, optional=True)
    from tqdm.auto import tqdm

    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"Expected runs with distinct names, but got duplicates in {names}.")
    results: dict[str, RunResult] = {}
    todo = []
    for run in runs:
        cached = None if force else cached_result(run)
        if cached is not None:
            results[run.name] = cached
        else:
            todo.append(run)

    bar = tqdm(total=len(todo), desc="notebooks", unit="run", dynamic_ncols=True,
               disable=None if progress is None else not progress)  # None: only on a terminal
    emit = log or bar.write
    for run in runs:
        if run.name in results:
            emit(f"[cached] {run.name}")
    session = _Session()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="jmlkit-run")
    futures: dict[Future, Run] = {
        pool.submit(_execute_run, run, kernel_name=kernel_name, timeout=timeout, session=session): run
        for run in todo}
    n_failed = 0

    def record(res: RunResult) -> None:
        nonlocal n_failed
        results[res.run.name] = res
        n_failed += res.status != "ok"
        bar.update(1)
        bar.set_postfix_str(f"{n_failed} failed" if n_failed else "")
        took = f" ({res.duration_s:.1f} s)" if res.duration_s is not None else ""
        emit(f"[{res.status}] {res.run.name}{took}" + (f": {res.error}" if res.error else ""))

    pending = set(futures)
    # Ctrl-C sets a flag that the wait loop turns into KeyboardInterrupt; Python's default handler raises wherever
    # the main thread happens to be, and an exception raised inside a finaliser there is swallowed (the run then
    # went on as if nothing had happened). A second Ctrl-C raises at once, to stop waiting.
    ctrl_c = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        if ctrl_c.is_set():
            raise KeyboardInterrupt
        ctrl_c.set()

    in_main = threading.current_thread() is threading.main_thread()
    old_handler = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        try:
            while pending:
                if ctrl_c.is_set():
                    raise KeyboardInterrupt
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    record(fut.result())
        except KeyboardInterrupt:
            ctrl_c.set()
            emit("Interrupted: stopping the running notebooks (Ctrl-C again to stop waiting)...")
            session.stop.set()
            for fut in pending:
                fut.cancel()
            with session.lock:
                active = list(session.active)
            for ident in active:
                stop_worker(ident, "interrupt")
            try:
                for fut in pending:
                    if not fut.cancelled():
                        record(fut.result())
            except KeyboardInterrupt:
                pass
    finally:
        if in_main:
            signal.signal(signal.SIGINT, old_handler)
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    for fut, run in futures.items():
        if run.name not in results:
            if fut.done() and not fut.cancelled():
                results[run.name] = fut.result()
            else:
                results[run.name] = RunResult(run=run, status="pending" if not fut.running() else "interrupted")
    return [results[r.name] for r in runs]
