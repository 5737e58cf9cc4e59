"""Database errors at the storage boundary: retried while they may pass, then translated.

SQLAlchemy, psycopg2 and Optuna's storage raise their own exception types. kdtune turns them
into :class:`kdtune.errors.StorageError` here, once, with a one-line reason and any URL in
it masked (:func:`database_errors`), and retries the ones a server restart causes
(:func:`with_retries`). A translated error whose cause may pass (a lost connection, a
restarting server) carries ``retryable = True``, so :func:`with_retries` still retries
calls that translate their own errors.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from optuna.exceptions import StorageInternalError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from kdtune.errors import StorageError, UsageError

from .urls import mask_url

T = TypeVar("T")
TRANSIENT_ERRORS = (OperationalError, DBAPIError, StorageInternalError)
"""Errors a lost connection or a restarting server raises: worth another try."""
DATABASE_ERRORS = (SQLAlchemyError, StorageInternalError)
"""Every error the database layer raises; translated into StorageError."""

_log = logging.getLogger("kdtune.storage")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def reason(e: BaseException) -> str:
    """The first meaningful line of a database error, with any URL in it masked.

    Optuna's StorageInternalError ("invalid data in the commit, e.g. exceeding max
    length") hides the real error, e.g. a lost connection, in its cause: that is used.
    """
    cause: BaseException = e
    while isinstance(cause, StorageInternalError) and cause.__cause__ is not None:
        cause = cause.__cause__
    while getattr(cause, "orig", None) is not None:
        cause = cause.orig  # type: ignore[assignment]
    text = str(cause).strip().splitlines()
    line = next((t.strip() for t in text if t.strip()), type(cause).__name__)
    if line.lower().startswith("(psycopg2."):
        line = line.split(")", 1)[-1].strip()
    return _URL.sub(lambda m: mask_url(m.group(0)), line)


def translate(e: BaseException, what: str) -> StorageError:
    """``e`` as a StorageError saying ``what`` failed; ``retryable`` when it may pass."""
    error = StorageError(f"{what} failed: {reason(e)}")
    error.retryable = isinstance(e, TRANSIENT_ERRORS)  # type: ignore[attr-defined]
    return error


@contextlib.contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Raise any database error inside the block as a StorageError saying ``what`` failed."""
    try:
        yield
    except DATABASE_ERRORS as e:
        raise translate(e, what) from e


_CONNECTION_LOST = ("could not connect", "connection refused", "server closed the connection",
                    "terminating connection", "the database system is", "no such file or "
                    "directory", "connection to server", "connection timed out",
                    "could not receive data", "could not send data", "ssl syscall error")
"""Words of a connection-level failure that a restarted server cures (not a wrong password)."""


def is_transient(e: BaseException) -> bool:
    """Whether another try may succeed: a lost connection, a restarting server.

    A StorageError says so with its ``retryable`` attribute; one without it (e.g. from the
    storage factory) is transient when its cause is a connection that could not be made.
    """
    if isinstance(e, StorageError):
        if hasattr(e, "retryable"):
            return bool(e.retryable)
        cause = e.__cause__
        return cause is not None and any(w in reason(cause).lower() for w in _CONNECTION_LOST)
    return isinstance(e, TRANSIENT_ERRORS)


def _retryable(e: BaseException) -> bool:
    if isinstance(e, StorageError):
        return bool(getattr(e, "retryable", False))
    return isinstance(e, TRANSIENT_ERRORS)


def with_retries(fn: Callable[[], T], what: str, attempts: int = 8, delay: float = 0.5) -> T:
    """Call ``fn`` again after a transient database error (e.g. PostgreSQL restarting).

    Waits ``delay`` seconds, doubling up to 10 s, between at most ``attempts`` calls.

    Raises:
        StorageError: the last attempt still failed (its reason given), or ``fn`` raised a
            database error that another try cannot fix.
        UsageError: ``attempts`` is below 1.
    """
    if attempts < 1:
        raise UsageError(f"attempts must be 1 or more, got {attempts}")
    for i in range(attempts):
        try:
            return fn()
        except (StorageError, *DATABASE_ERRORS) as e:
            if not _retryable(e):
                if isinstance(e, StorageError):
                    raise
                raise translate(e, what) from e
            if i == attempts - 1:
                if isinstance(e, StorageError):
                    raise
                raise translate(e, f"{what} ({attempts} attempts)") from e
            _log.warning("%s failed (%s); retrying in %.1fs", what, reason(e), delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["DATABASE_ERRORS", "TRANSIENT_ERRORS", "database_errors", "is_transient", "reason",
           "translate", "with_retries"]
