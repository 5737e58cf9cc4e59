"""The frozen-config base and the generic config machinery every layer shares.

:class:`FrozenModel`: a pydantic model that is immutable and rejects unknown keys.
:func:`parse_override` / :func:`apply_overrides`: dotted ``--set a.b.c=value`` overrides.
:func:`validate` / :func:`validate_with_overrides` / :func:`load_config`: plain data or a YAML file
-> a validated model. :func:`read_yaml` (:func:`read_text` + :func:`parse_yaml`): a YAML config
file -> its mapping. :func:`dump_yaml`: a model back to YAML that :func:`load_config` reads.

Why: docs/design.md, "Config validated once, completely".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from kdtune.errors import ConfigError

Check = Callable[[Any], list[str]]
"""A validated config -> its remaining problems, one line each, ``"key.path: problem"``."""


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
        raise ConfigError(f"override {item!r}: value is not valid YAML ({_yaml_problem(e)})") from e
    return path, value


def relative_overrides(overrides: list[str] | tuple[str, ...], section: str) -> list[str]:
    """``--set`` items with a leading ``section.`` taken off: a command that reads one
    section of a study config (``kdtune distill``, ``kdtune audit``) accepts its keys spelled
    as in the study config (``distill.epochs=5``) or relative to the section (``epochs=5``)."""
    return [o.lstrip().removeprefix(f"{section}.") if "=" in o else o for o in overrides]


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of ``raw`` with dotted overrides applied (intermediate dicts created).

    Raises:
        ConfigError: ``raw`` is not a mapping, an override is malformed, or it descends
            into a key that is not a section.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of keys, got {type(raw).__name__}")
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


def validate(raw: dict, model: type[BaseModel], check: Check | None = None) -> Any:
    """Validate plain data into ``model``; every problem goes into one :class:`ConfigError`.

    With ``check``, its problems are added to pydantic's. When pydantic rejects some keys,
    ``check`` still runs, on the config with those keys left out (at their defaults), and
    its problems about the keys left out are dropped: a bad ``device`` and a missing
    teacher directory are reported together. Only when no config can be built that way
    (a required key is missing) does ``check`` not run.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of keys, got {type(raw).__name__}")
    try:
        cfg, problems, left_out = model.model_validate(raw), [], []
    except ValidationError as e:
        problems = format_problems(e, model)
        cfg, left_out = _without_bad_keys(raw, model, e) if check else (None, [])
    if check is not None and cfg is not None:
        problems += [p for p in check(cfg) if not _under(_key_of(p), left_out)]
    if problems:
        raise ConfigError(problems)
    return cfg


def validate_with_overrides(
    raw: dict,
    overrides: list[str] | tuple[str, ...],
    model: type[BaseModel],
    check: Check | None = None,
) -> Any:
    """Validate ``raw`` with dotted overrides applied on top of the defaults it implies.

    ``--set search.temperature.high=8`` changes one bound of a range the file left at its
    default, so the overrides go onto the validated (defaults-filled) config when ``raw``
    is valid alone, and onto ``raw`` itself when it is not (an override may supply a
    required key). ``check`` as in :func:`validate`.
    """
    if not overrides:
        return validate(raw, model, check)
    try:
        filled = json.loads(model.model_validate(raw).model_dump_json())
    except ValidationError:
        return validate(apply_overrides(raw, overrides), model, check)
    # Defaults are filled only in the sections the overrides reach: a top-level key the file
    # left out stays unset, so a default resolved later (a study's objectives, chosen by the
    # teacher's number of classes) is still chosen.
    reached = {parse_override(item)[0][0] for item in overrides}
    base = {k: v for k, v in filled.items() if k in raw or k in reached}
    return validate(apply_overrides(base, overrides), model, check)


def read_yaml(path: str | Path) -> dict:
    """The plain data of a YAML config file (``{}`` for an empty one).

    Raises:
        ConfigError: one line naming the file: it does not exist or cannot be read, is not
            UTF-8, is not valid YAML (with the line and column), or is not a mapping of keys
            (a YAML list or a single value).
    """
    return parse_yaml(read_text(path), str(path))


def read_text(path: str | Path) -> str:
    """The text of a config file; ConfigError (one line) if missing, unreadable or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at "
                          f"position {e.start}); re-save it as UTF-8") from e
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from e


def parse_yaml(text: str, name: str) -> dict:
    """The plain data of YAML config ``text`` read from ``name`` (see :func:`read_yaml`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{name} is not valid YAML: {_yaml_problem(e)}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: the config must be a mapping of keys (key: value lines), "
                          f"got a YAML {_yaml_kind(data)}")
    return data


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: where (line, column) and what."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = getattr(e, "context", None)
    return f"{where}{problem}" + (f" ({context})" if context else "")


def _yaml_kind(data: Any) -> str:
    return "list" if isinstance(data, list) else f"single value ({type(data).__name__})"


def load_config(
    path: str | Path,
    model: type[BaseModel],
    overrides: list[str] | tuple[str, ...] = (),
    check: Check | None = None,
) -> Any:
    """Read a YAML config, apply ``--set`` overrides and validate it (``check`` as in
    :func:`validate`)."""
    return validate_with_overrides(read_yaml(path), overrides, model, check)


def dump_yaml(cfg: BaseModel) -> str:
    """A config as YAML, in field order, readable by :func:`load_config`."""
    return yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False)


def format_problems(e: ValidationError, model: type[BaseModel]) -> list[str]:
    """Every validation error as one line: the dotted key, the problem, what is accepted."""
    return [_problem(err, model) for err in e.errors()]


_KEY = re.compile(r"^([A-Za-z_][\w.\-]*): ")


def _key_of(problem: str) -> str:
    """The key path a ``"key.path: problem"`` line is about (``""`` when it names none)."""
    match = _KEY.match(problem)
    return match.group(1) if match else ""


def _under(key: str, paths: list[str]) -> bool:
    return bool(key) and any(key == p or key.startswith(p + ".") for p in paths)


def _without_bad_keys(
    raw: dict, model: type[BaseModel], error: ValidationError
) -> tuple[Any, list[str]]:
    """``raw`` validated without the keys ``error`` rejects, and the key paths left out.

    Returns ``(None, paths)`` when that is impossible: a required key is missing, or a
    problem concerns the whole config rather than one key.
    """
    data = json.loads(json.dumps(raw, default=str))
    left_out: list[str] = []
    for _ in range(3):  # leaving a key out can reveal a problem behind it, rarely more
        for err in error.errors():
            loc = list(err["loc"])
            if err["type"] == "missing" or not loc:
                return None, left_out
            if _under(".".join(map(str, loc)), left_out):
                continue  # a second problem with a key already left out
            removed = _remove(data, loc)
            if not removed:
                return None, left_out
            left_out.append(removed)
        try:
            return model.model_validate(data), left_out
        except ValidationError as e:
            error = e
    return None, left_out


def _remove(data: dict, loc: list) -> str:
    """Delete the deepest mapping key along ``loc`` from ``data``; its dotted path or ``""``."""
    node, path = data, []
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            break
        path.append(str(part))
        parent, node = node, node[part]
    if not path:
        return ""
    del parent[path[-1]]
    return ".".join(path)


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
    if isinstance(given, dict | list) or f"got {given!r}" in msg:  # the message quotes it
        return f"{key}: {msg}"
    return f"{key}: {msg} (got {given!r})"


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
