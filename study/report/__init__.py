"""What ``kdtune pareto`` and ``kdtune report`` show: front tables, charts, importances, the
size and held-out sections, and the HTML report.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "plot_hypervolume": ".charts",
    "plot_importances": ".charts",
    "plot_pareto": ".charts",
    "plot_sigma_by_size": ".charts",
    "REPORT_FILES": ".html",
    "write_report": ".html",
    "write_study_report": ".html",
    "FEW_TRIALS_FOR_IMPORTANCE": ".importance",
    "MIN_TRIALS_FOR_IMPORTANCE": ".importance",
    "importance_warning": ".importance",
    "param_importances": ".importance",
    "RECIPE_TITLE": ".recipe",
    "front_test_note": ".recipe",
    "has_test_figures": ".recipe",
    "recipe_rows": ".recipe",
    "recipe_section": ".recipe",
    "sigma_metric": ".size",
    "size_label": ".size",
    "size_rows": ".size",
    "sized_trials": ".size",
    "PARETO_FORMATS": ".tables",
    "cell": ".tables",
    "columns": ".tables",
    "display_rows": ".tables",
    "flat_rows": ".tables",
    "front_rows": ".tables",
    "interval_text": ".tables",
    "pareto_rows": ".tables",
    "print_pareto": ".tables",
    "test_columns": ".tables",
    "untested_trials": ".tables",
})
