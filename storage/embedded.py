"""The embedded PostgreSQL server: kdtune's default storage.

When no storage is given, kdtune runs PostgreSQL 16 from the PyPI package ``pgserver``
with its data directory at ``$KDTUNE_HOME/postgres``. The server is started on demand by the
first process that needs it, listens only on a Unix socket inside the data directory (or a
short runtime path when that is too long), is shared by every local process (workers,
dashboard, CLI), and keeps running after the process that started it exits, until
``kdtune storage stop``.

Running as root works: pgserver runs the server as a ``pgserver`` system user it creates.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kdtune.errors import StorageError
from kdtune.paths import kdtune_home

DATABASE = "kdtune"


def data_dir(home: Path | None = None) -> Path:
    """The embedded server's data directory."""
    return (home or kdtune_home()) / "postgres"


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    data_dir: Path
    pid: int | None = None
    socket_dir: Path | None = None

    def url(self) -> str | None:
        if not self.running or self.socket_dir is None:
            return None
        return _url(self.socket_dir)


def _url(socket_dir: Path) -> str:
    return f"postgresql+psycopg2://postgres@/{DATABASE}?host={socket_dir}"


def _import_pgserver():
    """Import pgserver quietly (platformdirs warns when XDG_RUNTIME_DIR is unset)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.utils
        from pgserver import _commands
    return pgserver, pgserver.utils, _commands


def status(home: Path | None = None) -> EmbeddedStatus:
    """Report whether the embedded server is running, without starting it."""
    PostmasterInfo = _import_pgserver()[1].PostmasterInfo

    pgdata = data_dir(home)
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        info = None
    if info is None or not info.is_running():
        return EmbeddedStatus(False, pgdata)
    return EmbeddedStatus(True, pgdata, info.pid, info.socket_dir)


def start(home: Path | None = None) -> str:
    """Start the embedded server if it is not running; return its SQLAlchemy URL.

    Safe to call from many processes at once: pgserver serialises start-up with a file
    lock. The ``kdtune`` database is created the first time.
    """
    pgserver = _import_pgserver()[0]

    pgdata = data_dir(home)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # pgserver caches one handle per data directory and process; after `stop` that handle
    # points at a dead server, so forget it and let get_server start a fresh one.
    instances = pgserver.PostgresServer._instances
    if pgdata.resolve() in instances and not status(home).running:
        instances.pop(pgdata.resolve(), None)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as e:  # pgserver raises bare exceptions from initdb / pg_ctl
        raise StorageError(
            f"could not start the embedded PostgreSQL server in {pgdata}: {e} "
            f"(see {pgdata / 'log'})"
        ) from e
    info = server.get_postmaster_info()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "1 row" not in exists:
        out = server.psql(f"CREATE DATABASE {DATABASE};")
        if "already exists" not in out and "CREATE DATABASE" not in out:
            raise StorageError(f"could not create database {DATABASE!r} in {pgdata}: {out}")
    return _url(info.socket_dir)


def stop(home: Path | None = None) -> bool:
    """Stop the embedded server. Returns False when it was not running."""
    pg_ctl = _import_pgserver()[2].pg_ctl

    st = status(home)
    if not st.running:
        return False
    user = _system_user()
    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=st.data_dir, user=user)
    except subprocess.CalledProcessError as e:
        raise StorageError(f"could not stop the embedded server in {st.data_dir}: {e}") from e
    return True


def _system_user() -> str | None:
    import os

    return "pgserver" if os.geteuid() == 0 else None
