"""Every figure of jmlkit, and the widgets of notebooks 01 to 06.

Each function takes what the metrics, the experiment tables or :mod:`jmlkit.lessons` produce and returns a
:class:`matplotlib.figure.Figure`. Figures are created without pyplot (``matplotlib.figure.Figure``), so nothing is
kept in a global registry, nothing is shown by itself and no backend is needed: in a notebook make the figure the
last expression of a cell (or ``display(fig)``); in a batch run :func:`jmlkit.io.save_figure`. Functions drawing a
single panel accept ``ax=`` to draw into an existing axes (the returned figure is then ``ax.figure``).

==========================  ==========================================================================
module                      figures
==========================  ==========================================================================
:mod:`.calibration`         :func:`reliability_diagram`, :func:`plot_reliability_grid`,
                            :func:`calibration_vs_boundary_distance`, :func:`plot_per_class_calibration`,
                            :func:`plot_tradeoff`, :func:`plot_soft_target_curves`,
                            :func:`plot_band_histograms`
:mod:`.segmentation`        :func:`segmentation_panel`, :func:`per_class_iou`, :func:`plot_soft_predictions`,
                            :func:`target_panel`
:mod:`.comparison`          :func:`comparison_chart` (seeds over means), :func:`forest_plot` (paired
                            differences with their intervals)
:mod:`.runs`                :func:`sweep_plot`, :func:`sweep_or_comparison_chart`, :func:`history_plot`
:mod:`.layout`              :func:`layout_problems` (overlapping labels, a legend over data)
:mod:`.losses`              :func:`plot_loss_curves`, :func:`plot_loss_surfaces`, :func:`plot_race`,
                            :func:`plot_triangle`, :func:`seconds_per_update` (notebook 01), the
                            display names :data:`LOSS_LABELS`
:mod:`.regime`              :func:`smoothing_regime`, :func:`gradient_tug_of_war` (notebook 02's ablation)
:mod:`.interactive`         :func:`curve_explorer`, :func:`surface_explorer` (01), :func:`smoothing_explorer`
                            (02, :class:`SmoothingTargetPlot`), :func:`reliability_explorer` (06,
                            :func:`reliability_comparison`, :class:`ReliabilityComparisonPlot`),
                            :func:`render_png`, :func:`headless` (``ipywidgets`` is imported only when a
                            widget is built)
:mod:`.explorers`           :func:`temperature_explorer` (03, :class:`TemperaturePlot`),
                            :func:`threshold_explorer` (04, :class:`PseudoLabelPlot`),
                            :func:`soft_label_explorer` (05, :class:`SoftLabelSlicePlot`)
:mod:`.playground`          :class:`Playground` (07: train with any loss and labels, watch it learn,
                            compare), :class:`LivePlot`, :func:`comparison_figure`
==========================  ==========================================================================

Example:
    >>> import jmlkit.plot as plot
    >>> fig = plot.per_class_iou([0.5, 0.7], class_names=["bg", "digit"])
    >>> fig.axes[0].get_ylabel()
    'IoU (%)'
"""
from __future__ import annotations

from ._common import LABELS, render_png
from .calibration import (
    calibration_vs_boundary_distance,
    plot_band_histograms,
    plot_per_class_calibration,
    plot_reliability_grid,
    plot_soft_target_curves,
    plot_tradeoff,
    reliability_diagram,
)
from .interactive import (
    HEADLESS_ENV,
    SMOOTHINGS,
    ReliabilityComparisonPlot,
    SmoothingTargetPlot,
    curve_explorer,
    headless,
    reliability_comparison,
    reliability_explorer,
    smoothing_explorer,
    surface_explorer,
)
from .explorers import (
    PseudoLabelPlot,
    SoftLabelSlicePlot,
    TemperaturePlot,
    soft_label_explorer,
    temperature_explorer,
    threshold_explorer,
)
from .losses import (
    LOSS_COLORS,
    LOSS_LABELS,
    CurvePlot,
    SurfacePlot,
    plot_loss_curves,
    plot_loss_surfaces,
    plot_race,
    plot_triangle,
    seconds_per_update,
)
from .layout import layout_problems
from .playground import LivePlot, Playground, comparison_figure
from .regime import gradient_tug_of_war, smoothing_regime
from .comparison import VERDICT_COLORS, comparison_chart, forest_plot
from .runs import history_plot, sweep_or_comparison_chart, sweep_plot
from .segmentation import per_class_iou, plot_soft_predictions, segmentation_panel, target_panel

__all__ = [
    "LABELS",
    "LOSS_LABELS",
    "LOSS_COLORS",
    "HEADLESS_ENV",
    "layout_problems",
    # calibration
    "reliability_diagram",
    "plot_reliability_grid",
    "calibration_vs_boundary_distance",
    "plot_per_class_calibration",
    "plot_tradeoff",
    "plot_soft_target_curves",
    "plot_band_histograms",
    # segmentation
    "segmentation_panel",
    "per_class_iou",
    "plot_soft_predictions",
    "target_panel",
    # runs
    "comparison_chart",
    "forest_plot",
    "VERDICT_COLORS",
    "sweep_plot",
    "sweep_or_comparison_chart",
    "history_plot",
    # losses (notebook 01)
    "CurvePlot",
    "plot_loss_curves",
    "SurfacePlot",
    "plot_loss_surfaces",
    "plot_race",
    "plot_triangle",
    "seconds_per_update",
    # regime of label smoothing (notebook 02)
    "smoothing_regime",
    "gradient_tug_of_war",
    # widgets
    "headless",
    "render_png",
    "curve_explorer",
    "surface_explorer",
    "SMOOTHINGS",
    "SmoothingTargetPlot",
    "smoothing_explorer",
    "ReliabilityComparisonPlot",
    "reliability_comparison",
    "reliability_explorer",
    "TemperaturePlot",
    "temperature_explorer",
    "PseudoLabelPlot",
    "threshold_explorer",
    "SoftLabelSlicePlot",
    "soft_label_explorer",
    # the live playground (notebook 07)
    "Playground",
    "LivePlot",
    "comparison_figure",
]
