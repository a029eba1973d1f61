"""Execute notebooks 05 (soft labels) and 06 (calibration) in the "smoke" profile, and check they are committed clean."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jmlkit.io import parse_run_folder_name

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
STEMS = ("05_soft_labels", "06_calibration")


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_is_committed_clean(stem):
    from jmlkit.runner import check_notebook_clean, notebook_parameters

    path = NOTEBOOKS / f"{stem}.ipynb"
    assert check_notebook_clean(path) == []
    params = notebook_parameters(path)
    assert params["profile"]["default"] == '"quick"'
    assert params["output_dir"]["default"] == f'"../runs/interactive/{stem}"'
    assert all(p["help"] for p in params.values()), "every parameter has a comment"


def _execute(stem: str, tmp_path: Path, **parameters) -> tuple[Path, dict, float]:
    papermill = pytest.importorskip("papermill")
    out_dir = tmp_path / stem
    t0 = time.perf_counter()
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{stem}.ipynb"), str(tmp_path / f"{stem}.out.ipynb"),
        parameters=dict(profile="smoke", output_dir=str(out_dir), **parameters),
        kernel_name="python3", cwd=str(NOTEBOOKS), progress_bar=False,
    )
    elapsed = time.perf_counter() - t0
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics and all(isinstance(v, (int, float)) for v in metrics.values())
    assert list(out_dir.glob("*.png")), "the notebook saved no figure"
    assert (out_dir / "results.csv").is_file()
    return out_dir, metrics, elapsed


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_05_soft_labels_smoke(tmp_path):
    out_dir, metrics, elapsed = _execute("05_soft_labels", tmp_path)
    assert {"MAE_band.jml_soft", "MAE_band.sjl_soft", "extreme_band.ce_soft"} <= set(metrics)
    assert sorted(parse_run_folder_name(p.name) for p in (out_dir / "runs").iterdir()) == [
        ("ce_soft", 0), ("jml_soft", 0), ("sjl_soft", 0)]
    assert {"predicted_vs_target.png", "band_histograms.png"} <= {p.name for p in out_dir.glob("*.png")}
    print(f"05 smoke: {elapsed:.1f} s")


@pytest.mark.slow
@pytest.mark.xdist_group("notebooks")
def test_06_calibration_smoke_trains_when_alone(tmp_path):
    # tmp_path holds no other notebook's runs, so 06 trains its small fallback set itself
    out_dir, metrics, elapsed = _execute("06_calibration", tmp_path)
    assert metrics["trained_here"] == 1 and metrics["n_runs"] == 4
    assert sorted(parse_run_folder_name(p.name) for p in (out_dir / "runs").iterdir()) == [
        ("ce_hard", 0), ("ce_ls", 0), ("jml_bls", 0), ("jml_ls", 0)]
    assert (out_dir / "reliability_diagrams.png").is_file()
    print(f"06 smoke: {elapsed:.1f} s")
