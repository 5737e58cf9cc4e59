"""Teacher-output cache: run the teacher once per fingerprint, reuse it in every trial.

Every trial of a study distils from the same teacher on the same data, so the teacher's
outputs are computed once and kept on disk under::

    kdtune_home()/cache/teacher-outputs/<fingerprint>/<variant>/

``<fingerprint>`` (:func:`teacher_fingerprint`) names the teacher (the full content of its
config, weights and tokenizer files), the data split, the tokenisation and the intermediate
layers asked for. ``<variant>`` names what the directory holds: ``logits`` (logits only), or
``h0.2.4-a1.3`` (logits + hidden states 0, 2, 4 + attention maps 1, 3), so two layer sets
under one fingerprint never collide and a logits-only cache is shared by all layer sets.

What is stored (all float32, example order = the dataset's row order):

* ``logits``: (n, K), always.
* hidden states, for the requested Hugging Face ``hidden_states`` indices (0 = embedding
  output, i = output of layer i), and attention maps, for the requested ``attentions``
  indices (0-based: index i - 1 is layer i, as :func:`objectives.mapping.attention_pairs`
  gives them), only when their estimated size fits ``memory_budget_mb``. Otherwise the
  result has ``needs_live_teacher`` set and the training loop runs the teacher live for
  the intermediate losses (its logits can still come from the cache).
* Attention maps are what the teacher returns with ``output_attentions=True``: with Hugging
  Face's eager attention these are post-softmax probabilities, not raw scores.

Format: examples are stored UNPADDED, one ``.npy`` file per array, read back through
``numpy`` memory maps (opening is instant, pages load on demand, the OS page cache shares
them between local workers). Per hidden-state index, ``hidden_<i>.npy`` is
(sum of lengths, H): the tokens of all examples back to back; per attention index,
``attention_<i>.npy`` is flat, example j contributing heads * L_j * L_j values. ``lengths.npy``
holds L_j (real tokens, i.e. the attention-mask sum). :meth:`TeacherOutputs.batch` pads to
the batch's length with ZEROS: hidden states of padding tokens and attention rows/columns of
padding tokens are 0, which a live forward does not give (it fills them with values that
depend on the padding), so losses must mask padding for the cached and live paths to agree;
:func:`forward_teacher` returns live outputs in the same zero-padded form.

Writes are atomic: everything goes to a temporary directory next to the final one, which
is renamed into place at the end. Two local workers racing on one fingerprint both compute;
the first rename wins and the loser deletes its copy and uses the winner's. A write that
fails part-way leaves no directory under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdtune.paths import kdtune_home

__all__ = [
    "CACHE_FORMAT_VERSION",
    "TeacherOutputs",
    "cache_root",
    "compute_or_load",
    "estimate_intermediate_bytes",
    "file_digest",
    "forward_teacher",
    "teacher_fingerprint",
]

CACHE_FORMAT_VERSION = 2  # 2: attention maps are pre-softmax scores
MANIFEST = "manifest.json"
# Files of a checkpoint directory that define the teacher's outputs: config, weights
# (*.safetensors, *.bin, shard indexes *.json), tokenizer (*.json, vocab.txt, *.model).
_TEACHER_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
# A file modified this recently is re-hashed on every call instead of trusting the sidecar,
# so a rewrite within one timestamp tick of the recorded one can never go unnoticed.
_RACY_SECONDS = 2.0
_STALE_TMP_SECONDS = 24 * 3600
_HASH_CHUNK = 1 << 20


def cache_root() -> Path:
    """``kdtune_home()/cache/teacher-outputs``, the directory holding every fingerprint."""
    return kdtune_home() / "cache" / "teacher-outputs"


# --------------------------------------------------------------------------- fingerprints


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's full content, remembered in a sidecar to avoid rehashing.

    The sidecar (``kdtune_home()/cache/file-digests/<hash of the path>.json``) is reused only
    while the file's size, mtime_ns, ctime_ns, inode and device are unchanged, and is only
    written for files last modified more than 2 s before hashing began (git's "racily
    clean" rule), so a digest can never be stale: any write changes ctime and mtime.
    """
    path = Path(path).resolve()
    before = path.stat()
    key = {
        "path": str(path),
        "size": before.st_size,
        "mtime_ns": before.st_mtime_ns,
        "ctime_ns": before.st_ctime_ns,
        "ino": before.st_ino,
        "dev": before.st_dev,
    }
    sidecar = (
        kdtune_home() / "cache" / "file-digests"
        / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"
    )  # fmt: skip
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(sidecar.read_text())
        if {k: record.get(k) for k in key} == key and isinstance(record.get("sha256"), str):
            return record["sha256"]

    started = time.time()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    after = path.stat()
    value = digest.hexdigest()
    unchanged = (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_size, before.st_mtime_ns, before.st_ctime_ns
    )  # fmt: skip
    if unchanged and started - before.st_mtime_ns / 1e9 > _RACY_SECONDS:
        with contextlib.suppress(OSError):
            _write_text_atomic(sidecar, json.dumps({**key, "sha256": value}))
    return value


def teacher_fingerprint(
    teacher_dir: str | Path,
    dataset_fingerprint: str,
    split: str,
    tokenizer_name: str,
    max_length: int,
    layers: tuple[int, ...],
    with_attentions: bool,
) -> str:
    """The cache key of one teacher's outputs on one data split: a 64-hex SHA-256.

    It covers the full content (SHA-256 via :func:`file_digest`) of every config, weight and
    tokenizer file in the teacher's checkpoint directory (top-level ``*.json``,
    ``*.safetensors``, ``*.bin``, ``*.txt``, ``*.model``), so any change to the teacher gives
    a new fingerprint, plus the data (``dataset_fingerprint``, ``split``), the tokenisation
    (``tokenizer_name``, ``max_length``) and the intermediates asked for (``layers``, order
    and repeats ignored; ``with_attentions``), plus the cache format version.

    Args:
        teacher_dir: the teacher's checkpoint directory, or a hub model id already in the
            local Hugging Face cache (its snapshot directory is hashed).
        dataset_fingerprint: a content hash of the split (``Splits.fingerprint``).
        split: the split's name.
        tokenizer_name: the tokenizer's name or path.
        max_length: the truncation length used when tokenising.
        layers: teacher hidden-state indices whose outputs are cached (may be empty).
        with_attentions: whether attention maps are cached too.

    Raises:
        ValueError: the teacher directory cannot be found or holds no config or weights.
    """
    directory = _teacher_directory(teacher_dir)
    files = sorted(
        p for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in _TEACHER_SUFFIXES
    )  # fmt: skip
    names = {p.name for p in files}
    if "config.json" not in names:
        raise ValueError(f"teacher_dir {str(teacher_dir)!r} has no config.json")
    if not any(p.suffix in (".safetensors", ".bin") for p in files):
        raise ValueError(
            f"teacher_dir {str(teacher_dir)!r} has no weights (*.safetensors or *.bin)"
        )
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    payload = {
        "format": CACHE_FORMAT_VERSION,
        "teacher_files": {p.name: file_digest(p) for p in files},
        "dataset": str(dataset_fingerprint),
        "split": str(split),
        "tokenizer": str(tokenizer_name),
        "max_length": max_length,
        "layers": _indices("layers", layers),
        "with_attentions": bool(with_attentions),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, eq=False)
class TeacherOutputs:
    """Cached teacher outputs for one dataset, in its row order (see the module docstring).

    Attributes:
        path: the cache directory read.
        fingerprint: the fingerprint it was stored under.
        lengths: (n,) int64, real tokens per example.
        logits: (n, K) float32 memory map.
        hidden: hidden-state index -> (sum of lengths, H) float32 memory map.
        attentions: attention index (0-based) -> flat float32 memory map.
        num_heads: attention heads per teacher layer.
        requested_hidden, requested_attention: the indices asked for when loading.
    """

    path: Path
    fingerprint: str
    lengths: np.ndarray
    logits: np.ndarray
    hidden: dict[int, np.ndarray] = field(default_factory=dict)
    attentions: dict[int, np.ndarray] = field(default_factory=dict)
    num_heads: int = 0
    requested_hidden: tuple[int, ...] = ()
    requested_attention: tuple[int, ...] = ()

    @property
    def num_examples(self) -> int:
        """n, the number of examples (rows of the dataset)."""
        return int(self.lengths.shape[0])

    @property
    def num_labels(self) -> int:
        """K, the number of classes."""
        return int(self.logits.shape[1])

    @property
    def has_intermediates(self) -> bool:
        """Whether the requested hidden states and attention maps are all cached."""
        return set(self.requested_hidden) <= set(self.hidden) and set(
            self.requested_attention
        ) <= set(self.attentions)

    @property
    def needs_live_teacher(self) -> bool:
        """True when intermediates were requested but are not cached (over the budget)."""
        return not self.has_intermediates

    def batch(
        self, indices: Sequence[int], seq_len: int, device: torch.device | str | None = None
    ) -> dict[str, Any]:
        """Teacher outputs for the examples ``indices``, zero-padded to ``seq_len``.

        Args:
            indices: B dataset row indices, in batch order.
            seq_len: L, the batch's padded length; at least the longest example's length.
            device: where to put the tensors (default: CPU).

        Returns:
            ``{"logits": (B, K), "hidden": {i: (B, L, H)}, "attentions": {i: (B, heads, L,
            L)}, "lengths": (B,)}``; ``hidden``/``attentions`` are empty when not cached.
            Positions at or beyond an example's length are 0.

        Raises:
            ValueError: an index outside 0..n-1, or ``seq_len`` shorter than an example.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self.num_examples
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise ValueError(f"indices must be in 0..{n - 1} (rows of the dataset), got {bad}")
        lengths = self.lengths[idx]
        if lengths.size and int(lengths.max()) > seq_len:
            raise ValueError(
                f"seq_len {seq_len} is shorter than example {int(idx[lengths.argmax()])} "
                f"({int(lengths.max())} tokens); pass the batch's padded length"
            )
        out: dict[str, Any] = {
            "logits": torch.from_numpy(np.array(self.logits[idx], dtype=np.float32)),
            "hidden": {},
            "attentions": {},
            "lengths": torch.from_numpy(lengths.copy()),
        }
        if self.hidden:
            starts = _offsets(self.lengths)[idx]
            for key, flat in self.hidden.items():
                t = torch.zeros(len(idx), seq_len, flat.shape[1])
                for b, (s, ln) in enumerate(zip(starts, lengths, strict=True)):
                    t[b, :ln] = torch.from_numpy(np.array(flat[s : s + ln]))
                out["hidden"][key] = t
        if self.attentions:
            h = self.num_heads
            starts = _offsets(h * self.lengths.astype(np.int64) ** 2)[idx]
            for key, flat in self.attentions.items():
                t = torch.zeros(len(idx), h, seq_len, seq_len)
                for b, (s, ln) in enumerate(zip(starts, lengths, strict=True)):
                    block = np.array(flat[s : s + h * ln * ln]).reshape(h, ln, ln)
                    t[b, :, :ln, :ln] = torch.from_numpy(block)
                out["attentions"][key] = t
        if device is not None:
            out = _to_device(out, torch.device(device))
        return out


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


@torch.no_grad()
def forward_teacher(
    teacher: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    layers_hidden: Sequence[int] = (),
    layers_attention: Sequence[int] = (),
) -> dict[str, Any]:
    """A live teacher forward, returned in :meth:`TeacherOutputs.batch`'s format.

    Hidden states of padding tokens and attention rows/columns of padding tokens are set to 0
    (as in the cache), so a loss sees the same numbers from both paths. The teacher should
    be in eval mode (dropout off); it must use eager attention when attentions are asked for.

    Args:
        teacher: the teacher classifier.
        batch: ``input_ids`` and ``attention_mask`` (B, L) [, ``token_type_ids``]; other
            keys are ignored.
        layers_hidden: ``hidden_states`` indices to return (0 = embeddings).
        layers_attention: ``attentions`` indices to return (0-based, index i - 1 = layer i).

    Returns:
        ``{"logits": (B, K) float32, "hidden": {i: (B, L, H)}, "attentions": {i: (B, heads,
        L, L)}, "lengths": (B,)}`` on the teacher's device.
    """
    hidden_idx = _indices("layers_hidden", layers_hidden)
    att_idx = _indices("layers_attention", layers_attention)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    if "attention_mask" not in inputs:
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if att_idx:
        # TinyBERT's attention loss compares pre-softmax scores Q·Kᵀ/sqrt(d), which HF's
        # output_attentions (probabilities) does not give: capture them with hooks.
        from .attention import capture_attention_scores

        with capture_attention_scores(teacher) as captured:
            res = teacher(**inputs, output_hidden_states=bool(hidden_idx), return_dict=True)
        scores = list(captured.scores)
    else:
        res = teacher(**inputs, output_hidden_states=bool(hidden_idx), return_dict=True)
    mask = inputs["attention_mask"].to(torch.float32)
    out: dict[str, Any] = {
        "logits": res.logits.float(),
        "hidden": {},
        "attentions": {},
        "lengths": inputs["attention_mask"].sum(dim=1),
    }
    if hidden_idx:
        states = res.hidden_states
        _check_available("layers_hidden", hidden_idx, len(states) if states else 0)
        out["hidden"] = {i: states[i].float() * mask[:, :, None] for i in hidden_idx}
    if att_idx:
        maps = scores
        _check_available("layers_attention", att_idx, len(maps))
        square = mask[:, None, :, None] * mask[:, None, None, :]
        out["attentions"] = {i: maps[i].float() * square for i in att_idx}
    return out


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

    Logits are always cached. Hidden states (``layers_hidden``: ``hidden_states`` indices)
    and attention maps (``layers_attention``: 0-based ``attentions`` indices) are cached only
    when :func:`estimate_intermediate_bytes` is at most ``memory_budget_mb`` MiB; otherwise
    the result's ``needs_live_teacher`` is true. Computing runs the teacher in eval mode
    under ``torch.no_grad`` (its train/eval mode is restored afterwards), batching examples
    of similar length together, and writes atomically (module docstring).

    Args:
        teacher: the teacher classifier (eager attention when attention maps are wanted).
        tokenizer: its tokenizer (for the padding id; ``None`` pads with 0).
        dataset: a tokenised ``datasets.Dataset`` with ``input_ids`` and, optionally,
            ``attention_mask`` (right padding only) and ``token_type_ids``; rows unpadded or
            padded.
        fingerprint: from :func:`teacher_fingerprint`.
        layers_hidden, layers_attention: the intermediates to cache (may be empty).
        memory_budget_mb: the largest intermediate cache (MiB) to write; 0 caches logits only.
        batch_size: examples per teacher forward.
        device: where to run the teacher: ``None`` leaves it where it is; otherwise the
            teacher is moved there (and stays there).

    Returns:
        :class:`TeacherOutputs` aligned with the dataset's rows.

    Raises:
        ValueError: a bad argument, a cache that does not line up with ``dataset``, or a
            teacher that returns no attention maps when they are asked for.
    """
    if not isinstance(fingerprint, str) or len(fingerprint) < 8 or not fingerprint.isalnum():
        raise ValueError(
            f"fingerprint must be an alphanumeric string from teacher_fingerprint, got "
            f"{fingerprint!r}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if memory_budget_mb < 0:
        raise ValueError(f"memory_budget_mb must be >= 0, got {memory_budget_mb!r}")
    hidden_idx = _indices("layers_hidden", layers_hidden)
    att_idx = _indices("layers_attention", layers_attention)
    cfg = teacher.config
    _check_available("layers_hidden", hidden_idx, int(cfg.num_hidden_layers) + 1)
    _check_available("layers_attention", att_idx, int(cfg.num_hidden_layers))
    lengths = _dataset_lengths(dataset)

    base = cache_root() / fingerprint
    wanted = bool(hidden_idx or att_idx)
    full_name = _variant_name(hidden_idx, att_idx)
    if wanted:
        fits = (
            estimate_intermediate_bytes(
                lengths, int(cfg.hidden_size), int(cfg.num_attention_heads), hidden_idx, att_idx
            )
            <= memory_budget_mb * 2**20
        )
        # A full cache written earlier (under a larger budget) is used whatever the budget.
        variant = full_name if fits or (base / full_name / MANIFEST).is_file() else "logits"
    else:
        variant = "logits"
    store_hidden, store_att = (hidden_idx, att_idx) if variant != "logits" else ((), ())

    final = base / variant
    if not (final / MANIFEST).is_file():
        if device is not None:
            teacher.to(device)
        _compute_and_store(
            teacher, tokenizer, dataset, lengths, fingerprint, final,
            store_hidden, store_att, batch_size,
        )  # fmt: skip
    outputs = _load(final, fingerprint, hidden_idx, att_idx)
    if not np.array_equal(outputs.lengths, lengths):
        raise ValueError(
            f"cached teacher outputs at {str(final)!r} do not line up with the dataset "
            f"({outputs.num_examples} cached examples, {len(lengths)} in the dataset, or "
            f"different token counts); the fingerprint does not describe this dataset"
        )
    return outputs


# --------------------------------------------------------------------------- internals


def _teacher_directory(teacher_dir: str | Path) -> Path:
    local = Path(teacher_dir).expanduser()
    if local.is_dir():
        return local.resolve()
    if isinstance(teacher_dir, Path) or str(teacher_dir).startswith(("/", ".", "~")):
        raise ValueError(f"teacher_dir {str(teacher_dir)!r}: no such directory")
    try:  # a hub id: hash the snapshot the teacher was loaded from
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(teacher_dir), local_files_only=True))
    except Exception as e:  # noqa: BLE001 - any hub-cache failure becomes one readable error
        raise ValueError(
            f"teacher_dir {str(teacher_dir)!r} is neither a directory nor a hub model id in "
            f"the local Hugging Face cache: {e}"
        ) from e


def _indices(name: str, values: Iterable[int]) -> list[int]:
    """Sorted unique non-negative ints, or ValueError naming ``name``."""
    if isinstance(values, str | bytes):
        raise ValueError(f"{name} must be a sequence of ints >= 0, got {values!r}")
    out = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name} must hold ints >= 0, got {v!r} in {list(values)!r}")
        out.add(int(v))
    return sorted(out)


def _check_available(name: str, indices: Sequence[int], available: int) -> None:
    bad = [i for i in indices if i >= available]
    if bad:
        raise ValueError(
            f"{name} {bad} out of range; the teacher has indices 0..{available - 1} "
            f"({'hidden_states' if name == 'layers_hidden' else 'attentions'})"
        )


def _variant_name(hidden: Sequence[int], attention: Sequence[int]) -> str:
    if not hidden and not attention:
        return "logits"
    return f"h{'.'.join(map(str, hidden))}-a{'.'.join(map(str, attention))}"


def _offsets(sizes: np.ndarray) -> np.ndarray:
    """Start of each block when blocks of ``sizes`` are stored back to back."""
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    return starts


def _dataset_lengths(dataset: Any) -> np.ndarray:
    """Real tokens per row: the attention-mask sum (checked to be a prefix of ones)."""
    columns = getattr(dataset, "column_names", None)
    if columns is None or "input_ids" not in columns:
        raise ValueError(
            f"dataset must be a tokenised datasets.Dataset with an 'input_ids' column, got "
            f"{type(dataset).__name__} with columns {columns}"
        )
    n = len(dataset)
    if n == 0:
        raise ValueError("dataset has no rows")
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
                raise ValueError(
                    f"attention_mask of row {start + j} is not ones followed by zeros; "
                    f"only right padding is supported"
                )
            out[start + j] = length
    if out.min() < 1:
        raise ValueError(f"row {int(out.argmin())} of the dataset has no tokens")
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
    """Run the teacher over ``dataset`` and write the variant directory ``final`` atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(final.parent)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        meta = _write_outputs(
            teacher, tokenizer, dataset, lengths, tmp, hidden_idx, att_idx, batch_size
        )
        manifest = {
            "format": CACHE_FORMAT_VERSION,
            "fingerprint": fingerprint,
            "num_examples": len(lengths),
            "hidden": list(hidden_idx),
            "attention": list(att_idx),
            "teacher_class": type(teacher).__name__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **meta,
        }
        _write_text_atomic(tmp / MANIFEST, json.dumps(manifest, indent=2))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MANIFEST).is_file():
                raise
            # Another worker finished first: use its copy (identical by construction).
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_outputs(
    teacher: torch.nn.Module,
    tokenizer: Any,
    dataset: Any,
    lengths: np.ndarray,
    directory: Path,
    hidden_idx: Sequence[int],
    att_idx: Sequence[int],
    batch_size: int,
) -> dict[str, Any]:
    """Fill ``directory`` with logits/hidden/attention ``.npy`` files; return metadata."""
    from numpy.lib.format import open_memmap

    cfg = teacher.config
    n, width, heads = len(lengths), int(cfg.hidden_size), int(cfg.num_attention_heads)
    num_labels = int(cfg.num_labels)
    device = next(teacher.parameters()).device
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids")
               if c in dataset.column_names]  # fmt: skip

    tok_start = _offsets(lengths)
    att_start = _offsets(heads * lengths**2)
    np.save(directory / "lengths.npy", lengths)
    logits = open_memmap(directory / "logits.npy", "w+", np.float32, (n, num_labels))
    hidden = {
        i: open_memmap(directory / f"hidden_{i}.npy", "w+", np.float32, (int(lengths.sum()), width))
        for i in hidden_idx
    }
    attention = {
        i: open_memmap(
            directory / f"attention_{i}.npy", "w+", np.float32, (int((heads * lengths**2).sum()),)
        )
        for i in att_idx
    }

    order = np.argsort(-lengths, kind="stable")  # similar lengths together: less padding
    was_training = teacher.training
    teacher.eval()
    try:
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            batch = _collate(dataset, rows, lengths, columns, pad_id, device)
            res = forward_teacher(teacher, batch, hidden_idx, att_idx)
            if res["logits"].shape[1] != num_labels:
                raise ValueError(
                    f"teacher returned {res['logits'].shape[1]} logits, config says {num_labels}"
                )
            logits[rows] = res["logits"].cpu().numpy()
            for i, states in res["hidden"].items():
                states = states.cpu().numpy()
                for b, r in enumerate(rows):
                    ln = lengths[r]
                    hidden[i][tok_start[r] : tok_start[r] + ln] = states[b, :ln]
            for i, maps in res["attentions"].items():
                maps = maps.cpu().numpy()
                for b, r in enumerate(rows):
                    ln = lengths[r]
                    block = maps[b, :, :ln, :ln].reshape(-1)
                    attention[i][att_start[r] : att_start[r] + block.size] = block
    finally:
        teacher.train(was_training)
    for arr in (logits, *hidden.values(), *attention.values()):
        arr.flush()
    del logits, hidden, attention
    return {"num_labels": num_labels, "hidden_size": width, "num_heads": heads, "dtype": "float32"}


def _collate(
    dataset: Any,
    rows: np.ndarray,
    lengths: np.ndarray,
    columns: Sequence[str],
    pad_id: int,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Rows ``rows`` right-padded to their longest real length, as tensors on ``device``."""
    data = dataset[[int(r) for r in rows]]
    seq = int(lengths[rows].max())
    out = {}
    for col in columns:
        fill = pad_id if col == "input_ids" else 0
        t = torch.full((len(rows), seq), fill, dtype=torch.long)
        for b, (values, ln) in enumerate(zip(data[col], lengths[rows], strict=True)):
            t[b, :ln] = torch.as_tensor(values[:ln], dtype=torch.long)
        out[col] = t.to(device)
    if "attention_mask" not in out:
        mask = torch.arange(seq)[None, :] < torch.as_tensor(lengths[rows])[:, None]
        out["attention_mask"] = mask.long().to(device)
    return out


def _load(
    directory: Path, fingerprint: str, hidden_idx: Sequence[int], att_idx: Sequence[int]
) -> TeacherOutputs:
    """Open a variant directory's arrays as memory maps."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"unreadable teacher-output cache {str(directory)!r}: {e}") from e
    if manifest.get("format") != CACHE_FORMAT_VERSION or manifest.get("fingerprint") != fingerprint:
        raise ValueError(
            f"teacher-output cache {str(directory)!r} has format {manifest.get('format')} and "
            f"fingerprint {manifest.get('fingerprint')}, expected {CACHE_FORMAT_VERSION} and "
            f"{fingerprint}; delete the directory"
        )

    def open_(name: str) -> np.ndarray:
        return np.load(directory / name, mmap_mode="c")  # copy-on-write: writable, no copy

    return TeacherOutputs(
        path=directory,
        fingerprint=fingerprint,
        lengths=np.load(directory / "lengths.npy"),
        logits=open_("logits.npy"),
        hidden={i: open_(f"hidden_{i}.npy") for i in manifest["hidden"]},
        attentions={i: open_(f"attention_{i}.npy") for i in manifest["attention"]},
        num_heads=int(manifest["num_heads"]),
        requested_hidden=tuple(hidden_idx),
        requested_attention=tuple(att_idx),
    )


def _to_device(out: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: ({i: t.to(device) for i, t in v.items()} if isinstance(v, dict) else v.to(device))
        for k, v in out.items()
    }


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale_tmp(parent: Path) -> None:
    """Delete temporary directories left by writers killed more than a day ago."""
    cutoff = time.time() - _STALE_TMP_SECONDS
    for entry in parent.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
