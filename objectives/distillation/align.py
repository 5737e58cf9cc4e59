"""Post-hoc confidence alignment: one temperature that matches student and teacher confidences.

After distillation, :func:`fit_temperature` finds T > 0 such that softmax(z_S / T) is closest to
the teacher's probabilities, and :func:`fold_temperature` divides the final classification
layer by T, so the saved Hugging Face checkpoint serves the aligned confidences with no extra
code. Dividing logits by T > 0 keeps every argmax, so labels and accuracy do not change.
:func:`align_run` is a distillation run's step (what it fits on: ``evaluation.alignment_inputs``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..measure.metrics import (
    _check_probabilities,
    check_labels,
    check_reference_class,
    confidence_metrics,
    softmax,
)

__all__ = [
    "ALIGN_FITS",
    "ALIGN_MODES",
    "align_run",
    "align_student",
    "fit_temperature",
    "fold_temperature",
]

ALIGN_MODES = ("temperature", "none")
"""How a trained student is aligned: fold a fitted temperature, or leave it as trained."""

ALIGN_FITS = ("kl", "sigma", "kl-correct")
"""What the temperature minimises: mean KL(p_T || p_S) over every input, sigma (sigma_max
when K > 2), or mean KL over the inputs both models classify correctly (the set sigma reads)."""

_GRID_SIZE = 200
"""Log-spaced temperatures tried by the sigma fit before the local refinement."""

_XATOL = 1e-9
"""Absolute tolerance on log T of the bounded scalar minimisation."""


def _check_inputs(
    student_logits: Any,
    p_teacher: Any,
    labels: Any | None,
    reference_class: int,
    bounds: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float, float]:
    """Validate and convert the arguments shared by :func:`fit_temperature` and friends."""
    z = np.asarray(student_logits, dtype=np.float64)
    p = np.asarray(p_teacher, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 2:
        raise ValueError(
            f"student_logits must have shape (n, K) with n >= 1 and K >= 2, got {z.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError("student_logits must be finite; it holds nan or inf")
    _check_probabilities("p_teacher", p)
    if p.shape != z.shape:
        raise ValueError(
            f"p_teacher must have the shape of student_logits {z.shape} (same n and K), "
            f"got {p.shape}"
        )
    n, k = z.shape
    y = None
    if labels is not None:
        y = np.asarray(labels)
        check_labels(y, n, k, "student_logits")
    check_reference_class(reference_class, k)
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds must be a pair (low, high) of temperatures, got {bounds!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise ValueError(f"bounds must be finite with 0 < low < high, got {bounds!r}")
    return z, p, y, low, high


def _mean_kl(p_teacher: np.ndarray, student_logits: np.ndarray, temperature: float) -> float:
    """Mean over rows of KL(p_T || softmax(z_S / T)), terms with p_T = 0 counting 0 (nats)."""
    scaled = student_logits / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_q = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    positive = p_teacher > 0
    log_ratio = np.zeros_like(p_teacher)
    log_ratio[positive] = np.log(p_teacher[positive]) - log_q[positive]
    return float((p_teacher * log_ratio).sum(axis=1).mean())


def _sigma_loss(p_both: np.ndarray, z_both: np.ndarray, reference_class: int) -> Any:
    """T -> sigma on ``reference_class`` (K = 2) or sigma_max (K > 2) of the both-correct
    inputs."""

    def loss(t: float) -> float:
        delta = p_both - softmax(z_both, t)
        if z_both.shape[1] == 2:
            return float(np.std(delta[:, reference_class], ddof=0))
        return float(np.std(delta, axis=0, ddof=0).max())

    return loss


def _minimise_log_t(objective: Any, low: float, high: float) -> float:
    """Bounded Brent minimisation of ``objective(T)`` over log T in [log low, log high]."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(
        lambda s: objective(math.exp(s)),
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": _XATOL},
    )
    return math.exp(float(result.x))


def fit_temperature(
    student_logits: np.ndarray,
    p_teacher: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    objective: str = "kl",
    reference_class: int = 0,
    bounds: tuple[float, float] = (0.05, 20.0),
) -> float:
    """The temperature T > 0 that best aligns softmax(student_logits / T) with ``p_teacher``.

    Args:
        student_logits: (n, K) student logits (at temperature 1).
        p_teacher: (n, K) teacher probabilities on the same inputs (rows sum to 1).
        labels: (n,) integer gold labels; needed by ``"sigma"`` and ``"kl-correct"``.
        objective: ``"kl"``: minimise the mean over all n inputs of KL(p_T || p_S(T)), a
            convex function of 1/T, by bounded Brent search on log T. ``"sigma"``: minimise
            the sigma of :func:`~kdtune.objectives.measure.metrics.confidence_metrics` (its
            ``sigma`` on ``reference_class`` when K = 2, its ``sigma_max`` when K > 2). The
            set of inputs both models classify correctly does not depend on T (argmax is
            unchanged), so it is computed once; the search tries 200 log-spaced T in
            ``bounds`` and refines around the best with a bounded Brent search.
            ``"kl-correct"``: the mean KL over the inputs both classify correctly, by
            bounded Brent search: it matches the confidences sigma compares without sigma's
            pull towards a one-hot student, and leaves the wrong inputs out of the fit.
        reference_class: the class whose probability sigma compares when K = 2.
        bounds: (low, high), the range of T searched, 0 < low < high.

    Returns:
        T as a float in ``bounds``. 1.0 (leave the student as it is) when the problem is
        degenerate: every logit row constant (softmax is uniform at every T), fewer than two
        inputs both classify correctly (sigma undefined), or no T beats T = 1.

    Raises:
        ValueError: bad shapes, non-finite logits, ``p_teacher`` that is not probabilities,
            an unknown ``objective``, ``labels`` missing for ``"sigma"`` or ``"kl-correct"`` or
            out of range, a
            bad ``reference_class`` or ``bounds``.
    """
    if objective not in ALIGN_FITS:
        raise ValueError(
            f"objective must be one of {', '.join(repr(f) for f in ALIGN_FITS)}, got {objective!r}"
        )
    if objective != "kl" and labels is None:
        raise ValueError(
            f"labels are required by objective={objective!r} (it compares inputs both "
            "teacher and student classify correctly); pass labels or use 'kl'"
        )
    z, p, y, low, high = _check_inputs(student_logits, p_teacher, labels, reference_class, bounds)
    if np.all(np.ptp(z, axis=1) == 0):
        return 1.0

    if objective == "kl":

        def loss(t: float) -> float:
            return _mean_kl(p, z, t)

        best = _minimise_log_t(loss, low, high)
    else:  # both fits read the inputs both classify correctly: T keeps that set
        both = (p.argmax(axis=1) == y) & (z.argmax(axis=1) == y)
        if int(both.sum()) < 2:
            return 1.0
        z_both, p_both = z[both], p[both]
        if np.all(np.ptp(z_both, axis=1) == 0):
            return 1.0
        if objective == "kl-correct":

            def loss(t: float) -> float:
                return _mean_kl(p_both, z_both, t)

            best = _minimise_log_t(loss, low, high)
        else:
            loss = _sigma_loss(p_both, z_both, reference_class)
            grid = np.linspace(math.log(low), math.log(high), _GRID_SIZE)
            values = [loss(math.exp(s)) for s in grid]
            i = int(np.argmin(values))
            left, right = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
            refined = _minimise_log_t(loss, math.exp(left), math.exp(right))
            best = refined if loss(refined) <= values[i] else math.exp(float(grid[i]))

    if low <= 1.0 <= high and loss(1.0) <= loss(best):
        return 1.0
    return float(best)


def _classifier_layer(model: Any) -> tuple[Any, Any]:
    """(the Hugging Face model, its final nn.Linear) of a Student or a HF sequence classifier."""
    from torch import nn

    inner = getattr(model, "model", None)
    if getattr(model, "classifier", None) is None and isinstance(inner, nn.Module):
        model = inner  # a kdtune Student: the served model is its .model
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Linear):
        return model, classifier
    out_proj = getattr(classifier, "out_proj", None)
    if isinstance(out_proj, nn.Linear):
        return model, out_proj
    raise ValueError(
        f"model {type(model).__name__} has no foldable classifier: fold_temperature needs "
        f"model.classifier to be an nn.Linear or to have an nn.Linear out_proj"
    )


def fold_temperature(model: Any, temperature: float) -> None:
    """Divide the final classification layer's weight and bias by T, in place.

    The model's logits become z / T (every argmax unchanged), so a saved checkpoint serves
    the aligned confidences. The layer is ``model.classifier`` when it is an ``nn.Linear``
    (BERT-like models) or ``model.classifier.out_proj`` (RoBERTa-like heads). The folded
    temperature is recorded as ``model.config.kdtune_temperature``, multiplied with any
    value already there, so folding twice composes (logits z / (T1 * T2)); it is saved with
    the config by ``save_pretrained``.

    Args:
        model: a kdtune :class:`~kdtune.objectives.student.model.Student` (its ``.model`` is
            folded) or a Hugging Face sequence classifier.
        temperature: T, finite and > 0.

    Raises:
        ValueError: T not a finite number > 0, or a model without a foldable classifier.
    """
    import torch

    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float, np.integer, np.floating))
        or not math.isfinite(float(temperature))
        or not float(temperature) > 0
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    t = float(temperature)
    hf_model, layer = _classifier_layer(model)
    with torch.no_grad():
        layer.weight.div_(t)
        if layer.bias is not None:
            layer.bias.div_(t)
    config = getattr(hf_model, "config", None)
    if config is not None:
        previous = getattr(config, "kdtune_temperature", None)
        config.kdtune_temperature = float(t * (float(previous) if previous is not None else 1.0))


def align_run(student: Any, student_logits: np.ndarray, p_fit: np.ndarray,
              fit_labels: np.ndarray, p_teacher: np.ndarray, p_student: np.ndarray,
              labels: np.ndarray, *, align_on: str, objective: str, reference_class: int,
              kappa: float) -> dict[str, Any]:
    """A distillation run's alignment: fit T on ``student_logits`` against ``p_fit``
    (:func:`fit_temperature`, rows ``align_on`` names), fold it into ``student``, and report
    ``align_temperature``, ``align_on``, ``align_fit`` (``objective``), ``align_rows`` and,
    from the unaligned selection probabilities ``p_teacher``/``p_student``/``labels``,
    ``sigma_unaligned`` and ``sigma_max_unaligned``."""
    temperature = fit_temperature(student_logits, p_fit, fit_labels, objective=objective,
                                  reference_class=reference_class)
    before = confidence_metrics(p_teacher, p_student, labels, kappa=kappa,
                                reference_class=reference_class)
    fold_temperature(student, temperature)
    return {"align_temperature": float(temperature),
            "align_on": align_on, "align_fit": objective,
            "align_rows": int(len(fit_labels)),
            "sigma_unaligned": before.get("sigma"),
            "sigma_max_unaligned": before.get("sigma_max")}


def align_student(
    student: Any,
    student_logits: np.ndarray,
    p_teacher: np.ndarray,
    labels: np.ndarray,
    *,
    objective: str = "kl",
    reference_class: int = 0,
) -> dict[str, float | str]:
    """Fit T on the given outputs (:func:`fit_temperature`), fold it into ``student``, report.

    Args:
        student: a Student or Hugging Face sequence classifier; modified in place.
        student_logits: (n, K) its logits on some inputs, before folding.
        p_teacher: (n, K) the teacher's probabilities on the same inputs.
        labels: (n,) integer gold labels.
        objective: ``"kl"``, ``"sigma"`` or ``"kl-correct"``, see :func:`fit_temperature`.
        reference_class: the class sigma compares.

    Returns:
        ``align_temperature`` (T), ``align_objective``, and on the given data before and
        after the fold, as :func:`~kdtune.objectives.measure.metrics.confidence_metrics` computes
        them: ``sigma_before/after`` (its ``sigma``), ``sigma_max_before/after`` and
        ``kl_before/after`` (its ``kl_teacher_student``).

    Raises:
        ValueError: as :func:`fit_temperature` and :func:`fold_temperature`; the student is
            left untouched when the inputs are rejected.
    """
    temperature = fit_temperature(
        student_logits,
        p_teacher,
        labels,
        objective=objective,
        reference_class=reference_class,
    )
    z = np.asarray(student_logits, dtype=np.float64)
    before = confidence_metrics(p_teacher, softmax(z), labels, reference_class=reference_class)
    after = confidence_metrics(
        p_teacher, softmax(z, temperature), labels, reference_class=reference_class
    )
    fold_temperature(student, temperature)
    return {
        "align_temperature": float(temperature),
        "align_objective": objective,
        "sigma_before": before["sigma"],
        "sigma_after": after["sigma"],
        "sigma_max_before": before["sigma_max"],
        "sigma_max_after": after["sigma_max"],
        "kl_before": before["kl_teacher_student"],
        "kl_after": after["kl_teacher_student"],
    }
