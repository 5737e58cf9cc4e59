"""Storage specs and URLs, with passwords masked whenever they are shown.

A *storage spec* is what a user gives kdtune to say where studies live:

* ``None`` or ``""`` (nothing given, and ``$KDTUNE_STORAGE`` unset): the embedded
  PostgreSQL server under ``$KDTUNE_HOME`` (see :mod:`storage.embedded`);
* a ``postgresql://`` URL (``postgres://`` and ``postgresql+psycopg2://`` are accepted and
  normalised to the psycopg2 driver);
* a ``sqlite:///path.db`` URL, for single-process use.
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

    Covers a password in the authority part (``user:secret@host``) and one passed as a
    ``password=`` query parameter. The rest of the URL is returned exactly as given.
    """
    masked = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*:)(.*)@", rf"\1{MASK}@", url)
    masked = re.sub(r"([?&]password=)[^&]*", rf"\1{MASK}", masked, flags=re.IGNORECASE)
    return masked


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
            parsed = make_url(spec.replace("postgres://", "postgresql://", 1))
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
