"""The output folder of a batch: reruns that lose nothing, recovery after a crash, and the batch's lock.

**Reruns keep the previous run until the new one has finished.** A run executes at its real path
``OUT/<run>`` (its ``output_dir`` parameter and the absolute paths recorded inside its training runs must
stay valid), so an earlier run in that folder is first moved aside to the hidden sibling
``OUT/.<run>.previous`` (:func:`set_aside`); its training cache ``runs/`` moves into the new folder, where
the notebook reuses it. Then:

* the new run finishes (``ok`` or ``failed``: it finished, its traceback is worth seeing): the aside copy is
  deleted (:func:`discard_previous`);
* the new run is interrupted (Ctrl-C, SIGTERM): the previous folder comes back (:func:`restore_previous`), with
  the new ``runs/`` (the old cache plus the training runs finished meanwhile) moved back into it;
* the runner dies (``kill -9``, power loss): the next batch, :func:`~jmlkit.runner.summary.write_summary` and
  :func:`~jmlkit.runner.summary.run_records` first call :func:`recover`: each ``.<run>.previous`` whose
  ``<run>/run.json`` is missing or not final (``running``, ``interrupted``) is restored as above; one whose
  ``<run>`` has a final status (``ok``, ``failed``, ``skipped``) is deleted.

Every step is a rename inside ``OUT`` (atomic), in an order that :func:`recover` can resume from any point.
Readers of a batch folder ignore hidden folders.

**Only the runner's folders are moved or deleted.** A run folder is replaced only when it is missing, empty or
the runner's (it holds ``run.json``); a run folder that is a symbolic link, or a folder with other files and no
``run.json``, is refused (:func:`run_dir_problem`, checked by ``jmlkit run`` before anything runs, and again by
:func:`set_aside`). :func:`recover` deletes or restores only hidden folders that hold what the runner puts there.

**One batch per folder.** A batch holds ``OUT/.jmlkit-run.lock`` (an advisory ``flock``, released by the
system even when the runner is killed; POSIX only) while it runs: a second batch in the same folder is
refused (:class:`OutDirBusy`), and :func:`recover` leaves a folder alone while a batch holds it (whose
aside copies are then in use).

Example (a rerun interrupted, then recovered):
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp())
    >>> (out / "01_a" / "runs").mkdir(parents=True)
    >>> _ = (out / "01_a" / "run.json").write_text(json.dumps({"status": "ok"}))
    >>> set_aside(out / "01_a").name
    '.01_a.previous'
    >>> sorted(p.name for p in (out / "01_a").iterdir())   # the training cache moved into the new folder
    ['runs']
    >>> _ = (out / "01_a" / "run.json").write_text(json.dumps({"status": "running"}))  # ...then kill -9
    >>> recover(out)
    ['01_a']
    >>> json.loads((out / "01_a" / "run.json").read_text())["status"], sorted(p.name for p in out.iterdir())
    ('ok', ['01_a'])
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from jmlkit.layout import CACHE_DIR, PREVIOUS_SUFFIX, RUN_RECORD, previous_folder, read_run_record

__all__ = ["FINAL_STATUSES", "LOCK_FILE", "OutDirBusy", "discard_previous", "hold_out_dir",
           "previous_path", "recover", "restore_previous", "run_dir_problem", "set_aside"]

#: Statuses of a run that has finished: its folder replaces the previous one for good.
FINAL_STATUSES = ("ok", "failed", "skipped")
#: The lock file a batch holds in its output folder.
LOCK_FILE = ".jmlkit-run.lock"
_DISCARD = ".discard"


class OutDirBusy(ValueError):
    """Another batch holds the output folder."""


# --------------------------------------------------------------------------- set aside, restore, discard
def previous_path(run_dir: str | os.PathLike) -> Path:
    """``OUT/.<run>.previous``: where the previous run of ``run_dir`` waits while ``run_dir`` reruns
    (:func:`jmlkit.layout.previous_folder`)."""
    return previous_folder(run_dir)


def _discard_path(run_dir: Path) -> Path:
    """A new hidden name to move ``run_dir`` to before it is deleted (unique: never an existing folder)."""
    return run_dir.with_name(f".{run_dir.name}.{os.getpid()}-{secrets.token_hex(4)}{_DISCARD}")


def _is_runners(folder: Path, *, record: bool = False) -> bool:
    """Whether ``folder`` is a real folder (not a link) that the runner made: it holds ``run.json``, or (unless
    ``record``) nothing but the training cache ``runs/`` (a fresh run folder before its record)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    if (folder / RUN_RECORD).is_file():
        return True
    try:
        return not record and set(os.listdir(folder)) <= {CACHE_DIR}
    except OSError:
        return False


def run_dir_problem(run_dir: str | os.PathLike) -> str | None:
    """Why the runner may not (re)run into ``run_dir``, in one sentence naming it; ``None`` when it may.

    It may when ``run_dir`` is missing, an empty folder or a run folder of the runner (it holds ``run.json``, or
    only the training cache ``runs/`` that :func:`set_aside` moved in before the record was written).
    A symbolic link (the run would write through it, and a rerun's swap would move the link, not the run), a
    file, or a folder with other files and no ``run.json`` (not the runner's) is never replaced.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> run_dir_problem(out / "01_a") is None
    True
    >>> (out / "01_a").mkdir(); _ = (out / "01_a" / "notes.txt").write_text("mine")
    >>> run_dir_problem(out / "01_a")  # doctest: +ELLIPSIS
    "Expected the run folder '.../01_a' to be new, empty or a run of `jmlkit run` (with run.json), but it holds other files (e.g. 'notes.txt'); it is left as it is: move it or choose another `--out`."
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        return (f"Expected the run folder {str(run_dir)!r} to be a folder, but it is a symbolic link (to "
                f"{os.readlink(run_dir)!r}); it is left as it is: remove the link or choose another `--out`.")
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        return (f"Expected the run folder {str(run_dir)!r} to be a folder, but it is a file; it is left as it is: "
                "move it or choose another `--out`.")
    if (run_dir / RUN_RECORD).is_file():
        return None
    try:
        entries = sorted(os.listdir(run_dir))
    except OSError as err:
        return f"Expected the run folder {str(run_dir)!r} to be readable, but it cannot be listed ({err.strerror})."
    if set(entries) <= {CACHE_DIR} or _is_runners(previous_path(run_dir), record=True):
        return None  # empty, or what set_aside made (a killed batch's rerun: recover() gives the previous run back)
    other = [e for e in entries if e != CACHE_DIR]
    return (f"Expected the run folder {str(run_dir)!r} to be new, empty or a run of `jmlkit run` (with "
            f"{RUN_RECORD}), but it holds other files (e.g. {other[0]!r}); it is left as it is: move it or choose "
            "another `--out`.")


def _move_cache(source: Path, dest: Path) -> None:
    """Move ``source/runs`` to ``dest/runs``; entries ``dest/runs`` already has stay where they are."""
    src = source / CACHE_DIR
    if not src.is_dir():
        return
    target = dest / CACHE_DIR
    if not target.exists():
        os.replace(src, target)
        return
    for entry in sorted(src.iterdir()):
        if not (target / entry.name).exists():
            os.replace(entry, target / entry.name)


def set_aside(run_dir: str | os.PathLike) -> Path | None:
    """Move the previous run in ``run_dir`` (a folder with a ``run.json``) aside before ``run_dir`` reruns.

    The folder becomes ``OUT/.<run>.previous`` and a fresh ``run_dir`` is made, holding the previous
    training cache ``runs/``. Returns the aside path, or ``None`` when there was no previous run (``run_dir``
    is then created if needed). A ``ValueError`` (:func:`run_dir_problem`) when ``run_dir`` is not the runner's
    to replace: a symbolic link, a file, or a folder with other files and no ``run.json``; nothing moves then.
    """
    run_dir = Path(run_dir)
    problem = run_dir_problem(run_dir)
    if problem is not None:
        raise ValueError(problem)
    if not (run_dir / RUN_RECORD).is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        return None
    aside = previous_path(run_dir)
    if aside.exists() or aside.is_symlink():  # cannot happen after recover(); never mix two earlier runs
        if not _is_runners(aside, record=True):
            raise ValueError(f"Expected {str(aside)!r} to be the runner's copy of an earlier run, but it is "
                             "something else; it is left as it is: move it or choose another `--out`.")
        shutil.rmtree(aside)
    os.replace(run_dir, aside)
    run_dir.mkdir()
    _move_cache(aside, run_dir)
    return aside


def restore_previous(run_dir: str | os.PathLike) -> bool:
    """Put the previous run back into ``run_dir`` (the rerun was interrupted); False when there is none.

    The rerun's ``runs/`` (the previous cache plus the training runs finished meanwhile) moves back with it;
    the rest of the rerun's folder is deleted.
    """
    run_dir = Path(run_dir)
    aside = previous_path(run_dir)
    if not _is_runners(aside, record=True):
        return False
    trash = _discard_path(run_dir)
    if run_dir.is_dir() and not run_dir.is_symlink():
        _move_cache(run_dir, aside)
        os.replace(run_dir, trash)
    elif run_dir.exists() or run_dir.is_symlink():
        run_dir.unlink()
    os.replace(aside, run_dir)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def discard_previous(run_dir: str | os.PathLike) -> None:
    """Delete the previous run of ``run_dir`` (the rerun has finished); a hidden ``.<run>.previous`` that is not the
    runner's (a link, or a folder without ``run.json``) is left as it is."""
    aside = previous_path(run_dir)
    if _is_runners(aside, record=True):
        shutil.rmtree(aside, ignore_errors=True)


def _pending(out: Path) -> list[Path]:
    """The hidden folders of ``out`` that :func:`recover` deals with."""
    try:
        entries = list(out.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if p.name.startswith(".") and p.name.endswith((PREVIOUS_SUFFIX, _DISCARD))
                  and p.is_dir() and not p.is_symlink())


def _recover_locked(out: Path) -> list[str]:
    restored = []
    for hidden in _pending(out):
        if not hidden.exists():  # handled with its run already
            continue
        if hidden.name.endswith(PREVIOUS_SUFFIX):
            run_dir = out / hidden.name[1:-len(PREVIOUS_SUFFIX)]
            if (read_run_record(run_dir) or {}).get("status") in FINAL_STATUSES:
                discard_previous(run_dir)
            elif restore_previous(run_dir):
                restored.append(run_dir.name)
        elif _is_runners(hidden):  # a .discard folder
            shutil.rmtree(hidden, ignore_errors=True)
    return restored


def recover(out_dir: str | os.PathLike) -> list[str]:
    """Finish what a killed batch left in ``out_dir`` (see the module docs); returns the names of the runs restored.

    Does nothing while a batch holds ``out_dir`` (that batch, in this process or another, owns its aside copies),
    nor when the folder cannot be written.
    """
    out = Path(out_dir)
    if not _pending(out) or _held_here(out):
        return []
    try:
        with hold_out_dir(out):
            return _recover_locked(out)
    except (OutDirBusy, OSError):
        return []


# --------------------------------------------------------------------------- the lock
_HELD_LOCK = threading.Lock()
_HELD: dict[str, list] = {}  # resolved folder -> [file descriptor or None, depth]


def _key(out: Path) -> str:
    return str(out.resolve())


def _held_here(out: Path) -> bool:
    with _HELD_LOCK:
        return _key(out) in _HELD


def _lock_owner(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def _acquire(out: Path) -> int | None:
    """Open and lock ``out/LOCK_FILE``; returns its descriptor (``None`` where ``flock`` does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        return None
    path = out / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutDirBusy(f"Expected `out_dir` {str(out)!r} to be free, but another `jmlkit run` "
                                 f"({_lock_owner(path)}) is writing into it.") from None
            raise
        try:  # the holder before us may have removed the file after we opened it: lock the current one
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


@contextlib.contextmanager
def hold_out_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of the output folder ``out_dir`` (created if needed) for the duration of the block.

    Re-entrant within a process. Raises :class:`OutDirBusy` (a ``ValueError``) when another process holds it,
    ``OSError`` when the folder cannot be created or written. The lock file is removed on release.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = _key(out)
    with _HELD_LOCK:
        entry = _HELD.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            _HELD[key] = entry = [_acquire(out), 1]
    try:
        yield out
    finally:
        with _HELD_LOCK:
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[key]
                if entry[0] is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(out / LOCK_FILE)
                    os.close(entry[0])
