"""Tokenising normalised splits without padding, and padding each batch dynamically.

:func:`tokenize` turns :func:`~kdtune.objectives.data.dataset.load_splits`'s ``text``
[``text_pair``] columns into ``input_ids``/``attention_mask``/``token_type_ids``, truncated
but not padded; :func:`data_collator` pads each batch to its longest example;
:func:`label_array` reads a split's labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kdtune.errors import UsageError

from .dataset import SPLIT_NAMES, Splits

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["data_collator", "label_array", "tokenize"]


def tokenize(splits_or_dataset: Splits | Dataset, tokenizer: Any, max_length: int):
    """Encode text into ``input_ids``/``attention_mask``/``token_type_ids``, without padding.

    Text is truncated to ``max_length`` tokens (pairs: longest first); padding is left to
    :func:`data_collator` per batch. The ``text``/``text_pair`` columns are removed and
    ``label`` is kept.

    Args:
        splits_or_dataset: :class:`~kdtune.objectives.data.dataset.Splits` or one normalised
            ``datasets.Dataset``.
        tokenizer: a Hugging Face tokenizer.
        max_length: maximum tokens per example.

    Returns:
        A ``DatasetDict`` with ``train``/``eval``/``test`` for :class:`Splits`, else a
        ``Dataset``.

    Raises:
        UsageError: ``max_length`` below 2, or a dataset without a ``text`` column.
    """
    from datasets import DatasetDict

    if max_length < 2:
        raise UsageError(f"max_length must be at least 2, got {max_length}")
    if isinstance(splits_or_dataset, Splits):
        return DatasetDict(
            {n: _tokenize_one(splits_or_dataset.split(n), tokenizer, max_length, n)
             for n in SPLIT_NAMES}
        )  # fmt: skip
    return _tokenize_one(splits_or_dataset, tokenizer, max_length, "dataset")


def data_collator(tokenizer: Any):
    """Dynamic padding for tokenised batches: ``transformers.DataCollatorWithPadding``.

    It pads each batch to its longest example and renames ``label`` to ``labels``.
    """
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer=tokenizer, return_tensors="pt")


def label_array(dataset: Any) -> np.ndarray:
    """The ``label`` column of a (tokenised) split as an array.

    A ``datasets.Dataset`` is read as Arrow (any ``select`` / ``shuffle`` mapping kept):
    about 1 ms for 400 rows, against 5-10 ms for ``np.asarray(dataset["label"])``, which
    walks the rows one by one.
    """
    if hasattr(dataset, "with_format"):
        return np.asarray(dataset.with_format("arrow")["label"])
    return np.asarray(dataset["label"])


def _tokenize_one(ds: Dataset, tokenizer: Any, max_length: int, name: str) -> Dataset:
    if "text" not in ds.column_names:
        raise UsageError(
            f"{name} has no 'text' column (columns: {', '.join(ds.column_names)}); "
            "tokenize the output of load_splits"
        )
    pair = "text_pair" in ds.column_names

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        second = batch["text_pair"] if pair else None
        return tokenizer(
            batch["text"], second, truncation=True, max_length=max_length, padding=False
        )

    drop = ["text", "text_pair"] if pair else ["text"]
    return ds.map(encode, batched=True, remove_columns=drop, desc=f"Tokenizing {name}")
