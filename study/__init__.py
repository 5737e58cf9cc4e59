"""kdtune's study service: CLI, config validation, samplers, studies, workers, export,
reports and the dashboard launcher.

Public API: :class:`study.config.StudyConfig` and :func:`study.config.load_config`;
:func:`study.service.create_study`, :func:`study.service.run_study`;
:func:`study.worker.run_worker`; :func:`study.export.export_trial`,
:func:`study.export.distill_from_file`; :func:`study.report.write_report`.
Modules are imported on use, so ``import study`` stays cheap.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kdtune")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
