r"""What lies on disk: the names in jmlkit's two kinds of folder, when a run is finished, and reading a run record.

Every other module calls this one for a file name; none spells one.

**A training run folder** (:func:`jmlkit.engine.fit` with ``config.out``; the run cache of
:mod:`jmlkit.experiments.runs` keeps one per configuration and seed)::

    <name>__seed<k>[__<hash8>]/      run_folder_name(): the run cache adds the first 8 hex digits of config_hash
        config.json  weights.json  history.csv  metrics.json  [model.pt]  [evaluations.json]   RUN_FILES, first
        recipe.json                                                            DONE_FILE, the completion marker, last

A run folder is *finished* (:func:`is_complete`, the one rule every reader applies) when it is not hidden
and its completion marker :data:`DONE_FILE` is a JSON object: the marker is written last, inside a hidden
folder that is renamed into place only when complete (:mod:`jmlkit.engine.runfolder`).

**A notebook run folder** of the batch runner (``jmlkit run``; one per notebook and parameter combination)::

    OUT/<run>/                       <run>: the notebook's stem (``02_label_smoothing``), maybe with ``__k=v``
        run.json                     RUN_RECORD: the runner's record (status, timings, parameters), read_run_record()
        metrics.json                 METRICS_FILE: the notebook's headline numbers (jmlkit.io.write_metrics)
        runs/                        CACHE_DIR: the notebook's run cache, one training run folder per run
    OUT/.<run>.previous/             previous_folder(): the previous run, kept aside while <run> runs again

A notebook's output folder is named after the notebook (:func:`is_notebook_folder`: digits and ``_`` first), so the
runs of the other notebooks of the same batch are found next to it (:func:`cache_folders`).

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> run_folder_name("ce_hard", 2), parse_run_folder_name("ce_hard__seed2")
    ('ce_hard__seed2', ('ce_hard', 2))
    >>> run_folder_name("ce_hard", 2, "1a2b3c4d5e6f7a8b"), run_folder_hash("ce_hard__seed2__1a2b3c4d")
    ('ce_hard__seed2__1a2b3c4d', '1a2b3c4d')
    >>> folder = Path(tempfile.mkdtemp()) / "ce__seed0"
    >>> folder.mkdir()
    >>> is_complete(folder)
    False
    >>> _ = (folder / DONE_FILE).write_text(json.dumps({"hash": "1a2b"}))
    >>> is_complete(folder), is_complete(folder, digest="1a2b"), is_complete(folder, digest="ffff")
    (True, True, False)
    >>> is_complete(folder, files=(METRICS_FILE,))  # a run that must also hold its metrics
    False
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jmlkit._checks import check_int, check_str

__all__ = [
    "notebook_number",
    "CURVES_DIR",
    "curves_file",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "HISTORY_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "EVALUATIONS_FILE",
    "MODEL_USED_FILE",
    "DONE_FILE",
    "RUN_FILES",
    "RUN_HASH_DIGITS",
    "run_folder_name",
    "parse_run_folder_name",
    "run_folder_hash",
    "read_done",
    "is_complete",
    "require_complete",
    "RUN_RECORD",
    "CACHE_DIR",
    "PREVIOUS_SUFFIX",
    "read_run_record",
    "notebook_run_status",
    "previous_folder",
    "is_notebook_folder",
    "cache_folders",
]

# ============================================================================ a training run folder

#: The configuration of a training run (:meth:`jmlkit.engine.TrainConfig.to_json`).
CONFIG_FILE = "config.json"
#: What the model started from (pretrained weights, or none).
WEIGHTS_FILE = "weights.json"
#: One row per epoch: losses, learning rate, time.
HISTORY_FILE = "history.csv"
#: The metrics of a training run on its evaluation split; in a notebook run folder, the notebook's headline numbers.
METRICS_FILE = "metrics.json"
#: The checkpoint (``weights_only``), when the run saved one.
MODEL_FILE = "model.pt"
#: The values of a run's extra evaluators (``fit(evaluators=...)``): ``{name: {"evaluator", "value"}}``; the run cache
#: may add an evaluator's value to a finished run later.
EVALUATIONS_FILE = "evaluations.json"
#: Left in a finished run folder when a notebook reads its model (:attr:`jmlkit.experiments.RunResult.model`): the
#: committed records of a batch keep the weights of these runs only (:mod:`jmlkit.runner.records`).
MODEL_USED_FILE = ".model_used"
#: The completion marker of a run folder, written last (JSON: at least ``{"hash": ...}``).
DONE_FILE = "recipe.json"
#: Every file a training run folder holds, the marker last (``overwrite`` replaces a run that holds nothing else).
RUN_FILES = (CONFIG_FILE, WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE, EVALUATIONS_FILE, MODEL_USED_FILE,
             DONE_FILE)
#: Hex digits of :func:`jmlkit.engine.config_hash` in a run cache folder's name.
RUN_HASH_DIGITS = 8

_RUN_NAME_RE = re.compile(r"^(?P<config>.+?)__seed(?P<seed>\d+)(?:__(?P<hash>[0-9a-f]{8}))?$")


def run_folder_name(name: str, seed: int, digest: str | None = None) -> str:
    """``<name>__seed<seed>``, or with ``digest`` (a :func:`jmlkit.engine.config_hash`)
    ``<name>__seed<seed>__<first 8 hex digits of digest>``: the one naming of a training run's folder.
    The run cache names its folders with the hash, so that runs of one name with different
    configurations never share a folder."""
    check_str("name", name)
    text = f"{name}__seed{check_int('seed', seed, low=0)}"
    if digest is None:
        return text
    if not isinstance(digest, str) or not re.fullmatch(rf"[0-9a-f]{{{RUN_HASH_DIGITS},}}", digest):
        raise ValueError(f"Expected `digest` to be a config_hash (at least {RUN_HASH_DIGITS} lower-case hex digits), "
                         f"but got {digest!r}.")
    return f"{text}__{digest[:RUN_HASH_DIGITS]}"


def parse_run_folder_name(name: str) -> tuple[str, int] | None:
    """``(name, seed)`` of a folder named by :func:`run_folder_name` (with or without the hash), else ``None``."""
    match = _RUN_NAME_RE.match(str(name))
    if match is None:
        return None
    return match["config"], int(match["seed"])


def run_folder_hash(name: str) -> str | None:
    """The configuration hash part (8 hex digits) of a run folder name, ``None`` when it has none."""
    match = _RUN_NAME_RE.match(str(name))
    return None if match is None else match["hash"]


def read_done(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The completion marker's content, or ``None`` when there is none or it is not a JSON object.

    It does not look at the folder's name: :func:`is_complete` is the rule for a finished run."""
    try:
        data = json.loads((Path(folder) / DONE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_complete(folder: str | os.PathLike, *, digest: str | None = None, files: Sequence[str] = ()) -> bool:
    """Whether ``folder`` holds a finished training run: the one rule of every reader of run folders.

    A finished run is a folder whose name is not hidden (``.<name>.partial-...`` are runs in progress or
    interrupted) and whose completion marker :data:`DONE_FILE`, written last, is a JSON object.

    Args:
        folder: the folder.
        digest: also require the marker's ``hash`` to be this :func:`jmlkit.engine.config_hash` (a run of exactly
            that configuration).
        files: names of :data:`RUN_FILES` that the reader needs besides the marker (a run trained without a
            checkpoint has no :data:`MODEL_FILE`).
    """
    folder = Path(folder)
    unknown = [f for f in files if f not in RUN_FILES]
    if unknown:
        raise ValueError(f"Expected `files` to be names among {RUN_FILES}, but got {unknown}.")
    if folder.name.startswith(".") or not folder.is_dir():
        return False
    done = read_done(folder)
    if done is None or (digest is not None and done.get("hash") != digest):
        return False
    return all((folder / name).is_file() for name in files)


def require_complete(folder: str | os.PathLike) -> dict[str, Any]:
    """The completion marker of the finished run in ``folder`` (:func:`is_complete`), or an error naming the folder:
    ``FileNotFoundError`` when it is no folder, ``ValueError`` when it is not finished (an interrupted run, one still
    running, or a folder that is no run at all).

    >>> import tempfile
    >>> require_complete(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: '...' is not a complete run folder: no recipe.json; interrupted or still running?
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Expected a run folder, but {str(folder)!r} does not exist or is not a folder.")
    if not is_complete(folder):
        raise ValueError(f"{str(folder)!r} is not a complete run folder: no {DONE_FILE}; interrupted or still running?")
    return read_done(folder)


# ============================================================================ a notebook run folder (jmlkit run)

#: The batch runner's record of a notebook run, in its folder.
RUN_RECORD = "run.json"
#: The run cache of a notebook's output folder: one training run folder per run.
CACHE_DIR = "runs"
#: The end of the hidden name of a previous notebook run kept aside while it runs again (``.<run>.previous``).
PREVIOUS_SUFFIX = ".previous"

_NOTEBOOK_FOLDER_RE = re.compile(r"^(?P<number>\d+[a-z]?)_")


def read_run_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The runner's record of the notebook run in ``run_dir`` (:data:`RUN_RECORD`); ``None`` when it is missing,
    unreadable or not a JSON object."""
    try:
        record = json.loads((Path(run_dir) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def notebook_run_status(run_dir: str | os.PathLike) -> str | None:
    """The status of the notebook run in ``run_dir`` (``ok``, ``failed``, ``running``...) from its record; ``None``
    without a record (a notebook run outside the runner, e.g. in JupyterLab), ``"unreadable"`` for a record that
    is not a JSON object. Readers count a notebook's results when this is ``None`` or ``"ok"``.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> notebook_run_status(folder)
    >>> _ = (folder / RUN_RECORD).write_text('{"status": "running"}')
    >>> notebook_run_status(folder)
    'running'
    >>> _ = (folder / RUN_RECORD).write_text('{"status"')
    >>> notebook_run_status(folder)
    'unreadable'
    """
    record = read_run_record(run_dir)
    if record is not None:
        return str(record.get("status"))
    return "unreadable" if (Path(run_dir) / RUN_RECORD).exists() else None


def previous_folder(run_dir: str | os.PathLike) -> Path:
    """``OUT/.<run>.previous``: where the previous run of the notebook run folder ``run_dir`` waits while it runs
    again."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f".{run_dir.name}{PREVIOUS_SUFFIX}")


#: The playground's folder of the curves its watch drew, one file per run of its cache (:func:`curves_file`).
CURVES_DIR = "curves"


def curves_file(output_dir: str | os.PathLike, run_dir: str | os.PathLike) -> Path:
    """Where the playground keeps the watched curves of the run ``run_dir`` of its cache:
    ``output_dir/curves/<run folder name>.csv``.

    >>> curves_file("out/07_playground", "out/07_playground/runs/small.jml.bls__seed0__1a2b3c4d").as_posix()
    'out/07_playground/curves/small.jml.bls__seed0__1a2b3c4d.csv'
    """
    return Path(output_dir) / CURVES_DIR / f"{Path(run_dir).name}.csv"


def notebook_number(name: str | os.PathLike) -> str | None:
    """The number of a notebook (or of its output folder): the digits and an optional letter before the first
    ``_`` (``"02"``, ``"02b"`` of a part of notebook 02); ``None`` for another name.

    >>> notebook_number("02b_smoothing_ablation.ipynb"), notebook_number("03_distillation"), notebook_number("x_1")
    ('02b', '03', None)
    """
    match = _NOTEBOOK_FOLDER_RE.match(Path(name).name)
    return match["number"] if match else None


def is_notebook_folder(name: str | os.PathLike) -> bool:
    """Whether a folder name is a notebook's output folder: named after the notebook, its number and ``_`` first
    (``03_distillation``, ``02b_smoothing_ablation``, ``02_label_smoothing__seed=1``).

    >>> is_notebook_folder("03_distillation"), is_notebook_folder("02b_smoothing_ablation"), is_notebook_folder("interactive")
    (True, True, False)
    """
    return notebook_number(name) is not None


def cache_folders(output_dir: str | os.PathLike) -> list[Path]:
    """The run caches where the runs of ``output_dir`` may already be: its own :data:`CACHE_DIR` first, then, when
    ``output_dir`` is a notebook's output folder (:func:`is_notebook_folder`), those of the other notebooks' folders
    next to it (the same batch run, or ``runs/interactive``), sorted. Only folders that exist are listed."""
    output_dir = Path(output_dir)
    roots = [output_dir]
    parent = output_dir.parent
    if is_notebook_folder(output_dir.name) and parent.is_dir():
        roots += sorted(p for p in parent.iterdir()
                        if p.is_dir() and p != output_dir and is_notebook_folder(p.name))
    return [root / CACHE_DIR for root in roots if (root / CACHE_DIR).is_dir()]
