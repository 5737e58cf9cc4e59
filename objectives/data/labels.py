"""Checking a raw split's columns and reading its labels as class ids ``0..K-1``.

:func:`read_part` checks that one source split has the named text and label columns, non-empty
string text, and a label on every row, and returns a :class:`Part`. :func:`label_ids` maps the
labels of all parts to ids and names the classes: string labels in sorted order (``"neg"`` -> 0,
``"pos"`` -> 1); integer labels kept, named ``"0"``, ``"1"``, ... unless the dataset carries
``ClassLabel`` names; a split whose labels are all missing or negative is *unlabelled*. Every
problem raises :class:`~kdtune.errors.DataError`.
Why: docs/design.md, "Unlabelled splits count as absent".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from kdtune.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["Part", "label_ids", "read_part"]


@dataclass
class Part:
    """One source split's text columns and raw label values.

    Attributes:
        texts: one list of strings per text column.
        labels: the raw label values (strings, ints, or ``None`` for missing).
        label_kind: ``"classlabel"``, ``"int"`` or ``"str"``.
        class_names: a ``ClassLabel``'s names, else ``None``.
        unlabelled: every label is missing or negative.
    """

    texts: list[list[str]]
    labels: list[Any]
    label_kind: str
    class_names: tuple[str, ...] | None
    unlabelled: bool


def read_part(
    ds: Dataset, text_columns: Sequence[str], label_column: str, where: str
) -> Part:
    """Check one split's columns and text, and read its label values.

    Args:
        ds: the raw split.
        text_columns: one or two text column names.
        label_column: the label column's name.
        where: how errors name the split, e.g. ``"'reviews.csv' split 'train'"``.

    Raises:
        DataError: a missing column (the available ones listed), no rows, text that is not a
            string or is empty, labels that are missing, negative, fractional or mixed.
    """
    from datasets import ClassLabel

    missing = [c for c in [*text_columns, label_column] if c not in ds.column_names]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(
            f"{noun} {', '.join(map(repr, missing))} not found in {where}; "
            f"available columns: {', '.join(ds.column_names)}"
        )
    if len(ds) == 0:
        raise DataError(f"{where} has no rows")
    texts = [_text_column(list(ds[col]), col, where) for col in text_columns]

    feature = ds.features[label_column]
    labels = list(ds[label_column])
    if isinstance(feature, ClassLabel):
        kind, names = "classlabel", tuple(feature.names)
    else:
        kind, names = _label_kind(labels, label_column, where), None
        if kind == "int":  # NaN from numeric readers means "no label"
            labels = [None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
                      for v in labels]  # fmt: skip
    unlabelled = all(v is None or (kind != "str" and v < 0) for v in labels)
    if not unlabelled:
        _check_labels(labels, kind, label_column, where)
    return Part(texts, labels, kind, names, unlabelled)


def label_ids(
    parts: dict[str, Part], label_column: str, desc: str
) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """Map every part's labels to ids ``0..K-1`` and name the classes.

    Returns:
        ``(label_names, {role: int64 ids})``.

    Raises:
        DataError: strings in some parts and integers in others, or an integer label with no
            ``ClassLabel`` name.
    """
    kinds = {p.label_kind if p.label_kind != "classlabel" else "int" for p in parts.values()}
    if len(kinds) > 1:
        raise DataError(
            f"label column {label_column!r} of {desc} holds strings in some splits and "
            "integers in others"
        )
    if kinds == {"str"}:
        names = tuple(sorted({v for p in parts.values() for v in p.labels}))
        index = {n: i for i, n in enumerate(names)}
        ids = {role: np.array([index[v] for v in p.labels], dtype=np.int64)
               for role, p in parts.items()}  # fmt: skip
        return names, ids
    ids = {role: np.array(p.labels, dtype=np.int64) for role, p in parts.items()}
    largest = max(int(a.max()) for a in ids.values())
    class_names = next((p.class_names for p in parts.values() if p.class_names), None)
    if class_names is not None:
        if largest >= len(class_names):
            raise DataError(
                f"label {largest} in column {label_column!r} of {desc} has no class name "
                f"(names: {list(class_names)})"
            )
        return class_names, ids
    return tuple(str(i) for i in range(largest + 1)), ids


def _text_column(values: list[Any], column: str, where: str) -> list[str]:
    bad = next((i for i, v in enumerate(values) if v is not None and not isinstance(v, str)),
               None)  # fmt: skip
    if bad is not None:
        raise DataError(
            f"text column {column!r} of {where} must hold strings, found "
            f"{type(values[bad]).__name__} at index {bad}"
        )
    empty = [i for i, v in enumerate(values) if v is None or not v.strip()]
    if empty:
        raise DataError(
            f"{len(empty)} of {len(values)} rows have empty text in column {column!r} of "
            f"{where} (first at index {empty[0]})"
        )
    return values


def _check_labels(labels: list[Any], kind: str, column: str, where: str) -> None:
    """A labelled split: every row has a label, integer labels are >= 0."""
    none = [i for i, v in enumerate(labels) if v is None]
    if none:
        raise DataError(
            f"{len(none)} of {len(labels)} rows have no label in column {column!r} of {where} "
            f"(first at index {none[0]})"
        )
    if kind != "str":
        neg = [i for i, v in enumerate(labels) if v < 0]
        if neg:
            raise DataError(
                f"{len(neg)} rows of {where} have negative labels (e.g. {labels[neg[0]]} at "
                f"index {neg[0]}); integer labels must be 0..K-1, or use string labels"
            )


def _label_kind(values: list[Any], column: str, where: str) -> str:
    """``"int"`` or ``"str"``: what a (non-``ClassLabel``) label column holds."""
    kinds = set()
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, str):
            kinds.add("str")
        elif isinstance(v, bool | int | np.integer):
            kinds.add("int")
        elif isinstance(v, float | np.floating):
            if math.isnan(v):
                continue  # a missing value in a numeric column; reported as missing later
            if not float(v).is_integer():
                raise DataError(
                    f"label column {column!r} of {where} holds non-integer numbers "
                    f"({v!r} at index {i}); use integer or string labels"
                )
            kinds.add("int")
        else:
            raise DataError(
                f"label column {column!r} of {where} must hold integers or strings, found "
                f"{type(v).__name__} at index {i}"
            )
    if len(kinds) > 1:
        raise DataError(f"label column {column!r} of {where} mixes strings and numbers")
    return kinds.pop() if kinds else "int"
