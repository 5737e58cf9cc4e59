"""kdtune's study layer: studies, workers, the trial budget and the Pareto front, with the
command line, reports, export and dashboard built on them.

The core modules sit here: :mod:`.config` (the :class:`StudyConfig`, validated once),
:mod:`.service` (create, open, run studies), :mod:`.worker` and :mod:`.budget`, :mod:`.front`
(front, reference point, hypervolume), :mod:`.verdict` and :mod:`.rescore` (the test split
and more seeds). Above them: :mod:`.report` (what ``pareto`` and ``report`` show),
:mod:`.export` (trial -> production student), :mod:`.dashboard`, and :mod:`.cli`. The public
names below are imported on first use (:mod:`kdtune.lazy`), so ``import kdtune.study`` stays
cheap.
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "StudyConfig": ".config",
    "SamplerConfig": ".config",
    "load_config": ".config",
    "validate": ".config",
    "create_study": ".service",
    "open_study": ".service",
    "run_study": ".local",
    "study_status": ".service",
    "run_worker": ".worker",
    "budget_counts": ".budget",
    "pareto_front": ".front",
    "reference_point": ".front",
    "hypervolume": ".front",
    "hypervolume_history": ".front",
    "pareto_rows": ".report.tables",
    "print_pareto": ".report.tables",
    "write_report": ".report.html",
    "export_trial": ".export.trial",
    "test_front": ".verdict",
    "distill_from_file": ".export.trial",
    "serve": ".dashboard.server",
})
