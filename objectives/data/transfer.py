"""The students' transfer set: labelled sentences plus unlabelled and augmented text.

``distill.data.transfer`` (:class:`TransferConfig`) adds to the labelled rows students learn on
``text`` (unlabelled text from a file, a hub dataset or the built-in ``polarity-reviews``;
by default only texts whose wordpieces all occur in the labelled rows, so that a task
vocabulary does not grow) and ``augment`` (that many word-replaced
copies of each labelled sentence, :mod:`kdtune.objectives.data.augment`). :func:`transfer_set`
returns the labelled rows first, unchanged and in order, then the unlabelled rows, then the
augmented ones, the added rows with label ``-1``.
Why: docs/design.md, "Transfer set: unlabelled and augmented text", "Added rows carry label -1".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from kdtune.errors import DataError
from kdtune.frozen import FrozenModel

from .augment import augment_sentences, lookup_words, lowercases, neighbour_table

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from datasets import Dataset

__all__ = ["BUILTIN_REVIEWS", "TransferConfig", "read_unlabelled", "transfer_set"]

BUILTIN_REVIEWS = "polarity-reviews"


class TransferConfig(FrozenModel):
    """Extra transfer data for the students (frozen; unknown keys are rejected).

    Attributes:
        text: unlabelled text: a local ``.txt`` / ``.csv`` / ``.json`` / ``.jsonl`` /
            ``.parquet`` file, a hub dataset id, or ``polarity-reviews`` (the built-in
            corpus's 1,500 whole reviews, 48,659 sentences); ``None``: none.
        text_vocabulary: ``labelled``: keep only the texts whose wordpieces (the teacher's
            tokenizer) all occur in the labelled rows, so the students' task vocabulary,
            and with it their size, stays that of the labelled text; ``any``: keep all.
        text_column: the column holding the text (not used for ``.txt``).
        config_name: the hub dataset's configuration.
        split: the hub dataset's (or a directory's) split to read.
        max_rows: at most this many unlabelled rows (a seeded random subset).
        augment: augmented copies of each labelled transfer sentence (0: none).
        replace_prob: the probability that a replaceable word is replaced (TinyBERT's p_t).
        neighbours: candidates per word (TinyBERT's K).
        neighbours_from: ``text``: candidates are words of the labelled text itself, so
            augmented copies add no word piece the students' vocabulary lacks; ``vocabulary``:
            any whole word of the teacher's vocabulary.
    """

    text: str | None = None
    text_vocabulary: Literal["labelled", "any"] = "labelled"
    text_column: str = "text"
    config_name: str | None = None
    split: str = "train"
    max_rows: int | None = Field(default=None, ge=1)
    augment: int = Field(default=0, ge=0)
    replace_prob: float = Field(default=0.4, gt=0, le=1)
    neighbours: int = Field(default=15, ge=1)
    neighbours_from: Literal["text", "vocabulary"] = "text"

    @property
    def enabled(self) -> bool:
        """Whether anything is added to the labelled rows."""
        return self.text is not None or self.augment > 0


def read_unlabelled(cfg: TransferConfig, seed: int,
                    keep: Callable[[list[str]], list[bool]] | None = None) -> list[str]:
    """The unlabelled texts of ``cfg.text`` (at most ``max_rows``, a seeded subset of those
    ``keep`` accepts, when given).

    Raises:
        DataError: one line: the source is missing or unreadable, lacks the column (the
            available ones are listed), or holds no non-empty text.
    """
    from .sources import read_source

    source = cfg.text
    path = Path(source).expanduser()
    if source == BUILTIN_REVIEWS:
        from .polarity import polarity_reviews_txt

        path = polarity_reviews_txt()
    if path.suffix.lower() == ".txt":
        if not path.is_file():
            raise DataError(f"data.transfer.text {source!r}: no such file")
        try:
            texts = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"data.transfer.text {source!r}: cannot read it ({e})") from e
    else:
        raw, desc = read_source(source, cfg.config_name, (cfg.split,))
        part = raw[cfg.split] if cfg.split in raw else (
            next(iter(raw.values())) if len(raw) == 1 else None)
        if part is None:
            raise DataError(f"data.transfer.text {desc} has no split {cfg.split!r}; "
                            f"available: {', '.join(sorted(raw))}")
        if cfg.text_column not in part.column_names:
            raise DataError(f"data.transfer.text {desc} has no column {cfg.text_column!r}; "
                            f"available: {', '.join(part.column_names)}")
        texts = [t for t in part[cfg.text_column] if isinstance(t, str)]
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise DataError(f"data.transfer.text {source!r} holds no non-empty text")
    if keep is not None:
        texts = [t for t, k in zip(texts, keep(texts), strict=True) if k]
        if not texts:
            raise DataError(f"data.transfer.text {source!r}: no text uses only the labelled "
                            "rows' wordpieces (text_vocabulary: any keeps them all)")
    if cfg.max_rows is not None and len(texts) > cfg.max_rows:
        chosen = np.sort(np.random.default_rng([seed, 0x7E47]).choice(
            len(texts), cfg.max_rows, replace=False))
        texts = [texts[i] for i in chosen]
    return texts


def transfer_set(labelled: Dataset, cfg: TransferConfig, tokenizer: Any,
                 embeddings: torch.Tensor, seed: int, progress: bool = False, *,
                 memo_key: str = "") -> Dataset:
    """The labelled rows, then ``cfg``'s unlabelled rows, then its augmented rows (label -1).

    Args:
        labelled: the labelled rows (``text`` [, ``text_pair``], ``label``).
        cfg: what to add; returns ``labelled`` itself when nothing is enabled.
        tokenizer: the teacher's tokenizer (augmentation looks words up in its vocabulary).
        embeddings: the teacher's input word embeddings (vocabulary, width).
        seed: seeds the unlabelled subset and the augmentation.
        progress: show a progress bar while augmenting.
        memo_key: names ``labelled`` and the teacher for the per-process memo (a content
            fingerprint and the teacher's path); empty: not memoised. The memo also keys on
            ``cfg``, ``seed`` and a local text file's size and modification time
            (:data:`~kdtune.objectives.compute.memo.WORKER_MEMO`, which keeps the last set only).

    Raises:
        DataError: unlabelled text for a sentence-pair task (pairs can only be augmented),
            or a bad unlabelled source (:func:`read_unlabelled`).
    """
    if not cfg.enabled:
        return labelled

    def build() -> Dataset:
        return _build(labelled, cfg, tokenizer, embeddings, seed, progress)

    if not memo_key:
        return build()
    from ..compute.memo import WORKER_MEMO, path_stamp

    key = json.dumps([memo_key, cfg.model_dump(mode="json"), seed,
                      path_stamp(cfg.text) if cfg.text else None])
    return WORKER_MEMO.get("transfer", key, build)


def _build(labelled: Dataset, cfg: TransferConfig, tokenizer: Any, embeddings: torch.Tensor,
           seed: int, progress: bool) -> Dataset:
    """:func:`transfer_set` without the memo."""
    from datasets import Dataset, concatenate_datasets

    pair = "text_pair" in labelled.column_names
    if pair and cfg.text is not None:
        raise DataError("data.transfer.text: unlabelled text cannot be added to a "
                        "sentence-pair task (use augment, which replaces words in both parts)")
    columns: dict[str, list] = {c: [] for c in labelled.column_names}
    if cfg.text is not None:
        keep = (_within_pieces(tokenizer, list(labelled["text"]))
                if cfg.text_vocabulary == "labelled" else None)
        columns["text"] += read_unlabelled(cfg, seed, keep)
    if cfg.augment:
        lower = lowercases(tokenizer)
        special = list(getattr(tokenizer, "all_special_tokens", ()))
        parts = [list(labelled["text"])] + ([list(labelled["text_pair"])] if pair else [])
        words = lookup_words([t for p in parts for t in p], lower)
        table = neighbour_table(tokenizer, embeddings, words, cfg.neighbours,
                                within=words if cfg.neighbours_from == "text" else None)
        for k, (name, texts) in enumerate(zip(("text", "text_pair"), parts, strict=False)):
            columns[name] += augment_sentences(texts, table, cfg.augment, cfg.replace_prob,
                                               seed + k, lower=lower, special=special,
                                               progress=progress)
    added = len(columns["text"])
    columns["label"] = [-1] * added
    extra = Dataset.from_dict(columns, features=labelled.features)
    return concatenate_datasets([labelled, extra])


def _within_pieces(tokenizer: Any, labelled: list[str]) -> Callable[[list[str]], list[bool]]:
    """A filter for :func:`read_unlabelled`: whether each text's token ids (special tokens
    included) all occur among those of the ``labelled`` texts."""
    known = {i for ids in tokenizer(labelled)["input_ids"] for i in ids}
    return lambda texts: [set(ids) <= known for ids in tokenizer(texts)["input_ids"]]
