r"""The playground's experiment side: a choice of loss, labels, data regime and schedule (:class:`Choice`) as a
:class:`~jmlkit.engine.TrainConfig`, its command line, and runs that train in a background thread through the run
cache while they are watched (:class:`LiveRun`), collected by a :class:`Session`.

==========================  =========================================================================================
name                        what
==========================  =========================================================================================
:class:`Choice`             loss (CE, JML, soft Jaccard, Dice semimetric, Lovász) with the CE : region weight, labels
                            (hard, boundary or uniform label smoothing, distillation from a finished run at a
                            temperature, the data's own soft labels), data regime, epochs, learning rate, seed
:func:`playground_regimes`  the data regimes a profile offers (its own, then the full profile's it lacks)
:func:`command_line`        the ``python -m jmlkit train`` line that trains the same configuration (same hash)
:class:`Watch`              fixed validation scenes, evaluated after every epoch: mIoU, ECE, IoU per class and the
                            probabilities of the first few scenes
:class:`LiveRun`            one run: :func:`~jmlkit.experiments.run_config` (the notebooks' cache, keyed by the whole
                            configuration) in a thread, its history and latest :class:`Snapshot`, :meth:`~LiveRun.stop`
:class:`Session`            the runs of one playground, the comparison table, the teachers it can offer, exports
==========================  =========================================================================================

A run that finishes is in the cache like any notebook's (``output_dir/runs/<name>__seed<k>__<hash8>``), and the
curves its watch drew are kept beside it (:func:`jmlkit.layout.curves_file`), so the same configuration started
again comes back at once with its curves. A stopped run keeps its finished epochs in memory (status
``"stopped"``) and leaves nothing in the cache (:class:`~jmlkit.engine.TrainingStopped`).

Example:
    >>> c = Choice(loss="jml", ce_weight=0.25, labels="boundary", epsilon=0.5)
    >>> cfg = c.config("smoke")
    >>> cfg.loss, cfg.labels, cfg.smoothing, cfg.epsilon, cfg.loss_kwargs  # the paper's recipe, as 02 spells it
    ('ce+jml', 'ls', 'boundary', 0.5, {})
    >>> command_line(cfg, "smoke", out="runs/jml_bls")
    'python -m jmlkit train --profile smoke --labels ls --out runs/jml_bls'
    >>> Choice(loss="lovasz", labels="uniform")
    Traceback (most recent call last):
    ...
    ValueError: Expected `labels` to be 'hard' with loss='lovasz' (the Lovász extension takes hard labels only), but got 'uniform'.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from jmlkit._checks import check_choice, check_int, check_real, check_type
from jmlkit.engine import TrainConfig, TrainingStopped, config_hash, evaluate, predict
from jmlkit.experiments.evaluation import examples
from jmlkit.experiments.regimes import in_regime
from jmlkit.experiments.runs import find_runs, run_config, run_dir_for
from jmlkit.io import atomic_write_text
from jmlkit.layout import MODEL_FILE, curves_file

__all__ = ["LOSSES", "LABELS", "STATUSES", "Choice", "playground_regimes", "notebook_choices", "command_line", "Watch",
           "Snapshot", "LiveRun", "Session"]

#: The losses of the playground: ``{name: what the tables call it}`` (``ce`` alone, or a region loss, which a
#: CE weight > 0 turns into ``ce+<region>``).
LOSSES: dict[str, str] = {"ce": "CE", "jml": "JML", "sjl": "soft Jaccard", "dml": "Dice semimetric",
                          "lovasz": "Lovász"}
#: The label kinds: ``{name: what the tables call it}``.
LABELS: dict[str, str] = {"hard": "hard", "boundary": "boundary LS", "uniform": "uniform LS", "kd": "distillation",
                          "soft": "the data's soft labels"}
#: CE : region weights of the paper's recipes (:func:`jmlkit.losses.get_loss`'s defaults): written as no option.
_PAPER_WEIGHTS = (0.25, 0.75)
#: What stays out of a command line: where the run goes is given apart, the rest does not change the numbers.
_NOT_ON_THE_LINE = ("out", "overwrite", "replay", "num_threads", "device")


def playground_regimes(profile: str) -> dict[str, dict[str, Any]]:
    """The data regimes of the playground: the profile's own (:func:`jmlkit.profiles.regime_settings`, with the
    calibration regime), then those of the full profile that it lacks (so a quick class can still try the
    paper-like large objects and the over-confident network).

    >>> list(playground_regimes("quick")), list(playground_regimes("smoke"))
    (['small', 'large', 'overconfident'], ['small', 'large', 'overconfident'])
    """
    from jmlkit.profiles import regime_settings

    own = regime_settings(profile, calibration=True)
    return {**own, **{k: v for k, v in regime_settings("full", calibration=True).items() if k not in own}}


@dataclass(frozen=True)
class Choice:
    """What a student picks in the playground; :meth:`config` makes it a :class:`~jmlkit.engine.TrainConfig`.

    Args:
        loss: a name of :data:`LOSSES`.
        ce_weight: ``w`` of ``w·CE + (1-w)·region`` (ignored with ``loss="ce"``); 0: the region loss alone. The
            paper's recipes use 0.25.
        labels: a name of :data:`LABELS`: ``"boundary"`` smooths the pixels whose ``window`` holds another class
            (the paper's), ``"uniform"`` every pixel, both to :math:`(1-\\varepsilon)e_y + \\varepsilon/C`;
            ``"kd"`` distils the finished run ``teacher`` at ``temperature`` (the paper's four terms for CE and JML,
            else our mixed target); ``"soft"`` trains on the data's own soft labels (digit coverage).
        epsilon, window: of label smoothing (``window`` odd, boundary only).
        teacher: a finished run folder with a model (labels ``"kd"``).
        temperature: of the teacher's softmax (labels ``"kd"``).
        regime: a data regime of :func:`playground_regimes`.
        epochs, lr: the schedule (``None``: the regime's, else the profile's).
        seed: the run's seed.
    """

    loss: str = "jml"
    ce_weight: float = 0.25
    labels: str = "boundary"
    epsilon: float = 0.5
    window: int = 3
    teacher: str | None = None
    temperature: float = 1.0
    regime: str = "small"
    epochs: int | None = None
    lr: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("loss", self.loss, tuple(LOSSES))
        check_real("ce_weight", self.ce_weight, low=0.0, high=1.0)
        check_choice("labels", self.labels, tuple(LABELS))
        check_real("epsilon", self.epsilon, low=0.0, high=1.0)
        check_int("window", self.window, low=3)
        if self.window % 2 == 0:
            raise ValueError(f"Expected `window` to be an odd int >= 3, but got {self.window}.")
        check_real("temperature", self.temperature, low=0.0, low_open=True)
        check_type("regime", self.regime, str)
        check_int("epochs", self.epochs, low=1, optional=True)
        check_real("lr", self.lr, low=0.0, low_open=True, optional=True)
        check_int("seed", self.seed, low=0)
        if self.loss == "lovasz" and self.labels != "hard":
            raise ValueError(f"Expected `labels` to be 'hard' with loss='lovasz' (the Lovász extension takes hard "
                             f"labels only), but got {self.labels!r}.")
        if self.labels == "kd" and not self.teacher:
            raise ValueError("Expected `teacher` to be a finished run folder with labels='kd', but got None.")
        if self.teacher is not None:
            check_type("teacher", self.teacher, (str, os.PathLike))

    def loss_spec(self) -> tuple[str, dict[str, float]]:
        """``(loss name, loss_kwargs)`` of :func:`jmlkit.losses.get_loss`; the paper's 0.25 : 0.75 is written as no
        option, as the notebooks spell it (so their runs and the playground's share the cache)."""
        if self.loss == "ce" or self.ce_weight == 1.0:
            return "ce", {}
        if self.ce_weight == 0.0:
            return self.loss, {}
        weights = (float(self.ce_weight), 1.0 - float(self.ce_weight))
        return f"ce+{self.loss}", ({} if np.allclose(weights, _PAPER_WEIGHTS) else
                                   {"ce_weight": weights[0], "region_weight": weights[1]})

    def config(self, profile: str = "quick") -> TrainConfig:
        """The training configuration: the profile's, in the data regime, with this choice on top."""
        regimes = playground_regimes(profile)
        regime = check_choice("regime", self.regime, tuple(regimes))
        cfg = in_regime(TrainConfig.from_profile(profile), regimes[regime])
        loss, loss_kwargs = self.loss_spec()
        options: dict[str, Any] = dict(loss=loss, loss_kwargs=loss_kwargs, seed=self.seed)
        if self.epochs is not None:
            options["epochs"] = self.epochs
        if self.lr is not None:
            options["lr"] = self.lr
        if self.labels == "hard":
            options["labels"] = "hard"
        elif self.labels in ("boundary", "uniform"):
            options.update(labels="ls", smoothing=self.labels, epsilon=float(self.epsilon))
            if self.labels == "boundary":
                options["boundary_kernel"] = self.window
        elif self.labels == "kd":
            options.update(labels="kd", teacher=str(self.teacher), kd_temperature=float(self.temperature),
                           kd_form="terms" if loss in ("ce", "jml", "ce+jml") else "mixed")
        else:
            options["labels"] = "soft"
        return cfg.replace(**options)

    def name(self) -> str:
        """A short folder name: ``<regime>.<loss>.<labels>`` (the run cache adds the seed and the hash)."""
        loss, kwargs = self.loss_spec()
        if kwargs:
            loss += f"{kwargs['ce_weight']:g}"
        labels = {"hard": "hard", "boundary": "bls", "uniform": "ls", "kd": "kd", "soft": "soft"}[self.labels]
        return f"{self.regime}.{loss}.{labels}"

    def label(self) -> str:
        """The run as a person reads it: ``"CE+JML 0.25 · boundary LS ε 0.5 (3×3) · small · seed 0"``."""
        loss, kwargs = self.loss_spec()
        if loss.startswith("ce+"):
            what = f"CE+{LOSSES[self.loss]} {self.ce_weight:g}"
        else:
            what = LOSSES[loss]
        labels = LABELS[self.labels]
        if self.labels == "boundary":
            labels += f" ε {self.epsilon:g} ({self.window}×{self.window})"
        elif self.labels == "uniform":
            labels += f" ε {self.epsilon:g}"
        elif self.labels == "kd":
            labels += f" T {self.temperature:g} from {Path(str(self.teacher)).name}"
        return f"{what} · {labels} · {self.regime} · seed {self.seed}"


def command_line(config: TrainConfig, profile: str = "quick", *, out: str | os.PathLike | None = None) -> str:
    """The ``python -m jmlkit train`` line that trains ``config``: ``--profile`` and every option that differs from
    the profile's (the device, threads and run folder aside), then ``--out`` (default: the config's ``out``, else
    ``runs/playground/<loss and labels>``). The line's configuration has the same :func:`~jmlkit.engine.config_hash`.

    >>> command_line(TrainConfig.from_profile("quick", loss="ce", labels="hard", epochs=3), out="runs/ce")
    'python -m jmlkit train --profile quick --loss ce --epochs 3 --out runs/ce'
    """
    check_type("config", config, TrainConfig)
    base, mine = TrainConfig.from_profile(profile).to_dict(), config.to_dict()
    parts = ["python", "-m", "jmlkit", "train", "--profile", profile]
    for field in dataclasses.fields(TrainConfig):
        key = field.name
        if key in _NOT_ON_THE_LINE or mine[key] == base[key]:
            continue
        value = mine[key]
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + key.replace("_", "-"))
        elif value is None:
            parts += [flag, "none"]
        elif isinstance(value, dict):
            parts += [flag, json.dumps(value, separators=(",", ":"))]
        else:
            parts += [flag, str(value)]
    if out is None:
        out = config.out or f"runs/train/{config_hash(config)[:8]}"
    parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


def notebook_choices(profile: str, *, regime: str | None = None, epochs: int | None = None,
                     seed: int = 0) -> tuple[Choice, Choice]:
    """The two runs notebook 07 trains from code (and in batch runs): JML alone and the soft Jaccard loss alone on the
    digits' own soft labels (our comparison); in the ``results`` profile, which trains nothing, two runs of notebook
    02 that the records keep with their models, replayed: the paper's recipe and CE on hard labels, in the large
    regime. ``regime`` (default ``small``, ``large`` in ``results``), ``epochs`` and ``seed`` apply to both.

    >>> [c.name() for c in notebook_choices("quick")], [c.name() for c in notebook_choices("results")]
    (['small.jml.soft', 'small.sjl.soft'], ['large.ce+jml.bls', 'large.ce.hard'])
    """
    if profile == "results":
        regime = regime or "large"
        return (Choice(regime=regime, epochs=epochs, seed=seed),
                Choice(loss="ce", labels="hard", regime=regime, epochs=epochs, seed=seed))
    regime = regime or "small"
    return (Choice(loss="jml", ce_weight=0.0, labels="soft", regime=regime, epochs=epochs, seed=seed),
            Choice(loss="sjl", ce_weight=0.0, labels="soft", regime=regime, epochs=epochs, seed=seed))


# ============================================================================ watching a run


@dataclass
class Snapshot:
    """The watch's look at a model after an epoch.

    Attributes:
        epoch: the epoch just finished.
        probs: softmax probabilities ``(n, K, H, W)`` of the first watched scenes (CPU, float32).
        iou: IoU per class on the watched scenes (NaN for a class they do not hold).
        metrics: ``{"mIoU_D", "ECE_D"}`` on the watched scenes.
    """

    epoch: int
    probs: torch.Tensor
    iou: np.ndarray
    metrics: dict[str, float]


class Watch:
    """Fixed validation scenes of a configuration (the first ``n`` of its ``val`` split, never its test split),
    evaluated after every epoch (:meth:`__call__`). The evaluation leaves the model and torch's random stream as it
    found them, so a watched run trains exactly as an unwatched one (and shares the cache with it).

    Args:
        config: the run's configuration (its data set and regime).
        n: scenes evaluated (mIoU, ECE, IoU per class).
        show: of those, the first ``show`` whose probabilities a :class:`Snapshot` keeps (for the figures).
    """

    def __init__(self, config: TrainConfig, n: int = 64, show: int = 4) -> None:
        check_type("config", config, TrainConfig)
        self.n, self.show = check_int("n", n, low=1), check_int("show", show, low=1)
        batch = examples(config, self.n, split="val")
        self.images, self.labels = batch["image"], batch["label"]
        self.num_classes, self.ignore_index = int(batch["num_classes"]), batch["ignore_index"]
        self.class_names = batch["class_names"] or [str(k) for k in range(self.num_classes)]
        self.n_bins = config.n_bins
        self.items = [{"image": i, "label": y} for i, y in zip(self.images, self.labels)]
        self.show = min(self.show, len(self.items))

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, epoch: int) -> Snapshot:
        device = next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # both restore train mode
            m = evaluate(model, self.items, num_classes=self.num_classes, ignore_index=self.ignore_index,
                         n_bins=self.n_bins, batch_size=64, device=device)
            probs = predict(model, self.items, n=self.show).probs
        return Snapshot(int(epoch), probs, np.asarray(m["IoU_per_class"], dtype=float),
                        {"mIoU_D": float(m["mIoU_D"]), "ECE_D": float(m["ECE_D"])})


#: The statuses of a :class:`LiveRun`; the last five are final (``"replayed"``: read from the committed records of
#: the ``results`` profile).
STATUSES = ("waiting", "running", "finished", "cached", "replayed", "stopped", "failed")


class LiveRun:
    """One playground run: :func:`~jmlkit.experiments.run_config` of ``config`` into ``run_dir`` (the run cache), in
    a background thread (:meth:`start`) or here (:meth:`run`), watched after every epoch.

    Attributes:
        status: one of :data:`STATUSES`: ``"cached"`` when the cache held the run (it came back at once),
            ``"stopped"`` when :meth:`stop` ended it (its finished epochs are kept here; nothing is cached).
        history: one dict per finished epoch: ``epoch``, ``train_loss``, ``time_s``, ``val_mIoU_D``, ``val_ECE_D``
            (the watched scenes).
        snapshot: the latest :class:`Snapshot` (``None`` before the first epoch).
        metrics: the final scalar metrics on the test split (finished and cached runs).
        error: what went wrong (``"failed"``).
        first_epoch_s: seconds from the start to the first epoch's snapshot (or to a cached run's).
        wall_s: seconds from the start to the end.
    """

    def __init__(self, choice: Choice, config: TrainConfig, run_dir: str | os.PathLike, watch: Watch, *,
                 curves_path: str | os.PathLike | None = None,
                 on_update: Callable[[LiveRun], None] | None = None) -> None:
        self.choice, self.config, self.run_dir, self.watch = choice, config, Path(run_dir), watch
        self.curves_path = None if curves_path is None else Path(curves_path)
        self.on_update = on_update
        self.status = "waiting"
        self.history: list[dict[str, float]] = []
        self.snapshot: Snapshot | None = None
        self.metrics: dict[str, float] = {}
        self.error: str | None = None
        self.first_epoch_s: float | None = None
        self.wall_s: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    @property
    def label(self) -> str:
        return self.choice.label()

    @property
    def running(self) -> bool:
        return self.status in ("waiting", "running") and self._thread is not None and self._thread.is_alive()

    @property
    def done(self) -> bool:
        return self.status in STATUSES[2:]

    def curves(self) -> pd.DataFrame:
        """The history so far as a table (a copy: safe while the run trains)."""
        with self._lock:
            return pd.DataFrame(list(self.history))

    def _notify(self) -> None:
        if self.on_update is not None:
            self.on_update(self)

    def _on_epoch(self, row: dict[str, Any], model: torch.nn.Module) -> None:
        snapshot = self.watch(model, row["epoch"])
        row = {k: row[k] for k in ("epoch", "train_loss", "time_s") if k in row}
        row.update({f"val_{k}": v for k, v in snapshot.metrics.items()})
        with self._lock:
            self.history.append(row)
            self.snapshot = snapshot
            if self.first_epoch_s is None:
                self.first_epoch_s = time.perf_counter() - self._t0
        self._notify()

    def run(self) -> LiveRun:
        """Train (or fetch from the cache) here, until done or stopped; returns ``self``."""
        self._t0 = time.perf_counter()
        self.status = "running"
        try:
            result = run_config(self.config, self.run_dir, on_epoch=self._on_epoch, stop=self._stop)
        except TrainingStopped:
            self.status = "stopped"
        except Exception as err:  # shown in the playground: a failed run must not take the notebook with it
            self.status, self.error = "failed", f"{type(err).__name__}: {err}"
        else:
            self.metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
            if result.cached:
                self._from_cache(result)
            else:
                self._keep_curves()
            self.status = "replayed" if result.replayed else "cached" if result.cached else "finished"
        finally:
            self.wall_s = time.perf_counter() - self._t0
            self._notify()
        return self

    def _from_cache(self, result: Any) -> None:
        """A cached run: its watched curves when this playground drew them, else the training loss of its history;
        the snapshot of its final model."""
        curves = None
        if self.curves_path is not None and self.curves_path.is_file():
            curves = pd.read_csv(self.curves_path)
        elif len(result.history):
            curves = result.history[[c for c in ("epoch", "train_loss", "time_s") if c in result.history]]
        epochs = int(result.metrics.get("epochs", len(result.history)))
        kept = result.has_model or (Path(result.run_dir) / MODEL_FILE).is_file()  # the records keep few models
        snapshot = self.watch(result.model, epochs) if kept else None
        with self._lock:
            self.history = [] if curves is None else curves.to_dict("records")
            self.snapshot = snapshot
            self.first_epoch_s = time.perf_counter() - self._t0

    def _keep_curves(self) -> None:
        if self.curves_path is not None:
            atomic_write_text(self.curves_path, self.curves().to_csv(index=False))

    def start(self) -> LiveRun:
        """Train in a background thread (the notebook stays free); returns ``self`` at once."""
        if self._thread is not None:
            raise RuntimeError("Expected a LiveRun to be started once, but this one was started already.")
        self._thread = threading.Thread(target=self.run, name=f"jmlkit playground: {self.run_dir.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, wait: bool = True, timeout: float = 10.0) -> LiveRun:
        """Ask the run to stop before its next step (it keeps its finished epochs); with ``wait``, until it has."""
        self._stop.set()
        if wait:
            self.wait(timeout)
        return self

    def wait(self, timeout: float | None = None) -> LiveRun:
        """Wait until a started run is done (at most ``timeout`` seconds)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self


class Session:
    """The runs of one playground: what :class:`~jmlkit.plot.Playground` trains and compares.

    Args:
        profile: the profile whose configuration the choices change (``"smoke"``, ``"quick"``, ``"full"``; or
            ``"results"``, which trains nothing: a choice of the full profile that the committed records hold is
            replayed from them, any other fails and says so).
        output_dir: the playground's folder: its run cache (``runs/``, shared with the notebooks next to it) and
            its watched curves (``curves/``).
        watch_scenes, show: of each :class:`Watch`.
    """

    def __init__(self, profile: str = "quick", output_dir: str | os.PathLike = "../runs/interactive/07_playground",
                 *, watch_scenes: int = 64, show: int = 4) -> None:
        from jmlkit.profiles import PROFILE_NAMES

        self.profile = check_choice("profile", profile, PROFILE_NAMES)
        if output_dir is None:
            raise ValueError("Expected `output_dir` to be a folder path, but got None.")
        self.output_dir = Path(output_dir)
        self.watch_scenes, self.show = check_int("watch_scenes", watch_scenes, low=1), check_int("show", show, low=1)
        self.runs: list[LiveRun] = []
        self._watches: dict[str, Watch] = {}

    @property
    def regimes(self) -> list[str]:
        return list(playground_regimes(self.profile))

    def _watch(self, config: TrainConfig) -> Watch:
        key = json.dumps([config.dataset, config.dataset_kwargs, config.n_bins], sort_keys=True)
        if key not in self._watches:
            self._watches[key] = Watch(config, self.watch_scenes, self.show)
        return self._watches[key]

    @property
    def active(self) -> LiveRun | None:
        """The run training now, if any."""
        return next((r for r in self.runs if r.running), None)

    def start(self, choice: Choice | None = None, *, background: bool = True,
              on_update: Callable[[LiveRun], None] | None = None, **options: Any) -> LiveRun:
        """Start a run of ``choice`` (or of ``Choice(**options)``): in a background thread, or here when not
        ``background``. One run trains at a time (a ``RuntimeError`` otherwise: stop it first)."""
        if choice is None:
            choice = Choice(**options)
        elif options:
            choice = dataclasses.replace(choice, **options)
        check_type("choice", choice, Choice)
        if self.active is not None:
            raise RuntimeError(f"Expected no run in training, but {self.active.label!r} trains: stop it first.")
        config = choice.config(self.profile)
        run_dir = run_dir_for(self.output_dir, choice.name(), choice.seed, config)
        run = LiveRun(choice, config, run_dir, self._watch(config), on_update=on_update,
                      curves_path=curves_file(self.output_dir, run_dir))
        self.runs.append(run)
        return run.start() if background else run.run()

    def comparison(self) -> pd.DataFrame:
        """One row per run: ``run`` (its number), ``label``, ``regime``, ``status``, ``epochs`` finished,
        ``mIoU_D`` and ``ECE_D`` on the test split (finished and cached runs), ``watch_mIoU_D`` and ``watch_ECE_D``
        (the last epoch's, on the watched validation scenes), ``first_epoch_s``, ``wall_s`` and ``command``."""
        rows = []
        for i, run in enumerate(self.runs, 1):
            last = run.history[-1] if run.history else {}
            rows.append({"run": i, "label": run.label, "regime": run.choice.regime, "status": run.status,
                         "epochs": int(run.metrics["epochs"]) if "epochs" in run.metrics else len(run.history),
                         "mIoU_D": run.metrics.get("mIoU_D", math.nan), "ECE_D": run.metrics.get("ECE_D", math.nan),
                         "watch_mIoU_D": last.get("val_mIoU_D", math.nan),
                         "watch_ECE_D": last.get("val_ECE_D", math.nan),
                         "first_epoch_s": run.first_epoch_s, "wall_s": run.wall_s,
                         "command": self.command(run)})
        return pd.DataFrame(rows, columns=["run", "label", "regime", "status", "epochs", "mIoU_D", "ECE_D",
                                           "watch_mIoU_D", "watch_ECE_D", "first_epoch_s", "wall_s", "command"])

    def headline(self) -> dict[str, float]:
        """The notebook's headline numbers (``metrics.json``): per finished or cached run,
        ``<run name>.mIoU_D`` and ``<run name>.ECE_D`` on the test split."""
        out: dict[str, float] = {}
        for run in self.runs:
            if run.status in ("finished", "cached", "replayed"):
                for metric in ("mIoU_D", "ECE_D"):
                    out[f"{run.choice.name()}.seed{run.choice.seed}.{metric}"] = run.metrics[metric]
        return out

    def command(self, run: LiveRun | Choice) -> str:
        """The ``python -m jmlkit train`` line of a run (or a choice), into a folder of its own under
        ``runs/playground/``."""
        if isinstance(run, LiveRun):
            config, folder = run.config, run.run_dir.name
        else:
            config = run.config(self.profile)
            folder = run_dir_for(".", run.name(), run.seed, config).name
        return command_line(config, self.profile, out=f"runs/playground/{folder}")

    def teachers(self) -> dict[str, str]:
        """``{label: run folder}`` of the finished runs with a model that a distillation can start from: those of
        the notebooks next to this playground (its parent folder) and its own."""
        found = find_runs(self.output_dir.parent, max_depth=3) if self.output_dir.parent.is_dir() else pd.DataFrame()
        out: dict[str, str] = {}
        for row in found.itertuples() if len(found) else ():
            if row.has_model:
                out[f"{row.notebook} {row.config} (seed {row.seed})"] = str(row.path)
        return out

    def export_csv(self, path: str | os.PathLike | None = None) -> Path:
        """Write :meth:`comparison` (and the curves of every run, long format, to ``<stem>_curves.csv``); returns
        the table's path (default ``output_dir/comparison.csv``)."""
        path = Path(path) if path is not None else self.output_dir / "comparison.csv"
        atomic_write_text(path, self.comparison().to_csv(index=False))
        curves = [run.curves().assign(run=i, label=run.label) for i, run in enumerate(self.runs, 1)]
        long = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
        atomic_write_text(path.with_name(f"{path.stem}_curves.csv"), long.to_csv(index=False))
        return path
