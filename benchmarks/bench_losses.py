"""Forward + backward time of each loss as a ratio to cross-entropy on the same logits, measured in one run.

    python benchmarks/bench_losses.py [--shape 8 21 256 256] [--rounds 9] [--threads 2] [--fused] [--reference]

Each round times every loss once, interleaved with cross-entropy, so that a slow spell of a shared machine hits
all of them; the reported ratio is that of the fastest times over the rounds. On a CPU the state of glibc's allocator
decides much of the time of a loss at this size (a fresh 44 MB tensor costs more than a pass over one): ``--allocator
cold`` (the default) maps every large tensor afresh, as a training loop does, ``--allocator warm`` reuses mapped
pages, as a GPU's caching allocator does (see ``ALLOCATORS``); the script re-executes itself with those settings. Peak memory is the peak of the
resident set on CPU (measured per loss in a fresh subprocess with ``--memory``) or ``torch.cuda.max_memory_allocated``
on a GPU (sampled every 0.5 ms, with glibc's mmap threshold lowered so that freed tensors leave the resident set;
the gradient of the logits, which every loss must produce, is included). ``--reference`` adds segmentation-models-pytorch's JaccardLoss, DiceLoss and LovaszLoss for scale.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from jmlkit.losses import (dice_semimetric_loss, jaccard_metric_loss, lovasz_softmax_loss,  # noqa: E402
                           soft_jaccard_loss, tversky_metric_loss)


#: glibc malloc's settings for the two states of the CPU allocator (environment variables read at start-up).
#: cold: every tensor over 64 KB is mapped fresh and returned on free, so each new tensor's pages are faulted in,
#: which is what a CPU training step pays for tensors over glibc's 32 MB ceiling of its adaptive threshold (the
#: (8, 21, 256, 256) logits are 44 MB); warm: memory is never returned, so a new tensor reuses pages already mapped,
#: as a GPU's caching allocator does, and the time is the kernels' alone.
ALLOCATORS = {"cold": {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TOP_PAD_": "0"},
              "warm": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**40), "MALLOC_TOP_PAD_": str(2**28)}}

#: (what, the largest ratio to cross-entropy, the cases it covers)
GOALS = [("eager soft-label L1 losses", 1.3, ("jml (soft)", "dml (soft)", "tversky (soft)")),
         ("fused JML on both label kinds", 1.0, ("jml fused (hard)", "jml fused (soft)"))]


def make_cases(fused: bool, reference: bool, validate: bool):
    kw = dict(classes="present", validate_args=validate)
    cases = {
        "jml (hard)": ("hard", lambda z, t, y: jaccard_metric_loss(z, t, **kw)),
        "jml (soft)": ("soft", lambda z, t, y: jaccard_metric_loss(z, y, **kw)),
        "jml2 (soft)": ("soft", lambda z, t, y: jaccard_metric_loss(z, y, variant=2, **kw)),
        "dml (soft)": ("soft", lambda z, t, y: dice_semimetric_loss(z, y, **kw)),
        "tversky (soft)": ("soft", lambda z, t, y: tversky_metric_loss(z, y, alpha=0.3, beta=0.7, **kw)),
        "sjl (hard)": ("hard", lambda z, t, y: soft_jaccard_loss(z, t, **kw)),
        "ce (soft)": ("soft", lambda z, t, y: -(y * F.log_softmax(z, 1)).sum(1).mean()),
    }
    if fused:
        cases["jml fused (hard)"] = ("hard", lambda z, t, y: jaccard_metric_loss(z, t, fused=True, **kw))
        cases["jml fused (soft)"] = ("soft", lambda z, t, y: jaccard_metric_loss(z, y, fused=True, **kw))
    if reference:
        import segmentation_models_pytorch as smp

        jl, dl, ll = smp.losses.JaccardLoss("multiclass"), smp.losses.DiceLoss("multiclass"), smp.losses.LovaszLoss("multiclass")
        cases["smp JaccardLoss (hard)"] = ("hard", lambda z, t, y: jl(z, t))
        cases["smp DiceLoss (hard)"] = ("hard", lambda z, t, y: dl(z, t))
        cases["smp LovaszLoss (hard)"] = ("hard", lambda z, t, y: ll(z, t))
        cases["jmlkit lovasz (hard)"] = ("hard", lambda z, t, y: lovasz_softmax_loss(z, t))
    return cases


def inputs(shape, device):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(*shape, generator=g).to(device)
    t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g).to(device)
    y = torch.softmax(3 * torch.randn(*shape, generator=g), 1).to(device)
    return z, t, y


def time_once(fn, z, t, y, device) -> float:
    zz = z.detach().requires_grad_()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(zz, t, y).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_memory(name: str, args) -> float:
    """Peak resident-memory growth (MB) during one forward + backward, in a fresh subprocess."""
    cmd = [sys.executable, __file__, "--memory", name, "--shape", *map(str, args.shape), "--threads", str(args.threads)]
    if args.no_validate:
        cmd.append("--no-validate")
    # glibc then serves every large tensor with mmap and returns it on free, so RSS follows live memory
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()
    return float(out[-1])


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_main(name: str, args) -> None:
    import threading

    device = torch.device("cpu")
    cases = make_cases(fused=True, reference=True, validate=not args.no_validate)
    cases["ce (hard)"] = ("hard", lambda z, t, y: F.cross_entropy(z, t))
    z, t, y = inputs(args.shape, device)
    zz = z.detach().requires_grad_()
    base, peak, stop = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.0005)

    if "fused" in name:  # compile first: the peak of a step, not of the compiler
        cases[name][1](z.detach().requires_grad_(), t, y).backward()
        base = _rss_mb()
    thread = threading.Thread(target=sample)
    thread.start()
    cases[name][1](zz, t, y).backward()
    stop.set()
    thread.join()
    print(max(peak[0], _rss_mb()) - base)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", type=int, nargs="+", default=[8, 21, 256, 256])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fused", action="store_true", help="also time the torch.compile path (one-off compile)")
    p.add_argument("--reference", action="store_true", help="also time segmentation-models-pytorch's losses")
    p.add_argument("--no-validate", action="store_true", help="time with validate_args=False")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--allocator", choices=list(ALLOCATORS), default="cold",
                   help="glibc's state for large tensors (see the module's docstring); default: cold")
    p.add_argument("--memory", help=argparse.SUPPRESS)
    args = p.parse_args()
    if not args.memory and os.environ.get("JMLKIT_BENCH_ALLOCATOR") != args.allocator:
        env = {**os.environ, **ALLOCATORS[args.allocator], "JMLKIT_BENCH_ALLOCATOR": args.allocator}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)  # malloc reads these at start-up
    torch.set_num_threads(args.threads)
    if args.memory:
        return memory_main(args.memory, args)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    z, t, y = inputs(args.shape, device)
    cases = make_cases(args.fused, args.reference, validate=not args.no_validate)
    baseline = lambda z, t, y: F.cross_entropy(z, t)  # noqa: E731
    if args.fused:  # compile once, report the start-up cost
        for name, (_, fn) in cases.items():
            if "fused" in name:
                start = time.perf_counter()
                time_once(fn, z, t, y, device)
                print(f"{name}: first call (compile) {time.perf_counter() - start:.1f} s")
    for _, fn in cases.values():  # warm-up
        time_once(fn, z, t, y, device)
    best = {name: float("inf") for name in cases}
    best_ce = float("inf")
    for _ in range(args.rounds):
        for name, (_, fn) in cases.items():
            best_ce = min(best_ce, time_once(baseline, z, t, y, device))
            best[name] = min(best[name], time_once(fn, z, t, y, device))
    print(f"device {device}, threads {torch.get_num_threads()}, logits {tuple(args.shape)}, rounds {args.rounds}, "
          f"validate_args={not args.no_validate}, allocator {args.allocator if device.type == 'cpu' else 'cuda'}")
    print(f"cross_entropy (hard) forward+backward: {best_ce * 1e3:.1f} ms (fastest)")
    mem_ce = None if (args.no_memory or device.type == "cuda") else peak_memory("ce (hard)", args)
    print(f"{'loss':28s} {'ms':>8s} {'x CE':>7s} {'peak MB':>9s} {'x CE':>6s}")
    for name, (_, fn) in cases.items():
        mem = None if mem_ce is None else peak_memory(name, args)
        mem_s = f"{mem:9.0f} {mem / max(mem_ce, 1e-9):6.2f}" if mem is not None else f"{'-':>9s} {'-':>6s}"
        print(f"{name:28s} {best[name] * 1e3:8.1f} {best[name] / best_ce:7.2f} {mem_s}")
    mem_s = f"{mem_ce:9.0f} {1.0:6.2f}" if mem_ce is not None else f"{'-':>9s} {'-':>6s}"
    print(f"{'ce (hard)':28s} {best_ce * 1e3:8.1f} {1.0:7.2f} {mem_s}")
    for goal, limit, names in GOALS:
        ratios = {n: best[n] / best_ce for n in names if n in best}
        if ratios:
            worst = max(ratios, key=ratios.get)
            print(f"goal: {goal} <= {limit:.1f}x CE: {'met' if ratios[worst] <= limit else 'NOT met'} "
                  f"(largest: {worst} {ratios[worst]:.2f}x)")


if __name__ == "__main__":
    main()
