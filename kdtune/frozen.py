"""The frozen-config base and the generic config machinery every layer shares.

* :class:`FrozenModel`: a pydantic model that is immutable and rejects unknown keys.
* :func:`parse_override` / :func:`apply_overrides`: dotted ``--set a.b.c=value`` overrides.
* :func:`validate` / :func:`validate_with_overrides` / :func:`load_config`: plain data or a
  YAML file -> a validated model; every problem is reported together in one
  :class:`~kdtune.errors.ConfigError`, one line each, naming the key path and what is
  accepted.
* :func:`dump_yaml`: a model back to YAML that :func:`load_config` reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from kdtune.errors import ConfigError


class FrozenModel(BaseModel):
    """Base of every kdtune config: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


def validate(raw: dict, model: type[BaseModel]) -> Any:
    """Validate plain data into ``model``; every problem goes into one :class:`ConfigError`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of keys, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_problems(e, model)) from e


def validate_with_overrides(
    raw: dict, overrides: list[str] | tuple[str, ...], model: type[BaseModel]
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
    path: str | Path, model: type[BaseModel], overrides: list[str] | tuple[str, ...] = ()
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


def dump_yaml(cfg: BaseModel) -> str:
    """A config as YAML, in field order, readable by :func:`load_config`."""
    return yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False)


def format_problems(e: ValidationError, model: type[BaseModel]) -> list[str]:
    """Every validation error as one line: the dotted key, the problem, what is accepted."""
    return [_problem(err, model) for err in e.errors()]


def _problem(err: Any, model: type[BaseModel]) -> str:
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        return f"unknown key {key!r}; valid keys here: {', '.join(valid)}"
    if kind == "missing":
        return f"missing required key {key!r}"
    msg = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    shown = "" if isinstance(given, dict | list) else f" (got {given!r})"
    return f"{key}: {msg}{shown}"


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
