"""The README's speed block reads the benchmarks' outputs: every ratio it shows is a ratio printed there."""
from __future__ import annotations

from pathlib import Path

import pytest

from jmlkit.runner.speed import loss_rows, profile_rows, speed_markdown, train_rows

ROOT = Path(__file__).resolve().parents[1]

LOSSES = """# python benchmarks/bench_losses.py --allocator cold
device cpu, threads 2, logits (8, 21, 256, 256), rounds 9, validate_args=True, allocator cold
loss                               ms    x CE   peak MB   x CE
jml (soft)                       54.6    1.05        94   0.73
jml fused (soft)                 42.9    0.82        46   0.36
goal: eager soft-label L1 losses <= 1.3x CE: met (largest: dml (soft) 1.07x)

device cpu, threads 2, logits (8, 21, 256, 256), rounds 9, validate_args=True, allocator warm
jml (soft)                       33.9    1.58         -      -
"""
TRAIN = ("quick (256 scenes 16x16, 6 epochs, batch 16): training fit 2.37 s (647 img/s) / bare 2.29 s (670 img/s) = "
         "1.03x; evaluation fit 0.096 s / bare 0.076 s = 1.26x; whole fit 2.41 s\n  goals: ...\n")


def test_rows_are_parsed_per_allocator_and_data_set():
    rows = loss_rows(LOSSES)
    assert rows[("jml (soft)", "cold")] == {"x_ce": 1.05, "mem_x_ce": 0.73}
    assert rows[("jml (soft)", "warm")] == {"x_ce": 1.58, "mem_x_ce": None}
    assert ("goal: eager soft-label L1 losses <= 1.3x CE: met", "cold") not in rows
    assert train_rows(TRAIN) == {"quick": {"what": "256 scenes 16x16, 6 epochs, batch 16", "train": 1.03, "eval": 1.26}}


def test_the_block_shows_the_files_numbers_and_says_which_file_is_missing(tmp_path):
    (tmp_path / "losses.txt").write_text(LOSSES, encoding="utf-8")
    text = speed_markdown(tmp_path)
    assert "| jml (soft) | 1.05 | 1.58 | 0.73 |" in text and "| jml fused (soft) | 0.82 | – | 0.36 |" in text
    assert "No `train.txt`" in text
    (tmp_path / "train.txt").write_text(TRAIN, encoding="utf-8")
    assert "| quick (256 scenes 16x16, 6 epochs, batch 16) | 1.03× | 1.26× |" in speed_markdown(tmp_path)


def test_the_committed_outputs_parse():
    """The files the README quotes hold rows in the format the parser reads (a format change would empty them)."""
    folder = ROOT / "results" / "benchmarks"
    losses = loss_rows((folder / "losses.txt").read_text(encoding="utf-8"))
    assert {("jml (soft)", "cold"), ("jml (soft)", "warm"), ("jml fused (hard)", "cold")} <= set(losses)
    assert set(train_rows((folder / "train.txt").read_text(encoding="utf-8"))) == {"quick", "large"}


PROFILE = """notebook,name,seeds,epochs,before_fixed_s,before_epoch_s,before_run_s,after_fixed_s,after_epoch_s,after_run_s
02_label_smoothing,large.ce_hard,5,20,3.0,4.0,83.0,2.5,3.5,72.5
03_distillation,large.teacher,3,80,4.0,12.0,964.0,3.0,10.0,803.0
03_distillation,small.kd_kl,5,30,3.0,2.3,72.0,3.1,1.1,36.1
"""


def test_profile_rows_sum_runs_per_notebook_and_in_all(tmp_path):
    rows = profile_rows(PROFILE)
    assert list(rows) == ["02_label_smoothing", "03_distillation", "all"]
    assert rows["02_label_smoothing"] == {"runs": 5, "before_s": 415.0, "after_s": 362.5}
    assert rows["03_distillation"]["runs"] == 8
    assert rows["03_distillation"]["before_s"] == pytest.approx(3 * 964.0 + 5 * 72.0)
    assert rows["all"]["after_s"] == pytest.approx(5 * 72.5 + 3 * 803.0 + 5 * 36.1)
    (tmp_path / "profile.csv").write_text(PROFILE, encoding="utf-8")
    (tmp_path / "profile.txt").write_text("# before: 396bf37, after: abc1234; 3 configurations\nx\n", encoding="utf-8")
    text = speed_markdown(tmp_path)
    assert "(one core; before: 396bf37, after: abc1234; 3 configurations)" in text
    hours = rows["all"]["before_s"] / 3600
    assert f"| all | 13 | {hours:.2f} h |" in text
    assert "this bound is under the goal of 2 h" in text  # under an hour of compute
