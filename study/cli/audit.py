"""``kdtune audit``, and what ``kdtune audit --config`` takes from a study's or an exported
config.

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
from typing import Annotated, Any

import typer

from kdtune import frozen
from kdtune.errors import ConfigError, UsageError
from kdtune.objectives.distillation.config import DistillConfig

from ..export.file import read_checked
from .common import AuditSetOpt, JsonOpt, print_json

__all__ = ["audit_options", "audit_overrides", "audit_settings", "register_audit_command"]

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


def audit_overrides(overrides: list[str]) -> list[str]:
    """``--set`` items as :class:`~kdtune.objectives.measure.audit.AuditConfig` keys: spelled
    as in a study config (``distill.data.max_length=128``, as ``kdtune run`` takes them) or
    without the ``distill.`` prefix (``data.max_length=128``)."""
    from kdtune.frozen import relative_overrides

    return relative_overrides(overrides, "distill")


def register_audit_command(app: typer.Typer) -> None:
    """Add ``audit`` to ``app``."""
    app.command("audit")(audit_cmd)


def audit_cmd(
    teacher_preds: Annotated[Path | None, typer.Option(
        "--teacher-preds", help="the teacher's predictions: a CSV of label, p0..pK-1")] = None,
    student_preds: Annotated[Path | None, typer.Option(
        "--student-preds", help="the student's predictions, the same rows")] = None,
    teacher: Annotated[str | None, typer.Option("--teacher", help="teacher directory")] = None,
    student: Annotated[str | None, typer.Option("--student", help="student directory")] = None,
    overrides: AuditSetOpt = None,
    split: Annotated[str, typer.Option("--split", help="train, eval or test")] = "test",
    kappa: Annotated[float | None, typer.Option("--kappa", help="default 0.05")] = None,
    reference_class: Annotated[int | None, typer.Option(
        "--reference-class", help="class c of sigma (default 0)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="study or exported config: "
                                                "its teacher, data and max length")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Confidence-preservation report from prediction files or from two model directories.

    Data options for model directories come from --config (a study's or `kdtune export`'s
    file: --split eval then reproduces a trial's sigma) and --set distill.data.source=...
    overrides (or data.source=...).
    """
    from kdtune.objectives.measure.audit import audit, audit_models, print_audit

    opts = audit_options(config, teacher, student, kappa, reference_class)
    teacher, kappa, reference_class = opts["teacher"], opts["kappa"], opts["reference_class"]
    given = [x is not None for x in (teacher_preds, student_preds, teacher, student)]
    if given not in ([True, True, False, False], [False, False, True, True]):
        raise UsageError("give --teacher-preds and --student-preds, or --teacher and "
                         "--student (one pair, both of it)")
    if teacher_preds is not None:
        report = audit(teacher_preds, student_preds, kappa=kappa,
                       reference_class=reference_class)
    else:
        report = audit_models(teacher, student, audit_overrides(overrides or []),
                              split=split, kappa=kappa,
                              reference_class=reference_class, base=opts["base"])
    if as_json:
        print_json(report)
    else:
        print_audit(report)
