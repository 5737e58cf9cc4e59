"""Paired bootstrap intervals (objectives/measure/bootstrap.py): hand-computed cases, coverage on
simulated data, paired resampling, per-class sigma on K = 3."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kdtune.objectives.measure.bootstrap import (
    DEFAULT_RESAMPLES,
    interval_key,
    paired_bootstrap,
    resample_counts,
    resample_statistics,
    weighted_sigma,
)
from kdtune.objectives.measure.metrics import confidence_metrics

# Five binary examples, label 0 each: 0-2 both correct, 3 student wrong, 4 teacher wrong.
P_T = np.array([[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.8, 0.2], [0.4, 0.6]])
P_S = np.array([[0.8, 0.2], [0.75, 0.25], [0.9, 0.1], [0.3, 0.7], [0.9, 0.1]])
LABELS = np.zeros(5, dtype=int)


def _expanded_std(counts_row, both, delta) -> float:
    """numpy's std (ddof=0) of the both-correct multiset a resample draws."""
    multiset = np.repeat(delta[both], counts_row[both].astype(int))
    return float(np.std(multiset, ddof=0)) if len(multiset) >= 2 else math.nan


def test_weighted_sigma_is_the_std_of_the_expanded_multiset():
    both = (P_T.argmax(1) == LABELS) & (P_S.argmax(1) == LABELS)
    assert both.tolist() == [True, True, True, False, False]
    delta = P_T[:, 0] - P_S[:, 0]
    # every ordered resample of 5 examples would be 3125 rows; these hit the edge cases:
    counts = np.array([
        [1, 1, 1, 1, 1],   # the original sample
        [5, 0, 0, 0, 0],   # one example five times: sigma 0
        [0, 0, 0, 3, 2],   # no both-correct draw: nan
        [0, 1, 0, 4, 0],   # one both-correct draw: nan (a spread needs two)
        [2, 0, 1, 0, 2],   # a teacher-wrong example drawn twice still does not count
        [0, 3, 2, 0, 0],
    ], dtype=float)
    got = weighted_sigma(counts, both, delta)
    want = [_expanded_std(row, both, delta) for row in counts]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)
    assert got[1] == 0.0
    # the original sample's sigma is confidence_metrics' sigma
    assert got[0] == pytest.approx(confidence_metrics(P_T, P_S, LABELS)["sigma"], abs=1e-12)


def test_every_resample_of_four_examples_by_hand():
    """All 4^4 = 256 ordered resamples of n = 4: each statistic matches numpy on the
    expanded resample, and accuracy's distribution is Binomial(4, 3/4)."""
    p_t, p_s, labels = P_T[[0, 1, 2, 3]], P_S[[0, 1, 2, 3]], LABELS[:4]
    correct = p_s.argmax(1) == labels
    both = correct & (p_t.argmax(1) == labels)
    counts = np.array([np.bincount(draw, minlength=4)
                       for draw in itertools.product(range(4), repeat=4)], dtype=float)
    stats = resample_statistics(counts, correct, both, p_t - p_s)
    for row, acc, sigma in zip(counts, stats["accuracy_student"], stats["sigma"], strict=True):
        draws = np.repeat(np.arange(4), row.astype(int))
        assert acc == pytest.approx(correct[draws].mean())
        want = _expanded_std(row, both, p_t[:, 0] - p_s[:, 0])
        assert (math.isnan(sigma) and math.isnan(want)) or sigma == pytest.approx(want)
    values, freq = np.unique(stats["accuracy_student"], return_counts=True)
    assert values.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert freq.tolist() == [1, 12, 54, 108, 81]  # 256 * Binomial(4, 3/4)
    np.testing.assert_allclose(stats["sigma_max"], stats["sigma"], rtol=0, atol=1e-12)  # K = 2


def test_intervals_of_a_hand_computed_case():
    """n = 4, three right: P(accuracy = 0) = 1/256 = 0.4% < 2.5% < P(<= 1/4) = 13/256 = 5.1%
    and P(accuracy = 1) = 81/256 = 31.6% > 2.5%, so the 95% interval is [0.25, 1.0].

    sigma: four both-correct inputs, Δ = 0.4 on one and 0 on three; a resample drawing the
    first j times has sigma 0.4 * sqrt(j/4 * (1 - j/4)): 0 (j = 0, 4: 82/256 = 32%),
    0.1732 (j = 1, 3: 47%) or 0.2 (j = 2: 21%), so the interval is [0, 0.2].
    """
    p_t = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])
    p_s = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])
    ci = paired_bootstrap(p_t, p_s, np.array([0, 1, 2, 0]), n_resamples=2000, seed=3)
    assert ci["accuracy_student"].as_list() == [1.0, 1.0]  # all four right, every resample
    assert ci["sigma"].low == 0.0 and ci["sigma"].high == pytest.approx(0.2)
    assert ci["sigma"].n == 2000

    p_t3 = np.vstack([p_t[[0, 1, 2]], [[0.1, 0.7, 0.2]]])
    p_s3 = np.vstack([p_s[[0, 1, 2]], [[0.1, 0.2, 0.7]]])  # student wrong on the fourth
    ci = paired_bootstrap(p_t3, p_s3, np.array([0, 1, 2, 1]), n_resamples=2000, seed=3)
    assert ci["accuracy_student"].as_list() == [0.25, 1.0]


def test_interval_coverage_on_simulated_data():
    """200 datasets of 200 inputs from a known distribution: the 95% intervals cover the
    true accuracy (0.8) and the true sigma (std of Uniform(-0.1, 0.1) = 0.0577) in about
    95% of them."""
    rng = np.random.default_rng(12)
    true_acc, true_sigma = 0.8, 0.2 / math.sqrt(12)
    n, datasets = 200, 200
    covered_acc = covered_sigma = 0
    for d in range(datasets):
        p_t0 = rng.uniform(0.65, 0.9, n)
        p_s0 = p_t0 - rng.uniform(-0.1, 0.1, n)
        student_right = rng.random(n) < true_acc
        p_s0 = np.where(student_right, p_s0, 1.0 - p_s0)  # wrong: the other side of 0.5
        p_t = np.stack([p_t0, 1 - p_t0], 1)
        p_s = np.stack([p_s0, 1 - p_s0], 1)
        ci = paired_bootstrap(p_t, p_s, np.zeros(n, dtype=int), n_resamples=500, seed=d)
        acc, sigma = ci["accuracy_student"], ci["sigma"]
        covered_acc += acc.low <= true_acc <= acc.high
        covered_sigma += sigma.low <= true_sigma <= sigma.high
    assert 0.88 <= covered_acc / datasets <= 0.99, covered_acc
    assert 0.85 <= covered_sigma / datasets <= 0.99, covered_sigma


def test_same_seed_same_intervals_other_seed_others():
    rng = np.random.default_rng(0)
    p_t = rng.dirichlet([2, 2, 2], 300)
    p_s = np.clip(p_t + rng.normal(0, 0.05, p_t.shape), 0.001, None)
    p_s /= p_s.sum(1, keepdims=True)
    labels = rng.integers(0, 3, 300)
    a = paired_bootstrap(p_t, p_s, labels, seed=7)
    b = paired_bootstrap(p_t, p_s, labels, seed=7)
    c = paired_bootstrap(p_t, p_s, labels, seed=8)
    assert a == b
    assert a["sigma"] != c["sigma"]
    assert a["sigma"].n == DEFAULT_RESAMPLES
    # the chunking does not change the draws' statistics' meaning: intervals contain the point
    point = confidence_metrics(p_t, p_s, labels)
    for name in ("accuracy_student", "sigma", "sigma_max"):
        assert a[name].low <= point[name] <= a[name].high, name
    assert interval_key("sigma") == "sigma_ci"


def test_teacher_and_student_are_resampled_together():
    """A student identical to its teacher has Δ = 0 on every input, so every paired
    resample has sigma exactly 0; resampling the two models independently would not."""
    rng = np.random.default_rng(1)
    p = rng.dirichlet([1, 1], 100)
    labels = p.argmax(1)
    labels[:20] = 1 - labels[:20]  # both wrong on 20
    ci = paired_bootstrap(p, p.copy(), labels, seed=0)
    assert ci["sigma"].as_list() == [0.0, 0.0] and ci["sigma_max"].as_list() == [0.0, 0.0]
    assert ci["accuracy_student"].low < 0.8 < ci["accuracy_student"].high
    # unpaired (teacher rows drawn apart from student rows) gives a spread
    counts = resample_counts(100, 1, 0)[0].astype(int)
    other = resample_counts(100, 1, 1)[0].astype(int)
    t_rows, s_rows = np.repeat(np.arange(100), counts), np.repeat(np.arange(100), other)
    unpaired = p[t_rows, 0] - p[s_rows, 0]
    assert np.std(unpaired) > 0.1


def test_k3_reports_sigma_per_class_and_sigma_max_is_their_max():
    # three both-correct inputs of three classes; Δ per class by hand
    p_t = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    p_s = np.array([[0.6, 0.2, 0.2], [0.1, 0.6, 0.3], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    labels = np.array([0, 1, 2, 0])  # the student is wrong on the last
    m = confidence_metrics(p_t, p_s, labels)
    # Δ on the three both-correct inputs: class 0 (.2, .1, 0), class 1 (-.1, .1, .1),
    # class 2 (-.1, -.2, -.1); population stds 0.1 * sqrt(2/3), sqrt(8/9), sqrt(2/9)
    want = [0.1 * math.sqrt(2 / 3), 0.1 * math.sqrt(8 / 9), 0.1 * math.sqrt(2 / 9)]
    assert m["sigma_per_class"] == pytest.approx(want)
    assert len(m["sigma_per_class"]) == 3
    assert m["sigma_max"] == max(m["sigma_per_class"]) == pytest.approx(want[1])
    assert m["sigma"] == m["sigma_per_class"][0]  # reference class 0
    assert confidence_metrics(p_t, p_s, labels, reference_class=1)["sigma"] == m["sigma_max"]

    ci = paired_bootstrap(p_t, p_s, labels, seed=0)
    assert ci["sigma_max"].high >= ci["sigma"].high
    # sigma_max of each resample is the max of that resample's per-class sigmas
    counts = resample_counts(4, 50, 5)
    correct = p_s.argmax(1) == labels
    both = correct & (p_t.argmax(1) == labels)
    stats = resample_statistics(counts, correct, both, p_t - p_s)
    per_class = np.stack([weighted_sigma(counts, both, (p_t - p_s)[:, c]) for c in range(3)])
    np.testing.assert_array_equal(stats["sigma_max"], np.max(per_class, axis=0))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="same n examples"):
        paired_bootstrap(P_T, P_S[:3], LABELS)
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(P_T, P_S, LABELS, level=1.5)
    with pytest.raises(ValueError, match="reference_class"):
        paired_bootstrap(P_T, P_S, LABELS, reference_class=2)


def test_final_metrics_store_the_intervals_as_lists():
    from kdtune.objectives.distillation.evaluation import interval_ci

    out = interval_ci(P_T, P_S, LABELS, reference_class=0, seed=0, n_resamples=200)
    assert set(out) == {"accuracy_student_ci", "sigma_ci", "sigma_max_ci", "n_resamples"}
    assert out["n_resamples"] == 200
    for key in ("accuracy_student_ci", "sigma_ci", "sigma_max_ci"):
        assert isinstance(out[key], list) and len(out[key]) == 2
        assert all(isinstance(v, float) for v in out[key])
    assert out == interval_ci(P_T, P_S, LABELS, reference_class=0, seed=0, n_resamples=200)


def test_a_distillation_run_stores_the_intervals(tiny_teacher_dir, synthetic_csv):
    """The run's final metrics carry the intervals (as lists, JSON-able for Optuna user
    attributes), the per-class sigmas and the resample count; the point values lie inside."""
    import json

    from kdtune.objectives.data.dataset import DataConfig
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.distillation.run import distill

    data = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, max_length=16)
    cfg = DistillConfig(teacher=str(tiny_teacher_dir), data=data, batch_size=16, threads=2,
                        student_layers=2, epochs=1, learning_rate=1e-3, seed=5)
    m = distill(cfg).metrics
    assert m["n_resamples"] == DEFAULT_RESAMPLES
    assert len(m["sigma_per_class"]) == 2 and m["sigma_max"] == max(m["sigma_per_class"])
    for name in ("accuracy_student", "sigma", "sigma_max"):
        low, high = m[interval_key(name)]
        assert low <= m[name] <= high, (name, low, m[name], high)
    assert m["student_hidden_size"] == 32 and m["student_layers"] == 2
    json.dumps(m)  # what Optuna stores
