"""Why a database could not be reached, in a few words.

Optuna's RDB storage wraps a failed first connection in ``StorageInternalError`` ("An
exception is raised during the commit ... invalid data in the commit, e.g. exceeding max
length"), which says nothing about the cause. :func:`connection_problem` finds the driver's
error behind it (through ``__cause__``, ``__context__`` and SQLAlchemy's ``.orig``) and
turns psycopg2's and SQLite's texts into a short reason: ``connection refused``,
``unknown host 'db'``, ``password authentication failed for user "kd"``, ``database "x"
does not exist``, ``no answer within 10 s``.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import OperationalError

from .urls import mask_url

__all__ = ["connection_problem", "driver_error"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r'could not translate host name "([^"]*)"', re.I), "unknown host '{0}'"),
    (re.compile(r"timeout expired", re.I), "no answer within {timeout} s"),
    (re.compile(r'connection to server on socket "([^"]*)" failed: No such file', re.I),
     "no server listening on socket {0}"),
    (re.compile(r"No route to host", re.I), "no route to host"),
    (re.compile(r"Network is unreachable", re.I), "network is unreachable"),
)


def driver_error(e: BaseException) -> BaseException | None:
    """The driver's error (psycopg2's, sqlite3's) behind an ``OperationalError`` in ``e``'s
    chain: what a server that cannot be reached, or refuses the login, raises."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError) and current.orig is not None:
            return current.orig  # type: ignore[return-value]
        current = current.__cause__ or current.__context__
    return None


def connection_problem(e: BaseException, timeout: int | None = None) -> str | None:
    """A short reason why a connection failed, or None when ``e`` is not a connection error.

    ``timeout`` (seconds) is quoted when the server did not answer in time. Any URL in the
    reason has its password masked.
    """
    cause = driver_error(e)
    if cause is None:
        return None
    text = str(cause).strip()
    for pattern, short in _REASONS:
        match = pattern.search(text)
        if match:
            return short.format(*match.groups(), timeout=timeout if timeout else "the timeout")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(cause).__name__
    line = re.sub(r"^connection to server (at|on) .*? failed: ", "", line)
    line = re.sub(r"^(FATAL|ERROR):\s+", "", line)
    return _URL.sub(lambda m: mask_url(m.group(0)), line)
