"""Shared by the deployment tests: the repository's deployment paths, the patterns they are
checked against, and the real CLI that every ``kdtune`` command line in them is parsed by."""

from __future__ import annotations

import importlib
import os
import re
import warnings
from pathlib import Path
from types import ModuleType

import typer

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"
K8S_DIR = REPO / "deploy" / "k8s"

KDTUNE_IMAGE = re.compile(r"^(?:[\w.-]+(?::\d+)?/)*kdtune:")
# a tag that names a version: 16.15-bookworm, 3.11.15-slim-bookworm, 0.1.0, v1.23.1-p2
PINNED_TAG = re.compile(r":v?\d+(\.\d+)+([-.\w]*)?(@sha256:[0-9a-f]{64})?$")
PGBOUNCER_IMAGE = re.compile(r"^(?:[\w.-]+(?::\d+)?/)*edoburu/pgbouncer:")
# user:password@ in a URL
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]+:([^@\s]*)@", re.IGNORECASE)


# PostgreSQL keeps this many connections for superusers (superuser_reserved_connections)
PG_SUPERUSER_RESERVED = 3
# PostgreSQL's max_connections when nothing sets it
PG_DEFAULT_MAX_CONNECTIONS = 100


# ---------------------------------------------------------------------------------------
# Connection arithmetic and PgBouncer settings, shared by the Compose and the k8s checks


def kdtune_pool() -> tuple[int, int]:
    """kdtune's default (pool_size, max_overflow) per process, from the code itself (with
    ``$KDTUNE_DB_POOL_SIZE`` and ``$KDTUNE_DB_MAX_OVERFLOW`` unset, as in the deployments)."""
    from kdtune.storage.factory import StorageSettings

    saved = {k: os.environ.pop(k) for k in ("KDTUNE_DB_POOL_SIZE", "KDTUNE_DB_MAX_OVERFLOW")
             if k in os.environ}
    try:
        settings = StorageSettings()
    finally:
        os.environ.update(saved)
    return settings.pool_size, settings.max_overflow


def max_connections(argv: list[str]) -> int | None:
    """``max_connections`` set on a ``postgres`` command line (``-c max_connections=N``,
    ``-cmax_connections=N`` or ``--max_connections=N``), or None."""
    argv = [str(a) for a in argv]
    for i, arg in enumerate(argv):
        setting = None
        if arg == "-c" and i + 1 < len(argv):
            setting = argv[i + 1]
        elif arg.startswith("-c") and "=" in arg:
            setting = arg[2:]
        elif arg.startswith("--") and "=" in arg:
            setting = arg[2:]
        if setting and setting.split("=", 1)[0].replace("-", "_") == "max_connections":
            return int(setting.split("=", 1)[1])
    return None


def check_pgbouncer_env(env: dict[str, str], upstream: str) -> dict[str, int]:
    """Assert the edoburu/pgbouncer settings kdtune relies on; returns the pool sizes.

    Transaction pooling (kdtune's budget lock is transaction-scoped, so it survives it),
    the startup parameters psycopg2/SQLAlchemy send ignored, SCRAM or MD5 logins, the
    upstream PostgreSQL and database, and the credentials given as DB_USER/DB_PASSWORD (a
    DATABASE_URL would put the password in a URL).
    """
    assert env.get("POOL_MODE") == "transaction", env.get("POOL_MODE")
    ignored = {p.strip() for p in env.get("IGNORE_STARTUP_PARAMETERS", "").split(",")}
    assert {"extra_float_digits", "options"} <= ignored, ignored
    assert env.get("AUTH_TYPE") in ("scram-sha-256", "md5"), env.get("AUTH_TYPE")
    assert env.get("DB_HOST") == upstream, env.get("DB_HOST")
    assert str(env.get("DB_PORT", "5432")) == "5432"
    assert env.get("DB_NAME") == "kdtune" and env.get("DB_USER") == "kdtune"
    assert "DB_PASSWORD" in env
    assert "DATABASE_URL" not in env and "DATABASE_URLS" not in env
    assert str(env.get("LISTEN_PORT", "5432")) == "5432"
    return {
        "max_client_conn": int(env["MAX_CLIENT_CONN"]),
        "default_pool_size": int(env["DEFAULT_POOL_SIZE"]),
        "reserve_pool_size": int(env.get("RESERVE_POOL_SIZE", 0)),
    }


def check_connection_arithmetic(text: str, max_conn: int | None, pool: dict[str, int],
                                pooler_replicas: int, direct_processes: int,
                                pooled_processes: int) -> None:
    """``max_connections`` raised explicitly and big enough for the pooler's server
    connections plus the processes that connect directly; the pooler takes the clients of
    every pooled process; the comment in ``text`` states kdtune's per-process arithmetic."""
    text = re.sub(r"\s*\n\s*#?\s*", " ", text)  # comments joined across lines
    pool_size, overflow = kdtune_pool()
    per_process = pool_size + overflow
    assert f"pool {pool_size} + overflow {overflow} = {per_process}" in text, (
        "the comment on max_connections must state kdtune's connections per process"
    )
    without = PG_DEFAULT_MAX_CONNECTIONS // per_process
    assert f"{without} workers" in text, f"the comment must say 100 connections ~ {without} workers"
    assert max_conn is not None, "max_connections is not set on the postgres command line"
    assert max_conn > PG_DEFAULT_MAX_CONNECTIONS, max_conn
    server = pooler_replicas * (pool["default_pool_size"] + pool["reserve_pool_size"])
    needed = server + PG_SUPERUSER_RESERVED + direct_processes * per_process
    assert max_conn >= needed, f"max_connections {max_conn} < {needed}"
    assert pool["default_pool_size"] >= per_process, "one worker's connections at least"
    assert pool["max_client_conn"] >= pooled_processes * per_process, (
        f"MAX_CLIENT_CONN {pool['max_client_conn']} < {pooled_processes} x {per_process}"
    )
    # the pooler is worth it: it takes more workers than PostgreSQL's default could
    assert pool["max_client_conn"] // per_process > without


# ---------------------------------------------------------------------------------------
# Parsing a command line with the real CLI, without running it


def kdtune_cli() -> tuple[object, ModuleType]:
    """The ``kdtune`` command and the ``exceptions`` module of the click it is built on.

    Recent typer releases ship their own copy of click (``typer._click``), whose exceptions
    are not ``click``'s; this finds whichever one the command really uses.
    """
    from kdtune.study.cli.root import app

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
