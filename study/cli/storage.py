"""``kdtune storage ...``: the embedded PostgreSQL server, and the storage URL."""

from __future__ import annotations

from typing import Annotated

import typer

from kdtune.errors import StorageError, UsageError

from .common import JsonOpt, StorageOpt, emit, warn

storage_app = typer.Typer(help="Where studies live: the embedded PostgreSQL server or a URL.",
                          no_args_is_help=True)


@storage_app.command("url")
def storage_url_cmd(storage: StorageOpt = None, as_json: JsonOpt = False) -> None:
    """Print the storage URL (password masked), starting the embedded server if needed."""
    from kdtune.storage import mask_url, storage_url

    url = mask_url(storage_url(storage))
    emit(as_json, {"url": url}, url)


@storage_app.command("start")
def storage_start_cmd() -> None:
    """Start the embedded PostgreSQL server (it keeps running after this exits)."""
    from kdtune.storage import embedded

    url = embedded.start()
    typer.echo(f"embedded PostgreSQL running in {embedded.data_dir()}: {url}")


@storage_app.command("stop")
def storage_stop_cmd(
    force: Annotated[bool, typer.Option(
        "--force", help="stop even while workers or other clients are connected")] = False,
) -> None:
    """Stop the embedded PostgreSQL server; refused while clients (workers) are connected."""
    from kdtune.storage import embedded

    st = embedded.status()
    if not st.running:
        typer.echo("not running")
        return
    try:
        clients = embedded.client_count()
    except StorageError as e:
        if not force:
            raise StorageError(f"{e}; give --force to stop it without counting its "
                               "clients") from e
        clients = 0
    if clients and not force:
        raise UsageError(
            f"{_connections(clients)} {'is' if clients == 1 else 'are'} open to the embedded "
            "PostgreSQL server (workers, a dashboard?); stop those clients first, or give "
            "--force to stop it anyway")
    if clients:
        warn(f"stopping the embedded PostgreSQL server with {_connections(clients)} open; "
             "its clients will lose them")
    typer.echo("stopped" if embedded.stop() else "not running")


def _connections(n: int) -> str:
    return f"{n} client connection{'' if n == 1 else 's'}"


@storage_app.command("status")
def storage_status_cmd(as_json: JsonOpt = False) -> None:
    """Say whether the embedded PostgreSQL server is running."""
    from kdtune.storage import embedded

    st = embedded.status()
    data = {"running": st.running, "data_dir": str(st.data_dir), "pid": st.pid, "url": st.url()}
    emit(as_json, data, f"embedded PostgreSQL: {'running' if st.running else 'stopped'} "
         f"({st.data_dir})" + (f", pid {st.pid}, {st.url()}" if st.running else ""))


@storage_app.command("upgrade")
def storage_upgrade_cmd(as_json: JsonOpt = False) -> None:
    """Upgrade an older kdtune's data directory (PostgreSQL 16) to 18, keeping the old one."""
    from kdtune.storage import embedded, embedded_upgrade

    pgdata = embedded.data_dir()
    kept = embedded_upgrade.upgrade()
    version = embedded.postgres_version()
    data = {"upgraded": kept is not None, "data_dir": str(pgdata),
            "kept": str(kept) if kept else None, "postgres_version": version}
    emit(as_json, data, f"nothing to upgrade: {pgdata} is empty or already PostgreSQL {version}"
         if kept is None else f"upgraded {pgdata} to PostgreSQL {version}; the old directory "
         f"is kept as {kept}: delete it once your studies are there")
