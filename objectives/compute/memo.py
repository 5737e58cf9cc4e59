"""Work a worker does once instead of once per trial.

:data:`WORKER_MEMO` (a :class:`Memo`) keeps for the process the parts of a trial's set-up that
do not depend on what the trial searches (teacher, data splits, tokenised splits, transfer
set, task vocabulary, latencies), keyed by everything each depends on (local files by
:func:`path_stamp`). Each kind keeps its few most recent entries; nothing is written to disk;
:meth:`Memo.clear` empties it (tests).

Why: docs/design.md, "Set-up is memoised per worker", "Memoised teacher uses SDPA".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

LIMITS = {"teacher": 1, "splits": 2, "tokens": 6, "transfer": 1, "vocabulary": 2,
          "latency": 64}
"""Entries kept per kind: one teacher (the largest object), a few data sets."""


def path_stamp(path: str) -> tuple:
    """``path`` and what says its content changed: for a local file its size and mtime_ns,
    for a local directory (name, size, mtime_ns) of each top-level file; a hub id or
    anything else, only its name."""
    local = Path(path).expanduser()
    if local.is_file():
        st = local.stat()
        return (path, st.st_size, st.st_mtime_ns)
    if not local.is_dir():
        return (path,)
    files = sorted(f for f in local.iterdir() if f.is_file())
    return (path, *((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))


class Memo:
    """Per-process memo: ``get(kind, key, make)`` returns the remembered value or makes it.

    ``hits`` and ``misses`` count per kind, so a test (or a benchmark) can see what was
    reused.
    """

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self.limits = dict(LIMITS if limits is None else limits)
        self._store: dict[str, OrderedDict[Hashable, Any]] = {}
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}

    def get(self, kind: str, key: Hashable, make: Callable[[], T]) -> T:
        """The value remembered under ``(kind, key)``, else ``make()`` (remembered)."""
        store = self._store.setdefault(kind, OrderedDict())
        if key in store:
            store.move_to_end(key)
            self.hits[kind] = self.hits.get(kind, 0) + 1
            return store[key]
        value = make()  # an exception leaves nothing behind
        self.misses[kind] = self.misses.get(kind, 0) + 1
        store[key] = value
        while len(store) > self.limits.get(kind, 1):
            store.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything (and the counts)."""
        self._store.clear()
        self.hits.clear()
        self.misses.clear()


WORKER_MEMO = Memo()
"""The process's memo, used by :func:`~kdtune.objectives.distillation.prepare.load_inputs` and
:func:`~kdtune.objectives.distillation.evaluation.latency_ms`."""
