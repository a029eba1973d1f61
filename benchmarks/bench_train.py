"""The training engine against a bare loop, and the models' throughput, on the CPU or a GPU.

1. **Engine / bare loop** (the default part). For each data set, measured in this run, alternating, ``--reps`` times
   each (the median is reported):

   * ``fit``: :func:`jmlkit.engine.fit` of the configuration (CE+JML on hard labels, the ``small`` UNet in the
     channels-last layout, fused AdamW, batch 16, mixed precision on CUDA), no run folder; its training time is the
     sum of its epochs' ``time_s`` (batches, objective, loss, backward, AdamW, schedule, logging), its evaluation
     one :func:`~jmlkit.engine.evaluation_pass` (every metric) over the test scenes, timed around the call on the
     trained model;
   * the bare loop: the same model (same seed, same layout), loss and AdamW over the same scenes pre-stacked as
     tensors on the device, in batches of the same size, in ten lines (``loss_fn(model(x), y); zero_grad;
     backward; step``, under the same autocast), and a bare inference pass ``softmax(model(x))`` over the test
     scenes.

   Prints times, training images/s and the ratios engine / bare (goals: training <= 1.1x, evaluation <= 1.2x).
   Data sets: ``quick`` (the quick profile's scenes, 16x16, the first 256, 6 epochs) and ``large`` (the large
   regime's 32x32 scenes with one thick digit, the first 256, 4 epochs).

2. **Throughput** (``--throughput``): images/s of a training step (forward, CE+JML, backward, AdamW) and of an
   inference pass of the small UNet and an SMP Unet-ResNet18 on ``--size`` RGB images, in the default and the
   channels-last memory format (on CUDA under mixed precision too), with no host sync inside the timed steps.

Usage (``benchmarks/README.md`` says how to run it on a GPU)::

    python benchmarks/bench_train.py                        # engine / bare loop, both data sets, 1 thread
    python benchmarks/bench_train.py --data quick --reps 5 --threads 2
    python benchmarks/bench_train.py --throughput --size 64 # also the throughput part
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from jmlkit.engine import TrainConfig, fit  # noqa: E402
from jmlkit.engine.data import evaluation_data, make_dataset  # noqa: E402
from jmlkit.engine.evaluation import evaluation_pass  # noqa: E402
from jmlkit.engine.runtime import autocast, memory_layout, resolve_device, seed_everything  # noqa: E402
from jmlkit.experiments.regimes import in_regime  # noqa: E402
from jmlkit.losses import get_loss  # noqa: E402
from jmlkit.models import build_model, count_parameters  # noqa: E402
from jmlkit.profiles import regime_settings  # noqa: E402

DATA = {"quick": ({}, 6), "large": (regime_settings("full")["large"], 4)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def config_of(name: str, threads: int, device: str) -> TrainConfig:
    overrides, epochs = DATA[name]
    base = TrainConfig.from_profile("quick", labels="hard", loss="ce+jml", train_limit=256, eval_limit=256,
                                    val_split=None, num_threads=threads, device=device)
    return in_regime(base, overrides).replace(epochs=epochs)


def engine(config: TrainConfig) -> dict:
    result = fit(config, progress=False)
    items = evaluation_data(config)
    device = next(result.model.parameters()).device
    sync(device)
    t = time.perf_counter()
    evaluation_pass(result.model, items, num_classes=11, batch_size=config.eval_batch_size, amp=config.amp)
    sync(device)
    return {"train_s": float(result.history["time_s"].sum()), "eval_s": time.perf_counter() - t,
            "fit_s": float(result.metrics["train_time_s"])}


def bare(config: TrainConfig) -> dict:
    device = resolve_device(config.device)
    train = make_dataset(config.dataset, config.train_split, **config.dataset_kwargs).tensors()
    test = make_dataset(config.dataset, config.eval_split, **config.dataset_kwargs).tensors()
    x, y = train["image"][:config.train_limit].to(device), train["label"][:config.train_limit].to(device)
    xt = test["image"][:len(evaluation_data(config))].to(device)
    seed_everything(config.seed)
    model = build_model(config.model, num_classes=11, in_channels=x.shape[1])
    model = model.to(device, memory_format=memory_layout(config.channels_last))  # as fit's
    loss_fn = get_loss(config.loss, ignore_index=config.ignore_index)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)  # as fit's
    g = torch.Generator().manual_seed(config.seed)
    b = config.batch_size
    sync(device)
    t = time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x) - b + 1, b):
            rows = order[i:i + b]
            with autocast(device, config.amp):
                loss = loss_fn(model(x[rows]), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync(device)
    train_s = time.perf_counter() - t
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(xt), config.eval_batch_size):
            with autocast(device, config.amp):
                logits = model(xt[i:i + config.eval_batch_size])
            torch.softmax(logits.float(), dim=1)
    sync(device)
    return {"train_s": train_s, "eval_s": time.perf_counter() - t}


def engine_against_bare(names: list[str], reps: int, threads: int, device: str) -> None:
    for name in names:
        config = config_of(name, threads, device)
        rows: dict[str, list[dict]] = {"fit": [], "bare": []}
        for _ in range(reps):
            rows["fit"].append(engine(config))
            torch.set_num_threads(threads)
            rows["bare"].append(bare(config))
        med = {way: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for way, rs in rows.items()}
        f, b = med["fit"], med["bare"]
        size = config.dataset_kwargs.get("size")
        images = config.train_limit // config.batch_size * config.batch_size * config.epochs
        tr, ev = f["train_s"] / b["train_s"], f["eval_s"] / b["eval_s"]
        print(f"{name} ({config.train_limit} scenes {size}x{size}, {config.epochs} epochs, batch {config.batch_size}): "
              f"training fit {f['train_s']:.2f} s ({images / f['train_s']:.0f} img/s) / bare {b['train_s']:.2f} s "
              f"({images / b['train_s']:.0f} img/s) = {tr:.2f}x; evaluation fit {f['eval_s']:.3f} s / bare "
              f"{b['eval_s']:.3f} s = {ev:.2f}x; whole fit {f['fit_s']:.2f} s", flush=True)
        print(f"  goals: training <= 1.1x {'met' if tr <= 1.1 else 'NOT met'}, evaluation <= 1.2x "
              f"{'met' if ev <= 1.2 else 'NOT met'}", flush=True)


def throughput(name: str, *, device: torch.device, batch: int, size: int, steps: int, amp: bool = False,
               channels_last: bool = False, warmup: int = 3) -> dict:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(name, num_classes=11, in_channels=3).to(device, memory_format=fmt)
    loss_fn = get_loss("ce+jml", ignore_index=255)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 11, (batch, size, size), device=device)

    def train_step() -> None:
        with autocast(device, amp):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(step, n: int) -> float:  # one sync at each end: none inside the timed steps
        for _ in range(warmup):
            step()
        sync(device)
        t = time.perf_counter()
        for _ in range(n):
            step()
        sync(device)
        return (time.perf_counter() - t) / n

    model.train()
    train_s = timed(train_step, steps)
    model.eval()
    with torch.no_grad():
        def eval_step() -> None:
            with autocast(device, amp):
                model(x)
        eval_s = timed(eval_step, steps)
    return {"model": name, "params_M": count_parameters(model) / 1e6, "train_img_per_s": batch / train_s,
            "eval_img_per_s": batch / eval_s, "train_step_ms": 1000 * train_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="'auto' (cuda when available), 'cpu', 'cuda', ...")
    parser.add_argument("--skip-engine", action="store_true", help="leave out the engine / bare-loop part")
    parser.add_argument("--throughput", action="store_true", help="also the throughput part")
    parser.add_argument("--batch", type=int, default=16, help="throughput: batch size")
    parser.add_argument("--size", type=int, default=64, help="throughput: image side")
    parser.add_argument("--steps", type=int, default=8, help="throughput: timed steps per model")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{os.cpu_count()} cores"
    print(f"torch {torch.__version__}, device {device} ({where}), {args.threads} thread(s); medians of {args.reps}")
    if not args.skip_engine:
        engine_against_bare(args.data, args.reps, args.threads, args.device)
    if args.throughput:
        variants = ([{}, {"channels_last": True}] if device.type != "cuda"
                    else [{}, {"amp": True}, {"amp": True, "channels_last": True}])
        for name in ("small", "unet-resnet18"):
            for v in variants:
                r = throughput(name, device=device, batch=args.batch, size=args.size, steps=args.steps, **v)
                tag = "+".join(k for k in v) or "fp32"
                print(f"{name:>14} {tag:>18}: {r['params_M']:.2f} M params, train {r['train_img_per_s']:.1f} img/s "
                      f"({r['train_step_ms']:.0f} ms/step), eval {r['eval_img_per_s']:.1f} img/s "
                      f"({args.batch} x {args.size}x{args.size})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
