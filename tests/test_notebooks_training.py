"""Execute the training notebooks (02 label smoothing, 03 distillation, 04 semi-supervised) in the smoke profile.

Each run takes well under a minute on 2 cores; they share one xdist group so that ``pytest -n 2`` does not
start several kernels at once next to the other notebook tests.
"""
import json
from pathlib import Path

import pytest

from jmlkit.runner import check_notebook_clean

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
TRAINING_NOTEBOOKS = ["02_label_smoothing", "03_distillation", "04_semi_supervised"]

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("notebooks")]


def _available(stem):
    return (NOTEBOOKS_DIR / f"{stem}.ipynb").is_file()


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_notebook_is_committed_clean(stem):
    if not _available(stem):
        pytest.skip(f"{stem}.ipynb not written yet")
    assert check_notebook_clean(NOTEBOOKS_DIR / f"{stem}.ipynb") == []


@pytest.mark.parametrize("stem", TRAINING_NOTEBOOKS)
def test_notebook_runs_in_smoke_profile(stem, tmp_path):
    if not _available(stem):
        pytest.skip(f"{stem}.ipynb not written yet")
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
