"""How a ``kdtune`` command ends: its exit code and its one line.

:func:`report` prints an error as ``kdtune: error:`` lines (the traceback only with
``--debug``), :func:`usage_error` a click usage error as one line, :func:`stopped` the line of
a stop signal.
"""

from __future__ import annotations

import sys
import traceback

from kdtune.errors import ConfigError, KdtuneError

from ..signals import Stopped

__all__ = ["report", "stopped", "usage_error"]


def usage_error(e: Exception) -> int:
    """A click usage error (bad flag, value or command) as one ``kdtune: error:`` line that
    names the command's help; its exit code (2)."""
    message = "; ".join(line.strip() for line in e.format_message().splitlines() if line.strip())
    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else "kdtune"
    sys.stderr.write(f"kdtune: error: {message} (see {path} --help)\n")
    return int(getattr(e, "exit_code", 2) or 2)


def stopped(e: Stopped) -> int:
    """Print a stop signal's one line; return its exit code (130 SIGINT, 143 SIGTERM)."""
    sys.stderr.write(e.line + "\n")
    return e.exit_code


def report(e: Exception, debug: bool) -> int:
    """Print ``e`` as ``kdtune: error:`` lines and return the exit code it calls for."""
    if debug:
        traceback.print_exception(e)
    if isinstance(e, KdtuneError):
        problems = e.problems if isinstance(e, ConfigError) else str(e).splitlines()
        for line in problems or [type(e).__name__]:
            sys.stderr.write(f"kdtune: error: {line}\n")
        return e.exit_code
    message = (str(e).strip().splitlines() or [""])[0]
    hint = "" if debug else " (run with kdtune --debug for the traceback)"
    sys.stderr.write(f"kdtune: error: unexpected {type(e).__name__}: {message}{hint}\n")
    return 1
