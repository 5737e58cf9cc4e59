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

from pydantic import BaseModel, Field, field_validator

from kdtune import frozen
from kdtune.frozen import FrozenModel
from kdtune.objectives.config import DistillConfig, SearchSpace
from kdtune.objectives.metrics import METRIC_DIRECTIONS

SamplerName = Literal["nsga2", "tpe", "random", "gp"]


class SamplerConfig(FrozenModel):
    """Which Optuna sampler suggests parameters. Each worker adds its own worker index to
    ``seed`` so parallel NSGA-II / random workers do not suggest identical parameters."""

    name: SamplerName = "nsga2"
    seed: int | None = 0
    population_size: int = Field(8, ge=2, description="NSGA-II population per generation")
    n_startup_trials: int = Field(6, ge=0, description="random trials before TPE / GP model")


class StudyConfig(FrozenModel):
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
# Loading


def validate(raw: dict, model: type[BaseModel] = StudyConfig) -> Any:
    """Validate plain data into ``model`` (default :class:`StudyConfig`)."""
    return frozen.validate(raw, model)


def validate_with_overrides(
    raw: dict, overrides: list[str] | tuple[str, ...], model: type[BaseModel] = StudyConfig
) -> Any:
    """:func:`kdtune.frozen.validate_with_overrides`, for a StudyConfig by default."""
    return frozen.validate_with_overrides(raw, overrides, model)


def load_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), model=StudyConfig
) -> Any:
    """Read a YAML config, apply ``--set`` overrides and validate it (a StudyConfig)."""
    return frozen.load_config(path, model, overrides)


def config_to_json(cfg: BaseModel) -> str:
    return cfg.model_dump_json()


def config_from_json(text: str) -> StudyConfig:
    return validate(json.loads(text), StudyConfig)
