"""A process's link to its database: calls that wait out an outage, and when it last came back.

A worker must survive a database restart or a network cut: every storage call it makes goes
through one :class:`DatabaseLink`, which retries a call that failed on a lost connection
(with back-off, up to ``wait`` seconds in all) and logs one line when the database is lost
and one when it is back, whichever thread noticed. It also remembers when the database was
last regained (:meth:`DatabaseLink.settled_for`): a worker must not judge other workers'
heartbeats until they have had time to beat again (kdtune.study.stale).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from kdtune.errors import StorageError

from .retry import DATABASE_ERRORS, is_transient, reason, translate

T = TypeVar("T")
_log = logging.getLogger("kdtune.storage")


class DatabaseLink:
    """One process's view of its database, shared by its threads.

    Args:
        label: how log lines name this process, e.g. ``kdtune worker 2``.
        wait: seconds a call keeps retrying through an outage before it gives up.
        max_delay: the longest pause between two tries.
    """

    def __init__(self, label: str = "kdtune", wait: float = 300.0, max_delay: float = 5.0):
        self.label = label
        self.wait = wait
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._lost_at: float | None = None
        self._back_at = time.monotonic()
        self._local = threading.local()

    # ------------------------------------------------------------------ state

    def lost(self, e: BaseException) -> float:
        """Record a failed call; the first one of an outage logs a line. Returns seconds down."""
        with self._lock:
            now = time.monotonic()
            if self._lost_at is None:
                self._lost_at = now
                _log.warning("%s: database unavailable (%s), retrying for %.0f s",
                             self.label, reason(e), self.wait)
            return now - self._lost_at

    def ok(self) -> None:
        """Record a successful call; the first one after an outage logs a line."""
        if self._lost_at is None:
            return
        with self._lock:
            if self._lost_at is not None:
                now = time.monotonic()
                _log.warning("%s: database back after %.1f s", self.label, now - self._lost_at)
                self._lost_at = None
                self._back_at = now

    @property
    def down(self) -> bool:
        """Whether the last call that reached for the database failed."""
        return self._lost_at is not None

    def settled_for(self) -> float:
        """Seconds the database has been reachable without a break (0 while it is down);
        counted from the process start when it was never lost."""
        if self._lost_at is not None:
            return 0.0
        return time.monotonic() - self._back_at

    # ------------------------------------------------------------------ calls

    @contextlib.contextmanager
    def direct(self) -> Iterator[None]:
        """Storage calls inside the block fail at once: the caller retries the whole block
        (e.g. a section under a lock that a restarted server no longer holds)."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, tried again after a transient database error until ``wait`` runs out.

        A call made inside another (or inside :meth:`direct`) is not retried on its own.

        Raises:
            StorageError: the database stayed unavailable for ``wait`` seconds, or ``fn``
                raised a database error another try cannot fix (its reason given).
        """
        if getattr(self._local, "depth", 0):
            return fn()
        delay = 0.5
        while True:
            try:
                with self.direct():
                    result = fn()
            except (StorageError, *DATABASE_ERRORS) as e:
                if not is_transient(e):
                    if isinstance(e, StorageError):
                        raise
                    raise translate(e, what) from e
                down = self.lost(e)
                if down >= self.wait:
                    raise StorageError(f"database unavailable for {down:.0f} s, gave up trying "
                                       f"to {what}: {reason(e)}") from e
                time.sleep(min(delay, self.wait - down))
                delay = min(delay * 2, self.max_delay)
                continue
            self.ok()
            return result


__all__ = ["DatabaseLink"]
