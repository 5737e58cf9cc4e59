"""What every ``kdtune`` command module shares: option types, output helpers, and how a
command ends (:func:`report` an error, :func:`usage_error`, :func:`stopped`: one line each)."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperOption

from kdtune.errors import ConfigError, KdtuneError, UsageError

from ..outcome import StudyStopped
from ..signals import Stopped, local_worker

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="postgresql:// or sqlite:/// URL; default $KDTUNE_STORAGE, "
                 "else the embedded PostgreSQL server"),
]
STUDY_FLAGS = ("--study", "--study-name")
"""How every command that names a study takes it (``--study-name``: Optuna's CLI spelling)."""
STUDY_HELP = "study name (--study-name, as Optuna's CLI)"
StudyOpt = Annotated[str, typer.Option(*STUDY_FLAGS, help=STUDY_HELP)]
MaybeStudyOpt = Annotated[str | None, typer.Option(*STUDY_FLAGS, help=STUDY_HELP + "; required")]
"""``--study`` on a command that also takes the older positional form (:data:`OldStudyArg`)."""
OldStudyArg = Annotated[str | None, typer.Argument(
    hidden=True, metavar="STUDY", help="the study name, the older spelling of --study")]
"""The positional study an older kdtune took (``kdtune test NAME``): still accepted, shown
nowhere (see :class:`HiddenArgsCommand`)."""


def one_study(ctx: typer.Context, option: str | None, positional: str | None) -> str:
    """The study of a command that takes ``--study`` and, hidden, the older positional form.

    Raises:
        UsageError: neither is given (click's own one-line "Missing option"), or the two
            name different studies.
    """
    if option is not None and positional is not None and option != positional:
        raise UsageError(f"two studies named: --study {option} and {positional}; give one")
    if option is None and positional is None:
        from typer._click.exceptions import MissingParameter

        param = next(p for p in ctx.command.params if p.name == "study")
        raise MissingParameter(ctx=ctx, param=param)
    return option if option is not None else positional


class HiddenArgsCommand(TyperCommand):
    """A command whose hidden positional arguments (an older spelling kept working) stay out
    of its usage line as well as out of its help panels."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not getattr(param, "hidden", False):
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def _flags_show_no_type() -> None:
    """Flags (``--json``, ``--test``, ``-h``) take no value, so ``--help`` shows no type for
    them. typer 0.29's rich help gives every option its type (``--json <bool>``, from
    ``TyperOption.display_type_rich``), where its plain help leaves flags out; this makes the
    rich help do the same. Applied once, when the CLI is imported."""
    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_show_no_type", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag or self.count else shown(self, ctx)

    display_type_rich.flags_show_no_type = True
    TyperOption.display_type_rich = display_type_rich


_flags_show_no_type()


def set_option(example: str, note: str = "") -> Any:
    """A ``--set`` option whose help shows an ``example`` that applies to its command."""
    return Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help=f"dotted override, e.g. --set {example}" + (f" ({note})" if note else ""))]


SetOpt = set_option("search.temperature.high=8")  # a study config's keys
DistillSetOpt = set_option(  # a study config's distill.* keys, as for run
    "distill.epochs=5", "keys as in a study config; the distill. prefix may be left out")
TeacherSetOpt = set_option("data.source=reviews.csv")  # a teacher fit config's keys
AuditSetOpt = set_option(  # a study config's distill.data.* and distill.device
    "distill.data.max_length=128", "data and device keys as in a study config; the "
    "distill. prefix may be left out")
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
ConfigArg = Annotated[Path, typer.Argument(help="study config (YAML)")]
ObjectiveOpt = Annotated[str | None, typer.Option(
    "--objective", hidden=True,
    help="module:function objective factory, called with the study config "
    "(tests and benchmarks)")]


def format_option(formats: tuple[str, ...]) -> Any:
    """``--format``, one of ``formats`` (the first is the default); ``--json`` is
    ``--format json``."""
    return Annotated[str, typer.Option(
        "--format", metavar="|".join(formats),
        help=f"{', '.join(formats[:-1])} or {formats[-1]} (--json: json)")]


def output_format(fmt: str, as_json: bool, formats: tuple[str, ...]) -> str:
    """The format ``--format`` and ``--json`` ask for together.

    Raises:
        UsageError: ``fmt`` is not one of ``formats``, or ``--json`` comes with another
            format than table (the default) or json.
    """
    if fmt not in formats:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(formats)}")
    if as_json and fmt not in ("table", "json"):
        raise UsageError(f"--json and --format {fmt} ask for two formats; give one")
    return "json" if as_json else fmt


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
