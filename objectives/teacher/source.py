"""Where a checkpoint name points: an existing local directory, or a Hugging Face hub id.

A teacher (or a base checkpoint) is named by a local path or a hub model id, and both are
plain strings. :func:`checkpoint_source` decides which, without loading anything, so that a
mistyped path fails at once with "no such checkpoint directory" instead of transformers'
"Repo id must be in the form ..." or half a minute of hub retries:

* an existing path: that path (resolved);
* a path that looks local (absolute, ``./``, ``../``, ``~``, a backslash), or one whose
  first component is an existing directory (``models/teacher`` where ``models/`` exists),
  or a name that is not a valid hub id (``a/b/c``, spaces): no such checkpoint directory;
* a valid hub id while ``HF_HUB_OFFLINE`` is set: only when the hub cache holds its
  ``config.json``;
* any other valid hub id: the id, for ``from_pretrained`` to fetch.
"""

from __future__ import annotations

import os
from pathlib import Path

from kdtune.errors import UsageError

__all__ = ["NO_DIRECTORY", "checkpoint_source", "hub_offline"]

NO_DIRECTORY = "no such checkpoint directory"
_LOCAL_PREFIXES = ("/", "./", "../", "~", "\\", ".\\", "..\\")


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` tells the Hugging Face libraries not to use the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def checkpoint_source(name: str, *, check_cache: bool = True) -> str:
    """What ``from_pretrained`` should load for ``name``: a resolved local path or a hub id.

    Args:
        name: a checkpoint directory or a hub model id, as the user wrote it.
        check_cache: with ``HF_HUB_OFFLINE`` set, refuse a hub id the local hub cache does
            not hold (instead of letting ``from_pretrained`` fail on it).

    Raises:
        UsageError: one line, without ``name`` (the caller names it): "no such checkpoint
            directory", and why it is not taken as a hub id when it could look like one.
    """
    local = Path(name).expanduser()
    if local.exists():
        return str(local.resolve())
    if name.startswith(_LOCAL_PREFIXES) or os.path.isabs(name):
        raise UsageError(NO_DIRECTORY)
    parts = name.replace(os.sep, "/").split("/")
    if len(parts) > 1 and Path(parts[0]).expanduser().is_dir():
        raise UsageError(f"{NO_DIRECTORY} (nothing named {'/'.join(parts[1:])!r} in "
                         f"{parts[0]!r})")
    if not _valid_hub_id(name):
        raise UsageError(f"{NO_DIRECTORY}, nor a valid Hugging Face hub model id")
    if check_cache and hub_offline() and not _in_hub_cache(name):
        raise UsageError(f"{NO_DIRECTORY}, and no hub model of that name in the local "
                         "Hugging Face cache (HF_HUB_OFFLINE is set)")
    return name


def _valid_hub_id(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - an unreadable cache holds nothing usable
        return False
