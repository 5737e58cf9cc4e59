"""kdtune: hyperparameter optimisation for knowledge distillation of BERT-style classifiers.

The installed distribution exposes this one package. Its layers, each importing only the
ones below it:

* :mod:`kdtune.study`: the CLI, config validation, studies, workers, export, reports,
  the dashboard launcher.
* :mod:`kdtune.objectives`: everything that trains and measures (data, teacher, student,
  losses, the distillation loop, metrics); only its trial adapter knows Optuna.
* :mod:`kdtune.storage`: storage specs, the embedded PostgreSQL server, the storage factory.
* this package's own small modules, below them all: :mod:`kdtune.errors`,
  :mod:`kdtune.paths`, :mod:`kdtune.fileio`, :mod:`kdtune.frozen`.

In the repository the three layers live in the top-level folders ``study/``,
``objectives/`` and ``storage/`` (mapped into this package by ``pyproject.toml``).
Nothing heavy is imported here: ``import kdtune`` stays cheap.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kdtune")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
