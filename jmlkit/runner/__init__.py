"""Batch runner for the jmlkit notebooks: ``jmlkit run`` (also ``python -m jmlkit run``).

The runner executes parameterised notebooks with papermill, in dependency order, in parallel, and
keeps going when one of them fails::

    jmlkit run                                   # every notebook, quick profile
    jmlkit run --profile smoke                   # every notebook, in seconds (tests)
    jmlkit run 03 05 --profile full --jobs 2     # two notebooks, by number prefix
    jmlkit run 01 -p seed=0,1,2 -p lr=1e-3       # a sweep of three runs
    jmlkit run 06                                # 06 after the notebooks it requires (reused when done)

Conventions (the contract between the runner and the notebooks):

* **Notebooks** (:mod:`~jmlkit.runner.notebooks`). By default every ``notebooks/NN_*.ipynb``
  (names starting with a digit), sorted. A notebook is named by a path, its file name, its stem,
  or a unique prefix of its name (``03``). Each notebook has exactly one code cell tagged
  ``parameters`` (see :func:`find_parameters_cell`), which declares ``profile``, ``seed`` and
  ``output_dir`` among its parameters.
* **Injected parameters** (:mod:`~jmlkit.runner.params`). Only parameters the notebook *declares*
  are injected (papermill would otherwise warn and inject them anyway): ``profile`` (from
  ``--profile``: one of :data:`jmlkit.profiles.PROFILE_NAMES`, ``smoke``, ``quick`` or ``full``,
  the one profile table every notebook reads), ``output_dir`` (absolute path of the run folder)
  and each ``-p name=value`` the notebook declares. A ``-p`` name that only some selected notebooks
  declare is injected into those only; one that none declares is a usage error (exit 2, before
  anything runs) listing each notebook's parameters. Values are Python literals (``ast.literal_eval``) and fall
  back to strings; a value with top-level commas is a grid (``seed=0,1,2``), and the runs are the
  product over all grids.
* **Requirements** (:mod:`~jmlkit.runner.notebooks`, :mod:`~jmlkit.runner.plan`). A notebook that reads
  the runs of other notebooks lists their stems in its metadata, ``metadata["jmlkit"]["requires"]``.
  The runner adds them to the batch and starts a run only once the runs it requires (same batch, same
  output folder and profile) have finished ok; with ``--jobs N`` independent runs still go side by
  side. With a grid, a run requires every run of the required notebooks in the batch, whatever their
  parameters (``06__seed=1`` waits for ``02__seed=0`` and ``02__seed=1``: notebook 06 reads every finished
  run of 02-05 in the batch folder). A run whose requirement failed is ``skipped`` (its error
  names the requirement); the others go on. An unknown or circular requirement is a ``ValueError``
  before anything runs. ``--list`` and ``--dry-run`` print the order.
* **Runs** (:mod:`~jmlkit.runner.plan`). A run is one notebook with one parameter combination;
  its folder is ``OUT/<stem>`` or, with ``-p`` overrides, ``OUT/<stem>__k=v,k2=v2`` (keys sorted).
  The executed notebook is ``OUT/<run>/<stem>.ipynb``; the kernel runs with the *notebook's
  folder* as working directory, as in Jupyter, so relative paths behave the same interactively
  and in batch; notebooks write everything they produce under ``output_dir``. Kernels get
  matplotlib's inline backend (a non-inline ``MPLBACKEND`` such as ``Agg`` is not passed on), so
  executed notebooks keep their figures.
* **Failure isolation** (:mod:`~jmlkit.runner.execute`). A failing notebook never stops the
  others: its partially executed copy (with the traceback) is kept, its status is ``failed`` and
  the exit code is 1. A notebook file that is not JSON or not a notebook is a ``failed`` run whose
  error names the file (its dependents are ``skipped``; ``--list`` shows it with the reason).
  ``--timeout`` bounds the wall time of each run (the kernel is interrupted, then killed). Ctrl-C or
  SIGTERM interrupts the running kernels, writes the summary for what finished and exits with 130;
  kernels die with the runner, even under ``kill -9`` (:mod:`~jmlkit.runner.kernels`).
* **Nothing lost** (:mod:`~jmlkit.runner.outdir`). Output folders (``--out``, ``--figures``,
  ``--results``) are checked before anything runs (a file, or no write permission: exit 2). A run
  executed again keeps its previous folder aside (``OUT/.<run>.previous``) until it has finished;
  an interrupted rerun puts it back (with the training runs finished meanwhile), and after a
  ``kill -9`` the next batch or summary does. One batch at a time writes into a folder.
* **Resume.** ``OUT/<run>/run.json`` records the notebook, its sha256, the parameters, status,
  timings, the id of the execution and the ids of the executions it required. A rerun reuses a run
  whose ``run.json`` says ``ok`` for the same notebook content and parameters, unless one of its
  requirements was executed again since (``--force`` reruns the named notebooks, and reuses the
  notebooks they require when those finished ok); anything else is rerun from a fresh folder (the
  previous one waits aside until the rerun finishes).
* **Progress** (:mod:`~jmlkit.runner.execute`). ``--progress`` (default: on a terminal) shows a bar over
  the runs and, for each running notebook, its code cell ``k/n`` and time; ``--no-progress`` prints a
  line per finished run. Kernels talk over IPC sockets (:mod:`~jmlkit.runner.kernels`), so ipykernel's
  "running over TCP without encryption" warning is gone, while kernel errors are still printed.
* **Summary and figures** (:mod:`~jmlkit.runner.summary`). ``OUT/summary.csv`` has one short row per
  run folder of ``OUT`` (run, status, duration_s, error, and the parameters that differ between runs),
  kept across subset reruns and interrupted reruns; ``OUT/metrics.csv`` is the long table
  ``run, metric, value`` of each ok run's ``metrics.json``. Every ``*.png``/``*.svg`` of a *successful* run is copied to the figures
  folder as ``<run>__<relative path with / -> __>``.

Files are written with :func:`jmlkit.io.atomic_write_text`.

Python API: :func:`plan_runs` builds the runs (:func:`execution_order` orders them),
:func:`run_notebooks` executes them, :func:`write_summary`, :func:`write_metrics_table` and
:func:`collect_figures` produce the outputs;
:func:`main_run` (:mod:`~jmlkit.runner.cli`) is the command line.

Example (pure planning, no kernel):

>>> parse_assignments(["seed=0,1", "loss=ce+jml"])
{'seed': [0, 1], 'loss': ['ce+jml']}
>>> expand_grid({"seed": [0, 1], "loss": ["ce+jml"]})
[{'seed': 0, 'loss': 'ce+jml'}, {'seed': 1, 'loss': 'ce+jml'}]
>>> run_name("01_jaccard_losses", {"seed": 1, "loss": "ce+jml"})
'01_jaccard_losses__loss=ce+jml,seed=1'
>>> PROFILES
('smoke', 'quick', 'full')
"""
from __future__ import annotations

from jmlkit.profiles import PROFILE_NAMES
from jmlkit.runner.cli import build_parser, main_run
from jmlkit.runner.execute import run_notebooks
from jmlkit.runner.notebooks import (
    REQUIRED_PARAMETERS,
    REQUIRES_KEY,
    check_notebook_clean,
    discover_notebooks,
    notebook_requires,
    resolve_notebooks,
    with_requirements,
)
from jmlkit.runner.params import (
    RUNNER_PARAMETERS,
    expand_grid,
    find_parameters_cell,
    notebook_parameters,
    parse_assignments,
    parse_value,
    run_name,
)
from jmlkit.runner.plan import METRICS_FILE, RUN_FILE, Run, RunResult, execution_order, plan_runs, predict_reuse
from jmlkit.runner.summary import (
    FIGURE_SUFFIXES,
    METRICS_COLUMNS,
    METRICS_TABLE_FILE,
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    collect_figures,
    metrics_rows,
    summary_rows,
    write_metrics_table,
    write_summary,
)

#: The profiles ``--profile`` accepts: the names of :data:`jmlkit.profiles.PROFILES`.
PROFILES = PROFILE_NAMES

__all__ = [
    "PROFILES",
    "Run",
    "RunResult",
    "build_parser",
    "check_notebook_clean",
    "collect_figures",
    "discover_notebooks",
    "execution_order",
    "expand_grid",
    "find_parameters_cell",
    "main_run",
    "metrics_rows",
    "notebook_parameters",
    "notebook_requires",
    "parse_assignments",
    "parse_value",
    "plan_runs",
    "predict_reuse",
    "resolve_notebooks",
    "run_name",
    "run_notebooks",
    "summary_rows",
    "with_requirements",
    "write_metrics_table",
    "write_summary",
]
