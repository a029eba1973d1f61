"""Running independent tasks: in this process, on a local Dask cluster, or on a running one.

The service below :mod:`jmlkit.experiments` (which trains the runs of a sweep with it) and :mod:`jmlkit.runner`
(``jmlkit run --scheduler``); it knows nothing of what the tasks are.

A *scheduler* is chosen once, outside the notebooks, by a short text:

* ``serial`` (the default): one run after another in this process (the notebook's kernel), as always;
* ``local:N``: a :class:`dask.distributed.LocalCluster` of ``N`` single-threaded worker processes on
  127.0.0.1, started on first use and kept for the life of the process; each run gets
  ``max(1, cores // N)`` torch threads;
* ``tcp://host:8786`` (any Dask scheduler address): the workers of a running cluster (``dask scheduler`` plus
  ``dask worker`` on each machine, or ``dask-jobqueue`` on SLURM/PBS). The output folder must then be on a
  file system that every worker sees, at the same path.

``python -m jmlkit run --scheduler S`` passes ``S`` to the notebooks' kernels in the environment variable
:data:`SCHEDULER_ENV` (``JMLKIT_SCHEDULER``); in JupyterLab, set the same variable before starting the
server, or pass ``scheduler=`` to :func:`jmlkit.experiments.run_configs`.

Every run carries its own seed and its own folder, so the results do not depend on which worker ran
it, and they are gathered in submission order. A run lost with its worker (a killed process, a lost
machine) is submitted again by Dask (up to ``retries`` times); a half-written run folder is never taken
for a finished one, because a run folder is complete only when its completion marker is written last
(:mod:`jmlkit.io`).

Example:
    >>> parse_scheduler("local:4")
    SchedulerSpec(kind='local', workers=4, address=None)
    >>> parse_scheduler("tcp://10.0.0.5:8786").kind
    'address'
    >>> run_tasks(pow, [(2, 3), (3, 2)], scheduler="serial")
    [8, 9]
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

__all__ = ["SCHEDULER_ENV", "SchedulerSpec", "parse_scheduler", "current_scheduler", "dask_client", "run_tasks",
           "close_clusters"]

#: The environment variable that names the scheduler of training runs (read when a sweep starts).
SCHEDULER_ENV = "JMLKIT_SCHEDULER"

_ADDRESS_RE = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")
_LOCAL_RE = re.compile(r"^local:(\d+)$")


@dataclasses.dataclass(frozen=True)
class SchedulerSpec:
    """A parsed scheduler: ``kind`` is ``serial``, ``local`` (``workers`` processes) or ``address``."""

    kind: str
    workers: int | None = None
    address: str | None = None

    def __str__(self) -> str:
        return {"serial": "serial", "local": f"local:{self.workers}"}.get(self.kind, self.address or "")


def parse_scheduler(text: Any, *, name: str = "scheduler") -> SchedulerSpec:
    """Parse ``serial``, ``local:N`` (N >= 1) or a Dask scheduler address (``tcp://host:port``).

    ``None`` and ``""`` are ``serial``. Raises ``TypeError``/``ValueError`` naming ``name``.
    """
    if isinstance(text, SchedulerSpec):
        return text
    if text is None:
        return SchedulerSpec("serial")
    if not isinstance(text, str):
        raise TypeError(f"Expected `{name}` to be a str such as 'serial', 'local:4' or 'tcp://host:8786', "
                        f"but got {text!r} ({type(text).__name__}).")
    value = text.strip()
    if value in ("", "serial"):
        return SchedulerSpec("serial")
    match = _LOCAL_RE.match(value)
    if match:
        workers = int(match[1])
        if workers < 1:
            raise ValueError(f"Expected `{name}` 'local:N' with N >= 1 worker processes, but got {text!r}.")
        return SchedulerSpec("local", workers=workers)
    if _ADDRESS_RE.match(value):
        return SchedulerSpec("address", address=value)
    raise ValueError(f"Expected `{name}` to be 'serial', 'local:N' (N worker processes on this machine) or the "
                     f"address of a Dask scheduler such as 'tcp://host:8786', but got {text!r}.")


def current_scheduler(scheduler: Any = None) -> SchedulerSpec:
    """``scheduler`` parsed, or, when it is ``None``, the environment variable :data:`SCHEDULER_ENV` (else serial)."""
    if scheduler is not None:
        return parse_scheduler(scheduler)
    return parse_scheduler(os.environ.get(SCHEDULER_ENV) or None, name=SCHEDULER_ENV)


_LOCK = threading.Lock()
_CLIENTS: dict[SchedulerSpec, Any] = {}


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:  # pragma: no cover - the [dask] extra is part of the README's set-up
        raise ImportError("A Dask scheduler needs the optional dependency dask[distributed]: "
                          "pip install -e \".[dask]\" (or pip install \"dask[distributed]\").") from None
    return distributed


def _dashboard_address() -> str | None:
    """``127.0.0.1:0`` (any free port) when bokeh is installed, else ``None`` (no dashboard, no warning)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return None
    return "127.0.0.1:0"


def _thread_env(spec: SchedulerSpec) -> dict[str, str]:
    """The environment of a ``local:N`` worker process: its share of the cores for torch (OpenMP, MKL)."""
    threads = str(threads_per_run(spec) or 1)
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


#: What Dask's nanny sets in a worker's environment before starting it, and jmlkit's local clusters leave out.
MALLOC_TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"


@contextlib.contextmanager
def _without_malloc_trim() -> Iterator[None]:
    """Start workers without ``MALLOC_TRIM_THRESHOLD_=65536``, which Dask's nanny sets by default to give memory back
    to the system early: glibc then trims (and stops tuning its mmap threshold) after every few tensors freed, and a
    quick-profile training run took 19.5 s instead of 12-13 s (``benchmarks/bench_scheduler.py``)."""
    import dask

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {k: v for k, v in environ.items()
                                                                  if k != MALLOC_TRIM_VARIABLE}}):
        yield


def dask_client(spec: SchedulerSpec | str, *, verbose: bool = True) -> Any:
    """The :class:`distributed.Client` of ``spec`` (``local`` or ``address``), created once per process.

    A ``local:N`` cluster starts ``N`` worker processes with one thread each on 127.0.0.1 (nothing listens
    on other interfaces) and is closed when the process exits (:func:`close_clusters`). The dashboard's
    link is printed when the client is created (``verbose``).
    """
    spec = parse_scheduler(spec)
    if spec.kind == "serial":
        raise ValueError("Expected `spec` to name a Dask scheduler ('local:N' or an address), but got 'serial'.")
    with _LOCK:
        client = _CLIENTS.get(spec)
        if client is not None and client.status == "running":
            return client
        distributed = _import_distributed()
        if not _CLIENTS:  # registered after distributed's own exit handlers, so that it runs before them
            atexit.unregister(close_clusters)
            atexit.register(close_clusters)
        if spec.kind == "local":
            with _without_malloc_trim():
                cluster = distributed.LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=_dashboard_address(),
                                                   silence_logs=logging.ERROR, env=_thread_env(spec))
            client = distributed.Client(cluster)
            client.wait_for_workers(spec.workers, timeout=120)  # all registered, on a busy machine too
        else:
            client = distributed.Client(spec.address)
        _CLIENTS[spec] = client
    if verbose:
        n = len(client.scheduler_info().get("workers", {}))
        link = client.dashboard_link if _dashboard_address() is not None or spec.kind == "address" else None
        print(f"Dask scheduler {spec}: {n} worker(s)" + (f"; dashboard: {link}" if link else ""), flush=True)
    return client


def close_clusters() -> None:
    """Close every client (and local cluster) :func:`dask_client` created; called at exit."""
    with _LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        cluster = getattr(client, "cluster", None)
        try:
            client.close()
            if cluster is not None:
                cluster.close()
        except Exception:  # pragma: no cover - closing at exit is best effort
            pass


def threads_per_run(spec: SchedulerSpec) -> int | None:
    """Torch threads of one run: ``cores // N`` on a ``local:N`` cluster, else ``None`` (torch's default)."""
    if spec.kind != "local":
        return None
    return max(1, (os.cpu_count() or 1) // int(spec.workers or 1))


def run_tasks(fn: Callable[..., Any], tasks: Iterable[Sequence[Any]], *, scheduler: Any = None,
              keys: Sequence[str] | None = None, retries: int = 3, progress: bool | None = None,
              desc: str = "runs") -> list[Any]:
    """``[fn(*args) for args in tasks]``, executed by ``scheduler`` (:func:`current_scheduler`), in task order.

    On a Dask scheduler every task is submitted at once (``pure=False``: two equal tasks both run),
    a task lost with its worker is submitted again up to ``retries`` times, and a tqdm bar counts the
    finished tasks (``progress``: None shows it only when there is more than one task). ``keys`` name
    the tasks in Dask's dashboard. The first task that raises makes this raise, after the others
    were cancelled.
    """
    tasks = [tuple(t) for t in tasks]
    spec = current_scheduler(scheduler)
    if keys is not None and len(keys) != len(tasks):
        raise ValueError(f"Expected `keys` to name each of the {len(tasks)} tasks, but got {len(keys)} keys.")
    if spec.kind == "serial" or not tasks:
        return [fn(*args) for args in tasks]
    distributed = _import_distributed()
    from tqdm.auto import tqdm

    client = dask_client(spec)
    futures = [client.submit(fn, *args, pure=False, retries=retries,
                             **({"key": f"{keys[i]}-{os.urandom(4).hex()}"} if keys is not None else {}))
               for i, args in enumerate(tasks)]
    bar = tqdm(total=len(futures), desc=f"{desc} on {spec}", unit="run",
               disable=(len(futures) < 2) if progress is None else not progress)
    try:
        for future in distributed.as_completed(futures):
            if future.status == "error":
                future.result()  # raises the task's exception here
            bar.update(1)
        return [future.result() for future in futures]
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
        for future in futures:  # the results are here: let the workers forget them
            future.release()
