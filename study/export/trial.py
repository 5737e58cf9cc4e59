"""Export a chosen trial as a complete distillation config, and run it for production.

:func:`export_trial` (``kdtune export --pick P``) writes the trial's complete DistillConfig and its
``source`` under a checksum line; :func:`distill_from_file` (``kdtune distill``) trains a student
from it or a bare DistillConfig. The pick rules are :mod:`kdtune.study.export.pick`'s.

Why: docs/design.md, "Export pick rules and source", "Production check on the test split".
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from kdtune import frozen
from kdtune.attrs import THREADS
from kdtune.errors import ConfigError, UsageError
from kdtune.fileio import atomic_directory, atomic_write_text
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.measure.catalogue import METRICS
from kdtune.objectives.search.checks import check_distill

from ..config import output_problems
from ..rescore import seed_summary
from ..service import open_study
from ..verdict import fresh_verdict, stored_verdicts, trial_config
from .card import model_card
from .file import check_writable, read_checked, with_checksum
from .pick import check_rule, pick_description, study_pick
from .teacher import resolve_teacher, teacher_record

TEST_VERDICT = "test_verdict"
"""The export ``source`` key of the trial's stored test verdict (when ``kdtune test`` ran)."""


class ExportSource(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    study: str
    trial: int
    pick: str
    kdtune_version: str
    metrics: dict
    rule: str | None = None


class ExportedConfig(BaseModel):
    """What ``kdtune export`` writes: the config to run and where it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    distill: DistillConfig
    source: ExportSource | None = None


def export_trial(study_name: str, storage: str | None, pick: str, output: Path,
                 rule: str = "plain") -> dict:
    """Write the picked trial's complete DistillConfig and its provenance to ``output``.

    The file appears whole or not at all, under a checksum line. ``rule`` is how
    ``feasible`` reads phi_cnf (:data:`RULES`); the file's ``source.rule`` and the returned
    ``rule`` and ``picked_by`` say which one was used. The returned ``test_verdict`` is the
    trial's stored test verdict (also in the file's ``source``), or ``None``.

    Raises:
        UsageError: ``output`` cannot be written (checked before the study is opened), or
            ``pick`` is not a pick rule, or ``rule`` does not fit it.
        KdtuneError: no trial fits the pick.
    """
    from kdtune import __version__

    output = Path(output)
    check_rule(pick, rule)
    check_writable(output)
    study, cfg = open_study(study_name, storage)
    kappa = cfg.distill.eval.kappa
    seeds = seed_summary(study, cfg)  # kdtune rescore: pick on the seed means
    trial = study_pick(study, cfg, pick, rule, seeds)
    used_rule = rule if pick == "feasible" else None
    picked_by = pick_description(pick, rule, kappa)
    distill_cfg = trial_config(trial)
    if distill_cfg.threads is None and trial.user_attrs.get(THREADS):
        # the trial's thread count: other counts train a different student (measured: a
        # 3x128 polarity student at 2 threads instead of 1, test sigma 0.188 against 0.132)
        distill_cfg = distill_cfg.model_copy(update={"threads": int(trial.user_attrs[THREADS])})
    metrics = {k: trial.user_attrs[k] for k in METRICS if k in trial.user_attrs}
    tested = fresh_verdict(trial, stored_verdicts(study))
    exported = ExportedConfig(
        distill=distill_cfg,
        source=ExportSource(study=study_name, trial=trial.number, pick=pick,
                            kdtune_version=__version__, metrics=metrics, rule=used_rule,
                            teacher=teacher_record(distill_cfg.teacher),
                            **({} if tested is None else {TEST_VERDICT: tested}),
                            **({"seeds": seeds[trial.number]} if trial.number in seeds
                               else {})),
    )
    header = (f"# kdtune {__version__}: trial {trial.number} of study {study_name!r} "
              f"(pick: {picked_by}).\n# Run it with: kdtune distill {output.name} -o student/ "
              "(where the teacher is elsewhere, add --teacher DIR)\n")
    data = json.loads(exported.model_dump_json())
    if used_rule is None:
        del data["source"]["rule"]
    body = yaml.safe_dump(data, sort_keys=False)
    try:
        atomic_write_text(output, with_checksum(header + body))
    except OSError as e:
        raise UsageError(f"-o {output}: cannot write it ({e.strerror or e})") from e
    return {"study": study_name, "trial": trial.number, "pick": pick, "rule": used_rule,
            "picked_by": picked_by, "output": str(output), "metrics": metrics,
            TEST_VERDICT: tested}


def read_distill_config(
    path: Path,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    full_data: bool = False,
    check: bool = False,
    teacher: str | None = None,
) -> DistillConfig:
    """Read an export file (``distill:`` + ``source:``) or a bare DistillConfig YAML.

    An export's checksum line must match the file
    (:func:`~kdtune.study.export.file.verify_export`); a file without one is taken as
    written (a hand-written config).
    With ``full_data`` the training-set size limit is lifted (``data.train_size: null``).
    ``teacher`` replaces the file's teacher (the one :func:`resolve_teacher` found here).
    ``overrides`` name keys as a study config does (``distill.epochs=5``, as ``kdtune run``
    takes them) or relative to the ``distill:`` section (``epochs=5``), for an export and a
    bare DistillConfig alike.
    With ``check`` the config is validated completely
    (:func:`~kdtune.objectives.search.checks.check_distill`, on the config as it will run): every
    problem in one :class:`~kdtune.errors.ConfigError`, keys named as in the file.
    """
    raw = _read_config(Path(path))
    exported = isinstance(raw, dict) and "distill" in raw
    if teacher is not None and isinstance(raw, dict):
        section = raw.get("distill") if exported else raw
        if isinstance(section, dict):
            section["teacher"] = teacher

    def problems(cfg: ExportedConfig | DistillConfig) -> list[str]:
        run = _as_run(cfg.distill if exported else cfg, full_data)
        return check_distill(run, "distill" if exported else "")

    relative = frozen.relative_overrides(overrides, "distill")
    if exported:
        prefixed = [f"distill.{o}" for o in relative]
        cfg = frozen.validate_with_overrides(raw, prefixed, ExportedConfig,
                                             problems if check else None).distill
    else:
        cfg = frozen.validate_with_overrides(raw, relative, DistillConfig,
                                             problems if check else None)
    return _as_run(cfg, full_data)


def _read_config(path: Path) -> dict:
    """The plain data of a distill config file, its checksum verified first if it has one."""
    return read_checked(path)


def _as_run(cfg: DistillConfig, full_data: bool) -> DistillConfig:
    if not full_data or cfg.data.train_size is None:
        return cfg
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"train_size": None})})


def distill_from_file(config: Path, output: Path, overrides: list[str] | tuple[str, ...] = (),
                      progress: bool = True, full_data: bool = True,
                      teacher: str | None = None, refit_teacher: bool = False) -> dict:
    """Production distillation: run the config and save the student to ``output``.

    With ``full_data`` (the default) the training-set size limit a study used for speed is
    lifted (``data.train_size = null``: the whole training split). The student is saved
    with ``save_pretrained`` (model, tokenizer, label names) plus ``kdtune_distill.json``
    (metrics, config) and a model card ``README.md``, written with
    :func:`~kdtune.fileio.atomic_directory`: a failed run leaves nothing half-written.

    After training, the production check (:mod:`kdtune.objectives.distillation.heldout`)
    measures the
    student on the test split with paired bootstrap intervals and writes
    ``production_check.json`` beside it (also in the model card and in the returned
    ``production_check``): the trial's selection-split figures from the export (none for a
    hand-written config), the test figures, and whether phi_cnf holds on test, by sigma and
    by its interval's upper end. The run's own evaluation-split metrics are unchanged.

    The teacher is resolved on this machine first (:func:`resolve_teacher`: ``teacher``,
    i.e. ``--teacher``, the export's path, this home's teacher cache, or with
    ``refit_teacher`` a new fit of the recorded recipe) and must be the one the export
    recorded.

    Raises:
        ConfigError: every problem of the config and of ``output`` (not free), found before
            anything is created.
        UsageError: ``output`` cannot be created (read-only or missing permission), found
            before anything is trained.
    """
    from kdtune.objectives.distillation.heldout import (
        CHECK_FILE,
        measure_test_split,
        production_check,
    )
    from kdtune.objectives.distillation.run import distill

    output = Path(output)
    busy = output_problems(output)
    source = export_source(config)
    given, overrides = _teacher_override(teacher, overrides)
    configured = _configured_teacher(config)
    found = (given if configured is None else
             resolve_teacher((source or {}).get("teacher"), configured, given, refit_teacher))
    try:
        cfg = read_distill_config(config, overrides, full_data=full_data, check=True,
                                  teacher=found)
    except ConfigError as e:
        raise ConfigError(busy + e.problems) from e
    if busy:
        raise ConfigError(busy)
    check_writable(output, directory=True)
    result = distill(cfg, progress=progress)
    started = time.perf_counter()
    test = measure_test_split(cfg, result.student, result.tokenizer, teacher=result.teacher,
                              teacher_tokenizer=result.teacher_tokenizer,
                              splits=result.splits)
    result.timings["test"] = time.perf_counter() - started
    provenance = {**{k: v for k, v in (source or {}).items() if k != "metrics"},
                  "config": str(config), "overrides": list(overrides), "full_data": full_data}
    check = production_check(cfg, test, None if source is None else source.get("metrics"),
                             provenance, result.metrics)
    with atomic_directory(output) as tmp:
        result.student.save_pretrained(tmp, result.tokenizer)
        info = {"metrics": result.metrics, "timings": result.timings,
                "config": json.loads(cfg.model_dump_json())}
        (tmp / "kdtune_distill.json").write_text(json.dumps(info, indent=2, default=str))
        (tmp / CHECK_FILE).write_text(json.dumps(check, indent=2, default=str))
        (tmp / "README.md").write_text(model_card(cfg, result.metrics, check))
    return {**result.metrics, "output": str(output), "production_check": check}


def _configured_teacher(path: Path) -> str | None:
    """The ``teacher`` a config file names (``None`` when it names none: pydantic says so)."""
    raw = _read_config(Path(path))
    section = raw.get("distill") if isinstance(raw, dict) and "distill" in raw else raw
    value = section.get("teacher") if isinstance(section, dict) else None
    return value if isinstance(value, str) else None


def _teacher_override(teacher: str | None, overrides) -> tuple[str | None, list[str]]:
    """``--set teacher=DIR`` (or ``distill.teacher=DIR``) is ``--teacher DIR``: checked
    against the export's teacher."""
    rest = []
    for item, relative in zip(overrides, frozen.relative_overrides(overrides, "distill"),
                              strict=True):
        if teacher is None and relative.partition("=")[0].strip() == "teacher":
            teacher = str(frozen.parse_override(relative)[1])
        else:
            rest.append(item)
    return teacher, rest


def export_source(path: Path) -> dict | None:
    """The ``source`` section of an export file (study, trial, pick, rule, the trial's
    metrics); ``None`` for a hand-written config."""
    raw = _read_config(Path(path))
    if not isinstance(raw, dict) or "distill" not in raw:
        return None
    source = raw.get("source")
    return dict(source) if isinstance(source, dict) else None
