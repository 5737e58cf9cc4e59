"""Authentication and read-only access for ``kdtune dashboard``: a WSGI middleware.

:class:`DashboardGate` wraps optuna-dashboard's WSGI application. A request needs one shared token
(:func:`token_from_env`: ``$KDTUNE_DASHBOARD_TOKEN`` or the file named by
``$KDTUNE_DASHBOARD_TOKEN_FILE``) as ``Authorization: Bearer <token>`` or as the HTTP basic password
of user ``kdtune``, else ``401``; methods other than GET and HEAD get ``403`` unless
``--allow-writes``; ``/healthz`` answers ``200 ok`` without credentials.

Why: docs/design.md, "Dashboard authentication and read-only access".
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kdtune.errors import UsageError

TOKEN_ENV = "KDTUNE_DASHBOARD_TOKEN"
TOKEN_FILE_ENV = "KDTUNE_DASHBOARD_TOKEN_FILE"
USER_ENV = "KDTUNE_DASHBOARD_USER"
DEFAULT_USER = "kdtune"
MIN_TOKEN_LENGTH = 16
HEALTH_PATH = "/healthz"
READ_METHODS = frozenset({"GET", "HEAD"})
_MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(24))'"

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def token_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The dashboard token from ``$KDTUNE_DASHBOARD_TOKEN`` or ``$KDTUNE_DASHBOARD_TOKEN_FILE``.

    Returns None when neither is set. Surrounding whitespace (a file's trailing newline) is
    removed.

    Raises:
        UsageError: both are set, the file cannot be read, or the token is shorter than
            16 characters.
    """
    env = os.environ if env is None else env
    value, path = env.get(TOKEN_ENV), env.get(TOKEN_FILE_ENV)
    if value and path:
        raise UsageError(f"set {TOKEN_ENV} or {TOKEN_FILE_ENV}, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"{TOKEN_FILE_ENV}: cannot read {path}: {e.strerror or e}") from e
        source = f"the file {path}"
    else:
        source = TOKEN_ENV
    if value is None or (not value.strip() and not path):
        return None
    token = value.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise UsageError(f"the dashboard token in {source} has {len(token)} characters; use at "
                         f"least {MIN_TOKEN_LENGTH}, e.g. from: {_MAKE_ONE}")
    return token


class DashboardGate:
    """WSGI middleware: token authentication (optional), read-only access, a health path.

    Args:
        app: the wrapped WSGI application (optuna-dashboard's).
        token: the shared secret; None lets every request in (loopback use).
        user: the user name HTTP basic authentication must give.
        allow_writes: let POST, PUT, PATCH and DELETE through (after authentication).
    """

    def __init__(self, app: WSGIApp, token: str | None, user: str = DEFAULT_USER,
                 allow_writes: bool = False) -> None:
        self.app = app
        self.user = user
        self.allow_writes = allow_writes
        self._token = token.encode() if token is not None else None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return _reply(start_response, "200 OK", b"ok\n", "text/plain")
        if self._token is not None and not self.authorised(environ.get("HTTP_AUTHORIZATION")):
            return _reply(start_response, "401 Unauthorized",
                          _reason("authentication required: HTTP basic (user "
                                  f"{self.user!r}, the token as password) or a bearer token"),
                          extra=[("WWW-Authenticate", 'Basic realm="kdtune", charset="UTF-8"')])
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method not in READ_METHODS and not self.allow_writes:
            return _reply(start_response, "403 Forbidden",
                          _reason("this dashboard is read-only (kdtune dashboard "
                                  "--allow-writes lets notes, renames and deletions through)"))
        return self.app(environ, start_response)

    def authorised(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (bearer or basic)."""
        if not header or self._token is None:
            return False
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.encode(), self._token)
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep:
            return False
        # both comparisons always run: the time taken does not say which one failed
        user_ok = hmac.compare_digest(user, self.user.encode())
        password_ok = hmac.compare_digest(password, self._token)
        return user_ok and password_ok


def _reason(text: str) -> bytes:
    """A JSON error body in optuna-dashboard's own shape (the page shows ``reason``)."""
    return json.dumps({"reason": text}).encode()


def _reply(start_response: Callable, status: str, body: bytes,
           content_type: str = "application/json",
           extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    headers: list[tuple[str, Any]] = [("Content-Type", content_type),
                                      ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra or []))
    return [body]
