"""Paired bootstrap intervals for student accuracy and the confidence-preservation sigma.

:func:`paired_bootstrap` draws multinomial counts ``w`` (the same for teacher and student):
accuracy ``= sum_i w_i [pred_S(i) = y_i] / n``, sigma
``= sqrt(sum_i m_i d_i^2 / M - (sum_i m_i d_i / M)^2)`` with ``m_i = w_i`` on both-correct
inputs (0 elsewhere), ``M = sum_i m_i`` and ``d_i = p_T(c|i) - p_S(c|i)``. The 95% interval
is the 2.5th and 97.5th percentile; a resample with fewer than two both-correct draws is left
out (:attr:`Interval.n` says how many counted).
Why: docs/design.md, "Paired percentile bootstrap".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000
"""Resamples per interval: the percentile ends move by well under 0.005 between seeds."""


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval: ``low`` and ``high`` ends, over ``n`` resamples."""

    low: float
    high: float
    n: int

    def as_list(self) -> list[float]:
        """``[low, high]``, as stored with a trial."""
        return [self.low, self.high]


def _percentiles(values: np.ndarray, level: float) -> Interval:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Interval(float("nan"), float("nan"), 0)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return Interval(float(low), float(high), int(values.size))


def resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) multinomial counts: row r says how often each example is drawn."""
    if n < 1 or n_resamples < 1:
        raise ValueError(f"n and n_resamples must be >= 1, got n={n}, n_resamples={n_resamples}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(np.float64)


def weighted_sigma(counts: np.ndarray, both: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Population std of ``delta`` over the both-correct draws of each resample (nan if < 2)."""
    both = np.asarray(both, dtype=bool)
    delta = np.asarray(delta, dtype=np.float64)
    m = counts * both[None, :]
    total = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = m @ delta / total
        # two passes (the mean, then squared deviations): exact 0 for a constant multiset
        var = np.einsum("rn,rn->r", m, (delta[None, :] - mean[:, None]) ** 2) / total
    out = np.sqrt(np.clip(var, 0.0, None))
    out[total < 2] = np.nan
    return out


def paired_bootstrap(
    p_teacher: np.ndarray,
    p_student: np.ndarray,
    labels: np.ndarray,
    reference_class: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
    chunk: int = 200,
) -> dict[str, Interval]:
    """Intervals for ``accuracy_student``, ``sigma`` and ``sigma_max`` on one split.

    Args:
        p_teacher, p_student: (n, K) probabilities of the same n examples.
        labels: (n,) integer labels.
        reference_class: the class c of sigma.
        n_resamples: bootstrap resamples.
        seed: the resampling seed (the same seed gives the same intervals).
        level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles).
        chunk: resamples drawn at a time (memory: chunk x n floats).
    """
    p_teacher = np.asarray(p_teacher, dtype=np.float64)
    p_student = np.asarray(p_student, dtype=np.float64)
    labels = np.asarray(labels)
    if p_teacher.shape != p_student.shape or p_teacher.ndim != 2 or len(labels) != len(p_teacher):
        raise ValueError(f"p_teacher {p_teacher.shape}, p_student {p_student.shape} and labels "
                         f"({len(labels)},) must describe the same n examples")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n, k = p_teacher.shape
    if not 0 <= reference_class < k:
        raise ValueError(f"reference_class must be in 0..{k - 1} (K={k}), got {reference_class}")
    correct_s = p_student.argmax(axis=1) == labels
    both = correct_s & (p_teacher.argmax(axis=1) == labels)
    deltas = p_teacher - p_student
    acc, sigma, sigma_max = [], [], []
    rng_seeds = np.random.SeedSequence(seed).spawn((n_resamples + chunk - 1) // chunk)
    for i, sub in enumerate(rng_seeds):
        size = min(chunk, n_resamples - i * chunk)
        counts = resample_counts(n, size, int(sub.generate_state(1)[0]))
        stats = resample_statistics(counts, correct_s, both, deltas, reference_class)
        acc.append(stats["accuracy_student"])
        sigma.append(stats["sigma"])
        sigma_max.append(stats["sigma_max"])
    return {
        "accuracy_student": _percentiles(np.concatenate(acc), level),
        "sigma": _percentiles(np.concatenate(sigma), level),
        "sigma_max": _percentiles(np.concatenate(sigma_max), level),
    }


def resample_statistics(counts: np.ndarray, correct_student: np.ndarray, both: np.ndarray,
                        deltas: np.ndarray, reference_class: int = 0) -> dict[str, np.ndarray]:
    """Each resample's ``accuracy_student``, ``sigma`` and ``sigma_max`` (arrays of R).

    Args:
        counts: (R, n) how often each example is drawn in each resample.
        correct_student: (n,) whether the student classifies each example correctly.
        both: (n,) whether both models do (the both-correct set, recomputed per resample
            by weighting it with the counts).
        deltas: (n, K) p_T - p_S per class.
        reference_class: sigma's class c.

    sigma_max is the largest per-class sigma of the resample (nan where it has < 2
    both-correct draws).
    """
    counts = np.asarray(counts, dtype=np.float64)
    deltas = np.asarray(deltas, dtype=np.float64)
    n = counts.shape[1]
    both = np.asarray(both, dtype=bool)
    per_class = np.stack([weighted_sigma(counts, both, deltas[:, c])
                          for c in range(deltas.shape[1])])
    with np.errstate(invalid="ignore"):
        sigma_max = np.max(per_class, axis=0)
    return {
        "accuracy_student": counts @ np.asarray(correct_student, dtype=np.float64) / n,
        "sigma": per_class[reference_class],
        "sigma_max": sigma_max,
    }


def interval_key(metric: str) -> str:
    """The key an interval is stored under beside its metric, e.g. ``sigma_ci``."""
    return f"{metric}_ci"


__all__ = ["DEFAULT_RESAMPLES", "Interval", "interval_key", "paired_bootstrap",
           "resample_counts", "resample_statistics", "weighted_sigma"]
