"""Batch runner for the jmlkit notebooks: ``jmlkit run`` (also ``python -m jmlkit run``).

The runner executes parameterised notebooks with papermill, in parallel, and
keeps going when one of them fails::

    jmlkit run                                   # every notebook, quick profile
    jmlkit run 03 05 --profile full --jobs 2     # two notebooks, by number prefix
    jmlkit run 01 -p seed=0,1,2 -p lr=1e-3       # a sweep of three runs

Conventions (the contract between the runner and the notebooks):

* **Notebooks.** By default every ``notebooks/NN_*.ipynb`` (names starting with a
  digit), sorted. A notebook is named by a path, its file name, its stem, or a
  unique prefix of its name (``03``). Each notebook has exactly one code cell
  tagged ``parameters`` (see :func:`find_parameters_cell`), which declares
  ``profile``, ``seed`` and ``output_dir`` among its parameters.
* **Injected parameters.** Only parameters the notebook *declares* are injected
  (papermill would otherwise warn and inject them anyway): ``profile`` (from
  ``--profile``), ``output_dir`` (absolute path of the run folder) and each
  ``-p name=value`` the notebook declares. A ``-p`` name that no selected
  notebook declares is reported and ignored. Values are Python literals
  (``ast.literal_eval``) and fall back to strings; a value with top-level commas
  is a grid (``seed=0,1,2``), and the runs are the product over all grids.
* **Runs.** A run is one notebook with one parameter combination; its folder is
  ``OUT/<stem>`` or, with ``-p`` overrides, ``OUT/<stem>__k=v,k2=v2`` (keys
  sorted). The executed notebook is ``OUT/<run>/<stem>.ipynb``; the kernel runs
  with the *notebook's folder* as working directory, as in Jupyter, so relative
  paths behave the same interactively and in batch; notebooks write everything
  they produce under ``output_dir``. Kernels get matplotlib's inline backend
  (a non-inline ``MPLBACKEND`` such as ``Agg`` is not passed on), so executed
  notebooks keep their figures.
* **Failure isolation.** A failing notebook never stops the others: its
  partially executed copy (with the traceback) is kept, its status is
  ``failed`` and the exit code is 1. ``--timeout`` bounds the wall time of each
  run (the kernel is interrupted, then killed). Ctrl-C interrupts the running
  kernels, writes the summary for what finished and exits with 130.
* **Resume.** ``OUT/<run>/run.json`` records the notebook, its sha256, the
  parameters, status and timings. A rerun skips a run whose ``run.json`` says
  ``ok`` for the same notebook content and parameters (``--force`` reruns);
  anything else is rerun from a fresh folder.
* **Summary.** ``OUT/summary.csv`` has one row per planned run: ``run``,
  ``notebook``, ``status`` (ok | failed | interrupted | pending), ``cached``
  (skipped because already done), ``duration_s``, ``started``, ``finished``,
  ``error``, one column per injected parameter (``profile``, the ``-p`` names;
  a name clashing with a fixed column gets a ``p.`` prefix), one column
  ``m.<key>`` per headline metric found in ``OUT/<run>/metrics.json`` (a flat
  JSON object of numbers written by the notebook), ``executed_notebook`` and
  ``n_figures``.
* **Figures.** Every ``*.png`` and ``*.svg`` under a *successful* run folder is
  copied to the figures folder as ``<run>__<relative path with / -> __>``
  (failed runs' partial figures stay in their run folder only, so ``figures/``
  never mixes in figures of broken runs).

Python API: :func:`plan_runs` builds the runs, :func:`run_notebooks` executes
them, :func:`write_summary` and :func:`collect_figures` produce the outputs;
:func:`main_run` is the command line.

Example (pure planning, no kernel):

>>> parse_assignments(["seed=0,1", "loss=ce+jml"])
{'seed': [0, 1], 'loss': ['ce+jml']}
>>> expand_grid({"seed": [0, 1], "loss": ["ce+jml"]})
[{'seed': 0, 'loss': 'ce+jml'}, {'seed': 1, 'loss': 'ce+jml'}]
>>> run_name("01_jaccard_losses", {"seed": 1, "loss": "ce+jml"})
'01_jaccard_losses__loss=ce+jml,seed=1'
"""
from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import sys
import threading
import time
import tokenize
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

__all__ = [
    "PROFILES",
    "Run",
    "RunResult",
    "build_parser",
    "check_notebook_clean",
    "collect_figures",
    "discover_notebooks",
    "expand_grid",
    "find_parameters_cell",
    "main_run",
    "notebook_parameters",
    "parse_assignments",
    "parse_value",
    "plan_runs",
    "resolve_notebooks",
    "run_name",
    "run_notebooks",
    "summary_rows",
    "write_summary",
]

PROFILES = ("quick", "full")
#: Parameters the runner sets itself (not through ``-p``).
RUNNER_PARAMETERS = ("profile", "output_dir")
#: Parameters every repository notebook must declare.
REQUIRED_PARAMETERS = ("profile", "seed", "output_dir")
FIGURE_SUFFIXES = (".png", ".svg")
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.csv"
FIXED_COLUMNS = ("run", "notebook", "status", "cached", "duration_s", "started", "finished", "error")
TAIL_COLUMNS = ("executed_notebook", "n_figures")
_MAX_NAME = 120  # longer run names are shortened with a hash


# --------------------------------------------------------------------------- parameters
def parse_value(text: str) -> Any:
    """Parse one ``-p`` value: a Python literal, else the string itself.

    >>> parse_value("3"), parse_value("1e-3"), parse_value("True"), parse_value("ce+jml")
    (3, 0.001, True, 'ce+jml')
    >>> parse_value("[1, 2]"), parse_value("'quoted'")
    ([1, 2], 'quoted')
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected `text` to be a str, but got {type(text).__name__}.")
    stripped = text.strip()
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return stripped


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_assignments(assignments: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``-p name=value`` options into a grid ``{name: [values...]}``.

    A value with top-level commas is a grid (``seed=0,1,2``); commas inside
    brackets or quotes do not split (``size=[64,64]`` is one list value).

    >>> parse_assignments(["seed=0,1,2", "size=[64,64]", "name='a,b'"])
    {'seed': [0, 1, 2], 'size': [[64, 64]], 'name': ['a,b']}
    """
    grid: dict[str, list[Any]] = {}
    for item in assignments:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"Expected `-p` as name=value, but got {item!r}.")
        name, _, raw = item.partition("=")
        name = name.strip()
        if not name.isidentifier():
            raise ValueError(f"Expected `-p` name to be a Python identifier, but got {name!r}.")
        if name in RUNNER_PARAMETERS:
            hint = "--profile" if name == "profile" else "--out"
            raise ValueError(f"Expected `-p` not to set {name!r} (the runner sets it: use {hint}), but got {item!r}.")
        if name in grid:
            raise ValueError(f"Expected each `-p` name once, but got {name!r} twice.")
        parts = _split_top_level(raw)
        if len(parts) > 1 and any(not p.strip() for p in parts):
            raise ValueError(f"Expected `-p {name}` grid values separated by single commas, but got {raw!r}.")
        grid[name] = [parse_value(p) for p in parts]
    return grid


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of a parameter grid, in the grid's key order.

    >>> expand_grid({"seed": [0, 1], "lr": [0.1]})
    [{'seed': 0, 'lr': 0.1}, {'seed': 1, 'lr': 0.1}]
    >>> expand_grid({})
    [{}]
    """
    names = list(grid)
    for name in names:
        if isinstance(grid[name], (str, bytes)) or not isinstance(grid[name], Sequence) or len(grid[name]) == 0:
            raise ValueError(f"Expected grid values for {name!r} to be a non-empty list, but got {grid[name]!r}.")
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def _slug(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bool, int, float)):
        text = str(value)
    else:
        text = json.dumps(value, default=repr)
    return "".join(ch if ch.isalnum() or ch in "._+-" else "-" for ch in text) or "-"


def run_name(stem: str, overrides: Mapping[str, Any]) -> str:
    """Folder name of a run: the notebook stem plus its ``-p`` overrides, sorted.

    >>> run_name("02_soft_labels", {})
    '02_soft_labels'
    >>> run_name("02_soft_labels", {"seed": 2, "tag": "a b"})
    '02_soft_labels__seed=2,tag=a-b'
    """
    if not overrides:
        return stem
    name = stem + "__" + ",".join(f"{k}={_slug(overrides[k])}" for k in sorted(overrides))
    if len(name) > _MAX_NAME:
        digest = hashlib.sha1(_canonical(overrides).encode()).hexdigest()[:12]
        name = f"{stem}__{digest}"
    return name


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


# --------------------------------------------------------------------------- notebooks
def _cell_tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _parameters_cells(nb: Mapping[str, Any]) -> list[int]:
    return [i for i, c in enumerate(nb["cells"]) if "parameters" in _cell_tags(c)]


def find_parameters_cell(nb: Mapping[str, Any]) -> int:
    """Index of the one cell tagged ``parameters``; ValueError if there are none or several.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
    ...     nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]})])
    >>> find_parameters_cell(nb)
    1
    """
    found = _parameters_cells(nb)
    if len(found) != 1:
        raise ValueError(f"Expected exactly one cell tagged 'parameters', but got {len(found)} (cells {found}).")
    if nb["cells"][found[0]].get("cell_type") != "code":
        raise ValueError(f"Expected the 'parameters' cell {found[0]} to be a code cell, "
                         f"but got a {nb['cells'][found[0]].get('cell_type')} cell.")
    return found[0]


def _source(cell: Mapping[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _parse_parameters_source(source: str) -> dict[str, dict[str, str]]:
    # IPython magics and shell escapes are not Python: blank them, keep line numbers.
    lines = [("" if ln.lstrip().startswith(("%", "!")) else ln) for ln in source.splitlines()]
    code = "\n".join(lines) + "\n"
    tree = ast.parse(code)
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):  # pragma: no cover - ast.parse passed
        pass
    params: dict[str, dict[str, str]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        names = []
        for t in targets:
            elts = t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]
            names += [e.id for e in elts if isinstance(e, ast.Name)]
        default = ast.get_source_segment(code, value) or ""
        help_ = comments.get(stmt.end_lineno or stmt.lineno, comments.get(stmt.lineno, ""))
        for n in names:
            params[n] = {"default": default if len(names) == 1 else "", "help": help_}
    return params


def notebook_parameters(nb: Mapping[str, Any] | str | os.PathLike) -> dict[str, dict[str, str]]:
    """Parameters declared by a notebook's first ``parameters`` cell.

    Returns ``{name: {"default": source text, "help": trailing comment}}`` in
    declaration order; ``{}`` when there is no parameters cell. Top-level
    assignments are parameters; magics are ignored.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     'profile = "quick"  # quick or full\\nseed: int = 0', metadata={"tags": ["parameters"]})])
    >>> notebook_parameters(nb)
    {'profile': {'default': '"quick"', 'help': 'quick or full'}, 'seed': {'default': '0', 'help': ''}}
    """
    if isinstance(nb, (str, os.PathLike)):
        nb = _read_notebook(Path(nb))
    cells = _parameters_cells(nb)
    if not cells:
        return {}
    source = _source(nb["cells"][cells[0]])
    try:
        return _parse_parameters_source(source)
    except SyntaxError as err:
        raise ValueError(f"Expected the 'parameters' cell to be valid Python, but got a syntax error: {err}.") from err


def _read_notebook(path: Path):
    import nbformat

    with open(path, encoding="utf-8") as fh:
        return nbformat.read(fh, as_version=4)


def check_notebook_clean(path: str | os.PathLike, *, required: Sequence[str] = REQUIRED_PARAMETERS) -> list[str]:
    """Problems that keep a notebook from being committed; ``[]`` when it is clean.

    Checks: no code cell has outputs or an execution count, there is exactly one
    ``parameters`` code cell, it is valid Python and declares ``required``.
    """
    path = Path(path)
    try:
        nb = _read_notebook(path)
    except Exception as err:  # unreadable JSON / nbformat
        return [f"{path.name}: cannot be read as a notebook ({type(err).__name__}: {err})"]
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{path.name}: cell {i} has outputs (clear them before committing)")
        if cell.get("execution_count") is not None:
            problems.append(f"{path.name}: cell {i} has execution_count {cell.execution_count}")
    try:
        find_parameters_cell(nb)
        declared = notebook_parameters(nb)
    except ValueError as err:
        return problems + [f"{path.name}: {err}"]
    missing = [p for p in required if p not in declared]
    if missing:
        problems.append(f"{path.name}: the parameters cell does not declare {missing}")
    return problems


def _default_notebooks_dir() -> Path:
    local = Path("notebooks")
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[1] / "notebooks"


def discover_notebooks(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """The runnable notebooks of a folder: ``*.ipynb`` whose name starts with a digit, sorted."""
    folder = Path(notebooks_dir) if notebooks_dir is not None else _default_notebooks_dir()
    if not folder.is_dir():
        raise ValueError(f"Expected `notebooks_dir` to be a folder, but got {str(folder)!r}.")
    return sorted(p for p in folder.glob("*.ipynb") if p.name[:1].isdigit())


def resolve_notebooks(names: Sequence[str], notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    """Notebook paths from command-line names (paths, file names, stems or unique prefixes).

    No names means every notebook of :func:`discover_notebooks`.
    """
    folder = Path(notebooks_dir) if notebooks_dir is not None else _default_notebooks_dir()
    if not names:
        found = discover_notebooks(folder)
        if not found:
            raise ValueError(f"Expected notebooks named NN_*.ipynb in {str(folder)!r}, but found none.")
        return found
    candidates = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            paths.append(path)
            continue
        matches = [p for p in candidates if name in (p.name, p.stem)] or [
            p for p in candidates if p.name.startswith(name)]
        if len(matches) != 1:
            what = "no notebook" if not matches else f"{len(matches)} notebooks ({', '.join(p.name for p in matches)})"
            raise ValueError(f"Expected {name!r} to name one notebook (path, name, stem or unique prefix "
                             f"in {str(folder)!r}), but it matches {what}.")
        paths.append(matches[0])
    unique, stems = [], {}
    for p in paths:
        rp = p.resolve()
        if rp in (u.resolve() for u in unique):
            continue
        if p.stem in stems:
            raise ValueError(f"Expected notebooks with distinct names, but got {str(stems[p.stem])!r} and {str(p)!r}.")
        stems[p.stem] = p
        unique.append(p)
    return unique


# --------------------------------------------------------------------------- planning
@dataclasses.dataclass(frozen=True)
class Run:
    """One planned execution: a notebook with one parameter combination.

    ``parameters`` are the injected values except ``output_dir`` (``profile``
    if declared, then the declared ``-p`` overrides); ``run_dir`` is the run folder.
    """

    name: str
    notebook: Path
    parameters: dict[str, Any]
    run_dir: Path
    declares_output_dir: bool = True

    @property
    def executed_notebook(self) -> Path:
        return self.run_dir / f"{self.notebook.stem}.ipynb"

    def papermill_parameters(self) -> dict[str, Any]:
        params = dict(self.parameters)
        if self.declares_output_dir:
            params["output_dir"] = str(self.run_dir)
        return params


@dataclasses.dataclass
class RunResult:
    """Outcome of a run; ``status`` is ``ok``, ``failed``, ``interrupted`` or ``pending`` (never started)."""

    run: Run
    status: str
    duration_s: float | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    cached: bool = False
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[Path] = dataclasses.field(default_factory=list)


def plan_runs(
    notebooks: Sequence[str | os.PathLike],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    profile: str = "quick",
    out_dir: str | os.PathLike = "runs",
    warn: Callable[[str], None] | None = None,
) -> list[Run]:
    """Expand notebooks x parameter grid into runs.

    Each notebook gets only the grid entries it declares (the product of those),
    plus ``profile`` if it declares it. ``warn`` receives a message for each grid
    name that no notebook declares and for notebooks without a parameters cell.
    """
    if profile not in PROFILES:
        raise ValueError(f"Expected `profile` to be one of {PROFILES}, but got {profile!r}.")
    grid = dict(grid or {})
    out = Path(out_dir).resolve()
    runs: list[Run] = []
    used: set[str] = set()
    for nb_path in map(Path, notebooks):
        nb = _read_notebook(nb_path)
        if warn is not None and len(_parameters_cells(nb)) != 1:
            warn(f"{nb_path.name} has {len(_parameters_cells(nb))} cells tagged 'parameters' (expected 1)")
        declared = notebook_parameters(nb)
        own = {k: v for k, v in grid.items() if k in declared}
        used.update(own)
        fixed = {"profile": profile} if "profile" in declared else {}
        for combo in expand_grid(own):
            name = run_name(nb_path.stem, combo)
            runs.append(Run(name=name, notebook=nb_path.resolve(), parameters={**fixed, **combo},
                            run_dir=out / name, declares_output_dir="output_dir" in declared))
    unused = [k for k in grid if k not in used]
    if unused and warn is not None:
        warn(f"-p {', '.join(unused)}: not a parameter of any selected notebook; ignored")
    return runs


# --------------------------------------------------------------------------- execution
def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name in the same folder (not mkstemp: its files are private, 0600).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if v is None or isinstance(v, (int, float, str, bool))}


def _find_figures(run_dir: Path) -> list[Path]:
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.rglob("*") if p.suffix.lower() in FIGURE_SUFFIXES and p.is_file())


def _write_run_json(result: RunResult, sha: str | None, kernel: str | None) -> None:
    run = result.run
    record = {
        "run": run.name,
        "notebook": str(run.notebook),
        "notebook_sha256": sha,
        "parameters": json.loads(_canonical(run.parameters)),
        "output_dir": str(run.run_dir),
        "executed_notebook": run.executed_notebook.name,
        "kernel": kernel,
        "status": result.status,
        "duration_s": result.duration_s,
        "started": result.started,
        "finished": result.finished,
        "error": result.error,
    }
    _atomic_write_text(run.run_dir / RUN_FILE, json.dumps(record, indent=2) + "\n")


def _cached_result(run: Run) -> RunResult | None:
    """The previous result of ``run`` if it finished ``ok`` with the same notebook and parameters."""
    try:
        record = json.loads((run.run_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and record.get("status") == "ok"
            and record.get("notebook_sha256") == _sha256(run.notebook)
            and _canonical(record.get("parameters", {})) == _canonical(json.loads(_canonical(run.parameters)))
            and run.executed_notebook.is_file()):
        return None
    return RunResult(run=run, status="ok", duration_s=record.get("duration_s"), started=record.get("started"),
                     finished=record.get("finished"), cached=True, metrics=_read_metrics(run.run_dir))


# Kernels are tracked per worker thread so that Ctrl-C and --timeout can interrupt them.
_KERNELS_LOCK = threading.Lock()
_KERNELS: dict[int, Any] = {}        # worker thread id -> live kernel manager
_STOP_REASONS: dict[int, str] = {}   # worker thread id -> "interrupt" | "timeout"


class _RunStopped(RuntimeError):
    pass


def _tracked_kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager

    class TrackedKernelManager(AsyncKernelManager):
        """AsyncKernelManager that registers itself under the worker thread starting it."""

        async def start_kernel(self, **kw):  # noqa: D102
            ident = threading.get_ident()
            with _KERNELS_LOCK:
                reason = _STOP_REASONS.get(ident)
                if reason is None:
                    _KERNELS[ident] = self
            if reason is not None:
                raise _RunStopped(f"run stopped ({reason}) before its kernel started")
            if "env" not in kw:
                kw["env"] = _kernel_env()
            return await super().start_kernel(**kw)

    return TrackedKernelManager


_TRACKED_KM: Any = None


def _kernel_env() -> dict[str, str]:
    """The kernel's environment: ours, minus a non-inline ``MPLBACKEND`` (e.g. the Makefile's ``Agg``).

    Without it ipykernel selects matplotlib's inline backend, so executed notebooks show their figures.
    """
    env = dict(os.environ)
    if not env.get("MPLBACKEND", "module://").startswith("module://"):
        del env["MPLBACKEND"]
    return env


def _signal_kernel(ident: int, signum: int) -> bool:
    with _KERNELS_LOCK:
        km = _KERNELS.get(ident)
    pid = getattr(getattr(km, "provisioner", None), "pid", None) if km is not None else None
    if not pid:
        return False
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


def _stop_worker(ident: int, reason: str, *, grace_s: float = 5.0) -> None:
    """Interrupt the kernel of worker ``ident`` (SIGINT), then kill it if it does not stop."""
    with _KERNELS_LOCK:
        _STOP_REASONS.setdefault(ident, reason)

    def escalate() -> None:
        kill = getattr(signal, "SIGKILL", signal.SIGTERM)
        for signum in (signal.SIGINT, signal.SIGINT, kill, kill):
            with _KERNELS_LOCK:
                if ident not in _STOP_REASONS:  # the worker has finished
                    return
            _signal_kernel(ident, signum)
            time.sleep(grace_s)

    threading.Thread(target=escalate, name=f"jmlkit-stop-{ident}", daemon=True).start()


@dataclasses.dataclass
class _Session:
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    active: set = dataclasses.field(default_factory=set)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def _kernel_for(run: Run, kernel_name: str | None) -> str:
    if kernel_name:
        return kernel_name
    try:
        spec = _read_notebook(run.notebook).metadata.get("kernelspec", {})
    except Exception:
        spec = {}
    return spec.get("name") or "python3"


def _execute_run(run: Run, *, kernel_name: str | None, timeout: float | None, session: _Session,
                 start_timeout: float = 120.0) -> RunResult:
    ident = threading.get_ident()
    with session.lock:
        session.active.add(ident)
    try:
        if session.stop.is_set():
            return RunResult(run=run, status="pending")
        return _execute_run_inner(run, kernel_name=kernel_name, timeout=timeout, ident=ident,
                                  start_timeout=start_timeout)
    except BaseException as err:  # never lose a result: the summary must list every run
        return RunResult(run=run, status="failed", error=f"{type(err).__name__}: {err}")
    finally:
        with session.lock:
            session.active.discard(ident)
        with _KERNELS_LOCK:
            _KERNELS.pop(ident, None)
            _STOP_REASONS.pop(ident, None)


def _execute_run_inner(run: Run, *, kernel_name: str | None, timeout: float | None, ident: int,
                       start_timeout: float) -> RunResult:
    global _TRACKED_KM
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    if _TRACKED_KM is None:
        _TRACKED_KM = _tracked_kernel_manager_class()
    sha = _sha256(run.notebook)
    kernel = _kernel_for(run, kernel_name)
    # A fresh folder, so that stale figures or metrics of an earlier attempt never leak in;
    # only folders the runner created (with a run.json) are wiped.
    if (run.run_dir / RUN_FILE).exists():
        shutil.rmtree(run.run_dir)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(run=run, status="running", started=_now())
    _write_run_json(result, sha, kernel)
    t0 = time.perf_counter()
    timer = None
    if timeout:
        timer = threading.Timer(timeout, _stop_worker, args=(ident, "timeout"))
        timer.daemon = True
        timer.start()
    try:
        pm.execute_notebook(
            str(run.notebook), str(run.executed_notebook),
            parameters=run.papermill_parameters(),
            kernel_name=kernel,
            progress_bar=False,
            start_timeout=start_timeout,
            # cwd=None: papermill would os.chdir() the whole process, which races between threads;
            # nbclient starts the kernel in resources["metadata"]["path"] instead.
            resources={"metadata": {"path": str(run.notebook.parent)}},
            kernel_manager_class=_TRACKED_KM,
        )
        result.status = "ok"
    except PapermillExecutionError as err:
        result.status, result.error = "failed", f"{err.ename}: {err.evalue}"
    except Exception as err:
        result.status, result.error = "failed", f"{type(err).__name__}: {err}"
    finally:
        if timer is not None:
            timer.cancel()
    with _KERNELS_LOCK:
        reason = _STOP_REASONS.get(ident)
    if reason and result.status != "ok":
        if reason == "timeout":
            result.status, result.error = "failed", f"TimeoutError: the run exceeded --timeout {timeout:g} s"
        else:
            result.status, result.error = "interrupted", "KeyboardInterrupt: interrupted by the user"
    result.duration_s = round(time.perf_counter() - t0, 3)
    result.finished = _now()
    result.metrics = _read_metrics(run.run_dir)
    _write_run_json(result, sha, kernel)
    return result


def run_notebooks(
    runs: Sequence[Run],
    *,
    jobs: int = 1,
    kernel_name: str | None = None,
    timeout: float | None = None,
    force: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Execute runs in parallel (``jobs`` threads, each driving one kernel); results in ``runs`` order.

    Runs already done (see module docs) are returned with ``cached=True``
    unless ``force``. A failing run never stops the others. On Ctrl-C the
    running kernels are interrupted, and the function *returns* with those runs
    ``interrupted`` and the unstarted ones ``pending`` instead of raising.
    ``progress``: tqdm bar (None: only on a terminal). ``kernel_name``: None
    uses each notebook's kernelspec, else ``python3``.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"Expected `jobs` to be a positive int, but got {jobs!r}.")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"Expected `timeout` to be a positive number of seconds, but got {timeout!r}.")
    from tqdm.auto import tqdm

    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"Expected runs with distinct names, but got duplicates in {names}.")
    results: dict[str, RunResult] = {}
    todo = []
    for run in runs:
        cached = None if force else _cached_result(run)
        if cached is not None:
            results[run.name] = cached
        else:
            todo.append(run)

    bar = tqdm(total=len(todo), desc="notebooks", unit="run", dynamic_ncols=True,
               disable=None if progress is None else not progress)  # None: only on a terminal
    emit = log or bar.write
    for run in runs:
        if run.name in results:
            emit(f"[cached] {run.name}")
    session = _Session()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="jmlkit-run")
    futures: dict[Future, Run] = {
        pool.submit(_execute_run, run, kernel_name=kernel_name, timeout=timeout, session=session): run
        for run in todo}
    n_failed = 0

    def record(res: RunResult) -> None:
        nonlocal n_failed
        results[res.run.name] = res
        n_failed += res.status != "ok"
        bar.update(1)
        bar.set_postfix_str(f"{n_failed} failed" if n_failed else "")
        took = f" ({res.duration_s:.1f} s)" if res.duration_s is not None else ""
        emit(f"[{res.status}] {res.run.name}{took}" + (f": {res.error}" if res.error else ""))

    pending = set(futures)
    try:
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    record(fut.result())
        except KeyboardInterrupt:
            emit("Interrupted: stopping the running notebooks (Ctrl-C again to stop waiting)...")
            session.stop.set()
            for fut in pending:
                fut.cancel()
            with session.lock:
                active = list(session.active)
            for ident in active:
                _stop_worker(ident, "interrupt")
            try:
                for fut in pending:
                    if not fut.cancelled():
                        record(fut.result())
            except KeyboardInterrupt:
                pass
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    for fut, run in futures.items():
        if run.name not in results:
            if fut.done() and not fut.cancelled():
                results[run.name] = fut.result()
            else:
                results[run.name] = RunResult(run=run, status="pending" if not fut.running() else "interrupted")
    return [results[r.name] for r in runs]


# --------------------------------------------------------------------------- outputs
def collect_figures(results: Sequence[RunResult], figures_dir: str | os.PathLike) -> list[Path]:
    """Copy each successful run's ``*.png``/``*.svg`` to ``figures_dir/<run>__<path>``; returns the copies.

    Also fills ``result.figures``. Failed, interrupted and pending runs are skipped.
    """
    dest_dir = Path(figures_dir)
    copied: list[Path] = []
    for res in results:
        res.figures = []
        if res.status != "ok":
            continue
        for fig in _find_figures(res.run.run_dir):
            rel = fig.relative_to(res.run.run_dir)
            dest = dest_dir / f"{res.run.name}__{'__'.join(rel.parts)}"
            dest_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fig, dest)
            res.figures.append(dest)
            copied.append(dest)
    return copied


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, default=repr)


def summary_rows(results: Sequence[RunResult], *, relative_to: str | os.PathLike | None = None) -> tuple[
        list[str], list[dict[str, Any]]]:
    """Columns and rows of ``summary.csv`` (see module docs for the columns)."""
    param_cols: list[str] = []
    metric_cols: list[str] = []
    for res in results:
        for k in res.run.parameters:
            if k not in param_cols:
                param_cols.append(k)
        for k in res.metrics:
            if k not in metric_cols:
                metric_cols.append(k)
    if "profile" in param_cols:
        param_cols.insert(0, param_cols.pop(param_cols.index("profile")))

    def pcol(k: str) -> str:
        return f"p.{k}" if k in FIXED_COLUMNS or k in TAIL_COLUMNS else k

    base = Path(relative_to).resolve() if relative_to is not None else None

    def rel(p: Path) -> str:
        if base is not None:
            try:
                return os.path.relpath(p, base)
            except ValueError:
                pass
        return str(p)

    columns = [*FIXED_COLUMNS, *map(pcol, param_cols), *(f"m.{k}" for k in metric_cols), *TAIL_COLUMNS]
    rows = []
    for res in results:
        row: dict[str, Any] = {
            "run": res.run.name, "notebook": res.run.notebook.name, "status": res.status, "cached": res.cached,
            "duration_s": res.duration_s, "started": res.started, "finished": res.finished, "error": res.error,
            "executed_notebook": rel(res.run.executed_notebook) if res.run.executed_notebook.exists() else None,
            "n_figures": len(res.figures)}
        row.update({pcol(k): v for k, v in res.run.parameters.items()})
        row.update({f"m.{k}": v for k, v in res.metrics.items()})
        rows.append({c: _cell(row.get(c)) for c in columns})
    return columns, rows


def write_summary(results: Sequence[RunResult], path: str | os.PathLike) -> Path:
    """Write ``summary.csv`` atomically (one row per run); returns its path."""
    path = Path(path)
    columns, rows = summary_rows(results, relative_to=path.parent)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write_text(path, buf.getvalue())
    return path


# --------------------------------------------------------------------------- command line
def build_parser(prog: str = "jmlkit run") -> argparse.ArgumentParser:
    """The ``jmlkit run`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Execute the jmlkit notebooks with papermill (in parallel, resumable), write "
                    "OUT/summary.csv and collect the figures.",
        epilog="Examples: `jmlkit run` (every notebook, quick profile); `jmlkit run 03 --profile full`; "
               "`jmlkit run 01 -p seed=0,1,2 --jobs 3` (a sweep of 3 runs). Exit code: 0 all ok, 1 some run "
               "failed, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebook paths, names, stems or unique prefixes such as 03 (default: every "
                             "NN_*.ipynb in --notebooks-dir)")
    parser.add_argument("--profile", choices=PROFILES, default="quick",
                        help="value of each notebook's `profile` parameter (default: %(default)s)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", dest="params",
                        help="set a notebook parameter (a Python literal, else a string); a,b,c makes a grid and "
                             "grids expand into their product; injected only into notebooks that declare NAME")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="notebooks executed at the same time (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder: one subfolder per run, plus summary.csv (default: runs/<profile>)")
    parser.add_argument("--figures", default="figures", metavar="DIR",
                        help="where the figures of successful runs are copied (default: %(default)s)")
    parser.add_argument("--notebooks-dir", default=None, metavar="DIR",
                        help="folder of the notebooks (default: ./notebooks, else the repository's)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="wall-time limit of each run; the run is then interrupted and failed (default: none)")
    parser.add_argument("--kernel", default=None, metavar="NAME",
                        help="Jupyter kernel (default: the notebook's kernelspec, else python3)")
    parser.add_argument("--force", action="store_true", help="rerun runs that already finished ok")
    parser.add_argument("--list", action="store_true", help="list the notebooks and their parameters, then exit")
    parser.add_argument("--dry-run", action="store_true", help="print the planned runs, then exit")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always show the progress bar (default: only on a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def _print_list(notebooks: Sequence[Path]) -> None:
    for path in notebooks:
        print(path.name)
        params = notebook_parameters(path)
        if not params:
            print("    (no parameters cell)")
        width = max((len(n) for n in params), default=0)
        for name, info in params.items():
            comment = f"  # {info['help']}" if info["help"] else ""
            print(f"    {name:<{width}} = {info['default']}{comment}")


def _share_cores(jobs: int) -> None:
    """Give each of the ``jobs`` kernels its share of the cores (kernels inherit the environment), so that parallel
    notebooks do not oversubscribe the machine; a thread count the user set is kept."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    os.environ.setdefault("JMLKIT_HEADLESS", "1")  # no front end: notebooks skip their live widgets


def main_run(argv: Sequence[str] | None = None) -> int:
    """Command line entry of ``jmlkit run``; returns the exit code.

    ``argv`` are the arguments after ``run`` (a leading ``"run"`` is tolerated);
    None reads ``sys.argv[1:]``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"argument -j/--jobs: expected a positive int, but got {args.jobs}")
    if args.timeout is not None and not args.timeout > 0:
        parser.error(f"argument --timeout: expected a positive number of seconds, but got {args.timeout:g}")

    def warn(msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr)

    try:
        notebooks = resolve_notebooks(args.notebooks, args.notebooks_dir)
        if args.list:
            _print_list(notebooks)
            return 0
        grid = parse_assignments(args.params)
        out = Path(args.out) if args.out is not None else Path("runs") / args.profile
        runs = plan_runs(notebooks, grid, profile=args.profile, out_dir=out, warn=warn)
    except ValueError as err:
        parser.error(str(err))
    if args.dry_run:
        for run in runs:
            state = "cached" if not args.force and _cached_result(run) is not None else "run"
            print(f"[{state}] {run.name}  {json.dumps(run.parameters, default=repr)}")
        print(f"{len(runs)} run(s) -> {out}")
        return 0

    _share_cores(args.jobs)
    results = run_notebooks(runs, jobs=args.jobs, kernel_name=args.kernel, timeout=args.timeout,
                            force=args.force, progress=args.progress)
    figures = collect_figures(results, args.figures)
    summary = write_summary(results, out / SUMMARY_FILE)
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "failed", "interrupted", "pending")}
    n_cached = sum(r.cached for r in results)
    print(f"{counts['ok']} ok ({n_cached} cached), {counts['failed']} failed"
          + "".join(f", {counts[s]} {s}" for s in ("interrupted", "pending") if counts[s])
          + f"; summary: {summary}; {len(figures)} figure(s) in {args.figures}")
    for res in results:
        if res.status == "failed":
            print(f"FAILED {res.run.name}: {res.error}\n       see {res.run.executed_notebook}")
    if counts["interrupted"] or counts["pending"]:
        return 130
    return 1 if counts["failed"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_run())
