"""The metric catalogue: every metric kdtune reports, defined once.

Each :class:`Metric` says what the number means, its unit, whether a study maximises or
minimises it, whether it may be a study objective, and its worst useful value where one
exists (the hypervolume reference point's coordinate). Metrics computation, config
validation, reports, export, the audit table, the dashboard and the model card all read
this table; none keeps its own list.

Definitions of the confidence-preservation figures are in :mod:`kdtune.objectives.measure.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kdtune.errors import UsageError

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Metric:
    """One reported metric.

    Attributes:
        name: the key under which it is stored (trial user attribute, JSON field).
        meaning: one line for tables, reports and model cards.
        unit: ``""`` for plain fractions and counts, else the unit (``"ms"``, ``"nats"``).
        direction: ``"maximize"`` or ``"minimize"``; ``None`` for figures that are not
            optimised (counts, flags, teacher-only numbers).
        objective: whether a study may optimise it.
        worst: its worst useful value (hypervolume reference coordinate), ``None`` when it
            has no natural bound (``params``, ``latency_ms``, KL).
    """

    name: str
    meaning: str
    unit: str = ""
    direction: Direction | None = None
    objective: bool = False
    worst: float | None = None


# When both models classify an input correctly on a binary task, both probabilities of the
# reference class lie on the same side of 0.5, so |Δ| < 0.5: sigma and mean |Δ| are at most
# 0.5. On K > 2 classes that bound is looser but 0.5 still covers every useful student.
_METRICS = (
    Metric("accuracy_student", "student accuracy", "", "maximize", True, 0.0),
    Metric("f1_student", "student macro F1", "", "maximize", True, 0.0),
    Metric("mcc_student", "student Matthews correlation", "", "maximize", True, -1.0),
    Metric("agreement", "fraction of inputs with the same prediction", "", "maximize", True,
           0.0),
    Metric("sigma", "std of Δ on the reference class, inputs both get right", "",
           "minimize", True, 0.5),
    Metric("sigma_label", "std of Δ on each input's true class", "", "minimize", True, 0.5),
    Metric("sigma_max", "largest sigma over reference classes", "", "minimize", True, 0.5),
    Metric("mean_abs_delta", "mean |Δ| on the reference class", "", "minimize", True, 0.5),
    Metric("kl_teacher_student", "mean KL(p_T || p_S)", "nats", "minimize", True),
    Metric("ece_student", "student expected calibration error (15 bins)", "", "minimize",
           True, 1.0),
    Metric("ece_gap", "ece_student - ece_teacher", "", "minimize", True, 1.0),
    Metric("ece_gap_abs", "|ece_gap|", "", "minimize", True, 1.0),
    Metric("params", "student parameters, embeddings included", "", "minimize", True),
    Metric("latency_ms", "median student forward time on a 64-input batch", "ms",
           "minimize", True),
    Metric("params_ratio", "student parameters / teacher parameters", "", "minimize", True),
    Metric("latency_ratio", "student latency_ms / teacher's on the same batches", "",
           "minimize", True),
    # eval.int8: the student after ONNX Runtime's dynamic INT8 quantisation
    Metric("accuracy_int8", "accuracy of the INT8-quantised student", "", "maximize", True,
           0.0),
    Metric("sigma_int8", "sigma of the INT8-quantised student against the teacher", "",
           "minimize", True, 0.5),
    Metric("agreement_int8", "fraction of inputs the INT8 student labels as the float one",
           "", "maximize", True, 0.0),
    Metric("int8_seconds", "seconds to export, quantise and measure the INT8 student", "s"),
    # reported, never optimised
    Metric("accuracy_teacher", "teacher accuracy", "", "maximize", False, 0.0),
    Metric("ece_teacher", "teacher expected calibration error (15 bins)", "", "minimize",
           False, 1.0),
    Metric("accuracy_majority", "accuracy of always predicting the most common label"),
    Metric("phi_cnf", "confidence preservation holds: sigma <= kappa"),
    Metric("kappa", "the phi_cnf threshold"),
    Metric("n_all", "inputs evaluated"),
    Metric("n_eval", "inputs evaluated"),
    Metric("n_both_correct", "inputs both models classify correctly (sigma's inputs)"),
    Metric("sigma_per_class", "sigma with each class as the reference class, class 0 first "
           "(a list of K)"),
    # paired bootstrap 95% percentile intervals (measure/bootstrap.py), [low, high]
    Metric("accuracy_student_ci", "95% paired bootstrap interval of accuracy_student"),
    Metric("sigma_ci", "95% paired bootstrap interval of sigma"),
    Metric("sigma_max_ci", "95% paired bootstrap interval of sigma_max"),
    Metric("n_resamples", "bootstrap resamples behind each interval"),
    # the student's data, vocabulary and alignment
    Metric("teacher_params", "teacher parameters, embeddings included"),
    Metric("teacher_latency_ms", "median teacher forward time on the same batches", "ms"),
    Metric("vocabulary_size", "wordpieces the student keeps (distill.vocabulary)"),
    Metric("eval_tokenised_differently", "share of selection inputs the student tokenises "
           "differently from the teacher"),
    Metric("align_temperature", "temperature folded into the student's classifier"),
    Metric("sigma_unaligned", "sigma on the selection split before alignment"),
)

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}
"""Every metric by name."""

OBJECTIVES: tuple[str, ...] = tuple(m.name for m in _METRICS if m.objective)
"""The metrics a study may optimise."""


def direction(name: str) -> Direction:
    """The study direction of objective ``name``; UsageError naming the accepted ones."""
    metric = METRICS.get(name)
    if metric is None or not metric.objective or metric.direction is None:
        raise UsageError(f"unknown objective {name!r}; accepted: {', '.join(OBJECTIVES)}")
    return metric.direction


def worst_value(name: str) -> float | None:
    """The metric's worst useful value, or None when it has no natural bound."""
    metric = METRICS.get(name)
    return None if metric is None else metric.worst


def meaning(name: str) -> str:
    """One line on what ``name`` means, with its unit; ``""`` for an unknown name."""
    metric = METRICS.get(name)
    if metric is None:
        return ""
    return f"{metric.meaning} ({metric.unit})" if metric.unit else metric.meaning
