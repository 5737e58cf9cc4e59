"""The study config: one YAML file, validated once into a frozen :class:`StudyConfig`.

Flow: YAML (+ ``--set a.b.c=value`` overrides) -> :func:`load_config` -> StudyConfig. The
whole config is stored with the study (as a study user attribute), so a worker needs only
the storage and the study name (:func:`config_from_json`).

Errors are one readable line each: an unknown key names the key and lists the valid ones;
a wrong value names the key, what was given and what is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from objectives.config import DistillConfig, SearchSpace
from objectives.metrics import METRIC_DIRECTIONS

SamplerName = Literal["nsga2", "tpe", "random", "gp"]


class ConfigError(ValueError):
    """A config file or override is invalid; the message is one readable line."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplerConfig(_Frozen):
    """Which Optuna sampler suggests parameters. Each worker adds its own worker index to
    ``seed`` so parallel NSGA-II / random workers do not suggest identical parameters."""

    name: SamplerName = "nsga2"
    seed: int | None = 0
    population_size: int = Field(8, ge=2, description="NSGA-II population per generation")
    n_startup_trials: int = Field(6, ge=0, description="random trials before TPE / GP model")


class StudyConfig(_Frozen):
    """A kdtune study: what to distil, what to search, what to optimise, where to store it."""

    name: str = Field(min_length=1)
    storage: str | None = Field(None, description="null: embedded PostgreSQL")
    distill: DistillConfig
    search: SearchSpace = SearchSpace()
    objectives: tuple[str, ...] = ("accuracy_student", "sigma")
    sampler: SamplerConfig = SamplerConfig()
    n_trials: int = Field(20, ge=1, description="trial budget across all workers")
    max_retries: int = Field(2, ge=0, description="re-queues of a trial that raised or died")
    heartbeat_interval: int = Field(10, ge=1, description="seconds between worker heartbeats")
    grace_period: int | None = Field(None, ge=1, description="default 3 x heartbeat_interval")

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one objective is needed")
        for name in v:
            if name not in METRIC_DIRECTIONS:
                raise ValueError(
                    f"unknown objective {name!r}; accepted: {', '.join(sorted(METRIC_DIRECTIONS))}"
                )
        if len(set(v)) != len(v):
            raise ValueError(f"objectives repeat a metric: {list(v)}")
        return v

    @property
    def directions(self) -> list[str]:
        return [METRIC_DIRECTIONS[name] for name in self.objectives]


# ---------------------------------------------------------------------------------------
# Loading, overrides, error messages


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"search.temperature.high=8"`` -> (["search", "temperature", "high"], 8).

    The value is parsed as YAML, so ``8`` is an int, ``null`` is None, ``[1,2]`` a list.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({e})") from e
    return path, value


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of ``raw`` with dotted overrides applied (intermediate dicts created)."""
    data = json.loads(json.dumps(raw))  # deep copy of plain data
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def validate(raw: dict, model: type[BaseModel] = StudyConfig) -> Any:
    """Validate plain data into ``model``, turning pydantic errors into one ConfigError line."""
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of keys, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_error(e, model)) from e


def validate_with_overrides(
    raw: dict, overrides: list[str] | tuple[str, ...], model: type[BaseModel] = StudyConfig
) -> Any:
    """Validate ``raw`` with dotted overrides applied on top of the defaults it implies.

    ``--set search.temperature.high=8`` changes one bound of a range the file left at its
    default, so the overrides go onto the validated (defaults-filled) config when ``raw``
    is valid alone, and onto ``raw`` itself when it is not (an override may supply a
    required key).
    """
    if not overrides:
        return validate(raw, model)
    try:
        base = json.loads(model.model_validate(raw).model_dump_json())
    except ValidationError:
        base = raw
    return validate(apply_overrides(base, overrides), model)


def load_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), model=StudyConfig
) -> Any:
    """Read a YAML config, apply ``--set`` overrides and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}".splitlines()[0]) from e
    return validate_with_overrides(raw, overrides, model)


def config_to_json(cfg: BaseModel) -> str:
    return cfg.model_dump_json()


def config_from_json(text: str) -> StudyConfig:
    return validate(json.loads(text), StudyConfig)


def dump_yaml(cfg: BaseModel) -> str:
    """A config as YAML, in field order, readable by :func:`load_config`."""
    return yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False)


def format_error(e: ValidationError, model: type[BaseModel]) -> str:
    """The first validation error as one line: the dotted key, the problem, the choices."""
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "(top level)"
    kind = err["type"]
    more = f" (and {len(e.errors()) - 1} more problem(s))" if len(e.errors()) > 1 else ""
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        return f"unknown key {key!r}; valid keys here: {', '.join(valid)}{more}"
    if kind == "missing":
        return f"missing required key {key!r}{more}"
    msg = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
    return f"{key}: {msg}{shown}{more}"


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The field names of the (nested) model at ``loc``."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        current = _model_of(field.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
