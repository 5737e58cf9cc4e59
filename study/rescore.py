"""A noise-aware front: ``kdtune rescore`` retrains the front's configurations on more seeds.

:func:`enqueue_repeats` adds, for each Pareto-optimal trial and each of ``K`` further seeds (its
seed + 1 .. + K), an ordinary trial with the same parameters (:data:`~kdtune.attrs.REPEAT_OF`,
:data:`~kdtune.attrs.REPEAT_SEED`). :func:`seed_summary` gives each rescored front trial's mean m
of each objective over its n seeds and the 95% Student-t interval m +- t(0.975, n - 1) * s / sqrt(n)
(s: sample standard deviation); :func:`noise_aware` swaps those means in for the trial's values.

Why: docs/design.md, "Rescoring the front on more seeds".
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.attrs import REPEAT_OF, REPEAT_SEED, STUDY_CONFIG
from kdtune.errors import UsageError
from kdtune.storage import database_errors

from .budget import budget_lock, retried_numbers
from .config import StudyConfig
from .front import front_trials
from .service import open_study
from .verdict import trial_config


def _repeats(trials: Sequence[FrozenTrial]) -> dict[int, list[FrozenTrial]]:
    """Front trial number -> its repeats that exist and did not finally fail."""
    retried = retried_numbers(list(trials))
    out: dict[int, list[FrozenTrial]] = {}
    for t in trials:
        if REPEAT_OF in t.user_attrs and not (t.state == TrialState.FAIL
                                              and t.number not in retried):
            out.setdefault(int(t.user_attrs[REPEAT_OF]), []).append(t)
    return out


def enqueue_repeats(study_name: str, storage: str | None, seeds: int) -> dict:
    """Enqueue each front trial's configuration on ``seeds`` more training seeds.

    Returns ``{"study", "enqueued": [(trial, seed), ...], "n_trials"}`` (the new budget).

    Raises:
        UsageError: ``seeds`` is below 1.
        StudyNotFound / KdtuneError: no such study, or it has no complete trials.
    """
    if seeds < 1:
        raise UsageError(f"--seeds must be 1 or more, got {seeds}")
    study, cfg = open_study(study_name, storage)
    with database_errors(f"enqueuing repeats in study {study_name!r}"):
        front = front_trials(study, cfg)
        existing = _repeats(study.get_trials(deepcopy=False))
        enqueued = []
        for trial in front:
            base = trial_config(trial).seed
            have = {int(r.user_attrs[REPEAT_SEED]) for r in existing.get(trial.number, [])}
            for seed in range(base + 1, base + seeds + 1):
                if seed not in have:
                    study.enqueue_trial(trial.params, user_attrs={REPEAT_OF: trial.number,
                                                                  REPEAT_SEED: seed})
                    enqueued.append((trial.number, seed))
        n_trials = raise_budget(study, len(enqueued))
    return {"study": study_name, "enqueued": enqueued, "n_trials": n_trials}


def raise_budget(study: optuna.Study, by: int) -> int:
    """Add ``by`` trials to the study's stored budget (under the budget lock, so workers
    read it whole); returns the new budget."""
    with budget_lock(study):
        stored = dict(study.user_attrs[STUDY_CONFIG])
        stored["n_trials"] = int(stored["n_trials"]) + by
        if by:
            study.set_user_attr(STUDY_CONFIG, stored)
    return stored["n_trials"]


def seed_summary(study: optuna.Study, cfg: StudyConfig) -> dict[int, dict]:
    """Per trial with complete repeats: ``{"seeds": n, "<objective>_mean": m,
    "<objective>_mean_ci": [low, high]}`` over the trial and its complete repeats (95%
    Student-t interval of the mean)."""
    from scipy.stats import t as student_t

    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    out: dict[int, dict] = {}
    for number, repeats in _repeats(trials).items():
        runs = [by_number[number], *repeats]
        runs = [r for r in runs if r.state == TrialState.COMPLETE and r.values is not None]
        if len(runs) < 2 or by_number[number] not in runs:
            continue
        entry: dict = {"seeds": len(runs),
                       "seed_values": [trial_config(r).seed for r in runs]}
        half = student_t.ppf(0.975, len(runs) - 1)
        for i, name in enumerate(cfg.objectives):
            values = [float(r.values[i]) for r in runs]
            mean = sum(values) / len(values)
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            width = half * sd / math.sqrt(len(values))
            entry[f"{name}_mean"] = mean
            entry[f"{name}_mean_ci"] = [mean - width, mean + width]
        out[number] = entry
    return out


def noise_aware(trials: Sequence[FrozenTrial], summary: dict[int, dict],
                objectives: Sequence[str]) -> list[FrozenTrial]:
    """``trials`` with each rescored trial's values (and objective user attributes) replaced
    by its seed means; the others as they are."""
    out = []
    for t in trials:
        entry = summary.get(t.number)
        if entry is None:
            out.append(t)
            continue
        means = [entry[f"{name}_mean"] for name in objectives]
        twin = copy.deepcopy(t)
        twin.values = means
        twin.user_attrs = {**t.user_attrs, **dict(zip(objectives, means, strict=True))}
        out.append(twin)
    return out
