"""Data for kdtune: one labelled text-classification dataset, three stratified splits.

A :class:`DataConfig` names a source (the built-in ``polarity`` corpus, a Hugging Face Hub
dataset id, or local ``.csv``/``.json``/``.jsonl``/``.parquet`` files) and the columns to read;
:func:`load_splits` returns :class:`Splits` with normalised columns ``text`` (and ``text_pair``
for sentence-pair tasks) and ``label`` (ids ``0..K-1``, a ``ClassLabel`` named by
``Splits.label_names``). Every data problem raises :class:`~kdtune.errors.DataError`.
Why: docs/design.md, "Loading data: sources, labels, splits".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import AfterValidator, Field, field_validator, model_validator

from kdtune.errors import DataError, UsageError
from kdtune.frozen import FrozenModel

from .labels import Part, label_ids, read_part
from .sources import pool_split_name, read_source
from .splitting import SPLIT_NAMES, TRANSFER, assign_rows, build_split
from .transfer import TransferConfig

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = [
    "SPLIT_NAMES",
    "TRANSFER",
    "DataConfig",
    "NonEmptyStr",
    "Splits",
    "check_labels_match",
    "content_fingerprint",
    "load_splits",
]


def _stripped_non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


NonEmptyStr = Annotated[str, AfterValidator(_stripped_non_empty)]
"""A config string that must not be blank; surrounding whitespace is stripped."""


class DataConfig(FrozenModel):
    """Which dataset to load and how to split it (frozen; unknown keys are rejected).

    Attributes:
        source: ``"polarity"`` (built in), a Hugging Face Hub dataset id, or a local
            ``.csv``/``.json``/``.jsonl``/``.parquet`` file or a directory of them. In a
            directory, files named after the split names (``train.csv``, ``validation.csv``,
            ``test.csv``) are those splits; otherwise all files form one unsplit dataset.
        config_name: the hub dataset's configuration (e.g. ``"sst2"`` for ``glue``).
        text_columns: one column (single sentence) or two (sentence pair).
        label_column: the label column (strings or non-negative integers).
        train_size, eval_size, test_size: rows per split; ``None`` takes the whole given split
            or, for splits carved from the training pool, 10% of the pool each (train gets
            the rest).
        transfer_size: labelled rows for the students only, carved from the training pool
            after test and evaluation and before train (the four-way protocol: the teacher
            trains on ``train``, students learn on ``transfer``, the search selects on
            ``eval``, ``test`` is read only after the search). ``None``: no transfer split,
            students learn on the train split, which is the teacher's own training data
            when the teacher was fitted on this config (nearly one-hot soft targets).
        students: which labelled rows students learn on: ``all`` (default) every row
            outside the selection and test splits (the train split and the transfer
            split), ``transfer`` the transfer split alone (the train split without one).
        transfer: unlabelled and augmented text added to the students' rows
            (:class:`~kdtune.objectives.data.transfer.TransferConfig`); ignored by
            :func:`load_splits`, refused by ``kdtune teacher fit``.
        seed: seed of the stratified splitting and subsetting.
        max_length: maximum tokens per example (truncation) when the data is tokenised.
        train_split, eval_split, test_split: split names in the source.
    """

    source: NonEmptyStr = "polarity"
    config_name: str | None = None
    text_columns: tuple[str, ...] = ("text",)
    label_column: NonEmptyStr = "label"
    train_size: int | None = Field(default=None, ge=1)
    eval_size: int | None = Field(default=None, ge=1)
    test_size: int | None = Field(default=None, ge=1)
    transfer_size: int | None = Field(default=None, ge=1)
    students: Literal["all", "transfer"] = "all"
    transfer: TransferConfig = TransferConfig()
    seed: int = 0
    max_length: int = Field(default=128, ge=8, le=8192)
    train_split: NonEmptyStr = "train"
    eval_split: NonEmptyStr = "validation"
    test_split: NonEmptyStr = "test"

    @field_validator("text_columns")
    @classmethod
    def _text_columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) not in (1, 2):
            raise ValueError(
                f"must name 1 column (single sentence) or 2 (sentence pair), got {len(value)}"
            )
        if any(not c.strip() for c in value):
            raise ValueError("column names must not be empty")
        if len(set(value)) != len(value):
            raise ValueError(f"names the same column twice: {list(value)}")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> DataConfig:
        if self.label_column in self.text_columns:
            raise ValueError(f"label_column {self.label_column!r} is also a text column")
        names = [self.train_split, self.eval_split, self.test_split]
        if len(set(names)) != 3:
            raise ValueError(f"train_split, eval_split and test_split must differ, got {names}")
        return self


@dataclass(frozen=True, eq=False)
class Splits:
    """Train, evaluation and test splits (and the optional transfer split), normalised.

    Each split is a ``datasets.Dataset`` with ``text`` (and ``text_pair`` for pair tasks) and
    ``label`` (ids ``0..K-1``, a ``ClassLabel`` named by ``label_names``). ``transfer`` is
    ``None`` unless the config asked for ``transfer_size`` rows.
    """

    train: Dataset
    eval: Dataset
    test: Dataset
    label_names: tuple[str, ...]
    transfer: Dataset | None = None
    row_ids: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict, repr=False)
    """Per split: the source part its rows came from and their indices there (row identity,
    for overlap checks between splits of one source)."""
    _fingerprints: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _derived: dict[str, Dataset] = field(default_factory=dict, init=False, repr=False)

    @property
    def num_labels(self) -> int:
        """Number of classes K."""
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        """Whether examples are sentence pairs (a ``text_pair`` column is present)."""
        return "text_pair" in self.train.column_names

    @property
    def names(self) -> tuple[str, ...]:
        """The splits present: train, eval, test, and transfer when there is one."""
        return SPLIT_NAMES + ((TRANSFER,) if self.transfer is not None else ())

    @property
    def students(self) -> Dataset:
        """The labelled rows students learn on: the transfer split, else the train split."""
        return self.transfer if self.transfer is not None else self.train

    @property
    def students_split(self) -> str:
        """The name of :attr:`students`' split."""
        return TRANSFER if self.transfer is not None else "train"

    def students_rows(self, which: str = "all") -> Dataset:
        """The labelled rows students learn on: with ``which="all"`` the train split then
        the transfer split (every row outside selection and test), else :attr:`students`."""
        if which != "all" or self.transfer is None:
            return self.students
        if "students_all" not in self._derived:
            from datasets import concatenate_datasets

            rows = concatenate_datasets([self.train, self.transfer])
            self._derived["students_all"] = rows
            self._fingerprints["students_all"] = content_fingerprint(rows, self.label_names)
        return self._derived["students_all"]

    def transfer_rows(self, which: str = "all") -> range | None:
        """Where the transfer split's rows sit in :meth:`students_rows` (None: no transfer
        split)."""
        if self.transfer is None:
            return None
        first = len(self.train) if which == "all" else 0
        return range(first, first + len(self.transfer))

    def students_fingerprint(self, which: str = "all") -> str:
        """:meth:`fingerprint` of :meth:`students_rows`."""
        if which != "all" or self.transfer is None:
            return self.fingerprint(self.students_split)
        self.students_rows(which)
        return self._fingerprints["students_all"]

    def split(self, name: str) -> Dataset:
        """Return the split called ``name`` (``"train"``, ``"eval"``, ``"test"``, or
        ``"transfer"`` when present)."""
        if name not in self.names:
            raise UsageError(f"split must be one of {', '.join(self.names)}, got {name!r}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Rows per split, e.g. ``{"train": 3200, "eval": 400, "test": 400}``."""
        return {name: len(self.split(name)) for name in self.names}

    def fingerprint(self, split: str) -> str:
        """A stable hash of one split's content (rows in order, label names), for caches.

        The same data and seed give the same fingerprint in any process and on any machine.
        """
        if split not in self._fingerprints:
            self._fingerprints[split] = content_fingerprint(self.split(split), self.label_names)
        return self._fingerprints[split]


def load_splits(cfg: DataConfig) -> Splits:
    """Load ``cfg.source`` and return its stratified train/evaluation/test splits.

    Raises:
        DataError: one line naming the problem: a source that cannot be read or reached, a
            missing split or column (with the available ones), empty text, missing or invalid
            labels, a single class, or sizes larger than the data available.
    """
    raw, desc = read_source(cfg.source, cfg.config_name,
                            (cfg.train_split, cfg.eval_split, cfg.test_split))  # fmt: skip
    pool_name = pool_split_name(raw, cfg.train_split, desc)

    def part(name: str) -> Part:
        return read_part(raw[name], cfg.text_columns, cfg.label_column,
                         f"{desc} split {name!r}")  # fmt: skip

    parts: dict[str, Part] = {"train": part(pool_name)}
    if parts["train"].unlabelled:
        raise DataError(f"{desc} split {pool_name!r} has no labels in column {cfg.label_column!r}")
    for role, name in (("eval", cfg.eval_split), ("test", cfg.test_split)):
        if name in raw and name != pool_name:
            given = part(name)
            if not given.unlabelled:
                parts[role] = given

    label_names, ids = label_ids(parts, cfg.label_column, desc)
    pool_labels = ids["train"]
    if len(np.unique(pool_labels)) < 2:
        only = label_names[int(pool_labels[0])]
        raise DataError(
            f"{desc} split {pool_name!r} has only one class ({only!r}) in column "
            f"{cfg.label_column!r}; need at least two"
        )

    sizes = {"train": cfg.train_size, "eval": cfg.eval_size, "test": cfg.test_size,
             TRANSFER: cfg.transfer_size}
    names = {"train": pool_name, "eval": cfg.eval_split, "test": cfg.test_split}
    rows = assign_rows(ids, sizes, cfg.seed, names, desc)
    return Splits(
        **{role: build_split(parts[src], idx, label_names, ids[src])
           for role, (src, idx) in rows.items()},
        label_names=label_names,
        row_ids={role: (names[src], idx) for role, (src, idx) in rows.items()},
    )  # fmt: skip


def check_labels_match(
    splits: Splits | Sequence[str], teacher_label_names: Sequence[str] | Mapping[int, str]
) -> None:
    """Raise DataError unless the data's label names equal the teacher's, in id order.

    Args:
        splits: the loaded splits (or their label names).
        teacher_label_names: names in id order, or a model config's ``id2label`` mapping.
    """
    data = tuple(splits.label_names if isinstance(splits, Splits) else splits)
    if isinstance(teacher_label_names, Mapping):
        teacher = tuple(str(teacher_label_names[k]) for k in sorted(teacher_label_names, key=int))
    else:
        teacher = tuple(str(n) for n in teacher_label_names)
    if data == teacher:
        return
    hint = ""
    if sorted(data) == sorted(teacher):
        hint = " (same names in a different id order)"
    elif len(data) != len(teacher):
        hint = f" ({len(data)} classes in the data, {len(teacher)} in the teacher)"
    raise DataError(f"data labels {list(data)} do not match the teacher's {list(teacher)}{hint}")


# --------------------------------------------------------------------------- fingerprints


def content_fingerprint(ds: Dataset, label_names: tuple[str, ...]) -> str:
    """SHA-256 over the label names, the columns and every row in order (JSON-encoded)."""
    h = hashlib.sha256()
    columns = [c for c in ("text", "text_pair", "label") if c in ds.column_names]
    h.update(json.dumps({"v": 1, "labels": list(label_names), "columns": columns}).encode())
    values = [list(ds[c]) for c in columns]
    for row in zip(*values, strict=True):
        h.update(b"\n")
        h.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()
