r"""The run cache: train named configurations × seeds once, find finished runs again, read them back.

Every run lives in its own folder, named by :func:`jmlkit.layout.run_folder_name` after the configuration's name,
its seed and the first 8 hex digits of its :func:`config_hash`::

    output_dir/runs/<name>__seed<k>__<hash8>/      (all written by jmlkit.engine.fit)
        config.json   weights.json   history.csv   metrics.json   model.pt
        recipe.json   {"hash", "seed", "wall_time_s", "finished"}   (the completion marker, written last)

So runs of one name with different configurations (two kernels of one notebook with another ε, a notebook
rerun with other parameters) have different folders: a table's ``run_dir`` always holds the run of exactly
its row's configuration, and a finished run is never replaced by another configuration's.

:func:`~jmlkit.engine.fit` builds the folder aside and moves it into place when complete
(:mod:`jmlkit.engine.runfolder`), so a folder of that name is a finished run; every reader here
also checks that it is finished (:func:`jmlkit.layout.is_complete`: its completion marker, hidden folders never)
(``.<name>.partial-...`` are runs in progress or interrupted). The marker holds :func:`config_hash` of
the configuration (everything that changes the numbers; not the output folder, device or thread
count; :func:`config_hash` and :data:`HASH_EXCLUDE` live in :mod:`jmlkit.engine.runfolder`). A rerun with
the same configuration reuses the folder instead of training again, and so does *another*
notebook: before training, :func:`run_config` also looks for a finished run with the same hash
under ``output_dir/runs/`` (another name) and, when ``output_dir`` is a notebook's folder (its name
starts with the notebook number, ``02_label_smoothing``), in the sibling notebook folders
(``output_dir/../NN_*/runs/*``: the other notebooks of the same batch run or of
``runs/interactive``), and copies it over. Processes may share ``output_dir``: a copy (like a
training run) is built in a hidden folder of its own process and renamed into place only when
complete, and when an identical run or copy of another process gets there first, that one is used.

Two tables of runs, both one row per run folder:

* :func:`run_configs` / :func:`load_runs` (one notebook's own runs): ``config``, ``seed``,
  ``cached``, ``run_dir`` and every scalar metric;
* :func:`find_runs` (every notebook of a batch folder; of one name and seed the run finished last):
  ``notebook``, ``config``, ``seed``, ``run``, ``path``, ``has_model`` and a few config fields;
  :func:`load_metrics` adds the metrics.

Example:
    >>> import tempfile
    >>> base = TrainConfig.from_profile("smoke")
    >>> configs = {"ce": base.replace(loss="ce"), "jml_ls": base.replace(labels="ls", loss="jml")}
    >>> with tempfile.TemporaryDirectory() as out:
    ...     runs = run_configs(configs, seeds=[0], output_dir=out, verbose=False)
    ...     again = run_configs(configs, seeds=[0], output_dir=out, verbose=False)
    >>> runs[["config", "seed", "cached"]].values.tolist()
    [['ce', 0, False], ['jml_ls', 0, False]]
    >>> again["cached"].tolist()
    [True, True]
"""
from __future__ import annotations

import glob
import json
import os
import re
import dataclasses
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from jmlkit._checks import check_int, check_int_list, check_type
from jmlkit.engine import TrainConfig
from jmlkit.engine.evaluation import check_evaluators, describe_evaluator
from jmlkit.engine.runfolder import HASH_EXCLUDE, RunFolder, config_hash, replace_folder
from jmlkit.experiments.results import RunResult, complete_evaluations, read_run, remember, remembered, run_result
from jmlkit.experiments.results import scalar_metrics as _scalar_metrics
from jmlkit.io import atomic_write_text, mark_done, visible_folders
from jmlkit.layout import (CACHE_DIR, CONFIG_FILE, DONE_FILE, METRICS_FILE, MODEL_FILE, RUN_FILES,
                           cache_folders, is_complete, notebook_number, notebook_run_status, parse_run_folder_name,
                           read_done, RUN_HASH_DIGITS, run_folder_hash, run_folder_name)
from jmlkit.parallel import current_scheduler, run_tasks, threads_per_run

__all__ = [
    "HASH_EXCLUDE",
    "config_hash",
    "run_dir_for",
    "replay_run",
    "run_config",
    "run_configs",
    "load_runs",
    "run_metrics",
    "notebook_status",
    "resolve_results_dir",
    "find_runs",
    "load_metrics",
    "first_configs",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_CONFIG_COLUMNS = ("dataset", "labels", "loss", "epsilon", "model", "epochs")


# ============================================================================ hashing and folders


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or "__" in name:
        raise ValueError(
            "Expected a config name of letters, digits and '._+-' (no '__', not starting with a symbol), "
            f"but got {name!r}."
        )
    return name


def run_dir_for(output_dir: str | os.PathLike, name: str, seed: int, config: TrainConfig) -> Path:
    """``output_dir/runs/<name>__seed<seed>__<hash8>``: where :func:`run_configs` keeps the run of ``config``
    (its ``seed`` replaced by ``seed``; ``hash8``: the first 8 hex digits of its :func:`config_hash`).

    Example:
        >>> cfg = TrainConfig.from_profile("smoke", loss="ce")
        >>> folder = run_dir_for("out", "ce_hard", 2, cfg)
        >>> folder.parent.as_posix(), folder.name == f"ce_hard__seed2__{config_hash(cfg.replace(seed=2))[:8]}"
        ('out/runs', True)
        >>> run_dir_for("out", "ce_hard", 2, cfg.replace(lr=0.5)) != folder  # another configuration, another folder
        True
    """
    _check_name(name)
    check_int("seed", seed, low=0)
    check_type("config", config, TrainConfig)
    return Path(output_dir) / CACHE_DIR / run_folder_name(name, seed, config_hash(config.replace(seed=seed)))


def _finished(folder: Path, digest: str) -> bool:
    """Whether ``folder`` holds the finished run of hash ``digest``, with the metrics and model the cache serves."""
    return is_complete(folder, digest=digest, files=(METRICS_FILE, MODEL_FILE))


def _find_elsewhere(output_dir: Path, digest: str, exclude: Path) -> Path | None:
    """A finished run with this hash in the run cache of ``output_dir`` or in those of its sibling notebook
    output folders (:func:`jmlkit.layout.cache_folders`)."""
    for runs in cache_folders(output_dir):
        for folder in sorted(runs.iterdir()):
            if folder.resolve() != exclude.resolve() and folder.is_dir() and _finished(folder, digest):
                return folder
    return None


def _copy_run(src: Path, dst: Path, config: TrainConfig, digest: str) -> bool:
    """Copy the finished run ``src`` (hash ``digest``) to ``dst``, with ``config``'s ``out``; whether ``dst`` now holds it.

    Built in a hidden folder of this process (a :class:`~jmlkit.engine.runfolder.RunFolder`: never read, removed
    once this process is gone), completed (marker last), then renamed to ``dst``, which must be new: when another
    process put an identical run there first, ours is dropped and theirs used. ``False`` when ``src`` changed or
    went away meanwhile (a retrain replaced it): the caller trains instead."""
    folder = RunFolder(dst)
    tmp = folder.open()
    try:
        done = read_done(src)
        for name in RUN_FILES:
            if name != DONE_FILE and (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        if done is None or done.get("hash") != digest or read_done(src) != done:  # src replaced while we copied
            return _finished(dst, digest)
        atomic_write_text(tmp / CONFIG_FILE, config.to_json())
        mark_done(tmp, **{**done, "copied_from": str(src.resolve())})  # a copy of a copy names its source
        replace_folder(tmp, dst)  # moves nothing when dst is taken meanwhile
        return True
    except FileNotFoundError:  # src removed meanwhile
        return _finished(dst, digest)
    except Exception:
        if _finished(dst, digest):  # another process's identical copy got there first
            return True
        raise
    finally:
        folder.abort()  # the temporary folder, if it is still there


# ============================================================================ running


def run_config(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    force: bool = False,
    reuse: bool = True,
    progress: bool = False,
    evaluators: Mapping[str, Any] | None = None,
    on_epoch: Any = None,
    stop: Any = None,
) -> RunResult:
    """Train ``config`` into ``run_dir`` unless a finished run with the same :func:`config_hash` exists.

    Args:
        config: what to train (its ``out`` is replaced by ``run_dir``; :func:`~jmlkit.engine.fit` writes the
            completion marker).
        run_dir: the run folder (:func:`run_dir_for`). A finished run of this configuration there is reused (with
            ``force`` replaced when the new run finishes); anything else there is never replaced (a ``ValueError``).
        force: train even if a finished run exists.
        reuse: also look for a finished run with the same hash under ``output_dir/runs/`` and in the
            sibling notebook folders (``output_dir/../NN_*/runs/*``) and copy it into ``run_dir``.
        progress: progress bars of :func:`jmlkit.engine.fit`.
        evaluators: extra evaluators of :func:`jmlkit.engine.fit`; a cached run without one of them is evaluated
            for it once and keeps its value (:func:`~jmlkit.experiments.results.complete_evaluations`).
        on_epoch, stop: of :func:`jmlkit.engine.fit`, for a run that trains (a cached one calls neither): a stopped
            run raises :class:`~jmlkit.engine.TrainingStopped` and leaves nothing in the cache.

    Returns:
        The run's :class:`~jmlkit.experiments.results.RunResult` (also kept in memory): metrics, history,
        evaluations, model; ``cached`` says whether it was reused (also when another process finished the
        identical run into ``run_dir`` while this one trained: that run is kept and used).
    """
    from jmlkit.engine import fit

    check_type("config", config, TrainConfig)
    run_dir = Path(run_dir).resolve()
    digest = config_hash(config)
    _check_not_another_run(run_dir, digest)
    if not force:
        cached = _cached(config, run_dir, digest, reuse=reuse)
        if cached is not None and cached.replayed:
            return remember(_replayed_evaluations(cached, evaluators))
        if cached is not None:
            return remember(complete_evaluations(cached, evaluators))
    try:  # the previous content of run_dir stays until the run is complete
        result = fit(_as_run(config, run_dir, force=force), progress=progress, evaluators=evaluators, on_epoch=on_epoch,
                     stop=stop)
    except Exception:
        if force or not _finished(run_dir, digest):
            raise
        _drop_kept(run_dir, digest)  # an identical run of another process got there first: use it
        return remember(complete_evaluations(read_run(run_dir), evaluators))
    evaluators = check_evaluators(evaluators)
    return remember(RunResult(run_dir, result.config, result.metrics, result.history, dict(result.evaluations),
                              {name: describe_evaluator(spec) for name, spec in evaluators.items()}, False, result.model))


def _drop_kept(run_dir: Path, digest: str) -> None:
    """Remove the duplicates of ``run_dir`` that this process's lost commit kept aside (``<run>.kept-<pid>-...``)."""
    for kept in run_dir.parent.glob(f"{glob.escape(run_dir.name)}.kept-{os.getpid()}-*"):
        if not kept.is_symlink() and (read_done(kept) or {}).get("hash") == digest:
            shutil.rmtree(kept, ignore_errors=True)


def _check_not_another_run(run_dir: Path, digest: str) -> None:
    done = read_done(run_dir) if is_complete(run_dir) else None
    if done is not None and done.get("hash") != digest:
        raise ValueError(f"Expected `run_dir` to hold no run or a run of this configuration (hash {digest}), but "
                         f"{str(run_dir)!r} holds a finished run of another configuration (hash {done.get('hash')}); "
                         "it is kept: choose another folder (run_dir_for names each configuration's folder).")


def _as_run(config: TrainConfig, run_dir: Path, *, force: bool = False) -> TrainConfig:
    """``config`` as the cache trains it: into ``run_dir``, with a checkpoint; ``run_dir`` must be new when the run
    finishes (an identical run another process put there first is kept and used), unless ``force``."""
    return config.replace(out=str(run_dir), save_checkpoint=True, overwrite=bool(force))


def _record_index(records: str) -> dict[tuple[str, int], list[Path]]:
    """``{(hash prefix, seed): [run folders]}`` of a records folder (``<notebook>/runs/<run>``, or any depth)."""
    cached = _RECORD_INDEX.get(records)
    if cached is not None:
        return cached
    index: dict[tuple[str, int], list[Path]] = {}
    for folder in sorted(Path(records).rglob("*__seed*")):
        parsed, digest = parse_run_folder_name(folder.name), run_folder_hash(folder.name)
        if parsed is not None and digest is not None and folder.is_dir():
            index.setdefault((digest, parsed[1]), []).append(folder)
    _RECORD_INDEX[records] = index
    return index


_RECORD_INDEX: dict[str, dict[tuple[str, int], list[Path]]] = {}


def replay_run(config: TrainConfig) -> RunResult:
    """The finished run of ``config`` among the committed records of ``config.replay`` (the ``results`` profile),
    read where it is (nothing is copied or written); ``cached`` and ``replayed`` are set.

    Raises:
        ValueError: ``config.replay`` is None.
        FileNotFoundError: the records folder does not exist, or holds no finished run of this configuration (its
            hash and seed): the message names the configuration and says how to train it.
    """
    check_type("config", config, TrainConfig)
    if config.replay is None:
        raise ValueError("Expected `config.replay` to name a folder of run records, but got None.")
    records = str(Path(config.replay).resolve())
    if not Path(records).is_dir():
        raise FileNotFoundError(f"Expected `replay` to be a folder of committed run records, but {records!r} does not "
                                "exist: run the full profile with `jmlkit run --profile full --results results/full`, "
                                "which writes them.")
    digest = config_hash(config)
    for folder in _record_index(records).get((digest[:RUN_HASH_DIGITS], config.seed), []):
        if is_complete(folder, digest=digest, files=(METRICS_FILE,)):
            return dataclasses.replace(read_run(folder), cached=True, replayed=True)
    raise FileNotFoundError(
        f"Expected a finished run of this configuration (hash {digest[:RUN_HASH_DIGITS]}, seed {config.seed}, model "
        f"{config.model!r}, labels {config.labels!r}, loss {config.loss!r}) among the records in {records!r}, but there "
        "is none: the `results` profile replays the committed full-profile runs only. Run the notebook with profile "
        "'full' (or 'quick') to train it.")


def _replayed_evaluations(result: RunResult, evaluators: Mapping[str, Any] | None) -> RunResult:
    """A replayed run with every evaluator asked for, as stored in its records; a missing one is an error (a
    replay writes nothing)."""
    wanted = check_evaluators(evaluators)
    missing = sorted(name for name, spec in wanted.items()
                     if name not in result.evaluations or result.evaluators.get(name) != describe_evaluator(spec))
    if missing:
        raise ValueError(f"Expected the records of {result.run_dir.name} to hold the evaluators {missing}, but they do "
                         "not (a replay computes nothing): run the full profile again to write them.")
    return result


def _cached(config: TrainConfig, run_dir: Path, digest: str, *, reuse: bool) -> RunResult | None:
    """The result of a finished run of ``config`` (hash ``digest``) in ``run_dir`` (from memory when this process
    has it), or copied there from elsewhere; else ``None``. A replayed configuration (``config.replay``) is read
    from its records instead (:func:`replay_run`), or is an error."""
    if config.replay is not None:
        return replay_run(config)
    if _finished(run_dir, digest):
        return dataclasses.replace(run_result(run_dir), cached=True)
    source = _find_elsewhere(run_dir.parent.parent, digest, run_dir) if reuse else None
    if source is None or not _copy_run(source, run_dir, _as_run(config, run_dir), digest):
        return None
    copied = read_run(run_dir)
    known = remembered(source)
    if known is not None and known.has_model:  # the same weights, in this process's memory: not read again
        copied._model = known._model
    return copied


def _train_task(config: TrainConfig, run_dir: str, force: bool,
                evaluators: Mapping[str, Any] | None = None) -> tuple[RunResult, float]:
    """One run on a worker: :func:`run_config` without the search of other folders; ``(result, seconds)``, the
    result without its model (the caller reads ``model.pt`` if it needs it).

    A task submitted again after its worker was lost finds the run finished if the lost worker completed it."""
    t0 = time.perf_counter()
    result = run_config(config, run_dir, force=force, reuse=False, evaluators=evaluators)
    result._model = None
    return result, time.perf_counter() - t0


def _run_all(jobs: Sequence[tuple[str, int, TrainConfig, Path]], *, scheduler: Any, force: bool, reuse: bool,
             progress: bool, evaluators: Mapping[str, Any] | None = None) -> list[tuple[RunResult, float]]:
    """``(result, seconds)`` of each job ``(name, seed, config, run_dir)``, in order.

    Serial: one after another here. On a Dask scheduler the cached runs are found here, the others are
    submitted at once (:func:`~jmlkit.parallel.run_tasks`), with the torch threads of a
    ``local:N`` worker set to ``cores // N`` (the thread count is not part of the configuration hash).
    """
    spec = current_scheduler(scheduler)
    if spec.kind == "serial":
        out = []
        for _, _, config, run_dir in jobs:
            t0 = time.perf_counter()
            result = run_config(config, run_dir, force=force, reuse=reuse, progress=progress, evaluators=evaluators)
            out.append((result, time.perf_counter() - t0))
        return out
    results: list[tuple[RunResult, float] | None] = [None] * len(jobs)
    todo = []
    for i, (_, _, config, run_dir) in enumerate(jobs):
        run_dir = Path(run_dir).resolve()
        digest = config_hash(config)
        _check_not_another_run(run_dir, digest)
        cached = None if force else _cached(config, run_dir, digest, reuse=reuse)
        if cached is not None:
            results[i] = (remember(_replayed_evaluations(cached, evaluators) if cached.replayed
                                   else complete_evaluations(cached, evaluators)), 0.0)
        else:
            todo.append(i)
    threads = threads_per_run(spec)
    tasks = [(jobs[i][2] if jobs[i][2].num_threads is not None or threads is None
              else jobs[i][2].replace(num_threads=threads), str(Path(jobs[i][3]).resolve()), force, evaluators)
             for i in todo]
    done = run_tasks(_train_task, tasks, scheduler=spec, keys=[jobs[i][3].name for i in todo], desc="training runs")
    for i, (result, seconds) in zip(todo, done):
        results[i] = (remember(result), seconds)
    return [r for r in results if r is not None]


def run_configs(
    configs: Mapping[str, TrainConfig],
    *,
    seeds: Sequence[int] | int = (0,),
    output_dir: str | os.PathLike,
    force: bool = False,
    reuse: bool = True,
    progress: bool = False,
    verbose: bool = True,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    scheduler: Any = None,
    evaluators: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Train every named configuration with every seed (cached, see :func:`run_config`).

    Args:
        configs: ``{name: TrainConfig}``; names become folder names (letters, digits, ``._+-``).
            Each config's own ``seed`` is replaced by the seeds.
        seeds: seeds to run each configuration with.
        output_dir: runs go to ``output_dir/runs/<name>__seed<k>__<hash8>/`` (:func:`run_dir_for`).
        force: retrain finished runs.
        reuse: reuse finished runs of sibling output folders (other notebooks).
        progress: per-epoch progress bars.
        verbose: print one line per run (trained or reused, time, mIoU_D, ECE_D).
        extra: ``{name: {column: value}}`` added to that configuration's rows (e.g. an epsilon).
        evaluators: extra evaluators of :func:`jmlkit.engine.fit` (``{name: Metric class or partial}``), computed in
            each run's evaluation pass; a cached run that lacks one is evaluated for it once (see :func:`run_config`).
        scheduler: where the runs that are not cached train: ``"serial"`` (here, one after another),
            ``"local:N"`` (a local Dask cluster of N processes) or a Dask scheduler's address; ``None`` reads
            the environment variable ``JMLKIT_SCHEDULER`` (``jmlkit run --scheduler``), else serial. See
            :mod:`jmlkit.parallel`. The table is the same whichever ran the runs.

    Returns:
        A tidy DataFrame, one row per run in the order of ``configs`` then ``seeds``: ``config``,
        ``seed``, the ``extra`` columns, ``cached``, ``run_dir``, every scalar metric and ``epoch_time_s``
        (mean wall time of a training epoch, without data set creation and evaluation). The full result of
        each row (metrics with their tables, history, evaluations, model) stays in memory:
        :func:`~jmlkit.experiments.results.run_results` of this table (or of any table made from it).
    """
    if not isinstance(configs, Mapping) or not configs:
        raise ValueError(f"Expected `configs` to be a non-empty dict of name -> TrainConfig, but got {configs!r}.")
    for name, cfg in configs.items():
        _check_name(name)
        check_type(f"configs[{name!r}]", cfg, TrainConfig)
    seeds = check_int_list("seeds", [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds,
                           low=0, unique=True)
    if output_dir is None:
        raise ValueError("Expected `output_dir` to be a folder path, but got None.")
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(configs))
    if unknown:
        raise ValueError(f"Expected `extra` keys among the config names {sorted(configs)}, but got {unknown}.")
    jobs = [(name, seed, cfg.replace(seed=seed), run_dir_for(output_dir, name, seed, cfg))
            for name, cfg in configs.items() for seed in seeds]
    rows = []
    for (name, seed, _, run_dir), (result, seconds) in zip(
        jobs, _run_all(jobs, scheduler=scheduler, force=force, reuse=reuse, progress=progress, evaluators=evaluators)):
        scalars, cached = _scalar_metrics(result.metrics), result.cached
        epoch_times = result.history.get("time_s")
        if epoch_times is not None and len(epoch_times):
            scalars["epoch_time_s"] = float(epoch_times.mean())
        if verbose:
            what = "replayed from the records" if result.replayed else "reused" if cached else f"trained in {seconds:.1f} s"
            print(f"{name} (seed {seed}): {what}; mIoU_D {scalars.get('mIoU_D', float('nan')):.3f}, "
                  f"ECE_D {scalars.get('ECE_D', float('nan')):.3f}", flush=True)
        rows.append({"config": name, "seed": seed, **dict(extra.get(name, {})), "cached": cached,
                     "run_dir": str((Path(result.run_dir) if result.replayed else run_dir).resolve()), **scalars})
    return pd.DataFrame(rows)


# ============================================================================ reading runs back


def run_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The metrics of a complete run folder (scalars, per-class lists and the reliability table as a dict): from
    memory when this process trained or loaded it (:func:`~jmlkit.experiments.results.run_result`), else its
    ``metrics.json``. A folder without ``metrics.json`` is a ``FileNotFoundError``, one without its completion
    marker (interrupted, still running) a ``ValueError`` naming it."""
    return run_result(run_dir).metrics


def load_runs(output_dir: str | os.PathLike) -> pd.DataFrame:
    """The tidy table of every complete run under ``output_dir/runs/`` (e.g. another notebook's).

    Columns as :func:`run_configs` (``config``, ``seed``, ``cached`` = True, ``run_dir``, metrics),
    plus ``labels``, ``loss``, ``epsilon``, ``smoothing``, ``model`` from each ``config.json``. Runs of one
    config name and seed with different configurations each have their row (select by ``run_dir``, as a
    :func:`run_configs` table gives it, or see :func:`find_runs` with ``latest``).
    """
    runs = Path(output_dir) / CACHE_DIR
    rows = []
    if runs.is_dir():
        for folder in sorted(runs.iterdir()):
            parsed = parse_run_folder_name(folder.name)
            if parsed is None or not is_complete(folder, files=(METRICS_FILE,)):
                continue
            cfg = json.loads((folder / CONFIG_FILE).read_text()) if (folder / CONFIG_FILE).is_file() else {}
            rows.append({"config": parsed[0], "seed": parsed[1], "cached": True, "run_dir": str(folder.resolve()),
                         **{k: cfg.get(k) for k in ("labels", "loss", "epsilon", "smoothing", "model")},
                         **_scalar_metrics(run_metrics(folder))})
    return pd.DataFrame(rows)


def notebook_status(root: str | os.PathLike) -> dict[str, str]:
    """Status of each notebook run of a batch folder, from the runner's record in each
    (:func:`jmlkit.layout.notebook_run_status`).

    ``{"02_label_smoothing": "ok", "05_soft_labels": "running", ...}``; folders without a record
    (interactive runs) and hidden folders are not listed.
    """
    root = Path(root)
    try:
        folders = visible_folders(root)
    except OSError:
        return {}
    statuses = {folder.name: notebook_run_status(folder) for folder in folders}
    return {name: status for name, status in statuses.items() if status is not None}


def resolve_results_dir(
    results_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    profile: str = "quick",
    *,
    exclude: str | os.PathLike | None = None,
) -> Path | None:
    """The folder to read runs from: ``results_dir`` when given, else the first of
    ``Path(output_dir).parent`` (the batch folder when the runner injected ``output_dir``) and
    ``../runs/<profile>`` that holds a finished run (``exclude``: a folder whose runs do not count,
    e.g. the notebook's own ``output_dir``). ``None`` when neither holds one.
    """
    if results_dir is not None:
        return Path(results_dir)
    for candidate in (Path(output_dir).parent, Path("..") / "runs" / str(profile)):
        if len(find_runs(candidate, exclude=exclude)):
            return candidate
    return None


def find_runs(
    root: str | os.PathLike,
    *,
    notebooks: Sequence[str] | None = None,
    exclude: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    only_finished: bool = True,
    max_depth: int = 3,
    latest: bool = True,
    distinct: bool = True,
) -> pd.DataFrame:
    """Every finished run folder under ``root``, one row each (with ``latest``: one per notebook, config and seed;
    with ``distinct``: one per trained model).

    A run folder sits in a ``runs`` folder, is named ``<config>__seed<k>__<hash8>`` (or ``<config>__seed<k>``,
    as older versions named them), holds ``config.json`` and ``metrics.json`` and is complete (its completion
    marker written; hidden partial folders of runs in progress are never listed).

    Args:
        root: a batch folder (``OUT``), one notebook's ``output_dir``, or its ``runs`` folder.
        notebooks: keep only these notebook stems (or prefixes such as ``"02"``).
        exclude: folders whose runs are left out (e.g. the calling notebook's own ``output_dir``).
        only_finished: leave out the notebooks whose runner ``run.json`` does not say ``ok``
            (still running, failed); notebooks without ``run.json`` always count.
        max_depth: how deep below ``root`` to look; the default 3 finds ``root/<notebook>/runs/<run>``
            but not runs nested deeper (e.g. an exercise's ``<notebook>/exercise/runs/<run>``).
        latest: when a notebook holds runs of one config name and seed with different configurations
            (the notebook was run again with other parameters, in the same folder), keep only the one
            that finished last (its completion marker written last); ``False`` lists them all.
        distinct: a notebook that asks again for a configuration it or another notebook already trained (the
            recipe of a sweep is the main comparison's run, e.g. ``small.jml_bls`` and ``small.jml_bls_e0.5``;
            02b and 02c reuse the runs of 02) gets the finished run copied under its name (:func:`run_configs`):
            one model, several folders with the same configuration hash and seed. Keep one row per hash and
            seed, under the notebook and name it was trained with first (the copy that was completed first), and
            list the other names in ``aliases`` (another notebook's copy as ``"<number> <name>"``, ``02c
            small.jml_bls``); ``False`` keeps every folder.

    Returns:
        DataFrame with columns ``notebook`` (the first folder below ``root``, or ``root``'s own
        name), ``config``, ``seed``, ``run`` (folder name), ``path``, ``has_model``, ``aliases`` (the other
        names of the same run, comma-separated; ``""`` for none) and the
        config fields ``dataset, labels, loss, epsilon, model, epochs``; sorted by notebook, then
        configurations in the order they finished (the notebook's own order: main comparison
        first, sweeps after), then seed. Empty (with these columns) when nothing is found.
    """
    root = Path(root)
    columns = ["notebook", "config", "seed", "run", "path", "has_model", "aliases", *_CONFIG_COLUMNS]
    max_depth = check_int("max_depth", max_depth, low=1)
    check_type("latest", latest, bool)
    check_type("distinct", distinct, bool)
    if not root.is_dir():
        return pd.DataFrame(columns=columns)
    if exclude is None:
        excluded: list[Path] = []
    elif isinstance(exclude, (str, os.PathLike)):
        excluded = [Path(exclude).resolve()]
    else:
        excluded = [Path(e).resolve() for e in exclude]
    status = notebook_status(root) if only_finished else {}
    rows = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            children = visible_folders(folder)
        except OSError:
            continue
        for child in children:
            resolved = child.resolve()
            if any(resolved == e or e in resolved.parents for e in excluded):
                continue
            parsed = parse_run_folder_name(child.name)
            if (parsed is not None and folder.name == CACHE_DIR
                    and is_complete(child, files=(CONFIG_FILE, METRICS_FILE))):
                rel = child.relative_to(root).parts
                here = root.resolve()
                if len(rel) > 1 and rel[0] != CACHE_DIR:
                    notebook = rel[0]
                else:  # root is one notebook's output_dir, or its runs/ folder
                    notebook = here.parent.name if here.name == CACHE_DIR and len(rel) == 1 else here.name
                if only_finished and status.get(notebook, "ok") != "ok":
                    continue
                rows.append(_run_row(child, notebook, *parsed))
            elif depth + 1 < max_depth:
                stack.append((child, depth + 1))
    df = pd.DataFrame(rows, columns=columns)
    if latest and len(df):
        done_at = df["path"].map(lambda p: (Path(p) / DONE_FILE).stat().st_mtime_ns)
        keep = done_at.groupby([df["notebook"], df["config"], df["seed"]]).transform("max") == done_at
        df = df[keep.astype(bool)].drop_duplicates(["notebook", "config", "seed"], keep="last")
    if notebooks is not None:  # before `distinct`: a copy in a wanted notebook stands for a run of another
        wanted = [str(n) for n in notebooks]
        # a bool mask even when df is empty (an empty object Series would select columns instead of rows)
        df = df[df["notebook"].map(lambda s: any(s == w or s.startswith(w) for w in wanted)).astype(bool)]
    if distinct and len(df):
        df = _one_row_per_model(df)
    # configurations in the order they were trained (the first to finish of each: the second its completion marker
    # records, then, within one second, its metrics file's time), then seeds
    groups = [df["notebook"], df["config"]]
    order = df["path"].map(_finished_at).groupby(groups).transform("min")
    within = df["path"].map(lambda p: (Path(p) / METRICS_FILE).stat().st_mtime).groupby(groups).transform("min")
    df = df.assign(_order=order, _within=within).sort_values(["notebook", "_order", "_within", "config", "seed"],
                                                             kind="stable")
    return df.drop(columns=["_order", "_within"]).reset_index(drop=True)


def _finished_at(path: str | os.PathLike) -> float:
    """When a run finished, to the second: the ``finished`` time its completion marker records (kept by a copy and by
    a record, and by a git clone, which gives every file a new time), else its metrics file's time."""
    stamp = (read_done(path) or {}).get("finished")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return (Path(path) / METRICS_FILE).stat().st_mtime


def _one_row_per_model(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the folders that copy one run (same configuration hash and seed, in any notebook) as one row: the
    one completed first, with the other names in ``aliases`` (see :func:`find_runs`). Folders without a hash stay."""
    digest = df["run"].map(run_folder_hash)
    done_at = df["path"].map(lambda p: (Path(p) / DONE_FILE).stat().st_mtime_ns)
    df = df.assign(_hash=digest.fillna(df["path"]), _done=done_at).sort_values(["_done", "notebook", "config"],
                                                                              kind="stable")
    first = ~df.duplicated(["_hash", "seed"], keep="first")
    home = df["notebook"].where(first).groupby([df["_hash"], df["seed"]]).transform("first")
    names = df["config"].where(df["notebook"] == home,
                               df["notebook"].map(lambda n: notebook_number(n) or n) + " " + df["config"])
    aliases = names.groupby([df["_hash"], df["seed"]], sort=False).transform(
        lambda group: ", ".join(dict.fromkeys(group.iloc[1:])))
    out = df.assign(aliases=aliases)[first].sort_index()
    return out.drop(columns=["_hash", "_done"])


def _run_row(path: Path, notebook: str, config: str, seed: int) -> dict[str, Any]:
    try:
        cfg = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cfg = {}
    row = {"notebook": notebook, "config": config, "seed": seed, "run": path.name, "path": str(path),
           "has_model": (path / MODEL_FILE).is_file(), "aliases": ""}
    for key in _CONFIG_COLUMNS:
        row[key] = cfg.get(key)
    return row


def _check_runs(runs: Any) -> pd.DataFrame:
    """A table of runs with a ``path`` column (``run_dir``, the column of :func:`run_configs` tables, also works)."""
    if isinstance(runs, pd.DataFrame) and "path" not in runs.columns and "run_dir" in runs.columns:
        runs = runs.assign(path=runs["run_dir"])
    if not isinstance(runs, pd.DataFrame) or "path" not in runs.columns:
        raise TypeError("Expected `runs` to be the DataFrame of find_runs() (or of run_configs()), "
                        f"but got {type(runs).__name__}.")
    return runs


def load_metrics(runs: pd.DataFrame, *, extra: Sequence[str] = ()) -> pd.DataFrame:
    """``runs`` (of :func:`find_runs` or :func:`run_configs`) joined with the scalar metrics of each ``metrics.json``.

    Every numeric top-level value becomes a column (``mIoU_D``, ``ECE_D``, ``train_time_s``...);
    lists and tables (``IoU_per_class``, ``reliability``) are left out, except the keys named in
    ``extra``, which are kept as objects.
    """
    runs = _check_runs(runs)
    records = []
    for path in runs["path"]:
        metrics = run_metrics(path)
        rec = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        rec.update({k: metrics.get(k) for k in extra})
        records.append(rec)
    return pd.concat([runs.reset_index(drop=True), pd.DataFrame(records)], axis=1)


def first_configs(runs: pd.DataFrame, n: int, *, by: str = "notebook") -> pd.DataFrame:
    """The runs of the first ``n`` configurations (in table order) of each ``by`` group, all seeds.

    >>> runs = pd.DataFrame({"notebook": ["a", "a", "a", "b"], "config": ["x", "x", "y", "z"], "seed": [0, 1, 0, 0]})
    >>> first_configs(runs, 1)[["notebook", "config", "seed"]].values.tolist()
    [['a', 'x', 0], ['a', 'x', 1], ['b', 'z', 0]]
    """
    n = check_int("n", n, low=1)
    if not isinstance(runs, pd.DataFrame) or "config" not in runs.columns:
        raise TypeError("Expected `runs` to be a DataFrame with a `config` column.")
    if by not in runs.columns:
        keep = set(list(dict.fromkeys(runs["config"]))[:n])
        return runs[runs["config"].isin(keep)]
    mask = runs.groupby(by, sort=False)["config"].transform(lambda c: c.isin(list(dict.fromkeys(c))[:n]))
    return runs[mask.astype(bool)]
