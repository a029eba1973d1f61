"""Notebook 03's recipes: the paper's JML-KD first, its baselines, the teacher's recipe, and the findings."""
from __future__ import annotations

import pandas as pd
import pytest

from jmlkit.engine import TrainConfig
from jmlkit.experiments import distillation_configs, distillation_findings, teacher_config


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
    assert "best calibrated student is hard labels, CE" in text
    three = distillation_findings(_summary({"kd_jml": (0.6, 0.05), "hard_ce": (0.5, 0.04), "kd_kl": (0.55, 0.08),
                                            "kd_jml_only": (0.1, 0.2)}, std=0.01),
                                  {"mIoU_D": 0.8, "ECE_D": 0.03}, profile="full", seeds=[0, 1, 2],
                                  teacher=teacher_config(student, model="small", epochs=2), student=student,
                                  temperature=1.0)
    assert "not measurable" not in three
