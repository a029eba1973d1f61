"""jmlkit.layout: the one owner of what lies on disk (file names, the completion marker, the run cache folder,
finished runs, the runner's run records), and no other module of jmlkit spelling a file name of its folders."""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

import jmlkit
from jmlkit import layout

PACKAGE = Path(jmlkit.__file__).resolve().parent

#: The file names of a training run folder and of a notebook run folder that only jmlkit.layout may spell.
OWNED_NAMES = ("recipe.json", "run.json", "metrics.json", "config.json", "history.csv", "model.pt", "weights.json")
#: Modules that spell one of these names for a file that is not in a jmlkit folder (module: {name: why}).
NOT_OURS = {"jmlkit/models/weights.py": {"config.json": "a file of a Hugging Face snapshot of pretrained weights"}}


def _docstring_nodes(tree: ast.Module) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def _spelled_names(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` for each string constant (docstrings excluded) that is one of :data:`OWNED_NAMES`, or a path
    ending in one (``"out/run.json"``, an f-string's ``"/metrics.json"``)."""
    tree = ast.parse(source)
    docstrings = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value.strip()
            for name in OWNED_NAMES:
                if text == name or text.endswith(("/" + name, "\\" + name)):
                    found.append((node.lineno, name))
    return found


def test_the_scan_finds_names_in_code_and_not_in_docstrings():
    source = '''"""Writes metrics.json."""
def f(out):
    """Reads "run.json"."""
    open(out / "model.pt")
    return f"{out}/history.csv", "metrics.json is written", "config.json"
'''
    assert sorted(_spelled_names(source)) == [(4, "model.pt"), (5, "config.json"), (5, "history.csv")]


def test_only_layout_spells_the_file_names_of_jmlkit_folders():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        if rel == "jmlkit/layout.py":
            continue
        allowed = NOT_OURS.get(rel, {})
        offenders += [f"{rel}:{line}: {name!r}" for line, name in _spelled_names(path.read_text(encoding="utf-8"))
                      if name not in allowed]
    assert not offenders, "spell these through jmlkit.layout's constants:\n" + "\n".join(offenders)


def test_layout_spells_each_name_once():
    values = [layout.CONFIG_FILE, layout.WEIGHTS_FILE, layout.HISTORY_FILE, layout.METRICS_FILE, layout.MODEL_FILE,
              layout.DONE_FILE, layout.RUN_RECORD]
    assert sorted(values) == sorted(OWNED_NAMES)
    assert layout.RUN_FILES[-1] == layout.DONE_FILE and len(set(layout.RUN_FILES)) == len(layout.RUN_FILES)
    assert layout.RUN_RECORD not in layout.RUN_FILES and layout.CACHE_DIR not in layout.RUN_FILES


def test_the_old_public_names_are_layouts():
    import jmlkit.engine as engine
    import jmlkit.engine.runfolder as runfolder
    import jmlkit.io as io

    assert io.DONE_FILE is layout.DONE_FILE and io.read_done is layout.read_done
    assert io.run_folder_name is layout.run_folder_name and io.parse_run_folder_name is layout.parse_run_folder_name
    assert engine.is_complete is layout.is_complete and engine.require_complete is layout.require_complete
    assert runfolder.RUN_FILES is layout.RUN_FILES


# --------------------------------------------------------------------------- a training run folder
def _run(folder: Path, files=layout.RUN_FILES[:-1], marker: object = None) -> Path:
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("{}")
    if marker is not None:
        (folder / layout.DONE_FILE).write_text(marker if isinstance(marker, str) else json.dumps(marker))
    return folder


@pytest.mark.parametrize(("name", "seed", "digest", "folder"), [
    ("ce", 0, None, "ce__seed0"),
    ("jml_ls+kd", 12, None, "jml_ls+kd__seed12"),
    ("a__b", 3, "0123456789abcdef", "a__b__seed3__01234567"),
    ("x", 1, "ffffffff", "x__seed1__ffffffff"),
])
def test_run_folder_names_round_trip(name, seed, digest, folder):
    assert layout.run_folder_name(name, seed, digest) == folder
    assert layout.parse_run_folder_name(folder) == (name, seed)
    assert layout.run_folder_hash(folder) == (None if digest is None else digest[:layout.RUN_HASH_DIGITS])


@pytest.mark.parametrize("name", ["ce", "ce__seed", "ce__seedx", ".ce__seed0.partial-1-2-3", ""])
def test_other_names_are_no_run_folders(name):
    assert layout.parse_run_folder_name(name) is None and layout.run_folder_hash(name) is None


@pytest.mark.parametrize(("call", "error", "names"), [
    (lambda: layout.run_folder_name("ce", -1), ValueError, "`seed`"),
    (lambda: layout.run_folder_name(3, 0), TypeError, "`name`"),
    (lambda: layout.run_folder_name("ce", 0, "ABCDEF12"), ValueError, "`digest`"),
    (lambda: layout.run_folder_name("ce", 0, "abc"), ValueError, "`digest`"),
    (lambda: layout.is_complete(".", files=("notes.txt",)), ValueError, "`files`"),
])
def test_bad_arguments_name_the_argument(call, error, names):
    with pytest.raises(error, match=names):
        call()


# Each case: how the folder is made, then is_complete() without and with the keyword arguments.
COMPLETION = {
    "finished": (lambda p: _run(p / "ce__seed0", marker={"hash": "ab"}), True, {"digest": "ab"}, True),
    "another configuration": (lambda p: _run(p / "ce__seed0", marker={"hash": "ab"}), True, {"digest": "cd"}, False),
    "no marker": (lambda p: _run(p / "ce__seed0"), False, {}, False),
    "broken marker": (lambda p: _run(p / "ce__seed0", marker="{half"), False, {}, False),
    "marker not an object": (lambda p: _run(p / "ce__seed0", marker=[1]), False, {}, False),
    "hidden (partial)": (lambda p: _run(p / ".ce__seed0.partial-1-ab-cd", marker={"hash": "ab"}), False, {}, False),
    "without a checkpoint": (lambda p: _run(p / "ce__seed0", files=layout.RUN_FILES[:4], marker={"hash": "ab"}),
                             True, {"files": (layout.MODEL_FILE,)}, False),
    "with its metrics": (lambda p: _run(p / "ce__seed0", files=(layout.METRICS_FILE,), marker={}), True,
                         {"files": (layout.METRICS_FILE,)}, True),
    "a file": (lambda p: (p / "ce__seed0").write_text("x") and p / "ce__seed0", False, {}, False),
    "missing": (lambda p: p / "ce__seed0", False, {}, False),
}


@pytest.mark.parametrize("case", COMPLETION)
def test_is_complete_is_the_one_rule(tmp_path, case):
    make, plain, kwargs, with_kwargs = COMPLETION[case]
    folder = make(tmp_path)
    assert layout.is_complete(folder) is plain
    assert layout.is_complete(folder, **kwargs) is with_kwargs
    if plain:
        assert layout.require_complete(folder) == layout.read_done(folder)
    elif folder.is_dir():
        with pytest.raises(ValueError, match=f"{folder.name}.*not a complete run folder: no {layout.DONE_FILE}"):
            layout.require_complete(folder)
    else:
        with pytest.raises(FileNotFoundError, match="Expected a run folder"):
            layout.require_complete(folder)


def test_the_marker_is_what_mark_done_wrote(tmp_path):
    from jmlkit.io import mark_done

    assert layout.read_done(tmp_path) is None
    mark_done(tmp_path, hash="abc", seconds=1.5)
    assert layout.read_done(tmp_path) == {"hash": "abc", "seconds": 1.5}
    assert sorted(os.listdir(tmp_path)) == [layout.DONE_FILE]


# --------------------------------------------------------------------------- a notebook run folder
@pytest.mark.parametrize(("content", "record", "status"), [
    (None, None, None),
    ('{"status": "ok", "run": "02_a"}', {"status": "ok", "run": "02_a"}, "ok"),
    ('{"status": "failed"}', {"status": "failed"}, "failed"),
    ('{"run": "02_a"}', {"run": "02_a"}, "None"),
    ('{"status"', None, "unreadable"),
    ('["ok"]', None, "unreadable"),
])
def test_run_records_are_read_one_way(tmp_path, content, record, status):
    if content is not None:
        (tmp_path / layout.RUN_RECORD).write_text(content)
    assert layout.read_run_record(tmp_path) == record
    assert layout.notebook_run_status(tmp_path) == status


def test_a_record_that_is_a_folder_is_unreadable(tmp_path):
    (tmp_path / layout.RUN_RECORD).mkdir()
    assert layout.read_run_record(tmp_path) is None and layout.notebook_run_status(tmp_path) == "unreadable"


def test_previous_folder_is_hidden_next_to_the_run(tmp_path):
    aside = layout.previous_folder(tmp_path / "02_a__seed=1")
    assert aside == tmp_path / f".02_a__seed=1{layout.PREVIOUS_SUFFIX}" and aside.name.startswith(".")


@pytest.mark.parametrize(("name", "expected"), [
    ("03_distillation", True), ("02_label_smoothing__seed=1", True), ("12_x", True),
    ("interactive", False), ("runs", False), ("_03", False), ("03distillation", False), (".03_a.previous", False),
])
def test_notebook_folders(name, expected):
    assert layout.is_notebook_folder(name) is expected


def test_cache_folders_of_a_notebook_and_its_siblings(tmp_path):
    batch = tmp_path / "batch"
    for name in ("03_b", "02_a", "01_c", "notes", ".04_d.previous"):
        (batch / name / layout.CACHE_DIR).mkdir(parents=True)
    (batch / "05_e").mkdir()  # no cache
    assert layout.cache_folders(batch / "02_a") == [batch / n / layout.CACHE_DIR for n in ("02_a", "01_c", "03_b")]
    assert layout.cache_folders(batch / "notes") == [batch / "notes" / layout.CACHE_DIR]  # no notebook: its own only
    assert layout.cache_folders(batch / "05_e") == [batch / n / layout.CACHE_DIR for n in ("01_c", "02_a", "03_b")]
    assert layout.cache_folders(tmp_path / "missing") == []
