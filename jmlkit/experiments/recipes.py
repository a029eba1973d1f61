"""The configurations of each result notebook, and the sweeps that run them through the run cache.

===============================  =========  ==================================================
recipe                           notebook   what
===============================  =========  ==================================================
:func:`smoothing_configs`        02         hard labels, uniform and boundary LS × CE, SJL, JML
:func:`epsilon_sweep`            02         a label-smoothing ε sweep
:func:`train_teacher`            03         the teacher of the distillation students
:func:`distillation_configs`     03         four students: hard labels, KD with CE, JML, CE+JML
:func:`ssl_configs`              04         labelled only, hard and soft pseudo-labels
:func:`labeled_fraction_sweep`   04         the methods at several labelled fractions
:func:`soft_label_configs`       05         one brain-slice run per loss, on the data's soft labels
:func:`calibration_runs`         06         the runs of 02–05, or a small set trained here
===============================  =========  ==================================================

Base configurations come from :meth:`jmlkit.engine.TrainConfig.from_profile`; seeds, sweep values
and models from :mod:`jmlkit.profiles`. :data:`LABELS` are the display names of the configurations.

Example:
    >>> list(smoothing_configs(TrainConfig.from_profile("smoke")))
    ['ce_hard', 'ce_ls', 'sjl_ls', 'jml_ls', 'jml_bls']
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from jmlkit._checks import check_real
from jmlkit.engine import TrainConfig
from jmlkit.experiments.runs import find_runs, notebook_status, resolve_results_dir, run_configs, run_metrics

__all__ = [
    "LABELS",
    "label",
    "smoothing_configs",
    "sweep",
    "epsilon_sweep",
    "train_teacher",
    "distillation_configs",
    "ssl_configs",
    "labeled_fraction_sweep",
    "soft_label_configs",
    "RunSource",
    "CALIBRATION_FALLBACK",
    "calibration_runs",
]

#: Display names of the recipe configurations (figure labels and the sentences of the findings).
LABELS = {
    "ce_hard": "CE, hard labels",
    "ce_ls": "CE + LS",
    "sjl_ls": "CE+SJL + LS",
    "jml_ls": "CE+JML + LS",
    "jml_bls": "CE+JML + boundary LS",
    "hard_ce": "hard labels, CE",
    "kd_ce": "KD, CE (= KL)",
    "kd_jml": "KD, JML",
    "kd_ce+jml": "KD, CE+JML",
    "labeled_only": "labelled only (CE)",
    "pseudo_hard_ce": "hard pseudo-labels (CE)",
    "pseudo_soft_jml": "soft pseudo-labels (CE+JML)",
}


def label(name: Any) -> str:
    """The display name of a configuration (:data:`LABELS`), else the name itself.

    >>> label("jml_ls"), label("mine")
    ('CE+JML + LS', 'mine')
    """
    return LABELS.get(str(name), str(name))


# ============================================================================ sweeps


def sweep(
    configs: Mapping[str, TrainConfig],
    field: str,
    values: Sequence[Any],
    *,
    seeds: Sequence[int] | int,
    output_dir: str | os.PathLike,
    column: str | None = None,
    name_format: str = "{name}_{short}{value:g}",
    short: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Every config × every value of one TrainConfig ``field`` × every seed, as a tidy table.

    The runs are named ``name_format.format(name=..., short=..., value=...)`` (``short`` defaults to
    the field's initials, ``epsilon`` → ``e``), and the table has a column ``column`` (default the
    field name) with the value and ``method`` with the original config name. ``kwargs`` go to
    :func:`~jmlkit.experiments.run_configs`.
    """
    if not isinstance(field, str) or field not in TrainConfig.__dataclass_fields__:
        raise ValueError(f"Expected `field` to be a TrainConfig option, but got {field!r}.")
    values = list(values)
    if not values:
        raise ValueError(f"Expected `values` to be a non-empty list, but got {values!r}.")
    short = short if short is not None else "".join(w[0] for w in field.split("_"))
    column = column or field
    named: dict[str, TrainConfig] = {}
    extra: dict[str, dict[str, Any]] = {}
    for name, cfg in configs.items():
        for value in values:
            run = name_format.format(name=name, short=short, value=value)
            named[run] = cfg.replace(**{field: value})
            extra[run] = {"method": name, column: value}
    return run_configs(named, seeds=seeds, output_dir=output_dir, extra=extra, **kwargs)


def epsilon_sweep(configs: Mapping[str, TrainConfig], epsilons: Sequence[float], *, seeds: Sequence[int] | int,
                  output_dir: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Label-smoothing ε sweep: each config with ``labels="ls"`` and every ``epsilon`` (runs ``<name>_e<ε>``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as out:
        ...     df = epsilon_sweep({"jml": TrainConfig.from_profile("smoke", loss="jml")}, [0.0, 0.2], seeds=0,
        ...                        output_dir=out, verbose=False)
        >>> df[["config", "method", "epsilon"]].values.tolist()
        [['jml_e0', 'jml', 0.0], ['jml_e0.2', 'jml', 0.2]]
    """
    epsilons = [check_real("epsilons", e, low=0.0, high=1.0) for e in epsilons]
    ls = {name: cfg.replace(labels="ls") for name, cfg in configs.items()}
    return sweep(ls, "epsilon", epsilons, seeds=seeds, output_dir=output_dir, short="e", **kwargs)


# ============================================================================ 02: label smoothing


def smoothing_configs(base: TrainConfig, *, epsilon: float = 0.1) -> dict[str, TrainConfig]:
    """The label-smoothing comparison of notebook 02 (compound losses are 0.25 CE + 0.75 region loss).

    ============  ================  ==========================
    name          labels            loss
    ============  ================  ==========================
    ``ce_hard``   hard              cross-entropy
    ``ce_ls``     uniform LS, ε     cross-entropy
    ``sjl_ls``    uniform LS, ε     CE + soft Jaccard (SJL)
    ``jml_ls``    uniform LS, ε     CE + Jaccard metric (JML)
    ``jml_bls``   boundary LS, ε    CE + Jaccard metric (JML)
    ============  ================  ==========================
    """
    ls = dict(labels="ls", epsilon=epsilon, smoothing="uniform")
    return {
        "ce_hard": base.replace(labels="hard", loss="ce"),
        "ce_ls": base.replace(loss="ce", **ls),
        "sjl_ls": base.replace(loss="ce+sjl", **ls),
        "jml_ls": base.replace(loss="ce+jml", **ls),
        "jml_bls": base.replace(loss="ce+jml", labels="ls", epsilon=epsilon, smoothing="boundary"),
    }


# ============================================================================ 03: distillation


def train_teacher(config: TrainConfig, *, output_dir: str | os.PathLike, seed: int = 0, name: str = "teacher",
                  verbose: bool = True, **kwargs: Any) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse) a teacher; returns ``(run_dir, metrics)``. ``kwargs`` go to :func:`~jmlkit.experiments.run_configs`."""
    runs = run_configs({name: config}, seeds=[seed], output_dir=output_dir, verbose=verbose, **kwargs)
    run_dir = Path(runs.iloc[0]["run_dir"])
    return run_dir, run_metrics(run_dir)


def distillation_configs(student: TrainConfig, teacher: str | os.PathLike, *, temperature: float = 1.0,
                         label_weight: float = 0.0) -> dict[str, TrainConfig]:
    """Students of notebook 03, all with the same model and data.

    ==============  ==============================  =================================================
    name            target                          loss
    ==============  ==============================  =================================================
    ``hard_ce``     hard labels                     cross-entropy
    ``kd_ce``       teacher's softmax (T)           cross-entropy = KL(teacher ‖ student) + const.
    ``kd_jml``      teacher's softmax (T)           Jaccard metric loss
    ``kd_ce+jml``   teacher's softmax (T)           0.25 CE + 0.75 JML
    ==============  ==============================  =================================================

    Example:
        >>> cfgs = distillation_configs(TrainConfig.from_profile("smoke"), "runs/teacher__seed0", temperature=2.0)
        >>> [(k, c.labels, c.loss) for k, c in cfgs.items()]
        [('hard_ce', 'hard', 'ce'), ('kd_ce', 'kd', 'ce'), ('kd_jml', 'kd', 'jml'), ('kd_ce+jml', 'kd', 'ce+jml')]
    """
    teacher = str(Path(teacher).resolve())
    kd = dict(labels="kd", teacher=teacher, kd_temperature=temperature, kd_label_weight=label_weight)
    return {
        "hard_ce": student.replace(labels="hard", loss="ce"),
        "kd_ce": student.replace(loss="ce", **kd),
        "kd_jml": student.replace(loss="jml", **kd),
        "kd_ce+jml": student.replace(loss="ce+jml", **kd),
    }


# ============================================================================ 04: semi-supervised


def ssl_configs(base: TrainConfig, *, hard_threshold: float = 0.9, soft_threshold: float = 0.0,
                ssl_weight: float = 1.0, ssl_warmup: float = 0.5,
                steps_per_epoch: int | None = None) -> dict[str, TrainConfig]:
    """Methods of notebook 04; every method takes the same number of optimisation steps.

    ==================  ====================================================================
    name                what
    ==================  ====================================================================
    ``labeled_only``    cross-entropy on the labelled images only
    ``pseudo_hard_ce``  + FixMatch-style hard pseudo-labels (arg-max, confidence ≥ ``hard_threshold``), CE
    ``pseudo_soft_jml`` + soft pseudo-labels (the model's probabilities, ≥ ``soft_threshold``), CE + JML
    ==================  ====================================================================

    The unlabelled loss is weighted by ``ssl_weight`` and starts after ``ssl_warmup`` of the steps (the
    first half by default: pseudo-labels of an untrained network are noise; in our quick runs this
    warm-up doubled the mIoU of hard pseudo-labelling at 1/4 of the labels). ``steps_per_epoch``
    defaults to one pass over ``train_limit`` images (the labelled set is cycled); the unlabelled
    batches are half the labelled batch size, to keep a semi-supervised step affordable on a CPU.

    Example:
        >>> [(k, c.labels, c.loss, c.ssl_soft) for k, c in ssl_configs(TrainConfig.from_profile("smoke")).items()]
        [('labeled_only', 'hard', 'ce', True), ('pseudo_hard_ce', 'ssl', 'ce', False), ('pseudo_soft_jml', 'ssl', 'ce+jml', True)]
    """
    if steps_per_epoch is None:
        n = base.train_limit if base.train_limit is not None else 1000
        steps_per_epoch = max(1, n // base.batch_size)
    common = dict(steps_per_epoch=steps_per_epoch, unlabeled_batch_size=max(1, base.batch_size // 2))
    ssl = dict(labels="ssl", ssl_weight=ssl_weight, ssl_warmup=ssl_warmup, **common)
    return {
        "labeled_only": base.replace(labels="hard", loss="ce", **common),
        "pseudo_hard_ce": base.replace(loss="ce", ssl_soft=False, ssl_threshold=hard_threshold, **ssl),
        "pseudo_soft_jml": base.replace(loss="ce+jml", ssl_soft=True, ssl_threshold=soft_threshold, **ssl),
    }


def labeled_fraction_sweep(configs: Mapping[str, TrainConfig], fractions: Sequence[float], *,
                           seeds: Sequence[int] | int, output_dir: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Each config with every labelled fraction (runs ``<name>_f<fraction>``), with a ``fraction`` column."""
    fractions = [check_real("fractions", f, low=0.0, high=1.0, low_open=True) for f in fractions]
    return sweep(configs, "labeled_fraction", fractions, seeds=seeds, output_dir=output_dir,
                 column="fraction", short="f", **kwargs)


# ============================================================================ 05: soft labels of the data


def soft_label_configs(settings: Mapping[str, Any], losses: Sequence[str]) -> dict[str, TrainConfig]:
    """One run ``<loss>_soft`` per loss on ``BrainTissueSlices``, trained on the data's soft labels.

    Args:
        settings: image ``size``, ``model``, ``epochs``, ``batch_size``, ``lr``, ``train_limit`` and
            ``eval_limit``: :func:`jmlkit.profiles.soft_label_settings` of a profile.
        losses: loss names of :func:`jmlkit.losses.get_loss`.

    Example:
        >>> from jmlkit.profiles import soft_label_settings
        >>> cfgs = soft_label_configs(soft_label_settings("smoke"), ["ce", "jml"])
        >>> [(k, c.labels, c.loss, c.dataset_kwargs["size"]) for k, c in cfgs.items()]
        [('ce_soft', 'soft', 'ce', 32), ('jml_soft', 'soft', 'jml', 32)]
    """
    return {
        f"{loss}_soft": TrainConfig(
            dataset="brain", dataset_kwargs={"size": settings["size"], "in_channels": 1}, labels="soft", loss=loss,
            model=settings["model"], epochs=settings["epochs"], batch_size=settings["batch_size"], lr=settings["lr"],
            train_limit=settings["train_limit"], eval_limit=settings["eval_limit"], val_split=None, eval_split="test",
        )
        for loss in losses
    }


# ============================================================================ 06: the runs to compare


class RunSource(NamedTuple):
    """Where notebook 06's runs come from (:func:`calibration_runs`)."""

    runs: pd.DataFrame  # find_runs table
    source: str  # words for the reader: which folder, or "runs trained here ..."
    skipped: dict[str, str]  # notebooks left out: {notebook: runner status}
    trained_here: bool  # True when no finished runs were found and the fallback set was trained


#: The configurations of notebook 02 that notebook 06 trains when it finds no runs.
CALIBRATION_FALLBACK = ("ce_hard", "ce_ls", "jml_ls", "sjl_ls")


def calibration_runs(
    results_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    profile: str,
    *,
    notebooks: Sequence[str] | None = None,
    seeds: Sequence[int] | int | None = None,
    seed: int = 0,
) -> RunSource:
    """The finished runs of the other notebooks (see :func:`~jmlkit.experiments.resolve_results_dir`),
    or, when there are none, four of notebook 02's configurations (:data:`CALIBRATION_FALLBACK`,
    ε = 0.1) trained into ``output_dir`` with the profile's seeds."""
    from jmlkit.profiles import profile_seeds

    out = Path(output_dir)
    source_dir = resolve_results_dir(results_dir, out, profile, exclude=out)
    runs = find_runs(source_dir, notebooks=notebooks, exclude=out) if source_dir is not None else pd.DataFrame()
    status = notebook_status(source_dir) if source_dir is not None else {}
    skipped = {nb: st for nb, st in status.items() if st != "ok"}
    if len(runs):
        return RunSource(runs, f"the finished runs in `{source_dir.resolve()}`", skipped, False)
    configs = smoothing_configs(TrainConfig.from_profile(profile), epsilon=0.1)
    run_configs({name: configs[name] for name in CALIBRATION_FALLBACK}, seeds=profile_seeds(profile, seeds, seed=seed),
                output_dir=out)
    runs = find_runs(out, only_finished=False).assign(notebook="06_calibration (trained here)")
    source = f"runs trained here (profile `{profile}`), because no finished runs were found" + (
        f" in `{source_dir}`" if source_dir is not None else "")
    return RunSource(runs, source, skipped, True)
