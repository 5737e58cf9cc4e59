"""The ``kdtune`` command line: the root command, ``dashboard``, ``demo`` and :func:`main`.

The command groups live beside it: :mod:`.search` (teacher fit, init, create, run, worker,
status), :mod:`.verdict` (pareto, test, rescore, report),
:mod:`.production` (convert, export, distill), :mod:`.audit`, :mod:`.storage`, :mod:`.config` and
:mod:`.studies`; each command parses its arguments and calls one plain function. :func:`main`
runs a command: a :class:`~kdtune.errors.KdtuneError` exits with its ``exit_code`` (2: a bad
flag, config or input; 1: a runtime failure), any other exception is a bug; SIGINT exits
130, SIGTERM 143 (:mod:`kdtune.study.signals`).

Why: docs/design.md, "CLI errors and exit codes".
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Annotated

import typer

from ..signals import DEBUG_ENV, Stopped, StopSignals
from .audit import register_audit_command
from .common import (
    StorageOpt,
    quiet_library_bars,
    quiet_optuna,
    report,
    stopped,
    usage_error,
)
from .config import config_app
from .production import register_production_commands
from .search import register_search_commands
from .storage import storage_app
from .studies import studies_app
from .verdict import register_front_commands

app = typer.Typer(
    name="kdtune",
    help="Hyperparameter optimisation for knowledge distillation of BERT classifiers: "
    "student accuracy against confidence preservation, on Optuna + PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
register_search_commands(app)  # teacher fit, init, create, run, worker, status
register_front_commands(app)  # pareto, test, rescore, report (kdtune.study.cli.verdict)
register_production_commands(app)  # convert, export, distill
register_audit_command(app)  # audit (kdtune.study.cli.audit)
app.add_typer(storage_app, name="storage")
app.add_typer(config_app, name="config")
app.add_typer(studies_app, name="studies")

_state = {"debug": False}


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show an error's traceback")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    _state["debug"] = debug
    if debug:  # workers started from here show tracebacks too
        os.environ[DEBUG_ENV] = "1"
    quiet_library_bars()
    quiet_optuna()
    if version:
        from kdtune import __version__

        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


@app.command("dashboard")
def dashboard_cmd(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option("--host", help="address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to serve on")] = 8080,
    publish: Annotated[bool, typer.Option(
        "--publish",
        help="kdtune keeps a hypervolume chart, metric names and a note naming the knee trial "
             "current in every kdtune study; the browser stays read-only")] = False,
    allow_writes: Annotated[bool, typer.Option(
        "--allow-writes",
        help="--publish, and let the browser's notes, renames and deletions through")] = False,
    refresh: Annotated[float, typer.Option(
        "--refresh", min=1.0, metavar="SECONDS",
        help="with --publish or --allow-writes: seconds between two updates of the charts "
             "and notes")] = 60.0,
) -> None:
    """Serve optuna-dashboard: read-only, writing nothing to the studies unless --publish
    (kdtune's charts and notes) or --allow-writes (the browser too); beyond 127.0.0.1 only
    with $KDTUNE_DASHBOARD_TOKEN."""
    from kdtune.study.dashboard.server import serve

    serve(storage, host=host, port=port, allow_writes=allow_writes, refresh=refresh,
          publish_charts=publish)


@app.command("demo")
def demo_cmd(
    workers: Annotated[int, typer.Option(
        "--workers", "-w", min=1, help="local worker processes")] = 2,
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="trial budget")] = 8,
) -> None:
    """Everything on the embedded default: data, teacher, a small study, Pareto, export."""
    from kdtune.study.cli.demo import run_demo

    run_demo(workers=workers, trials=trials)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (see the module docstring for errors and signals)."""
    import warnings

    # Optuna's experimental flags (heartbeats, metric names, retry callbacks), and its warning
    # on every ask about the heartbeats kdtune workers run themselves: nothing users can act on.
    warnings.filterwarnings("ignore", message=r".*(experimental|deprecated).*")
    warnings.filterwarnings("ignore", message=r"Heartbeat of storage is supposed to be used")
    warnings.formatwarning = _warning_line
    _state["debug"] = False
    debug_env = os.environ.get(DEBUG_ENV)
    stops = StopSignals()
    try:
        with stops:
            code = _invoke(argv)
    except KeyboardInterrupt:  # a signal between the command's end and the handlers' reset
        return stopped(Stopped(signal.SIGINT))
    except Stopped as e:
        return stopped(e)
    finally:  # --debug of this call only (tests call main() many times in one process)
        if debug_env is None:
            os.environ.pop(DEBUG_ENV, None)
    signum = stops.last()
    if code == 0 and signum is not None:  # the command (a worker) caught the signal itself
        return stopped(Stopped(signum))
    return code


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A Python warning as one ``kdtune: warning:`` line (no source file and line)."""
    return f"kdtune: warning: {message}\n"


def _invoke(argv: list[str] | None) -> int:
    """Run the command line; map every way it can end to an exit code."""
    import click

    command = typer.main.get_command(app)
    # typer >= 0.29 raises its own copies of click's Exit/Abort/UsageError classes.
    exits = (click.exceptions.Exit, typer.Exit)
    aborts = (click.exceptions.Abort, typer.Abort)
    try:
        rv = command.main(args=argv, prog_name="kdtune", standalone_mode=False)
    except exits as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except aborts:
        sys.stderr.write("kdtune: aborted\n")
        return 130
    except KeyboardInterrupt:
        return stopped(Stopped(signal.SIGINT))
    except Stopped as e:
        return stopped(e)
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click's usage errors
            return usage_error(e)
        return report(e, _state["debug"])
    if rv == 130:  # typer turns a KeyboardInterrupt into exit code 130, silently
        return stopped(Stopped(signal.SIGINT))
    return 0
