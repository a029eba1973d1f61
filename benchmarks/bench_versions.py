"""``fit`` of recorded run configurations with this checkout's jmlkit and with an earlier commit's, alternating.

Each configuration (a run's ``config.json``, e.g. from ``results/full/records``) is trained ``--reps`` times by each
version, one after the other, in fresh processes with one thread (as ``jmlkit run --jobs 2`` runs each job); the
earlier commit is checked out in a temporary git worktree and imported from there; a distillation student gets a
teacher of its recorded teacher's architecture with fresh weights (as in ``bench_profile.py``, whose child process
this is). Prints the wall time of ``fit`` and the training time it records, per version, and their ratio: how much
faster the full profile's runs train now, measured in one run on one machine, at their full length (a check of
``bench_profile.py``'s estimate, which times each configuration at two short lengths).

Usage::

    python benchmarks/bench_versions.py --before 396bf37 \\
        results/full/records/02_label_smoothing/runs/jml_bls_eps__seed0__*/config.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_profile import before_checkout, fit_in_child, teacher_spec  # noqa: E402  (the same child, worktree, teachers)


def run(root: Path, config: str) -> dict:
    """The recorded run of ``config`` at its own length (a distillation student with a fresh teacher of its
    recorded teacher's architecture)."""
    return fit_in_child(root, config, json.loads(Path(config).read_text())["epochs"], teacher_spec(Path(config)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", help="config.json files of recorded runs")
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args(argv)
    with before_checkout(args.before) as (before, after):
        print(f"before: {args.before}, after: {after} (this checkout); {args.reps} rep(s), one thread, alternating")
        totals = {"before": 0.0, "after": 0.0}
        for config in args.configs:
            times: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.reps):
                times["before"].append(run(before, config))
                times["after"].append(run(ROOT, config))
            med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in times.items()}
            for k in totals:
                totals[k] += med[k]["wall_s"]
            b, a = med["before"], med["after"]
            print(f"{Path(config).parent.name}: fit wall {b['wall_s']:.1f} s -> {a['wall_s']:.1f} s "
                  f"({a['wall_s'] / b['wall_s']:.2f}x); recorded train_time_s {b['train_time_s']:.1f} -> "
                  f"{a['train_time_s']:.1f}; mIoU_D {b['mIoU_D']:.4f} -> {a['mIoU_D']:.4f}", flush=True)
        print(f"all: {totals['before']:.1f} s -> {totals['after']:.1f} s ({totals['after'] / totals['before']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
