"""The README's set-up (the Makefile): what it checks before it installs anything."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_says_when_the_disk_is_too_full_for_the_environment(tmp_path):
    """A full disk fails before pip starts, with one line saying how much is needed and free (CI once ran out)."""
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-C", str(ROOT), f"VENV={venv}", "NEED_GB=1000000000", f"{venv}/.installed"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "needs about 1000000000 GB of free disk" in done.stderr and "GB are free" in done.stderr
    assert not venv.exists()
