"""kdtune: hyperparameter optimisation for knowledge distillation of BERT-style classifiers.

Layers, each importing only the ones below it: :mod:`kdtune.study` (the CLI, config validation,
studies, workers, export, reports, the dashboard launcher), :mod:`kdtune.objectives` (everything
that trains and measures; only its trial adapter knows Optuna), :mod:`kdtune.storage` (storage
specs, the embedded PostgreSQL server, the storage factory), then this package's own small modules
(:mod:`kdtune.errors`, :mod:`kdtune.paths`, :mod:`kdtune.fileio`, :mod:`kdtune.frozen`).

Why: docs/design.md, "Package layers".
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kdtune")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
