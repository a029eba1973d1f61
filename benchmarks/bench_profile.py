"""The full profile's training time, before and after: every configuration of the committed full records, timed
with this checkout's jmlkit and with an earlier commit's, and scaled to the profile's seeds and epochs.

The full profile takes hours of both cores, so this does not run it: it times one seed of each configuration
(``results/full/records/<notebook>/runs/<name>__seed<k>__<hash>``; 42 configurations, 202 runs) at two short
lengths, ``--epochs`` (default 1 and 3), in fresh one-thread processes as ``jmlkit run`` trains them, the two
versions alternating. A run's wall time is linear in its epochs (a fixed part: data, model, the teacher's logits,
the final evaluation; and a part per epoch), so the two lengths give both parts and the recorded run's length its
time. Summed over the configurations, times their number of seeds, that is the profile's training compute; with
two one-thread jobs on two cores its wall time is at least half of it (the runner's jobs wait on nothing but a
teacher, which trains first).

A distillation student gets a teacher of its recorded teacher's architecture with fresh weights (speed does not
depend on them). Prints one line per configuration and the totals; ``--out`` also writes them as CSV.

Usage::

    python benchmarks/bench_profile.py --before 396bf37 --out results/benchmarks/profile.csv
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "results" / "full" / "records"

#: The child: imports jmlkit from JMLKIT_ROOT (ahead of the editable install's finder) and trains the
#: configuration for the given number of epochs, without a run folder.
CHILD = r"""
import json, os, sys, time
sys.meta_path = [f for f in sys.meta_path if "editable" not in (getattr(f, "__module__", "") + repr(f)).lower()]
sys.path.insert(0, os.environ["JMLKIT_ROOT"])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
import jmlkit
from jmlkit.engine import TrainConfig, fit
from jmlkit.engine.data import make_dataset
from jmlkit.models import build_model
assert os.path.dirname(jmlkit.__file__) == os.path.join(os.environ["JMLKIT_ROOT"], "jmlkit"), jmlkit.__file__
torch.set_num_threads(1)
config = TrainConfig.from_json(sys.argv[1]).replace(out=None, epochs=int(sys.argv[2]))
start = time.perf_counter()
teacher = None
if config.teacher:
    spec = json.loads(sys.argv[3])
    item = make_dataset(config.dataset, "train", **config.dataset_kwargs)[0]
    teacher = build_model(spec["model"], num_classes=int(spec["num_classes"]), in_channels=item["image"].shape[0])
    config = config.replace(teacher=None)
result = fit(config, teacher=teacher, progress=False)
print(json.dumps({"wall_s": time.perf_counter() - start, "train_time_s": float(result.metrics["train_time_s"]),
                  "mIoU_D": float(result.metrics["mIoU_D"])}))
"""


def teacher_spec(config_file: Path, records: Path = RECORDS) -> dict | None:
    """What a fresh teacher for the run of ``config_file`` needs (its recorded teacher's model, the class count);
    ``None`` for a run without a teacher."""
    config = json.loads(Path(config_file).read_text())
    if not config.get("teacher"):
        return None
    tconfig = json.loads((records / config["teacher"] / "config.json").read_text())
    num_classes = len(json.loads((Path(config_file).parent / "metrics.json").read_text())["IoU_per_class"])
    return {"model": tconfig["model"], "num_classes": num_classes}


def configurations(records: Path) -> list[dict]:
    """One entry per configuration of the records: its notebook, name, seed-0 config file, seeds and epochs."""
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for config in sorted(records.glob("*/runs/*/config.json")):
        match = re.fullmatch(r"(?P<name>.+)__seed(?P<seed>\d+)__[0-9a-f]+", config.parent.name)
        if match is None:
            raise ValueError(f"Expected a run folder named <name>__seed<k>__<hash>, but got {config.parent}.")
        groups[(config.parents[2].name, match["name"])].append(config)
    out = []
    for (notebook, name), files in sorted(groups.items()):
        config = json.loads(files[0].read_text())
        out.append({"notebook": notebook, "name": name, "config": str(files[0]), "seeds": len(files),
                    "epochs": int(config["epochs"]), "teacher": teacher_spec(files[0], records)})
    return out


@contextlib.contextmanager
def before_checkout(revision: str) -> Iterator[tuple[Path, str]]:
    """A temporary git worktree of ``revision`` (removed afterwards) and the name of this checkout: its commit, and
    whether its tracked files have uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run([*git, "worktree", "add", "-q", "--detach", str(before), revision], check=True)
        try:
            rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 check=True).stdout.strip()
            dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                   text=True, check=True).stdout.strip()
            yield before, f"{rev}{' + uncommitted changes' if dirty else ''}"
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(before)], check=False)


def fit_in_child(root: Path, config: str, epochs: int, teacher: dict | None) -> dict:
    """``fit`` of a recorded configuration for ``epochs`` epochs, with ``root``'s jmlkit, in a fresh one-thread
    process: ``{"wall_s", "train_time_s", "mIoU_D"}``."""
    env = {**os.environ, "JMLKIT_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD, config, str(epochs), json.dumps(teacher)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"fit of {config} with {root}/jmlkit failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(root: Path, entry: dict, epochs: int) -> float:
    return fit_in_child(root, entry["config"], epochs, entry["teacher"])["wall_s"]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--records", type=Path, default=RECORDS, help="the full profile's records")
    parser.add_argument("--epochs", type=int, nargs=2, default=[1, 3], metavar=("SHORT", "LONG"))
    parser.add_argument("--only", default=None, help="a regular expression: time the matching configurations only")
    parser.add_argument("--out", type=Path, default=None, help="write the per-configuration table as CSV")
    args = parser.parse_args(argv)
    short, long = args.epochs
    if not 0 < short < long:
        parser.error(f"Expected --epochs SHORT LONG with 0 < SHORT < LONG, but got {short} {long}.")
    entries = configurations(args.records)
    if args.only:
        entries = [e for e in entries if re.search(args.only, f"{e['notebook']}/{e['name']}")]
    rows = []
    with before_checkout(args.before) as (before, after):
        print(f"# before: {args.before}, after: {after}; {len(entries)} configurations at {short} and {long} epochs, "
              f"one thread, alternating; {time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.2f}",
              flush=True)
        for entry in entries:
            row = {"notebook": entry["notebook"], "name": entry["name"], "seeds": entry["seeds"],
                   "epochs": entry["epochs"]}
            for version, root in (("before", before), ("after", ROOT)):
                t_short, t_long = run(root, entry, short), run(root, entry, long)
                per_epoch = (t_long - t_short) / (long - short)
                fixed = max(t_short - short * per_epoch, 0.0)
                row[f"{version}_fixed_s"] = round(fixed, 2)
                row[f"{version}_epoch_s"] = round(per_epoch, 3)
                row[f"{version}_run_s"] = round(fixed + entry["epochs"] * per_epoch, 1)
            rows.append(row)
            print(f"{entry['notebook']}/{entry['name']} ({entry['seeds']} seeds x {entry['epochs']} epochs): "
                  f"{row['before_run_s']:.0f} s -> {row['after_run_s']:.0f} s a run "
                  f"({row['after_run_s'] / row['before_run_s']:.2f}x)", flush=True)
    total = {v: sum(r[f"{v}_run_s"] * r["seeds"] for r in rows) for v in ("before", "after")}
    print(f"training compute of the {sum(r['seeds'] for r in rows)} runs: {hours(total['before'])} -> "
          f"{hours(total['after'])} ({total['after'] / total['before']:.2f}x); with two one-thread jobs on two cores "
          f"at least {hours(total['before'] / 2)} -> {hours(total['after'] / 2)} of wall time")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
