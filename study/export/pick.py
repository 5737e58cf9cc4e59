"""Pick rules: which trial of a study ``kdtune export`` (and the report's mark) chooses.

:func:`pick_trial`: ``knee`` (closest to the ideal point, objectives scaled to [0, 1] over the
front), ``max-accuracy``, ``min-sigma``, ``feasible`` (``plain``: sigma <= kappa; ``interval``:
``sigma_ci``'s upper end <= kappa), ``trial:N``. :func:`study_pick` applies one to a stored
study, on the seed means after ``kdtune rescore``.

Why: docs/design.md, "Export pick rules and source".
"""

from __future__ import annotations

import math

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.errors import KdtuneError, UsageError
from kdtune.objectives.distillation.heldout import interval_upper
from kdtune.objectives.measure.bootstrap import interval_key

from ..config import StudyConfig
from ..front import pareto_front
from ..rescore import noise_aware, seed_summary

__all__ = ["PICKS", "RULES", "check_rule", "knee", "pick_description", "pick_trial",
           "study_pick"]

PICKS = ("knee", "max-accuracy", "min-sigma", "feasible", "trial:N")
RULES = ("plain", "interval")
"""How ``--pick feasible`` reads phi_cnf: sigma <= kappa, or sigma_ci's upper end <= kappa."""


def _metric(t: FrozenTrial, name: str) -> float:
    v = t.user_attrs.get(name)
    return float(v) if v is not None and math.isfinite(float(v)) else float("nan")


def check_rule(pick: str, rule: str) -> None:
    """UsageError unless ``rule`` is one of :data:`RULES` and fits ``pick``."""
    if rule not in RULES:
        raise UsageError(f"--rule {rule!r} is not one of {', '.join(RULES)}")
    if rule != "plain" and pick != "feasible":
        raise UsageError(f"--rule {rule} applies to --pick feasible only, not {pick!r}")


def pick_description(pick: str, rule: str, kappa: float) -> str:
    """How the trial was picked, in words, e.g. ``feasible, interval rule: ...``."""
    if pick != "feasible":
        return pick
    if rule == "interval":
        return f"feasible, interval rule: sigma_ci upper end <= kappa {kappa:g}"
    return f"feasible, plain rule: sigma <= kappa {kappa:g}"


def pick_trial(trials: list[FrozenTrial], best: list[FrozenTrial], directions: list[str],
               pick: str, kappa: float, rule: str = "plain") -> FrozenTrial:
    """Choose one COMPLETE trial by ``pick`` and, for ``feasible``, ``rule`` (see the module
    docstring)."""
    check_rule(pick, rule)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if pick.startswith("trial:"):
        try:
            number = int(pick.split(":", 1)[1])
        except ValueError as e:
            raise UsageError(f"--pick {pick!r}: N in trial:N must be an integer") from e
        found = [t for t in trials if t.number == number]
        if not found:
            raise UsageError(f"--pick {pick!r}: the study has no trial {number}")
        if found[0].state != TrialState.COMPLETE:
            raise UsageError(f"--pick {pick!r}: trial {number} is {found[0].state.name}, "
                             "not COMPLETE")
        return found[0]
    if pick not in PICKS:
        raise UsageError(f"--pick {pick!r} is not one of {', '.join(PICKS)}")
    if not complete:
        raise KdtuneError("the study has no complete trials yet")
    if pick == "max-accuracy":
        return max(complete, key=lambda t: (_metric(t, "accuracy_student"), -t.number))
    if pick == "min-sigma":
        ok = [t for t in complete if not math.isnan(_metric(t, "sigma"))]
        if not ok:
            raise KdtuneError("no complete trial has a finite sigma")
        return min(ok, key=lambda t: (_metric(t, "sigma"), t.number))
    if pick == "feasible" and rule == "interval":
        return _feasible_by_interval(complete, kappa)
    if pick == "feasible":
        ok = [t for t in complete if _metric(t, "sigma") <= kappa]
        if not ok:
            lowest = min((_metric(t, "sigma") for t in complete), default=float("nan"))
            raise KdtuneError(f"no trial reaches sigma <= kappa={kappa:g} "
                              f"(lowest sigma: {lowest:.4f}); try --pick min-sigma")
        return max(ok, key=lambda t: (_metric(t, "accuracy_student"), -t.number))
    return knee(best, directions)


def _feasible_by_interval(complete: list[FrozenTrial], kappa: float) -> FrozenTrial:
    """The most accurate trial whose stored ``sigma_ci`` upper end is <= ``kappa``."""
    upper = {t.number: interval_upper(t.user_attrs.get(interval_key("sigma")))
             for t in complete}
    ok = [t for t in complete if upper[t.number] is not None and upper[t.number] <= kappa]
    if ok:
        return max(ok, key=lambda t: (_metric(t, "accuracy_student"), -t.number))
    missing = sum(1 for v in upper.values() if v is None)
    without = (f"{missing} of {len(complete)} complete trials have no stored sigma interval "
               "(sigma_ci) and cannot qualify under --rule interval")
    known = [(v, n) for n, v in upper.items() if v is not None]
    if not known:
        raise KdtuneError(f"no trial qualifies under --rule interval: {without}; "
                          "use --rule plain (sigma <= kappa)")
    lowest, number = min(known)
    extra = f"; {without}" if missing else ""
    raise KdtuneError(f"no trial's sigma interval has its upper end <= kappa={kappa:g} "
                      f"(lowest upper end: {lowest:.4f}, trial {number}){extra}; try "
                      "--rule plain or --pick min-sigma")


def knee(front: list[FrozenTrial], directions: list[str]) -> FrozenTrial:
    """The front's trial nearest the ideal point, each objective scaled to [0, 1] (0 best)."""
    if len(front) == 1:
        return front[0]
    values = np.array([t.values for t in front], dtype=float)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    v = values * signs  # all objectives minimised
    lo, hi = v.min(axis=0), v.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    dist = np.linalg.norm((v - lo) / span, axis=1)
    return front[int(np.argmin(dist))]


def study_pick(study: optuna.Study, cfg: StudyConfig, pick: str = "knee", rule: str = "plain",
               seeds: dict[int, dict] | None = None) -> FrozenTrial:
    """The trial :func:`export_trial` exports for ``pick`` (the knee by default; ``kdtune
    report`` marks it), with its own run's figures, writing nothing. ``seeds``:
    :func:`seed_summary` (read when ``None``). Raises as :func:`pick_trial`."""
    seeds = seed_summary(study, cfg) if seeds is None else seeds
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = pareto_front(study) if complete else []  # repeats listed once
    if seeds and not pick.startswith("trial:"):
        # Rescored: choose among the front trials by their seed means (a single run of a
        # trial off the front would be compared with means; a repeat stands in its mean).
        trials = best
    picked = pick_trial(noise_aware(trials, seeds, cfg.objectives),
                        noise_aware(best, seeds, cfg.objectives), cfg.directions, pick,
                        cfg.distill.eval.kappa, rule)
    return next(t for t in trials if t.number == picked.number)
