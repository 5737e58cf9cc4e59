"""``kdtune dashboard``: optuna-dashboard on kdtune's storage, with its access control.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DashboardGate": ".auth",
    "token_from_env": ".auth",
    "HYPERVOLUME_GRAPH_ID": ".charts",
    "KNEE_HEADING": ".charts",
    "Refresher": ".charts",
    "hypervolume_figure": ".charts",
    "knee_section": ".charts",
    "publish": ".charts",
    "publish_study": ".charts",
    "check_port_free": ".server",
    "dashboard_url": ".server",
    "is_loopback": ".server",
    "run_wsgi": ".server",
    "serve": ".server",
})
