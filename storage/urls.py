"""Storage specs and URLs, with passwords masked whenever they are shown.

A *storage spec* (:func:`resolve_spec` -> :class:`StorageSpec`) is ``None`` or ``""`` (nothing
given, and ``$KDTUNE_STORAGE`` unset: the embedded PostgreSQL server under ``$KDTUNE_HOME``, see
:mod:`storage.embedded`), a ``postgresql://`` URL (``postgres://`` and ``postgresql+psycopg2://``
normalised to the psycopg2 driver) or a ``sqlite:///path.db`` URL, for single-process use.
Everything before the URL's *last* ``@`` is ``user:password``; :func:`mask_url` follows the rule.

Why: docs/design.md, "Passwords in storage URLs".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from kdtune.errors import UsageError

ENV_STORAGE = "KDTUNE_STORAGE"
MASK = "***"

Kind = Literal["embedded", "postgresql", "sqlite"]


@dataclass(frozen=True)
class StorageSpec:
    """A resolved storage spec: its kind and, except for ``embedded``, its URL."""

    kind: Kind
    url: str | None = None

    def masked(self) -> str:
        """The spec as it may be printed: the password replaced by ``***``."""
        if self.kind == "embedded":
            return "embedded"
        return mask_url(self.url or "")


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``.

    Covers a password in the authority part (``user:secret@host``: everything between the
    first ``:`` after the user and the URL's last ``@``, so raw ``@`` and ``/`` in a password
    are masked too) and one passed as a ``password=`` query parameter. The rest of the URL
    is returned exactly as given.
    """
    scheme, user, password, after = _split_userinfo(url)
    masked = url if password is None else f"{scheme}{user}:{MASK}@{after}"
    return re.sub(r"([?&]password=)[^&]*", rf"\1{MASK}", masked, flags=re.IGNORECASE)


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)


def _split_userinfo(url: str) -> tuple[str, str, str | None, str]:
    """``(scheme://, user, password, rest after the last @)``; password None when absent.

    The user and password are everything before the URL's last ``@`` (the user ends at
    the first ``:``). Without a scheme, an ``@`` or a ``:`` before it: ``("", "", None, url)``.
    """
    match = _SCHEME.match(url)
    if match is None:
        return "", "", None, url
    scheme, rest = match.groups()
    userinfo, at, after = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return scheme, userinfo, None, url
    user, _, password = userinfo.partition(":")
    return scheme, user, password, after


def _encode_raw_at(url: str) -> str:
    """``url`` with any raw ``@`` in its user or password percent-encoded (``%40``), so that
    a parser that ends the password at the first ``@`` sees the whole password."""
    scheme, user, password, after = _split_userinfo(url)
    if password is None or "@" not in user + password:
        return url
    return f"{scheme}{user.replace('@', '%40')}:{password.replace('@', '%40')}@{after}"


def resolve_spec(spec: str | None = None) -> StorageSpec:
    """Turn a user's storage spec (or ``$KDTUNE_STORAGE``, or nothing) into a StorageSpec.

    Raises UsageError (a ValueError) naming the accepted forms when the spec is not one of
    them.
    """
    if spec is None or spec.strip() == "":
        spec = os.environ.get(ENV_STORAGE, "").strip() or None
    if spec is None or spec == "embedded":
        return StorageSpec("embedded")
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
        try:
            parsed = make_url(_encode_raw_at(spec.replace("postgres://", "postgresql://", 1)))
        except (ArgumentError, ValueError) as e:
            raise UsageError(f"storage URL {mask_url(spec)!r} does not parse: {e}") from e
        parsed = parsed.set(drivername="postgresql+psycopg2")
        return StorageSpec("postgresql", parsed.render_as_string(hide_password=False))
    if scheme == "sqlite":
        return StorageSpec("sqlite", spec)
    raise UsageError(
        f"storage {mask_url(spec)!r} is not understood; accepted: nothing or 'embedded' "
        "(embedded PostgreSQL), 'postgresql://user:password@host:port/db', 'sqlite:///path.db'"
    )
