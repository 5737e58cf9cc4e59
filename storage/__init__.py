"""Storage: where kdtune's Optuna studies live.

Public API:

* :func:`resolve_spec`, :class:`StorageSpec`, :func:`mask_url`: storage specs and URLs.
* :func:`make_storage`, :func:`storage_url`, :class:`StorageSettings`,
  :class:`StorageError`: the storage factory.
* :mod:`storage.embedded`: the embedded PostgreSQL server (start, stop, status).
* :func:`kdtune_home`: kdtune's data directory.
"""

from kdtune.paths import kdtune_home

from .factory import (
    StorageError,
    StorageSettings,
    describe,
    make_storage,
    rdb_engine,
    storage_url,
    warn_if_shared_sqlite,
)
from .urls import ENV_STORAGE, StorageSpec, mask_url, resolve_spec

__all__ = [
    "ENV_STORAGE",
    "StorageError",
    "StorageSettings",
    "StorageSpec",
    "describe",
    "kdtune_home",
    "make_storage",
    "mask_url",
    "rdb_engine",
    "resolve_spec",
    "storage_url",
    "warn_if_shared_sqlite",
]
