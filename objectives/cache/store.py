"""The teacher-output cache on disk: its layout, atomic writes, and memory-mapped reads.

A variant, ``kdtune_home()/cache/teacher-outputs/<fingerprint>/<variant>/``, holds float32
``.npy`` arrays (logits, hidden states, pre-softmax attention scores, lengths) and a
``manifest.json``. :func:`store_variant` writes one, :func:`find_variant` finds one that holds
the needed layers, and :func:`read_variant` opens its layers as memory maps
(:class:`TeacherOutputs`, whose :meth:`~TeacherOutputs.batch` pads a batch with zeros).

Why: docs/design.md, "Teacher cache layout", "Teacher cache is unpadded", "Atomic cache writes".
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdtune.fileio import atomic_directory, file_lock
from kdtune.paths import kdtune_home

__all__ = [
    "CACHE_FORMAT_VERSION",
    "MANIFEST",
    "TeacherOutputs",
    "cache_root",
    "find_variant",
    "offsets",
    "read_variant",
    "store_variant",
    "variant_name",
]

CACHE_FORMAT_VERSION = 2  # 2: attention maps are pre-softmax scores
MANIFEST = "manifest.json"
_STALE_TMP_SECONDS = 24 * 3600


def cache_root() -> Path:
    """``kdtune_home()/cache/teacher-outputs``, the directory holding every fingerprint."""
    return kdtune_home() / "cache" / "teacher-outputs"


def variant_name(hidden: Sequence[int], attention: Sequence[int]) -> str:
    """The variant directory's name: ``logits``, or ``h<i.j..>-a<k..>``."""
    if not hidden and not attention:
        return "logits"
    return f"h{'.'.join(map(str, hidden))}-a{'.'.join(map(str, attention))}"


def offsets(sizes: np.ndarray) -> np.ndarray:
    """Start of each block when blocks of ``sizes`` are stored back to back."""
    starts = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    return starts


def find_variant(
    base: Path, hidden: Sequence[int], attention: Sequence[int], prefer: str | None = None
) -> str | None:
    """The name of a complete variant under ``base`` holding ``hidden`` and ``attention``.

    ``prefer`` (the all-layers name) wins when it is complete; otherwise the first complete
    variant in name order whose manifest lists every needed index (one holding more kinds,
    or one of just some layers written under a smaller budget). ``None`` when there is none.
    A manifest that cannot be read counts as not holding anything.
    """
    if prefer is not None and (base / prefer / MANIFEST).is_file():
        return prefer
    if not base.is_dir():
        return None
    need_h, need_a = set(hidden), set(attention)
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not (entry / MANIFEST).is_file():
            continue
        try:
            manifest = json.loads((entry / MANIFEST).read_text())
            held_h, held_a = set(manifest["hidden"]), set(manifest["attention"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if need_h <= held_h and need_a <= held_a:
            return entry.name
    return None


@dataclass(frozen=True, eq=False)
class TeacherOutputs:
    """Cached teacher outputs for one dataset, in its row order (see the module docstring).

    Attributes:
        path: the cache directory read.
        fingerprint: the fingerprint it was stored under.
        lengths: (n,) int64, real tokens per example.
        logits: (n, K) float32 memory map of raw logits.
        hidden: hidden-state index -> (sum of lengths, H) float32 memory map, for the
            requested indices the variant holds (not the variant's other layers).
        attentions: attention index (0-based) -> flat float32 memory map of scores, likewise.
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
            starts = offsets(self.lengths)[idx]
            for key, flat in self.hidden.items():
                t = torch.zeros(len(idx), seq_len, flat.shape[1])
                for b, (s, ln) in enumerate(zip(starts, lengths, strict=True)):
                    t[b, :ln] = torch.from_numpy(np.array(flat[s : s + ln]))
                out["hidden"][key] = t
        if self.attentions:
            h = self.num_heads
            starts = offsets(h * self.lengths.astype(np.int64) ** 2)[idx]
            for key, flat in self.attentions.items():
                t = torch.zeros(len(idx), h, seq_len, seq_len)
                for b, (s, ln) in enumerate(zip(starts, lengths, strict=True)):
                    block = np.array(flat[s : s + h * ln * ln]).reshape(h, ln, ln)
                    t[b, :, :ln, :ln] = torch.from_numpy(block)
                out["attentions"][key] = t
        if device is not None:
            out = _to_device(out, torch.device(device))
        return out


def store_variant(
    final: Path, fill: Callable[[Path], dict[str, Any]], manifest: dict[str, Any]
) -> None:
    """Write the variant directory ``final`` unless a complete one is there.

    Under a per-variant file lock: if ``final`` already has a manifest (another worker wrote
    it) nothing is done; otherwise ``fill(directory)`` writes the arrays into a temporary
    directory and returns metadata, the manifest (``manifest`` plus that metadata) is
    written last, and the directory is renamed to ``final``.
    """
    locks = kdtune_home() / "cache" / "locks"
    with file_lock(locks / f"teacher-outputs-{final.parent.name}-{final.name}.lock"):
        if (final / MANIFEST).is_file():
            return
        _remove_stale_tmp(final.parent)
        with atomic_directory(final, overwrite=True) as tmp:
            meta = fill(tmp)
            record = {"format": CACHE_FORMAT_VERSION, **manifest, **meta,
                      "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
            (tmp / MANIFEST).write_text(json.dumps(record, indent=2))


def read_variant(
    directory: Path, fingerprint: str, hidden_idx: Sequence[int], att_idx: Sequence[int]
) -> TeacherOutputs:
    """Open a variant directory's logits and its requested layers as memory maps.

    Only the layers in ``hidden_idx`` / ``att_idx`` that the variant holds are opened, so
    :meth:`TeacherOutputs.batch` gathers those alone from an all-layers variant; a requested
    layer the variant lacks is simply absent (``needs_live_teacher`` is then true).

    Raises:
        ValueError: an unreadable manifest, or one of another format or fingerprint.
    """
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
        hidden={i: open_(f"hidden_{i}.npy") for i in hidden_idx if i in manifest["hidden"]},
        attentions={i: open_(f"attention_{i}.npy")
                    for i in att_idx if i in manifest["attention"]},
        num_heads=int(manifest["num_heads"]),
        requested_hidden=tuple(hidden_idx),
        requested_attention=tuple(att_idx),
    )


def _to_device(out: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: ({i: t.to(device) for i, t in v.items()} if isinstance(v, dict) else v.to(device))
        for k, v in out.items()
    }


def _remove_stale_tmp(parent: Path) -> None:
    """Delete temporary directories left by writers killed more than a day ago."""
    if not parent.is_dir():
        return
    cutoff = time.time() - _STALE_TMP_SECONDS
    for entry in parent.glob(".*"):
        if ".partial-" not in entry.name and ".old-" not in entry.name:
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
