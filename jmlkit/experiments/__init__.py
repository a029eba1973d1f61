"""Experiments: the run cache, the recipes of each result notebook, and the tables and findings that report them.

=============================================  ==================================================================
module                                         what
=============================================  ==================================================================
:mod:`~jmlkit.experiments.runs`                run cache (:func:`config_hash`, :func:`run_configs`), finding and
                                               loading finished runs (:func:`find_runs`, :func:`load_metrics`)
:mod:`~jmlkit.experiments.results`             the full result of each run (metrics with tables, history,
                                               evaluations, model), kept in memory (:func:`run_results`)
:mod:`~jmlkit.experiments.evaluation`          what runs measured: reliability tables (one table, one pooling),
                                               the extra evaluators (near boundaries, per class, soft labels)
:mod:`~jmlkit.experiments.soft`                errors of predictions against soft labels (:class:`SoftLabelStats`)
:mod:`~jmlkit.experiments.recipes`             the configurations of notebooks 02–06 and their sweeps
:mod:`~jmlkit.experiments.tables`              mean ± std over seeds, comparisons in words
:mod:`~jmlkit.experiments.findings`            each result notebook's "what we saw", worded from its tables
=============================================  ==================================================================

Figures of these tables are in :mod:`jmlkit.plot`; profiles (seeds, sweep values, models) in
:mod:`jmlkit.profiles`; run-folder names and the completion marker in :mod:`jmlkit.io`.
"""
from jmlkit.experiments.evaluation import (boundary_calibration, eval_dataset, evaluate_run, evaluate_runs, evaluation_tables,
                                           evaluators, examples,
                                           training_shares, regime_shares, ablation_shares, regime_summary,
                                           load_model, mean_boundary_tables, pool_reliability, reliability_table,
                                           reliability_tables)
from jmlkit.experiments.recipes import (CALIBRATION_FALLBACK, LABELS, PAPER_RECIPE, RunSource, calibration_fallback_configs,
                                        calibration_runs, distillation_ablation_configs, distillation_configs, jml_alone_ablation, labeled_split_words, ssl_regime_runs, smoothing_ablation_configs,
                                        epsilon_sweep, label, labeled_fraction_sweep, run_label, smoothing_configs,
                                        soft_label_configs, ssl_configs, sweep, teacher_config, train_teacher)
from jmlkit.experiments.runs import (HASH_EXCLUDE, config_hash, find_runs, first_configs, load_metrics, load_runs,
                                     notebook_status, replay_run, resolve_results_dir, run_config, run_configs, run_dir_for,
                                     run_metrics)
from jmlkit.experiments.results import RunResult, first_results, results_table, run_result, run_results
from jmlkit.experiments.regimes import in_regime, regime_configs, run_per_regime, run_regimes
from jmlkit.experiments.soft import SoftLabelStats, soft_label_metrics
from jmlkit.experiments.stats import (PairedDifference, differences_table, format_difference, paired_difference,
                                      paired_differences, regime_differences, fraction_differences)
from jmlkit.experiments.claims import CLAIMS, Claim, claims_markdown, claims_table
from jmlkit.experiments.findings import (boundary_table, calibration_findings, calibration_headline, skipped_note,
                                         soft_label_findings, source_note)
from jmlkit.experiments.findings_ls import (ablation_findings, confidence_gaps, overconfidence_findings, regime_findings,
                                            smoothing_findings, strength_findings)
from jmlkit.experiments.findings_kd import (distillation_findings, jml_alone_findings, teacher_confidence_words,
                                           teacher_gap, temperature_findings)
from jmlkit.experiments.findings_ssl import ssl_findings, ssl_headline
from jmlkit.experiments.tables import compare, format_table, headline, per_class_means, per_config_means, summarize

__all__ = [
    # runs
    "HASH_EXCLUDE", "config_hash", "run_dir_for", "replay_run", "run_config", "run_configs", "run_regimes", "run_per_regime", "in_regime", "regime_configs", "load_runs", "run_metrics",
    "notebook_status", "resolve_results_dir", "find_runs", "load_metrics", "first_configs",
    # evaluation
    "load_model", "eval_dataset", "examples", "training_shares", "regime_shares", "ablation_shares", "regime_summary", "reliability_table", "pool_reliability", "reliability_tables",
    "evaluators", "boundary_calibration", "evaluate_run", "evaluation_tables", "evaluate_runs", "mean_boundary_tables",
    # full results of runs, in memory
    "RunResult", "run_result", "run_results", "first_results", "results_table",
    # soft-label errors
    "SoftLabelStats", "soft_label_metrics",
    # recipes
    "LABELS", "label", "run_label", "PAPER_RECIPE", "smoothing_configs", "smoothing_ablation_configs", "calibration_fallback_configs", "sweep", "epsilon_sweep", "train_teacher", "teacher_config", "distillation_configs", "distillation_ablation_configs", "jml_alone_ablation",
    "ssl_configs", "labeled_split_words", "ssl_regime_runs", "labeled_fraction_sweep", "soft_label_configs", "RunSource", "CALIBRATION_FALLBACK",
    "calibration_runs",
    # tables and findings
    "summarize", "format_table", "headline", "compare", "per_config_means", "per_class_means",
    "smoothing_findings", "ablation_findings", "strength_findings", "regime_findings", "confidence_gaps", "overconfidence_findings", "teacher_gap", "teacher_confidence_words", "temperature_findings", "jml_alone_findings", "distillation_findings", "ssl_headline", "ssl_findings", "soft_label_findings",
    "source_note", "skipped_note", "boundary_table", "calibration_headline", "calibration_findings",
    # paired differences with confidence intervals
    "PairedDifference", "paired_difference", "paired_differences", "format_difference", "regime_differences", "fraction_differences",
    "differences_table",
    # the paper's claims against the committed result files
    "Claim", "CLAIMS", "claims_table", "claims_markdown",
]
