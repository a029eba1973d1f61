"""DistributedDataParallel: `torchrun --nproc_per_node=2 -m jmlkit train` (gloo, 2 CPU processes) gives the
metrics of a single process within tolerance, and only rank 0 writes the run folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import pytest
import torch

pytestmark = [
    pytest.mark.xdist_group("dist"),
    pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available"),
]

ARGS = [
    "--dataset", "digits", "--dataset-kwargs",
    '{"size": 32, "digit_size": [10, 16], "num_scenes": 32, "digits_per_scene": [1, 2], "in_channels": 1, "blur": 0.0, "noise": 0.02}',
    "--train-limit", "none", "--eval-limit", "256",
    "--model", "tiny", "--model-kwargs", "norm=group", "--epochs", "2", "--batch-size", "8", "--lr", "0.005",
    "--val-split", "val", "--eval-batch-size", "8",
    "--num-threads", "1", "--no-progress", "--quiet",
]


@pytest.mark.parametrize("labels, loss", [("ls", "ce+jml")])
def test_torchrun_two_cpu_processes_match_single_process(tmp_path, labels, loss):
    from jmlkit.__main__ import main

    args = [*ARGS, "--labels", labels, "--loss", loss]
    assert main(["train", *args, "--out", str(tmp_path / "single")]) == 0

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "jmlkit", "train", *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    assert sorted(p.name for p in ddp_dir.iterdir()) == ["config.json", "history.csv", "metrics.json", "model.pt",
                                                         "recipe.json", "weights.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]  # no partial folder left by any rank
    single = json.loads((single_dir / "metrics.json").read_text())
    ddp = json.loads((ddp_dir / "metrics.json").read_text())
    for key in ("Acc", "mIoU_D", "mIoU_I", "ECE_D", "NLL", "Brier"):
        assert ddp[key] == pytest.approx(single[key], abs=2e-3), key
    assert ddp["n_pixels"] == single["n_pixels"]  # every test pixel counted once across the ranks
    h_single = pd.read_csv(single_dir / "history.csv")
    h_ddp = pd.read_csv(ddp_dir / "history.csv")
    assert h_ddp.step.tolist() == h_single.step.tolist()
    for column in ("train_loss", "val_mIoU_D", "val_ECE_D"):
        assert h_ddp[column].tolist() == pytest.approx(h_single[column].tolist(), abs=2e-3), column
