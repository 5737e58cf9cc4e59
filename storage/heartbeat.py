"""kdtune's heartbeat thread: beats for as long as the trial runs, through database outages.

Optuna's own heartbeat thread dies on its first failed beat, so a worker that lived through
a database restart looked dead afterwards and its trial was failed as stale. This thread
records a beat every ``interval`` seconds (into Optuna's heartbeat table, through the
``beat`` callable :func:`kdtune.storage.optuna_adapter.heartbeat` gives it); a failed beat is
tried again after a pause that grows to at most ``interval``, so the first beat after the
database returns comes within ``interval`` seconds. The :class:`DatabaseLink`, when given,
hears of each failure and success (one log line when the database is lost, one when back).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from .link import DatabaseLink
from .retry import DATABASE_ERRORS

_log = logging.getLogger("kdtune.storage")


class HeartbeatThread:
    """A context manager: beats in a daemon thread from ``__enter__`` until ``__exit__``."""

    def __init__(self, beat: Callable[[], None], interval: float,
                 link: DatabaseLink | None = None) -> None:
        self._beat = beat
        self._interval = interval
        self._link = link or DatabaseLink()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0
        """Beats recorded so far (tests read it)."""

    def __enter__(self) -> HeartbeatThread:
        self._thread = threading.Thread(target=self._run, name="kdtune-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        delay = 0.25
        while not self._stop.is_set():
            try:
                with self._link.direct():
                    self._beat()
            except DATABASE_ERRORS as e:
                self._link.lost(e)
                pause, delay = delay, min(delay * 2, self._interval)
            except Exception as e:  # never let the thread die: the trial still runs
                _log.warning("%s: heartbeat failed (%s: %s); trying again",
                             self._link.label, type(e).__name__, e)
                pause, delay = delay, min(delay * 2, self._interval)
            else:
                self._link.ok()
                self.beats += 1
                pause, delay = self._interval, 0.25
            self._stop.wait(pause)


__all__ = ["HeartbeatThread"]
