"""Folders that are not jmlkit's are never deleted or written through (issue 19).

* ``train --out D --overwrite`` (and the commit of every run) replaces only an empty folder or a complete run
  folder holding nothing but the run files: hidden entries (``.git``, ``.env``) count as foreign.
* Two ``train`` runs finishing into the same new ``--out``: the second is one line, exit 2, no advice to
  overwrite; the winner's run is left as it is and the loser's finished run is kept next to it.
* ``jmlkit run``: a run folder that is a symbolic link or holds files without ``run.json``, and a ``summary.csv``
  or ``metrics.csv`` the runner did not write (without ``--force``), are refused before anything runs; figures
  are copied atomically, replacing a link in the figures folder, never writing through it; :func:`recover`
  deletes only hidden folders the runner made.
* ``jmlkit student OUT`` never replaces an edited copy (or a link) without ``--force``.

CLI cases run ``python -m jmlkit`` in a subprocess and assert the exit code, the one error line naming the
option or path, no traceback, and that every file, folder and link under the test's folder (hidden ones and
link targets outside the output folder included) is byte-identical after.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fake_notebooks
import pytest

from jmlkit.engine.runfolder import RUN_FILES, FolderTaken, replace_folder, replace_problem
from jmlkit.io import DONE_FILE, atomic_copy, read_done
from jmlkit.runner.outdir import previous_path, recover, run_dir_problem, set_aside

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX links and permissions")

SMOKE = ["--profile", "smoke", "--no-progress", "--quiet"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "JMLKIT_HEADLESS": "1"}
GUARD_S = 300  # against hangs only
BODY = """\
import json, os
with open(os.path.join(output_dir, "fig.png"), "wb") as fh:
    fh.write(b"\\x89PNG" + str(seed).encode())
with open(os.path.join(output_dir, "metrics.json"), "w") as fh:
    json.dump({"score": seed + 0.5}, fh)
"""


def snapshot(root: Path) -> dict[str, object]:
    """Every entry below ``root``, links not followed: file bytes, link targets, folders (hidden ones included)."""
    state: dict[str, object] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = path.read_bytes()
    return state


def jmlkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jmlkit", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=GUARD_S)


def error_line(stderr: str) -> str:
    """The one error line of ``stderr``; argparse's usage block (``usage:`` and its indented lines) before it is
    allowed, nothing else."""
    lines = stderr.strip().splitlines()
    if lines and lines[0].startswith("usage:"):
        lines = lines[1:]
        while lines and lines[0].startswith(" "):
            lines = lines[1:]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def make_run(folder: Path, seed: int = 0) -> Path:
    """A complete training run folder (without training): the run files and the marker."""
    folder.mkdir(parents=True)
    for name in RUN_FILES[:-1]:
        (folder / name).write_text(f"{name} of seed {seed}")
    (folder / DONE_FILE).write_text(json.dumps({"hash": f"h{seed}", "seed": seed}))
    return folder


# ============================================================================ train --out / --overwrite
def _hidden_only(base: Path) -> Path:
    (base / "hid" / ".git").mkdir(parents=True)
    (base / "hid" / ".git" / "config").write_text("[core]\n")
    (base / "hid" / ".env").write_text("secret\n")
    return base / "hid"


def _run_and_hidden(base: Path) -> Path:
    (make_run(base / "run") / ".notes").write_text("mine")
    return base / "run"


def _no_marker(base: Path) -> Path:
    (base / "half").mkdir()
    (base / "half" / "metrics.json").write_text("{}")
    return base / "half"


def _folder_under_a_run_name(base: Path) -> Path:
    make_run(base / "run")
    (base / "run" / "model.pt").unlink()
    (base / "run" / "model.pt").mkdir()
    (base / "run" / "model.pt" / "mine.txt").write_text("mine")
    return base / "run"


def _link_to_a_foreign_folder(base: Path) -> Path:
    (base / "elsewhere").mkdir()
    (base / "elsewhere" / ".bashrc").write_text("alias x=y\n")
    (base / "out").symlink_to(base / "elsewhere")
    return base / "out"


TRAIN_CASES = {  # id: (make the folder, what the error line names besides the folder)
    "only hidden entries": (_hidden_only, ["'.env'", "'.git'"]),
    "a run plus a hidden file": (_run_and_hidden, ["'.notes'"]),
    "run files without the marker": (_no_marker, [DONE_FILE]),
    "a folder under a run file's name": (_folder_under_a_run_name, ["'model.pt'"]),
    "a link to a folder with a dot-file": (_link_to_a_foreign_folder, ["'.bashrc'"]),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_overwrite_never_deletes_a_folder_that_is_not_a_run(case, tmp_path):
    make, names = TRAIN_CASES[case]
    out = make(tmp_path)
    before = snapshot(tmp_path)
    proc = jmlkit("train", *SMOKE, "--out", str(out), "--overwrite")
    line = error_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert line.startswith("python -m jmlkit train: error: Expected `--out`") and str(out) in line, line
    assert all(name in line for name in names) and "--overwrite" not in line.split("but")[-1], line
    assert snapshot(tmp_path) == before


def test_overwrite_of_the_current_folder_holding_only_dot_files_is_refused(tmp_path):
    home = tmp_path / "home"
    (home / ".git").mkdir(parents=True)
    (home / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (home / ".bashrc").write_text("export A=1\n")
    before = snapshot(tmp_path)
    proc = jmlkit("train", *SMOKE, "--out", ".", "--overwrite", cwd=home)
    line = error_line(proc.stderr)
    assert proc.returncode == 2 and str(home) in line and "'.bashrc'" in line and "'.git'" in line, proc.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content", ["empty", "run", "hidden", "no marker", "file", "missing", "link to run",
                                     "broken link"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_replace_folder_moves_in_only_over_what_it_may_replace(tmp_path, content, overwrite):
    """replace_folder follows replace_problem; refused: both folders untouched; done: a link, never its target."""
    dst = tmp_path / "dst"
    if content == "empty":
        dst.mkdir()
    elif content in ("run", "hidden"):
        make_run(dst)
        if content == "hidden":
            (dst / ".git").mkdir()
    elif content == "no marker":
        make_run(dst)
        (dst / DONE_FILE).unlink()
    elif content == "file":
        dst.write_text("a file")
    elif content == "link to run":
        dst.symlink_to(make_run(tmp_path / "target"))
    elif content == "broken link":
        dst.symlink_to(tmp_path / "nothing")
    src = make_run(tmp_path / ".src", seed=7)
    allowed = content in ("empty", "missing", "broken link") or (overwrite and content in ("run", "link to run"))
    assert (replace_problem(dst, overwrite=overwrite) is None) == allowed
    before = snapshot(tmp_path)
    if not allowed:
        with pytest.raises(FolderTaken, match=str(dst)):
            replace_folder(src, dst, overwrite=overwrite)
        assert snapshot(tmp_path) == before
        return
    replace_folder(src, dst, overwrite=overwrite)
    assert not dst.is_symlink() and read_done(dst)["seed"] == 7 and not src.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["dst"] + (["target"] if content == "link to run"
                                                                           else []))
    if content == "link to run":
        assert snapshot(tmp_path / "target") == {k[len("target/"):]: v for k, v in before.items()
                                                 if k.startswith("target/")}


# ============================================================================ two runs into one new --out
LOSER = """\
import shutil, sys
from jmlkit.engine import runfolder
commit = runfolder.RunFolder.commit
def first_the_other(self):  # another process finishes its run into `out` while this one trains
    shutil.copytree(sys.argv[1], self.out)
    return commit(self)
runfolder.RunFolder.commit = first_the_other
from jmlkit.__main__ import main
sys.exit(main(["train", *sys.argv[3:], "--out", sys.argv[2]]))
"""


def test_a_run_renamed_into_out_between_the_check_and_the_rename_is_folder_taken(tmp_path, monkeypatch):
    """The narrowest race (seen once under load): out is new when checked, another process renames its finished run
    into it, then this process's rename fails. That is FolderTaken (the command line's one line), and both runs
    stay whole."""
    src, dst = tmp_path / ".out.partial", tmp_path / "out"
    src.mkdir()
    (src / DONE_FILE).write_text(json.dumps({"hash": "mine"}))
    real_rename = os.rename

    def other_process_first(a, b):
        if Path(b) == dst and not dst.exists():
            dst.mkdir()
            (dst / DONE_FILE).write_text(json.dumps({"hash": "theirs"}))
        return real_rename(a, b)

    monkeypatch.setattr(os, "rename", other_process_first)
    with pytest.raises(FolderTaken):
        replace_folder(src, dst)
    assert read_done(dst) == {"hash": "theirs"} and read_done(src) == {"hash": "mine"}


def test_the_second_run_to_finish_into_a_new_out_is_one_line_and_kept_aside(tmp_path):
    winner = make_run(tmp_path / "winner_src", seed=3)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", LOSER, str(winner), str(out), *SMOKE, "--seed", "1"], env=ENV,
                          capture_output=True, text=True, timeout=GUARD_S)
    line = error_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert "another process finished a run there first" in line and str(out) in line
    assert "overwrite" not in line.lower(), line  # replacing the winner's run is no advice to give
    assert snapshot(out) == snapshot(winner)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.kept-")]
    assert len(kept) == 1 and f"kept in {str(kept[0])!r}" in line
    assert read_done(kept[0])["seed"] == 1 and json.loads((kept[0] / "config.json").read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["winner_src", "out", kept[0].name])


@pytest.mark.slow
def test_two_real_runs_racing_into_one_new_out_lose_nothing(tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-m", "jmlkit", "train", *SMOKE, "--seed", str(seed), "--out", str(out)],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    results = [(p.wait(timeout=GUARD_S), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results)[0] == 0 and {rc for rc, _ in results} <= {0, 2}, results
    seeds = {read_done(out)["seed"]}
    for rc, err in results:
        if rc == 2:  # lost the race: at preflight (out holds a run) or at the end (kept aside)
            line = error_line(err)
            assert str(out) in line and "Traceback" not in err
            kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.kept-")]
            if "kept in" in line:
                assert len(kept) == 1 and "overwrite" not in line.lower()
                seeds.add(read_done(kept[0])["seed"])
            else:
                assert not kept and "holds a finished run" in line
    assert len(seeds) == len([1 for rc, err in results if rc == 0 or "kept in" in err])  # each finished run is kept


# ============================================================================ jmlkit run
@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """A finished batch of one tiny notebook: nbs/, out/ (01_a, summary.csv, metrics.csv) and figs/."""
    base = tmp_path_factory.mktemp("safety") / "ref"
    fake_notebooks.make_notebook(base / "nbs" / "01_a.ipynb", BODY, title=False)
    proc = run_batch(base)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return base


def run_batch(base: Path, *args: str) -> subprocess.CompletedProcess:
    return jmlkit("run", *args, "--notebooks-dir", str(base / "nbs"), "--out", str(base / "out"), "--figures",
                  str(base / "figs"), "--no-progress")


def _foreign_summary(base: Path) -> Path:
    (base / "out" / "summary.csv").write_text("student,grade\nada,A\n")
    return base / "out" / "summary.csv"


def _foreign_metrics(base: Path) -> Path:
    (base / "out" / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    return base / "out" / "metrics.csv"


def _summary_link(base: Path) -> Path:
    shutil.copy2(base / "out" / "summary.csv", base / "outside.csv")  # even a runner's table, when behind a link
    (base / "out" / "summary.csv").unlink()
    (base / "out" / "summary.csv").symlink_to(base / "outside.csv")
    return base / "out" / "summary.csv"


def _foreign_run_dir(base: Path) -> Path:
    shutil.rmtree(base / "out" / "01_a")
    (base / "out" / "01_a").mkdir()
    (base / "out" / "01_a" / "metrics.json").write_text('{"mine": 1}')
    return base / "out" / "01_a"


def _linked_run_dir(base: Path) -> Path:
    shutil.move(base / "out" / "01_a", base / "elsewhere")
    (base / "out" / "01_a").symlink_to(base / "elsewhere")
    return base / "out" / "01_a"


RUN_CASES = {  # id: (change the finished batch, extra arguments, fragment of the error line)
    "foreign summary.csv": (_foreign_summary, [], "was not written by `jmlkit run`"),
    "foreign metrics.csv": (_foreign_metrics, [], "was not written by `jmlkit run`"),
    "summary.csv is a link": (_summary_link, [], "was not written by `jmlkit run`"),
    "run folder not the runner's": (_foreign_run_dir, [], "holds other files (e.g. 'metrics.json')"),
    "run folder not the runner's, --force": (_foreign_run_dir, ["--force"], "holds other files"),
    "run folder is a link, --force": (_linked_run_dir, ["--force"], "is a symbolic link"),
    "run folder is a link": (_linked_run_dir, ["01"], "is a symbolic link"),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_run_refuses_folders_and_tables_that_are_not_its_own(case, batch, tmp_path):
    base = tmp_path / "b"
    shutil.copytree(batch, base, symlinks=True)
    change, extra, fragment = RUN_CASES[case]
    path = change(base)
    before = snapshot(base)
    proc = run_batch(base, *extra)
    line = error_line(proc.stderr)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert line.startswith("jmlkit run: error: argument --out: ") and fragment in line and str(path) in line, line
    assert snapshot(base) == before


def test_run_force_replaces_a_foreign_table(batch, tmp_path):
    base = tmp_path / "b"
    shutil.copytree(batch, base, symlinks=True)
    _foreign_summary(base)
    proc = run_batch(base, "--force")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (base / "out" / "summary.csv").read_text().startswith("run,status,duration_s,error\n01_a,ok,")


def test_figures_replace_a_link_and_never_write_through_it(batch, tmp_path):
    base = tmp_path / "b"
    shutil.copytree(batch, base, symlinks=True)
    (base / "precious.txt").write_text("not a figure")
    figure = base / "figs" / "01_a__fig.png"
    figure.unlink()
    figure.symlink_to(base / "precious.txt")
    proc = run_batch(base)  # cached: no kernel
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (base / "precious.txt").read_text() == "not a figure"
    assert not figure.is_symlink() and figure.read_bytes() == (base / "out" / "01_a" / "fig.png").read_bytes()
    assert sorted(p.name for p in (base / "figs").iterdir()) == ["01_a__fig.png"]  # no temporary file left


def test_atomic_copy_replaces_a_link_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "target").write_bytes(b"kept")
    (tmp_path / "src").write_bytes(b"new bytes")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "dst").symlink_to(tmp_path / "target")
    assert atomic_copy(tmp_path / "src", tmp_path / "dir" / "dst") == tmp_path / "dir" / "dst"
    assert (tmp_path / "target").read_bytes() == b"kept" and not (tmp_path / "dir" / "dst").is_symlink()
    assert (tmp_path / "dir" / "dst").read_bytes() == b"new bytes" and os.listdir(tmp_path / "dir") == ["dst"]
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing", tmp_path / "dir" / "dst")
    assert (tmp_path / "dir" / "dst").read_bytes() == b"new bytes" and os.listdir(tmp_path / "dir") == ["dst"]


@pytest.mark.parametrize("name, content, ours", [
    (".01_a.previous", {"notes.txt": "mine"}, False),     # a user's hidden folder under the runner's naming
    (".01_a.previous", {"run.json": '{"status": "ok"}'}, True),
    (".02_b.discard", {"thesis.tex": "mine"}, False),
    (".02_b.discard", {}, True),
    (".02_b.discard", {"run.json": "{}"}, True),
])
def test_recover_deletes_only_hidden_folders_the_runner_made(tmp_path, name, content, ours):
    out = tmp_path / "out"
    (out / "01_a").mkdir(parents=True)
    (out / "01_a" / "run.json").write_text(json.dumps({"status": "ok"}))  # final: a runner's .previous is dropped
    (out / name).mkdir()
    for file, text in content.items():
        (out / name / file).write_text(text)
    before = snapshot(out)
    recover(out)
    after = snapshot(out)
    if ours:
        assert name not in after and after == {k: v for k, v in before.items() if not k.startswith(name)}
    else:
        assert after == before


def test_set_aside_refuses_a_linked_or_foreign_run_folder(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "run.json").write_text(json.dumps({"status": "ok"}))
    out.mkdir()
    (out / "01_a").symlink_to(tmp_path / "elsewhere")
    (out / "02_b").mkdir()
    (out / "02_b" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    for name, fragment in (("01_a", "is a symbolic link"), ("02_b", "holds other files (e.g. 'notes.txt')")):
        assert fragment in run_dir_problem(out / name)
        with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            set_aside(out / name)
    assert snapshot(tmp_path) == before and not previous_path(out / "01_a").exists()
    (out / "03_c" / "runs").mkdir(parents=True)  # what set_aside made before a killed rerun's record
    assert run_dir_problem(out / "03_c") is None and run_dir_problem(out / "04_new") is None


# ============================================================================ jmlkit student
def _edited(out: Path, outside: Path) -> Path:
    with open(out / "01_a.ipynb", "a") as fh:
        fh.write("\n")
    return out / "01_a.ipynb"


def _link(out: Path, outside: Path) -> Path:
    (out / "01_a.ipynb").unlink()
    (out / "01_a.ipynb").symlink_to(outside)
    return out / "01_a.ipynb"


@pytest.mark.parametrize("change", [_edited, _link], ids=["edited copy", "link to a file outside"])
def test_student_never_replaces_a_changed_copy_without_force(tmp_path, change):
    fake_notebooks.make_notebook(tmp_path / "nbs" / "01_a.ipynb", "x = 1")
    fake_notebooks.make_notebook(tmp_path / "nbs" / "02_b.ipynb", "y = 2")
    out, outside = tmp_path / "handout", tmp_path / "outside.txt"
    outside.write_text("a student's notes")
    args = ["student", str(out), "--notebooks-dir", str(tmp_path / "nbs"), "--quiet"]
    assert jmlkit(*args).returncode == 0
    fresh = (out / "01_a.ipynb").read_bytes()
    unchanged = jmlkit(*args)  # the same copies again: nothing to refuse
    assert unchanged.returncode == 0 and unchanged.stderr == ""
    path = change(out, outside)
    (out / "02_b.ipynb").unlink()  # a missing copy is written only when nothing is refused
    before = snapshot(tmp_path)
    proc = jmlkit(*args)
    line = error_line(proc.stderr)
    assert proc.returncode == 2 and str(path) in line and "--force" in line, proc.stderr
    assert snapshot(tmp_path) == before
    assert jmlkit(*args, "--force").returncode == 0
    assert (out / "01_a.ipynb").read_bytes() == fresh and not (out / "01_a.ipynb").is_symlink()
    assert outside.read_text() == "a student's notes" and (out / "02_b.ipynb").exists()
