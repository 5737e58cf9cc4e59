"""Upgrade of the embedded server's data directory from an older PostgreSQL (``kdtune storage
upgrade``): :func:`upgrade` runs ``pg_upgrade`` in copy mode, only when asked.

Why: docs/design.md, "Embedded server upgrade from PostgreSQL 16".
"""

from __future__ import annotations

from pathlib import Path

from kdtune.errors import StorageError

from .embedded import (
    _MIN_FREE,
    _check_version,
    _first_error,
    _import_pgserver,
    _kept,
    _pgserver_log,
    _system_user,
    data_dir,
    data_version,
    postgres_version,
    status,
)

__all__ = ["upgrade"]


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
