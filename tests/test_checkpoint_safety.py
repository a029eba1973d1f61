"""A checkpoint is data, never code: every loader reads ``model.pt`` with ``torch.load(weights_only=True)``.

A real ``model.pt`` of a smoke run with one extra entry whose ``__reduce__`` runs ``os.system("touch MARKER")``
(and plain pickle files with the same payload) is refused on every loading path: ``train --teacher FILE``,
``--teacher RUN_DIR`` and a ``--config`` that sets ``teacher`` (real subprocesses: exit code 2, one stderr line
naming ``--teacher`` and the file, no traceback, nothing on disk changed), ``read_checkpoint``,
``load_checkpoint``, ``experiments.load_model`` / ``evaluate_run`` and the run cache (a trojan ``model.pt`` in a
finished run folder, and its copy in a sibling notebook's folder). After each, the marker file is absent; a
control test shows the payload does run when unpickled without ``weights_only``. About 40 s in all.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from jmlkit.engine import TrainConfig, fit, load_checkpoint, read_checkpoint, save_checkpoint
from jmlkit.experiments import evaluate_run, load_model, run_configs

SMOKE = ["--profile", "smoke", "--no-progress", "--quiet"]


class Trojan:
    """Unpickled, it runs a shell command that creates ``marker`` (as a poisoned checkpoint would)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class ExecTrojan(Trojan):
    """The same through ``builtins.exec``: Python code instead of a shell."""

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def poison(model_pt: Path, dst: Path, marker: Path, *, where: str = "extra", trojan: type = Trojan, **save) -> Path:
    """``model_pt``'s payload with a trojan added ``where`` (a new top-level entry, or inside the model spec)."""
    payload = torch.load(model_pt, weights_only=True)
    if where == "extra":
        payload["notes"] = trojan(marker)
    else:
        payload["model_spec"]["kwargs"] = {"width": trojan(marker)}
    torch.save(payload, dst, **save)
    return dst


#: name -> how the file is made from the base run's model.pt (``src``), into ``dst``, with ``marker``.
TROJANS = {
    "extra-entry": lambda src, dst, m: poison(src, dst, m),
    "in-model-spec": lambda src, dst, m: poison(src, dst, m, where="spec"),
    "exec": lambda src, dst, m: poison(src, dst, m, trojan=ExecTrojan),
    "legacy-format": lambda src, dst, m: poison(src, dst, m, _use_new_zipfile_serialization=False),
    "plain-pickle-2": lambda src, dst, m: dst.write_bytes(pickle.dumps(Trojan(m), protocol=2)) and dst,
    "plain-pickle-4": lambda src, dst, m: dst.write_bytes(pickle.dumps(Trojan(m), protocol=4)) and dst,
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A finished smoke run (``base``), each trojan of :data:`TROJANS` as ``<name>.pt``, a run folder whose
    model.pt is a trojan (``trojan_run``) and a ``--config`` file whose teacher is one (``config.json``)."""
    ws = tmp_path_factory.mktemp("trojans")
    fit(TrainConfig.from_profile("smoke", out=str(ws / "base")), progress=False)
    for name, make in TROJANS.items():
        make(ws / "base" / "model.pt", ws / f"{name}.pt", ws / "MARKER")
    shutil.copytree(ws / "base", ws / "trojan_run")
    poison(ws / "base" / "model.pt", ws / "trojan_run" / "model.pt", ws / "MARKER")
    (ws / "config.json").write_text(json.dumps({"labels": "kd", "teacher": str(ws / "extra-entry.pt")}))
    return ws


def _check_refusal(err: BaseException, file: Path) -> None:
    message = str(err)
    assert isinstance(err, ValueError), repr(err)
    assert repr(str(file)) in message and "weights_only" in message, message
    assert len(message.splitlines()) == 1, message
    assert "weights_only=False" not in message and "safe_globals" not in message, message  # no advice to run it


def test_the_payloads_run_when_unpickled_without_weights_only(ws, tmp_path):
    """The control: each trojan creates its marker when loaded the old way, so the tests below can fail."""
    for name, make in TROJANS.items():
        marker = tmp_path / f"ran-{name}"
        path = make(ws / "base" / "model.pt", tmp_path / f"{name}.pt", marker)
        with open(path, "rb") as fh:
            if name.startswith("plain-pickle"):
                pickle.load(fh)
            else:
                torch.load(fh, weights_only=False)
        assert marker.exists(), name
    assert not (ws / "MARKER").exists()


# --------------------------------------------------------------------------- the library's loaders
LOADERS = {"read_checkpoint": read_checkpoint, "load_checkpoint": load_checkpoint, "load_model": load_model}


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize("name", list(TROJANS))
def test_loaders_refuse_a_trojan_file(name, loader, ws):
    before = digest(ws)
    with pytest.raises(ValueError) as err:
        LOADERS[loader](ws / f"{name}.pt")
    _check_refusal(err.value, ws / f"{name}.pt")
    if not name.startswith("plain-pickle-4"):  # protocol 4 stops at its first FRAME opcode, before the global
        assert "holds a Python object torch.load refuses to run" in str(err.value)
    assert not (ws / "MARKER").exists() and digest(ws) == before


@pytest.mark.parametrize("loader", [*LOADERS, "evaluate_run"])
def test_loaders_refuse_a_run_folder_holding_a_trojan(loader, ws):
    before = digest(ws)
    with pytest.raises(ValueError) as err:
        {**LOADERS, "evaluate_run": evaluate_run}[loader](ws / "trojan_run")
    _check_refusal(err.value, ws / "trojan_run" / "model.pt")
    assert not (ws / "MARKER").exists() and digest(ws) == before


def test_the_run_cache_never_unpickles_code(ws, tmp_path):
    """A trojan model.pt in a finished cached run: found again by run_configs, copied to a sibling notebook's
    folder as it is, and refused by load_model in both places."""
    configs = {"ce": TrainConfig.from_profile("smoke")}
    first = run_configs(configs, seeds=[0], output_dir=tmp_path / "02_first", verbose=False)
    model_pt = Path(first["run_dir"].iloc[0]) / "model.pt"
    poisoned = poison(model_pt, tmp_path / "poisoned.pt", ws / "MARKER").read_bytes()
    model_pt.write_bytes(poisoned)
    again = run_configs(configs, seeds=[0], output_dir=tmp_path / "02_first", verbose=False)
    sibling = run_configs(configs, seeds=[0], output_dir=tmp_path / "03_second", verbose=False)
    assert again["cached"].all() and sibling["cached"].all()
    for run_dir in (again["run_dir"].iloc[0], sibling["run_dir"].iloc[0]):
        assert (Path(run_dir) / "model.pt").read_bytes() == poisoned  # the cache copies the file; it never loads it
        with pytest.raises(ValueError) as err:
            load_model(run_dir)
        _check_refusal(err.value, Path(run_dir) / "model.pt")
    assert not (ws / "MARKER").exists()


# --------------------------------------------------------------------------- the command line
#: id -> (options after the smoke profile, the file the error line names); {ws}: the workspace.
CLI_CASES = {
    "teacher-file": (["--labels", "kd", "--teacher", "{ws}/extra-entry.pt"], "{ws}/extra-entry.pt"),
    "teacher-run-dir": (["--labels", "kd", "--teacher", "{ws}/trojan_run"], "{ws}/trojan_run/model.pt"),
    "config-teacher": (["--config", "{ws}/config.json"], "{ws}/extra-entry.pt"),
    "teacher-plain-pickle": (["--labels", "kd", "--teacher", "{ws}/plain-pickle-2.pt"], "{ws}/plain-pickle-2.pt"),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_train_refuses_a_trojan_teacher(name, ws, tmp_path):
    args, file = CLI_CASES[name]
    args, file = [a.format(ws=ws) for a in args], file.format(ws=ws)
    before = digest(ws)
    proc = subprocess.run([sys.executable, "-m", "jmlkit", "train", *SMOKE, *args, "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == "" and len(lines) == 1, proc.stderr
    assert lines[0].startswith("python -m jmlkit train: error: `--teacher`"), lines[0]
    assert repr(file) in lines[0] and "weights_only" in lines[0], lines[0]
    assert "weights_only=False" not in lines[0] and "safe_globals" not in lines[0], lines[0]
    assert not (ws / "MARKER").exists()
    assert digest(ws) == before and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- what a checkpoint holds
def test_a_run_checkpoint_holds_tensors_and_plain_values(ws):
    """fit's model.pt loads with weights_only=True, and everything beside the weights is JSON as it is."""
    payload = torch.load(ws / "base" / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())
    rest = {k: v for k, v in payload.items() if k != "state_dict"}
    assert json.loads(json.dumps(rest)) == rest and set(rest) == {"model_spec", "config", "epoch"}


#: id -> extra entries of save_checkpoint that weights_only could not load, and the name the TypeError gives.
NOT_PLAIN = {
    "object": ({"notes": Trojan(Path("never"))}, "`notes`"),
    "numpy": ({"scores": np.zeros(2)}, "`scores`"),
    "numpy-scalar": ({"score": np.float64(0.5)}, "`score`"),  # a float subclass: pickled as a numpy global
    "set": ({"tags": {"a"}}, "`tags`"),
    "nested": ({"meta": {"runs": [1, {"when": object()}]}}, "`meta['runs'][1]['when']`"),
    "int-key": ({"meta": {1: "a"}}, "keys of `meta`"),
}


@pytest.mark.parametrize("name", list(NOT_PLAIN))
def test_save_checkpoint_refuses_what_weights_only_cannot_load(name, tmp_path):
    from jmlkit.models import build_model

    extra, needle = NOT_PLAIN[name]
    spec = {"arch": "tiny", "encoder": None, "num_classes": 3, "in_channels": 1, "kwargs": {}}
    with pytest.raises(TypeError, match="weights_only|plain values") as err:
        save_checkpoint(tmp_path / "model.pt", build_model("tiny", num_classes=3, in_channels=1), spec, **extra)
    assert needle in str(err.value), str(err.value)
    assert list(tmp_path.iterdir()) == []
    save_checkpoint(tmp_path / "model.pt", build_model("tiny", num_classes=3, in_channels=1), spec,
                    epoch=3, meta={"runs": [1, (2, None)], "t": torch.ones(1)})
    assert read_checkpoint(tmp_path / "model.pt")["meta"]["runs"] == [1, (2, None)]


def _spec(payload):
    return payload["model_spec"]


#: id -> how a loadable payload is spoiled, and needles of the ValueError (which also names the file).
MALFORMED = {
    "not-a-dict": (lambda p: [1, 2], "with 'model_spec' and 'state_dict'"),
    "no-state-dict": (lambda p: {"model_spec": p["model_spec"]}, "with 'model_spec' and 'state_dict'"),
    "spec-not-a-dict": (lambda p: {**p, "model_spec": "tiny"}, "'model_spec' of"),
    "spec-bool-classes": (lambda p: {**p, "model_spec": {**_spec(p), "num_classes": True}}, "'model_spec' of"),
    "spec-unknown-arch": (lambda p: {**p, "model_spec": {**_spec(p), "arch": "nosuch"}}, "describe a model"),
    "state-not-tensors": (lambda p: {**p, "state_dict": {"w": [1.0]}}, "'state_dict' of"),
    "state-missing-key": (lambda p: {**p, "state_dict": dict(list(p["state_dict"].items())[1:])}, "1 missing key(s)"),
    "state-empty": (lambda p: {**p, "state_dict": {}}, "missing key(s)"),
    "state-other-spec": (lambda p: {**p, "model_spec": {**_spec(p), "num_classes": 4}}, "of another shape"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_load_checkpoint_names_the_file_of_a_malformed_checkpoint(name, ws, tmp_path):
    spoil, needle = MALFORMED[name]
    path = tmp_path / "model.pt"
    torch.save(spoil(torch.load(ws / "base" / "model.pt", weights_only=True)), path)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    assert repr(str(path)) in str(err.value) and needle in str(err.value), str(err.value)
    assert len(str(err.value).splitlines()) == 1
