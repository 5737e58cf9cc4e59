"""The export file: a checksum line that makes a truncated or edited export detectable.

``kdtune export`` writes its YAML under a first line (:func:`with_checksum`)
``# kdtune-export sha256:<64 hex digits> (of the lines below ...)``, where the digest is the
SHA-256 of every line after that one (UTF-8, ``\\r\\n`` read as ``\\n``). :func:`verify_export`: a
file with that line must match it, else ``kdtune distill`` refuses it
(:class:`~kdtune.errors.ConfigError`); a file without it is accepted as it is.

Why: docs/design.md, "Export checksum line".
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

from kdtune import frozen
from kdtune.errors import ConfigError, UsageError

__all__ = ["MARKER", "check_writable", "read_checked", "verify_export", "with_checksum"]

MARKER = "# kdtune-export sha256:"
_LINE = re.compile(r"^# kdtune-export sha256:([0-9a-fA-F]*)[^\n]*\n?", re.MULTILINE)


def _digest(text: str) -> str:
    return hashlib.sha256(text.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def with_checksum(text: str) -> str:
    """``text`` (an export's YAML, comments included) preceded by its checksum line."""
    return (f"{MARKER}{_digest(text)} (of the lines below; kdtune distill refuses the file "
            "if they change)\n" + text)


def verify_export(text: str, name: str) -> bool:
    """Check an export's checksum line against the lines after it (see the module docstring).

    Returns:
        True when ``text`` has a checksum line and it matches; False when it has none.

    Raises:
        ConfigError: the checksum line does not match (``name`` is the file shown).
    """
    match = _LINE.search(text)
    if match is None:
        return False
    if match.group(1).lower() != _digest(text[match.end():]):
        raise ConfigError(
            f"{name}: export is incomplete or was edited (checksum mismatch); re-export it or "
            "remove the checksum line to use it as a hand-written config")
    return True


def read_checked(path: Path) -> dict:
    """The plain YAML data of a config file, its checksum line verified first if it has one."""
    text = frozen.read_text(path)
    verify_export(text, str(path))
    return frozen.parse_yaml(text, str(path))


def check_writable(output: Path, flag: str = "-o", *, directory: bool = False) -> None:
    """Fail early, writing nothing, when ``output`` cannot be created.

    Tries a temporary file in the nearest existing directory of ``output`` (the one the
    file or directory, or its missing parents, would be created in), and removes it at once.
    ``directory``: ``output`` is a directory to create (an existing one is left to the
    caller's own rules); otherwise a file.

    Raises:
        UsageError: a file ``output`` is a directory, a parent is a file, or the directory
            it would be created in is not writable (read-only, no permission, full).
    """
    if output.is_dir() and not directory:
        raise UsageError(f"{flag} {output}: is a directory; give a file name")
    parent = output.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {output}: {parent} is not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{output.name}."):
            pass
    except OSError as e:
        raise UsageError(f"{flag} {output}: cannot write in {parent} "
                         f"({e.strerror or e})") from e
