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

The runs recorded are those :func:`jmlkit.experiments.find_runs` lists for the batch, as notebook 06 reads them: of
one name and seed the run finished last (an older configuration under the same name is not what the tables show),
and a run copied under another name (a sweep that asked again for a configuration, or 02b and 02c reusing 02's runs)
once, under the notebook and name it was trained with, with its weights when any copy had them read; a replay finds
it there by its hash (:func:`jmlkit.experiments.replay_run`). Paths of this machine are not kept: ``out`` becomes
the record's own path (relative to ``RECORDS_DIR``), a distillation teacher its record (``<notebook>/runs/<run>``),
and the marker's ``copied_from`` goes. A notebook's records are written into a hidden folder and swapped in whole, so a reader never sees half
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
                           MODEL_USED_FILE, WEIGHTS_FILE, notebook_run_status, parse_run_folder_name,
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
    from jmlkit.experiments.runs import find_runs

    notebooks = [nb for nb in visible_folders(runs_dir)
                 if notebook_run_status(nb) in (None, "ok") and (nb / CACHE_DIR).is_dir()]
    # the runs the batch's notebooks show, as notebook 06 reads them: of one name and seed the one finished last,
    # one per model (hash and seed) in the whole batch, under the notebook that trained it (02b and 02c copy 02's
    # runs and find them there by their hash when they replay)
    found = find_runs(runs_dir, latest=True, distinct=True)
    found = found[found["run"].map(run_folder_hash).notna()]
    owners = {_model_key(Path(path)): f"{nb}/{CACHE_DIR}/{run}"
              for nb, run, path in zip(found["notebook"], found["run"], found["path"])}
    plan = {nb.name: sorted(Path(path) for path in found.loc[found["notebook"] == nb.name, "path"]) for nb in notebooks}
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
