"""Compact records of a batch's training runs, to commit beside its result files: what the ``results`` profile replays.

``write_records(RUNS_DIR, RECORDS_DIR)`` (``jmlkit run --results DIR`` calls it with ``DIR/records``) writes, for each
finished notebook of the batch that trained runs (``RUNS_DIR/<notebook>/runs/<run>/``), one record per trained model:
``RECORDS_DIR/<notebook>/runs/<run>/`` with

* the run's small files: ``config.json``, ``weights.json``, ``history.csv``, ``metrics.json``, ``evaluations.json``
  (the evaluators' tables the figures draw: calibration by boundary distance, per class, soft-label statistics)
  and its completion marker, which says ``"record": true`` (a record is read-only: nothing adds to it);
* ``model.pt`` only for the runs whose model a notebook read (the marker :data:`~jmlkit.layout.MODEL_USED_FILE`
  that :attr:`jmlkit.experiments.RunResult.model` leaves): a prediction panel, a gradient, an exercise; its weights
  stored as float16 (half the bytes; loaded back into the float32 model). The other runs' figures come from their
  metrics, histories and evaluations.

A run copied under another name (a sweep that asked again for a configuration, or 02b and 02c reusing 02's runs)
is one model: it is recorded once, in the first notebook (by name) that has it, with its weights when any copy had
them read; a replay finds it there by its hash (:func:`jmlkit.experiments.replay_run`). Paths of this machine are not kept: ``out`` becomes the record's own path (relative to
``RECORDS_DIR``), a distillation teacher its record (``<notebook>/runs/<run>``), and the marker's ``copied_from``
goes. A notebook's records are written into a hidden folder and swapped in whole, so a reader never sees half
of them; notebooks of the batch that did not finish keep their previous records.

Example (the size of what it wrote):
    >>> from pathlib import Path
    >>> record_size(Path("no/such/records"))
    {'files': 0, 'bytes': 0, 'models': 0, 'model_bytes': 0}
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from jmlkit.io import atomic_write_text, visible_folders
from jmlkit.layout import (CACHE_DIR, CONFIG_FILE, DONE_FILE, EVALUATIONS_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE,
                           MODEL_USED_FILE, WEIGHTS_FILE, is_complete, notebook_run_status, parse_run_folder_name,
                           read_done, run_folder_hash)

__all__ = ["RECORDS_SUBDIR", "write_records", "record_size"]

#: The records' folder inside a results folder (``results/full/records``: :data:`jmlkit.profiles.RECORDS_DIR`).
RECORDS_SUBDIR = "records"
_SMALL_FILES = (WEIGHTS_FILE, HISTORY_FILE, METRICS_FILE, EVALUATIONS_FILE)


def _check_path(name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"Expected `{name}` to be a path, but got {value!r} ({type(value).__name__}).")
    return Path(value)


def _model_key(folder: Path) -> tuple[str | None, int | None]:
    """(configuration hash, seed) of a run folder's name: the same key is the same model."""
    parsed = parse_run_folder_name(folder.name)
    return run_folder_hash(folder.name), (parsed[1] if parsed is not None else None)


def _distinct_runs(cache: Path) -> list[Path]:
    """The finished runs of one notebook's cache that its last run used, one per model: of one name and seed the run
    finished last (an older configuration under the same name, from an earlier run of the notebook with other
    settings, is not what its tables show: :func:`jmlkit.experiments.find_runs` leaves it out too), then of one model
    (hash and seed) the copy completed first."""
    runs = []
    for folder in visible_folders(cache):
        parsed, digest = parse_run_folder_name(folder.name), run_folder_hash(folder.name)
        if parsed is not None and digest is not None and is_complete(folder, files=(CONFIG_FILE, METRICS_FILE)):
            runs.append((folder.joinpath(DONE_FILE).stat().st_mtime_ns, folder.name, folder, (digest, parsed[1]),
                         (parsed[0], parsed[1])))
    latest = {name_seed: (done, name, folder, key) for done, name, folder, key, name_seed in sorted(runs)}
    seen, out = set(), []
    for _, _, folder, key in sorted(latest.values()):
        if key not in seen:
            seen.add(key)
            out.append(folder)
    return sorted(out)


def _write_half(src: Path, dst: Path) -> None:
    """``model.pt`` with its floating-point weights stored as float16: half the bytes in the repository.
    :func:`~jmlkit.engine.load_checkpoint` copies them back into the float32 model, so a figure drawn from a record
    matches the full run's up to float16 rounding (about 3 significant digits of each weight)."""
    import torch

    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    payload["record_dtype"] = "float16"
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}")
    torch.save(payload, tmp)
    os.replace(tmp, dst)


def _record_config(folder: Path, relative: str, teachers: dict[str, str]) -> str:
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    config["out"] = relative
    if config.get("replay") is not None:
        config["replay"] = None
    teacher = config.get("teacher")
    if teacher:
        config["teacher"] = teachers.get(str(Path(teacher).resolve()), Path(teacher).name)
    return json.dumps(config, indent=2) + "\n"


def write_records(runs_dir: str | os.PathLike, records_dir: str | os.PathLike) -> list[Path]:
    """Write the records of every finished notebook of ``runs_dir`` that trained runs into ``records_dir`` (see the
    module docs); returns the notebooks' record folders written, sorted.

    Raises:
        TypeError: a folder that is not a path.
        ValueError: ``runs_dir`` is not a folder.
    """
    runs_dir, records_dir = _check_path("runs_dir", runs_dir), _check_path("records_dir", records_dir)
    if not runs_dir.is_dir():
        raise ValueError(f"Expected `runs_dir` to be a batch folder, but got {str(runs_dir)!r} (not a folder).")
    notebooks = [nb for nb in visible_folders(runs_dir)
                 if notebook_run_status(nb) in (None, "ok") and (nb / CACHE_DIR).is_dir()]
    # one record per model (hash and seed) in the whole batch: in the first notebook (by name) that has it, the
    # notebooks that reuse it (02b and 02c copy 02's runs) find it there by its hash when they replay
    owners: dict[tuple[str | None, int | None], str] = {}
    for nb in notebooks:
        for folder in _distinct_runs(nb / CACHE_DIR):
            owners.setdefault(_model_key(folder), f"{nb.name}/{CACHE_DIR}/{folder.name}")
    plan = {nb.name: [f for f in _distinct_runs(nb / CACHE_DIR)
                      if owners[_model_key(f)] == f"{nb.name}/{CACHE_DIR}/{f.name}"] for nb in notebooks}
    # a teacher is named by its record, whichever notebook's cache (and whichever copy of the run) it is in; a model
    # is kept when any copy of it had its weights read
    teachers, used = {}, set()
    for nb in notebooks:
        for folder in visible_folders(nb / CACHE_DIR):
            key = _model_key(folder)
            if key in owners:
                teachers[str(folder.resolve())] = owners[key]
                if (folder / MODEL_USED_FILE).is_file():
                    used.add(key)
    written = []
    for name, folders in plan.items():
        if not folders:
            shutil.rmtree(records_dir / name, ignore_errors=True)  # every run it has is recorded by another notebook
            continue
        tmp = records_dir / f".{name}.records-{uuid.uuid4().hex[:8]}"
        try:
            for folder in folders:
                relative = f"{name}/{CACHE_DIR}/{folder.name}"
                dst = tmp / CACHE_DIR / folder.name
                dst.mkdir(parents=True)
                for file in _SMALL_FILES:
                    if (folder / file).is_file():
                        shutil.copy2(folder / file, dst / file)
                if _model_key(folder) in used and (folder / MODEL_FILE).is_file():
                    _write_half(folder / MODEL_FILE, dst / MODEL_FILE)
                atomic_write_text(dst / CONFIG_FILE, _record_config(folder, relative, teachers))
                done = {k: v for k, v in (read_done(folder) or {}).items() if k != "copied_from"}
                atomic_write_text(dst / DONE_FILE, json.dumps({**done, "record": True}, indent=1) + "\n")  # last
            target = records_dir / name
            old = records_dir / f".{name}.old-{uuid.uuid4().hex[:8]}"
            if target.exists():
                target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
            written.append(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return sorted(written)


def record_size(records_dir: str | os.PathLike) -> dict[str, int]:
    """How much the records take: files, bytes, and of these the models and their bytes."""
    records_dir = _check_path("records_dir", records_dir)
    files = [p for p in records_dir.rglob("*") if p.is_file()] if records_dir.is_dir() else []
    models = [p for p in files if p.name == MODEL_FILE]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files), "models": len(models),
            "model_bytes": sum(p.stat().st_size for p in models)}
