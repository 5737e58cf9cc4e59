"""Writing files so that a reader never sees half of one, and locking between processes.

* :func:`atomic_write_text` / :func:`atomic_write_bytes`: a file appears whole or not at all
  (written beside the target under a temporary name, flushed, then renamed over it).
* :func:`atomic_directory`: the same for a directory (a checkpoint, a report): filled under a
  temporary name beside the target, renamed into place only when the block succeeds.
* :func:`file_lock`: an exclusive advisory lock (``fcntl.flock``) on a lock file, held for
  the ``with`` block; it serialises processes on one machine (not across NFS).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (parents created).

    The file gets the mode a plain ``open(path, "w")`` would give it (0666 less the umask),
    not the 0600 of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (parents created)."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it becomes ``target``.

    With ``overwrite`` an existing ``target`` is replaced (it is moved aside first and removed
    once the new one is in place); without it an existing non-empty ``target`` raises
    :class:`FileExistsError` before anything is written. On an exception the temporary
    directory is removed and ``target`` is left as it was. The directory gets the mode
    ``mkdir`` would give it (0777 less the umask).
    """
    target = Path(target)
    if target.exists() and not overwrite and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} already exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # as mkdir would, not mkdtemp's 0700
    try:
        yield tmp
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "x")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block.

    A no-op where ``fcntl`` does not exist (Windows): kdtune's multi-process paths run on
    POSIX systems.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = ["atomic_directory", "atomic_write_bytes", "atomic_write_text", "file_lock"]
