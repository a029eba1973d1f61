"""jmlkit.io: atomic writes survive interrupts, JSON conversion, run-folder naming, completion markers."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from jmlkit import io


def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    io.atomic_write(target, '{"old": 1}')

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write(target, '{"new": 2}')
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_files_follow_the_umask(tmp_path):
    path = io.atomic_write(tmp_path / "a.txt", "x")
    plain = tmp_path / "b.txt"
    plain.write_text("x")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_jsonable_turns_tensors_numpy_and_nan_into_json():
    data = {"t": torch.tensor([0.5, float("nan")]), "s": torch.tensor(2.0), "n": np.float32(0.25), "i": np.int64(3),
            "a": np.arange(2), "x": float("inf"), 1: (1, 2)}
    assert io.jsonable(data) == {"t": [0.5, None], "s": 2.0, "n": 0.25, "i": 3, "a": [0, 1], "x": None, "1": [1, 2]}
    json.dumps(io.jsonable(data), allow_nan=False)


@given(st.text(alphabet="abcdefghij_-.0123456789", min_size=1, max_size=20), st.integers(0, 10**6))
def test_run_folder_names_round_trip(name, seed):
    assert io.parse_run_folder_name(io.run_folder_name(name, seed)) == (name, seed)


def test_run_folder_name_errors():
    with pytest.raises(ValueError, match="`seed`"):
        io.run_folder_name("ce", -1)
    with pytest.raises(TypeError, match="`name`"):
        io.run_folder_name(3, 0)
    assert io.parse_run_folder_name("ce_hard") is None


def test_done_marker(tmp_path):
    assert io.read_done(tmp_path) is None
    (tmp_path / io.DONE_FILE).write_text("{half")
    assert io.read_done(tmp_path) is None  # a broken marker is no marker
    io.mark_done(tmp_path, hash="abc", seconds=1.5)
    assert io.read_done(tmp_path) == {"hash": "abc", "seconds": 1.5}


def test_save_figure_is_reproducible(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, math.pi])
    a = io.save_figure(fig, tmp_path / "a", "f")
    b = io.save_figure(fig, tmp_path / "b", "f")
    plt.close(fig)
    assert [p.suffix for p in a] == [".png", ".svg"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()


# --------------------------------------------------------------------------- folder_problem: one check for every output
def test_folder_problem_names_what_blocks_an_output_folder(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    assert io.folder_problem(tmp_path / "new" / "deeper") is None and not (tmp_path / "new").exists()
    assert io.folder_problem(tmp_path / "a_file").endswith("a_file' is a file")
    assert "(on the way to" in io.folder_problem(tmp_path / "a_file" / "run")
    assert io.folder_problem(tmp_path / "link" / "run").endswith("link' is a broken link")
    # os.access says no (a read-only folder for a user)
    access = io.os.access
    monkeypatch.setattr(io.os, "access", lambda p, mode, **kw: False if str(p) == str(tmp_path) else access(p, mode, **kw))
    assert io.folder_problem(tmp_path / "new").endswith("is not writable (permission denied)")
    monkeypatch.setattr(io.os, "access", access)

    # os.access says yes, but writing fails (root on a read-only mount): the probe finds it, and leaves nothing
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(io.tempfile, "mkdtemp", read_only)
    assert io.folder_problem(tmp_path / "new").endswith("is not writable (Read-only file system)")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "link"]
