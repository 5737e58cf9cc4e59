"""Optuna's private multi-objective arithmetic, wrapped: its exact hypervolume
(:func:`hypervolume`), the hypervolume after each trial (:func:`hypervolume_history`) and its
fast non-dominated sort (:func:`non_domination_rank`). With
:mod:`kdtune.storage.optuna_adapter` (the storage side), the only modules that name Optuna's
private API.

Why: docs/design.md, "Optuna's private API in two modules".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

__all__ = ["hypervolume", "hypervolume_history", "non_domination_rank"]


def hypervolume(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Volume dominated by ``points`` and bounded by ``ref``, every objective minimised.

    Optuna's exact computation (WFG; closed forms in 2 and 3 dimensions). Points not
    strictly better than ``ref`` in every coordinate add nothing; dominated and repeated
    points are allowed.
    """
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    ref_arr = np.asarray(ref, dtype=float)
    pts = np.asarray([p for p in points if all(x < r for x, r in zip(p, ref, strict=True))],
                     dtype=float).reshape(-1, len(ref_arr))
    return float(compute_hypervolume(pts, ref_arr))


def hypervolume_history(study: optuna.Study, ref: Sequence[float]) -> list[tuple[int, float]]:
    """``(trial number, hypervolume)`` after each COMPLETE trial, as Optuna computes it.

    ``ref`` is in metric units; maximised objectives are negated with their coordinate.
    Infeasible trials (constraints > 0) and trials outside ``ref`` leave the value unchanged.
    """
    import numpy as np
    from optuna.visualization._hypervolume_history import _get_hypervolume_history_info

    info = _get_hypervolume_history_info(study, np.asarray(ref, dtype=float))
    return [(int(n), float(h)) for n, h in zip(info.trial_numbers, info.values, strict=True)]


def non_domination_rank(loss_values: Any) -> Any:
    """Non-domination rank (0: the first front) of each row of ``loss_values`` ((n, m),
    every objective minimised): Optuna's own fast non-dominated sort, whose private name
    this module keeps out of the rest of kdtune."""
    from optuna.study._multi_objective import _fast_non_domination_rank

    return _fast_non_domination_rank(loss_values)
