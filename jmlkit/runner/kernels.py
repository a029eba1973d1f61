"""Jupyter kernels of the runner: their environment, and tracking them so ``--timeout`` and Ctrl-C can stop them.

Each worker thread drives one kernel. The kernel manager registers itself under the thread that
starts it (:func:`kernel_manager_class`); :func:`stop_worker` then interrupts that kernel (SIGINT),
and kills it if it does not stop.

On POSIX the kernels talk to the runner over IPC (Unix domain sockets ``<tmp>/jmlkit-kernel-<random>-<n>``)
rather than TCP on localhost: nothing listens on a port, and ipykernel no longer warns "Kernel is
running over TCP without encryption" once per notebook. Everything else the kernel prints (its
errors included) still reaches the runner's stderr. :func:`release` removes the socket files a
killed kernel leaves behind.

Kernels die with the runner. ipykernel already polls its parent once a second (``JPY_PARENT_PID``) and
exits when it has gone, but only when its poller thread gets the GIL, which a long computation may hold.
On Linux the kernel command is therefore started through :func:`die_with_parent`, which asks the system
to kill the kernel the moment the runner dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a ``kill -9``
of the runner never leaves a kernel writing into a run folder that the next batch recovers or reruns.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

from jmlkit.runner.params import read_notebook
from jmlkit.runner.plan import Run

__all__ = ["die_with_parent", "ipc_address", "kernel_env", "kernel_for", "kernel_manager_class", "release",
           "stop_reason", "stop_worker"]

_KERNELS_LOCK = threading.Lock()
_KERNELS: dict[int, Any] = {}        # worker thread id -> live kernel manager
_STOP_REASONS: dict[int, str] = {}   # worker thread id -> "interrupt" | "timeout"
_IPC_PREFIXES: dict[int, str] = {}   # worker thread id -> prefix of its kernel's IPC socket files
_TRACKED_KM: Any = None


class RunStopped(RuntimeError):
    """The run was stopped before its kernel started."""


def kernel_env() -> dict[str, str]:
    """The kernel's environment: ours, minus a non-inline ``MPLBACKEND`` (e.g. the Makefile's ``Agg``).

    Without it ipykernel selects matplotlib's inline backend, so executed notebooks show their figures.
    """
    env = dict(os.environ)
    if not env.get("MPLBACKEND", "module://").startswith("module://"):
        del env["MPLBACKEND"]
    return env


def ipc_address() -> str | None:
    """A fresh absolute prefix for one kernel's IPC sockets (``<prefix>-<n>``), or ``None`` where IPC is unavailable.

    ``None`` off POSIX and when the temporary folder's path is too long for a Unix socket name (about 100
    bytes); the kernel then uses TCP.
    """
    if os.name != "posix":
        return None
    prefix = os.path.join(tempfile.gettempdir(), f"jmlkit-kernel-{uuid.uuid4().hex[:16]}")
    return prefix if len(os.fsencode(prefix)) <= 90 else None


# Run by a fresh interpreter (no site packages) that then becomes the kernel (exec keeps the process, its parent
# and the death signal): argv = [parent pid, kernel command...]. The parent check closes the window in which the
# runner died before prctl; an unavailable prctl leaves ipykernel's own parent poller.
_DIE_WITH_PARENT = f"""\
import ctypes, os, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, {int(getattr(signal, "SIGKILL", 9))}, 0, 0, 0)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` started so that the system kills it when this process dies (Linux); other systems: ``cmd`` itself.

    >>> cmd = die_with_parent(["python", "-m", "ipykernel_launcher"])
    >>> cmd[-3:] == ["python", "-m", "ipykernel_launcher"] and (len(cmd) == 3 or cmd[-4] == str(os.getpid()))
    True
    """
    if not sys.platform.startswith("linux") or not cmd:
        return list(cmd)
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]


def kernel_for(run: Run, kernel_name: str | None) -> str:
    """``kernel_name`` if given, else the notebook's kernelspec name, else ``python3``."""
    if kernel_name:
        return kernel_name
    try:
        spec = read_notebook(run.notebook).metadata.get("kernelspec", {})
    except Exception:
        spec = {}
    return spec.get("name") or "python3"


def kernel_manager_class():
    """An ``AsyncKernelManager`` subclass that registers itself under the worker thread starting it.

    Its kernel uses the IPC transport where :func:`ipc_address` gives one (see the module docs).
    """
    global _TRACKED_KM
    if _TRACKED_KM is not None:
        return _TRACKED_KM
    from jupyter_client.manager import AsyncKernelManager

    class TrackedKernelManager(AsyncKernelManager):
        """AsyncKernelManager that registers itself under the worker thread starting it."""

        async def start_kernel(self, **kw):  # noqa: D102
            ident = threading.get_ident()
            with _KERNELS_LOCK:
                reason = _STOP_REASONS.get(ident)
                if reason is None:
                    _KERNELS[ident] = self
            if reason is not None:
                raise RunStopped(f"run stopped ({reason}) before its kernel started")
            if "env" not in kw:
                kw["env"] = kernel_env()
            if self.transport == "tcp" and not self.has_kernel:
                address = ipc_address()
                if address is not None:  # set both: the default ip of "ipc" is a path relative to the kernel's cwd
                    self.transport, self.ip = "ipc", address
                    with _KERNELS_LOCK:
                        _IPC_PREFIXES[ident] = address
            return await super().start_kernel(**kw)

        def format_kernel_cmd(self, extra_arguments=None):  # noqa: D102
            return die_with_parent(super().format_kernel_cmd(extra_arguments))

    _TRACKED_KM = TrackedKernelManager
    return _TRACKED_KM


def stop_reason(ident: int) -> str | None:
    """Why worker ``ident`` was asked to stop (``"interrupt"``, ``"timeout"``), or ``None``."""
    with _KERNELS_LOCK:
        return _STOP_REASONS.get(ident)


def release(ident: int) -> None:
    """Forget worker ``ident``'s kernel and stop request (its run has finished), and remove its IPC socket files.

    jupyter_client removes them when the kernel shuts down; a kernel killed by ``--timeout`` or Ctrl-C can leave them.
    """
    with _KERNELS_LOCK:
        _KERNELS.pop(ident, None)
        _STOP_REASONS.pop(ident, None)
        prefix = _IPC_PREFIXES.pop(ident, None)
    if prefix is not None:
        folder, stem = os.path.split(prefix)
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if name.startswith(stem + "-") and name[len(stem) + 1:].isdigit():
                try:
                    os.unlink(os.path.join(folder, name))
                except OSError:
                    pass


def _signal_kernel(ident: int, signum: int) -> bool:
    with _KERNELS_LOCK:
        km = _KERNELS.get(ident)
    pid = getattr(getattr(km, "provisioner", None), "pid", None) if km is not None else None
    if not pid:
        return False
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


def stop_worker(ident: int, reason: str, *, grace_s: float = 5.0) -> None:
    """Interrupt the kernel of worker ``ident`` (SIGINT), then kill it if it does not stop."""
    with _KERNELS_LOCK:
        _STOP_REASONS.setdefault(ident, reason)

    def escalate() -> None:
        kill = getattr(signal, "SIGKILL", signal.SIGTERM)
        for signum in (signal.SIGINT, signal.SIGINT, kill, kill):
            with _KERNELS_LOCK:
                if ident not in _STOP_REASONS:  # the worker has finished
                    return
            _signal_kernel(ident, signum)
            time.sleep(grace_s)

    threading.Thread(target=escalate, name=f"jmlkit-stop-{ident}", daemon=True).start()
