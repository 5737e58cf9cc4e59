"""Where a checkpoint name points: an existing local directory, or a Hugging Face hub id.

:func:`checkpoint_source` decides which, without loading anything: an existing path is that
path (resolved); a path that looks local, or whose first component is an existing directory,
or a name that is not a valid hub id: no such checkpoint directory; a valid hub id while
``HF_HUB_OFFLINE`` is set: only when the hub cache holds its ``config.json``; any other valid
hub id: the id, for ``from_pretrained`` to fetch, unless the hub cannot be reached (one quick
connection, :func:`hub_reachable`) and its cache lacks the model: then one line at once.
Why: docs/design.md, "Checkpoint names resolved before loading".
"""

from __future__ import annotations

import os
from pathlib import Path

from kdtune.errors import UsageError

__all__ = ["NO_DIRECTORY", "checkpoint_source", "hub_offline", "hub_reachable"]

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
    if not hub_offline() and not _in_hub_cache(name) and not hub_reachable():
        raise UsageError(f"{NO_DIRECTORY} here, and the model hub is unreachable")
    return name


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face hub's host accepts a TCP connection within ``timeout`` s.

    One connection, no request: it tells a machine without network (where
    ``from_pretrained`` would retry for about 30 s) from one with it. Behind a proxy
    (``HTTPS_PROXY`` or ``ALL_PROXY``) the hub is taken as reachable.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(constants.ENDPOINT)
    if not url.hostname:
        return True
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


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
