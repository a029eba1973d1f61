"""The README's speed block: the benchmarks' committed outputs (``results/benchmarks/*.txt``) as tables.

``benchmarks/bench_losses.py`` and ``benchmarks/bench_train.py`` print fixed-format lines (one loss per line; one
data set per line); their outputs, redirected to ``results/benchmarks/losses.txt`` and ``train.txt`` with a ``#``
line naming the command, are read here, so that the README's speed numbers are the files' (``python -m jmlkit
readme`` writes the block, its test compares it):

* :func:`loss_rows`: per loss and allocator state, the ratio of its time to cross-entropy's and of its peak memory;
* :func:`train_rows`: per data set, the engine's training and evaluation times against the bare loop's;
* :func:`profile_rows`: per notebook, the full profile's training compute before and after a commit, from
  ``benchmarks/bench_profile.py``'s ``profile.csv`` (one row per configuration: seeds and seconds a run).

Example:
    >>> text = "device cpu, threads 2, logits (8, 21, 256, 256), rounds 9, validate_args=True, allocator cold\\n" \\
    ...        "jml (soft)                       54.6    1.05        94   0.73\\n"
    >>> loss_rows(text)
    {('jml (soft)', 'cold'): {'x_ce': 1.05, 'mem_x_ce': 0.73}}
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

__all__ = ["BENCHMARKS_DIR", "loss_rows", "train_rows", "profile_rows", "speed_markdown"]

#: The benchmarks' outputs, beside the results folders (``results/benchmarks``).
BENCHMARKS_DIR = Path("benchmarks")

_ALLOCATOR = re.compile(r"allocator (?P<allocator>\w+)")
_LOSS = re.compile(r"^(?P<name>[A-Za-z][\w ]*\([a-z]+\))\s+(?P<ms>[\d.]+)\s+(?P<x>[\d.]+)\s+(?P<mb>[\d.]+|-)\s+"
                   r"(?P<mx>[\d.]+|-)\s*$")
_TRAIN = re.compile(r"^(?P<data>\w+) \((?P<what>[^)]*)\): training fit (?P<fit>[\d.]+) s .*?= (?P<train>[\d.]+)x; "
                    r"evaluation fit (?P<efit>[\d.]+) s / bare (?P<ebare>[\d.]+) s = (?P<eval>[\d.]+)x")


def loss_rows(text: str) -> dict[tuple[str, str], dict[str, float | None]]:
    """``{(loss, allocator): {"x_ce", "mem_x_ce"}}`` from ``bench_losses.py``'s output (several runs may follow one
    another, each after its ``device ... allocator ...`` line; ``mem_x_ce`` is None where memory was not measured)."""
    rows: dict[tuple[str, str], dict[str, float | None]] = {}
    allocator = "cold"
    for line in text.splitlines():
        found = _ALLOCATOR.search(line)
        if line.startswith("device ") and found:
            allocator = found.group("allocator")
            continue
        match = _LOSS.match(line)
        if match:
            mx = match.group("mx")
            rows[(match.group("name").strip(), allocator)] = {
                "x_ce": float(match.group("x")), "mem_x_ce": None if mx == "-" else float(mx)}
    return rows


def train_rows(text: str) -> dict[str, dict[str, float | str]]:
    """``{data set: {"what", "train", "eval"}}``: the engine / bare-loop ratios of ``bench_train.py``'s output."""
    return {m.group("data"): {"what": m.group("what"), "train": float(m.group("train")), "eval": float(m.group("eval"))}
            for m in map(_TRAIN.match, text.splitlines()) if m}


def profile_rows(text: str) -> dict[str, dict[str, float]]:
    """``{notebook: {"runs", "before_s", "after_s"}}`` and ``"all"``: the training compute (seconds of one core) of
    the full profile's runs per notebook, from ``bench_profile.py``'s CSV (``<version>_run_s`` times ``seeds``)."""
    out: dict[str, dict[str, float]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        seeds = int(row["seeds"])
        for key in (row["notebook"], "all"):
            acc = out.setdefault(key, {"runs": 0, "before_s": 0.0, "after_s": 0.0})
            acc["runs"] += seeds
            acc["before_s"] += seeds * float(row["before_run_s"])
            acc["after_s"] += seeds * float(row["after_run_s"])
    if "all" in out:
        out["all"] = out.pop("all")  # last
    return out


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def _profile_markdown(folder: Path) -> list[str]:
    table, note = folder / "profile.csv", folder / "profile.txt"
    if not table.is_file():
        return [f"No `{table.name}` in `{folder.as_posix()}` yet."]
    rows = profile_rows(table.read_text(encoding="utf-8"))
    head = next((line.lstrip("# ").strip() for line in note.read_text(encoding="utf-8").splitlines()
                 if line.startswith("# before:")), "") if note.is_file() else ""
    out = [f"Full profile, training compute (one core; {head})" if head else "Full profile, training compute (one core)",
           "", "| notebook | runs | before | after | after / before |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        label = "all" if name == "all" else f"`{name}`"
        out.append(f"| {label} | {row['runs']} | {_hours(row['before_s'])} | {_hours(row['after_s'])} | "
                   f"{row['after_s'] / row['before_s']:.2f}× |")
    if "all" in rows:
        bound = rows["all"]["after_s"] / 2
        out += ["", f"On 2 cores (two one-thread jobs) the full profile's training takes at least half of it: "
                    f"{_hours(rows['all']['before_s'] / 2)} before, {_hours(bound)} after; this bound "
                    f"{'is under' if bound <= 7200 else 'is over'} the goal of 2 h (an estimate: the profile was not "
                    f"timed end to end)."]
    return out


def _cell(rows: dict, name: str, allocator: str, key: str = "x_ce") -> str:
    value = rows.get((name, allocator), {}).get(key)
    return "–" if value is None else f"{value:.2f}"


def speed_markdown(folder: str | Path) -> str:
    """The block's tables from ``<folder>/losses.txt``, ``train.txt`` and ``profile.csv`` (with ``profile.txt``'s
    ``# before:`` line); a line says which is missing."""
    folder = Path(folder)
    out: list[str] = []
    losses = folder / "losses.txt"
    if losses.is_file():
        rows = loss_rows(losses.read_text(encoding="utf-8"))
        names = list(dict.fromkeys(name for name, _ in rows))
        out += ["| loss (forward + backward) | × CE, cold allocator | × CE, warm allocator | peak memory × CE |",
                "|---|---|---|---|"]
        out += [f"| {name} | {_cell(rows, name, 'cold')} | {_cell(rows, name, 'warm')} | "
                f"{_cell(rows, name, 'cold', 'mem_x_ce')} |" for name in names]
    else:
        out.append(f"No `{losses.name}` in `{folder.as_posix()}` yet.")
    out.append("")
    train = folder / "train.txt"
    if train.is_file():
        rows = train_rows(train.read_text(encoding="utf-8"))
        out += ["| data | `fit` training / bare loop | evaluation pass / bare inference |", "|---|---|---|"]
        out += [f"| {name} ({row['what']}) | {row['train']:.2f}× | {row['eval']:.2f}× |" for name, row in rows.items()]
    else:
        out.append(f"No `{train.name}` in `{folder.as_posix()}` yet.")
    out.append("")
    out += _profile_markdown(folder)
    return "\n".join(out) + "\n"
