"""`python -m jmlkit train`: nothing lost, nothing mixed.

Every user error (bad data root, model, loss, device, teacher, --config, --out) is one line on stderr and
exit code 2, found before any work, and a finished run in the output folder stays byte-identical. A run
folder is built aside and moved into place when complete (--overwrite replaces a run only then); readers
refuse a folder without its completion marker; Ctrl-C leaves nothing and exits 130. Mostly in-process
(`jmlkit.__main__.main`), a few cases as real subprocesses for the real stderr. About 20 s in all.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from jmlkit.__main__ import main
from jmlkit.engine import TrainConfig, config_hash, fit, load_checkpoint, load_run
from jmlkit.io import DONE_FILE, read_done

SMOKE = ["--profile", "smoke", "--no-progress", "--quiet"]
#: A device that is not there: `cuda` on a CPU machine, one past the last GPU elsewhere.
MISSING_DEVICE = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A finished smoke run (`base`), teacher checkpoints good and bad, and other bad inputs."""
    from jmlkit.engine.checkpoints import save_checkpoint
    from jmlkit.models import build_model

    ws = tmp_path_factory.mktemp("cli")
    assert main(["train", *SMOKE, "--out", str(ws / "base")]) == 0
    spec = {"arch": "tiny", "encoder": None, "num_classes": 3, "in_channels": 3, "kwargs": {}}
    save_checkpoint(ws / "teacher3.pt", build_model("tiny", num_classes=3, in_channels=3), spec)
    (ws / "garbage.pt").write_bytes(b"garbage\n")  # torch.load: "invalid literal for int()"
    (ws / "garbage_zip.pt").write_bytes(b"PK\x03\x04garbage")  # torch.load: "not a ZIP archive"
    good = (ws / "base" / "model.pt").read_bytes()
    (ws / "truncated.pt").write_bytes(good[:16384])  # torch.load: OSError "[Errno 22] Invalid argument", naming no file
    (ws / "truncated_half.pt").write_bytes(good[:len(good) // 2])  # torch.load: "failed finding central directory"
    (ws / "empty.pt").write_bytes(b"")  # torch.load: EOFError without a message
    payload = torch.load(ws / "base" / "model.pt", weights_only=True)
    first = next(iter(payload["state_dict"]))
    for name, change in {"reshaped": lambda sd: sd.update({first: torch.zeros(3, 3)}),
                         "missing_key": lambda sd: sd.pop(first),
                         "extra_key": lambda sd: sd.update({"extra.weight": torch.zeros(2)})}.items():
        state = dict(payload["state_dict"])
        change(state)
        torch.save({**payload, "state_dict": state}, ws / f"teacher_{name}.pt")  # load_state_dict: a 24-75 line RuntimeError
    (ws / "incomplete").mkdir()  # a run killed before its completion marker (or made before markers existed)
    for name in ("config.json", "metrics.json", "model.pt"):
        shutil.copy2(ws / "base" / name, ws / "incomplete" / name)
    (ws / "list.json").write_text("[1, 2]")
    (ws / "afile").write_text("not a folder")
    (ws / "notes").mkdir()
    (ws / "notes" / "notes.txt").write_text("a folder that is no run")
    (ws / "readonly").mkdir()
    (ws / "readonly").chmod(0o555)
    return ws


def _unwritable(ws: Path) -> str:
    if os.geteuid() != 0:
        return str(ws / "readonly" / "run")
    if not Path("/sys").is_dir():  # root writes anywhere but into a pseudo file system
        pytest.skip("running as root without /sys: no folder is unwritable")
    return "/sys/jmlkit-test-run"


#: id -> (options after the smoke profile, needles of the error line); {ws}: the workspace, {prev}: a copy of a
#: finished run, {unwritable}: a folder this process cannot write to. `--overwrite` lets the check go past OUT.
CASES = {
    "data-root": (["--dataset", "cityscapes", "--dataset-kwargs", "root={ws}/nonexistent", "--out", "{prev}", "--overwrite"],
                  ["--dataset-kwargs", "{ws}/nonexistent"]),
    "model": (["--model", "nosuch", "--out", "{prev}", "--overwrite"], ["--model", "'nosuch'"]),
    "loss": (["--loss", "nosuch", "--out", "{prev}", "--overwrite"], ["--loss", "'nosuch'"]),
    "device": (["--device", MISSING_DEVICE, "--out", "{prev}", "--overwrite"], ["--device", f"'{MISSING_DEVICE}'"]),
    "teacher-missing": (["--labels", "kd", "--teacher", "{ws}/nope.pt", "--out", "{prev}", "--overwrite"],
                        ["--teacher", "{ws}/nope.pt", "does not exist"]),
    "teacher-garbage": (["--labels", "kd", "--teacher", "{ws}/garbage.pt", "--out", "{prev}", "--overwrite"],
                        ["--teacher", "{ws}/garbage.pt", "checkpoint"]),
    "teacher-not-zip": (["--labels", "kd", "--teacher", "{ws}/garbage_zip.pt", "--out", "{prev}", "--overwrite"],
                        ["--teacher", "{ws}/garbage_zip.pt", "checkpoint"]),
    "teacher-incomplete-run": (["--labels", "kd", "--teacher", "{ws}/incomplete", "--out", "{prev}", "--overwrite"],
                               ["--teacher", "{ws}/incomplete", f"not a complete run folder: no {DONE_FILE}"]),
    "teacher-truncated": (["--labels", "kd", "--teacher", "{ws}/truncated.pt", "--out", "{prev}", "--overwrite"],
                          ["--teacher", "{ws}/truncated.pt", "checkpoint", "cannot read it"]),
    "teacher-truncated-half": (["--labels", "kd", "--teacher", "{ws}/truncated_half.pt", "--out", "{prev}", "--overwrite"],
                               ["--teacher", "{ws}/truncated_half.pt", "checkpoint", "cannot read it"]),
    "teacher-empty": (["--labels", "kd", "--teacher", "{ws}/empty.pt", "--out", "{prev}", "--overwrite"],
                      ["--teacher", "{ws}/empty.pt", "it is empty"]),
    "teacher-reshaped": (["--labels", "kd", "--teacher", "{ws}/teacher_reshaped.pt", "--out", "{prev}", "--overwrite"],
                         ["--teacher", "{ws}/teacher_reshaped.pt", "to fit its own model_spec", "1 key(s) of another shape",
                          "(3, 3) in the file"]),
    "teacher-missing-key": (["--labels", "kd", "--teacher", "{ws}/teacher_missing_key.pt", "--out", "{prev}", "--overwrite"],
                            ["--teacher", "{ws}/teacher_missing_key.pt", "to fit its own model_spec", "1 missing key(s)"]),
    "teacher-extra-key": (["--labels", "kd", "--teacher", "{ws}/teacher_extra_key.pt", "--out", "{prev}", "--overwrite"],
                          ["--teacher", "{ws}/teacher_extra_key.pt", "to fit its own model_spec",
                           "1 unexpected key(s), first 'extra.weight'"]),
    "teacher-classes": (["--labels", "kd", "--teacher", "{ws}/teacher3.pt", "--out", "{prev}", "--overwrite"],
                        ["--teacher", "{ws}/teacher3.pt", "11 classes", "it has 3"]),
    "config-not-object": (["--config", "{ws}/list.json", "--out", "{prev}", "--overwrite"], ["--config", "{ws}/list.json"]),
    "config-not-json": (["--config", "{ws}/garbage.pt", "--out", "{prev}", "--overwrite"], ["--config", "{ws}/garbage.pt"]),
    "out-file": (["--out", "{ws}/afile"], ["--out", "{ws}/afile", "is a file"]),
    "out-not-writable": (["--out", "{unwritable}"], ["--out", "not writable"]),
    "out-not-empty": (["--out", "{prev}"], ["--out", "{prev}", "finished run", "--overwrite"]),
    "out-not-a-run": (["--out", "{ws}/notes", "--overwrite"], ["--out", "{ws}/notes", "notes.txt"]),
}
#: The cases also run as real subprocesses (about 7 s each: the import of torch).
SUBPROCESS_CASES = ["teacher-garbage", "teacher-truncated", "teacher-reshaped", "out-not-empty"]


def _case(name: str, ws: Path, prev: Path) -> tuple[list[str], list[str]]:
    args, needles = CASES[name]
    values = {"ws": str(ws), "prev": str(prev)}
    if any("{unwritable}" in a for a in args):
        values["unwritable"] = _unwritable(ws)
    return [a.format(**values) for a in args], [n.format(**values) for n in needles]


def _check_usage_error(rc: int, out: str, err: str, needles: list[str]) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert "Traceback" not in err and out == ""
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m jmlkit train: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("name", list(CASES))
def test_user_error_is_one_line_and_exit_code_2(name, ws, tmp_path, capsys):
    prev = tmp_path / "prev"
    shutil.copytree(ws / "base", prev)
    before = digest(prev)
    args, needles = _case(name, ws, prev)
    capsys.readouterr()
    rc = main(["train", *SMOKE, *args])
    captured = capsys.readouterr()
    _check_usage_error(rc, captured.out, captured.err, needles)
    assert digest(prev) == before and hidden(tmp_path) == []  # nothing written, nothing left aside
    assert digest(ws / "base") == digest(prev)


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_user_error_as_a_subprocess(name, ws, tmp_path):
    prev = tmp_path / "prev"
    shutil.copytree(ws / "base", prev)
    before = digest(prev)
    args, needles = _case(name, ws, prev)
    proc = subprocess.run([sys.executable, "-m", "jmlkit", "train", *SMOKE, *args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    _check_usage_error(proc.returncode, proc.stdout, proc.stderr, needles)
    assert digest(prev) == before and hidden(tmp_path) == []


def test_debug_shows_the_traceback(ws, tmp_path):
    with pytest.raises(ValueError, match="`model`"):
        main(["train", *SMOKE, "--model", "nosuch", "--debug"])


def test_help_documents_overwrite_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--overwrite", "--no-overwrite", "--debug", "exit codes:", "130  interrupted", "2    a usage error"):
        assert needle in text, needle


# --------------------------------------------------------------------------- overwriting
def test_overwrite_replaces_the_run_when_the_new_one_is_complete(ws, tmp_path, capsys):
    prev = tmp_path / "prev"
    shutil.copytree(ws / "base", prev)
    assert main(["train", *SMOKE, "--epochs", "2", "--lr", "0.001", "--out", str(prev), "--overwrite"]) == 0
    config, history, _ = load_run(prev)
    assert (config.epochs, config.lr, len(history)) == (2, 0.001, 2)
    assert read_done(prev)["hash"] == config_hash(config) and config_hash(config) != read_done(ws / "base")["hash"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prev"]  # the old run and the partial folder are gone


def test_no_save_checkpoint_leaves_no_stale_model(ws, tmp_path):
    prev = tmp_path / "prev"
    shutil.copytree(ws / "base", prev)  # holds the tiny model's model.pt
    assert main(["train", *SMOKE, "--model", "student", "--no-save-checkpoint", "--out", str(prev), "--overwrite"]) == 0
    assert not (prev / "model.pt").exists()
    assert load_run(prev)[0].model == "student"
    with pytest.raises(FileNotFoundError, match="model.pt"):
        load_checkpoint(prev)


def test_overwrite_comes_from_the_command_line_only(ws, tmp_path, capsys):
    """A run's config.json (written with --overwrite) given as --config does not replace that run."""
    prev = tmp_path / "prev"
    shutil.copytree(ws / "base", prev)
    config = tmp_path / "config.json"
    config.write_text(TrainConfig.from_json(prev / "config.json").replace(out=str(prev), overwrite=True).to_json())
    before = digest(prev)
    assert main(["train", *SMOKE, "--config", str(config)]) == 2
    assert "finished run" in capsys.readouterr().err and digest(prev) == before


def test_fit_refuses_a_non_empty_folder_before_any_work(ws, tmp_path):
    prev = tmp_path / "prev"
    shutil.copytree(ws / "base", prev)
    before = digest(prev)
    with pytest.raises(ValueError, match="Expected `out` to be a new or empty folder"):
        fit(TrainConfig.from_profile("smoke", out=str(prev)), progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = fit(TrainConfig.from_profile("smoke", out=str(empty)), progress=False)  # an empty folder is taken
    assert result.run_dir == empty and read_done(empty) is not None
    assert digest(prev) == before and hidden(tmp_path) == []


def test_out_needs_a_writable_parent_even_when_it_exists(tmp_path, monkeypatch):
    """The run is written beside `out` and renamed into it: an existing, writable `out` in a folder that is not
    writable is refused before any work (root is simulated: it writes anywhere)."""
    from jmlkit.engine import preflight
    from jmlkit.engine.runfolder import os as runfolder_os

    parent = tmp_path / "readonly"
    (parent / "run").mkdir(parents=True)
    access = runfolder_os.access
    monkeypatch.setattr(runfolder_os, "access", lambda p, mode, **kw: False if Path(p) == parent else access(p, mode, **kw))
    with pytest.raises(ValueError, match=r"`out`: expected a folder you can write into, but '.*readonly' is not writable"):
        preflight(TrainConfig.from_profile("smoke", out=str(parent / "run")))
    assert sorted(p.name for p in parent.iterdir()) == ["run"]


# --------------------------------------------------------------------------- readers check the marker
def test_readers_refuse_a_folder_without_its_completion_marker(ws, tmp_path):
    from jmlkit.experiments import load_model, run_metrics

    folder = ws / "incomplete"
    message = f"{str(folder)!r} is not a complete run folder: no {DONE_FILE}; interrupted or still running?"
    for read in (load_checkpoint, load_run, load_model, run_metrics):
        with pytest.raises(ValueError) as err:
            read(folder)
        assert str(err.value) == message, read
    assert isinstance(load_checkpoint(folder / "model.pt"), torch.nn.Module)  # a model.pt file is taken as it is
    partial = tmp_path / ".run.partial-1-00000000-00000000"  # a complete-looking partial folder is still partial
    shutil.copytree(ws / "base", partial)
    with pytest.raises(ValueError, match="not a complete run folder"):
        load_checkpoint(partial)


# --------------------------------------------------------------------------- interruptions and failures
def _fail_at_second_step(monkeypatch, exc: BaseException) -> None:
    import jmlkit.engine.loop as loop

    real, calls = loop._optimizer_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 2:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "_optimizer_step", step)


@pytest.mark.parametrize("previous", [True, False], ids=["previous-run", "new-folder"])
def test_ctrl_c_exits_130_and_leaves_no_run_folder(previous, ws, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    if previous:
        shutil.copytree(ws / "base", out)
    before = digest(out) if previous else None
    _fail_at_second_step(monkeypatch, KeyboardInterrupt())
    capsys.readouterr()
    assert main(["train", *SMOKE, "--out", str(out), "--overwrite"]) == 130
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    expected = (f"the previous run in {out} is kept" if previous else f"no run folder written to {out}")
    assert len(lines) == 1 and lines[0].startswith("python -m jmlkit train: interrupted") and expected in lines[0], err
    assert (digest(out) == before) if previous else not out.exists()
    assert hidden(tmp_path) == []


def test_a_failure_during_training_keeps_its_traceback_and_the_previous_run(ws, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(ws / "base", out)
    before = digest(out)
    _fail_at_second_step(monkeypatch, RuntimeError("a bug in the training step"))
    with pytest.raises(RuntimeError, match="a bug in the training step"):
        main(["train", *SMOKE, "--epochs", "2", "--out", str(out), "--overwrite"])
    assert digest(out) == before and hidden(tmp_path) == []


def test_partial_folders_of_dead_processes_are_cleaned(ws, tmp_path):
    from jmlkit.engine.runfolder import _HOST, clean_stale

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    stale = tmp_path / f".run.partial-{dead.pid}-{_HOST}-0123abcd"
    running = tmp_path / f".run.partial-{os.getpid()}-{_HOST}-0123abcd"  # a live process's: kept
    other = tmp_path / f".other.partial-{dead.pid}-{_HOST}-0123abcd"  # another folder's: not ours to clean
    aside = tmp_path / f".run.old-{dead.pid}-{_HOST}-0123abcd"  # an overwrite killed between its two renames
    for folder in (stale, running, other):
        folder.mkdir()
    shutil.copytree(ws / "base", aside)
    assert sorted(p.name for p in clean_stale(out)) == sorted([aside.name, stale.name])
    assert digest(out) == digest(ws / "base")  # the old run is put back
    assert hidden(tmp_path) == sorted([other.name, running.name])
    (tmp_path / f".next.partial-{dead.pid}-{_HOST}-0123abcd").mkdir()  # `kill -9` of a run into `next`
    fit(TrainConfig.from_profile("smoke", out=str(tmp_path / "next")), progress=False)  # removes it first
    assert hidden(tmp_path) == sorted([other.name, running.name]) and read_done(tmp_path / "next") is not None
