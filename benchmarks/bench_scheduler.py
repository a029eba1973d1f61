"""Training runs in series against a local Dask cluster: the quick profile of notebook 02's comparison.

The six configurations of notebook 02 (the paper's recipe, CE, CE+LS, CE+BLS, SJL+BLS, JML+LS), in the quick
profile's data regime, trained twice into fresh folders: once ``serial`` (one run after another in this
process, with every core for torch) and once on ``local:N`` (N worker processes, ``cores / N`` threads each,
cluster start-up included). It prints both wall times, their ratio (measured in the same run, on the same
machine), whether the two result tables are equal, and a *projection* (not a measurement) for a machine with
more cores.

Usage::

    python benchmarks/bench_scheduler.py                    # local:2
    python benchmarks/bench_scheduler.py --workers 4 --seeds 0 1
    python benchmarks/bench_scheduler.py --json bench_scheduler.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd

from jmlkit import experiments
from jmlkit.engine import TrainConfig
from jmlkit.profiles import regime_settings
from jmlkit.parallel import close_clusters, dask_client


def sweep(out: str, scheduler: str, seeds: list[int]) -> tuple[pd.DataFrame, float]:
    base = TrainConfig.from_profile("quick")
    configs = experiments.smoothing_configs(base, epsilon=0.1)
    t0 = time.perf_counter()
    runs = experiments.run_regimes(configs, regime_settings("quick"), seeds=seeds, output_dir=out, verbose=False,
                                   scheduler=scheduler)
    return runs, time.perf_counter() - t0


def numbers(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["run_dir", "cached", *[c for c in table.columns if "time" in c]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster (default: 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of each configuration (default: 0)")
    parser.add_argument("--project", type=int, default=16, help="cores of the projected machine (default: 16)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        serial, t_serial = sweep(os.path.join(tmp, "serial"), "serial", args.seeds)
        t0 = time.perf_counter()
        dask_client(f"local:{args.workers}", verbose=False)
        t_start = time.perf_counter() - t0
        dask, t_dask = sweep(os.path.join(tmp, "dask"), f"local:{args.workers}", args.seeds)
        close_clusters()
    n = len(serial)
    same = numbers(serial).equals(numbers(dask))
    diff = (numbers(serial).select_dtypes("number") - numbers(dask).select_dtypes("number")).abs().max().max()
    per_run_serial = t_serial / n
    per_run_worker = t_dask * args.workers / n  # worker-seconds per run at cores / workers threads
    threads = max(1, cores // args.workers)
    projected = math.ceil(n / args.project) * per_run_worker * threads  # one thread per run on each core
    result = {
        "machine": f"{platform.machine()}, {cores} cores", "runs": n, "workers": args.workers,
        "serial_s": round(t_serial, 1), "local_s": round(t_dask + t_start, 1), "cluster_start_s": round(t_start, 1),
        "speed_up": round(t_serial / (t_dask + t_start), 2), "tables_equal": bool(same),
        "max_abs_difference": float(diff),
        "projection": {"cores": args.project, "local_s": round(projected + t_start, 1),
                       "assumes": f"local:{args.project}, one single-threaded run per core, each as fast as a "
                                  f"{threads}-thread run here; no memory-bandwidth limit; not measured"},
    }
    print(f"{n} training runs of notebook 02 (quick profile), {cores} cores")
    print(f"  serial (torch on {cores} threads):          {t_serial:7.1f} s  ({per_run_serial:.1f} s per run)")
    print(f"  local:{args.workers} ({threads} thread(s) per worker):  {t_dask + t_start:7.1f} s  "
          f"(cluster start {t_start:.1f} s)")
    print(f"  speed-up serial / local:{args.workers}: {result['speed_up']:.2f}x (measured in this run)")
    print(f"  result tables equal: {same} (largest difference {diff:.3g}; thread counts differ: serial "
          f"{cores}, workers {threads})")
    print(f"  projection for {args.project} cores, local:{args.project} (not measured): "
          f"{math.ceil(n / args.project)} wave(s) of runs, about {result['projection']['local_s']:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
