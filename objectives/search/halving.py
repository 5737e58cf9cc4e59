"""Multi-objective asynchronous successive halving (the stopping variant of MO-ASHA).

At each rung (``HalvingConfig.rungs``, prediction-stage epochs) a trial records its objective
values as the user attribute ``rung_<epochs>`` and continues only while it is among the best
``max(1, n // eta)`` of the ``n`` trials recorded at that rung, once it holds ``min_trials``
(:func:`decide`), ordered by
:func:`rank_order`: trivial students last, then non-domination rank, then larger
:func:`crowding_distance`, then the better first objective (accuracy), then the earlier trial.

Why: docs/design.md, "Successive halving is kdtune's own", "Halving rank order".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field, field_validator

from kdtune.frozen import FrozenModel

__all__ = ["HalvingConfig", "crowding_distance", "decide", "rank_order"]


class HalvingConfig(FrozenModel):
    """Successive halving along epochs (frozen; unknown keys are rejected).

    Attributes:
        rungs: prediction-stage epoch counts at which trials are ranked, increasing; a rung
            beyond a trial's epochs is never reached by it.
        eta: keep the best 1/eta of the trials recorded at a rung.
        min_trials: a rung stops no trial until it has recorded this many (itself
            included; Optuna's ``bootstrap_count``); ``None``: ``eta``. While a rung holds
            few trials one continues in three, so the first trials decide alone.
    """

    rungs: tuple[int, ...] = (1, 2)
    eta: int = Field(default=3, ge=2)
    min_trials: int | None = Field(default=None, ge=1)

    @field_validator("rungs")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(r < 1 for r in value) or list(value) != sorted(set(value)):
            raise ValueError(f"rungs must be increasing epoch counts >= 1, got {list(value)}")
        return value


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point of one front ((n, m) values; any direction)."""
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        span = points[order[-1], j] - points[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            gaps = (points[order[2:], j] - points[order[:-2], j]) / span
            distance[order[1:-1]] += gaps
    return distance


def rank_order(points: Sequence[Sequence[float]], directions: Sequence[str],
               trivial: Sequence[bool] | None = None) -> list[int]:
    """Indices of ``points`` best first: non-trivial before ``trivial`` ones, then
    non-domination rank, then crowding distance (larger first) within a rank, then the first
    objective (better first: of a front's two boundary points, both infinitely far from the
    rest, the most accurate), then index."""
    from kdtune.storage.optuna_pareto import non_domination_rank

    values = np.asarray(points, dtype=float)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    ranks = non_domination_rank(values * signs)
    crowd = np.zeros(len(values))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = crowding_distance(values[members])
    last = list(trivial) if trivial is not None else [False] * len(values)
    first = values[:, 0] * signs[0]  # smaller is better
    return sorted(range(len(values)),
                  key=lambda i: (last[i], ranks[i], -crowd[i], first[i], i))


def decide(points: Sequence[Sequence[float]], own: int, directions: Sequence[str],
           eta: int, trivial: Sequence[bool] | None = None,
           min_trials: int | None = None) -> tuple[bool, int, int]:
    """Whether the point at index ``own`` continues past its rung.

    Returns ``(continues, place, kept)``: its 1-based place in :func:`rank_order` and how
    many of the ``len(points)`` continue (``max(1, n // eta)``; everyone while n is below
    ``min_trials``, by default ``eta``).
    """
    n = len(points)
    place = rank_order(points, directions, trivial).index(own) + 1
    kept = n if n < (min_trials or eta) else max(1, n // eta)
    return place <= kept, place, kept
