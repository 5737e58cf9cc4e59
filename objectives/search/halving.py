"""Multi-objective asynchronous successive halving (the stopping variant of MO-ASHA).

Optuna's pruners refuse multi-objective studies, so kdtune ranks trials itself. The fidelity
is the number of prediction-stage epochs a trial has trained. At each rung (``rungs``, e.g.
after epochs 1 and 2) a trial stores its objective values on the selection split as the trial
user attribute ``rung_<epochs>`` (:func:`kdtune.attrs.rung_key`), in the study's storage, so
every worker on every machine sees the same ladder (``{"values": [...], "trivial": bool}``).
It then continues only while it is among the best ``max(1, n // eta)`` of the ``n`` trials
that have reached that rung so far, itself included (asynchronous: it is compared with what
has been recorded, not with a full rung); with fewer than ``eta`` recorded it continues. A
trial that stops ends PRUNED with the rung and its place in the reason. A worker that dies
mid-trial loses that trial's training: kdtune re-queues it as a new trial that starts from
epoch 0; the rungs the dead attempt recorded stay in the ladder (they were measured).

Ranking (:func:`rank_order`): trivial students last (accuracy at a rung no better than
always predicting the majority class: their confidences sit near the prior, so their sigma
is low and they would otherwise be non-dominated and crowd out students that learn), then
non-dominated sorting (Optuna's fast non-domination rank),
then, within one front, larger crowding distance first (NSGA-II's distance: per objective,
the gap between a point's neighbours over the front's range, boundary points infinite), then
the earlier trial first. So among equally good trade-offs the ones in sparse regions of the
front survive, as NSGA-II keeps them.
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
    """

    rungs: tuple[int, ...] = (1, 2)
    eta: int = Field(default=3, ge=2)

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
    non-domination rank, then crowding distance (larger first) within a rank, then index."""
    from kdtune.storage.optuna_adapter import non_domination_rank

    values = np.asarray(points, dtype=float)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    ranks = non_domination_rank(values * signs)
    crowd = np.zeros(len(values))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = crowding_distance(values[members])
    last = list(trivial) if trivial is not None else [False] * len(values)
    return sorted(range(len(values)), key=lambda i: (last[i], ranks[i], -crowd[i], i))


def decide(points: Sequence[Sequence[float]], own: int, directions: Sequence[str],
           eta: int, trivial: Sequence[bool] | None = None) -> tuple[bool, int, int]:
    """Whether the point at index ``own`` continues past its rung.

    Returns ``(continues, place, kept)``: its 1-based place in :func:`rank_order` and how
    many of the ``len(points)`` continue (``max(1, n // eta)``; everyone while n < eta).
    """
    n = len(points)
    place = rank_order(points, directions, trivial).index(own) + 1
    kept = n if n < eta else max(1, n // eta)
    return place <= kept, place, kept
