"""Where and how wide kdtune's training runs: device choice and CPU thread count."""

from __future__ import annotations

import os
import re

import torch

__all__ = ["available_cpus", "configure_threads", "resolve_device"]

_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(device: str = "auto") -> torch.device:
    """Turn a device name into a ``torch.device``.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``.

    Raises:
        ValueError: the name is not one of those, or CUDA (or device N) is not available.
    """
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = _CUDA.match(name)
    if match is None:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    if match.group(1) is not None:
        index, count = int(match.group(1)), torch.cuda.device_count()
        if index >= count:
            raise ValueError(f"device {device!r} requested but only {count} CUDA device(s) exist")
    return torch.device(name)


def available_cpus() -> int:
    """Number of CPUs this process may run on (its affinity set when known)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure_threads(threads: int | None = None, workers: int = 1) -> int:
    """Set torch's intra-op thread count and return it.

    Args:
        threads: the count to set; ``None`` shares this machine's CPUs between ``workers``
            processes: ``max(1, cpus // workers)``, so two workers do not fight over two cores.
        workers: how many training processes share the machine.

    Raises:
        ValueError: ``threads`` or ``workers`` is below 1.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1 (or None for automatic), got {threads}")
    n = threads if threads is not None else max(1, available_cpus() // workers)
    torch.set_num_threads(n)
    return n
