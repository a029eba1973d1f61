"""The README's Reading (jmlkit.experiments.reading): every number and direction follows the result files it reads;
a question whose runs are missing is left out rather than stated."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jmlkit.experiments import paired_difference
from jmlkit.experiments.reading import (ablation_reading, calibration_reading, confidence_gap, distillation_reading,
                                        reading_markdown, smoothing_reading, soft_label_reading, ssl_reading,
                                        strength_reading)
from jmlkit.experiments.stats import format_difference


def _runs(values: dict[str, list[float]], **columns) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for config, means in values.items():
        for seed, m in enumerate(means):
            rows.append({"config": config, "seed": seed, "mIoU_D": m, "ECE_D": 0.02 + 0.01 * rng.random(),
                         "Confidence": m + 0.03, "Acc": m, **columns})
    return pd.DataFrame(rows)


def test_smoothing_reading_states_what_the_runs_give():
    main = _runs({"jml_bls": [0.90, 0.905, 0.91, 0.90, 0.902], "ce_hard": [0.94, 0.938, 0.941, 0.939, 0.94],
                  "sjl_bls": [0.93, 0.94, 0.92, 0.95, 0.93]}, table="main", regime="large")
    bullets = smoothing_reading(main)
    assert len(bullets) == 1 and bullets[0].startswith("**02, large regime**")
    d = paired_difference(main, "jml_bls", "ce_hard", "mIoU_D")
    assert f"ΔmIoU_D {format_difference(d)}" in bullets[0] and format_difference(d).endswith(": loss")
    assert "confidence − accuracy +3.0 [3.0, 3.0] points (5 seeds): over-confident" in bullets[0]
    assert "CE+SJL + boundary LS" in bullets[0]
    # a regime without CE on hard labels says nothing about it
    assert smoothing_reading(main[main["config"] != "ce_hard"]) == []


def test_ablation_and_strength_readings_compare_with_the_recipe(tmp_path):
    """02b's and 02c's files hold their own runs as their main table: each change (each ε) against the recipe (ε 0.5)."""
    sweep = pd.concat([_runs({"jml_bls_e0.5": [0.90, 0.905, 0.91, 0.90, 0.902]}, regime="large", epsilon=0.5),
                       _runs({"jml_bls_e0": [0.93, 0.94, 0.935, 0.936, 0.94]}, regime="large", epsilon=0.0)]
                      ).assign(table="main")
    text = strength_reading(sweep)
    d = paired_difference(sweep, "jml_bls_e0", "jml_bls_e0.5", "mIoU_D")
    assert len(text) == 1 and text[0].startswith("**02c, ε sweep of the recipe, large regime**")
    assert "ε 0: mIoU_D 93.6 %" in text[0] and f"ΔmIoU_D {format_difference(d)}" in text[0]
    assert strength_reading(sweep[sweep["epsilon"] == 0.0]) == []  # no ε 0.5 to compare with: nothing said
    ablation = _runs({"jml_bls": [0.60, 0.70, 0.65], "jml_bls_eps": [0.88, 0.87, 0.89]}, table="main", regime="small")
    text = ablation_reading(ablation)
    d = paired_difference(ablation, "jml_bls_eps", "jml_bls", "mIoU_D")
    assert text[0].startswith("**02b, ablation, small regime**") and f"ΔmIoU_D {format_difference(d)}" in text[0]
    assert ablation_reading(ablation[ablation["config"] != "jml_bls"]) == []
    ablation.to_csv(tmp_path / "02b_smoothing_ablation.csv", index=False)
    sweep.to_csv(tmp_path / "02c_smoothing_strength.csv", index=False)
    assert [line[:9] for line in reading_markdown(tmp_path).splitlines()] == ["* **02b, ", "* **02c, "]


def test_confidence_gap_verdict_follows_its_interval():
    calibrated = pd.DataFrame({"config": "a", "seed": range(4), "Confidence": [0.90, 0.92, 0.91, 0.89],
                               "Acc": [0.91, 0.91, 0.90, 0.90]})
    assert confidence_gap(calibrated, "a").endswith("no measurable over- or under-confidence")
    one = calibrated.iloc[:1]
    assert confidence_gap(one, "a") == "confidence − accuracy −1.0 points (one seed: not measurable)"


def test_distillation_reading_pairs_the_teacher_over_the_students_seeds():
    students = _runs({"kd_jml": [0.93, 0.94, 0.935], "hard_ce": [0.93, 0.94, 0.936], "kd_kl": [0.92, 0.94, 0.93]},
                     table="main", regime="large")
    teacher = pd.DataFrame({"table": "teacher", "regime": "large", "config": "teacher", "seed": [0, 1, 2],
                            "kept": [False, True, False], "mIoU_D": [0.94, 0.952, 0.945]})
    text = distillation_reading(pd.concat([students, teacher], ignore_index=True))[0]
    assert text.startswith("**03, large regime**: the kept teacher 95.2 % mIoU_D")
    pair = pd.concat([students[students.config == "hard_ce"],
                      students[students.config == "hard_ce"].assign(config="teacher", mIoU_D=0.952)])
    assert format_difference(paired_difference(pair, "teacher", "hard_ce", "mIoU_D")) in text
    assert "The JML alone" not in text  # not run here: not stated


def test_ssl_soft_and_calibration_reading_and_missing_files(tmp_path):
    methods = ("labeled_only", "pseudo_hard_ce", "pseudo_soft_ce", "pseudo_hard_jml", "pseudo_soft_jml")
    ssl = pd.DataFrame([{"method": m, "fraction": 0.125, "seed": s, "mIoU_D": 0.6 + 0.01 * i + 0.002 * s,
                         "ECE_D": 0.02 + 0.01 * ("jml" in m)} for i, m in enumerate(methods) for s in range(3)])
    text = ssl_reading(ssl)[0]
    assert text.startswith("**04, 0.125 of the labels**") and "ECE_D, CE+JML against CE: hard +1.0" in text
    assert ssl_reading(ssl[ssl.method != "labeled_only"]) == []
    soft = _runs({"jml_soft": [0.8, 0.81, 0.82], "sjl_soft": [0.7, 0.72, 0.71]}).assign(MAE_band=[0.06] * 3 + [0.26] * 3)
    assert ": gain" in soft_label_reading(soft)[0].split("error on")[1]  # a lower MAE_band is a gain
    assert calibration_reading({"n_runs": 5}) == []
    assert "ECE_D from 0.5 % to 9.0 %" in calibration_reading({"n_runs": 5, "ECE_D_best": 0.005, "ECE_D_worst": 0.09})[0]
    assert reading_markdown(tmp_path) == ""  # no files, nothing said
    ssl.assign(table="main", regime="small").to_csv(tmp_path / "04_semi_supervised.csv", index=False)
    (tmp_path / "06_calibration.metrics.json").write_text(json.dumps({"n_runs": 3, "ECE_D_best": 0.01,
                                                                       "ECE_D_worst": 0.02}))
    lines = reading_markdown(tmp_path).splitlines()
    assert [line[:12] for line in lines] == ["* **04, 0.12", "* **06, cali"]
    with pytest.raises(TypeError, match="`results_dir`"):
        reading_markdown(3)
