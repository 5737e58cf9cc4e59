"""Data loading for kdtune: one labelled text-classification dataset, three stratified splits.

A :class:`DataConfig` names a source (the built-in ``polarity`` corpus, a Hugging Face Hub
dataset id, or local ``.csv``/``.json``/``.jsonl``/``.parquet`` files) and the columns to read;
:func:`load_splits` returns :class:`Splits` with normalised columns:

* ``text`` (and ``text_pair`` for sentence-pair tasks, when two text columns are named),
* ``label``: integer ids ``0..K-1`` (a ``ClassLabel`` whose names are ``Splits.label_names``).

Splitting rules, all deterministic for a given ``seed`` (same seed, same splits, in any process):

* Splits the source already has (``train_split``/``eval_split``/``test_split``, e.g. a hub
  dataset's ``train``/``validation``/``test``) are used as they are. A split whose labels are
  all missing or negative (GLUE's hidden test labels are ``-1``) counts as absent.
* Missing evaluation/test splits are carved out of the training pool, stratified by label;
  with no sizes given, each takes 10% of the pool (80/10/10 for data that comes unsplit).
* ``train_size``/``eval_size``/``test_size`` take stratified subsets of exactly those sizes.
  The test split is drawn first, then evaluation, then train, so changing ``train_size``
  leaves the test and evaluation splits unchanged.

Labels: string labels map to ids in sorted order; integer labels are kept, named ``"0"``,
``"1"``, ... unless the dataset carries ``ClassLabel`` names.

:func:`tokenize` encodes splits without padding; batches are padded dynamically by
:func:`data_collator` (``transformers.DataCollatorWithPadding``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = [
    "BUILTIN_SOURCES",
    "DEFAULT_HELDOUT_FRACTION",
    "DataConfig",
    "LOCAL_SUFFIXES",
    "SPLIT_NAMES",
    "Splits",
    "check_labels_match",
    "data_collator",
    "load_splits",
    "tokenize",
]

BUILTIN_SOURCES = ("polarity",)
SPLIT_NAMES = ("train", "eval", "test")
DEFAULT_HELDOUT_FRACTION = 0.1
LOCAL_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class DataConfig(BaseModel):
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
        seed: seed of the stratified splitting and subsetting.
        max_length: maximum tokens per example (truncation) when the data is tokenised.
        train_split, eval_split, test_split: split names in the source.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "polarity"
    config_name: str | None = None
    text_columns: tuple[str, ...] = ("text",)
    label_column: str = "label"
    train_size: int | None = Field(default=None, ge=1)
    eval_size: int | None = Field(default=None, ge=1)
    test_size: int | None = Field(default=None, ge=1)
    seed: int = 0
    max_length: int = Field(default=128, ge=8, le=8192)
    train_split: str = "train"
    eval_split: str = "validation"
    test_split: str = "test"

    @field_validator("source", "label_column", "train_split", "eval_split", "test_split")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

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
    """Train, evaluation and test splits with normalised columns.

    Each split is a ``datasets.Dataset`` with ``text`` (and ``text_pair`` for pair tasks) and
    ``label`` (ids ``0..K-1``, a ``ClassLabel`` named by ``label_names``).
    """

    train: Dataset
    eval: Dataset
    test: Dataset
    label_names: tuple[str, ...]
    _fingerprints: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @property
    def num_labels(self) -> int:
        """Number of classes K."""
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        """Whether examples are sentence pairs (a ``text_pair`` column is present)."""
        return "text_pair" in self.train.column_names

    def split(self, name: str) -> Dataset:
        """Return the split called ``name`` (``"train"``, ``"eval"`` or ``"test"``)."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {name!r}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Rows per split, e.g. ``{"train": 3200, "eval": 400, "test": 400}``."""
        return {name: len(self.split(name)) for name in SPLIT_NAMES}

    def fingerprint(self, split: str) -> str:
        """A stable hash of one split's content (rows in order, label names), for caches.

        The same data and seed give the same fingerprint in any process and on any machine.
        """
        if split not in self._fingerprints:
            self._fingerprints[split] = _fingerprint(self.split(split), self.label_names)
        return self._fingerprints[split]


def load_splits(cfg: DataConfig) -> Splits:
    """Load ``cfg.source`` and return its stratified train/evaluation/test splits.

    Raises:
        ValueError: one line naming the problem: a source that cannot be read or reached, a
            missing split or column (with the available ones), empty text, missing or invalid
            labels, a single class, or sizes larger than the data available.
    """
    raw, desc = _load_raw(cfg)
    pool_name = _pool_split_name(raw, cfg, desc)

    parts: dict[str, _Part] = {"train": _extract(raw[pool_name], cfg, desc, pool_name)}
    if parts["train"].unlabelled:
        raise ValueError(f"{desc} split {pool_name!r} has no labels in column {cfg.label_column!r}")
    for role, name in (("eval", cfg.eval_split), ("test", cfg.test_split)):
        if name in raw and name != pool_name:
            part = _extract(raw[name], cfg, desc, name)
            if not part.unlabelled:
                parts[role] = part

    label_names, ids = _label_ids(parts, cfg, desc)
    pool_labels = ids["train"]
    if len(np.unique(pool_labels)) < 2:
        only = label_names[int(pool_labels[0])]
        raise ValueError(
            f"{desc} split {pool_name!r} has only one class ({only!r}) in column "
            f"{cfg.label_column!r}; need at least two"
        )

    indices = _assign(parts, ids, cfg, desc, pool_name)
    return Splits(
        **{role: _build(parts[src], idx, label_names, ids[src]) for role, (src, idx) in
           indices.items()},
        label_names=label_names,
    )  # fmt: skip


def check_labels_match(
    splits: Splits | Sequence[str], teacher_label_names: Sequence[str] | Mapping[int, str]
) -> None:
    """Raise ValueError unless the data's label names equal the teacher's, in id order.

    Args:
        splits: the loaded splits (or their label names).
        teacher_label_names: names in id order, or a model config's ``id2label`` mapping.
    """
    data = tuple(splits.label_names if isinstance(splits, Splits) else splits)
    if isinstance(teacher_label_names, Mapping):
        teacher = tuple(str(teacher_label_names[k]) for k in sorted(teacher_label_names))
    else:
        teacher = tuple(str(n) for n in teacher_label_names)
    if data == teacher:
        return
    hint = ""
    if sorted(data) == sorted(teacher):
        hint = " (same names in a different id order)"
    elif len(data) != len(teacher):
        hint = f" ({len(data)} classes in the data, {len(teacher)} in the teacher)"
    raise ValueError(f"data labels {list(data)} do not match the teacher's {list(teacher)}{hint}")


def tokenize(splits_or_dataset: Splits | Dataset, tokenizer: Any, max_length: int):
    """Encode text into ``input_ids``/``attention_mask``/``token_type_ids``, without padding.

    Text is truncated to ``max_length`` tokens (pairs: longest first); padding is left to
    :func:`data_collator` per batch. The ``text``/``text_pair`` columns are removed and
    ``label`` is kept.

    Args:
        splits_or_dataset: :class:`Splits` or one normalised ``datasets.Dataset``.
        tokenizer: a Hugging Face tokenizer.
        max_length: maximum tokens per example.

    Returns:
        A ``DatasetDict`` with ``train``/``eval``/``test`` for :class:`Splits`, else a
        ``Dataset``.
    """
    from datasets import DatasetDict

    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
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


# --------------------------------------------------------------------------- loading


def _load_raw(cfg: DataConfig) -> tuple[dict[str, Dataset], str]:
    """Return the source's splits by name and a short description for error messages."""
    if cfg.source == "polarity":
        from kdtune.objectives.polarity import polarity_dataset

        try:
            return {"train": polarity_dataset()}, "polarity"
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"built-in dataset 'polarity' unavailable: {e}") from e
    path = Path(cfg.source).expanduser()
    if path.exists() or _looks_like_path(cfg.source):
        splits = (cfg.train_split, cfg.eval_split, cfg.test_split)
        return _load_local(path, cfg.source, splits), repr(cfg.source)
    return _load_hub(cfg), repr(cfg.source)


def _looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", "./", "../", "~", "\\"))
        or Path(source).suffix.lower() in LOCAL_SUFFIXES
    )


def _load_local(path: Path, source: str, split_names: Sequence[str]) -> dict[str, Dataset]:
    from datasets import load_dataset

    if not path.exists():
        raise ValueError(f"data source {source!r}: no such file or directory")
    if path.is_file():
        builder = LOCAL_SUFFIXES.get(path.suffix.lower())
        if builder is None:
            raise ValueError(
                f"data source {source!r}: unsupported file type {path.suffix!r}; "
                f"use one of {', '.join(LOCAL_SUFFIXES)}"
            )
        data_files: dict[str, list[str]] = {"train": [str(path)]}
    else:
        files = sorted(
            p for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in LOCAL_SUFFIXES
        )  # fmt: skip
        if not files:
            raise ValueError(
                f"data source {source!r}: directory has no {'/'.join(LOCAL_SUFFIXES)} files"
            )
        builders = {LOCAL_SUFFIXES[p.suffix.lower()] for p in files}
        if len(builders) > 1:
            raise ValueError(
                f"data source {source!r}: directory mixes file types "
                f"({', '.join(sorted(builders))})"
            )
        builder = builders.pop()
        # Files named after splits ("train.csv", "validation.csv") make a pre-split directory.
        named = [p for p in files if p.name[: -len(p.suffix)] in split_names]
        if named and len(named) != len(files):
            others = [p.name for p in files if p not in named]
            raise ValueError(
                f"data source {source!r}: directory mixes split files "
                f"({', '.join(p.name for p in named)}) with other files ({', '.join(others)})"
            )
        data_files = {}
        for p in files:
            key = p.name[: -len(p.suffix)] if named else "train"
            data_files.setdefault(key, []).append(str(p))
    try:
        loaded = load_dataset(builder, data_files=data_files)
    except Exception as e:  # noqa: BLE001 - any reader failure becomes one readable line
        raise ValueError(f"could not read data source {source!r}: {_one_line(e)}") from e
    return dict(loaded)


def _load_hub(cfg: DataConfig) -> dict[str, Dataset]:
    from datasets import load_dataset

    what = repr(cfg.source) + (f" (config {cfg.config_name!r})" if cfg.config_name else "")
    try:
        loaded = load_dataset(cfg.source, cfg.config_name)
    except Exception as e:  # noqa: BLE001 - hub, network and script errors alike
        raise ValueError(
            f"could not load dataset {what} from the Hugging Face Hub: {_one_line(e)}"
        ) from e
    if not hasattr(loaded, "items"):
        return {"train": loaded}
    return dict(loaded)


def _pool_split_name(raw: dict[str, Dataset], cfg: DataConfig, desc: str) -> str:
    if cfg.train_split in raw:
        return cfg.train_split
    if len(raw) == 1:
        return next(iter(raw))
    raise ValueError(
        f"{desc} has no split {cfg.train_split!r}; available splits: {', '.join(sorted(raw))}"
    )


# --------------------------------------------------------------------------- columns, labels


@dataclass
class _Part:
    """One source split's text columns and raw label values."""

    texts: list[list[str]]
    labels: list[Any]
    label_kind: str  # "classlabel", "int", "str"
    class_names: tuple[str, ...] | None
    unlabelled: bool


def _extract(ds: Dataset, cfg: DataConfig, desc: str, split: str) -> _Part:
    """Check one split's columns and text, and read its label values."""
    from datasets import ClassLabel

    where = f"{desc} split {split!r}"
    wanted = [*cfg.text_columns, cfg.label_column]
    missing = [c for c in wanted if c not in ds.column_names]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        raise ValueError(
            f"{noun} {', '.join(map(repr, missing))} not found in {where}; "
            f"available columns: {', '.join(ds.column_names)}"
        )
    if len(ds) == 0:
        raise ValueError(f"{where} has no rows")

    texts = []
    for col in cfg.text_columns:
        values = list(ds[col])
        bad = next((i for i, v in enumerate(values) if v is not None and not isinstance(v, str)),
                   None)  # fmt: skip
        if bad is not None:
            raise ValueError(
                f"text column {col!r} of {where} must hold strings, found "
                f"{type(values[bad]).__name__} at index {bad}"
            )
        empty = [i for i, v in enumerate(values) if v is None or not v.strip()]
        if empty:
            raise ValueError(
                f"{len(empty)} of {len(values)} rows have empty text in column {col!r} of "
                f"{where} (first at index {empty[0]})"
            )
        texts.append(values)

    feature = ds.features[cfg.label_column]
    labels = list(ds[cfg.label_column])
    if isinstance(feature, ClassLabel):
        kind, names = "classlabel", tuple(feature.names)
    else:
        kind, names = _label_kind(labels, cfg.label_column, where), None
        if kind == "int":  # NaN from numeric readers means "no label"
            labels = [None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)
                      for v in labels]  # fmt: skip
    unlabelled = all(v is None or (kind != "str" and v < 0) for v in labels)
    if not unlabelled:
        none = [i for i, v in enumerate(labels) if v is None]
        if none:
            raise ValueError(
                f"{len(none)} of {len(labels)} rows have no label in column "
                f"{cfg.label_column!r} of {where} (first at index {none[0]})"
            )
        if kind != "str":
            neg = [i for i, v in enumerate(labels) if v < 0]
            if neg:
                raise ValueError(
                    f"{len(neg)} rows of {where} have negative labels (e.g. {labels[neg[0]]} at "
                    f"index {neg[0]}); integer labels must be 0..K-1, or use string labels"
                )
    return _Part(texts, labels, kind, names, unlabelled)


def _label_kind(values: list[Any], column: str, where: str) -> str:
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
                raise ValueError(
                    f"label column {column!r} of {where} holds non-integer numbers "
                    f"({v!r} at index {i}); use integer or string labels"
                )
            kinds.add("int")
        else:
            raise ValueError(
                f"label column {column!r} of {where} must hold integers or strings, found "
                f"{type(v).__name__} at index {i}"
            )
    if len(kinds) > 1:
        raise ValueError(f"label column {column!r} of {where} mixes strings and numbers")
    return kinds.pop() if kinds else "int"


def _label_ids(
    parts: dict[str, _Part], cfg: DataConfig, desc: str
) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """Map every part's labels to ids ``0..K-1`` and name the classes."""
    kinds = {p.label_kind if p.label_kind != "classlabel" else "int" for p in parts.values()}
    if len(kinds) > 1:
        raise ValueError(
            f"label column {cfg.label_column!r} of {desc} holds strings in some splits and "
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
            raise ValueError(
                f"label {largest} in column {cfg.label_column!r} of {desc} has no class name "
                f"(names: {list(class_names)})"
            )
        return class_names, ids
    return tuple(str(i) for i in range(largest + 1)), ids


# --------------------------------------------------------------------------- splitting


def _assign(
    parts: dict[str, _Part], ids: dict[str, np.ndarray], cfg: DataConfig, desc: str, pool: str
) -> dict[str, tuple[str, np.ndarray]]:
    """Decide each output split's rows: ``role -> (source part, row indices)``."""
    requested = {"train": cfg.train_size, "eval": cfg.eval_size, "test": cfg.test_size}
    split_names = {"train": pool, "eval": cfg.eval_split, "test": cfg.test_split}
    out: dict[str, tuple[str, np.ndarray]] = {}

    # Splits the source provides: all of it, or a stratified subset.
    for k, role in enumerate(("eval", "test"), start=1):
        if role not in parts:
            continue
        n_avail, want = len(ids[role]), requested[role]
        if want is not None and want > n_avail:
            raise ValueError(
                f"{role}_size={want} is larger than the {n_avail} rows of {desc} split "
                f"{split_names[role]!r}"
            )
        rng = np.random.default_rng([cfg.seed, k])
        out[role] = (role, _stratified(ids[role], [want or n_avail], rng)[0])

    # Splits carved from the training pool: test first, then eval, then train.
    labels = ids["train"]
    n_pool = len(labels)
    carved = [r for r in ("test", "eval") if r not in parts]
    sizes = {r: requested[r] or max(1, round(DEFAULT_HELDOUT_FRACTION * n_pool)) for r in carved}
    held_out = sum(sizes.values())
    train_size = requested["train"] or n_pool - held_out
    if held_out + train_size > n_pool or train_size < 1:
        shown = " + ".join(f"{r} {sizes[r]}" for r in carved)
        need = f"train {requested['train'] or 'rest'}" + (f" + {shown}" if shown else "")
        raise ValueError(
            f"requested split sizes ({need}) need more than the {n_pool} rows of {desc} "
            f"split {pool!r}"
        )
    order = [*carved, "train"]
    chosen = _stratified(labels, [sizes.get(r, train_size) for r in order],
                         np.random.default_rng(cfg.seed))  # fmt: skip
    for role, idx in zip(order, chosen, strict=True):
        out[role] = ("train", idx)
    return {role: out[role] for role in SPLIT_NAMES}


def _stratified(labels: np.ndarray, sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Draw consecutive disjoint stratified samples of the given sizes from ``labels``.

    Each class's rows are shuffled once; every sample takes its per-class quota
    (proportional to the class's share of all rows, largest remainder, capped by what is
    left) from the front of what remains, so earlier samples do not depend on later sizes.
    Each sample's rows come back in shuffled order.
    """
    classes = np.unique(labels)
    counts = np.array([(labels == c).sum() for c in classes], dtype=np.int64)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    taken = np.zeros(len(classes), dtype=np.int64)
    total = int(counts.sum())
    samples = []
    for size in sizes:
        left = counts - taken
        quota = np.minimum(size * counts // total, left)
        remainder = size * counts % total
        ranked = sorted(range(len(classes)), key=lambda k: (-int(remainder[k]), k))
        short = size - int(quota.sum())
        while short > 0:
            progressed = False
            for k in ranked:
                if short and quota[k] < left[k]:
                    quota[k] += 1
                    short -= 1
                    progressed = True
            if not progressed:  # pragma: no cover - sizes are checked by the caller
                raise ValueError(f"cannot draw {size} rows from {int(left.sum())}")
        idx = np.concatenate(
            [pools[k][taken[k] : taken[k] + quota[k]] for k in range(len(classes))]
        )
        taken += quota
        samples.append(rng.permutation(idx))
    return samples


def _build(part: _Part, idx: np.ndarray, label_names: tuple[str, ...], ids: np.ndarray) -> Dataset:
    from datasets import ClassLabel, Dataset, Features, Value

    columns: dict[str, list[Any]] = {}
    features: dict[str, Any] = {}
    for name, values in zip(("text", "text_pair"), part.texts, strict=False):
        columns[name] = [values[i] for i in idx]
        features[name] = Value("string")
    columns["label"] = ids[idx].tolist()
    features["label"] = ClassLabel(names=list(label_names))
    return Dataset.from_dict(columns, features=Features(features))


# --------------------------------------------------------------------------- helpers


def _fingerprint(ds: Dataset, label_names: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    columns = [c for c in ("text", "text_pair", "label") if c in ds.column_names]
    h.update(json.dumps({"v": 1, "labels": list(label_names), "columns": columns}).encode())
    values = [list(ds[c]) for c in columns]
    for row in zip(*values, strict=True):
        h.update(b"\n")
        h.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def _tokenize_one(ds: Dataset, tokenizer: Any, max_length: int, name: str) -> Dataset:
    if "text" not in ds.column_names:
        raise ValueError(
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


def _one_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message, prefixed by its type."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
