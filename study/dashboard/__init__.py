"""``kdtune dashboard``: optuna-dashboard on kdtune's storage, with its access control.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DashboardGate": ".auth",
    "token_from_env": ".auth",
    "check_port_free": ".server",
    "dashboard_url": ".server",
    "hypervolume_figure": ".server",
    "is_loopback": ".server",
    "publish_hypervolume": ".server",
    "run_wsgi": ".server",
    "serve": ".server",
})
