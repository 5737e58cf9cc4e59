"""``kdtune audit``: does a student preserve its teacher's confidences?

:func:`audit` reads two prediction files, one per model, rows in the same order;
:func:`audit_models` runs two checkpoints on one split of a dataset. A prediction file is a CSV
(header row, one row per input) with ``label`` (gold class id, 0..K-1), ``p0`` .. ``p{K-1}``
(softmax at temperature 1, rows summing to 1 within :data:`.metrics.ROW_SUM_TOLERANCE`),
an optional ``pred`` (only checked: an argmax of the row) and other columns ignored; both files
have the same row count, labels and K. Problems raise :class:`~kdtune.errors.DataError`.
Why: docs/design.md, "Audit: pred is only checked".
"""

from __future__ import annotations

import csv
import math
import re
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
from .metrics import ROW_SUM_TOLERANCE, confidence_metrics, softmax
from .onnx import load_student

__all__ = ["AuditConfig", "audit", "audit_models", "print_audit", "read_predictions", "verdict"]

_P_COLUMN = re.compile(r"^p(\d+)$")
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


def read_predictions(path: str | Path, role: str = "predictions") -> tuple[np.ndarray, np.ndarray]:
    """Read one prediction file (format in the module docstring).

    Args:
        path: the CSV file.
        role: how errors name the file, e.g. ``"teacher predictions"``.

    Returns:
        ``(probabilities, labels)``: float64 (n, K) and int64 (n,).

    Raises:
        DataError: missing or unreadable file, missing columns (the found ones listed), a
            value that is not a number, probabilities that are negative, not finite or do
            not sum to 1, a label outside 0..K-1, a ``pred`` that is not an argmax, no rows.
    """
    path = Path(path)
    where = f"{role} {path}"
    if not path.is_file():
        raise DataError(f"{where}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{where}: cannot read it as CSV ({type(e).__name__}: {e})") from e

    found = ", ".join(header) if any(header) else "none"
    classes = sorted(int(m.group(1)) for h in header if (m := _P_COLUMN.match(h)))
    if "label" not in header:
        raise DataError(f"{where}: no 'label' column; found columns: {found}")
    if len(classes) < 2:
        raise DataError(
            f"{where}: needs probability columns p0, p1, ... (one per class, at least 2); "
            f"found columns: {found}"
        )
    if classes != list(range(len(classes))):
        missing = sorted(set(range(max(classes) + 1)) - set(classes))
        raise DataError(
            f"{where}: probability columns must be p0..p{max(classes)} without gaps; missing "
            f"{', '.join(f'p{c}' for c in missing)}; found columns: {found}"
        )
    for name in {"label", "pred", *(f"p{c}" for c in classes)}:
        if header.count(name) > 1:
            raise DataError(f"{where}: column {name!r} appears more than once")
    rows = [r for r in rows if any(cell.strip() for cell in r)]  # blank lines
    if not rows:
        raise DataError(f"{where}: no rows after the header")

    k = len(classes)
    label_at = header.index("label")
    p_at = [header.index(f"p{c}") for c in range(k)]
    pred_at = header.index("pred") if "pred" in header else None
    probs = np.empty((len(rows), k), dtype=np.float64)
    labels = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        at = f"{where}, row {i + 1}"
        if len(row) != len(header):
            raise DataError(f"{at}: {len(row)} fields, the header has {len(header)}")
        try:
            probs[i] = [float(row[j]) for j in p_at]
        except ValueError:
            bad = next(row[j] for j in p_at if not _is_float(row[j]))
            raise DataError(f"{at}: probability {bad!r} is not a number") from None
        labels[i] = _class_id(row[label_at], k, f"{at}: label")
        if not np.all(np.isfinite(probs[i])) or np.any(probs[i] < 0):
            raise DataError(
                f"{at}: probabilities must be finite and >= 0, got {_row_text(probs[i])}"
            )
        total = probs[i].sum()
        if abs(total - 1.0) > ROW_SUM_TOLERANCE:
            raise DataError(
                f"{at}: probabilities sum to {total:.6g}, not 1 (within {ROW_SUM_TOLERANCE}); "
                "write softmax outputs, not logits"
            )
        if pred_at is not None:
            pred = _class_id(row[pred_at], k, f"{at}: pred")
            if probs[i, pred] < probs[i].max():
                raise DataError(
                    f"{at}: pred {pred} is not the argmax of {_row_text(probs[i])}; the audit "
                    "predicts argmax p, so pred must agree"
                )
    return probs, labels


def _row_text(p: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in p) + "]"


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _class_id(text: str, k: int, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{what} {text!r} is not a class id (an integer in 0..{k - 1})") from None
    if not value.is_integer() or not 0 <= value < k:
        raise DataError(f"{what} {text.strip()} is not a class id (an integer in 0..{k - 1})")
    return int(value)


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
