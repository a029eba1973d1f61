r"""Run folders: built aside, moved into place when complete, and read back only when complete.

A training run (:func:`jmlkit.engine.fit` with ``config.out``) never writes into ``out`` itself. It
writes into a hidden sibling, ``.<name>.partial-<pid>-<host>-<random>``, and only when everything
is written (the completion marker :data:`jmlkit.layout.DONE_FILE` last) renames it to ``out``::

    parent/.run.partial-4242-1a2b3c4d-9f8e7d6c/   config.json  weights.json  history.csv ...  (training)
    parent/run/                                 ... metrics.json  model.pt  recipe.json     (complete)

So a folder named ``out`` is always one complete run: an interrupted run (Ctrl-C, an exception,
``kill -9``) leaves at most a hidden partial folder, which every reader ignores and the next run into
the same ``out`` removes once its process is gone. Replacing a finished run (``overwrite=True``)
renames the old folder aside, the new one in, then deletes the old one: until the very end the old
run stays where it was. Only an empty folder or a complete run holding nothing but
:data:`~jmlkit.layout.RUN_FILES` is ever replaced (:func:`replace_problem`; a hidden ``.git`` or ``.env`` makes a
folder foreign). A run
that finds ``out`` taken when it finishes (another process finished a run there first) leaves it as it
is and is kept, complete, next to it as ``<name>.kept-<pid>-<hex>`` (:class:`FolderTaken` names it).

:func:`config_hash` (the marker's ``hash``) identifies what a run computed; :func:`check_out` is
the output part of :func:`jmlkit.engine.preflight`. The file names and the rule for a finished run
(:func:`~jmlkit.layout.is_complete`, :func:`~jmlkit.layout.require_complete`: the check every reader of a run
folder makes) are :mod:`jmlkit.layout`'s.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from jmlkit.io import mark_done
    >>> parent = Path(tempfile.mkdtemp())
    >>> folder = RunFolder(parent / "run")
    >>> work = folder.open()
    >>> work.name.startswith(".run.partial-"), (parent / "run").exists()
    (True, False)
    >>> _ = (work / METRICS_FILE).write_text("{}")
    >>> _ = mark_done(work, hash="abc")
    >>> _ = folder.commit()
    >>> sorted(p.name for p in parent.iterdir()), sorted(p.name for p in (parent / "run").iterdir())
    (['run'], ['metrics.json', 'recipe.json'])
    >>> check_out(parent / "run", overwrite=False)
    Traceback (most recent call last):
    ...
    ValueError: Expected `out` to be a new or empty folder, but '...run' holds a finished run; pass overwrite=True (--overwrite) to replace it when the new run finishes.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jmlkit._checks import check_type
from jmlkit.engine.config import TrainConfig
from jmlkit.io import folder_problem
from jmlkit.layout import DONE_FILE, METRICS_FILE, RUN_FILES, is_complete, read_done, require_complete

__all__ = [
    "HASH_EXCLUDE",
    "RUN_FILES",
    "config_hash",
    "is_complete",
    "require_complete",
    "check_out",
    "clean_stale",
    "FolderTaken",
    "RunFolder",
    "replace_folder",
    "replace_problem",
]

#: TrainConfig fields that do not change a run's numbers, left out of :func:`config_hash`.
HASH_EXCLUDE = ("out", "overwrite", "device", "num_threads", "num_workers", "eval_batch_size", "save_checkpoint",
                "replay", "channels_last")

#: This machine, in the names of partial folders: a process id means something on its own host only.
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8")).hexdigest()[:8]
_ASIDE_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[0-9a-f]{8}$")


# ============================================================================ hashing


def config_hash(config: TrainConfig) -> str:
    """A 16-hex-digit hash of everything in ``config`` that changes a run's numbers.

    Left out: :data:`HASH_EXCLUDE` (output folder, device, threads...). A distillation teacher
    given as a complete run folder counts by *its* hash, not its path, so the same teacher trained
    into another folder gives the same student hash.

    Example:
        >>> a = TrainConfig(seed=0, out="/tmp/a")
        >>> config_hash(a) == config_hash(a.replace(out="/tmp/b", num_threads=1, overwrite=True))
        True
        >>> config_hash(a) == config_hash(a.replace(seed=1))
        False
    """
    check_type("config", config, TrainConfig)
    data = config.to_dict()
    for key in HASH_EXCLUDE:
        data.pop(key, None)
    if data.get("teacher"):
        data["teacher"] = _teacher_key(data["teacher"])
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _teacher_key(teacher: str) -> str:
    path = Path(teacher)
    folder = path if path.is_dir() else path.parent
    done = read_done(folder)
    if done is not None and "hash" in done:
        return f"run:{done['hash']}"
    return f"path:{path.resolve()}"


# ============================================================================ the output folder


def check_out(out: str | os.PathLike | None, *, overwrite: bool = False, clean: bool = False) -> Path | None:
    """Check that a run can be written to ``out`` (nothing is left behind): the output part of
    :func:`jmlkit.engine.preflight`. Returns ``out`` as an absolute path (``None`` stays ``None``).

    ``out`` must not be a file; it must be new or an empty folder unless ``overwrite``; with
    ``overwrite`` it may also be a complete run folder holding nothing but :data:`~jmlkit.layout.RUN_FILES`, hidden
    entries included (:func:`replace_problem`: a mistyped ``out`` such as ``.`` or a folder holding only
    ``.git`` is never deleted); its nearest existing parent must be a folder this process can write to.
    ``clean``: first remove the partial folders of dead processes next to it (:func:`clean_stale`).
    Writing is tested by making and removing a hidden folder in that parent.
    Raises ``ValueError`` naming ``out`` and the folder.
    """
    if out is None:
        return None
    path = Path(out).expanduser().absolute()
    if path.name in ("", ".", ".."):
        path = path.resolve()
    if not path.name or path.name.startswith("."):
        raise ValueError(f"Expected `out` to be a folder whose name does not start with '.', but got {str(out)!r}.")
    if clean:
        clean_stale(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"Expected `out` to be a folder for the run, but {str(path)!r} is a file.")
    problem = replace_problem(path, overwrite=overwrite)
    if problem is not None:
        raise ValueError(problem)
    problem = folder_problem(path.parent)  # where the partial folder is made, then renamed to `out`
    if problem is not None:
        raise ValueError(f"`out`: {problem}.")
    return path


def _foreign_entries(path: Path) -> list[str]:
    """The entries of the folder ``path`` that are not a run's: any name outside :data:`RUN_FILES` (hidden
    ones included), and a folder under one of those names."""
    return sorted(name for name in os.listdir(path)
                  if name not in RUN_FILES or ((path / name).is_dir() and not (path / name).is_symlink()))


def replace_problem(path: str | os.PathLike, *, overwrite: bool = False) -> str | None:
    """Why a run may not be moved to ``path``, replacing what is there, in one sentence; ``None`` when it may.

    It may when ``path`` is new (or a link to nothing: only the link is replaced), an empty folder, or, with
    ``overwrite``, a complete run folder (:data:`~jmlkit.layout.DONE_FILE` readable) holding only
    :data:`RUN_FILES`. Anything else (a file, a folder with any other entry, a hidden one included, a run
    without its marker) is never replaced. A link to a folder is judged by that folder; only the link is
    ever replaced, never its target.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> replace_problem(folder) is None
    True
    >>> _ = (folder / ".env").write_text("secret")
    >>> replace_problem(folder, overwrite=True)
    "Expected `out` to be a new or empty folder or a complete run to overwrite (holding only config.json, ..., recipe.json), but '...' also holds ['.env']; it is left as it is: remove those entries or choose another folder."
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_dir():
        return f"Expected `out` to be a folder for the run, but {str(path)!r} is a file."
    try:
        entries = os.listdir(path)
    except OSError as err:
        return (f"Expected `out` to be a folder this process can read, but {str(path)!r} cannot be listed "
                f"({err.strerror}).")
    if not entries:
        return None
    foreign = _foreign_entries(path)
    complete = read_done(path) is not None  # not is_complete(): `path` may be the hidden aside copy of a run
    if not foreign and complete:
        if overwrite:
            return None
        return (f"Expected `out` to be a new or empty folder, but {str(path)!r} holds a finished run; "
                "pass overwrite=True (--overwrite) to replace it when the new run finishes.")
    if foreign:
        what = f"also holds {foreign[:3]}" + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    else:
        what = f"holds no completion marker {DONE_FILE} (an interrupted run, or not a run)"
    return (f"Expected `out` to be a new or empty folder or a complete run to overwrite (holding only "
            f"{', '.join(RUN_FILES[:1])}, ..., {DONE_FILE}), but {str(path)!r} {what}; it is left as it is: "
            + ("remove those entries or choose another folder." if foreign else "remove it or choose another folder."))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True


def clean_stale(out: str | os.PathLike) -> list[Path]:
    """Remove the partial folders of ``out`` whose process (on this host) is gone, e.g. after ``kill -9``.

    An old run renamed aside by an overwrite that died before renaming the new one in is put back
    when ``out`` is missing. Returns the folders removed or restored.
    """
    out = Path(out)
    parent = out.parent
    done: list[Path] = []
    if not parent.is_dir():
        return done
    for entry in sorted(parent.iterdir()):
        match = _ASIDE_RE.match(entry.name)
        if match is None or match["name"] != out.name or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if match["kind"] == "old" and not out.exists():
                os.rename(entry, out)
            else:
                _remove(entry)
            done.append(entry)
    return done


def _remove(path: Path) -> None:
    """Delete a folder, or only the link when it is a symbolic link to one."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)


def _aside(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.{kind}-{os.getpid()}-{_HOST}-{secrets.token_hex(4)}"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM wait until the block ends (then act as they would have), in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:
            old[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            if old[sig] is not signal.SIG_IGN:
                signal.raise_signal(sig)


class FolderTaken(FileExistsError):
    """The destination of :func:`replace_folder` holds something it may not replace (:func:`replace_problem`),
    e.g. a run that another process finished there first."""


def replace_folder(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Move the finished folder ``src`` to ``dst``: renamed in; an existing ``dst`` (an empty folder, or with
    ``overwrite`` a complete run folder, see :func:`replace_problem`) is renamed aside first and deleted after,
    so ``dst`` is the old folder or the new one, never a mix. Ctrl-C/SIGTERM wait until the renames are done.
    Anything else in ``dst`` (a run another process finished there meanwhile, foreign files) is a
    :class:`FolderTaken` and nothing moves: ``src`` and ``dst`` are left as they are. A link at ``dst`` is
    replaced, never its target."""
    src, dst = Path(src), Path(dst)
    with _signals_deferred():
        problem = replace_problem(dst, overwrite=overwrite)
        if problem is not None:
            raise FolderTaken(problem)
        old = None
        if dst.exists() or dst.is_symlink():
            old = _aside(dst, "old")
            os.rename(dst, old)
            problem = None if old.is_symlink() else replace_problem(old, overwrite=overwrite)
            if problem is not None:  # written into between the check and the rename: put it back untouched
                os.rename(old, dst)
                raise FolderTaken(problem.replace(str(old), str(dst)))
        try:
            os.rename(src, dst)
        except OSError as err:
            if old is not None:
                os.rename(old, dst)
            elif err.errno in (errno.ENOTEMPTY, errno.EEXIST) and dst.exists():
                # another process renamed its folder into `dst` between the check above and this rename
                raise FolderTaken(replace_problem(dst, overwrite=False) or
                                  f"`out` {str(dst)!r} was filled by another process meanwhile") from err
            raise
        except BaseException:
            if old is not None:
                os.rename(old, dst)
            raise
        _fsync_dir(dst.parent)
    if old is not None:
        with contextlib.suppress(OSError):
            _remove(old)
    return dst


class RunFolder:
    """The run folder ``out`` while a run writes it: :meth:`open` makes the hidden partial folder to write
    into, :meth:`commit` moves it into place (write the marker into it first), :meth:`abort` removes it.

    Args:
        out: the run folder to make.
        overwrite: replace a run already in ``out`` (at :meth:`commit`, not before).
    """

    def __init__(self, out: str | os.PathLike, *, overwrite: bool = False) -> None:
        self.out = Path(out).expanduser().absolute()
        self.overwrite = bool(overwrite)
        self.path: Path | None = None

    def open(self) -> Path:
        """Remove stale partial folders of ``out`` (:func:`clean_stale`), make a new one and return it."""
        clean_stale(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = _aside(self.out, "partial")
        self.path.mkdir()
        return self.path

    def commit(self) -> Path:
        """Move the partial folder to ``out`` (:func:`replace_folder`); returns ``out``.

        When ``out`` may no longer be replaced (another process finished a run there first, or wrote into
        it), nothing there is touched: this run is kept, complete, as ``<out>.kept-<pid>-<hex>`` next to it,
        and :class:`FolderTaken` names that folder."""
        if self.path is None:
            raise ValueError("Expected an open RunFolder to commit, but it is not open (call open() first).")
        try:
            replace_folder(self.path, self.out, overwrite=self.overwrite)
        except FolderTaken as err:  # keep this finished run, under a visible name next to `out`
            kept = self.out.with_name(f"{self.out.name}.kept-{os.getpid()}-{secrets.token_hex(2)}")
            os.rename(self.path, kept)
            self.path = None
            what = ("another process finished a run there first" if is_complete(self.out)
                    else "another process wrote into it meanwhile")
            raise FolderTaken(f"`out` {str(self.out)!r} changed while this run trained: {what}, and it is left as it "
                              f"is; this finished run is kept in {str(kept)!r}.") from err
        self.path = None
        return self.out

    def abort(self) -> None:
        """Remove the partial folder (nothing of this run stays)."""
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None
