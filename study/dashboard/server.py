"""``kdtune dashboard``: optuna-dashboard on kdtune's study storage.

:func:`serve` serves the dashboard on the very storage object kdtune itself uses
(:func:`kdtune.storage.make_storage`), under waitress behind :class:`~.auth.DashboardGate`.
Read-only (the default), it writes nothing to the storage. With ``publish`` (or
``allow_writes``, which also lets the browser write) it keeps a hypervolume chart and a note
in every kdtune study current (:mod:`.charts`): once before serving, then every ``refresh``
seconds.

Why: docs/design.md, "Dashboard serving", "Dashboard hypervolume charts".
"""

from __future__ import annotations

import ipaddress
import os
from contextlib import nullcontext
from typing import Any

from kdtune.errors import KdtuneError, UsageError
from kdtune.storage import describe, make_storage

from .charts import Refresher, publish

DEFAULT_REFRESH = 60.0
"""Seconds between two updates of the charts and notes by a writable dashboard."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def dashboard_url(host: str, port: int) -> str:
    """The URL of the dashboard page for a listening ``host`` and ``port``."""
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard"


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` for a moment, as the dashboard's server will (address reuse on).

    Raises:
        KdtuneError: one line: ``port N is in use`` or why it cannot be listened on.
    """
    import errno
    import socket

    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise KdtuneError(f"cannot serve on {where}: unknown host {host!r} ({e.strerror})") from e
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise KdtuneError(f"cannot serve on {where}: port {port} is in use; "
                              "choose another with --port") from e
        raise KdtuneError(f"cannot serve on {where}: {e.strerror or e}") from e


def serve(storage: str | None = None, host: str = "127.0.0.1", port: int = 8080,
          allow_writes: bool = False, refresh: float = DEFAULT_REFRESH,
          publish_charts: bool = False) -> None:
    """Serve optuna-dashboard on a kdtune storage until interrupted.

    Checks first, before anything is printed or written: the port, the refresh interval,
    the token (:func:`~.auth.token_from_env`), that a non-loopback ``host`` has a token, and
    that ``host:port`` can be listened on (:func:`check_port_free`). Read-only, it then
    writes nothing to the storage. With ``publish_charts`` or ``allow_writes`` it brings
    every kdtune study's
    chart, note and metric names up to date (:func:`~.charts.publish`) and keeps them so
    every ``refresh`` seconds while serving (:class:`~.charts.Refresher`). Then it prints
    the URL and serves (:func:`run_wsgi`).

    Args:
        storage: a storage spec (None: ``$KDTUNE_STORAGE``, else the embedded server).
        host: address to listen on; anything but loopback needs a token.
        port: TCP port.
        allow_writes: let the dashboard's notes, renames, deletions and "tell" through,
            and let kdtune write its charts and notes into the studies.
        refresh: seconds between two updates of kdtune's charts and notes.
        publish_charts: let kdtune (not the browser) write its charts, notes and metric
            names; the browser stays read-only unless ``allow_writes``.

    Raises:
        UsageError: ``port`` is out of range; ``refresh`` is not positive; the token is
            unreadable or too short; a non-loopback ``host`` without a token.
        StorageError: the storage cannot be reached.
        KdtuneError: the port cannot be listened on (already in use, not permitted, an
            address not of this machine).
    """
    from optuna_dashboard import wsgi

    from .auth import (
        DEFAULT_USER,
        TOKEN_ENV,
        TOKEN_FILE_ENV,
        USER_ENV,
        DashboardGate,
        token_from_env,
    )

    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    if not refresh > 0:
        raise UsageError(f"--refresh must be a positive number of seconds, got {refresh:g}")
    token = token_from_env()
    if token is None and not is_loopback(host):
        raise UsageError(f"refusing to serve on {host} without authentication (optuna-dashboard "
                         f"has none of its own): set {TOKEN_ENV} or {TOKEN_FILE_ENV}, or "
                         "listen on 127.0.0.1")
    check_port_free(host, port)
    st = make_storage(storage)
    writes = allow_writes or publish_charts
    if writes:
        done = publish(st)
        current = sum(1 for v in done.values() if not v.startswith(("failed", "no complete")))
        print(f"kdtune: hypervolume chart and knee note current in {current} of {len(done)} "
              f"kdtune studies; refreshed every {refresh:g} s (--refresh)", flush=True)
    else:
        print("kdtune: read-only: nothing is written to the studies (no hypervolume chart, "
              "no kdtune note; --publish keeps them current)", flush=True)
    user = os.environ.get(USER_ENV) or DEFAULT_USER
    access = ("token required (HTTP basic as user " + repr(user) + ", or a bearer token)"
              if token else "no authentication, loopback only")
    mode = "read and write" if allow_writes else "read-only"
    print(f"kdtune: optuna-dashboard for {describe(storage)} at {dashboard_url(host, port)} "
          f"({access}; {mode}; Ctrl-C to stop)", flush=True)
    app = DashboardGate(wsgi(st), token, user=user, allow_writes=allow_writes)
    try:
        with Refresher(st, refresh) if writes else nullcontext():
            run_wsgi(app, host, port)
    except OSError as e:
        raise KdtuneError(f"cannot serve on {host}:{port}: {e.strerror or e}") from e


def run_wsgi(app: Any, host: str, port: int, threads: int = 4) -> None:
    """Serve a WSGI ``app`` with waitress until interrupted (Ctrl-C or SIGTERM ends it)."""
    from waitress import create_server

    server = create_server(app, host=host, port=port, threads=threads, ident="kdtune")
    try:
        server.run()
    finally:  # let running requests end before the trigger they signal is closed
        server.task_dispatcher.shutdown(timeout=5)
        server.close()
