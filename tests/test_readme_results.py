"""The README's result tables quote the committed tables in results/quick/, not numbers from memory."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RESULTS = ROOT / "results" / "quick"

#: README row label -> (results file, key column, key, metric columns in the README's order)
ROWS = {
    "**CE+JML + boundary LS ε 0.5 (the paper's recipe)**": ("02_label_smoothing_results.csv", "jml_bls"),
    "CE, hard labels": ("02_label_smoothing_results.csv", "ce_hard"),
    "CE + uniform LS ε 0.1": ("02_label_smoothing_results.csv", "ce_ls"),
    "CE + boundary LS ε 0.5": ("02_label_smoothing_results.csv", "ce_bls"),
    "CE+SJL + boundary LS ε 0.5": ("02_label_smoothing_results.csv", "sjl_bls"),
    "CE+JML + uniform LS ε 0.1 (ours)": ("02_label_smoothing_results.csv", "jml_ls"),
    "**JML-KD, the paper's four-term loss**": ("03_distillation_results.csv", "kd_jml"),
    "hard labels, CE": ("03_distillation_results.csv", "hard_ce"),
    "KL distillation (0.5 CE + 0.5 KL)": ("03_distillation_results.csv", "kd_kl"),
    "JML alone on the teacher (ours)": ("03_distillation_results.csv", "kd_jml_only"),
}


def _row(label: str) -> list[float]:
    match = re.search(r"^\| " + re.escape(label) + r" \|(.+)\|$", README, flags=re.M)
    assert match, f"README has no table row {label!r}"
    return [float(v) for v in match.group(1).split("|")]


@pytest.mark.parametrize("label", list(ROWS))
def test_readme_rows_equal_the_committed_tables(label):
    file, config = ROWS[label]
    table = pd.read_csv(RESULTS / file).set_index("config")
    expected = [round(100 * table.at[config, f"{m}_mean"], 1) for m in ("mIoU_D", "ECE_D")]
    assert _row(label) == expected


def test_readme_semi_supervised_table_equals_the_committed_table():
    table = pd.read_csv(RESULTS / "04_semi_supervised_results.csv")
    names = {"labeled_only": "labelled only (CE)", "pseudo_hard_ce": "hard pseudo-labels + CE",
             "pseudo_soft_jml": "soft pseudo-labels + CE+JML"}
    fractions = {0.0625: "1/16", 0.25: "1/4"}
    for _, row in table.iterrows():
        label = f"{names[row['method']]} @ {fractions[row['fraction']]}"
        expected = [round(100 * row[f"{m}_mean"], 1) for m in ("mIoU_D", "mIoU_I", "mIoU_C", "ECE_D")]
        assert _row(label) == expected, label


def test_readme_quotes_the_regime_and_the_ablation_from_the_committed_files():
    metrics = json.loads((RESULTS / "02_label_smoothing_metrics.json").read_text())
    assert f"{round(100 * metrics['regime.object_share_smoothed'])} % of the object pixels" in README
    ablation = pd.read_csv(RESULTS / "02_label_smoothing_ablation.csv").set_index("config")["mIoU_D_mean"]
    for config in ("jml_bls_uniform", "jml_bls_image", "jml_bls_large", "ce_hard_large"):
        assert f"{100 * ablation[config]:.1f}" in README, config
    teacher = pd.read_csv(RESULTS / "03_distillation_results.csv").set_index("config").at["teacher", "mIoU_D_mean"]
    assert f"mIoU_D {100 * teacher:.1f}" in README
