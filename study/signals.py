"""Stop signals: how SIGINT, SIGTERM and SIGHUP end a kdtune command, and its children.

A command stopped by a signal exits ``128 + the signal number`` (130 for SIGINT, 143 for SIGTERM)
with one line, ``kdtune: interrupted`` or ``kdtune: terminated``. Under :class:`StopSignals`, SIGINT
raises :class:`KeyboardInterrupt`, SIGTERM and SIGHUP raise :class:`Stopped`, and every
SIGINT/SIGTERM the process receives is recorded. :func:`stop_children` forwards a stop signal to
child processes and waits for every one of them. The workers of a ``kdtune run``
(:data:`LOCAL_WORKER_ENV`) leave the one line about a stop to the command that started them.

Why: docs/design.md, "Stop signals and exit codes".
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals a kdtune worker handles itself (it ends its trial cleanly on either)."""

LOCAL_WORKER_ENV = "KDTUNE_LOCAL_WORKER"
"""Set (``1``) in the workers ``kdtune run`` starts: their parent prints the one line about a
signal or the study stopping itself, so they exit with its code and print nothing."""
DEBUG_ENV = "KDTUNE_DEBUG"
"""Set (``1``) under ``kdtune --debug``: child workers show tracebacks too."""


def local_worker() -> bool:
    """Whether this process is a worker of a ``kdtune run`` (:data:`LOCAL_WORKER_ENV`)."""
    return os.environ.get(LOCAL_WORKER_ENV) == "1"


def debugging() -> bool:
    """Whether ``kdtune --debug`` asked for tracebacks (here or in a parent)."""
    return os.environ.get(DEBUG_ENV) == "1"


_WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


class Stopped(BaseException):  # noqa: N818 - not an error: a request to stop
    """A stop signal ended the command: exit ``128 + signum`` with :attr:`line`.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` blocks let it through.
    ``detail`` says what the stop left behind (e.g. that no student was saved).
    """

    def __init__(self, signum: int, detail: str = "") -> None:
        super().__init__(signal.Signals(signum).name, detail)
        self.signum = int(signum)
        self.detail = detail

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def line(self) -> str:
        """``kdtune: interrupted`` / ``kdtune: terminated``, then the detail if any."""
        word = _WORDS.get(self.signum, f"stopped by {signal.Signals(self.signum).name}")
        return f"kdtune: {word}" + (f"; {self.detail}" if self.detail else "")


def as_stopped(e: BaseException, detail: str = "") -> Stopped:
    """``e`` (a KeyboardInterrupt or a :class:`Stopped`) as a Stopped carrying ``detail``."""
    signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
    return Stopped(signum, detail or getattr(e, "detail", ""))


def _raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


class StopSignals:
    """Context manager: SIGTERM/SIGHUP raise :class:`Stopped`; stop signals are recorded.

    :meth:`last` is the last SIGINT or SIGTERM received while active (None if none), even
    when a handler installed inside the block (a worker's) handled it. Outside the main
    thread, where signal handlers cannot be set, it does nothing and records nothing.
    """

    def __init__(self) -> None:
        self._active = threading.current_thread() is threading.main_thread()
        self._seen: list[int] = []
        self._read: int | None = None

    def __enter__(self) -> StopSignals:
        if not self._active:
            return self
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        self._old_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._old = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, signal.SIGHUP)}
        return self

    def __exit__(self, *exc) -> None:
        if self._read is None:
            return
        for s, h in self._old.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(self._old_fd)
        self._drain()
        os.close(self._read)
        os.close(self._write)
        self._read = None

    def _drain(self) -> None:
        """Move the signal numbers written to the wakeup pipe into ``_seen``."""
        while self._read is not None:
            try:
                data = os.read(self._read, 512)
            except BlockingIOError:
                return
            if not data:
                return
            self._seen.extend(b for b in data if b in STOP_SIGNALS)

    def last(self) -> int | None:
        """The last SIGINT/SIGTERM received so far, or None."""
        self._drain()
        return self._seen[-1] if self._seen else None


def stop_children(procs: list[subprocess.Popen], signum: int) -> list[int]:
    """Send a stop signal to every live child in ``procs``, then wait for all of them.

    SIGINT and SIGTERM are forwarded as they are (a kdtune worker ends its trial cleanly on
    either); any other signal becomes SIGTERM. While waiting, further stop signals are
    forwarded too instead of interrupting the wait, so no child is left behind. Returns the
    children's exit codes.
    """
    sig = signum if signum in STOP_SIGNALS else signal.SIGTERM

    def forward(received: int, frame=None) -> None:
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(received if received in STOP_SIGNALS else signal.SIGTERM)
                except ProcessLookupError:
                    pass

    in_main = threading.current_thread() is threading.main_thread()
    old = ({s: signal.signal(s, forward) for s in (*STOP_SIGNALS, signal.SIGHUP)}
           if in_main else {})
    try:
        forward(sig)
        return [p.wait() for p in procs]
    finally:
        for s, h in old.items():
            signal.signal(s, h)
