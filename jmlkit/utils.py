"""Small helpers shared by the notebooks and the engine: output folders, figures, metrics files, devices."""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) -> ``cuda`` when present, else ``cpu``; anything else is passed to ``torch.device``.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def output_folder(path: str | os.PathLike) -> Path:
    """Create (if needed) and return the folder as an absolute :class:`~pathlib.Path`."""
    out = Path(path).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.tolist() if value.numel() != 1 else value.item()
    if hasattr(value, "item") and not isinstance(value, (list, dict)) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_metrics(output_dir: str | os.PathLike, metrics: Mapping[str, Any], name: str = "metrics.json") -> Path:
    """Write headline metrics as JSON (tensors and numpy scalars become numbers, NaN becomes null), atomically.

    The batch runner reads ``metrics.json`` of each notebook run into ``summary.csv``.

    >>> import tempfile, json
    >>> d = tempfile.mkdtemp()
    >>> json.load(open(write_metrics(d, {"mIoU_D": torch.tensor(0.5)})))
    {'mIoU_D': 0.5}
    """
    return atomic_write_text(Path(output_dir) / name, json.dumps(_plain(dict(metrics)), indent=2, sort_keys=True))


def save_figure(fig: Any, output_dir: str | os.PathLike, name: str, *, formats: tuple[str, ...] = ("png", "svg"),
                dpi: int = 120) -> list[Path]:
    """Save a matplotlib figure as ``output_dir/name.png`` and ``.svg`` (the batch runner collects both)."""
    import matplotlib

    out = output_folder(output_dir)
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        # no date and fixed element ids: the same figure gives the same file, so reruns leave git clean
        metadata = {"Date": None} if fmt in ("svg", "pdf") else None
        with matplotlib.rc_context({"svg.hashsalt": "jmlkit"}):
            fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    return paths
