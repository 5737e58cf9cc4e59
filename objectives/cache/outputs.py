"""Teacher-output cache: run the teacher once per fingerprint, reuse it in every trial.

:func:`compute_or_load` is the one entry point: it decides which variant to use (by size,
:func:`estimate_intermediate_bytes`), runs the
teacher over the dataset when that variant is not cached yet, and returns the memory-mapped
:class:`~kdtune.objectives.cache.store.TeacherOutputs`. The key is
:func:`~kdtune.objectives.cache.fingerprint.teacher_fingerprint`; on-disk layout, atomic
writes and reads: :mod:`~kdtune.objectives.cache.store`.

Why: docs/design.md, "Teacher outputs are cached once per study", "One all-layers teacher cache".
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdtune.errors import UsageError

from ..compute.predict import MODEL_INPUTS, predict_logits
from ..teacher.forward import check_available, forward_teacher, layer_indices
from .store import (
    MANIFEST,
    TeacherOutputs,
    cache_root,
    find_variant,
    offsets,
    read_variant,
    store_variant,
    variant_name,
)

__all__ = ["compute_or_load", "estimate_intermediate_bytes"]


def compute_or_load(
    teacher: torch.nn.Module,
    tokenizer: Any,
    dataset: Any,
    fingerprint: str,
    layers_hidden: Sequence[int] = (),
    layers_attention: Sequence[int] = (),
    memory_budget_mb: float = 2048,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> TeacherOutputs:
    """Return the teacher's outputs on ``dataset``: from the cache, or computed and cached.

    Logits are always cached. When hidden states (``layers_hidden``: ``hidden_states``
    indices) or attention scores (``layers_attention``: 0-based ``attentions`` indices) are
    asked for, the variant is chosen as the module docstring says: an existing one that
    holds them (whatever the budget), else all layers of each kind asked for when
    :func:`estimate_intermediate_bytes` of all of them is at
    most ``memory_budget_mb`` MiB, else just the asked-for layers when those fit, else
    logits only (the result's ``needs_live_teacher`` is then true). The result opens only
    the asked-for layers. Computing runs the teacher in eval mode without gradients (its
    train/eval mode is restored afterwards), batching examples of similar length together,
    and writes atomically.

    Args:
        teacher: the teacher classifier.
        tokenizer: its tokenizer (for the padding id; ``None`` pads with 0).
        dataset: a tokenised ``datasets.Dataset`` with ``input_ids`` and, optionally,
            ``attention_mask`` (right padding only) and ``token_type_ids``; rows unpadded or
            padded.
        fingerprint: from :func:`~kdtune.objectives.cache.fingerprint.teacher_fingerprint`.
        layers_hidden, layers_attention: the intermediates needed (may be empty).
        memory_budget_mb: the largest intermediate cache (MiB) to write; 0 caches logits only
            (an existing variant holding the layers is still read).
        batch_size: examples per teacher forward.
        device: where to run the teacher: ``None`` leaves it where it is; otherwise the
            teacher is moved there (and stays there).

    Returns:
        :class:`~kdtune.objectives.cache.store.TeacherOutputs` aligned with the dataset's
        rows.

    Raises:
        UsageError: a bad argument (fingerprint, batch size, budget, layer indices, a
            dataset without ``input_ids`` or with left padding).
        ValueError: a cache that does not line up with ``dataset``.
    """
    if not isinstance(fingerprint, str) or len(fingerprint) < 8 or not fingerprint.isalnum():
        raise UsageError(
            f"fingerprint must be an alphanumeric string from teacher_fingerprint, got "
            f"{fingerprint!r}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")
    if memory_budget_mb < 0:
        raise UsageError(f"memory_budget_mb must be >= 0, got {memory_budget_mb!r}")
    hidden_idx = layer_indices("layers_hidden", layers_hidden)
    att_idx = layer_indices("layers_attention", layers_attention)
    cfg = teacher.config
    depth = int(cfg.num_hidden_layers)
    check_available("layers_hidden", hidden_idx, depth + 1)
    check_available("layers_attention", att_idx, depth)
    lengths = _dataset_lengths(dataset)

    base = cache_root() / fingerprint
    variant, store_hidden, store_att = _choose_variant(
        base, lengths, cfg, hidden_idx, att_idx, memory_budget_mb
    )
    final = base / variant
    if not (final / MANIFEST).is_file():
        if device is not None:
            teacher.to(device)
        _compute_and_store(
            teacher, tokenizer, dataset, lengths, fingerprint, final,
            store_hidden, store_att, batch_size,
        )  # fmt: skip
    outputs = read_variant(final, fingerprint, hidden_idx, att_idx)
    if not np.array_equal(outputs.lengths, lengths):
        raise ValueError(
            f"cached teacher outputs at {str(final)!r} do not line up with the dataset "
            f"({outputs.num_examples} cached examples, {len(lengths)} in the dataset, or "
            f"different token counts); the fingerprint does not describe this dataset"
        )
    return outputs


def _choose_variant(
    base: Path,
    lengths: np.ndarray,
    cfg: Any,
    hidden_idx: list[int],
    att_idx: list[int],
    memory_budget_mb: float,
) -> tuple[str, list[int], list[int]]:
    """The variant to read (written first if missing) and its hidden and attention indices:
    steps 1-5 of the module docstring."""
    if not hidden_idx and not att_idx:
        return "logits", [], []
    depth = int(cfg.num_hidden_layers)
    all_hidden = list(range(depth + 1)) if hidden_idx else []
    all_att = list(range(depth)) if att_idx else []
    prefer = variant_name(all_hidden, all_att)
    found = find_variant(base, hidden_idx, att_idx, prefer=prefer)
    if found == prefer:  # the usual case: its layers are in its name, no manifest to read
        return prefer, all_hidden, all_att
    if found is not None:
        manifest = json.loads((base / found / MANIFEST).read_text())
        return found, list(manifest["hidden"]), list(manifest["attention"])
    width, heads = int(cfg.hidden_size), int(cfg.num_attention_heads)
    budget = memory_budget_mb * 2**20
    for hidden, att in ((all_hidden, all_att), (hidden_idx, att_idx)):
        if estimate_intermediate_bytes(lengths, width, heads, hidden, att) <= budget:
            return variant_name(hidden, att), hidden, att
    return "logits", [], []


def estimate_intermediate_bytes(
    lengths: Iterable[int],
    hidden_size: int,
    num_heads: int,
    layers_hidden: Sequence[int],
    layers_attention: Sequence[int],
) -> int:
    """Bytes of cached intermediates: 4 * (sum L_j * H * |hidden| + heads * sum L_j^2 * |att|)."""
    arr = np.asarray(list(lengths), dtype=np.int64)
    tokens, squares = int(arr.sum()), int((arr**2).sum())
    return 4 * (
        tokens * hidden_size * len(layers_hidden) + num_heads * squares * len(layers_attention)
    )


def _dataset_lengths(dataset: Any) -> np.ndarray:
    """Real tokens per row: the attention-mask sum (checked to be a prefix of ones).

    Raises:
        UsageError: no ``input_ids`` column, no rows, left padding, or an empty row.
    """
    columns = getattr(dataset, "column_names", None)
    if columns is None or "input_ids" not in columns:
        raise UsageError(
            f"dataset must be a tokenised datasets.Dataset with an 'input_ids' column, got "
            f"{type(dataset).__name__} with columns {columns}"
        )
    n = len(dataset)
    if n == 0:
        raise UsageError("dataset has no rows")
    has_mask = "attention_mask" in columns
    key = "attention_mask" if has_mask else "input_ids"
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, 4096):
        for j, row in enumerate(dataset[start : start + 4096][key]):
            if not has_mask:
                out[start + j] = len(row)
                continue
            arr = np.asarray(row)
            length = int(arr.sum())
            if not (arr[:length] == 1).all():
                raise UsageError(
                    f"attention_mask of row {start + j} is not ones followed by zeros; "
                    f"only right padding is supported"
                )
            out[start + j] = length
    if out.min() < 1:
        raise UsageError(f"row {int(out.argmin())} of the dataset has no tokens")
    return out


def _compute_and_store(
    teacher: torch.nn.Module,
    tokenizer: Any,
    dataset: Any,
    lengths: np.ndarray,
    fingerprint: str,
    final: Path,
    hidden_idx: Sequence[int],
    att_idx: Sequence[int],
    batch_size: int,
) -> None:
    """Run the teacher over ``dataset`` and write the variant directory ``final``.

    Nothing is computed when another worker has written ``final`` meanwhile
    (:func:`~kdtune.objectives.cache.store.store_variant` holds a lock and checks first).
    """
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    manifest = {
        "fingerprint": fingerprint,
        "num_examples": len(lengths),
        "hidden": list(hidden_idx),
        "attention": list(att_idx),
        "teacher_class": type(teacher).__name__,
    }
    was_training = teacher.training
    try:
        store_variant(
            final,
            lambda directory: _write_outputs(teacher, dataset, lengths, directory, hidden_idx,
                                             att_idx, batch_size, pad_id),
            manifest,
        )  # fmt: skip
    finally:
        teacher.train(was_training)


def _pad_batch(rows: list[dict[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Model inputs of ``rows`` right-padded to their longest real length, as CPU tensors.

    A row's real length is its attention-mask sum (or its token count without a mask);
    rows that come padded are cut back to it first.
    """
    lengths = [
        int(sum(row["attention_mask"])) if "attention_mask" in row else len(row["input_ids"])
        for row in rows
    ]
    seq = max(lengths)
    out = {}
    for col in (c for c in MODEL_INPUTS if c in rows[0]):
        fill = pad_id if col == "input_ids" else 0
        t = torch.full((len(rows), seq), fill, dtype=torch.long)
        for b, (row, ln) in enumerate(zip(rows, lengths, strict=True)):
            t[b, :ln] = torch.as_tensor(row[col][:ln], dtype=torch.long)
        out[col] = t
    if "attention_mask" not in out:
        out["attention_mask"] = (torch.arange(seq)[None, :]
                                 < torch.as_tensor(lengths)[:, None]).long()  # fmt: skip
    return out


def _write_outputs(
    teacher: torch.nn.Module,
    dataset: Any,
    lengths: np.ndarray,
    directory: Path,
    hidden_idx: Sequence[int],
    att_idx: Sequence[int],
    batch_size: int,
    pad_id: int,
) -> dict[str, Any]:
    """Fill ``directory`` with logits/hidden/attention ``.npy`` files; return metadata.

    Logits only: :func:`~kdtune.objectives.compute.predict.predict_logits`. With intermediates:
    :func:`~kdtune.objectives.teacher.forward.forward_teacher` per batch, each example's
    real tokens written back to back.
    """
    from numpy.lib.format import open_memmap

    cfg = teacher.config
    n, width, heads = len(lengths), int(cfg.hidden_size), int(cfg.num_attention_heads)
    num_labels = int(cfg.num_labels)
    device = next(teacher.parameters()).device
    collate = functools.partial(_pad_batch, pad_id=pad_id)
    np.save(directory / "lengths.npy", lengths)
    logits = open_memmap(directory / "logits.npy", "w+", np.float32, (n, num_labels))

    if not hidden_idx and not att_idx:
        computed = predict_logits(teacher, dataset, collate, device, batch_size)
        _check_labels(computed.shape[1], num_labels)
        logits[:] = computed
    else:
        tok_start, att_start = offsets(lengths), offsets(heads * lengths**2)
        hidden = {i: open_memmap(directory / f"hidden_{i}.npy", "w+", np.float32,
                                 (int(lengths.sum()), width)) for i in hidden_idx}  # fmt: skip
        attention = {i: open_memmap(directory / f"attention_{i}.npy", "w+", np.float32,
                                    (int((heads * lengths**2).sum()),))
                     for i in att_idx}  # fmt: skip
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: less padding
        teacher.eval()
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            columns = dataset[[int(r) for r in rows]]  # one read per batch, not per row
            examples = [dict(zip(columns, values, strict=True))
                        for values in zip(*columns.values(), strict=True)]  # fmt: skip
            batch = {k: v.to(device) for k, v in collate(examples).items()}
            res = forward_teacher(teacher, batch, hidden_idx, att_idx)
            _check_labels(res["logits"].shape[1], num_labels)
            logits[rows] = res["logits"].cpu().numpy()
            for i, states in res["hidden"].items():
                states = states.cpu().numpy()
                for b, r in enumerate(rows):
                    hidden[i][tok_start[r] : tok_start[r] + lengths[r]] = states[b, : lengths[r]]
            for i, maps in res["attentions"].items():
                maps = maps.cpu().numpy()
                for b, r in enumerate(rows):
                    block = maps[b, :, : lengths[r], : lengths[r]].reshape(-1)
                    attention[i][att_start[r] : att_start[r] + block.size] = block
        for arr in (*hidden.values(), *attention.values()):
            arr.flush()
        del hidden, attention
    logits.flush()
    del logits
    return {"num_labels": num_labels, "hidden_size": width, "num_heads": heads, "dtype": "float32"}


def _check_labels(got: int, expected: int) -> None:
    if got != expected:
        raise ValueError(f"teacher returned {got} logits, config says {expected}")
