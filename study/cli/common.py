"""What every ``kdtune`` command module shares: option types, output helpers, and how a
command ends (:func:`report` an error, :func:`usage_error`, :func:`stopped`: one line each)."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from kdtune.errors import ConfigError, KdtuneError

from ..outcome import StudyStopped
from ..signals import Stopped, local_worker

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="postgresql:// or sqlite:/// URL; default $KDTUNE_STORAGE, "
                 "else the embedded PostgreSQL server"),
]
StudyOpt = Annotated[str, typer.Option("--study", "--study-name",
                                        help="study name (--study-name, as Optuna's CLI)")]
def set_option(example: str) -> Any:
    """A ``--set`` option whose help shows an ``example`` that applies to its command."""
    return Annotated[list[str] | None,
                     typer.Option("--set", help=f"dotted override, e.g. --set {example}")]


SetOpt = set_option("search.temperature.high=8")  # a study config's keys
DistillSetOpt = set_option("epochs=5")  # keys of the distill: section
TeacherSetOpt = set_option("data.source=reviews.csv")  # a teacher fit config's keys
AuditSetOpt = set_option("data.max_length=128")  # keys of a distill: section's data
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
ConfigArg = Annotated[Path, typer.Argument(help="study config (YAML)")]
ObjectiveOpt = Annotated[str | None, typer.Option(
    "--objective", hidden=True,
    help="module:function objective factory, called with the study config "
    "(tests and benchmarks)")]


def print_json(data) -> None:
    """``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def emit(as_json: bool, data, line: str) -> None:
    """``data`` as JSON with ``--json``, else the one human-readable ``line``."""
    if as_json:
        print_json(data)
    else:
        typer.echo(line)


def plain_output() -> bool:
    """Whether stderr is not a terminal (a file, a pipe, a CI log): no live progress bars
    there, whose carriage returns become hundreds of lines; a plain line per step instead."""
    return not sys.stderr.isatty()


def quiet_library_bars() -> None:
    """Off a terminal, turn off transformers', datasets' and tqdm's progress bars, in this
    process and the workers it starts (through the environment)."""
    import os

    if plain_output():
        for name in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "HF_HUB_DISABLE_PROGRESS_BARS",
                     "TQDM_DISABLE"):
            os.environ.setdefault(name, "1")


def quiet_optuna() -> None:
    """Optuna's own log lines (``[I ...] A new study created``, a line per trial) at WARNING:
    kdtune prints its own progress, and warnings still show."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def warn(line: str) -> None:
    """One ``kdtune: warning:`` line on stderr."""
    sys.stderr.write(f"kdtune: warning: {line}\n")


def usage_error(e: Exception) -> int:
    """A click usage error (bad flag, value or command) as one ``kdtune: error:`` line that
    names the command's help; its exit code (2)."""
    message = "; ".join(line.strip() for line in e.format_message().splitlines() if line.strip())
    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else "kdtune"
    sys.stderr.write(f"kdtune: error: {message} (see {path} --help)\n")
    return int(getattr(e, "exit_code", 2) or 2)


def stopped(e: Stopped) -> int:
    """Print a stop signal's one line; return its exit code (130 SIGINT, 143 SIGTERM).
    A worker of ``kdtune run`` prints nothing: the command that started it says it once."""
    if not local_worker():
        sys.stderr.write(e.line + "\n")
    return e.exit_code


def report(e: Exception, debug: bool) -> int:
    """Print ``e`` as ``kdtune: error:`` lines and return the exit code it calls for (a
    worker of ``kdtune run`` leaves the study stopping itself to the command, which says it
    once)."""
    if isinstance(e, StudyStopped) and local_worker() and not debug:
        return e.exit_code
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
