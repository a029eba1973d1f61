"""The training engine against a bare loop: what ``fit`` costs beyond the network's own work.

For each data set, measured in this run, alternating, ``--reps`` times each (the median is reported):

* ``fit``: :func:`jmlkit.engine.fit` of the configuration (CE+JML on hard labels, the ``small`` UNet, AdamW, batch
  16), no run folder; its training time is the sum of its epochs' ``time_s`` (the loop: batches, objective, loss,
  backward, AdamW, schedule, logging) and its evaluation the one pass of :func:`~jmlkit.engine.evaluation_pass`
  (metrics included) over the test scenes, timed around the call on the trained model;
* the bare loop: the same model (same seed), loss and AdamW over the same scenes, pre-stacked as tensors, in the
  same shuffled batches' sizes, written in ten lines: ``loss_fn(model(x), y); zero_grad; backward; step``; and a bare
  inference pass: ``softmax(model(x))`` over the pre-stacked test scenes in batches of the same size.

Prints the times and the ratios engine / bare (goals: training ≤ 1.1×, evaluation ≤ 1.2×).

Data sets: ``quick`` (the quick profile's scenes, 16×16, the first 256, 6 epochs) and ``large`` (the large regime's
32×32 scenes with one thick digit, the first 256, 4 epochs).

Usage::

    python benchmarks/bench_engine.py                     # both data sets, 3 repetitions, 1 thread
    python benchmarks/bench_engine.py --data quick --reps 5 --threads 2
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
from jmlkit.engine.evaluation import evaluation_pass  # noqa: E402
from jmlkit.engine.data import evaluation_data, make_dataset  # noqa: E402
from jmlkit.engine.runtime import seed_everything  # noqa: E402
from jmlkit.experiments.regimes import in_regime  # noqa: E402
from jmlkit.losses import get_loss  # noqa: E402
from jmlkit.models import build_model  # noqa: E402
from jmlkit.profiles import regime_settings  # noqa: E402

DATA = {"quick": ({}, 6), "large": (regime_settings("full")["large"], 4)}


def config_of(name: str, threads: int) -> TrainConfig:
    overrides, epochs = DATA[name]
    base = TrainConfig.from_profile("quick", labels="hard", loss="ce+jml", train_limit=256, eval_limit=256,
                                    val_split=None, num_threads=threads)
    return in_regime(base, overrides).replace(epochs=epochs)


def engine(config: TrainConfig) -> dict:
    result = fit(config, progress=False)
    items = evaluation_data(config)
    t = time.perf_counter()
    evaluation_pass(result.model, items, num_classes=11, batch_size=config.eval_batch_size)
    return {"train_s": float(result.history["time_s"].sum()), "eval_s": time.perf_counter() - t,
            "fit_s": float(result.metrics["train_time_s"])}


def bare(config: TrainConfig) -> dict:
    train = make_dataset(config.dataset, config.train_split, **config.dataset_kwargs).tensors()
    test = make_dataset(config.dataset, config.eval_split, **config.dataset_kwargs).tensors()
    x, y = train["image"][:config.train_limit], train["label"][:config.train_limit]
    xt = test["image"][:len(evaluation_data(config))]
    seed_everything(config.seed)
    model = build_model(config.model, num_classes=11, in_channels=x.shape[1])
    loss_fn = get_loss(config.loss, ignore_index=config.ignore_index)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    g = torch.Generator().manual_seed(config.seed)
    b = config.batch_size
    t = time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - b + 1, b):
            rows = order[i:i + b]
            loss = loss_fn(model(x[rows]), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - t
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(xt), config.eval_batch_size):
            torch.softmax(model(xt[i:i + config.eval_batch_size]), dim=1)
    return {"train_s": train_s, "eval_s": time.perf_counter() - t}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores; medians of {args.reps}")
    for name in args.data:
        config = config_of(name, args.threads)
        rows: dict[str, list[dict]] = {"fit": [], "bare": []}
        for _ in range(args.reps):
            rows["fit"].append(engine(config))
            torch.set_num_threads(args.threads)
            rows["bare"].append(bare(config))
        med = {way: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for way, rs in rows.items()}
        f, b = med["fit"], med["bare"]
        size = config.dataset_kwargs.get("size")
        print(f"{name} ({config.train_limit} scenes {size}x{size}, {config.epochs} epochs, batch {config.batch_size}): "
              f"training fit {f['train_s']:.2f} s / bare {b['train_s']:.2f} s = {f['train_s'] / b['train_s']:.2f}x; "
              f"evaluation fit {f['eval_s']:.3f} s / bare {b['eval_s']:.3f} s = {f['eval_s'] / b['eval_s']:.2f}x; "
              f"whole fit {f['fit_s']:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
