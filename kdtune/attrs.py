"""The attribute keys kdtune stores on Optuna studies and trials: one definition each.

Writers and readers (the trial adapter, workers, reports, export, the dashboard) import
these names; no module spells a key as a string literal. Metric values themselves are
stored under their metric names (see :mod:`kdtune.objectives.measure.catalogue`).
"""

from __future__ import annotations

# --- study user attributes
STUDY_CONFIG = "kdtune_config"
"""The study's whole validated config as JSON: a worker needs only storage and name."""
STUDY_VERSION = "kdtune_version"
"""The kdtune version that created the study."""
STUDY_STOPPED = "kdtune_stopped"
"""Why the study stopped itself (its first trials all failed with one error), as one line."""

PROTOCOL = "kdtune.protocol"
"""The split protocol recorded when the study is created
(:func:`~kdtune.objectives.measure.protocol.describe_protocol`)."""
TEST_PREFIX = "kdtune.test:"
"""Prefix of a front trial's test verdict (``kdtune test``): ``kdtune.test:<number>``."""
TINYBERT_PREFIX = "kdtune.tinybert:"
"""Prefix of the TinyBERT recipe's results at one student size:
``kdtune.tinybert:<layers>x<width>`` (width ``full``: the teacher's, when unknown)."""

# --- trial user attributes
TRIAL_CONFIG = "config"
"""The trial's distillation configuration (a JSON-able dict), as the objective trained it."""
DUPLICATE_OF = "duplicate_of"
"""Number of the finished trial whose result a repeated configuration reused."""
PRUNE_REASON = "prune_reason"
"""Why a trial ended PRUNED (below the accuracy floor, no better than the majority class)."""
FAIL_REASON = "fail_reason"
"""Why a trial ended FAIL (its exception as one line, at most 500 characters)."""
PHI_CNF = "phi_cnf"
"""Whether the confidence-preservation property held (sigma <= kappa)."""
SECONDS_PREFIX = "seconds_"
"""Prefix of the per-phase wall times, e.g. ``seconds_train``."""
PARAMS_CAP = "params_cap"
"""The most parameters the trial's student could have (the study's size cap), when capped."""
EPOCHS_TRAINED = "epochs_trained"
"""Epochs the trial has trained so far, intermediate-stage epochs included (the compute a
study's ``epoch_budget`` counts; 0 or absent for an untrained or reused trial)."""
THREADS = "threads"
"""The torch thread count the trial trained with (its floating point depends on it)."""
REPEAT_OF = "repeat_of"
"""On a trial that ``kdtune rescore`` enqueued: the number of the front trial whose
configuration it repeats on another training seed (:mod:`kdtune.study.rescore`)."""
REPEAT_SEED = "repeat_seed"
"""On such a repeat: the training seed (``distill.seed``) it runs with instead."""
EPOCH_ACCURACY_PREFIX = "eval_accuracy_epoch_"
"""Prefix of the evaluation accuracy after each epoch, e.g. ``eval_accuracy_epoch_1``."""

# --- trial constraints (Optuna's ``trial.set_constraint``; read as ``FrozenTrial.constraints``)
MAX_PARAMS_CONSTRAINT = "max_params"
"""Student parameters minus the cap: > 0 infeasible (stored as system attr
``constraints:max_params``); only on trials of a capped study."""

# --- trial system attributes
FAILED_TRIAL = "failed_trial"
"""On a re-queued trial: the number of the first attempt that failed."""
RETRY_HISTORY = "retry_history"
"""On a re-queued trial: the numbers of every earlier attempt, oldest first."""


RUNG_PREFIX = "rung_"
"""Prefix of a trial's objective values at a successive-halving rung, e.g. ``rung_1``
(after one prediction epoch; :mod:`kdtune.objectives.search.halving`)."""


def rung_key(epochs: int) -> str:
    """The user-attribute key of the objective values after ``epochs`` prediction epochs."""
    return f"{RUNG_PREFIX}{epochs}"


def seconds_key(phase: str) -> str:
    """The user-attribute key of a phase's wall time."""
    return f"{SECONDS_PREFIX}{phase}"


def epoch_accuracy_key(epoch: int) -> str:
    """The user-attribute key of the evaluation accuracy after ``epoch`` (1-based)."""
    return f"{EPOCH_ACCURACY_PREFIX}{epoch}"
