"""Tests for objectives.measure.metrics: sigma and friends against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kdtune.objectives.measure import catalogue
from kdtune.objectives.measure.metrics import confidence_metrics, softmax

# Six binary examples: (p_T, p_S, label).
#  1-4: both models correct; 5: student wrong; 6: teacher wrong (both excluded from sigma).
P_T = [[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55]]
P_S = [[0.8, 0.2], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8], [0.4, 0.6], [0.9, 0.1]]
LABELS = [0, 0, 1, 1, 0, 0]

EXPECTED_KEYS = {
    "accuracy_student",
    "accuracy_teacher",
    "f1_student",
    "mcc_student",
    "agreement",
    "sigma",
    "n_both_correct",
    "phi_cnf",
    "kappa",
    "sigma_label",
    "sigma_max",
    "mean_abs_delta",
    "kl_teacher_student",
    "n_all",
    "ece_teacher",
    "ece_student",
    "ece_gap",
    "ece_gap_abs",
    "n_eval",
    "accuracy_majority",
    "sigma_per_class",
}


def _pop_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _metrics(**kwargs) -> dict:
    return confidence_metrics(np.array(P_T), np.array(P_S), np.array(LABELS), **kwargs)


def test_keys_exactly() -> None:
    assert set(_metrics()) == EXPECTED_KEYS


def test_sigma_by_hand() -> None:
    m = _metrics()
    # Δ on class 0 over examples 1-4: 0.9-0.8, 0.7-0.6, 0.2-0.4, 0.3-0.2 = 0.1, 0.1, -0.2, 0.1
    # mean 0.025; squared deviations 0.075^2 * 3 + 0.225^2 = 0.0675; / 4 = 0.016875
    assert m["n_both_correct"] == 4
    assert m["sigma"] == pytest.approx(math.sqrt(0.016875), abs=1e-12)
    assert m["sigma"] == pytest.approx(_pop_std([0.1, 0.1, -0.2, 0.1]), abs=1e-12)
    assert m["mean_abs_delta"] == pytest.approx((0.1 + 0.1 + 0.2 + 0.1) / 4)
    assert m["sigma_max"] == pytest.approx(m["sigma"])  # K = 2
    assert m["sigma_per_class"] == pytest.approx([m["sigma"], m["sigma"]])  # p(0) = 1 - p(1)
    assert m["phi_cnf"] is False  # 0.1299 > 0.05
    assert m["kappa"] == 0.05
    assert _metrics(kappa=0.2)["phi_cnf"] is True


def test_sigma_label_differs_from_sigma() -> None:
    # true-class differences: 0.9-0.8, 0.7-0.6 (class 0), 0.8-0.6, 0.7-0.8 (class 1)
    #   = 0.1, 0.1, 0.2, -0.1: not the class-0 differences (0.1, 0.1, -0.2, 0.1)
    m = _metrics()
    expected = _pop_std([0.1, 0.1, 0.2, -0.1])
    assert m["sigma_label"] == pytest.approx(expected, abs=1e-12)
    assert abs(m["sigma_label"] - m["sigma"]) > 0.01


def test_misclassified_inputs_are_excluded() -> None:
    reference = _metrics()["sigma"]
    # Make the excluded examples' Δ wildly different: sigma must not move.
    p_t, p_s = np.array(P_T), np.array(P_S)
    p_t[4], p_s[4] = [0.99, 0.01], [0.01, 0.99]  # teacher right, student wrong
    p_t[5], p_s[5] = [0.01, 0.99], [0.99, 0.01]  # teacher wrong, student right
    m = confidence_metrics(p_t, p_s, np.array(LABELS))
    assert m["n_both_correct"] == 4
    assert m["sigma"] == pytest.approx(reference, abs=1e-12)
    # and it equals sigma on the four both-correct examples alone
    alone = confidence_metrics(p_t[:4], p_s[:4], np.array(LABELS[:4]))
    assert alone["sigma"] == pytest.approx(reference, abs=1e-12)


def test_accuracy_f1_mcc_agreement_by_hand() -> None:
    m = _metrics()
    # student predictions 0,0,1,1,1,0 vs labels 0,0,1,1,0,0: wrong on example 5 only
    assert m["accuracy_student"] == pytest.approx(5 / 6)
    # teacher predictions 0,0,1,1,0,1: wrong on example 6 only
    assert m["accuracy_teacher"] == pytest.approx(5 / 6)
    # argmaxes agree on examples 1-4
    assert m["agreement"] == pytest.approx(4 / 6)
    # class 1: tp = 2, fp = 1, fn = 0 -> F1 = 2*2 / (2*2 + 1 + 0) = 0.8
    assert m["f1_student"] == pytest.approx(0.8)
    # tn = 3: MCC = (2*3 - 1*0) / sqrt(3 * 2 * 4 * 3)
    assert m["mcc_student"] == pytest.approx(6 / math.sqrt(72))
    assert m["n_eval"] == 6 and m["n_all"] == 6
    assert m["accuracy_majority"] == pytest.approx(4 / 6)  # four of the six labels are 0


def test_f1_and_mcc_match_scikit_learn() -> None:
    from sklearn.metrics import f1_score, matthews_corrcoef

    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        labels = rng.integers(0, k, size=40)
        p_s = softmax(rng.normal(size=(40, k)) + 2 * np.eye(k)[labels])
        p_t = softmax(rng.normal(size=(40, k)))
        m = confidence_metrics(p_t, p_s, labels)
        pred = p_s.argmax(axis=1)
        average = "binary" if k == 2 else "macro"
        assert m["f1_student"] == pytest.approx(f1_score(labels, pred, average=average))
        assert m["mcc_student"] == pytest.approx(matthews_corrcoef(labels, pred))


def test_kl_by_hand() -> None:
    total = 0.0
    for t_row, s_row in zip(P_T, P_S, strict=True):
        total += sum(a * math.log(a / b) for a, b in zip(t_row, s_row, strict=True))
    assert _metrics()["kl_teacher_student"] == pytest.approx(total / 6, rel=1e-12)


def test_kl_zero_probabilities() -> None:
    # p_T = 0 terms count 0; p_S = 0 is floored so KL stays finite
    p_t = np.array([[1.0, 0.0], [0.0, 1.0]])
    p_s = np.array([[1.0, 0.0], [0.5, 0.5]])
    m = confidence_metrics(p_t, p_s, np.array([0, 1]))
    assert m["kl_teacher_student"] == pytest.approx(math.log(2) / 2)


def test_ece_by_hand() -> None:
    # n_bins = 5: bins (0, .2], (.2, .4], (.4, .6], (.6, .8], (.8, 1]
    p_t = np.array([[0.9, 0.1], [0.15, 0.85], [0.7, 0.3], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1])
    # (.8, 1]: confidences .9 (right), .85 (wrong): |0.5 - 0.875| * 2/4 = 0.1875
    # (.6, .8]: .7 (right): |1 - 0.7| * 1/4 = 0.075
    # (.4, .6]: .55 (right): |1 - 0.55| * 1/4 = 0.1125
    expected_teacher = 0.1875 + 0.075 + 0.1125
    # student: confidence .9 everywhere, right on 2 of 4: |0.5 - 0.9| = 0.4
    p_s = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1]])
    m = confidence_metrics(p_t, p_s, labels, n_bins=5)
    assert m["ece_teacher"] == pytest.approx(expected_teacher)
    assert m["ece_student"] == pytest.approx(0.4)
    assert m["ece_gap"] == pytest.approx(0.4 - expected_teacher)
    assert m["ece_gap_abs"] == pytest.approx(0.4 - expected_teacher)
    swapped = confidence_metrics(p_s, p_t, labels, n_bins=5)  # teacher worse calibrated
    assert swapped["ece_gap"] == pytest.approx(expected_teacher - 0.4)
    assert swapped["ece_gap_abs"] == pytest.approx(0.4 - expected_teacher)


def test_three_classes_sigma_max() -> None:
    p_t = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    p_s = np.array([[0.5, 0.2, 0.3], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6]])
    labels = np.array([0, 1, 2])  # all correct for both
    # Δ per class: class 0: 0.1, 0, 0; class 1: 0.1, 0.2, -0.2; class 2: -0.2, -0.2, 0.2
    sigma_0 = _pop_std([0.1, 0.0, 0.0])
    sigma_1 = _pop_std([0.1, 0.2, -0.2])
    sigma_2 = _pop_std([-0.2, -0.2, 0.2])
    assert sigma_2 > sigma_1 > sigma_0
    m = confidence_metrics(p_t, p_s, labels)
    assert m["sigma"] == pytest.approx(sigma_0, abs=1e-12)
    assert m["sigma_max"] == pytest.approx(sigma_2, abs=1e-12)
    assert m["sigma_per_class"] == pytest.approx([sigma_0, sigma_1, sigma_2], abs=1e-12)
    assert m["sigma_max"] == max(m["sigma_per_class"])
    assert m["f1_student"] == pytest.approx(1.0)  # macro F1
    m2 = confidence_metrics(p_t, p_s, labels, reference_class=2)
    assert m2["sigma"] == pytest.approx(sigma_2, abs=1e-12)
    # true-class differences: 0.1, 0.2, 0.2
    assert m["sigma_label"] == pytest.approx(_pop_std([0.1, 0.2, 0.2]), abs=1e-12)


def test_sigma_nan_below_two_inputs() -> None:
    # only example 1 is classified correctly by both
    p_t = np.array([[0.9, 0.1], [0.9, 0.1]])
    p_s = np.array([[0.7, 0.3], [0.9, 0.1]])
    m = confidence_metrics(p_t, p_s, np.array([0, 1]))
    assert m["n_both_correct"] == 1
    for key in ("sigma", "sigma_label", "sigma_max"):
        assert math.isnan(m[key])
    assert len(m["sigma_per_class"]) == 2 and all(map(math.isnan, m["sigma_per_class"]))
    assert m["phi_cnf"] is False
    assert m["mean_abs_delta"] == pytest.approx(0.2)
    # none correct by both: mean_abs_delta is nan too
    m0 = confidence_metrics(p_t, p_s, np.array([1, 1]))
    assert m0["n_both_correct"] == 0
    assert math.isnan(m0["sigma"]) and math.isnan(m0["mean_abs_delta"])
    assert m0["phi_cnf"] is False


@pytest.mark.parametrize(
    ("p_t", "p_s", "labels", "kwargs", "match"),
    [
        ([[0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]], [0], {}, "p_student must have the shape"),
        ([[0.5, 0.5]], [[0.5, 0.25, 0.25]], [0], {}, "same n and K"),
        ([[0.5, 0.5]], [[0.5, 0.5]], [0, 1], {}, r"labels must have shape \(1,\)"),
        ([[0.5, 0.5]], [[0.5, 0.5]], [2], {}, r"labels must be in 0..1 \(K=2\), got 2"),
        ([[0.5, 0.5]], [[0.5, 0.5]], [0.0], {}, "integer class indices"),
        ([[np.nan, 0.5]], [[0.5, 0.5]], [0], {}, "p_teacher must be finite"),
        ([[0.5, 0.5]], [[2.0, -1.0]], [0], {}, "p_student must be probabilities >= 0"),
        ([[2.0, 1.0]], [[0.5, 0.5]], [0], {}, "rows must sum to 1.*row 0 sums to 3"),
        ([0.5, 0.5], [0.5, 0.5], [0], {}, r"shape \(n, K\)"),
        ([[0.5, 0.5]], [[0.5, 0.5]], [0], {"reference_class": 2}, "reference_class must be in"),
        ([[0.5, 0.5]], [[0.5, 0.5]], [0], {"kappa": -0.1}, "kappa must be"),
        ([[0.5, 0.5]], [[0.5, 0.5]], [0], {"n_bins": 0}, "n_bins must be an int >= 1, got 0"),
    ],
)
def test_validation_errors(p_t, p_s, labels, kwargs, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        confidence_metrics(np.array(p_t), np.array(p_s), np.array(labels), **kwargs)


def test_softmax() -> None:
    p = softmax(np.array([[0.0, math.log(3.0)]]))
    np.testing.assert_allclose(p, [[0.25, 0.75]])
    # temperature 2: exp(0), exp(ln 3 / 2) = 1, sqrt(3)
    p2 = softmax(np.array([0.0, math.log(3.0)]), temperature=2.0)
    np.testing.assert_allclose(p2, [1 / (1 + math.sqrt(3)), math.sqrt(3) / (1 + math.sqrt(3))])
    big = softmax(np.array([[1000.0, 1000.0, -1000.0]]))  # no overflow
    np.testing.assert_allclose(big, [[0.5, 0.5, 0.0]])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        softmax(np.zeros(2), temperature=0.0)


def test_metric_directions() -> None:
    not_objectives = {"n_both_correct", "n_all", "n_eval", "kappa", "phi_cnf", "sigma_per_class"}
    teacher_only = {"accuracy_teacher", "ece_teacher", "accuracy_majority"}  # same every trial
    numeric = EXPECTED_KEYS - not_objectives - teacher_only
    int8 = {"accuracy_int8", "sigma_int8", "agreement_int8"}  # with eval.int8 only
    size = {"params", "latency_ms", "params_ratio", "latency_ratio"}  # both axes, absolute
    assert numeric | size | int8 == set(catalogue.OBJECTIVES)  # and against the teacher
    assert catalogue.direction("sigma_int8") == "minimize"
    directions = {name: catalogue.direction(name) for name in catalogue.OBJECTIVES}
    assert directions["ece_gap_abs"] == "minimize"
    assert set(directions.values()) == {"maximize", "minimize"}
    assert directions["accuracy_student"] == "maximize"
    assert directions["sigma"] == "minimize"
    assert directions["latency_ms"] == "minimize"
    with pytest.raises(ValueError, match="unknown objective 'n_eval'; accepted: accuracy_student"):
        catalogue.direction("n_eval")


def test_catalogue_names_every_reported_metric() -> None:
    """Every number confidence_metrics reports is in the catalogue, with a meaning."""
    assert EXPECTED_KEYS | {"params", "latency_ms"} <= set(catalogue.METRICS)
    for name in EXPECTED_KEYS:
        assert catalogue.meaning(name), name
