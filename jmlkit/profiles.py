"""The one table of run profiles: ``smoke``, ``quick``, ``full`` and ``results``.

Every consumer reads :data:`PROFILES`: ``python -m jmlkit train --profile P``
(:meth:`jmlkit.engine.TrainConfig.from_profile`; its ``--help`` describes each profile with
:func:`describe_training`), ``python -m jmlkit run --profile P`` (the ``profile`` parameter it passes to each
notebook) and the notebooks themselves (their recipes, seeds, sweep values, grid sizes). "quick" therefore means
the same thing everywhere.

=========  ==========================================================================  ================
profile    training runs (``train``: digit scenes of :mod:`jmlkit.data`)              ``seeds``
=========  ==========================================================================  ================
``smoke``  ``tiny`` model, 16 one-digit scenes of 16×16 px (digits of 12–16 px),       ``[seed]``
           1 epoch: seconds (tests)
``quick``  ``small`` model, 1,000 such scenes (the whole training split), 10 epochs  ``[seed]``
``full``   ``small`` model, 1,000 such scenes (the whole training split), 30 epochs    ``[0, …, 4]``
=========  ==========================================================================  ================

``results`` is ``full`` with every setting the same (so every configuration and its hash are the full profile's),
its runs read from the committed records (:data:`RECORDS_DIR`) instead of trained: the full results, drawn and
worded by the notebooks in minutes, for a class.

The result notebooks (02–04) run their comparisons in the profile's **data regimes** (``regimes``,
:func:`regime_settings`): ``small`` (the profile's own scenes, most of whose object pixels the paper's 3×3
boundary smoothing touches) in every profile, and in smoke and full also ``large`` (the paper-like regime: one
digit thickened with ``stroke=1`` filling most of the scene, 20–24 px on 24×24 in smoke and 28–32 px on 32×32,
trained for 20 epochs, in full). Notebook 02 adds, in smoke and full, ``overconfident`` (``calibration_regimes``):
the large digits with a network that over-fits them, an ImageNet-pretrained EfficientNet-Lite0 UNet fine-tuned on
250 scenes for 60 epochs, where cross-entropy on hard labels is more confident than accurate (the regime label
smoothing is meant for). :data:`REGIME_DESCRIPTIONS` says what each regime is in words.

The other entries of each profile:

* ``sweeps``: the sweep values of the result notebooks (``epsilon_boundary``, the ε of the paper's boundary
  smoothing, and ``epsilon`` of uniform smoothing in 02; the labelled ``fraction`` in 04), :func:`sweep_values`;
* ``models``, ``teacher_seeds`` and ``teacher_schedule``: the teacher and student models of 03, the teacher seeds
  of which it keeps the best and the teacher's epochs per regime, :func:`model_for`, :func:`profile_teacher_seeds`,
  :func:`teacher_epochs`;
* ``lessons``: the grid sizes of notebook 01's loss geometry, :func:`lesson_settings`;
* ``soft_labels``: the brain-slice settings of notebook 05, :func:`soft_label_settings`;
* ``ablation``: notebook 02b's ablation of the paper's recipe (the smaller ε it tries and, in smoke and quick, the
  large-object scenes: 24×24 with 18–24-px digits in smoke; in full the ``large`` regime takes their place, quick
  leaves them out), :func:`ablation_settings`.

Smoke and quick runs use one CPU thread each (``num_threads=1``): two notebooks side by side on two cores then do
not fight over threads. Why the full profile trains 30 epochs: the README's "Baselines that no longer collapse".

Example:
    >>> PROFILES["quick"]["train"]["model"], profile_seeds("full"), sweep_values("epsilon", "quick")
    ('small', [0, 1, 2, 3, 4], [0.0, 0.1, 0.3])
    >>> for name in PROFILE_NAMES:
    ...     print(f"{name}: {describe_training(name)}")
    smoke: model tiny, 16 16x16 scenes with 1 digit of 12-16 px, 1 epoch
    quick: model small, 1,000 16x16 scenes with 1 digit of 12-16 px, 10 epochs
    full: model small, 1,000 16x16 scenes with 1 digit of 12-16 px, 30 epochs
    results: model small, 1,000 16x16 scenes with 1 digit of 12-16 px, 30 epochs, read from the committed records (trains nothing)
    >>> get_profile("fast")
    Traceback (most recent call last):
    ...
    ValueError: Expected `profile` to be one of ('smoke', 'quick', 'full', 'results'), but got 'fast'.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jmlkit._checks import check_choice, check_int, check_int_list

__all__ = [
    "PROFILES",
    "PROFILE_NAMES",
    "get_profile",
    "train_options",
    "profile_seeds",
    "sweep_values",
    "model_for",
    "profile_teacher_seeds",
    "teacher_epochs",
    "lesson_settings",
    "soft_label_settings",
    "ablation_settings",
    "regime_settings",
    "REGIME_DESCRIPTIONS",
    "describe_training",
]

_DIGITS_16 = {"size": 16, "digit_size": [12, 16], "digits_per_scene": [1, 1], "in_channels": 3}
# notebook 02b's large-object ablation: the same one-digit scenes with digits larger relative to the 3x3 window
_LARGE_24 = {"size": 24, "digit_size": [18, 24], "digits_per_scene": [1, 1], "in_channels": 3}
# the paper-like regime: one thick digit filling most of the canvas; about 23 % of its pixels lie in the 3x3 band
_THICK_24 = {"size": 24, "digit_size": [20, 24], "digits_per_scene": [1, 1], "stroke": 1, "in_channels": 3}
_THICK_32 = {"size": 32, "digit_size": [28, 32], "digits_per_scene": [1, 1], "stroke": 1, "in_channels": 3}
# notebook 02's calibration regime: a large ImageNet-pretrained network fine-tuned on few paper-like scenes for long
# (the paper's optimiser setting: pretrained encoder, 10x learning rate on the fresh decoder). Probed before it
# was chosen (one seed each, cross-entropy on hard labels, test scenes): 250 scenes, 60 epochs: 71.2 / 77.4 %
# mIoU_D, confidence above accuracy by 4.5 / 2.9 points; 400 scenes: higher mIoU_D (82.6 % on validation at
# epoch 50) but only 2.5 points of over-confidence; a ResNet-18 UNet from random weights, 250 scenes: 85.2 %,
# 1.5 points. Smoke keeps the model and the data and trains one epoch on 16 scenes (the code path, seconds).
_OVERCONFIDENT = {"dataset_kwargs": _THICK_32, "model": "effnet-teacher", "encoder_weights": "imagenet",
                  "decoder_lr_mult": 10.0, "lr": 1e-3, "train_limit": 250, "epochs": 60}

#: What each data regime is, in words (the notebooks and the README print it beside every result).
REGIME_DESCRIPTIONS: dict[str, str] = {
    "large": "paper-like: one thick digit per scene, large against the 3x3 smoothing window "
             "(about a quarter or less of its pixels in the boundary band)",
    "small": "small objects: thin digits of 12-16 px, most of each digit's pixels in the 3x3 boundary band",
    "overconfident": "over-confident network: the paper-like large digits, 250 training scenes, a UNet on the "
                     "ImageNet-pretrained EfficientNet-Lite0 encoder (about 4 M parameters) trained 60 epochs; "
                     "cross-entropy on hard labels is more confident than accurate here",
}

#: The profiles. ``train``: :class:`~jmlkit.engine.TrainConfig` options of every training run;
#: ``seeds``: the default seeds (``None``: the notebook's ``seed`` alone); ``sweeps``: default values
#: of each sweep; ``models``: teacher and student of the distillation notebook; ``teacher_seeds``: the teacher
#: seeds of which notebook 03 keeps the best on the validation scenes (``None``: the notebook's ``seed``); ``lessons``: grid
#: sizes of notebook 01; ``soft_labels``: image size and schedule of notebook 05's brain slices.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "train": dict(dataset="digits", dataset_kwargs=_DIGITS_16, model="tiny", train_limit=16, eval_limit=8,
                      epochs=1, batch_size=8, lr=3e-3, val_split=None, eval_batch_size=8, num_threads=1),
        "seeds": None,
        "sweeps": {"epsilon": [0.0, 0.2], "fraction": [0.25, 0.5], "epsilon_boundary": [0.0, 0.5],
                   "temperature": [1.0, 2.0]},
        "models": {"teacher": "tiny", "student": "tiny"},
        "teacher_seeds": None,
        "lessons": dict(grid_1d=51, grid_2d=21, arrow_grid=7, race_steps=30, triples=300, timing_repeats=1),
        "soft_labels": dict(size=32, model="tiny", epochs=1, batch_size=8, lr=1e-2, train_limit=16, eval_limit=8,
                            num_threads=1),
        "ablation": dict(epsilon=0.1, large=_LARGE_24, shares_scenes=16),
        "regimes": {"small": {}, "large": {"dataset_kwargs": _THICK_24}},
        "calibration_regimes": {"overconfident": {**_OVERCONFIDENT, "train_limit": 16, "epochs": 1}},
    },
    # quick: the class's profile. Chosen by measurement (CE on hard labels, seed 0, one thread; README "The quick
    # profile"): 256 scenes x 20 epochs reached 44.8 % mIoU_D with classes at IoU 0; the whole training split (1,000
    # scenes) x 10 epochs at lr 3e-3 reaches 88.6 % (seed 1: 88.2 %), every class above 72 %, for about twice the
    # steps. The "student" preset (0.1 M parameters) does not learn in this budget (49.7 %), so students are "small".
    # The teacher is the full profile's "teacher" preset (4x the student) trained twice as long (20 epochs): seed 0
    # reached 90.7 % mIoU_D against 88.7 % for the hard-label student, where the "small" network at 20 epochs stayed
    # below it (88.1 %) and at 30 epochs within a point (89.4 %); the large-object ablation pair (32x32 scenes, 4x
    # the pixels) is left to the full profile's large regime, and 04 runs the full profile's one fraction, 1/8.
    "quick": {
        "train": dict(dataset="digits", dataset_kwargs=_DIGITS_16, model="small", train_limit=None, eval_limit=128,
                      epochs=10, batch_size=16, lr=3e-3, val_split=None, num_threads=1),
        "seeds": None,
        "sweeps": {"epsilon": [0.0, 0.1, 0.3], "fraction": [1 / 8], "epsilon_boundary": [0.0, 0.1, 0.5],
                   "temperature": [1.0]},
        "models": {"teacher": "teacher", "student": "small"},
        "teacher_seeds": None,
        "lessons": dict(grid_1d=201, grid_2d=61, arrow_grid=11, race_steps=400, triples=10_000, timing_repeats=5),
        "soft_labels": dict(size=48, model="tiny", epochs=30, batch_size=8, lr=1e-2, train_limit=None, eval_limit=None,
                            num_threads=1),
        "ablation": dict(epsilon=0.1, large=None, shares_scenes=256),
        "regimes": {"small": {}},
    },
    "full": {
        "train": dict(dataset="digits", dataset_kwargs=_DIGITS_16, model="small", train_limit=None, eval_limit=None,
                      epochs=30, batch_size=16, lr=2e-3, val_split=None, eval_batch_size=128, num_threads=1),
        "seeds": [0, 1, 2, 3, 4],
        "sweeps": {"epsilon": [0.0, 0.1, 0.3], "fraction": [1 / 8], "epsilon_boundary": [0.0, 0.1, 0.5],
                   "temperature": [1.0, 2.0, 4.0]},
        # the teacher (1.9 M parameters, width 32) is 4x the student ("small", 0.5 M, width 16; the 0.1-M-parameter
        # "student" preset is unstable here: 68-93 % mIoU_D); a teacher of the student's own size trained with the
        # paper's boundary smoothing (eps 0.5) scored below the hard-label student in both regimes
        "models": {"teacher": "teacher", "student": "small"},
        "teacher_seeds": [0, 1, 2],
        # the teacher's epochs, as a multiple of its student's, per regime (default 2): in the large regime the
        # student saturates near 94 % mIoU_D and a teacher of 40 epochs (2x) stayed within a point of it (94.1-94.8 %
        # on test, three seeds); 80 epochs (4x) reached 95.2 % (seed 1), clearly above the student
        "teacher_schedule": {"large": 4},
        "lessons": dict(grid_1d=1001, grid_2d=121, arrow_grid=15, race_steps=2000, triples=200_000, timing_repeats=10),
        "soft_labels": dict(size=48, model="small", epochs=30, batch_size=8, lr=3e-3, train_limit=None, eval_limit=None,
                            num_threads=1),
        "ablation": dict(epsilon=0.1, large=None, shares_scenes=1000, configs=["jml_bls", "jml_bls_eps", "ce_hard"]),
        "regimes": {"large": {"dataset_kwargs": _THICK_32, "epochs": 20}, "small": {}},
        "calibration_regimes": {"overconfident": _OVERCONFIDENT},
    },
}

#: Where the ``results`` profile reads its runs: the compact records of the committed full-profile runs
#: (:mod:`jmlkit.runner.records`; written by ``jmlkit run --profile full --results results/full``).
RECORDS_DIR = Path(__file__).resolve().parents[1] / "results" / "full" / "records"


def _results_profile() -> dict[str, Any]:
    """The ``results`` profile: the full profile's every setting (so every configuration and its hash are the full
    profile's), with ``replay``: runs are read from :data:`RECORDS_DIR`, none is trained."""
    profile = copy.deepcopy(PROFILES["full"])
    profile["train"]["replay"] = str(RECORDS_DIR)
    profile["soft_labels"]["replay"] = str(RECORDS_DIR)
    for regimes in ("regimes", "calibration_regimes"):
        for overrides in profile.get(regimes, {}).values():
            overrides.pop("replay", None)
    return profile


PROFILES["results"] = _results_profile()

#: Profile names, lightest first; ``results`` trains nothing (it replays ``full``).
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(profile: str) -> dict[str, Any]:
    """A deep copy of one profile's table (so callers may change it freely)."""
    check_choice("profile", profile, PROFILE_NAMES)
    return copy.deepcopy(PROFILES[profile])


def describe_training(profile: str) -> str:
    """The training runs of ``profile`` in words, read from :data:`PROFILES` (``python -m jmlkit train --help``
    prints it): model, number and kind of training scenes (``train_limit``, else the whole training split), epochs.

    >>> describe_training("quick")
    'model small, 1,000 16x16 scenes with 1 digit of 12-16 px, 10 epochs'
    """
    train = get_profile(profile)["train"]
    epochs = train["epochs"]
    if train["dataset"] == "digits":
        from jmlkit.data.digits import DigitScenes

        options = DigitScenes.check_options(train.get("train_split", "train"), **train.get("dataset_kwargs", {}))
        limit = train.get("train_limit")
        n = options["num_scenes"] if limit is None else min(limit, options["num_scenes"])
        (few, many), (small, large) = options["digits_per_scene"], options["digit_size"]
        digits = f"{few} digit" if few == many == 1 else f"{few} digits" if few == many else f"{few}-{many} digits"
        sizes = f"{small} px" if small == large else f"{small}-{large} px"
        data = f"{n:,} {options['size']}x{options['size']} scenes with {digits} of {sizes}"
    else:
        data = f"data set {train['dataset']}"
    replay = ", read from the committed records (trains nothing)" if train.get("replay") else ""
    return f"model {train['model']}, {data}, {epochs} epoch{'' if epochs == 1 else 's'}{replay}"


def train_options(profile: str) -> dict[str, Any]:
    """The :class:`~jmlkit.engine.TrainConfig` options of a profile (a copy)."""
    return get_profile(profile)["train"]


def profile_seeds(profile: str, seeds: Sequence[int] | int | None = None, *, seed: int = 0) -> list[int]:
    """Seeds to run: ``seeds`` when given, else the profile's (``[0, 1, 2, 3, 4]`` in full, ``[seed]`` otherwise).

    >>> profile_seeds("quick", seed=3), profile_seeds("full"), profile_seeds("full", [5])
    ([3], [0, 1, 2, 3, 4], [5])
    """
    return _seed_list(profile, "seeds", seeds, seed)


def _seed_list(profile: str, key: str, seeds: Sequence[int] | int | None, seed: int) -> list[int]:
    """``seeds`` (one int or a list) when given, else the profile's ``key`` list, else ``[seed]``; checked."""
    default = get_profile(profile)[key]
    if seeds is None:
        seeds = [check_int("seed", seed, low=0)] if default is None else default
    elif not isinstance(seeds, bool) and isinstance(seeds, int):
        seeds = [seeds]
    return check_int_list(key, seeds, low=0, unique=True)


def sweep_values(name: str, profile: str, values: Sequence[float] | None = None) -> list[float]:
    """``values`` when given, else the profile's default values of sweep ``name`` (``"epsilon"``, ``"fraction"``).

    >>> sweep_values("epsilon", "full", [0.2])
    [0.2]
    """
    sweeps = get_profile(profile)["sweeps"]
    check_choice("name", name, tuple(sweeps))
    out = list(sweeps[name] if values is None else values)
    if not out:
        raise ValueError(f"Expected a non-empty list of {name} values, but got {values!r}.")
    return out


def model_for(role: str, profile: str, model: str | None = None) -> str:
    """``model`` when given, else the profile's ``"teacher"`` or ``"student"`` model of notebook 03.

    >>> model_for("teacher", "quick"), model_for("student", "full"), model_for("student", "quick", "tiny")
    ('teacher', 'small', 'tiny')
    """
    models = get_profile(profile)["models"]
    check_choice("role", role, tuple(models))
    return models[role] if model is None else model


def teacher_epochs(profile: str, regime: str, student_epochs: int, epochs: int | None = None) -> int:
    """The epochs of notebook 03's teacher in a data regime: ``epochs`` when given, else the profile's multiple of
    the student's (``teacher_schedule``, default 2).

    >>> teacher_epochs("full", "large", 20), teacher_epochs("full", "small", 30), teacher_epochs("full", "large", 20, 5)
    (80, 60, 5)
    """
    if epochs is not None:
        return check_int("epochs", epochs, low=1)
    factor = get_profile(profile).get("teacher_schedule", {}).get(regime, 2)
    return int(round(factor * check_int("student_epochs", student_epochs, low=1)))


def profile_teacher_seeds(profile: str, seeds: Sequence[int] | int | None = None, *, seed: int = 0) -> list[int]:
    """Seeds of notebook 03's teacher: ``seeds`` when given, else the profile's (``[0, 1, 2]`` in full: the paper's
    reference code advises training the teacher at least three times and keeping the best; ``[seed]`` otherwise).

    >>> profile_teacher_seeds("quick", seed=2), profile_teacher_seeds("full"), profile_teacher_seeds("full", 4)
    ([2], [0, 1, 2], [4])
    """
    return _seed_list(profile, "teacher_seeds", seeds, seed)


def lesson_settings(profile: str) -> dict[str, int]:
    """Grid sizes, race length and number of random triples of notebook 01 in a profile.

    >>> lesson_settings("smoke")["race_steps"]
    30
    """
    return get_profile(profile)["lessons"]


def soft_label_settings(profile: str) -> dict[str, Any]:
    """Image size, model and schedule of notebook 05's brain-slice runs in a profile."""
    return get_profile(profile)["soft_labels"]


def ablation_settings(profile: str) -> dict[str, Any]:
    """Notebook 02b's ablation of the paper's recipe in a profile: ``epsilon`` (the smaller ε it tries),
    ``large`` (``dataset_kwargs`` of the large-object digit scenes: one digit per scene, larger relative to
    the 3×3 window than the profile's own; ``None`` in quick and full: in full the ``large`` regime takes its
    place, quick leaves the pair out (its 32×32 scenes cost 4× the pixels of the class's budget)),
    ``shares_scenes`` (training scenes over which the notebook reports the smoothing regime) and, in full,
    ``configs`` (the ablation runs to train; all when absent).

    >>> s = ablation_settings("smoke")
    >>> s["epsilon"], s["large"]["size"], s["large"]["digit_size"], ablation_settings("quick")["large"]
    (0.1, 24, [18, 24], None)
    """
    return get_profile(profile)["ablation"]


def regime_settings(profile: str, regimes: Sequence[str] | None = None, *,
                    calibration: bool = False) -> dict[str, dict[str, Any]]:
    """The data regimes the result notebooks run their comparisons in: ``{name: TrainConfig options}``.

    ``"small"`` is the profile's own scenes (no override); ``"large"`` the paper-like scenes, objects large
    against the 3×3 smoothing window (:data:`REGIME_DESCRIPTIONS`): its ``dataset_kwargs`` go on top of the
    profile's, and in the full profile it trains for 20 epochs instead of 30 (a 32×32 scene has 4× the pixels
    of a 16×16 one). ``"overconfident"`` (smoke and full; notebook 02's calibration regime, added to the default
    list only with ``calibration=True``) also changes the model and the schedule: the large digits, 250 training
    scenes, a UNet on the ImageNet-pretrained EfficientNet-Lite0 encoder, 60 epochs. The first regime is the
    notebook's main one (figures of single runs use it). ``regimes`` picks and orders a subset of the profile's.

    >>> list(regime_settings("full")), list(regime_settings("quick"))
    (['large', 'small'], ['small'])
    >>> list(regime_settings("full", calibration=True)), list(regime_settings("quick", calibration=True))
    (['large', 'small', 'overconfident'], ['small'])
    >>> regime_settings("full", ["small"])
    {'small': {}}
    >>> regime_settings("full")["large"]["dataset_kwargs"]["stroke"]
    1
    """
    settings = get_profile(profile)
    extra = settings.get("calibration_regimes", {})
    if regimes is None:
        return {**settings["regimes"], **(extra if calibration else {})}
    table = {**settings["regimes"], **extra}
    if isinstance(regimes, str):
        regimes = [regimes]
    names = list(regimes)
    if not names:
        raise ValueError(f"Expected `regimes` to name at least one of {list(table)}, but got {regimes!r}.")
    for name in names:
        check_choice("regimes", name, tuple(table))
    return {name: table[name] for name in dict.fromkeys(names)}
