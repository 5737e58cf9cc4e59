"""Storage: where kdtune's Optuna studies live.

Public API: :func:`resolve_spec`, :class:`StorageSpec`, :func:`mask_url` (storage specs and URLs);
:func:`make_storage`, :func:`storage_url`, :class:`StorageSettings` (the storage factory);
:func:`with_retries`, :func:`database_errors` (database errors retried, then translated into
:class:`StorageError`, re-exported from :mod:`kdtune.errors`); :mod:`kdtune.storage.optuna_adapter`
(Optuna's private storage API: the RDB engine :func:`rdb_engine`, tables, heartbeats, ids) and
:mod:`kdtune.storage.optuna_pareto` (its private hypervolume and non-dominated sort);
:mod:`kdtune.storage.embedded` (the embedded PostgreSQL server: start, stop, status)
and :mod:`kdtune.storage.embedded_upgrade` (its data from an older PostgreSQL);
:func:`kdtune_home` (kdtune's data directory).
"""

from kdtune.errors import StorageError
from kdtune.paths import kdtune_home

from .factory import (
    StorageSettings,
    describe,
    make_storage,
    storage_url,
    warn_if_shared_sqlite,
)
from .optuna_adapter import rdb_engine
from .retry import database_errors, with_retries
from .urls import ENV_STORAGE, StorageSpec, mask_url, resolve_spec

__all__ = [
    "ENV_STORAGE",
    "StorageError",
    "StorageSettings",
    "StorageSpec",
    "database_errors",
    "describe",
    "kdtune_home",
    "make_storage",
    "mask_url",
    "rdb_engine",
    "resolve_spec",
    "storage_url",
    "warn_if_shared_sqlite",
    "with_retries",
]
