"""How well a student matches its teacher: accuracy, confidence preservation, calibration.

Plain numpy on ``p_teacher`` and ``p_student`` of shape (n, K) (rows are softmax outputs at
temperature 1) and integer ``labels`` of shape (n,). The central statistic is the paper's sigma
(Vengertsev and Sherman, 2024): over the inputs that BOTH teacher and student classify
correctly, Δ(x) = p_T(c|x) − p_S(c|x) for a reference class c, and sigma is the population
standard deviation (ddof=0) of Δ. The property phi_cnf holds when sigma <= kappa. See
:func:`confidence_metrics` for every reported number, and the metric catalogue
(:mod:`kdtune.objectives.measure.catalogue`) for each one's meaning, unit and direction.
"""

from __future__ import annotations

import math

import numpy as np

ROW_SUM_TOLERANCE = 1e-3
"""How far a probability row may sum from 1 (float32/float16 softmax outputs drift a little)."""

LOG_FLOOR = 1e-12
"""Student probabilities are floored at this value inside log() so KL stays finite."""


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax over the last axis.

    softmax(z / t)_k = exp(z_k/t - max_j z_j/t) / sum_j exp(z_j/t - max_j z_j/t)

    Args:
        logits: array of shape (..., K).
        temperature: t > 0.

    Returns:
        Probabilities of the same shape, float64, each row in [0, 1] summing to 1.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    if z.ndim == 0:
        raise ValueError(f"logits must have at least one axis (..., K), got a scalar {logits!r}")
    z = z - z.max(axis=-1, keepdims=True)
    exps = np.exp(z)
    return exps / exps.sum(axis=-1, keepdims=True)


def _check_probabilities(name: str, p: np.ndarray) -> None:
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n, K) with n >= 1 and K >= 2, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be finite; it holds nan or inf")
    if np.any(p < 0):
        raise ValueError(f"{name} must be probabilities >= 0, got minimum {p.min()}")
    sums = p.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > ROW_SUM_TOLERANCE:
        raise ValueError(
            f"{name} rows must sum to 1 (within {ROW_SUM_TOLERANCE}); row {worst} sums to "
            f"{sums[worst]:.6g}. Pass probabilities (see softmax), not logits"
        )


def check_labels(labels: np.ndarray, n: int, k: int, against: str) -> None:
    """Raise ValueError unless ``labels`` are n integer class ids in 0..k-1."""
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match {against}, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= k:
        bad = labels[(labels < 0) | (labels >= k)][0]
        raise ValueError(f"labels must be in 0..{k - 1} (K={k}), got {bad}")


def check_reference_class(reference_class: int, k: int) -> None:
    """Raise ValueError unless ``reference_class`` is an int in 0..k-1."""
    if isinstance(reference_class, bool) or not isinstance(reference_class, (int, np.integer)):
        raise ValueError(f"reference_class must be an int in 0..{k - 1}, got {reference_class!r}")
    if not 0 <= reference_class < k:
        raise ValueError(f"reference_class must be in 0..{k - 1} (K={k}), got {reference_class}")


def _validate(
    p_teacher: np.ndarray,
    p_student: np.ndarray,
    labels: np.ndarray,
    reference_class: int,
    kappa: float,
    n_bins: int,
) -> None:
    _check_probabilities("p_teacher", p_teacher)
    _check_probabilities("p_student", p_student)
    if p_student.shape != p_teacher.shape:
        raise ValueError(
            f"p_student must have the shape of p_teacher {p_teacher.shape} (same n and K), "
            f"got {p_student.shape}"
        )
    n, k = p_teacher.shape
    check_labels(labels, n, k, "the probabilities")
    check_reference_class(reference_class, k)
    if not (math.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}")


def _f1(labels: np.ndarray, predictions: np.ndarray, k: int) -> float:
    """Binary (K=2): F1 of class 1. K > 2: macro F1 over the classes present in labels or
    predictions (scikit-learn's convention). A class with no true or predicted example
    scores 0 in the binary case."""

    def f1_of(cls: int) -> float:
        tp = np.sum((predictions == cls) & (labels == cls))
        fp = np.sum((predictions == cls) & (labels != cls))
        fn = np.sum((predictions != cls) & (labels == cls))
        denominator = 2 * tp + fp + fn
        return float(2 * tp / denominator) if denominator > 0 else 0.0

    if k == 2:
        return f1_of(1)
    present = np.union1d(labels, predictions)
    return float(np.mean([f1_of(int(c)) for c in present]))


def _mcc(labels: np.ndarray, predictions: np.ndarray, k: int) -> float:
    """Matthews correlation coefficient, multiclass form (Gorodkin 2004), as scikit-learn.

    With confusion matrix C, s = n, c = trace(C), t_k = true counts, p_k = predicted counts:
    MCC = (c*s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) * (s^2 - sum_k t_k^2)),
    0 when the denominator is 0. Range [-1, 1].
    """
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (labels, predictions), 1.0)
    s = confusion.sum()
    c = np.trace(confusion)
    t = confusion.sum(axis=1)
    p = confusion.sum(axis=0)
    denominator = math.sqrt((s**2 - np.dot(p, p)) * (s**2 - np.dot(t, t)))
    if denominator == 0:
        return 0.0
    return float((c * s - np.dot(p, t)) / denominator)


def _ece(probabilities: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Expected calibration error with equal-width bins on the max-probability confidence.

    conf_i = max_k p[i,k], correct_i = (argmax_k p[i,k] == y_i); bin b holds the i with
    conf_i in (b/n_bins, (b+1)/n_bins]. ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|, where
    acc and conf are the means of correct and conf over the bin. Range [0, 1].
    """
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    n = len(labels)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        count = int(in_bin.sum())
        if count > 0:
            gap = abs(correct[in_bin].mean() - confidence[in_bin].mean())
            ece += count / n * gap
    return float(ece)


def _population_std(values: np.ndarray) -> float:
    """Standard deviation with ddof=0; nan for fewer than 2 values."""
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=0))


def confidence_metrics(
    p_teacher: np.ndarray,
    p_student: np.ndarray,
    labels: np.ndarray,
    reference_class: int = 0,
    kappa: float = 0.05,
    n_bins: int = 15,
) -> dict[str, float | int | bool | list[float]]:
    """Accuracy, confidence-preservation and calibration metrics of a student vs its teacher.

    Args:
        p_teacher: (n, K) teacher probabilities (rows sum to 1).
        p_student: (n, K) student probabilities on the same inputs.
        labels: (n,) integer gold labels in 0..K-1.
        reference_class: c, the class whose probability sigma compares (the paper uses 0).
        kappa: the phi_cnf threshold; phi_cnf holds when sigma <= kappa.
        n_bins: number of equal-width confidence bins for the ECE.

    Returns a flat dict. With pred_T, pred_S the argmaxes and
    BOTH = {i : pred_T[i] == y_i and pred_S[i] == y_i} (the inputs both classify correctly):

    * ``accuracy_student``, ``accuracy_teacher``: fraction of pred == y, in [0, 1].
    * ``f1_student``: K = 2: F1 of class 1; K > 2: macro F1. In [0, 1].
    * ``mcc_student``: Matthews correlation coefficient, in [-1, 1].
    * ``agreement``: fraction of inputs where pred_T == pred_S, in [0, 1].
    * ``sigma``: population std (ddof=0) of Δ_i = p_T[i,c] - p_S[i,c] over i in BOTH,
      c = reference_class. nan when |BOTH| < 2 (a spread needs two values).
    * ``n_both_correct``: |BOTH|.
    * ``phi_cnf``: sigma <= kappa; False when sigma is nan. ``kappa``: echoed.
    * ``sigma_label``: population std of p_T[i,y_i] - p_S[i,y_i] over BOTH (the difference
      on each input's true class). For K = 2 it differs from sigma when BOTH holds both
      classes, since then Δ on class c is +(true-class difference) for one class and − for
      the other. nan when |BOTH| < 2.
    * ``sigma_per_class``: [sigma_0, ..., sigma_{K-1}], sigma_c being sigma with reference
      class c (a list of K floats; nan each when |BOTH| < 2). On K > 2 classes sigma on one
      class is diluted by the inputs of the others (their Δ on c is near 0), so read each.
    * ``sigma_max``: max over c of sigma_c, the largest entry of ``sigma_per_class`` (the
      default objective when K > 2). For K = 2, p(0) = 1 - p(1) makes every sigma_c equal,
      so sigma_max == sigma.
    * ``mean_abs_delta``: mean of |Δ_i| over BOTH (reference class c); nan when BOTH is empty.
    * ``kl_teacher_student``: mean over all n inputs of KL(p_T || p_S) =
      sum_k p_T[i,k] * (log p_T[i,k] - log max(p_S[i,k], 1e-12)), terms with p_T = 0
      counting 0. In nats, >= 0. ``n_all``: n.
    * ``ece_teacher``, ``ece_student``: expected calibration error, n_bins equal-width bins
      on the max probability: sum_b |B_b|/n * |acc(B_b) - conf(B_b)|, in [0, 1].
    * ``ece_gap``: ece_student - ece_teacher (signed; > 0: the student is worse calibrated).
    * ``ece_gap_abs``: |ece_student - ece_teacher|, in [0, 1] (calibration preserved either way).
    * ``n_eval``: n.

    Raises:
        ValueError: shapes that disagree, labels out of range or not integers, probabilities
            that are not finite, negative or do not sum to 1, a bad reference_class, kappa or
            n_bins.
    """
    p_teacher = np.asarray(p_teacher, dtype=np.float64)
    p_student = np.asarray(p_student, dtype=np.float64)
    labels = np.asarray(labels)
    _validate(p_teacher, p_student, labels, reference_class, kappa, n_bins)
    n, k = p_teacher.shape

    pred_teacher = p_teacher.argmax(axis=1)
    pred_student = p_student.argmax(axis=1)
    both = (pred_teacher == labels) & (pred_student == labels)
    n_both = int(both.sum())

    delta_by_class = p_teacher[both] - p_student[both]  # (n_both, K)
    delta = delta_by_class[:, reference_class]
    delta_label = delta_by_class[np.arange(n_both), labels[both]]
    sigma = _population_std(delta)
    sigma_per_class = [_population_std(delta_by_class[:, c]) for c in range(k)]
    sigma_max = float("nan") if n_both < 2 else max(sigma_per_class)

    positive = p_teacher > 0
    log_ratio = np.zeros_like(p_teacher)
    log_ratio[positive] = np.log(p_teacher[positive]) - np.log(
        np.maximum(p_student[positive], LOG_FLOOR)
    )
    kl_per_input = (p_teacher * log_ratio).sum(axis=1)

    ece_teacher = _ece(p_teacher, labels, n_bins)
    ece_student = _ece(p_student, labels, n_bins)

    return {
        "accuracy_student": float(np.mean(pred_student == labels)),
        "accuracy_teacher": float(np.mean(pred_teacher == labels)),
        "accuracy_majority": float(np.bincount(labels, minlength=k).max() / n),
        "f1_student": _f1(labels, pred_student, k),
        "mcc_student": _mcc(labels, pred_student, k),
        "agreement": float(np.mean(pred_teacher == pred_student)),
        "sigma": sigma,
        "n_both_correct": n_both,
        "phi_cnf": bool(sigma <= kappa),  # nan <= kappa is False
        "kappa": float(kappa),
        "sigma_label": _population_std(delta_label),
        "sigma_max": sigma_max,
        "sigma_per_class": sigma_per_class,
        "mean_abs_delta": float(np.mean(np.abs(delta))) if n_both > 0 else float("nan"),
        "kl_teacher_student": float(kl_per_input.mean()),
        "n_all": n,
        "ece_teacher": ece_teacher,
        "ece_student": ece_student,
        "ece_gap": ece_student - ece_teacher,
        "ece_gap_abs": abs(ece_student - ece_teacher),
        "n_eval": n,
    }
