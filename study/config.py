"""The study config: one YAML file, validated once into a frozen :class:`StudyConfig`.

Flow: YAML (+ ``--set a.b.c=value`` overrides) -> :func:`load_config` -> StudyConfig. The whole
config is stored with the study (as a study user attribute) and read back by
:func:`config_from_json`. Validation covers each key's type and allowed values (pydantic), the
cross-field rules and what the config names (the teacher and the data: :func:`study_problems`);
every problem is one line of the same :class:`~kdtune.errors.ConfigError`.

Why: docs/design.md, "Config validated once, completely", "Config stored with the study".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from kdtune import frozen
from kdtune.errors import ConfigError
from kdtune.frozen import FrozenModel
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.measure import catalogue
from kdtune.objectives.search.checks import check_distill, check_teacher_fit, teacher_facts
from kdtune.objectives.search.space import SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from kdtune.objectives.teacher.fit import TeacherFitConfig

SamplerName = Literal["nsga2", "tpe", "random", "gp"]

BINARY_OBJECTIVES = ("accuracy_student", "sigma")
"""The default objectives for a binary teacher (K = 2): the paper's sigma, on class
``distill.eval.reference_class``."""

MULTICLASS_OBJECTIVES = ("accuracy_student", "sigma_max")
"""The default objectives when the teacher has K > 2 classes: sigma on one class is diluted
by the inputs of the others (their Δ on it is near 0), so the largest per-class sigma."""


class SamplerConfig(FrozenModel):
    """Which Optuna sampler suggests parameters. Each worker adds its own worker index to
    ``seed`` so parallel NSGA-II / random workers do not suggest identical parameters."""

    name: SamplerName = "nsga2"
    seed: int | None = 0
    population_size: int = Field(8, ge=2, description="NSGA-II population per generation")
    n_startup_trials: int = Field(6, ge=0, description="random trials before TPE / GP model")


class StudyConfig(FrozenModel):
    """A kdtune study: what to distil, what to search, what to optimise, where to store it.

    ``objectives`` are metric names from :mod:`kdtune.objectives.measure.catalogue`. Left out, they
    default to the teacher's number of classes K: ``[accuracy_student, sigma]`` for K = 2
    (the paper's binary definition, sigma on class ``distill.eval.reference_class``) and
    ``[accuracy_student, sigma_max]`` for K > 2 (the largest sigma over reference classes;
    every trial also stores ``sigma_per_class``). The teacher is looked at only by the
    complete check (:func:`load_config`, :func:`validate_with_overrides` with ``check``),
    which writes the resolved objectives into the config the study stores; :func:`validate`
    alone looks nothing up and keeps the binary default. ``sigma`` stays available by name
    for any K (``objectives: [accuracy_student, sigma]``).
    """

    name: str = Field(min_length=1)
    storage: str | None = Field(None, description="null: embedded PostgreSQL")
    distill: DistillConfig
    search: SearchSpace = SearchSpace()
    objectives: tuple[str, ...] = Field(
        BINARY_OBJECTIVES, description="default: [accuracy_student, sigma] for a binary "
        "teacher, [accuracy_student, sigma_max] for more than two classes")
    sampler: SamplerConfig = SamplerConfig()
    n_trials: int = Field(20, ge=1, description="trial budget across all workers")
    epoch_budget: int | None = Field(
        None, ge=1, description="compute budget: workers take no new trial once the study's "
        "trials have trained this many epochs in all (null: n_trials alone)")
    max_retries: int = Field(2, ge=0, description="re-queues of a trial that raised or died")
    heartbeat_interval: int = Field(10, ge=1, description="seconds between worker heartbeats")
    grace_period: int | None = Field(None, ge=1, description="default 3 x heartbeat_interval")
    stop_after_failures: int = Field(3, ge=0, description="stop the study when its first N "
                                     "trials all fail with the same error (0: never)")

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one objective is needed")
        for name in v:
            catalogue.direction(name)  # ValueError naming the accepted objectives
        if len(set(v)) != len(v):
            raise ValueError(f"objectives repeat a metric: {list(v)}")
        return v

    @property
    def directions(self) -> list[str]:
        """The study direction of each objective, in order (from the metric catalogue)."""
        return [catalogue.direction(name) for name in self.objectives]


# ---------------------------------------------------------------------------------------
# Loading


def study_problems(cfg: StudyConfig) -> list[str]:
    """Every problem of a study config beyond its keys' own rules, one line each.

    The teacher and the data it names, the labels they share, and the cross-field rules of
    the distillation config and its search space
    (:func:`kdtune.objectives.search.checks.check_distill`).
    """
    problems = check_distill(cfg.distill, "distill", cfg.search, "search")
    int8 = [name for name in cfg.objectives if name.endswith("_int8")]
    if int8 and not cfg.distill.eval.int8:
        problems.append(f"objectives: {', '.join(int8)} need distill.eval.int8: true (the "
                        "student measured after INT8 quantisation)")
    return problems


def default_objectives(classes: int) -> tuple[str, ...]:
    """The default objectives for a teacher with ``classes`` classes (K)."""
    return MULTICLASS_OBJECTIVES if classes > 2 else BINARY_OBJECTIVES


def resolve_objectives(cfg: StudyConfig, classes: int | None = None) -> StudyConfig:
    """``cfg`` with its default objectives chosen for the teacher's K (see
    :class:`StudyConfig`); unchanged when the config names its objectives.

    ``classes`` defaults to the number of labels the teacher's config declares (read from
    its config file, no weights).
    """
    if "objectives" in cfg.model_fields_set:
        return cfg
    if classes is None:
        classes = len(teacher_facts(cfg.distill.teacher).label_names)
    return cfg.model_copy(update={"objectives": default_objectives(classes)})


def _checked(cfg: StudyConfig) -> StudyConfig:
    try:
        return resolve_objectives(cfg)
    except ValueError as e:  # the check read the same teacher, so this is rare
        raise ConfigError([f"distill.teacher: {e}"]) from e


def validate(raw: dict) -> StudyConfig:
    """Plain data -> StudyConfig: keys, types and values only (nothing is looked up, so
    left-out objectives keep the binary default; see :func:`resolve_objectives`)."""
    return frozen.validate(raw, StudyConfig)


def validate_with_overrides(
    raw: dict, overrides: list[str] | tuple[str, ...], *, check: bool = False
) -> StudyConfig:
    """Plain data with ``--set`` overrides -> StudyConfig; with ``check`` also
    :func:`study_problems`, all problems in one :class:`~kdtune.errors.ConfigError`."""
    if not check:
        return frozen.validate_with_overrides(raw, overrides, StudyConfig)
    return _checked(frozen.validate_with_overrides(raw, overrides, StudyConfig, study_problems))


def load_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), *, check: bool = True
) -> StudyConfig:
    """Read a study config file, apply ``--set`` overrides and validate it completely.

    With ``check`` (the default) the teacher and the data are looked at too
    (:func:`study_problems`): every problem is reported in one
    :class:`~kdtune.errors.ConfigError` before anything is created. ``check=False`` checks
    the file's keys and values only. The complete check also resolves the default
    objectives for the teacher's number of classes (:func:`resolve_objectives`).
    """
    if not check:
        return frozen.load_config(path, StudyConfig, overrides)
    return _checked(frozen.load_config(path, StudyConfig, overrides, study_problems))


def output_problems(output: str | Path, key: str = "--output") -> list[str]:
    """A directory a command will create must not exist yet, unless empty."""
    path = Path(output).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "is a file" if not path.is_dir() else "exists and is not empty"
        return [f"{key}: {path} {what}"]
    return []


def load_teacher_fit(
    path: str | Path | None, overrides: list[str] | tuple[str, ...], output: str | Path
) -> TeacherFitConfig:
    """A ``kdtune teacher fit`` config (file or defaults, plus overrides), completely checked:
    its keys, its base checkpoint and data, and that ``output`` is free."""
    from kdtune.objectives.teacher.fit import TeacherFitConfig  # torch: only for teacher fit

    raw = frozen.read_yaml(path) if path is not None else {}
    problems = output_problems(output)
    try:
        cfg = frozen.validate_with_overrides(
            raw, overrides, TeacherFitConfig, lambda c: check_teacher_fit(c.base, c.data))
    except ConfigError as e:
        raise ConfigError(problems + e.problems) from e
    if problems:
        raise ConfigError(problems)
    return cfg


def config_from_json(text: str) -> StudyConfig:
    """The config a study stores (its keys are not checked against the world again)."""
    return validate(json.loads(text))
