"""Sigma by student size: the paper's first finding (smaller students keep confidences less
well), measured on one study.

Every COMPLETE trial that stored its parameter count and depth is grouped by its student's
size (``student_layers`` x ``student_hidden_size``, metrics every trial stores; the
``student_layers`` and ``hidden_size`` parameters stand in for them). Each group gives one
row: the trials it holds, its lowest sigma with that trial's 95% bootstrap interval,
accuracy and phi_cnf, and the median sigma over the group. sigma is the study's sigma
objective: ``sigma_max`` when the study optimises it (K > 2), else ``sigma``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial

from kdtune.attrs import PHI_CNF
from kdtune.objectives.measure.bootstrap import interval_key

from ..config import StudyConfig


def sigma_metric(cfg: StudyConfig) -> str:
    """The sigma a study reads: ``sigma_max`` when it is an objective, else ``sigma``."""
    return "sigma_max" if "sigma_max" in cfg.objectives else "sigma"


def _layers(trial: FrozenTrial) -> Any:
    return trial.user_attrs.get("student_layers", trial.params.get("student_layers"))


def size_label(trial: FrozenTrial) -> str:
    """``"<layers> x <hidden>"``, or ``"<layers> layers"`` when the width is not stored."""
    hidden = trial.user_attrs.get("student_hidden_size", trial.params.get("hidden_size"))
    layers = _layers(trial)
    return f"{layers} x {hidden}" if hidden is not None else f"{layers} layers"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def sized_trials(trials: Sequence[FrozenTrial], metric: str) -> list[FrozenTrial]:
    """The trials with a parameter count, a depth and a finite ``metric``."""
    return [t for t in trials if _finite(t.user_attrs.get("params"))
            and _layers(t) is not None and _finite(t.user_attrs.get(metric))]


def size_rows(trials: Sequence[FrozenTrial], cfg: StudyConfig) -> list[dict[str, Any]]:
    """One row per student size, smallest first (by parameter count).

    Keys: ``size``, ``params`` (of the row's best trial), ``trials``, ``best_trial`` (the
    trial with the lowest sigma), ``<sigma>`` and ``<sigma>_ci`` of that trial,
    ``accuracy_student`` and ``accuracy_student_ci`` of that trial (``_ci`` keys only when
    stored), ``phi_cnf`` of that trial and ``median_<sigma>`` over the group.
    """
    metric = sigma_metric(cfg)
    groups: dict[str, list[FrozenTrial]] = {}
    for t in sized_trials(trials, metric):
        groups.setdefault(size_label(t), []).append(t)
    rows = []
    for label, members in groups.items():
        best = min(members, key=lambda t: (t.user_attrs[metric], t.number))
        attrs = best.user_attrs
        row: dict[str, Any] = {"size": label, "params": attrs["params"],
                               "trials": len(members), "best_trial": best.number,
                               metric: attrs[metric]}
        if attrs.get(interval_key(metric)) is not None:
            row[interval_key(metric)] = list(attrs[interval_key(metric)])
        if attrs.get("accuracy_student") is not None:
            row["accuracy_student"] = attrs["accuracy_student"]
            if attrs.get(interval_key("accuracy_student")) is not None:
                row[interval_key("accuracy_student")] = list(
                    attrs[interval_key("accuracy_student")])
        row[PHI_CNF] = attrs.get(PHI_CNF)
        row[f"median_{metric}"] = statistics.median(t.user_attrs[metric] for t in members)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["params"], r["size"]))


__all__ = ["sigma_metric", "size_label", "size_rows", "sized_trials"]
