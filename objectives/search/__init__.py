"""The search side: the search space and its checks, the student shapes trials draw, Optuna
trials, successive halving, warm starts, and the fixed recipes a search is compared with.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "TeacherFacts": ".checks",
    "check_data": ".checks",
    "check_distill": ".checks",
    "check_teacher": ".checks",
    "check_teacher_fit": ".checks",
    "teacher_facts": ".checks",
    "HalvingConfig": ".halving",
    "crowding_distance": ".halving",
    "decide": ".halving",
    "rank_order": ".halving",
    "REPRODUCE_TOLERANCE": ".recipes",
    "SELECTION_FIGURES": ".recipes",
    "TINYBERT_FIELDS": ".recipes",
    "config_hash": ".recipes",
    "retrain_and_test": ".recipes",
    "selection_deltas": ".recipes",
    "tinybert_recipe": ".recipes",
    "feasible_shapes": ".shapes",
    "largest_shapes": ".shapes",
    "parse_shape": ".shapes",
    "study_shapes": ".shapes",
    "ChoiceParam": ".space",
    "DEFAULT_MAX_PARAMS_RATIO": ".space",
    "FloatParam": ".space",
    "IntParam": ".space",
    "SearchSpace": ".space",
    "search_problems": ".space_checks",
    "make_objective": ".trial",
    "metric_values": ".trial",
    "suggest_config": ".trial",
    "SEARCHED": ".warm_start",
    "TINYBERT_PARAMS": ".warm_start",
    "check_entry": ".warm_start",
    "warm_start_params": ".warm_start",
})
