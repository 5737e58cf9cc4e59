"""``kdtune audit``: does a student preserve its teacher's confidences?

:func:`audit` reads two prediction files, one per model, rows in the same order
(:mod:`.predictions`: both files have the same row count, labels and K);
:func:`audit_models` runs two checkpoints on one split of a dataset; :func:`print_audit`
shows the result. Problems raise :class:`~kdtune.errors.DataError`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from kdtune.errors import DataError, UsageError
from kdtune.frozen import FrozenModel, validate_with_overrides

from ..compute.device import check_device_name, resolve_device
from ..data.dataset import DataConfig, check_labels_match, load_splits
from ..data.splitting import SPLIT_NAMES
from ..data.tokens import data_collator, tokenize
from ..teacher.load import load_teacher
from . import catalogue
from .metrics import confidence_metrics, softmax
from .onnx import load_student
from .predictions import read_predictions

__all__ = ["AuditConfig", "audit", "audit_models", "print_audit", "read_predictions", "verdict"]

# The rows of :func:`print_audit`'s table, in order; meanings come from the catalogue.
_TABLE = (
    "sigma", "sigma_label", "sigma_max", "phi_cnf", "n_both_correct", "n_all",
    "accuracy_teacher", "accuracy_student", "agreement", "mean_abs_delta",
    "kl_teacher_student", "ece_teacher", "ece_student", "ece_gap", "ece_gap_abs",
)  # fmt: skip


class AuditConfig(FrozenModel):
    """What ``--set`` may change for :func:`audit_models` (frozen; unknown keys rejected).

    Attributes:
        data: the dataset, as in a study (``--set data.source=reviews.csv``).
        batch_size: examples per forward pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    data: DataConfig = DataConfig()
    batch_size: int = Field(default=64, ge=1)
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device_name(value)


# --------------------------------------------------------------------------- files


def audit(
    teacher_preds: str | Path,
    student_preds: str | Path,
    kappa: float = 0.05,
    reference_class: int = 0,
) -> dict[str, Any]:
    """Confidence-preservation report from two prediction files (format: module docstring).

    Args:
        teacher_preds: the teacher's CSV.
        student_preds: the student's CSV, the same inputs in the same order.
        kappa: phi_cnf holds when sigma <= kappa.
        reference_class: the class c whose probability sigma compares.

    Returns:
        :func:`objectives.measure.metrics.confidence_metrics`'s dict plus ``source``:
        ``{"kind": "files", "teacher_preds", "student_preds", "n"}``.

    Raises:
        DataError: a bad file (see :func:`read_predictions`), files of different lengths,
            labels that differ (the first differing row named), different K, or a bad
            kappa / reference_class.
    """
    p_teacher, y_teacher = read_predictions(teacher_preds, "teacher predictions")
    p_student, y_student = read_predictions(student_preds, "student predictions")
    if p_teacher.shape[1] != p_student.shape[1]:
        raise DataError(
            f"the teacher predictions have {p_teacher.shape[1]} classes (p0..p"
            f"{p_teacher.shape[1] - 1}), the student predictions {p_student.shape[1]}"
        )
    if len(y_teacher) != len(y_student):
        raise DataError(
            f"the teacher predictions have {len(y_teacher)} rows, the student predictions "
            f"{len(y_student)}; both must cover the same inputs in the same order"
        )
    differ = np.flatnonzero(y_teacher != y_student)
    if len(differ):
        i = int(differ[0])
        raise DataError(
            f"row {i + 1}: label {y_teacher[i]} in the teacher predictions but {y_student[i]} "
            f"in the student predictions ({len(differ)} rows differ); the rows must align"
        )
    report = confidence_metrics(
        p_teacher, p_student, y_teacher, reference_class=reference_class, kappa=kappa
    )
    report["source"] = {
        "kind": "files",
        "teacher_preds": str(teacher_preds),
        "student_preds": str(student_preds),
        "n": len(y_teacher),
    }
    return report


# --------------------------------------------------------------------------- models


def audit_models(
    teacher: str,
    student: str,
    overrides: list[str] | tuple[str, ...] = (),
    split: str = "test",
    kappa: float = 0.05,
    reference_class: int = 0,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Confidence-preservation report of two checkpoints on one split of a dataset.

    Both models are loaded with :func:`kdtune.objectives.teacher.load.load_teacher` and run
    on the split (each with its own tokenizer, batches padded dynamically); probabilities are
    the softmax of the logits at temperature 1.

    Args:
        teacher: the teacher checkpoint directory (or hub id).
        student: the student checkpoint directory (or hub id).
        overrides: ``key.path=value`` items for :class:`AuditConfig`, e.g.
            ``["data.source=reviews.csv", "data.test_size=500"]``.
        split: ``"train"``, ``"eval"`` or ``"test"``.
        kappa: phi_cnf holds when sigma <= kappa.
        reference_class: the class c whose probability sigma compares.
        base: :class:`AuditConfig` data the ``overrides`` apply on top of, e.g. a study's
            ``{"data": {..., "max_length": 64}}`` (``kdtune audit --config``): with the
            study's data, split seed and max length, auditing a trial's student on the
            ``eval`` split reproduces the trial's sigma.

    Returns:
        :func:`objectives.measure.metrics.confidence_metrics`'s dict plus ``source``:
        ``{"kind": "models", "teacher", "student", "data", "split", "n", "max_length"}``.

    Raises:
        UsageError: bad overrides (a :class:`~kdtune.errors.ConfigError`), an unloadable
            model or dataset, a bad split name, or label names that differ between the two
            models or between them and the data.
    """
    if split not in SPLIT_NAMES:
        raise UsageError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    cfg: AuditConfig = validate_with_overrides(dict(base or {}), list(overrides), AuditConfig)
    device = resolve_device(cfg.device)
    teacher_model, teacher_tok = load_teacher(teacher)
    student_model, student_tok = load_student(student)  # an ONNX directory too
    teacher_labels, student_labels = _label_names(teacher_model), _label_names(student_model)
    if teacher_labels != student_labels:
        raise DataError(
            f"student labels {student_labels} do not match the teacher's {teacher_labels}"
        )
    splits = load_splits(cfg.data)
    check_labels_match(splits, teacher_labels)
    dataset = splits.split(split)

    logits_t = _predict(teacher_model, teacher_tok, dataset, cfg, device)
    logits_s = _predict(student_model, student_tok, dataset, cfg, device)
    report = confidence_metrics(
        softmax(logits_t),
        softmax(logits_s),
        np.asarray(dataset["label"], dtype=np.int64),
        reference_class=reference_class,
        kappa=kappa,
    )
    report["source"] = {
        "kind": "models",
        "teacher": str(teacher),
        "student": str(student),
        "data": cfg.data.source,
        "split": split,
        "n": len(dataset),
        "max_length": cfg.data.max_length,
    }
    return report


def _label_names(model) -> list[str]:
    id2label = model.config.id2label or {}
    return [str(id2label[i]) for i in sorted(int(k) for k in id2label)]


def _predict(model, tokenizer, dataset, cfg: AuditConfig, device) -> np.ndarray:
    """Logits (n, K) of ``model`` on ``dataset`` (tokenised with its own tokenizer)."""
    from ..compute.predict import (
        predict_logits,  # torch: auditing prediction files does not need it
    )

    encoded = tokenize(dataset, tokenizer, cfg.data.max_length)
    model.to(device)
    return predict_logits(model, encoded, data_collator(tokenizer), device, cfg.batch_size)


# --------------------------------------------------------------------------- printing


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def verdict(report: dict[str, Any]) -> str:
    """One line: whether phi_cnf holds, with sigma, kappa and the inputs it was measured on."""
    sigma, kappa, n_both = report["sigma"], report["kappa"], report["n_both_correct"]
    if isinstance(sigma, float) and math.isnan(sigma):
        return (
            f"phi_cnf cannot be judged: only {n_both} input(s) classified correctly by both "
            "models (sigma needs 2)"
        )
    state = "HOLDS" if report["phi_cnf"] else "FAILS"
    relation = "<=" if report["phi_cnf"] else ">"
    return (
        f"phi_cnf {state}: sigma {sigma:.4f} {relation} kappa {kappa:g} "
        f"(over {n_both} of {report['n_all']} inputs both models classify correctly)"
    )


def print_audit(report: dict[str, Any]) -> None:
    """Print ``report`` (from :func:`audit` or :func:`audit_models`) as a table and a verdict."""
    from rich.console import Console
    from rich.table import Table

    source = report.get("source", {})
    if source.get("kind") == "models":
        title = (
            f"teacher {source['teacher']} vs student {source['student']} "
            f"({source['data']}, {source['split']} split, n={source['n']}, "
            f"max length {source.get('max_length', '?')})"
        )
    elif source:
        title = (
            f"teacher {source['teacher_preds']} vs student {source['student_preds']} "
            f"(n={source['n']})"
        )
    else:
        title = "confidence preservation"
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    ok = report["phi_cnf"]
    values = {
        **report,
        "phi_cnf": f"{'holds' if ok else 'fails'} (kappa {report['kappa']:g})",
        "ece_gap_abs": report.get("ece_gap_abs", abs(report["ece_gap"])),
    }
    for name in _TABLE:
        table.add_row(name, _fmt(values[name]), catalogue.meaning(name))
    console = Console()
    console.print(table)
    console.print(verdict(report), style="green" if ok else "red", highlight=False)
