"""The configurations of each result notebook, and the sweeps that run them through the run cache.

=====================================  ========  ==========================================================
recipe                                 notebook  what
=====================================  ========  ==========================================================
:func:`smoothing_configs`              02        the paper's recipe (CE+JML + boundary LS) first, then CE,
                                                 CE+SJL and our uniform-LS variation
:func:`smoothing_ablation_configs`     02        one-factor changes of the paper's recipe
:func:`epsilon_sweep`                  02        a label-smoothing ε sweep
:func:`train_teacher`                  03        the teacher of the distillation students
:func:`distillation_configs`           03        four students: hard labels, KD with CE, JML, CE+JML
:func:`distillation_ablation_configs`  03        why the JML alone on the teacher fails: one change at a time
:func:`ssl_configs`                    04        labelled only; hard or soft pseudo-labels × CE or CE+JML
:func:`labeled_fraction_sweep`         04        the methods at several labelled fractions
:func:`soft_label_configs`             05        one brain-slice run per loss, on the data's soft labels
:func:`calibration_runs`               06        the runs of 02–05, or a small set trained here
=====================================  ========  ==========================================================

Base configurations come from :meth:`jmlkit.engine.TrainConfig.from_profile`; seeds, sweep values
and models from :mod:`jmlkit.profiles`. :data:`LABELS` are the display names of the configurations.

Example:
    >>> list(smoothing_configs(TrainConfig.from_profile("smoke")))
    ['jml_bls', 'ce_hard', 'ce_ls', 'ce_bls', 'sjl_bls', 'jml_ls', 'lovasz_hard', 'dml_bls']
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from jmlkit._checks import check_real
from jmlkit.engine import TrainConfig
from jmlkit.experiments.runs import find_runs, notebook_status, resolve_results_dir, run_configs, run_metrics
from jmlkit.layout import run_folder_name

__all__ = [
    "LABELS",
    "label",
    "run_label",
    "PAPER_RECIPE",
    "PAPER_SMOOTHING",
    "smoothing_configs",
    "smoothing_ablation_configs",
    "sweep",
    "epsilon_sweep",
    "train_teacher",
    "distillation_configs",
    "distillation_ablation_configs",
    "jml_alone_ablation",
    "teacher_config",
    "ssl_configs",
    "labeled_fraction_sweep",
    "soft_label_configs",
    "RunSource",
    "CALIBRATION_FALLBACK",
    "calibration_fallback_configs",
    "calibration_runs",
]

#: Display names of the recipe configurations (figure labels and the sentences of the findings).
LABELS = {
    "jml_bls": "CE+JML + boundary LS (paper's recipe)",
    "ce_hard": "CE, hard labels",
    "ce_ls": "CE + uniform LS",
    "ce_bls": "CE + boundary LS",
    "sjl_bls": "CE+SJL + boundary LS",
    "jml_ls": "CE+JML + uniform LS (ours)",
    "lovasz_hard": "CE+Lovász, hard labels",
    "dml_bls": "CE+DML + boundary LS",
    "sjl_ls": "CE+SJL + uniform LS",
    "jml_bls_uniform": "recipe with uniform LS",
    "jml_bls_eps": "recipe with a smaller ε",
    "jml_bls_image": "recipe with per-image JML",
    "jml_bls_present": "recipe with present classes",
    "jml_bls_large": "recipe on large digits",
    "ce_hard_large": "CE, hard labels, large digits",
    "hard_ce": "hard labels, CE",
    "kd_jml": "JML-KD (the paper's)",
    "kd_kl": "KL distillation (CE + KL)",
    "kd_jml_only": "JML on the teacher alone (ours)",
    "jml_only_hard": "JML alone, hard labels",
    "kd_jml_only_ce_teacher": "JML alone, CE-trained teacher",
    "kd_jml_mixed": "JML alone, teacher + label",
    "teacher": "teacher",
    "labeled_only": "labelled only (CE)",
    "pseudo_hard_ce": "hard pseudo-labels (CE)",
    "pseudo_soft_ce": "soft pseudo-labels (CE)",
    "pseudo_hard_jml": "hard pseudo-labels (CE+JML)",
    "pseudo_soft_jml": "soft pseudo-labels (CE+JML)",
    "ce_soft": "CE on the tissue probabilities",
    "jml_soft": "JML on the tissue probabilities",
    "sjl_soft": "SJL on the tissue probabilities",
}


def label(name: Any) -> str:
    """The display name of a configuration (:data:`LABELS`), else the name itself.

    >>> label("jml_bls"), label("mine")
    ("CE+JML + boundary LS (paper's recipe)", 'mine')
    """
    return LABELS.get(str(name), str(name))


_SWEEP_SUFFIX = re.compile(r"^(?P<base>.+?)_(?P<short>e|T|f|lr|w)(?P<value>\d[\d.e-]*)$")
_SUFFIX_WORDS = {"e": "ε = {}", "T": "T = {}", "f": "{} labelled", "lr": "lr {}", "w": "weight {}"}


def run_label(config: Any) -> str:
    """A readable name of a run's configuration: its regime, its display name (:func:`label`) and the value a sweep
    gave it (names as the notebooks make them: ``<regime>.<config>``, ``<config>_e0.5``, ``<config>_f0.125``).

    >>> run_label("small.jml_bls_e0.5")
    "small · CE+JML + boundary LS (paper's recipe), ε = 0.5"
    >>> run_label("pseudo_soft_jml_f0.125"), run_label("large.hard_ce"), run_label("mine")
    ('soft pseudo-labels (CE+JML), 0.125 labelled', 'large · hard labels, CE', 'mine')
    """
    name = str(config)
    regime, dot, rest = name.partition(".")
    if not dot or not regime.isalpha():  # regimes are words (large, small, overconfident); 0.125 is no regime
        regime, rest = "", name
    suffix = ""
    match = _SWEEP_SUFFIX.match(rest)
    if rest not in LABELS and match is not None and match["base"] in LABELS:
        rest, suffix = match["base"], ", " + _SUFFIX_WORDS[match["short"]].format(match["value"])
    return (f"{regime} · " if regime else "") + label(rest) + suffix


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


#: The paper's label smoothing (docs/paper.md, ``configs/labels/ls.yaml``): boundary only, ε = 0.5, a 3×3 window.
PAPER_SMOOTHING: dict[str, Any] = dict(labels="ls", smoothing="boundary", epsilon=0.5, boundary_kernel=3)
#: The paper's soft-label recipe: 0.25 CE (= KL at T = 1 up to a constant) + 0.75 JML (batch pooling, all classes
#: for soft targets, smooth 1: the loss defaults) on boundary-smoothed labels.
PAPER_RECIPE: dict[str, Any] = dict(loss="ce+jml", **PAPER_SMOOTHING)


def smoothing_configs(base: TrainConfig, *, epsilon: float = 0.1) -> dict[str, TrainConfig]:
    """The label-smoothing comparison of notebook 02, the paper's recipe first (eight configurations).

    Compound losses are 0.25 CE + 0.75 region loss; region losses pool over the batch and use all classes on
    soft targets (the loss defaults, the paper's). Boundary LS is the paper's: ε = 0.5, 3×3 window.

    ============  ==========================  ==========================  ======================================
    name          labels                      loss                        what
    ============  ==========================  ==========================  ======================================
    ``jml_bls``   boundary LS, ε 0.5, 3×3     CE + Jaccard metric (JML)   **the paper's recipe**
    ``ce_hard``   hard                        cross-entropy               the baseline
    ``ce_ls``     uniform LS, ``epsilon``     cross-entropy               classic label smoothing
    ``ce_bls``    boundary LS, ε 0.5, 3×3     cross-entropy               the recipe without its JML term
    ``sjl_bls``   boundary LS, ε 0.5, 3×3     CE + soft Jaccard (SJL)     the recipe with the older loss
    ``jml_ls``    uniform LS, ``epsilon``     CE + JML                    ours: the recipe's loss, uniform LS
    ``lovasz_h…`` hard                        CE + Lovász-Softmax         ``lovasz_hard``: the Lovász extension
                                                                          (hard labels only, docs/paper.md)
    ``dml_bls``   boundary LS, ε 0.5, 3×3     CE + Dice semimetric (DML)  the recipe with the Dice loss of the
                                                                          companion paper
    ============  ==========================  ==========================  ======================================

    The last two give every loss of :mod:`jmlkit.losses` one trained run; notebook 02 trains them in its main
    regime only.

    Example:
        >>> cfgs = smoothing_configs(TrainConfig.from_profile("smoke"))
        >>> [(k, c.labels, c.smoothing, c.epsilon, c.loss) for k, c in cfgs.items()][:2]
        [('jml_bls', 'ls', 'boundary', 0.5, 'ce+jml'), ('ce_hard', 'hard', 'boundary', 0.5, 'ce')]
    """
    epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0)
    uniform = dict(labels="ls", smoothing="uniform", epsilon=epsilon)
    return {
        "jml_bls": base.replace(**PAPER_RECIPE),
        "ce_hard": base.replace(labels="hard", loss="ce"),
        "ce_ls": base.replace(loss="ce", **uniform),
        "ce_bls": base.replace(loss="ce", **PAPER_SMOOTHING),
        "sjl_bls": base.replace(loss="ce+sjl", **PAPER_SMOOTHING),
        "jml_ls": base.replace(loss="ce+jml", **uniform),
        "lovasz_hard": base.replace(labels="hard", loss="ce+lovasz"),
        "dml_bls": base.replace(loss="ce+dml", **PAPER_SMOOTHING),
    }


def smoothing_ablation_configs(base: TrainConfig, *, epsilon: float = 0.1,
                               large: Mapping[str, Any] | None = None) -> dict[str, TrainConfig]:
    """Notebook 02's ablation: the paper's recipe and one-factor changes of it, to test why it fails on small
    objects (the ε/C floor that smoothing gives every class, the share of each object inside the band).

    ===================  =============================================================================
    name                 the one change from ``jml_bls`` (the paper's recipe, first)
    ===================  =============================================================================
    ``jml_bls_uniform``  uniform instead of boundary smoothing (same ε = 0.5)
    ``jml_bls_eps``      boundary smoothing with ε = ``epsilon`` instead of 0.5
    ``jml_bls_image``    JML pooled per image (``aggregate="image"``) instead of over the batch
    ``jml_bls_present``  JML over the classes present in each image (``classes="present"``, threshold 0.01)
    ``ce_hard``          the CE reference on the same data (not a change of the recipe)
    ``jml_bls_large``    data: ``large`` (``dataset_kwargs`` of larger objects), same recipe
    ``ce_hard_large``    the CE reference on the ``large`` data (not a change of the recipe)
    ===================  =============================================================================

    The last two exist only when ``large`` is given (the notebook gives it for digit scenes).

    Example:
        >>> cfgs = smoothing_ablation_configs(TrainConfig.from_profile("smoke"), large={"size": 24})
        >>> list(cfgs)
        ['jml_bls', 'jml_bls_uniform', 'jml_bls_eps', 'jml_bls_image', 'jml_bls_present', 'ce_hard', 'jml_bls_large', 'ce_hard_large']
        >>> cfgs["jml_bls_image"].loss_kwargs, cfgs["jml_bls_large"].dataset_kwargs["size"]
        ({'aggregate': 'image'}, 24)
    """
    epsilon = check_real("epsilon", epsilon, low=0.0, high=1.0)
    recipe = base.replace(**PAPER_RECIPE)
    configs = {
        "jml_bls": recipe,
        "jml_bls_uniform": recipe.replace(smoothing="uniform"),
        "jml_bls_eps": recipe.replace(epsilon=epsilon),
        "jml_bls_image": recipe.replace(loss_kwargs={**recipe.loss_kwargs, "aggregate": "image"}),
        "jml_bls_present": recipe.replace(loss_kwargs={**recipe.loss_kwargs, "classes": "present"}),
        "ce_hard": base.replace(labels="hard", loss="ce"),
    }
    if large is not None:
        data = {**base.dataset_kwargs, **dict(large)}
        configs["jml_bls_large"] = recipe.replace(dataset_kwargs=data)
        configs["ce_hard_large"] = base.replace(labels="hard", loss="ce", dataset_kwargs=data)
    return configs


# ============================================================================ 03: distillation


def train_teacher(config: TrainConfig, *, output_dir: str | os.PathLike, seed: int = 0,
                  seeds: Sequence[int] | None = None, name: str = "teacher", select_split: str = "val",
                  select_metric: str = "mIoU_D", verbose: bool = True, table: bool = False,
                  **kwargs: Any) -> tuple[Any, ...]:
    """Train (or reuse) a teacher; returns ``(run_dir, metrics)``, with ``table=True`` ``(run_dir, metrics, runs)``.
    ``kwargs`` go to :func:`~jmlkit.experiments.run_configs`.

    With several ``seeds`` it follows the advice of the paper's reference code (train the teacher at least three
    times and keep the best): every seed is trained, each model is scored by ``select_metric`` on the
    ``select_split`` split (the validation scenes, never the test scenes the students are scored on; each score is
    computed once and kept with its run, :func:`~jmlkit.experiments.results.stored_value`), the scores go
    to ``output_dir/<name>_selection.csv`` and the best run is returned. One seed (``seeds=None``: ``[seed]``)
    returns that run, unscored.

    ``runs`` (``table=True``): one row per teacher seed, the run table of
    :func:`~jmlkit.experiments.run_configs` (test metrics) with ``config`` = ``"teacher"``, the validation score
    ``<select_metric>_<select_split>`` (NaN with one seed) and ``kept`` (the returned one).
    """
    from jmlkit.engine import evaluate, load_checkpoint
    from jmlkit.experiments.evaluation import eval_dataset
    from jmlkit.experiments.results import run_result, stored_value

    seeds = [seed] if seeds is None else list(seeds)
    runs = run_configs({name: config}, seeds=seeds, output_dir=output_dir, verbose=verbose, **kwargs)
    dirs = [Path(d) for d in runs["run_dir"]]
    scores, best = [float("nan")] * len(dirs), 0
    if len(dirs) > 1:
        data = None

        def score(d: Path) -> float:  # computed once and kept with the run (the records replay it)
            nonlocal data
            data = data if data is not None else eval_dataset(config.replace(eval_split=select_split, eval_limit=None))
            result = run_result(d)  # the model in memory, else read without marking it as a figure's (records)
            return float(evaluate(result._model if result.has_model else load_checkpoint(d), data)[select_metric])

        scores = [float(stored_value(run_result(d), f"selection:{select_split}:{select_metric}",
                                     f"{select_metric} on the whole {select_split} split", lambda d=d: score(d)))
                  for d in dirs]
        best = max(range(len(dirs)), key=scores.__getitem__)
        pd.DataFrame({"run": [run_folder_name(name, k) for k in seeds], "seed": seeds,  # the folder name without its hash
                      f"{select_metric}_{select_split}": scores,
                      "kept": [i == best for i in range(len(dirs))]}).to_csv(
            Path(output_dir) / f"{name}_selection.csv", index=False)
        if verbose:
            print(f"{name}: {select_metric} on the {select_split} split "
                  + ", ".join(f"seed {k} {100 * v:.1f}%" for k, v in zip(seeds, scores)) + f"; kept seed {seeds[best]}")
    kept = dirs[best]
    if not table:
        return kept, run_metrics(kept)
    rows = runs.assign(config="teacher", **{f"{select_metric}_{select_split}": scores},
                       kept=[i == best for i in range(len(dirs))])
    return kept, run_metrics(kept), rows


def distillation_configs(student: TrainConfig, teacher: str | os.PathLike, *, temperature: float = 1.0,
                         label_weight: float = 0.5, teacher_weight: float = 0.5) -> dict[str, TrainConfig]:
    """Students of notebook 03, all with the same model, data and steps; the paper's recipe first.

    ================  ===================================================================================
    name              objective
    ================  ===================================================================================
    ``kd_jml``        **the paper's JML-KD** (:class:`~jmlkit.losses.JMLDistillationLoss`):
                      0.25 [λ CE(labels) + τ T² KL(teacher ‖ student)] + 0.75 [λ JML(labels) + τ JML(teacher)]
    ``hard_ce``       hard labels, cross-entropy (no teacher)
    ``kd_kl``         KL distillation: λ CE(labels) + τ T² KL(teacher ‖ student)
    ``kd_jml_only``   ours: the JML alone on the teacher's probabilities (one mixed target, no label term)
    ================  ===================================================================================

    λ = ``label_weight``, τ = ``teacher_weight`` (0.5 and 0.5 in the reference code), T = ``temperature``.

    Example:
        >>> cfgs = distillation_configs(TrainConfig.from_profile("smoke"), "runs/teacher__seed0", temperature=2.0)
        >>> [(k, c.labels, c.kd_form, c.loss) for k, c in cfgs.items()]  # doctest: +NORMALIZE_WHITESPACE
        [('kd_jml', 'kd', 'terms', 'ce+jml'), ('hard_ce', 'hard', 'terms', 'ce'), ('kd_kl', 'kd', 'terms', 'ce'),
         ('kd_jml_only', 'kd', 'mixed', 'jml')]
    """
    teacher = str(Path(teacher).resolve())
    kd = dict(labels="kd", teacher=teacher, kd_temperature=temperature, kd_label_weight=label_weight,
              kd_teacher_weight=teacher_weight, kd_form="terms")
    return {
        "kd_jml": student.replace(loss="ce+jml", **kd),
        "hard_ce": student.replace(labels="hard", loss="ce"),
        "kd_kl": student.replace(loss="ce", **kd),
        "kd_jml_only": student.replace(loss="jml", **{**kd, "kd_form": "mixed", "kd_label_weight": 0.0}),
    }


def teacher_config(student: TrainConfig, *, model: str, epochs: int | None = None, seed: int = 0,
                   epsilon: float = 0.5, hard_ce: bool = False) -> TrainConfig:
    """The teacher of notebook 03: the paper's soft-label recipe (CE+JML with boundary label smoothing, ε 0.5 by
    default, k 3), trained ``epochs`` epochs (``None``: twice the student's). ``hard_ce``: instead cross-entropy
    on hard labels (the teacher of the ablation that asks whether the teacher's smoothing is what JML alone fails on).

    >>> t = teacher_config(TrainConfig.from_profile("smoke", epochs=3), model="tiny")
    >>> t.smoothing, t.epochs, teacher_config(TrainConfig.from_profile("smoke"), model="tiny", hard_ce=True).labels
    ('boundary', 6, 'hard')
    """
    epochs = 2 * student.epochs if epochs is None else epochs
    if hard_ce:
        return student.replace(model=model, epochs=epochs, labels="hard", loss="ce", seed=seed)
    return student.replace(model=model, epochs=epochs, labels="ls", smoothing="boundary", epsilon=epsilon,
                           boundary_kernel=3, loss="ce+jml", seed=seed)


def distillation_ablation_configs(student: TrainConfig, teacher: str | os.PathLike, ce_teacher: str | os.PathLike, *,
                                  temperature: float = 1.0) -> dict[str, TrainConfig]:
    """Notebook 03's ablation of "the JML alone on the teacher" (``kd_jml_only``): one change at a time.

    ==========================  ==============================================================================
    name                        objective (all: the JML alone, no cross-entropy)
    ==========================  ==============================================================================
    ``kd_jml_only``             the teacher's probabilities (the run of :func:`distillation_configs`)
    ``jml_only_hard``           the hard labels, no teacher: does the JML alone train this network at all?
    ``kd_jml_only_ce_teacher``  a teacher trained with CE on hard labels: is the teacher's smoothing the cause?
    ``kd_jml_mixed``            0.5 teacher + 0.5 one-hot label in one target: does a label term rescue it?
    ==========================  ==============================================================================

    >>> cfgs = distillation_ablation_configs(TrainConfig.from_profile("smoke"), "runs/t", "runs/t_ce")
    >>> [(k, c.labels, c.loss, c.kd_label_weight) for k, c in cfgs.items()]  # doctest: +NORMALIZE_WHITESPACE
    [('kd_jml_only', 'kd', 'jml', 0.0), ('jml_only_hard', 'hard', 'jml', 0.5),
     ('kd_jml_only_ce_teacher', 'kd', 'jml', 0.0), ('kd_jml_mixed', 'kd', 'jml', 0.5)]
    """
    only = distillation_configs(student, teacher, temperature=temperature)["kd_jml_only"]
    return {
        "kd_jml_only": only,
        "jml_only_hard": student.replace(labels="hard", loss="jml"),
        "kd_jml_only_ce_teacher": only.replace(teacher=str(Path(ce_teacher).resolve())),
        "kd_jml_mixed": only.replace(kd_label_weight=0.5),
    }


def jml_alone_ablation(student: TrainConfig, teacher: TrainConfig, teacher_dir: str | os.PathLike, *,
                       seeds: Sequence[int] | int, output_dir: str | os.PathLike, seed: int = 0,
                       temperature: float = 1.0, regime: str | None = None, force: bool = False,
                       verbose: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Notebook 03's ablation of the JML alone, trained: a teacher of ``teacher``'s model and epochs trained with CE on
    hard labels (seed ``seed``, run name ``<regime>.teacher_ce``), then the hard-label student, the paper's JML-KD
    and :func:`distillation_ablation_configs` with every seed (the first two are the runs of the main comparison,
    reused from the cache). Returns ``(runs, the CE teacher's metrics)``; ``runs`` has a ``regime`` column when
    ``regime`` is given.
    """
    name = f"{regime}.teacher_ce" if regime else "teacher_ce"
    ce_dir, ce_metrics = train_teacher(teacher_config(student, model=teacher.model, epochs=teacher.epochs, seed=seed,
                                                      hard_ce=True),
                                       output_dir=output_dir, name=name, force=force, verbose=verbose)
    if verbose:
        print(f"CE-trained teacher{f' ({regime} regime)' if regime else ''}: mIoU_D {100 * ce_metrics['mIoU_D']:.1f}%, "
              f"ECE_D {100 * ce_metrics['ECE_D']:.1f}%")
    main = distillation_configs(student, teacher_dir, temperature=temperature)
    configs = {"hard_ce": main["hard_ce"], "kd_jml": main["kd_jml"],
               **distillation_ablation_configs(student, teacher_dir, ce_dir, temperature=temperature)}
    runs = run_configs(configs, seeds=seeds, output_dir=output_dir, force=force, verbose=verbose)
    if regime is not None:
        runs.insert(0, "regime", regime)
    return runs, ce_metrics


def ssl_configs(base: TrainConfig, *, threshold: float = 0.9, ssl_weight: float = 1.0, ssl_warmup: float = 0.5,
                steps_per_epoch: int | None = None) -> dict[str, TrainConfig]:
    """Methods of notebook 04: labelled only, then the 2 × 2 design of pseudo-labels × loss at one threshold.

    ===================  ====================  ======================================================
    name                 pseudo-labels         loss (on the labelled and the unlabelled images alike)
    ===================  ====================  ======================================================
    ``labeled_only``     none                  CE, on the labelled images only
    ``pseudo_hard_ce``   hard (arg-max)        CE: the common FixMatch-style baseline
    ``pseudo_soft_ce``   soft (probabilities)  CE
    ``pseudo_hard_jml``  hard (arg-max)        CE + JML
    ``pseudo_soft_jml``  soft (probabilities)  CE + JML
    ===================  ====================  ======================================================

    Neighbours in the design differ in one factor: ``pseudo_soft_ce`` − ``pseudo_hard_ce`` and ``pseudo_soft_jml``
    − ``pseudo_hard_jml`` is the effect of soft pseudo-labels, ``pseudo_hard_jml`` − ``pseudo_hard_ce`` and
    ``pseudo_soft_jml`` − ``pseudo_soft_ce`` that of the JML. Every pseudo-label method keeps the pixels whose
    confidence (the largest probability) is at least ``threshold`` (0.9, FixMatch's convention). Pseudo-labels,
    soft ones and hard ones alike (one-hot maps), enter the JML with **all** classes (jmlkit's default for
    probability targets, as in the authors' code); the labelled batch's hard labels with the classes present in it.

    The unlabelled loss is weighted by ``ssl_weight`` and starts after ``ssl_warmup`` of the steps (the
    first half by default, trained on the labelled images alone: pseudo-labels of an untrained network are
    noise; in our quick runs this warm-up doubled the mIoU of hard pseudo-labelling at 1/4 of the labels).
    Every method takes the same number of optimisation steps: ``steps_per_epoch`` defaults to one pass over
    ``train_limit`` images (the labelled set is cycled); the unlabelled batches are half the labelled batch
    size, to keep a semi-supervised step affordable on a CPU.

    Example:
        >>> configs = ssl_configs(TrainConfig.from_profile("smoke"))
        >>> [(k, c.labels, c.loss, c.ssl_soft if c.labels == "ssl" else None) for k, c in configs.items()]
        [('labeled_only', 'hard', 'ce', None), ('pseudo_hard_ce', 'ssl', 'ce', False), ('pseudo_soft_ce', 'ssl', 'ce', True),
         ('pseudo_hard_jml', 'ssl', 'ce+jml', False), ('pseudo_soft_jml', 'ssl', 'ce+jml', True)]
        >>> {c.ssl_threshold for c in configs.values() if c.labels == "ssl"}
        {0.9}
    """
    threshold = check_real("threshold", threshold, low=0.0, high=1.0)
    if steps_per_epoch is None:
        n = base.train_limit if base.train_limit is not None else 1000
        steps_per_epoch = max(1, n // base.batch_size)
    common = dict(steps_per_epoch=steps_per_epoch, unlabeled_batch_size=max(1, base.batch_size // 2))
    ssl = dict(labels="ssl", ssl_threshold=threshold, ssl_weight=ssl_weight, ssl_warmup=ssl_warmup, **common)
    return {
        "labeled_only": base.replace(labels="hard", loss="ce", **common),
        "pseudo_hard_ce": base.replace(loss="ce", ssl_soft=False, **ssl),
        "pseudo_soft_ce": base.replace(loss="ce", ssl_soft=True, **ssl),
        "pseudo_hard_jml": base.replace(loss="ce+jml", ssl_soft=False, **ssl),
        "pseudo_soft_jml": base.replace(loss="ce+jml", ssl_soft=True, **ssl),
    }


def labeled_split_words(config: TrainConfig, fractions: Sequence[float]) -> str:
    """How many training items each labelled fraction leaves labelled and unlabelled (as notebook 04 prints it).

    >>> labeled_split_words(TrainConfig.from_profile("smoke"), [0.25])
    'fraction 0.25: 4 labelled, 12 unlabelled'
    """
    from jmlkit.experiments.evaluation import eval_dataset

    n = config.train_limit or len(eval_dataset(config.replace(eval_split=config.train_split, eval_limit=None)))
    return "; ".join(f"fraction {f:g}: {max(1, round(f * n))} labelled, {n - max(1, round(f * n))} unlabelled"
                     for f in fractions)


def ssl_regime_runs(configs: Mapping[str, TrainConfig], fractions: Sequence[float], *, seeds: Sequence[int] | int,
                    output_dir: str | os.PathLike, force: bool = False, evaluators: Mapping[str, Any] | None = None,
                    **ssl_options: Any) -> pd.DataFrame:
    """Notebook 04's runs: in each regime of ``{regime: base config}``, :func:`ssl_configs` (``ssl_options``:
    ``threshold``, ``ssl_weight``, ``ssl_warmup``, ``steps_per_epoch``) with every labelled fraction and seed, as
    one table with ``regime``, ``method`` and ``fraction`` columns (``evaluators``: of
    :func:`~jmlkit.experiments.run_configs`)."""
    from jmlkit.experiments.regimes import run_per_regime

    def sweep_fractions(named: Mapping[str, TrainConfig], **kwargs: Any) -> pd.DataFrame:
        return labeled_fraction_sweep(named, fractions, **kwargs)

    per_regime = {name: ssl_configs(config, **ssl_options) for name, config in configs.items()}
    return run_per_regime(per_regime, seeds=seeds, output_dir=output_dir, force=force, run=sweep_fractions,
                          evaluators=evaluators)


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
        settings: image ``size``, ``model``, ``epochs``, ``batch_size``, ``lr``, ``train_limit``, ``eval_limit``
            and ``num_threads`` (one in every profile, as the other notebooks' runs: a run's numbers then do not
            depend on the machine's cores): :func:`jmlkit.profiles.soft_label_settings` of a profile.
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
            replay=settings.get("replay"), num_threads=settings.get("num_threads"),
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


#: The configurations that notebook 06 trains when it finds no runs: the paper's recipe (CE+JML with boundary LS,
#: ε = 0.5) first, then hard-label CE and CE and CE+JML on uniformly smoothed labels (ε = 0.1, ours), as notebook 06
#: describes them (:func:`calibration_fallback_configs`).
CALIBRATION_FALLBACK = ("jml_bls", "ce_hard", "ce_ls", "jml_ls")


def calibration_fallback_configs(base: TrainConfig, *, epsilon: float = 0.1) -> dict[str, TrainConfig]:
    """The :data:`CALIBRATION_FALLBACK` configurations of notebook 02 (the paper's recipe first).

    >>> list(calibration_fallback_configs(TrainConfig.from_profile("smoke"))) == list(CALIBRATION_FALLBACK)
    True
    """
    configs = smoothing_configs(base, epsilon=epsilon)
    return {name: configs[name] for name in CALIBRATION_FALLBACK}


def calibration_runs(
    results_dir: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    profile: str,
    *,
    notebooks: Sequence[str] | None = None,
    seeds: Sequence[int] | int | None = None,
    seed: int = 0,
    evaluators: Mapping[str, Any] | None = None,
) -> RunSource:
    """The finished runs of the other notebooks (see :func:`~jmlkit.experiments.resolve_results_dir`; in the
    ``results`` profile, the committed records of the full profile's runs),
    or, when there are none, four of notebook 02's configurations (:data:`CALIBRATION_FALLBACK`,
    ε = 0.1) trained into ``output_dir`` with the profile's seeds (and ``evaluators``, see
    :func:`~jmlkit.experiments.run_configs`)."""
    from jmlkit.profiles import profile_seeds

    from jmlkit.profiles import PROFILE_NAMES, get_profile

    out = Path(output_dir)
    replay = get_profile(profile)["train"].get("replay") if profile in PROFILE_NAMES else None
    if results_dir is None and replay is not None:  # the results profile: the committed records of the full runs
        results_dir = replay
    source_dir = resolve_results_dir(results_dir, out, profile, exclude=out)
    runs = find_runs(source_dir, notebooks=notebooks, exclude=out) if source_dir is not None else pd.DataFrame()
    status = notebook_status(source_dir) if source_dir is not None else {}
    skipped = {nb: st for nb, st in status.items() if st != "ok"}
    if len(runs):
        return RunSource(runs, f"the finished runs in `{source_dir.resolve()}`", skipped, False)
    run_configs(calibration_fallback_configs(TrainConfig.from_profile(profile), epsilon=0.1),
                seeds=profile_seeds(profile, seeds, seed=seed), output_dir=out, evaluators=evaluators)
    runs = find_runs(out, only_finished=False).assign(notebook="06_calibration (trained here)")
    source = f"runs trained here (profile `{profile}`), because no finished runs were found" + (
        f" in `{source_dir}`" if source_dir is not None else "")
    return RunSource(runs, source, skipped, True)
