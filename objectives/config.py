"""Typed, frozen configuration for one distillation run and for the search space.

:class:`DistillConfig` is the *complete* description of one distillation: teacher, data,
student shape and every training hyperparameter. A trial turns the study's base
``DistillConfig`` plus its sampled parameters into a new ``DistillConfig``; ``kdtune export``
writes one to YAML, and ``kdtune distill`` reads it back. Unknown keys are errors.

alpha convention (kdtune): ``L = alpha*L_soft + (1 - alpha)*L_hard + beta*L_intermediate``,
so alpha weights the distillation (soft) term. torchdistill's alpha weights the hard term
instead; TextBrewer has separate weights.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .data import DataConfig

Schedule = Literal["joint", "two-stage"]
Init = Literal["teacher-layers", "random", "checkpoint"]
INTERMEDIATE_LOSSES = ("hidden", "embedding", "attention")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalConfig(_Frozen):
    """How a student is measured (see :func:`objectives.metrics.confidence_metrics`)."""

    kappa: float = Field(0.05, gt=0, description="phi_cnf holds when sigma <= kappa")
    reference_class: int = Field(0, ge=0, description="class c of the sigma statistic")
    on_train: bool = Field(False, description="also measure on the training split")
    latency_batches: int = Field(3, ge=0, description="batches timed for inference latency")


class DistillConfig(_Frozen):
    """Everything one distillation run needs.

    ``temperature`` is t of the prediction loss ``-softmax(z_T/t)·log_softmax(z_S/t)``;
    ``t2_scaling`` multiplies it by t² (Hinton) so gradients keep their scale as t grows.
    ``beta`` weights the sum of the intermediate losses named in ``intermediate``;
    ``beta = 0`` or an empty ``intermediate`` switches them off (and skips computing them).
    ``schedule``: ``joint`` optimises the total loss for ``epochs`` epochs; ``two-stage``
    (TinyBERT) first trains the intermediate losses alone for ``intermediate_epochs``
    epochs, then the prediction losses for ``epochs`` epochs.
    """

    teacher: str = Field(description="teacher checkpoint directory or hub id")
    data: DataConfig = DataConfig()
    student_layers: int = Field(2, ge=1)
    layer_mapping: str | tuple[int, ...] = "uniform"
    hidden_size: int | None = Field(None, ge=8)
    init: Init = "teacher-layers"
    init_checkpoint: str | None = None
    temperature: float = Field(1.0, gt=0)
    t2_scaling: bool = True
    alpha: float = Field(0.5, ge=0, le=1)
    beta: float = Field(0.0, ge=0)
    intermediate: tuple[str, ...] = INTERMEDIATE_LOSSES
    schedule: Schedule = "joint"
    intermediate_epochs: int = Field(1, ge=0)
    learning_rate: float = Field(5e-5, gt=0)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    seed: int = 0
    teacher_cache: bool = True
    cache_budget_mb: int = Field(2048, ge=0)
    min_relative_accuracy: float | None = Field(
        None, ge=0, le=1,
        description="stop (prune) after an epoch whose eval accuracy is below this "
        "fraction of the teacher's; None disables early stopping",
    )
    eval: EvalConfig = EvalConfig()
    device: str = "auto"
    threads: int | None = Field(None, ge=1)

    @field_validator("intermediate")
    @classmethod
    def _known_losses(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if x not in INTERMEDIATE_LOSSES]
        if bad:
            raise ValueError(
                f"unknown intermediate loss {bad[0]!r}; accepted: {INTERMEDIATE_LOSSES}"
            )
        return v

    @model_validator(mode="after")
    def _checkpoint_given(self) -> DistillConfig:
        if self.init == "checkpoint" and not self.init_checkpoint:
            raise ValueError("init='checkpoint' needs init_checkpoint (a student directory)")
        return self

    @property
    def uses_intermediate(self) -> bool:
        return self.beta > 0 and len(self.intermediate) > 0


class FloatParam(_Frozen):
    """A float searched in [low, high], log-uniformly when ``log``."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class IntParam(_Frozen):
    """An integer searched in [low, high]."""

    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> IntParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class ChoiceParam(_Frozen):
    """One of a list of values (one value fixes the parameter)."""

    choices: tuple[str | int | float, ...] = Field(min_length=1)


class SearchSpace(_Frozen):
    """What a trial samples. A parameter set to ``null`` is not searched: the base
    DistillConfig's value is used. ``student_layers: null`` means 1..N-1 for a teacher of N
    layers (a choice, so every depth is tried evenly)."""

    temperature: FloatParam | None = FloatParam(low=1.0, high=20.0, log=True)
    alpha: FloatParam | None = FloatParam(low=0.0, high=1.0)
    layer_mapping: ChoiceParam | None = ChoiceParam(choices=("uniform", "top", "bottom"))
    student_layers: ChoiceParam | None = None
    learning_rate: FloatParam | None = FloatParam(low=2e-5, high=2e-4, log=True)
    epochs: IntParam | None = IntParam(low=1, high=3)
    beta: FloatParam | None = FloatParam(low=0.0, high=1.0)
    schedule: ChoiceParam | None = ChoiceParam(choices=("joint", "two-stage"))
    search_student_layers: bool = Field(
        True, description="search depth over 1..N-1 when student_layers is null"
    )
    reuse_repeats: bool = Field(
        True, description="a trial whose configuration a finished trial already had copies "
        "that trial's result instead of training again (training is seeded, so it would "
        "repeat it); false trains every trial, e.g. to measure run-to-run noise"
    )
