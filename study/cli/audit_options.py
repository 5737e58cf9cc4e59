"""What ``kdtune audit --config`` takes from a study's or an exported config.

A trial's sigma is measured on the study's data: its source, split sizes and seed, and its
tokenisation (``data.max_length``: a different truncation gives the models different
inputs, hence different probabilities). :func:`audit_options` reads the ``distill`` section
of a study config, of a ``kdtune export`` file (its checksum verified first) or a bare
DistillConfig, and supplies the teacher, the data, the device, ``eval.kappa`` and
``eval.reference_class`` wherever the command line leaves them out. Auditing a trial's
student on ``--split eval`` with its study's config reproduces the trial's sigma.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdtune import frozen
from kdtune.errors import ConfigError
from kdtune.objectives.distillation.config import DistillConfig

from ..export.file import read_checked

__all__ = ["audit_options", "audit_settings"]

DEFAULT_KAPPA = 0.05
DEFAULT_REFERENCE_CLASS = 0


def audit_settings(path: Path) -> dict[str, Any]:
    """The audit settings of a config file.

    Returns:
        ``{"teacher", "kappa", "reference_class", "base"}``: ``base`` is the
        :class:`~kdtune.objectives.measure.audit.AuditConfig` data (``data`` with ``max_length``,
        ``device``) that ``--set`` overrides apply on top of.

    Raises:
        ConfigError: the file does not hold a valid distill config (problems named with
            the file and the key).
    """
    raw = read_checked(Path(path))
    nested = isinstance(raw, dict) and isinstance(raw.get("distill"), dict)
    section = raw["distill"] if nested else raw
    try:
        cfg: DistillConfig = frozen.validate(section, DistillConfig)
    except ConfigError as e:
        where = f"--config {path}: " + ("distill." if nested else "")
        raise ConfigError([where + p for p in e.problems]) from e
    return {"teacher": cfg.teacher, "kappa": cfg.eval.kappa,
            "reference_class": cfg.eval.reference_class,
            "base": {"data": json.loads(cfg.data.model_dump_json()), "device": cfg.device}}


def audit_options(config: Path | None, teacher: str | None, student: str | None,
                  kappa: float | None, reference_class: int | None) -> dict[str, Any]:
    """The audit's teacher, kappa, reference class and ``base``, the command line first.

    Without ``config`` the defaults are kappa 0.05 and class 0 and ``base`` is ``None``;
    with it, the config fills in what is ``None`` (the teacher only when a ``student`` is
    given: prediction files have no teacher to fill in).
    """
    found = audit_settings(config) if config is not None else {}
    return {
        "teacher": teacher if teacher is not None or student is None else found["teacher"],
        "kappa": kappa if kappa is not None else found.get("kappa", DEFAULT_KAPPA),
        "reference_class": reference_class if reference_class is not None
        else found.get("reference_class", DEFAULT_REFERENCE_CLASS),
        "base": found.get("base"),
    }
