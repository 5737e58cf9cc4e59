"""Where and how wide kdtune's training runs: device choice and CPU thread count.

torch is imported only by the functions that use it, so configs can check a device name
(:func:`check_device_name`) without loading torch.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from kdtune.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["DEVICE_NAMES", "available_cpus", "check_device_name", "configure_threads",
           "resolve_device"]

DEVICE_NAMES = "'auto', 'cpu', 'cuda' or 'cuda:N'"
_DEVICE = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")


def check_device_name(device: str) -> str:
    """Return ``device`` stripped and lower-cased if it is a device name kdtune accepts.

    This checks the spelling only (configs validate it before anything runs);
    :func:`resolve_device` also checks that the device exists here.

    Raises:
        UsageError: not one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
    """
    name = device.strip().lower() if isinstance(device, str) else ""
    if not _DEVICE.match(name):
        raise UsageError(f"device must be {DEVICE_NAMES}, got {device!r}")
    return name


def resolve_device(device: str = "auto") -> torch.device:
    """Turn a device name into a ``torch.device``.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``.

    Raises:
        UsageError: the name is not one of those, or CUDA (or device N) is not available.
    """
    import torch

    name = check_device_name(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available here")
    index = _DEVICE.match(name).group(2)
    if index is not None and int(index) >= torch.cuda.device_count():
        raise UsageError(
            f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) "
            "exist"
        )
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
        UsageError: ``threads`` or ``workers`` is below 1.
    """
    import torch

    if workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be at least 1 (or None for automatic), got {threads}")
    n = threads if threads is not None else max(1, available_cpus() // workers)
    torch.set_num_threads(n)
    return n
