"""The Pareto front of a kdtune study and its hypervolume.

* :func:`complete_trials`: the trials every report counts (COMPLETE, finite values).
* :func:`pareto_front` / :func:`front_trials`: the Pareto-optimal trials, repeats left out.
* :func:`best_values`: each objective's best value among the complete trials.
* :func:`reference_point`: kdtune's rule for the hypervolume reference point.
* :func:`hypervolume_history`: the hypervolume after each complete trial, computed by
  Optuna's exact hypervolume code (through :mod:`kdtune.storage.optuna_pareto`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.attrs import DUPLICATE_OF, REPEAT_OF
from kdtune.errors import KdtuneError, UsageError
from kdtune.objectives.measure.catalogue import worst_value
from kdtune.storage import optuna_pareto

from .config import StudyConfig


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's COMPLETE trials with one finite value per objective, by trial number."""
    n = len(study.directions)
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.values is not None and len(t.values) == n and all(map(math.isfinite, t.values)):
            out.append(t)
    return sorted(out, key=lambda t: t.number)


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """``study.best_trials`` without repeats of an earlier trial's configuration.

    A repeat (user attribute :data:`~kdtune.attrs.DUPLICATE_OF`, see
    :mod:`kdtune.objectives.search.trial`) has its first trial's values,
    so that trial stands for it;
    a rescore repeat on another seed (:data:`~kdtune.attrs.REPEAT_OF`) is summarised on its
    front trial (:mod:`kdtune.study.rescore`).
    """
    complete = complete_trials(study)
    if not any(REPEAT_OF in t.user_attrs for t in complete):
        return [t for t in study.best_trials if DUPLICATE_OF not in t.user_attrs]
    # A repeat may dominate its own front trial: the front is taken without repeats.
    own = [t for t in complete if DUPLICATE_OF not in t.user_attrs
           and REPEAT_OF not in t.user_attrs]
    signs = [-1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0
             for d in study.directions]
    ranks = optuna_pareto.non_domination_rank(
        np.array([[s * v for s, v in zip(signs, t.values, strict=True)] for t in own]))
    return [t for t, rank in zip(own, ranks, strict=True) if rank == 0]


def best_values(trials: Sequence[FrozenTrial], cfg: StudyConfig) -> dict[str, dict]:
    """``{objective: {"value", "trial"}}``: each objective's best among complete trials
    with finite values (the lowest trial number on ties)."""
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values
            and all(math.isfinite(v) for v in t.values)]
    best = {}
    for i, (name, direction) in enumerate(zip(cfg.objectives, cfg.directions, strict=True)):
        if not done:
            break
        sign = -1.0 if direction == "maximize" else 1.0
        top = min(done, key=lambda t: (sign * t.values[i], t.number))
        best[name] = {"value": top.values[i], "trial": top.number}
    return best


def _sort_key(cfg: StudyConfig) -> Callable[[FrozenTrial], tuple]:
    """Best first on the first objective, then the next ones, then the trial number."""
    signs = [-1.0 if d == "maximize" else 1.0 for d in cfg.directions]
    return lambda t: (*(s * v for s, v in zip(signs, t.values, strict=True)), t.number)


def front_trials(study: optuna.Study, cfg: StudyConfig) -> list[FrozenTrial]:
    """The Pareto-optimal complete trials, best first on the first objective.

    Repeats of an earlier configuration are left out (:func:`pareto_front`).

    Raises:
        KdtuneError: the study has no complete trials yet.
    """
    if not complete_trials(study):
        raise KdtuneError(f"study {study.study_name!r} has no complete trials yet")
    return sorted(pareto_front(study), key=_sort_key(cfg))


def reference_point(cfg: StudyConfig, trials: Sequence[FrozenTrial] = ()) -> list[float]:
    """The hypervolume reference point, one coordinate per objective, in metric units.

    Bounded metrics use their worst useful value from the metric catalogue
    (:func:`kdtune.objectives.measure.catalogue.worst_value`): accuracy 0, sigma 0.5 (the largest
    sigma possible on a binary task), so for the default objectives the reference point is
    ``(accuracy_student=0, sigma=0.5)`` and every complete trial of a binary task lies
    inside it. A metric without a bound (``params``, ``latency_ms``, ``kl_teacher_student``)
    uses the worst value among ``trials`` moved 10% of the observed range further (1.0 with
    no trials), so the worst trial still adds some volume.
    """
    ref = []
    for i, (name, direction) in enumerate(zip(cfg.objectives, cfg.directions, strict=True)):
        worst = worst_value(name)
        if worst is not None:
            ref.append(worst)
            continue
        values = [t.values[i] for t in trials]
        if not values:
            ref.append(1.0)
            continue
        lo, hi = min(values), max(values)
        margin = 0.1 * (hi - lo) or 0.1 * abs(hi if direction == "minimize" else lo) or 1.0
        ref.append(hi + margin if direction == "minimize" else lo - margin)
    return ref


def hypervolume(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Volume dominated by ``points`` and bounded by ``ref``, every objective minimised.

    Points not strictly better than ``ref`` in every coordinate add nothing (Optuna's exact
    computation, any number of objectives).
    """
    return optuna_pareto.hypervolume(points, ref)


def hypervolume_history(
    study: optuna.Study, cfg: StudyConfig, ref: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """``(trial number, hypervolume)`` after each complete trial, in trial-number order.

    The hypervolume is the volume of objective space that the Pareto front of the trials so
    far dominates, bounded by ``ref`` (default :func:`reference_point`, in metric units):
    Optuna's own hypervolume history, which negates maximised objectives (with their
    reference coordinate) so every objective is minimised. A trial not strictly better than
    the reference point in every objective, or infeasible (Optuna constraints > 0), adds
    nothing.

    Raises:
        UsageError: the study has fewer than 2 objectives, or ``ref`` has the wrong length.
    """
    n = len(cfg.directions)
    if n < 2:
        raise UsageError(f"hypervolume needs 2 or more objectives; study {study.study_name!r} "
                         f"has {n} ({', '.join(cfg.objectives)})")
    ref = list(ref) if ref is not None else reference_point(cfg, complete_trials(study))
    if len(ref) != n:
        raise UsageError(f"reference point {ref} has {len(ref)} coordinates, not {n}")
    return optuna_pareto.hypervolume_history(study, ref)


__all__ = [
    "complete_trials",
    "front_trials",
    "hypervolume",
    "hypervolume_history",
    "pareto_front",
    "reference_point",
]
