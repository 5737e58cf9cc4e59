"""One readable line from a library's exception, for kdtune's one-line error messages."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(e: BaseException) -> str:
    """The first non-empty line of ``e``'s message, prefixed by its type.

    Libraries (transformers, datasets, the hub client) raise multi-line messages; kdtune's
    errors quote only their first line, e.g. ``"OSError: no file named config.json"``.
    """
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
