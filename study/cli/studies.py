"""``kdtune studies``: the studies in a storage, one line each; ``kdtune studies delete``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kdtune.errors import UsageError

from .common import (
    HiddenArgsCommand,
    JsonOpt,
    MaybeStudyOpt,
    OldStudyArg,
    StorageOpt,
    emit,
    one_study,
)

studies_app = typer.Typer(help="List the studies in a storage, or delete one.",
                          no_args_is_help=False, invoke_without_command=True)

COLUMNS = ("study", "state", "trials", "front", "started")


@studies_app.callback()
def list_cmd(ctx: typer.Context, storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Each study: its state (open, running, done, stopped), trials finished of its budget,
    Pareto front size and when its first trial started."""
    if ctx.invoked_subcommand is not None:
        return
    from ..studies import list_studies

    rows = list_studies(storage)
    emit(as_json, rows, "\n".join(study_lines(rows)))


def study_lines(rows: list[dict]) -> list[str]:
    """A table of ``rows`` for the terminal (``no studies yet`` when there are none)."""
    if not rows:
        return ["no studies yet"]
    cells = [[r["study"], r["state"],
              f"{r['trials']}/{r['budget']}" if r["budget"] is not None else str(r["trials"]),
              str(r["front"]), (r["started"] or "-").replace("T", " ")] for r in rows]
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(len(COLUMNS))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [list(COLUMNS), *cells]]


@studies_app.command("delete", cls=HiddenArgsCommand)
def delete_cmd(
    ctx: typer.Context,
    study: MaybeStudyOpt = None,
    old_study: OldStudyArg = None,
    storage: StorageOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a study and all its trials (asks first unless --yes)."""
    from ..studies import delete_study

    name = one_study(ctx, study, old_study)  # `kdtune studies delete NAME`, the older spelling
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"deleting study {name!r} needs --yes (no terminal to confirm on)")
        if not typer.confirm(f"delete study {name!r} and all its trials?"):
            raise typer.Exit(1)
    delete_study(name, storage)
    typer.echo(f"deleted study {name!r}")
