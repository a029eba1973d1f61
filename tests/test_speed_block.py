"""The README's speed block reads the benchmarks' outputs: every ratio it shows is a ratio printed there."""
from __future__ import annotations

from pathlib import Path

from jmlkit.runner.speed import loss_rows, speed_markdown, train_rows

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
