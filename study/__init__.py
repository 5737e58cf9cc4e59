"""kdtune's study layer: the CLI, config validation, samplers, studies, workers, export,
reports and the dashboard launcher.

The public names below are imported on first use (:mod:`kdtune.lazy`), so
``import kdtune.study`` stays cheap. Modules:

* :mod:`.config`: the :class:`StudyConfig`, validated once, completely.
* :mod:`.service`: create, open and run studies (local worker processes).
* :mod:`.worker`: the worker loop (``kdtune worker``); :mod:`.budget`: the exact trial budget.
* :mod:`.front`: Pareto front, reference point, hypervolume; :mod:`.tables`, :mod:`.charts`,
  :mod:`.importance`, :mod:`.report`: what ``kdtune pareto`` and ``kdtune report`` show.
* :mod:`.export`: the chosen trial as a config ``kdtune distill`` accepts.
* :mod:`.dashboard`: optuna-dashboard with kdtune's hypervolume chart.
* :mod:`.cli`: the command line, a thin layer over the functions above.
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "StudyConfig": ".config",
    "SamplerConfig": ".config",
    "load_config": ".config",
    "validate": ".config",
    "create_study": ".service",
    "open_study": ".service",
    "run_study": ".service",
    "study_status": ".service",
    "run_worker": ".worker",
    "budget_counts": ".budget",
    "pareto_front": ".front",
    "reference_point": ".front",
    "hypervolume": ".front",
    "hypervolume_history": ".front",
    "pareto_rows": ".tables",
    "print_pareto": ".tables",
    "write_report": ".report",
    "export_trial": ".export",
    "test_front": ".verdict",
    "distill_from_file": ".export",
    "serve": ".dashboard",
})
