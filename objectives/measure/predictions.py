"""Prediction files, what ``kdtune audit`` compares: one CSV per model, rows in input order.

A prediction file has a header row and one row per input: ``label`` (gold class id,
0..K-1), ``p0`` .. ``p{K-1}`` (softmax at temperature 1, rows summing to 1 within
:data:`.metrics.ROW_SUM_TOLERANCE`), an optional ``pred`` (only checked: an argmax of the
row) and other columns ignored. :func:`read_predictions` reads one; problems raise
:class:`~kdtune.errors.DataError`, one line naming the file and row.
Why: docs/design.md, "Audit: pred is only checked".
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from kdtune.errors import DataError

from .metrics import ROW_SUM_TOLERANCE

__all__ = ["read_predictions"]

_P_COLUMN = re.compile(r"^p(\d+)$")


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
