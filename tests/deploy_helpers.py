"""Shared by the deployment tests: the repository's deployment paths, the patterns they are
checked against, and the real CLI that every ``kdtune`` command line in them is parsed by."""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path
from types import ModuleType

import typer

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"
K8S_DIR = REPO / "deploy" / "k8s"

KDTUNE_IMAGE = re.compile(r"^(?:[\w.-]+(?::\d+)?/)*kdtune:")
# a tag that names a version: 16.15-bookworm, 3.11.15-slim-bookworm, 0.1.0
PINNED_TAG = re.compile(r":\d+(\.\d+)+([-.\w]*)?(@sha256:[0-9a-f]{64})?$")
# user:password@ in a URL
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]+:([^@\s]*)@", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# Parsing a command line with the real CLI, without running it


def kdtune_cli() -> tuple[object, ModuleType]:
    """The ``kdtune`` command and the ``exceptions`` module of the click it is built on.

    Recent typer releases ship their own copy of click (``typer._click``), whose exceptions
    are not ``click``'s; this finds whichever one the command really uses.
    """
    from kdtune.study.cli import app

    command = typer.main.get_command(app)
    for klass in type(command).__mro__:
        module = klass.__module__
        if module.endswith(".core") and module != "typer.core":
            package = module.rsplit(".", 1)[0]
            return command, importlib.import_module(f"{package}.exceptions")
    raise AssertionError(f"no click core class in {type(command).__mro__}")


def cli_error() -> type[Exception]:
    """The base class of the CLI's parsing errors (unknown option, missing option...)."""
    return kdtune_cli()[1].ClickException


def parse_kdtune(argv: list[str]):
    """Parse ``kdtune ARGV`` down to the leaf command's context; nothing is invoked.

    ``make_context`` parses and converts every parameter but never calls a callback, so an
    unknown option, a missing required option or argument, a bad value or an unknown
    subcommand raise the CLI's click errors here exactly as in the container.
    """
    command, exceptions = kdtune_cli()
    ctx = command.make_context("kdtune", list(argv))
    while hasattr(command, "resolve_command"):  # a group: walk into the subcommand
        rest = _remaining(ctx)
        if not rest:
            raise exceptions.UsageError("no subcommand given", ctx=ctx)
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def _remaining(ctx) -> list[str]:
    """A group's unparsed tokens (the subcommand and its arguments), across click versions:
    the subcommand sits in ``_protected_args`` (``protected_args``, deprecated, in click
    8.x; typer's copy has only the private name)."""
    protected = vars(ctx).get("_protected_args")
    if protected is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            protected = getattr(ctx, "protected_args", None) or []
    return [*protected, *ctx.args]
