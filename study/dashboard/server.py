"""``kdtune dashboard``: optuna-dashboard on kdtune's study storage, plus hypervolume charts.

:func:`serve` serves the dashboard on the very storage object kdtune itself uses
(:func:`kdtune.storage.make_storage`), under waitress behind
:class:`~.auth.DashboardGate`. Before serving, it saves a hypervolume chart into every
kdtune study (:func:`publish_hypervolume`) as a user-defined plotly graph object, which the
dashboard shows on the study page.

Why: docs/design.md, "Dashboard serving", "Dashboard hypervolume charts".
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import optuna

from kdtune.attrs import STUDY_CONFIG
from kdtune.errors import KdtuneError, UsageError
from kdtune.storage import describe, make_storage

from ..config import config_from_json
from ..front import complete_trials, hypervolume_history, reference_point

HYPERVOLUME_GRAPH_ID = "kdtune-hypervolume"
"""The id under which the hypervolume chart is saved in each study (overwritten each time)."""

_log = logging.getLogger(__name__)


class _PlotlyJSON:
    """A plotly figure already in JSON form.

    :func:`optuna_dashboard.save_plotly_graph_object` only calls ``figure.to_json()`` and
    stores the result; this object provides exactly that, without the plotly package.
    """

    def __init__(self, figure: dict[str, Any]) -> None:
        self._figure = figure

    def to_json(self) -> str:
        return json.dumps(self._figure)


def hypervolume_figure(
    history: Sequence[tuple[int, float]], ref: Sequence[float], objectives: Sequence[str],
    title: str = "Hypervolume history",
) -> dict[str, Any]:
    """A plotly figure (as plain JSON data) of ``(trial number, hypervolume)`` pairs."""
    shown = ", ".join(f"{m}={r:g}" for m, r in zip(objectives, ref, strict=True))
    return {
        "data": [{
            "type": "scatter",
            "mode": "lines+markers",
            "name": "hypervolume",
            "x": [n for n, _ in history],
            "y": [h for _, h in history],
            "line": {"shape": "hv"},
        }],
        "layout": {
            "title": {"text": f"{title}<br><sub>reference point: {shown}</sub>"},
            "xaxis": {"title": {"text": "trial"}},
            "yaxis": {"title": {"text": "hypervolume"}},
        },
    }


def publish_hypervolume(storage: optuna.storages.BaseStorage) -> dict[str, str]:
    """Save a hypervolume-history chart into every kdtune study in ``storage``.

    Studies that kdtune did not create, that have one objective or no complete trials yet
    are left alone. A study whose chart fails is logged and skipped: the dashboard must
    still start.

    Returns:
        ``{study name: what happened}``: ``"saved"`` or the reason it was skipped.
    """
    from optuna_dashboard import save_plotly_graph_object

    outcome: dict[str, str] = {}
    for summary in storage.get_all_studies():
        raw = summary.user_attrs.get(STUDY_CONFIG)
        if raw is None:
            continue  # not a kdtune study
        name = summary.study_name
        try:
            cfg = config_from_json(json.dumps(raw))
            if len(cfg.objectives) < 2:
                outcome[name] = "one objective: no hypervolume"
                continue
            study = optuna.load_study(study_name=name, storage=storage,
                                      sampler=optuna.samplers.RandomSampler())
            trials = complete_trials(study)
            if not trials:
                outcome[name] = "no complete trials yet"
                continue
            ref = reference_point(cfg, trials)
            history = hypervolume_history(study, cfg, ref)
            figure = hypervolume_figure(history, ref, cfg.objectives,
                                        f"{name}: hypervolume of the Pareto front")
            save_plotly_graph_object(study, _PlotlyJSON(figure),
                                     graph_object_id=HYPERVOLUME_GRAPH_ID)
            outcome[name] = "saved"
        except Exception as e:  # one bad study must not keep the dashboard from starting
            _log.warning("no hypervolume chart for study %r: %s", name, e)
            outcome[name] = f"failed: {type(e).__name__}: {e}".splitlines()[0]
    return outcome


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
          allow_writes: bool = False) -> None:
    """Serve optuna-dashboard on a kdtune storage until interrupted.

    Checks first, before anything is printed or written: the port, the token
    (:func:`~.dashboard_auth.token_from_env`), that a non-loopback ``host`` has a token, and
    that ``host:port`` can be listened on (:func:`check_port_free`). Then saves a hypervolume
    chart into every kdtune study (:func:`publish_hypervolume`), prints the URL and serves
    (:func:`run_wsgi`).

    Args:
        storage: a storage spec (None: ``$KDTUNE_STORAGE``, else the embedded server).
        host: address to listen on; anything but loopback needs a token.
        port: TCP port.
        allow_writes: let the dashboard's notes, renames, deletions and "tell" through.

    Raises:
        UsageError: ``port`` is out of range; the token is unreadable or too short; a
            non-loopback ``host`` without a token.
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
    token = token_from_env()
    if token is None and not is_loopback(host):
        raise UsageError(f"refusing to serve on {host} without authentication (optuna-dashboard "
                         f"has none of its own): set {TOKEN_ENV} or {TOKEN_FILE_ENV}, or "
                         "listen on 127.0.0.1")
    check_port_free(host, port)
    st = make_storage(storage)
    charts = publish_hypervolume(st)
    saved = sum(1 for v in charts.values() if v == "saved")
    print(f"kdtune: hypervolume charts saved in {saved} of {len(charts)} kdtune studies",
          flush=True)
    user = os.environ.get(USER_ENV) or DEFAULT_USER
    access = ("token required (HTTP basic as user " + repr(user) + ", or a bearer token)"
              if token else "no authentication, loopback only")
    mode = "read and write" if allow_writes else "read-only"
    print(f"kdtune: optuna-dashboard for {describe(storage)} at {dashboard_url(host, port)} "
          f"({access}; {mode}; Ctrl-C to stop)", flush=True)
    app = DashboardGate(wsgi(st), token, user=user, allow_writes=allow_writes)
    try:
        run_wsgi(app, host, port)
    except OSError as e:
        raise KdtuneError(f"cannot serve on {host}:{port}: {e.strerror or e}") from e


def run_wsgi(app: Any, host: str, port: int, threads: int = 4) -> None:
    """Serve a WSGI ``app`` with waitress until interrupted (Ctrl-C or SIGTERM ends it)."""
    from waitress import create_server

    server = create_server(app, host=host, port=port, threads=threads, ident="kdtune")
    try:
        server.run()
    finally:
        server.close()
