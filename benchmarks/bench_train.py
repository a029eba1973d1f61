"""Training speed on the CPU.

1. Images per second of a training step (forward, CE+JML loss, backward, AdamW) and of an
   evaluation forward pass, for the small UNet (preset ``small``) and an SMP Unet-ResNet18, on
   64×64 RGB images, batch 16.
2. Wall time of the quick label-smoothing comparison of notebook 02: CE with hard labels, CE + label
   smoothing, CE+SJL + smoothing, CE+JML + smoothing (ε = 0.1), trained from scratch in the quick profile
   of :mod:`jmlkit.profiles`, the experiment a class runs live. Target: under 3 minutes on 2 cores.

Usage::

    python benchmarks/bench_train.py                  # both parts
    python benchmarks/bench_train.py --skip-comparison --threads 2
    python benchmarks/bench_train.py --json bench_train.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from jmlkit.losses import get_loss
from jmlkit.models import build_model, count_parameters
from jmlkit.engine import TrainConfig, fit

#: The four configurations of notebook 02's quick comparison (what a class runs live).
COMPARISON = ("ce_hard", "ce_ls", "sjl_ls", "jml_ls")


def throughput(name: str, *, batch: int, size: int, steps: int, warmup: int = 2) -> dict:
    torch.manual_seed(0)
    model = build_model(name, num_classes=11, in_channels=3)
    loss_fn = get_loss("ce+jml", ignore_index=255)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 11, (batch, size, size))

    def train_step() -> None:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(warmup):
        train_step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        train_step()
        times.append(time.perf_counter() - t)
    model.eval()
    eval_times = []
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        for _ in range(steps):
            t = time.perf_counter()
            model(x)
            eval_times.append(time.perf_counter() - t)
    med = sorted(times)[len(times) // 2]
    eval_med = sorted(eval_times)[len(eval_times) // 2]
    return {
        "model": name,
        "params_M": count_parameters(model) / 1e6,
        "train_img_per_s": batch / med,
        "eval_img_per_s": batch / eval_med,
        "train_step_ms": 1000 * med,
    }


def comparison(threads: int | None) -> dict:
    """Train the four configurations of the quick profile of notebook 02 from scratch, one after the other."""
    import tempfile

    from jmlkit import experiments

    base = TrainConfig.from_profile("quick", num_threads=threads)  # None keeps the profile's
    configs = {k: v for k, v in experiments.smoothing_configs(base).items() if k in COMPARISON}
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in configs.items():
            t = time.perf_counter()
            table = experiments.run_configs({name: config}, seeds=[0], output_dir=tmp, force=True, verbose=False)
            row = table.iloc[0]
            rows.append({"config": name, "wall_s": time.perf_counter() - t, "mIoU_D": float(row["mIoU_D"]),
                         "ECE_D": float(row["ECE_D"])})
            print(f"  {name}: {rows[-1]['wall_s']:.1f} s, mIoU_D={rows[-1]['mIoU_D']:.3f}, "
                  f"ECE_D={rows[-1]['ECE_D']:.3f}", flush=True)
    return {"runs": rows, "total_s": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per model")
    parser.add_argument("--skip-comparison", action="store_true", help="only the throughput part")
    parser.add_argument("--skip-throughput", action="store_true", help="only the comparison part")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out: dict = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
    }
    print(f"torch {out['torch']}, {out['threads']} threads, batch {args.batch}, {args.size}x{args.size}")
    if not args.skip_throughput:
        out["throughput"] = []
        for name in ("small", "unet-resnet18"):
            r = throughput(name, batch=args.batch, size=args.size, steps=args.steps)
            out["throughput"].append(r)
            print(f"{name:>14}: {r['params_M']:.2f} M params, train {r['train_img_per_s']:.1f} img/s "
                  f"({r['train_step_ms']:.0f} ms/step), eval {r['eval_img_per_s']:.1f} img/s", flush=True)
    if not args.skip_comparison:
        print("quick label-smoothing comparison (the 4 runs of notebook 02, quick profile):")
        out["comparison"] = comparison(args.threads)
        total = out["comparison"]["total_s"]
        print(f"total {total:.1f} s ({'within' if total < 180 else 'over'} the 3-minute target)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
