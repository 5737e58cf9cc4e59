"""The storage factory: a storage spec in, an Optuna storage out.

Every process that talks to a study (CLI, worker, dashboard, tests) goes through
:func:`make_storage` (:class:`StorageSettings`; :func:`storage_url` for the URL alone): PostgreSQL
(system or embedded) through psycopg2 with ``pool_pre_ping``, a small pool and a connect timeout;
optional heartbeats; the schema created by whoever creates the study (workers pass
``create_schema=False``); SQLite for a single process (:func:`warn_if_shared_sqlite`).

Why: docs/design.md, "Storage connection settings".
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import optuna

from kdtune.errors import StorageError, UsageError

from . import embedded
from .connection import connection_problem
from .optuna_adapter import quiet_experimental, retry_stale_trials
from .retry import reason
from .urls import StorageSpec, mask_url, resolve_spec


def _env_int(name: str, default: int) -> int:
    """A non-negative integer from the environment variable ``name``, else ``default``."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise UsageError(f"${name} must be a whole number >= 0, got {value!r}")
    return number


@dataclass(frozen=True)
class StorageSettings:
    """How kdtune connects. ``heartbeat_interval`` None disables heartbeats.

    Connections per process (PostgreSQL): at most ``pool_size + max_overflow`` (2 + 2 by
    default; ``$KDTUNE_DB_POOL_SIZE``, ``$KDTUNE_DB_MAX_OVERFLOW``). A worker uses one for
    its trial's storage calls, one for its heartbeats and one for the budget lock while it
    asks; N workers need up to 4N server connections without a pooler (PostgreSQL's default
    ``max_connections`` is 100), far fewer behind PgBouncer in transaction pooling.
    """

    heartbeat_interval: int | None = None
    grace_period: int | None = None
    max_retry: int | None = 2
    pool_size: int = field(default_factory=lambda: _env_int("KDTUNE_DB_POOL_SIZE", 2))
    max_overflow: int = field(default_factory=lambda: _env_int("KDTUNE_DB_MAX_OVERFLOW", 2))
    connect_timeout: int = 10
    create_schema: bool = True


def storage_url(spec: str | None = None, *, start_embedded: bool = True) -> str:
    """The SQLAlchemy URL for a spec, starting the embedded server when it is the target."""
    resolved = resolve_spec(spec)
    if resolved.kind == "embedded":
        if not start_embedded:
            st = embedded.status()
            if not st.running:
                raise StorageError("the embedded PostgreSQL server is not running")
            return st.url() or ""
        return embedded.start()
    return resolved.url or ""


def make_storage(
    spec: str | None = None, settings: StorageSettings | None = None
) -> optuna.storages.RDBStorage:
    """Turn a storage spec into an Optuna RDB storage.

    Args:
        spec: ``None``/``"embedded"``, a ``postgresql://`` or a ``sqlite:///`` URL; ``None``
            also consults ``$KDTUNE_STORAGE``.
        settings: heartbeat, retry and pool settings.

    Raises:
        StorageError: the database cannot be reached or refuses the login (``cannot use
            storage: cannot connect to <masked URL> (<reason>)``, e.g. "connection
            refused"), or cannot be used (``cannot use storage <masked URL>: <reason>``).
        UsageError: the spec is not a storage spec (the message names the accepted forms).
    """
    settings = settings or StorageSettings()
    resolved = resolve_spec(spec)
    url = storage_url(spec)
    engine_kwargs: dict = {}
    if resolved.kind in ("embedded", "postgresql"):
        engine_kwargs = {
            "pool_pre_ping": True,
            "pool_size": settings.pool_size,
            "max_overflow": settings.max_overflow,
            "pool_recycle": 1800,
            "connect_args": {"connect_timeout": settings.connect_timeout},
        }
    heartbeat: dict = {}
    if settings.heartbeat_interval:
        heartbeat = {
            "heartbeat_interval": settings.heartbeat_interval,
            "grace_period": settings.grace_period or 3 * settings.heartbeat_interval,
            **retry_stale_trials(settings.max_retry),
        }
    try:
        with quiet_experimental():
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                skip_table_creation=not settings.create_schema,
                **heartbeat,
            )
    except Exception as e:  # sqlalchemy / psycopg2 errors carry the reason in their text
        why = connection_problem(e, settings.connect_timeout)
        if why is not None:
            raise StorageError(f"cannot use storage: cannot connect to {describe(resolved)} "
                               f"({why})") from e
        raise StorageError(f"cannot use storage {describe(resolved)}: {reason(e)}") from e


def describe(spec: StorageSpec | str | None) -> str:
    """A printable, password-free description of a storage spec."""
    if not isinstance(spec, StorageSpec):
        spec = resolve_spec(spec)
    if spec.kind == "embedded":
        return f"embedded PostgreSQL ({embedded.data_dir()})"
    return mask_url(spec.url or "")


def warn_if_shared_sqlite(spec: str | None, workers: int) -> None:
    """Warn when several worker processes would share one SQLite file."""
    if workers > 1 and resolve_spec(spec).kind == "sqlite":
        warnings.warn(
            f"{workers} workers on one SQLite file will contend for its write lock and may "
            "fail with 'database is locked'; use PostgreSQL (the default embedded server, or "
            "a postgresql:// URL) for parallel workers",
            stacklevel=2,
        )
