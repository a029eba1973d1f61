"""Notebook 03's recipes: the paper's JML-KD first, its baselines, the teacher's recipe, and the findings."""
from __future__ import annotations

import pandas as pd
import pytest

from jmlkit.engine import TrainConfig
from jmlkit.experiments import (distillation_ablation_configs, distillation_configs, distillation_findings,
                                jml_alone_findings, teacher_config, teacher_gap, temperature_findings)


@pytest.fixture()
def student():
    return TrainConfig.from_profile("smoke")


def test_the_papers_jml_kd_comes_first_and_matches_the_reference_weights(student, tmp_path):
    cfgs = distillation_configs(student, tmp_path / "teacher", temperature=2.0)
    assert list(cfgs) == ["kd_jml", "hard_ce", "kd_kl", "kd_jml_only"]
    paper = cfgs["kd_jml"]
    assert (paper.labels, paper.kd_form, paper.loss) == ("kd", "terms", "ce+jml")
    assert (paper.kd_temperature, paper.kd_label_weight, paper.kd_teacher_weight) == (2.0, 0.5, 0.5)
    assert cfgs["hard_ce"].labels == "hard" and cfgs["hard_ce"].loss == "ce"
    assert (cfgs["kd_kl"].kd_form, cfgs["kd_kl"].loss) == ("terms", "ce")  # CE on labels + KL to the teacher
    only = cfgs["kd_jml_only"]
    assert (only.kd_form, only.loss, only.kd_label_weight) == ("mixed", "jml", 0.0)
    # every student differs from the paper's only in its objective
    for name, cfg in cfgs.items():
        same = {k: v for k, v in cfg.to_dict().items() if not k.startswith(("kd_", "labels", "loss", "teacher"))}
        assert same == {k: v for k, v in paper.to_dict().items() if k in same}, name


def test_teacher_is_trained_with_the_papers_soft_label_recipe(student):
    t = teacher_config(student, model="small", epochs=4, seed=3)
    assert (t.labels, t.smoothing, t.epsilon, t.boundary_kernel, t.loss) == ("ls", "boundary", 0.5, 3, "ce+jml")
    assert (t.model, t.epochs, t.seed) == ("small", 4, 3)
    ce = teacher_config(student, model="small", epochs=4, seed=3, hard_ce=True)
    assert (ce.labels, ce.loss, ce.model, ce.epochs, ce.seed) == ("hard", "ce", "small", 4, 3)


def test_jml_alone_ablation_changes_one_thing_per_run(student, tmp_path):
    teacher, ce_teacher = tmp_path / "t", tmp_path / "t_ce"
    cfgs = distillation_ablation_configs(student, teacher, ce_teacher, temperature=2.0)
    only = distillation_configs(student, teacher, temperature=2.0)["kd_jml_only"]
    assert cfgs["kd_jml_only"] == only
    diff = lambda a, b: {k for k, v in a.to_dict().items() if b.to_dict()[k] != v}  # noqa: E731
    assert diff(cfgs["kd_jml_only_ce_teacher"], only) == {"teacher"}
    assert cfgs["kd_jml_only_ce_teacher"].teacher == str(ce_teacher.resolve())
    assert diff(cfgs["kd_jml_mixed"], only) == {"kd_label_weight"} and cfgs["kd_jml_mixed"].kd_label_weight == 0.5
    hard = cfgs["jml_only_hard"]
    assert (hard.labels, hard.loss, hard.teacher) == ("hard", "jml", None)
    for cfg in cfgs.values():  # the JML alone: no cross-entropy anywhere
        assert cfg.loss == "jml"


def test_teacher_gap_is_paired_over_the_students_seeds():
    runs = pd.DataFrame({"config": ["hard_ce"] * 5 + ["kd_kl"] * 5, "seed": list(range(5)) * 2,
                         "mIoU_D": [0.90, 0.92, 0.91, 0.93, 0.89] + [0.5] * 5})
    d = teacher_gap({"mIoU_D": 0.95}, runs)
    diffs = 0.95 - runs["mIoU_D"][:5]
    assert d.n == 5 and d.delta == pytest.approx(diffs.mean()) and d.verdict == "gain"
    assert d.low == pytest.approx(diffs.mean() - 2.776445 * diffs.std(ddof=1) / 5 ** 0.5, rel=1e-5)
    assert teacher_gap({"mIoU_D": 0.80}, runs).verdict == "loss"
    with pytest.raises(ValueError, match="baseline"):
        teacher_gap({"mIoU_D": 0.9}, runs, baseline="missing")


def test_temperature_and_ablation_findings_are_computed_from_the_runs():
    seeds = list(range(5))
    rows = []
    for method, base in (("kd_jml", 0.80), ("kd_kl", 0.82)):
        for t, shift in ((1.0, 0.0), (2.0, 0.03), (4.0, -0.001)):
            rows += [{"method": method, "temperature": t, "config": f"{method}_T{t:g}", "seed": k,
                      "mIoU_D": base + shift + 0.002 * k * (t == 4.0), "ECE_D": 0.05} for k in seeds]
    text = temperature_findings(pd.DataFrame(rows), regime="small")
    assert "T = 2 − T = 1: ΔmIoU_D +3.0" in text and "gain" in text and "(small regime)" in text
    assert text.count("no measurable difference") >= 2  # T = 4 and every ECE
    abl = pd.DataFrame({"config": ["hard_ce"] * 5 + ["kd_jml_only"] * 5 + ["kd_jml_mixed"] * 5 + ["jml_only_hard"] * 5,
                        "seed": seeds * 4,
                        "mIoU_D": [0.90, 0.91, 0.92, 0.90, 0.91] + [0.3, 0.35, 0.32, 0.31, 0.33]
                                  + [0.905, 0.91, 0.915, 0.905, 0.915] + [0.2, 0.25, 0.22, 0.21, 0.23]})
    words = jml_alone_findings(abl)
    assert "JML alone, teacher + label (half of each target the one-hot label) recovers" in words
    assert "JML alone, hard labels** (hard labels instead of the teacher)" in words
    one = jml_alone_findings(abl[abl["seed"] == 0])
    assert "nothing yet" in one and "recovers" not in one


def _summary(values, std=float("nan")):
    rows = [{"config": k, "n_seeds": 1, "mIoU_D_mean": m, "mIoU_D_std": std, "ECE_D_mean": e, "ECE_D_std": std}
            for k, (m, e) in values.items()]
    return pd.DataFrame(rows)


def test_findings_name_the_papers_recipe_and_say_one_seed_is_not_measurable(student):
    summary = _summary({"kd_jml": (0.6, 0.05), "hard_ce": (0.5, 0.04), "kd_kl": (0.55, 0.08), "kd_jml_only": (0.1, 0.2)})
    text = distillation_findings(summary, {"mIoU_D": 0.8, "ECE_D": 0.03}, profile="quick", seeds=[0],
                                 teacher=teacher_config(student, model="small", epochs=2), student=student, temperature=1.0)
    assert "The paper's JML-KD" in text and "not measurable" in text
    assert "JML-KD (the paper's) has a higher mIoU_D than hard labels, CE (60.0 vs 50.0)" in text
    assert "30.0 points above the hard-label student" in text
    assert "ECE_D per run: JML-KD (the paper's) 5.0%, hard labels, CE 4.0%" in text and "best" not in text
    three = distillation_findings(_summary({"kd_jml": (0.6, 0.05), "hard_ce": (0.5, 0.04), "kd_kl": (0.55, 0.08),
                                            "kd_jml_only": (0.1, 0.2)}, std=0.01),
                                  {"mIoU_D": 0.8, "ECE_D": 0.03}, profile="full", seeds=[0, 1, 2],
                                  teacher=teacher_config(student, model="small", epochs=2), student=student,
                                  temperature=1.0)
    assert "not measurable" not in three
