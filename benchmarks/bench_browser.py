"""How long a widget control takes to redraw its figure in a real browser: notebooks 01, 02 and 06 in JupyterLab.

The same set-up as ``tests/test_browser.py`` (``tests/browser_lab.py``): copies of the notebooks parameterised to a
profile (default ``smoke``) in a temporary folder, one JupyterLab on 127.0.0.1, headless Chromium through
Playwright. Per notebook: open it, run all cells, then move every control of its widgets ``--moves`` times (a slider:
one keyboard step on its focused handle; a drop-down or multi-select: another option) and time from the key press or
the choice until the widget's image has changed in the page: the kernel's update of the figure, its PNG, the round
trip over the websocket and the browser's rendering, all together. Prints the median (and the range) per control and
per notebook. A control that is disabled when its turn comes (02's window while the smoothing is uniform) is
left out of that round.

Usage::

    python benchmarks/bench_browser.py                      # 01, 02 and 06, 7 moves per control
    python benchmarks/bench_browser.py --notebooks 02 --moves 15 --json redraw.json

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``) and ``playwright`` (the dev extra). On a machine shared
with other jobs the times grow with its load; the test suite requires each redraw within 2 s.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser_lab import (  # noqa: E402
    WIDGET_NOTEBOOKS, JupyterLab, lab_notebook, launch, missing, prepare_notebooks,
)


def measure(lab: JupyterLab, browser, name: str, moves: int, within: float) -> dict:
    """Open ``name``, run it, and time ``moves`` moves of each of its controls."""
    with lab_notebook(lab, browser, name, Path(lab.home) / "failure",
                      note=f"{name}: failed; screenshot and server log in {{}}") as notebook:
        t = time.perf_counter()
        notebook.open()
        opened = time.perf_counter() - t
        t = time.perf_counter()
        state = notebook.run_all()
        ran = time.perf_counter() - t
        if state["errors"]:
            raise RuntimeError(f"{name}: a cell shows an error:\n" + "\n".join(state["errors"]))
        times: dict[str, list[float | None]] = {}
        for _ in range(moves):
            for control_name, control, root in notebook.controls():
                move = notebook.move(control, root, control_name, within=within)
                if not move.disabled:  # 02's window while the smoothing drop-down is on uniform
                    times.setdefault(control_name, []).append(move.seconds)
        return {"open_s": opened, "run_all_s": ran, "moves": times}


def summarise(times: list[float | None]) -> str:
    done = [t for t in times if t is not None]
    if not done:
        return f"no redraw in {len(times)} moves"
    late = len(times) - len(done)
    return (f"median {1000 * statistics.median(done):6.0f} ms  (min {1000 * min(done):.0f}, max {1000 * max(done):.0f}"
            f", {len(done)} moves{f', {late} without redraw' if late else ''})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", nargs="+", default=list(WIDGET_NOTEBOOKS),
                        help="notebook stems or their two-digit prefixes (06 reads the runs of 02 when both run)")
    parser.add_argument("--moves", type=int, default=7, help="moves per control")
    parser.add_argument("--profile", default="smoke", help="profile the notebooks run in")
    parser.add_argument("--within", type=float, default=10.0, help="seconds a redraw may take before it counts as lost")
    parser.add_argument("--json", metavar="FILE", help="also write every time as JSON")
    args = parser.parse_args(argv)
    if args.moves < 1:
        parser.error(f"--moves must be >= 1, got {args.moves}")
    reason = missing()
    if reason:
        print(f"cannot run: {reason}")
        return 1
    stems = [s for s in WIDGET_NOTEBOOKS if any(s == n or s.startswith(n) for n in args.notebooks)]
    if not stems:
        parser.error(f"--notebooks {args.notebooks} names none of {list(WIDGET_NOTEBOOKS)}")
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="jmlkit-bench-browser-"))
    paths = prepare_notebooks(folder / "notebooks", stems, profile=args.profile)
    results = {}
    with JupyterLab(folder / "notebooks", folder / "home") as lab, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for stem in stems:
                results[stem] = r = measure(lab, browser, paths[stem].name, args.moves, args.within)
                every = [t for ts in r["moves"].values() for t in ts]
                print(f"{stem} ({args.profile}): opened in {r['open_s']:.0f} s, ran in {r['run_all_s']:.0f} s; "
                      f"redraw {summarise(every)}", flush=True)
                for control, times in r["moves"].items():
                    print(f"    {control:>10}: {summarise(times)}", flush=True)
        finally:
            browser.close()
    print("\nmedian redraw per notebook: " + ", ".join(
        f"{stem[:2]} {1000 * statistics.median(done):.0f} ms" if (done := [
            t for ts in r["moves"].values() for t in ts if t is not None]) else f"{stem[:2]} none"
        for stem, r in results.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"profile": args.profile, "moves": args.moves, "results": results},
                                              indent=1))
    shutil.rmtree(folder, ignore_errors=True)  # kept when a notebook failed: its screenshot and log are there
    return 0


if __name__ == "__main__":
    sys.exit(main())
