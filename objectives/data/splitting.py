"""Stratified, seeded train/evaluation/test splitting, and the normalised split datasets.

Deterministic for a given seed (same seed, same splits, in any process). Splits the source has
are used as they are, or a stratified subset of the size asked for; missing evaluation/test
splits are carved out of the training pool, stratified by label. Without sizes each takes
:data:`DEFAULT_HELDOUT_FRACTION` of the pool (80/10/10 for unsplit data); explicit sizes take
stratified subsets of exactly those sizes, drawn test first, then evaluation, then transfer,
then train.
Why: docs/design.md, "Split order: test first, train last".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kdtune.errors import DataError

from .labels import Part

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

__all__ = ["DEFAULT_HELDOUT_FRACTION", "SPLIT_NAMES", "TRANSFER", "assign_rows", "build_split",
           "stratified"]

SPLIT_NAMES = ("train", "eval", "test")
TRANSFER = "transfer"
"""The optional fourth split: labelled rows for the students only (see :func:`assign_rows`)."""
DEFAULT_HELDOUT_FRACTION = 0.1


def assign_rows(
    ids: dict[str, np.ndarray],
    sizes: dict[str, int | None],
    seed: int,
    split_names: dict[str, str],
    desc: str,
) -> dict[str, tuple[str, np.ndarray]]:
    """Decide each output split's rows: ``role -> (source part, row indices)``.

    Args:
        ids: class ids per source part: ``"train"`` (the pool) always, ``"eval"`` and
            ``"test"`` when the source provides them.
        sizes: the requested rows per role (``None``: the whole given split, or 10% of the
            pool for a carved split, train taking the rest); an optional ``"transfer"``
            size carves that many rows from the pool after test and evaluation.
        seed: the splitting seed.
        split_names: the source's name of each role's split, for error messages.
        desc: the source, for error messages.

    Raises:
        DataError: a size larger than the rows available.
    """
    out: dict[str, tuple[str, np.ndarray]] = {}

    # Splits the source provides: all of it, or a stratified subset.
    for k, role in enumerate(("eval", "test"), start=1):
        if role not in ids:
            continue
        n_avail, want = len(ids[role]), sizes[role]
        if want is not None and want > n_avail:
            raise DataError(
                f"{role}_size={want} is larger than the {n_avail} rows of {desc} split "
                f"{split_names[role]!r}"
            )
        rng = np.random.default_rng([seed, k])
        out[role] = (role, stratified(ids[role], [want or n_avail], rng)[0])

    # Splits carved from the training pool: test first, then eval, then train.
    labels = ids["train"]
    n_pool = len(labels)
    carved = [r for r in ("test", "eval") if r not in ids]
    held = {r: sizes[r] or max(1, round(DEFAULT_HELDOUT_FRACTION * n_pool)) for r in carved}
    if sizes.get(TRANSFER):
        carved.append(TRANSFER)
        held[TRANSFER] = sizes[TRANSFER]
    held_out = sum(held.values())
    train_size = sizes["train"] or n_pool - held_out
    if held_out + train_size > n_pool or train_size < 1:
        shown = " + ".join(f"{r} {held[r]}" for r in carved)
        need = f"train {sizes['train'] or 'rest'}" + (f" + {shown}" if shown else "")
        raise DataError(
            f"requested split sizes ({need}) need more than the {n_pool} rows of {desc} "
            f"split {split_names['train']!r}"
        )
    order = [*carved, "train"]
    chosen = stratified(labels, [held.get(r, train_size) for r in order],
                        np.random.default_rng(seed))  # fmt: skip
    for role, idx in zip(order, chosen, strict=True):
        out[role] = ("train", idx)
    return {role: out[role] for role in (*SPLIT_NAMES, TRANSFER) if role in out}


def stratified(labels: np.ndarray, sizes: list[int], rng: np.random.Generator) -> list[np.ndarray]:
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


def build_split(
    part: Part, idx: np.ndarray, label_names: tuple[str, ...], ids: np.ndarray
) -> Dataset:
    """The rows ``idx`` of ``part`` as a normalised dataset: ``text`` [, ``text_pair``],
    ``label`` (a ``ClassLabel`` named by ``label_names``)."""
    from datasets import ClassLabel, Dataset, Features, Value

    columns: dict[str, list[Any]] = {}
    features: dict[str, Any] = {}
    for name, values in zip(("text", "text_pair"), part.texts, strict=False):
        columns[name] = [values[i] for i in idx]
        features[name] = Value("string")
    columns["label"] = ids[idx].tolist()
    features["label"] = ClassLabel(names=list(label_names))
    return Dataset.from_dict(columns, features=Features(features))
