"""What watching costs: the playground of notebook 07 against the same run by ``fit`` alone.

1. In this process (default): the paper's recipe (CE+JML 0.25 on boundary label smoothing, ε 0.5) in the quick
   profile, trained from scratch into a fresh folder, ``--reps`` times each way, alternating:

   * ``fit`` alone: :func:`jmlkit.engine.fit` writing the same run folder, no watch;
   * the playground: :class:`jmlkit.plot.Playground` with its widget built (so every epoch's update evaluates the 64
     watched validation scenes and renders the live figure to PNG, as in JupyterLab), trained with ``train()``.

   Prints, per way, the time from the start to the end of the first epoch (the playground: to its first figure) and
   the wall time, then the ratios playground / ``fit`` and the overhead per epoch in seconds. The same seed trains
   the same model both ways (tests/test_playground.py checks that a watched run equals an unwatched one).
2. ``--browser``: the same in a real JupyterLab (headless Chromium, as tests/test_browser_playground.py): notebook
   07 opened and run in ``--profile``, then the time from the click on **Train** until the first epoch's figure is
   in the page. ``--screenshot FILE`` also photographs the playground after that run finished (the README's
   picture: ``--browser --profile quick --screenshot docs/playground.png``).

Usage::

    python benchmarks/bench_playground.py                    # quick profile, 6 epochs, 2 repetitions
    python benchmarks/bench_playground.py --epochs 10 --reps 3 --threads 2
    python benchmarks/bench_playground.py --browser --profile quick --screenshot docs/playground.png

Timings on a shared machine vary with its load; compare the ratios, which are measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def one_fit(config, folder: Path) -> dict:
    from jmlkit.engine import fit

    marks = []
    start = time.perf_counter()
    fit(config.replace(out=str(folder / "fit")), progress=False, callback=lambda row: marks.append(time.perf_counter()))
    return {"first_s": marks[0] - start, "wall_s": time.perf_counter() - start}


def one_playground(choice, profile: str, folder: Path) -> dict:
    from jmlkit.plot import Playground

    os.environ.pop("JMLKIT_HEADLESS", None)  # the widget is built: every epoch renders the live figure
    pg = Playground(profile, folder / "07_playground", choice=choice)
    pg.widget()
    drawn, update = [], pg._on_update

    def timed(run) -> None:  # the first figure counts once it is rendered and handed to the widget
        update(run)
        drawn.append(time.perf_counter())

    pg._on_update = timed
    start = time.perf_counter()
    run = pg.train()
    wall = time.perf_counter() - start
    if run.status != "finished":
        raise RuntimeError(f"the playground's run ended {run.status}: {run.error}")
    return {"first_s": drawn[0] - start, "wall_s": wall}


def in_process(args) -> None:
    import torch

    from jmlkit.experiments.playground import Choice

    choice = Choice(epochs=args.epochs)
    config = choice.config(args.profile).replace(num_threads=args.threads)
    print(f"the paper's recipe in the {args.profile} profile, {args.epochs} epochs, {args.threads} thread(s), "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    rows: dict[str, list[dict]] = {"fit": [], "playground": []}
    for rep in range(args.reps):
        for way in ("fit", "playground"):
            folder = Path(tempfile.mkdtemp(prefix="jmlkit-bench-playground-"))
            try:
                torch.set_num_threads(args.threads)
                r = one_fit(config, folder) if way == "fit" else one_playground(choice, args.profile, folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            rows[way].append(r)
            print(f"  {way:>10} #{rep + 1}: first epoch {r['first_s']:.2f} s, wall {r['wall_s']:.2f} s", flush=True)
    med = {way: {k: statistics.median(r[k] for r in rs) for k in ("first_s", "wall_s")} for way, rs in rows.items()}
    fit_, pg = med["fit"], med["playground"]
    print(f"\nmedian of {args.reps}: fit first epoch {fit_['first_s']:.2f} s, wall {fit_['wall_s']:.2f} s; "
          f"playground first figure {pg['first_s']:.2f} s, wall {pg['wall_s']:.2f} s")
    print(f"ratio playground / fit: time to first epoch {pg['first_s'] / fit_['first_s']:.2f}x, "
          f"wall {pg['wall_s'] / fit_['wall_s']:.2f}x; overhead per epoch "
          f"{(pg['wall_s'] - fit_['wall_s']) / args.epochs:.2f} s")


def in_browser(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser_lab import JupyterLab, lab_notebook, launch, missing, prepare_notebooks
    from browser_playground import PlaygroundPage
    from playwright.sync_api import sync_playwright

    reason = missing()
    if reason:
        raise SystemExit(f"cannot run --browser: {reason}")
    folder = Path(tempfile.mkdtemp(prefix="jmlkit-bench-playground-browser-"))
    paths = prepare_notebooks(folder / "notebooks", ("07_playground",), profile=args.profile)
    with JupyterLab(folder / "notebooks", folder / "home") as lab, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            with lab_notebook(lab, browser, paths["07_playground"].name, folder / "failure") as notebook:
                notebook.open()
                t = time.perf_counter()
                state = notebook.run_all()
                if state["errors"]:
                    raise RuntimeError("a cell shows an error:\n" + "\n".join(state["errors"]))
                print(f"notebook 07 ({args.profile}) ran in {time.perf_counter() - t:.0f} s")
                pg = PlaygroundPage(notebook)
                before = pg.live_src()
                clicked = pg.press("Train")
                seconds = pg.wait_live_change(before, within=600)
                print(f"in JupyterLab: the first epoch's figure {time.perf_counter() - clicked:.1f} s after Train"
                      if seconds is not None else "in JupyterLab: no figure within 600 s of Train")
                pg.wait_buttons(train=True, stop=False, within=900)  # the run is over
                if args.screenshot:
                    notebook.page.set_viewport_size({"width": 1400, "height": 2400})
                    output = notebook.page.locator(".jp-OutputArea", has=notebook.page.locator(
                        ".jmlkit-playground-live")).first
                    output.scroll_into_view_if_needed()
                    time.sleep(1.0)
                    Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
                    output.screenshot(path=args.screenshot)
                    print(f"screenshot: {args.screenshot}")
        finally:
            browser.close()
    shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="profile of the run (default quick)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the run (in-process part)")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of each way (in-process part)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the quick profile trains with 1)")
    parser.add_argument("--browser", action="store_true", help="time Train in a real JupyterLab instead")
    parser.add_argument("--screenshot", metavar="FILE", help="with --browser: a PNG of the playground after its run")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.reps < 1 or args.threads < 1:
        parser.error("--epochs, --reps and --threads must be >= 1")
    if args.screenshot and not args.browser:
        parser.error("--screenshot needs --browser")
    in_browser(args) if args.browser else in_process(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
