"""Notebook parameters: ``-p name=value`` options, grids, run names, and a notebook's ``parameters`` cell.

A value is a Python literal (``ast.literal_eval``) and falls back to the string itself, unless it
starts or ends like a literal (a bracket or a quote: ``[1,2`` is a mistake, not a string); a value
with top-level commas is a grid (``seed=0,1,2``) and the runs are the product over all grids. A
run's name is the notebook stem plus its overrides, keys sorted (:func:`run_name`).

**Checked before any kernel starts** (:func:`parameter_problem`). A value must have the type of the
notebook's default: an int default takes an int, a float default an int or a float, a bool a bool,
a str a str, a list or tuple default a list or tuple (whose elements have the type of the default's
elements when it has any), a dict a dict; a ``None`` default (or one that is not a literal) takes
anything, and ``None`` is also taken where the parameter's comment mentions ``None``. A notebook may
list the allowed values of a parameter in its ``parameters`` cell's metadata,
``{"jmlkit": {"choices": {"name": [...]}}}`` (papermill ignores it; :func:`parameter_choices`): a
value, or each element of a list value, must then be one of them.

Example:
    >>> parse_assignments(["seed=0,1", "loss=ce+jml"])
    {'seed': [0, 1], 'loss': ['ce+jml']}
    >>> expand_grid({"seed": [0, 1], "loss": ["ce+jml"]})
    [{'seed': 0, 'loss': 'ce+jml'}, {'seed': 1, 'loss': 'ce+jml'}]
    >>> run_name("01_jaccard_losses", {"seed": 1, "loss": "ce+jml"})
    '01_jaccard_losses__loss=ce+jml,seed=1'
"""
from __future__ import annotations

import ast
import hashlib
import io
import itertools
import json
import os
import re
import tokenize
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmlkit._checks import check_str

__all__ = [
    "RUNNER_PARAMETERS",
    "parse_value",
    "parse_assignments",
    "expand_grid",
    "run_name",
    "canonical",
    "find_parameters_cell",
    "parameters_cells",
    "notebook_parameters",
    "parameter_choices",
    "parameter_problem",
    "read_notebook",
]

#: Parameters the runner sets itself (not through ``-p``).
RUNNER_PARAMETERS = ("profile", "output_dir")
_MAX_NAME = 120  # longer run names are shortened with a hash


# --------------------------------------------------------------------------- -p options
_LITERAL_ENDS = ("[", "(", "{", "'", '"', "]", ")", "}")


def parse_value(text: str) -> Any:
    """Parse one ``-p`` value: a Python literal, else the string itself.

    Text that starts or ends with a bracket or a quote is meant as a literal: when it is not one, a
    ``ValueError`` says why.

    >>> parse_value("3"), parse_value("1e-3"), parse_value("True"), parse_value("ce+jml")
    (3, 0.001, True, 'ce+jml')
    >>> parse_value("[1, 2]"), parse_value("'quoted'")
    ([1, 2], 'quoted')
    >>> parse_value("[1,2")
    Traceback (most recent call last):
    ...
    ValueError: Expected `text` to be a Python literal (it starts or ends with a bracket or a quote), but got '[1,2' ('[' was never closed).
    """
    stripped = check_str("text", text, nonempty=False).strip()
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        if stripped.startswith(_LITERAL_ENDS) or stripped.endswith(_LITERAL_ENDS):
            why = err.msg if isinstance(err, SyntaxError) else f"{type(err).__name__}: {err}"
            raise ValueError(f"Expected `text` to be a Python literal (it starts or ends with a bracket or a quote), "
                             f"but got {stripped!r} ({why}).") from None
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
        try:
            grid[name] = [parse_value(p) for p in parts]
        except ValueError as err:
            raise ValueError(str(err).replace("`text`", f"`-p {name}`", 1)) from None
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


def canonical(params: Mapping[str, Any]) -> str:
    """Parameters as canonical JSON (sorted keys): equal parameters give equal text."""
    return json.dumps(params, sort_keys=True, default=repr)


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
        digest = hashlib.sha1(canonical(overrides).encode()).hexdigest()[:12]
        name = f"{stem}__{digest}"
    return name


# --------------------------------------------------------------------------- the parameters cell
def read_notebook(path: str | os.PathLike):
    """The notebook at ``path`` as an nbformat v4 node."""
    import nbformat

    with open(path, encoding="utf-8") as fh:
        return nbformat.read(fh, as_version=4)


def _cell_tags(cell: Mapping[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def parameters_cells(nb: Mapping[str, Any]) -> list[int]:
    """Indices of the cells tagged ``parameters``."""
    return [i for i, c in enumerate(nb["cells"]) if "parameters" in _cell_tags(c)]


def find_parameters_cell(nb: Mapping[str, Any]) -> int:
    """Index of the one cell tagged ``parameters``; ValueError if there are none or several.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
    ...     nbformat.v4.new_code_cell("seed = 0", metadata={"tags": ["parameters"]})])
    >>> find_parameters_cell(nb)
    1
    """
    found = parameters_cells(nb)
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
    ...     'profile = "quick"  # smoke, quick or full\\nseed: int = 0', metadata={"tags": ["parameters"]})])
    >>> notebook_parameters(nb)
    {'profile': {'default': '"quick"', 'help': 'smoke, quick or full'}, 'seed': {'default': '0', 'help': ''}}
    """
    if isinstance(nb, (str, os.PathLike)):
        nb = read_notebook(Path(nb))
    cells = parameters_cells(nb)
    if not cells:
        return {}
    source = _source(nb["cells"][cells[0]])
    try:
        return _parse_parameters_source(source)
    except SyntaxError as err:
        raise ValueError(f"Expected the 'parameters' cell to be valid Python, but got a syntax error: {err}.") from err


# --------------------------------------------------------------------------- checking -p values
def parameter_choices(nb: Mapping[str, Any] | str | os.PathLike) -> dict[str, list[Any]]:
    """The allowed values a notebook declares: ``metadata["jmlkit"]["choices"]`` of its first ``parameters`` cell.

    ``{}`` when it declares none; a ``ValueError`` when the declaration is not ``{name: [values...]}``.

    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('kind = "a"', metadata={
    ...     "tags": ["parameters"], "jmlkit": {"choices": {"kind": ["a", "b"]}}})])
    >>> parameter_choices(nb)
    {'kind': ['a', 'b']}
    """
    if isinstance(nb, (str, os.PathLike)):
        nb = read_notebook(Path(nb))
    cells = parameters_cells(nb)
    if not cells:
        return {}
    meta = nb["cells"][cells[0]].get("metadata", {}).get("jmlkit", {})
    choices = meta.get("choices", {}) if isinstance(meta, Mapping) else {}
    if not isinstance(choices, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and v for k, v in choices.items()):
        raise ValueError(f"Expected the 'parameters' cell's metadata jmlkit.choices to map names to non-empty lists, "
                         f"but got {choices!r}.")
    return {k: list(v) for k, v in choices.items()}


def _kind(value: Any) -> str:
    """The type family of a default, as a value must match it: bool, int, float, str, list, dict or "" (any)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return ""


def _matches(kind: str, value: Any) -> bool:
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return not kind or _kind(value) == kind


_NAMES = {"bool": "a bool", "int": "an int", "float": "a number (int or float)", "str": "a str",
          "list": "a list", "dict": "a dict"}
_PLURALS = {"bool": "bools", "int": "ints", "float": "numbers", "str": "strs", "list": "lists", "dict": "dicts"}


def parameter_problem(name: str, value: Any, default: str, *, help: str = "",
                      choices: Sequence[Any] | None = None) -> str | None:
    """Why ``value`` cannot be given to a parameter whose default is the source text ``default``; ``None`` when it can.

    The rules are in the module docs. The text reads after "Expected `-p NAME` of NOTEBOOK to be".

    >>> parameter_problem("seed", "abc", "0")
    "an int (its default is 0), but got 'abc' (str)"
    >>> parameter_problem("epsilon", 1, "0.1") is None, parameter_problem("model", "x", "None") is None
    (True, True)
    >>> parameter_problem("configs", ["nosuch"], '["a"]', choices=["a", "b"])
    "a list of 'a', 'b', but got ['nosuch'] ('nosuch' is none of them)"
    """
    try:
        default_value = ast.literal_eval(default)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        default_value = None  # an expression: its type is not known before the kernel runs it
    kind = _kind(default_value)
    got = f"but got {value!r} ({type(value).__name__})"
    if value is None and (not kind or re.search(r"\bNone\b", help)):
        return None
    if not _matches(kind, value):
        return f"{_NAMES[kind]} (its default is {default}), {got}"
    items = list(value) if kind == "list" else [value]
    if kind == "list" and default_value:
        inner = {_kind(v) for v in default_value}
        inner = {"float"} if inner == {"int", "float"} else inner
        if len(inner) == 1 and (bad := [v for v in items if not _matches(next(iter(inner)), v)]):
            return (f"a list of {_PLURALS[next(iter(inner))]} (its default is {default}), "
                    f"but got {value!r} ({bad[0]!r} is a {type(bad[0]).__name__})")
    if choices:
        wanted = ", ".join(map(repr, choices))
        bad = [v for v in items if v not in choices]
        if bad:
            what = f"a list of {wanted}" if kind == "list" else f"one of {wanted}"
            return f"{what}, but got {value!r}" + (f" ({bad[0]!r} is none of them)" if kind == "list" else "")
    return None
