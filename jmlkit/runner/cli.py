"""The command line ``jmlkit run`` (also ``python -m jmlkit run``): :func:`build_parser` and :func:`main_run`.

Notebooks named on the command line bring the notebooks they require (``metadata["jmlkit"]["requires"]``):
``jmlkit run 06`` runs 02-05 first, or reuses their finished runs in ``--out``. ``--list`` and
``--dry-run`` show the order. Exit code: 0 all ok, 1 some run failed or was skipped, 2 usage error
(before anything runs: an unknown or circular requirement, a ``-p`` name no selected notebook declares,
an output folder that is a file or cannot be written, ``--out`` in use by another batch, a run folder in ``--out``
that is a symbolic link or holds files but no ``run.json``, a ``summary.csv``/``metrics.csv`` there that the runner
did not write, without ``--force``), 130
interrupted (Ctrl-C or SIGTERM). ``--debug`` raises usage errors with their traceback instead.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from jmlkit._checks import OneLineParser
from jmlkit.profiles import PROFILE_NAMES
from jmlkit.runner.execute import run_notebooks
from jmlkit.runner.notebooks import _read_problem, resolve_notebooks, with_requirements
from jmlkit.io import folder_problem
from jmlkit.runner.outdir import OutDirBusy, hold_out_dir, recover, run_dir_problem
from jmlkit.runner.params import notebook_parameters, parse_assignments
from jmlkit.runner.plan import execution_order, plan_runs, predict_reuse
from jmlkit.parallel import SCHEDULER_ENV, SchedulerSpec, close_clusters, current_scheduler, dask_client
from jmlkit.runner.summary import collect_figures, foreign_tables, write_metrics_table, write_summary

__all__ = ["build_parser", "main_run"]


def build_parser(prog: str = "jmlkit run") -> argparse.ArgumentParser:
    """The ``jmlkit run`` argument parser."""
    parser = OneLineParser(
        prog=prog,
        description="Execute the jmlkit notebooks with papermill (in dependency order, in parallel, resumable), "
                    "write OUT/summary.csv and OUT/metrics.csv and collect the figures.",
        epilog="Examples: `jmlkit run` (every notebook, quick profile); `jmlkit run 03 --profile full`; "
               "`jmlkit run 01 -p seed=0,1,2 --jobs 3` (a sweep of 3 runs); `jmlkit run --profile smoke` "
               "(every notebook in seconds); `jmlkit run 06` (after the notebooks 06 requires, reusing their "
               "finished runs). A rerun keeps the previous run folder until it finishes (restored when the "
               "rerun is interrupted). Exit code: 0 all ok, 1 some run failed or was skipped, 2 usage error "
               "(nothing ran), 130 interrupted (Ctrl-C or SIGTERM).",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebook paths, names, stems or unique prefixes such as 03 (default: every "
                             "NN_*.ipynb in --notebooks-dir); the notebooks they require are added")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="quick",
                        help="value of each notebook's `profile` parameter, one of the profiles of "
                             f"jmlkit.profiles: {', '.join(PROFILE_NAMES)} (default: %(default)s)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", dest="params",
                        help="set a notebook parameter (a Python literal, else a string); a,b,c makes a grid and "
                             "grids expand into their product. NAME may be declared by only some of the selected "
                             "notebooks: it is injected only into those; a NAME that none declares is an error "
                             "(the message lists their parameters; see --list)")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="notebooks executed at the same time; a notebook starts once those it requires "
                             "have finished (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder: one subfolder per run, plus summary.csv and metrics.csv over every "
                             "run folder in it (default: runs/<profile>)")
    parser.add_argument("--figures", default="figures", metavar="DIR",
                        help="where the figures of successful runs are copied (default: %(default)s)")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="after the batch (even when some runs failed), write DIR/<run>.csv from each finished "
                             "run's runs.csv and <table>_runs.csv, without timings (see jmlkit.runner.results)")
    parser.add_argument("--notebooks-dir", default=None, metavar="DIR",
                        help="folder of the notebooks (default: ./notebooks, else the repository's)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="wall-time limit of each run; the run is then interrupted and failed (default: none)")
    parser.add_argument("--kernel", default=None, metavar="NAME",
                        help="Jupyter kernel (default: the notebook's kernelspec, else python3)")
    parser.add_argument("--force", action="store_true",
                        help="rerun the named notebooks' runs even if they finished ok (the notebooks they require "
                             "are still reused when they finished ok); also replace a summary.csv or metrics.csv in "
                             "--out that jmlkit did not write. A run folder that is not the runner's (no run.json) "
                             "or is a symbolic link is never replaced")
    parser.add_argument("--list", action="store_true",
                        help="list the notebooks (in execution order), what they require and their parameters, "
                             "then exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the planned runs in execution order (cached or run, and what each waits for), "
                             "then exit")
    parser.add_argument("--scheduler", default=None, metavar="S",
                        help="where the notebooks' training runs execute: serial (one after another in each kernel), "
                             "local:N (one Dask cluster of N worker processes on this machine, shared by every "
                             "notebook of the batch) or the address of a running Dask scheduler (tcp://host:8786; "
                             "OUT must then be on a file system the workers share). The kernels get it as "
                             f"{SCHEDULER_ENV} (default: that variable, else serial). The results do not depend on it")
    parser.add_argument("--debug", action="store_true",
                        help="raise usage errors with their traceback instead of a one-line message")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="always show the progress bars: runs, and each running notebook's cell k/n and time "
                               "(default: only on a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="no progress bars: one line per finished run")
    return parser


def _print_list(notebooks: Sequence[Path]) -> None:
    for path, requires, selected in with_requirements(notebooks):
        problem = _read_problem(path)
        if problem is not None:
            print(f"{path.name}{'' if selected else '  (required)'}  (not a readable notebook: {problem})")
            continue
        print(path.name + ("" if selected else "  (required)"))
        if requires:
            print(f"    requires: {', '.join(requires)}")
        params = notebook_parameters(path)
        if not params:
            print("    (no parameters cell)")
        width = max((len(n) for n in params), default=0)
        for name, info in params.items():
            comment = f"  # {info['help']}" if info["help"] else ""
            print(f"    {name:<{width}} = {info['default']}{comment}")


def _share_cores(jobs: int) -> None:
    """Give each of the ``jobs`` kernels its share of the cores (kernels inherit the environment), so that parallel
    notebooks do not oversubscribe the machine; a thread count the user set is kept."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    os.environ.setdefault("JMLKIT_HEADLESS", "1")  # no front end: notebooks skip their live widgets


@contextlib.contextmanager
def _scheduler_for_kernels(spec: SchedulerSpec) -> Iterator[None]:
    """Tell the kernels (through :data:`SCHEDULER_ENV`, which they inherit) where their training runs execute.

    ``local:N`` starts one Dask cluster here, shared by every notebook of the batch (parallel kernels included),
    and gives the kernels its address; it is closed when the batch ends. An address is checked by connecting.
    """
    old = os.environ.get(SCHEDULER_ENV)
    value = str(spec)
    if spec.kind != "serial":
        client = dask_client(spec)  # prints the workers and the dashboard's link
        value = client.scheduler.address if spec.kind == "local" else value
    os.environ[SCHEDULER_ENV] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(SCHEDULER_ENV, None)
        else:
            os.environ[SCHEDULER_ENV] = old
        if spec.kind != "serial":
            close_clusters()


def main_run(argv: Sequence[str] | None = None) -> int:
    """Command line entry of ``jmlkit run``; returns the exit code.

    ``argv`` are the arguments after ``run`` (a leading ``"run"`` is tolerated);
    None reads ``sys.argv[1:]``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)

    def usage(error: str | Exception) -> None:
        """A usage error: one line and exit code 2, or (``--debug``) the exception with its traceback."""
        if args.debug:
            raise error if isinstance(error, Exception) else ValueError(error)
        parser.error(" ".join(str(error).split()))

    if args.jobs < 1:
        usage(f"argument -j/--jobs: expected a positive int, but got {args.jobs}")
    if args.timeout is not None and not args.timeout > 0:
        usage(f"argument --timeout: expected a positive number of seconds, but got {args.timeout:g}")

    def warn(msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr)

    try:
        notebooks = resolve_notebooks(args.notebooks, args.notebooks_dir)
        if args.list:
            _print_list(notebooks)
            return 0
        grid = parse_assignments(args.params)
        out = Path(args.out) if args.out is not None else Path("runs") / args.profile
        runs = execution_order(plan_runs(notebooks, grid, profile=args.profile, out_dir=out, warn=warn))
    except (ValueError, TypeError) as err:
        usage(err)
    for option, folder in (("--out", out), ("--figures", args.figures), ("--results", args.results)):
        problem = None if folder is None else folder_problem(folder)
        if problem is not None:
            usage(f"argument {option}: {problem}")
    for problem in [run_dir_problem(run.run_dir) for run in runs]:  # never write into a folder that is not ours
        if problem is not None:
            usage(f"argument --out: {problem}")
    for table in [] if args.force else foreign_tables(out):
        usage(f"argument --out: {str(table)!r} was not written by `jmlkit run` and would be replaced; it is left "
              "as it is: move it, choose another --out, or pass --force to replace it")
    try:
        scheduler = current_scheduler(args.scheduler)
    except (ValueError, TypeError) as err:
        usage(str(err).replace("`scheduler`", "`--scheduler`"))
    if args.dry_run:
        recover(out)  # what a killed batch left aside (nothing is written otherwise)
        reused = predict_reuse(runs, force=args.force)
        for run in runs:
            state = "error" if run.error else "cached" if reused[run.name] is not None else "run"
            after = f"  after {', '.join(run.requires)}" if run.requires else ""
            problem = f"  ({run.error})" if run.error else ""
            print(f"[{state}] {run.name}  {json.dumps(run.parameters, default=repr)}{after}{problem}")
        print(f"{len(runs)} run(s) -> {out}")
        return 0

    _share_cores(args.jobs)
    with contextlib.ExitStack() as stack:
        try:  # one batch per output folder; what a killed batch left there is recovered by run_notebooks
            stack.enter_context(hold_out_dir(out))
        except OutDirBusy as err:
            usage(err if args.debug else f"argument --out: {err}")
        except OSError as err:
            usage(err if args.debug else f"argument --out: cannot create or lock {str(out)!r}: {err}")
        try:
            stack.enter_context(_scheduler_for_kernels(scheduler))
        except (ImportError, OSError) as err:
            usage(err if args.debug else f"argument --scheduler: {scheduler}: {type(err).__name__}: {err}")
        results = run_notebooks(runs, jobs=args.jobs, kernel_name=args.kernel, timeout=args.timeout,
                                force=args.force, progress=args.progress)
        summary = write_summary(out, results, force=args.force)
        metrics = write_metrics_table(out, results, force=args.force)
    problems = []
    try:  # after the tables: a figure that cannot be copied never costs the summary
        figures = f"{len(collect_figures(results, args.figures))} figure(s) in {args.figures}"
    except OSError as err:
        figures = f"figures not collected into {args.figures}"
        problems.append(f"FAILED collecting the figures into {args.figures}: {err}")
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "failed", "skipped", "interrupted", "pending")}
    n_cached = sum(r.cached for r in results)
    print(f"{counts['ok']} ok ({n_cached} cached), {counts['failed']} failed"
          + "".join(f", {counts[s]} {s}" for s in ("skipped", "interrupted", "pending") if counts[s])
          + f"; summary: {summary}; metrics: {metrics}; {figures}")
    if args.results is not None:
        from jmlkit.runner.results import collect_results  # pandas: only when asked

        try:
            collected = collect_results(out, args.results)
            print(f"{len(collected)} result file(s) in {args.results}")
            if args.profile == "full":  # what the `results` profile replays (jmlkit.profiles.RECORDS_DIR)
                from jmlkit.runner.records import RECORDS_SUBDIR, record_size, write_records

                records = Path(args.results) / RECORDS_SUBDIR
                written = write_records(out, records)
                size = record_size(records)
                print(f"records of {len(written)} notebook(s) in {records}: {size['files']} files, "
                      f"{size['bytes'] / 1e6:.1f} MB ({size['models']} models, {size['model_bytes'] / 1e6:.1f} MB)")
        except (OSError, ValueError, TypeError) as err:
            problems.append(f"FAILED collecting the results into {args.results}: {err}")
    for problem in problems:
        print(problem)
    for res in results:
        if res.status == "failed":
            where = f"\n       see {res.run.executed_notebook}" if res.run.error is None else ""
            print(f"FAILED {res.run.name}: {res.error}{where}")
        elif res.status == "skipped":
            print(f"SKIPPED {res.run.name}: {res.error}")
        elif res.kept_previous:
            print(f"INTERRUPTED {res.run.name}: the previous run is back in {res.run.run_dir}")
    if counts["interrupted"] or counts["pending"]:
        return 130
    return 1 if counts["failed"] or counts["skipped"] or problems else 0
