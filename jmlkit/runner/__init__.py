"""Batch runner for the jmlkit notebooks: ``jmlkit run`` (also ``python -m jmlkit run``), and what it writes.

The README's "The notebooks" section is the user's guide (commands, reruns, exit codes); each module documents its
part of the contract between the runner and the notebooks:

============================  =====================================================================
module                        owns
============================  =====================================================================
:mod:`~.notebooks`            which notebooks run, names and prefixes, ``metadata["jmlkit"]["requires"]``
:mod:`~.params`               ``-p name=value`` and grids, run names, the ``parameters`` cell and its checks
:mod:`~.plan`                 runs in dependency order, each run's record ``run.json``, resume
:mod:`~.execute`              papermill execution: failures isolated, ``--timeout``, Ctrl-C, progress
:mod:`~.kernels`              the kernels' environment; kernels die with the runner
:mod:`~.outdir`               reruns that lose nothing, recovery after a crash, one batch per folder
:mod:`~.summary`              ``summary.csv``, ``metrics.csv``, the figures folder
:mod:`~.cli`                  the command line (:func:`main_run`)
:mod:`~.results`              ``--results``: the tidy result files of a batch
:mod:`~.readme`               the README's generated tables from those files (``jmlkit readme``)
:mod:`~.report`               the offline HTML report of a batch (``jmlkit report``)
:mod:`~.student`              students' copies of the notebooks (``jmlkit student``)
============================  =====================================================================

The folders' names are :mod:`jmlkit.layout`'s; training runs go serially or to Dask through :mod:`jmlkit.parallel`.

>>> run_name("01_jaccard_losses", {"seed": 1, "loss": "ce+jml"})
'01_jaccard_losses__loss=ce+jml,seed=1'
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
from jmlkit.runner.plan import Run, RunResult, execution_order, plan_runs, predict_reuse
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
