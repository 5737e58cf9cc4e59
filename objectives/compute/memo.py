"""Work a worker does once instead of once per trial.

A worker runs many trials of one study in one process, and much of a trial's set-up does not
depend on what the trial searches. :data:`WORKER_MEMO` keeps it for the process, keyed by
everything it depends on:

* ``teacher``: the teacher and its tokenizer, keyed by checkpoint (for a directory, also
  its files' sizes and modification times, :func:`path_stamp`: a teacher refitted in
  place is loaded again) and device. Always loaded
  with SDPA attention: no loss reads the teacher's attention maps (the attention loss
  recomputes its scores with hooks, :mod:`~kdtune.objectives.compute.attention`), and trials only
  run it in eval mode without gradients, so one copy serves every trial.
* ``splits``: the data splits, keyed by the data config.
* ``tokens``: a tokenised split, keyed by its content fingerprint, the tokenizer and the
  maximum length.
* ``transfer``: the students' transfer set with its unlabelled and augmented rows
  (:func:`~kdtune.objectives.data.transfer.transfer_set`), keyed by the labelled rows, the
  teacher, the transfer config and seed, and a local text file's stamp.
* ``vocabulary``: the student's task vocabulary, keyed by the teacher and the students'
  set (:func:`~kdtune.objectives.distillation.prepare.student_vocabulary`).
* ``latency``: a student architecture's inference latency, keyed by its shape, the kernel,
  the evaluation data and the thread count
  (:func:`~kdtune.objectives.distillation.evaluation.latency_ms`).

Each kind keeps its few most recent entries (least recently used dropped first), so a
worker that meets a second teacher or data set does not grow without bound. Nothing here is
written to disk; :meth:`Memo.clear` empties it (tests).
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
