"""Files that jmlkit writes: atomic writes, the completion marker, metrics and figures.

Every file is written aside and renamed into place (:func:`atomic_write`), so a reader never sees a
half-written file, even after ``kill -9``. What the files and folders are called, and when a run folder is
finished, is :mod:`jmlkit.layout`'s; this module writes them: :func:`mark_done` writes a run folder's
completion marker (last), :func:`write_metrics` a notebook's headline numbers. The names of
:mod:`jmlkit.layout` that readers used from here still work (:data:`DONE_FILE`, :func:`read_done`,
:func:`run_folder_name`, :func:`parse_run_folder_name`, :func:`run_folder_hash`).

Example:
    >>> import tempfile, json
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> path = write_metrics(d, {"mIoU_D": 0.5, "ECE_D": float("nan")})
    >>> json.loads(path.read_text())
    {'ECE_D': None, 'mIoU_D': 0.5}
    >>> _ = mark_done(d, hash="1a2b")
    >>> read_done(d)
    {'hash': '1a2b'}
"""
from __future__ import annotations

import contextlib
import io as _io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jmlkit.layout import (DONE_FILE, METRICS_FILE, RUN_HASH_DIGITS, parse_run_folder_name, read_done,
                           run_folder_hash, run_folder_name)

__all__ = [
    "DONE_FILE",
    "atomic_write",
    "atomic_write_text",
    "atomic_copy",
    "atomic_torch_save",
    "jsonable",
    "write_json",
    "write_metrics",
    "output_folder",
    "folder_problem",
    "visible_folders",
    "save_figure",
    "FIGURE_METADATA",
    "SVG_HASH_SALT",
    "run_folder_name",
    "parse_run_folder_name",
    "run_folder_hash",
    "RUN_HASH_DIGITS",
    "mark_done",
    "read_done",
]

def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync and ``os.replace``.

    The folder is created if needed. An interrupted write leaves the old file (or none), never a
    partial one, and no temporary file behind.
    """
    return _write_aside(path, lambda fh: fh.write(data.encode("utf-8") if isinstance(data, str) else data))


def _write_aside(path: str | os.PathLike, write: Callable[[Any], Any]) -> Path:
    """``write(file)`` into a temporary file next to ``path``, fsync, then ``os.replace`` it onto ``path`` (a link
    there is replaced, its target never written); on any error the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files: give the user's usual mode
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: os.umask can only be read by setting it, which is not thread-safe later.
_UMASK = _read_umask()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a text."""
    return atomic_write(path, text)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the file ``src`` to ``dst`` the way :func:`atomic_write` writes: through a temporary file next to
    ``dst``, then ``os.replace``. A symbolic link at ``dst`` is replaced by the copy; its target is never
    written (``shutil.copyfile`` would write through the link). Returns ``dst``.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "target.txt").write_text("kept")
    >>> (d / "link.png").symlink_to(d / "target.txt")
    >>> _ = (d / "fig.png").write_bytes(b"png")
    >>> _ = atomic_copy(d / "fig.png", d / "link.png")
    >>> (d / "link.png").is_symlink(), (d / "link.png").read_bytes(), (d / "target.txt").read_text()
    (False, b'png', 'kept')
    """
    with open(src, "rb") as source:
        return _write_aside(dst, lambda out: shutil.copyfileobj(source, out))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`atomic_write`."""
    import torch

    buffer = _io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, buffer.getvalue())


def jsonable(value: Any) -> Any:
    """``value`` with tensors, numpy values and data frames turned into JSON types; NaN becomes ``None``.

    >>> import torch
    >>> jsonable({"a": torch.tensor([1.0, 2.0]), "b": np.float32(0.5), "c": float("nan")})
    {'a': [1.0, 2.0], 'b': 0.5, 'c': None}
    """
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.item() if value.numel() == 1 else value.tolist()
        return jsonable(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return jsonable(value.item())
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a pandas DataFrame
        return jsonable(value.to_dict(orient="list"))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, data: Any, *, sort_keys: bool = False) -> Path:
    """``data`` (through :func:`jsonable`) as indented JSON, atomically."""
    return atomic_write(path, json.dumps(jsonable(data), indent=2, sort_keys=sort_keys))


def write_metrics(output_dir: str | os.PathLike, metrics: Mapping[str, Any], name: str = METRICS_FILE) -> Path:
    """Write headline metrics as JSON (tensors and numpy scalars become numbers, NaN becomes null), atomically.

    The batch runner reads the :data:`~jmlkit.layout.METRICS_FILE` of each notebook run into its summary.
    """
    return write_json(Path(output_dir) / name, dict(metrics), sort_keys=True)


def output_folder(path: str | os.PathLike) -> Path:
    """Create (if needed) and return the folder as an absolute :class:`~pathlib.Path`."""
    out = Path(path).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be an output folder (made if needed, then written into), in words; ``None`` when it can.

    ``path`` must not be a file, and the nearest existing folder on the way to it must be one this
    process can write into: checked with :func:`os.access`, then for real (root, ACLs and read-only
    mounts answer ``os.access`` wrongly) by making and removing a hidden folder there. Nothing else
    is created. The one check behind ``jmlkit run --out/--figures/--results`` and a training run's ``out``.

    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "f.csv").write_text("x")
    >>> folder_problem(root / "new" / "deeper") is None
    True
    >>> folder_problem(root / "f.csv")  # doctest: +ELLIPSIS
    "expected a folder, but '.../f.csv' is a file"
    """
    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        return f"expected a folder, but {str(path)!r} is a file"
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            return f"expected a folder, but {str(existing)!r} is a broken link"
        if existing.parent == existing:
            break
        existing = existing.parent
    on_the_way = "" if existing == path else f" (on the way to {str(path)!r})"
    if not existing.is_dir():
        return f"expected a folder, but {str(existing)!r}{on_the_way} is a file"
    reason = None if os.access(existing, os.W_OK | os.X_OK) else "permission denied"
    if reason is None:
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".jmlkit-probe-", dir=existing))
        except OSError as err:
            reason = err.strerror or type(err).__name__
    if reason is not None:
        return f"expected a folder you can write into, but {str(existing)!r}{on_the_way} is not writable ({reason})"
    return None


def visible_folders(path: str | os.PathLike) -> list[Path]:
    """The sub-folders of ``path`` that are not hidden, sorted: where run folders are looked for.

    A hidden folder (``.name``) is never a run: jmlkit builds runs aside under hidden names (a training
    run's ``.<name>.partial-...``, the runner's ``.<run>.previous``) and renames them when complete.
    Raises ``OSError`` when ``path`` cannot be listed.
    """
    return sorted(p for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith("."))


#: Figure formats :func:`save_figure` writes reproducibly, with the metadata that keeps dates out of each.
FIGURE_METADATA: dict[str, dict[str, Any] | None] = {
    "png": None,                     # matplotlib writes no time into a PNG (only its "Software" version)
    "svg": {"Date": None},           # no <dc:date>
    "pdf": {"CreationDate": None},   # no /CreationDate
}
#: The salt of the ids in SVG files (clip paths, markers, images): fixed, so ids are the same in every process.
SVG_HASH_SALT = "jmlkit"


def save_figure(fig: Any, output_dir: str | os.PathLike, name: str, *, formats: tuple[str, ...] = ("png", "svg"),
                dpi: int = 120) -> list[Path]:
    """Save a matplotlib figure as ``output_dir/name.png`` and ``.svg`` (the batch runner collects both).

    The files are reproducible: no date in the SVG or PDF, no time in the PNG, and SVG element ids
    from a fixed salt (:data:`SVG_HASH_SALT`) instead of a random one, so the same figure gives the
    same bytes in every process and a rerun leaves git clean. ``formats`` is a tuple of keys of
    :data:`FIGURE_METADATA` (``png``, ``svg``, ``pdf``).
    """
    import matplotlib

    if not isinstance(name, str):
        raise TypeError(f"Expected `name` to be a str, but got {name!r} ({type(name).__name__}).")
    if not name:
        raise ValueError("Expected `name` to be a non-empty file name, but got ''.")
    if isinstance(formats, str) or not isinstance(formats, (tuple, list)):
        raise TypeError(f"Expected `formats` to be a tuple of formats, but got {formats!r} "
                        f"({type(formats).__name__}).")
    unknown = [f for f in formats if f not in FIGURE_METADATA]
    if unknown or not formats:
        raise ValueError(f"Expected `formats` to be a non-empty tuple of {tuple(FIGURE_METADATA)}, but got "
                         f"{tuple(formats)!r}.")
    out = output_folder(output_dir)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        buffer = _io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
            fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=FIGURE_METADATA[fmt])
        paths.append(atomic_write(path, buffer.getvalue()))
    return paths


def mark_done(folder: str | os.PathLike, **info: Any) -> Path:
    """Write the completion marker of a run folder (:data:`~jmlkit.layout.DONE_FILE`; last, atomically) with ``info``
    in it (:func:`jmlkit.layout.read_done` reads it back)."""
    return write_json(Path(folder) / DONE_FILE, info)
