"""Execute the training notebooks (02 label smoothing, 03 distillation, 04 semi-supervised) in the smoke profile.

Each run takes well under a minute on 2 cores; they share one xdist group so that ``pytest -n 2`` does not
start several kernels at once next to the other notebook tests.
"""
import json
from pathlib import Path

import pytest

from jmlkit.runner import check_notebook_clean

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
TRAINING_NOTEBOOKS = ["02_label_smoothing", "02b_smoothing_ablation", "02c_smoothing_strength", "03_distillation",
                      "04_semi_supervised"]

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("notebooks")]


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_notebook_is_committed_clean(stem):
    assert check_notebook_clean(NOTEBOOKS_DIR / f"{stem}.ipynb") == []


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_notebook_runs_in_smoke_profile(stem, tmp_path):
    papermill = pytest.importorskip("papermill")
    out_dir = tmp_path / stem
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / f"{stem}.ipynb"),
        str(tmp_path / f"{stem}.ipynb"),
        parameters=dict(profile="smoke", output_dir=str(out_dir)),
        kernel_name="python3",
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
    )
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics and all(isinstance(v, (int, float)) or v is None for v in metrics.values())
    assert (out_dir / "results.csv").is_file()
    assert list(out_dir.glob("*.png"))
    runs = list((out_dir / "runs").glob("*__seed*"))
    assert runs and all((r / "metrics.json").is_file() and (r / "model.pt").is_file() and (r / "config.json").is_file()
                        for r in runs)


def test_label_smoothing_notebook_runs_on_a_voc_folder(tmp_path):
    """The README's recipe for real data: the same notebook on a PASCAL VOC layout (palette PNGs, 255 = ignore)."""
    papermill = pytest.importorskip("papermill")
    from test_data import _make_voc

    root = tmp_path / "VOC2012"
    _make_voc(root, {"train": [f"2007_{i:06d}" for i in range(12)], "val": [f"2008_{i:06d}" for i in range(6)]},
              size=(24, 24))
    out_dir = tmp_path / "out"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "02_label_smoothing.ipynb"), str(tmp_path / "voc.ipynb"),
        parameters=dict(profile="smoke", output_dir=str(out_dir), dataset="voc", dataset_kwargs={"root": str(root)}),
        kernel_name="python3", cwd=str(NOTEBOOKS_DIR), progress_bar=False)
    config = json.loads(next((out_dir / "runs").glob("main.ce_hard__seed*/config.json")).read_text())
    assert config["dataset"] == "voc" and config["eval_split"] == "val"
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["mIoU_D.ce_hard"] <= 1.0
