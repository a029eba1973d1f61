"""Executing runs with papermill: a dependency graph, one kernel per worker thread, failures isolated, progress.

The executed notebook is ``OUT/<run>/<stem>.ipynb``; the kernel runs with the *notebook's folder* as
working directory, as in Jupyter, so relative paths behave the same interactively and in batch.

**Order.** A run starts only once every run it requires (``Run.requires``) has finished ok; up to
``jobs`` runs whose requirements are met execute at the same time, picked in
:func:`~jmlkit.runner.plan.execution_order`. A run whose requirement failed (or was skipped) is not
executed: its status is ``skipped``, its error names the requirement, and its ``run.json`` says so.
A finished run is reused (:func:`~jmlkit.runner.plan.reusable_result`) unless a requirement was
executed again since it ran.

**Failures.** A failing notebook never stops the others: its partially executed copy (with the
traceback) is kept and its status is ``failed``; a notebook file that cannot be read fails without
executing (``Run.error``). ``timeout`` bounds the wall time of each run (the kernel is interrupted,
then killed). Ctrl-C or SIGTERM interrupts the running kernels and :func:`run_notebooks` returns what
finished (runs not started yet are ``pending``).

**Nothing lost.** A run that executes again (changed notebook, ``force``) keeps its previous folder aside
until it has finished, and an interrupted rerun puts it back (:mod:`~jmlkit.runner.outdir`); while the
batch runs it holds the lock of each output folder, and first recovers what a killed batch left there.

**Progress.** With a progress bar: one bar over the runs, and one line per running notebook with its
current code cell ``k/n`` and the time since it started (papermill's per-cell hook, refreshed
twice a second by the main thread). Without one: a line per finished run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from jmlkit._checks import check_int, check_real
from jmlkit.runner.kernels import kernel_for, kernel_manager_class, release, stop_reason, stop_worker
from jmlkit.runner.outdir import _recover_locked, discard_previous, hold_out_dir, restore_previous, set_aside
from jmlkit.runner.plan import (
    Run,
    RunResult,
    execution_order,
    now,
    predict_reuse,
    read_metrics,
    reusable_result,
    sha256,
    write_run_json,
)

__all__ = ["run_notebooks"]


#: The papermill engine of the runner: papermill's nbclient engine plus a hook called as each code cell starts.
ENGINE_NAME = "jmlkit"
_ENGINE_LOCK = threading.Lock()
_ENGINE: Any = None


def _cell_hook_engine():
    """Register (once) and return the papermill engine :data:`ENGINE_NAME`.

    It takes one extra keyword, ``cell_hook(k, n)``, called as the ``k``-th of the ``n`` code cells starts.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is not None:
            return _ENGINE
        from papermill.engines import NBClientEngine, papermill_engines

        class CellHookEngine(NBClientEngine):
            """papermill's nbclient engine, reporting the code cell being executed to ``cell_hook``."""

            @classmethod
            def execute_managed_notebook(cls, nb_man, kernel_name, cell_hook=None, **kwargs):  # noqa: D102
                if cell_hook is not None:
                    code = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]
                    position = {index: k for k, index in enumerate(code, 1)}
                    cell_start = nb_man.cell_start

                    def hooked(cell, cell_index=None, **kw):
                        if cell_index in position:
                            cell_hook(position[cell_index], len(code))
                        return cell_start(cell, cell_index, **kw)

                    nb_man.cell_start = hooked
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

        papermill_engines.register(ENGINE_NAME, CellHookEngine)
        _ENGINE = CellHookEngine
        return _ENGINE


class _Board:
    """What each running notebook is doing: written by the worker threads, read by the main thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, list[float]] = {}  # run name -> [start (monotonic), code cell k, of n]

    def start(self, name: str) -> None:
        with self._lock:
            self._live[name] = [time.monotonic(), 0, 0]

    def cell(self, name: str, k: int, n: int) -> None:
        with self._lock:
            if name in self._live:
                self._live[name][1:] = [k, n]

    def stop(self, name: str) -> None:
        with self._lock:
            self._live.pop(name, None)

    def line(self, name: str) -> str:
        """``<run>: cell k/n, mm:ss`` (``starting kernel`` before the first cell); ``""`` when not running."""
        from tqdm import tqdm

        with self._lock:
            entry = list(self._live.get(name, ()))
        if not entry:
            return ""
        t0, k, n = entry
        where = f"cell {int(k)}/{int(n)}" if n else "starting kernel"
        return f"{name}: {where}, {tqdm.format_interval(time.monotonic() - t0)}"


@dataclasses.dataclass
class _Session:
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    active: set = dataclasses.field(default_factory=set)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    why: str = "by the user"  # how the batch was interrupted: "by the user" (Ctrl-C) or "by SIGTERM"


def _execute_run(run: Run, *, kernel_name: str | None, timeout: float | None, session: _Session,
                 board: _Board, required_ids: Mapping[str, str | None], start_timeout: float = 120.0) -> RunResult:
    ident = threading.get_ident()
    with session.lock:
        session.active.add(ident)
    try:
        if session.stop.is_set():
            return RunResult(run=run, status="pending")
        board.start(run.name)
        return _execute_run_inner(run, kernel_name=kernel_name, timeout=timeout, ident=ident, session=session,
                                  start_timeout=start_timeout, required_ids=required_ids,
                                  cell_hook=lambda k, n: board.cell(run.name, k, n))
    except BaseException as err:  # never lose a result: the summary must list every run
        return RunResult(run=run, status="failed", error=f"{type(err).__name__}: {err}")
    finally:
        with session.lock:
            session.active.discard(ident)
        release(ident)


def _execute_run_inner(run: Run, *, kernel_name: str | None, timeout: float | None, ident: int, session: _Session,
                       start_timeout: float, required_ids: Mapping[str, str | None],
                       cell_hook: Callable[[int, int], None]) -> RunResult:
    _cell_hook_engine()
    sha = sha256(run.notebook)
    kernel = kernel_for(run, kernel_name)
    # A fresh folder, so that stale figures or metrics of an earlier attempt never leak in. The earlier run waits
    # aside until this one has finished (jmlkit.runner.outdir), and its training runs under runs/ come along: each
    # is reused only when its configuration hash and completion marker match (jmlkit.experiments.runs), so a rerun
    # of a changed notebook does not retrain hours of unchanged runs.
    try:
        aside = set_aside(run.run_dir)
    except BaseException:
        restore_previous(run.run_dir)  # half-way (no space for the new folder?): the previous run goes back
        raise
    try:
        result = _execute_in(run, kernel=kernel, sha=sha, timeout=timeout, ident=ident, start_timeout=start_timeout,
                             required_ids=required_ids, cell_hook=cell_hook, session=session)
    except BaseException:
        if aside is not None:
            restore_previous(run.run_dir)
        raise
    if aside is not None:
        if result.status == "interrupted":  # unfinished: the finished run it was replacing comes back
            restore_previous(run.run_dir)
            result.kept_previous = True
        else:
            discard_previous(run.run_dir)
    return result


def _execute_in(run: Run, *, kernel: str, sha: str, timeout: float | None, ident: int, start_timeout: float,
                required_ids: Mapping[str, str | None], cell_hook: Callable[[int, int], None],
                session: _Session) -> RunResult:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    manager_class = kernel_manager_class()
    result = RunResult(run=run, status="running", started=now(), run_id=uuid.uuid4().hex,
                       required_ids=dict(required_ids))
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
            engine_name=ENGINE_NAME,
            cell_hook=cell_hook,
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
            result.status, result.error = "interrupted", f"KeyboardInterrupt: interrupted {session.why}"
    result.duration_s = round(time.perf_counter() - t0, 3)
    result.finished = now()
    result.metrics = read_metrics(run.run_dir)
    write_run_json(result, sha, kernel)
    return result


def _skipped(run: Run, bad: Sequence[RunResult]) -> RunResult:
    """The result of a run not executed because requirements did not finish ok; recorded in its ``run.json``."""
    what = ", ".join(f"{r.run.name} {r.status}" for r in bad)
    result = RunResult(run=run, status="skipped", finished=now(),
                       error=f"not run: its requirement{'s' if len(bad) > 1 else ''} {what}")
    try:
        write_run_json(result, sha256(run.notebook), None)
    except OSError:  # the record is a convenience; the result itself is returned
        pass
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
    """Execute runs in dependency order, up to ``jobs`` at a time (threads, each driving one kernel).

    Returns the results in ``runs`` order. Each run starts once the runs it requires have finished ok;
    one whose requirement did not is ``skipped``. Runs already done (see
    :func:`~jmlkit.runner.plan.reusable_result`) are returned with ``cached=True``; ``force`` executes
    the selected runs again (``Run.selected``; runs added as requirements are still reused). A failing
    run never stops the others; a run whose notebook cannot be read (``Run.error``) fails at once. On Ctrl-C
    or SIGTERM the running kernels are interrupted, and the function *returns* with those runs ``interrupted``
    and the unstarted ones ``pending`` instead of raising. A run executed again keeps the previous run of its
    folder until it has finished (``kept_previous``: it was interrupted and the previous run is back; see
    :mod:`~jmlkit.runner.outdir`). ``progress``: tqdm bars (None: only on a terminal). ``kernel_name``: None
    uses each notebook's kernelspec, else ``python3``. ``log`` receives the line of each finished run
    (default: printed).

    Raises ``ValueError`` before anything runs for duplicate run names, a requirement missing from
    ``runs`` or a cycle of requirements (:func:`~jmlkit.runner.plan.execution_order`), and
    :class:`~jmlkit.runner.outdir.OutDirBusy` (a ``ValueError``) when another batch is writing into one of the
    output folders.
    """
    jobs = check_int("jobs", jobs, low=1)
    timeout = check_real("timeout", timeout, low=0, low_open=True, optional=True)
    order = execution_order(runs)
    with contextlib.ExitStack() as stack:
        for folder in sorted({run.run_dir.parent for run in order}):
            stack.enter_context(hold_out_dir(folder))
        for folder in sorted({run.run_dir.parent for run in order}):
            _recover_locked(folder)  # held by this process and no run started yet: what is aside was left by a crash
        results = _run_batch(order, jobs=jobs, kernel_name=kernel_name, timeout=timeout, force=force,
                             progress=progress, log=log)
    return [results[r.name] for r in runs]


def _run_batch(order: Sequence[Run], *, jobs: int, kernel_name: str | None, timeout: float | None, force: bool,
               progress: bool | None, log: Callable[[str], None] | None) -> dict[str, RunResult]:
    n_todo = sum(r is None for r in predict_reuse(order, force=force).values())
    from tqdm.auto import tqdm

    bar = tqdm(total=n_todo, desc="notebooks", unit="run", dynamic_ncols=True,
               disable=None if progress is None else not progress)  # None: only on a terminal
    lanes = [] if bar.disable else [tqdm(total=None, position=i + 1, bar_format="{desc}", leave=False,
                                         dynamic_ncols=True) for i in range(min(jobs, n_todo))]
    emit = log or bar.write
    results: dict[str, RunResult] = {}
    waiting = list(order)
    running: dict[Future, tuple[Run, int]] = {}  # future -> (run, progress lane)
    free = list(range(jobs))
    session, board = _Session(), _Board()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="jmlkit-run")
    n_failed = 0

    def record(res: RunResult) -> None:
        nonlocal n_failed
        results[res.run.name] = res
        if res.cached:
            emit(f"[cached] {res.run.name}")
            return
        n_failed += res.status != "ok"
        bar.update(1)
        bar.set_postfix_str(f"{n_failed} not ok" if n_failed else "")
        took = f" ({res.duration_s:.1f} s)" if res.duration_s is not None else ""
        emit(f"[{res.status}] {res.run.name}{took}" + (f": {res.error}" if res.error else ""))

    def schedule() -> None:
        """Decide every waiting run whose requirements have finished: skip, reuse, or start it in a free lane."""
        decided = True
        while decided:
            decided = False
            for run in list(waiting):
                required = [results.get(q) for q in run.requires]
                if any(r is None for r in required):
                    continue
                if run.error is not None:  # the notebook cannot be read: fails without touching its folder
                    waiting.remove(run)
                    record(RunResult(run=run, status="failed", finished=now(), error=run.error))
                    decided = True
                    continue
                bad = [r for r in required if r.status != "ok"]
                reused = None if bad or (force and run.selected) else reusable_result(run, results)
                if bad or reused is not None:
                    waiting.remove(run)
                    record(_skipped(run, bad) if bad else reused)
                    decided = True
                elif free:
                    waiting.remove(run)
                    fut = pool.submit(_execute_run, run, kernel_name=kernel_name, timeout=timeout, session=session,
                                      board=board, required_ids={q: results[q].run_id for q in run.requires})
                    running[fut] = (run, free.pop(0))

    def render() -> None:
        if not lanes:
            return
        occupant = {lane: run.name for run, lane in running.values()}
        for i, lane in enumerate(lanes):
            lane.set_description_str(board.line(occupant[i]) if i in occupant else "", refresh=False)
            lane.refresh()
        bar.refresh()

    def collect(done: Sequence[Future]) -> None:
        for fut in done:
            run, lane = running.pop(fut)
            free.append(lane)
            free.sort()
            board.stop(run.name)
            record(fut.result())

    # Ctrl-C and SIGTERM set a flag that the wait loop turns into KeyboardInterrupt; Python's default handler raises
    # wherever the main thread happens to be, and an exception raised inside a finaliser there is swallowed (the run
    # then went on as if nothing had happened), while SIGTERM's default ends the process with nothing recorded.
    # A second signal raises at once, to stop waiting.
    stop_signal = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if stop_signal.is_set():
            raise KeyboardInterrupt
        if signum != signal.SIGINT:
            session.why = f"by {signal.Signals(signum).name}"
        stop_signal.set()

    in_main = threading.current_thread() is threading.main_thread()
    handled = [s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None] if in_main else []
    old_handlers = {signum: signal.signal(signum, on_signal) for signum in handled}
    try:
        try:
            schedule()
            while running:
                if stop_signal.is_set():
                    raise KeyboardInterrupt
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                collect(list(done))
                schedule()
                render()
            if waiting:  # cannot happen for an acyclic graph: the first waiting run is always decidable
                raise RuntimeError(f"no run could start among {[r.name for r in waiting]}")
        except KeyboardInterrupt:
            stop_signal.set()
            by = "Ctrl-C" if session.why == "by the user" else session.why[3:]
            emit(f"Interrupted ({by}): stopping the running notebooks (Ctrl-C again to stop waiting)...")
            session.stop.set()
            with session.lock:
                active = list(session.active)
            for ident in active:
                stop_worker(ident, "interrupt")
            try:
                collect(list(running))
            except KeyboardInterrupt:
                pass
    finally:
        for signum, old in old_handlers.items():
            signal.signal(signum, old)
        pool.shutdown(wait=False, cancel_futures=True)
        for lane in lanes:
            lane.close()
        bar.close()
    for fut, (run, _) in running.items():
        if fut.done() and not fut.cancelled():
            results[run.name] = fut.result()
        else:
            results[run.name] = RunResult(run=run, status="interrupted" if fut.running() else "pending")
    for run in waiting:
        results.setdefault(run.name, RunResult(run=run, status="pending"))
    return results
