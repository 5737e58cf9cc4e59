"""Fingerprints: the cache key that names one teacher's outputs on one data split.

:func:`teacher_fingerprint` hashes everything the cached outputs depend on: the full content
of the teacher's config, weight and tokenizer files (:func:`file_digest`), the data split,
the tokenisation, and the cache format version. Any change to any of them gives a new key,
so a stale cache is never read. It does not name teacher layers: which layers a directory
holds is its variant's business (:mod:`~kdtune.objectives.cache.store`), so one key serves
every student depth and layer mapping, and their trials share one all-layers cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

from kdtune.errors import UsageError
from kdtune.fileio import atomic_write_text
from kdtune.paths import kdtune_home

from ..oneline import one_line
from .store import CACHE_FORMAT_VERSION

__all__ = ["checkpoint_digest", "checkpoint_files", "file_digest", "teacher_fingerprint"]

# Files of a checkpoint directory that define the teacher's outputs: config, weights
# (*.safetensors, *.bin, shard indexes *.json), tokenizer (*.json, vocab.txt, *.model).
_TEACHER_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
# A file modified this recently is re-hashed on every call instead of trusting the sidecar,
# so a rewrite within one timestamp tick of the recorded one can never go unnoticed.
_RACY_SECONDS = 2.0
_HASH_CHUNK = 1 << 20


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
            atomic_write_text(sidecar, json.dumps({**key, "sha256": value}))
    return value


def teacher_fingerprint(
    teacher_dir: str | Path,
    dataset_fingerprint: str,
    split: str,
    tokenizer_name: str,
    max_length: int,
) -> str:
    """The cache key of one teacher's outputs on one data split: a 64-hex SHA-256.

    It covers the full content (SHA-256 via :func:`file_digest`) of every config, weight and
    tokenizer file in the teacher's checkpoint directory (top-level ``*.json``,
    ``*.safetensors``, ``*.bin``, ``*.txt``, ``*.model``), so any change to the teacher gives
    a new fingerprint, plus the data (``dataset_fingerprint``, ``split``), the tokenisation
    (``tokenizer_name``, ``max_length``) and the cache format version. The layers a run
    needs are not part of it (the module docstring). The key equals the one kdtune gave
    before the all-layers cache for a request without intermediates, so logits-only caches
    written then are still read; caches of intermediates written then were keyed by their
    layer set and are recomputed once, into the all-layers variant.

    Args:
        teacher_dir: the teacher's checkpoint directory, or a hub model id already in the
            local Hugging Face cache (its snapshot directory is hashed).
        dataset_fingerprint: a content hash of the split (``Splits.fingerprint``).
        split: the split's name.
        tokenizer_name: the tokenizer's name or path.
        max_length: the truncation length used when tokenising.

    Raises:
        UsageError: the teacher directory cannot be found or holds no config or weights, or
            ``max_length`` is not a positive int.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise UsageError(f"max_length must be a positive int, got {max_length!r}")
    payload = {
        "format": CACHE_FORMAT_VERSION,
        "teacher_files": checkpoint_files(teacher_dir),
        "dataset": str(dataset_fingerprint),
        "split": str(split),
        "tokenizer": str(tokenizer_name),
        "max_length": max_length,
        # fixed: the key of a logits-only request before layers left the key (docstring)
        "layers": [],
        "with_attentions": False,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def checkpoint_files(teacher_dir: str | Path) -> dict[str, str]:
    """``{file name: SHA-256}`` of a checkpoint's config, weight and tokenizer files.

    Raises:
        UsageError: no such directory (nor a cached hub id), or no config.json or weights.
    """
    directory = _teacher_directory(teacher_dir)
    files = sorted(
        p for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in _TEACHER_SUFFIXES
    )  # fmt: skip
    if "config.json" not in {p.name for p in files}:
        raise UsageError(f"teacher_dir {str(teacher_dir)!r} has no config.json")
    if not any(p.suffix in (".safetensors", ".bin") for p in files):
        raise UsageError(
            f"teacher_dir {str(teacher_dir)!r} has no weights (*.safetensors or *.bin)"
        )
    return {p.name: file_digest(p) for p in files}


def checkpoint_digest(teacher_dir: str | Path) -> str:
    """One checkpoint's identity: a 64-hex SHA-256 of :func:`checkpoint_files` (the same
    teacher copied to another machine or directory keeps it; any changed file changes it)."""
    text = json.dumps(checkpoint_files(teacher_dir), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _teacher_directory(teacher_dir: str | Path) -> Path:
    """The local directory to hash: ``teacher_dir`` itself, or a hub id's cached snapshot."""
    local = Path(teacher_dir).expanduser()
    if local.is_dir():
        return local.resolve()
    if isinstance(teacher_dir, Path) or str(teacher_dir).startswith(("/", ".", "~")):
        raise UsageError(f"teacher_dir {str(teacher_dir)!r}: no such directory")
    try:  # a hub id: hash the snapshot the teacher was loaded from
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(teacher_dir), local_files_only=True))
    except Exception as e:  # noqa: BLE001 - any hub-cache failure becomes one readable error
        raise UsageError(
            f"teacher_dir {str(teacher_dir)!r} is neither a directory nor a hub model id in "
            f"the local Hugging Face cache: {one_line(e)}"
        ) from e
