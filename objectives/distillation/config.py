"""Typed, frozen configuration of one distillation run (:class:`DistillConfig`).

:class:`DistillConfig` is the *complete* description of one distillation: teacher, data,
student shape and every training hyperparameter. A trial turns the study's base
``DistillConfig`` plus its sampled parameters into a new ``DistillConfig``; ``kdtune export``
writes one to YAML, and ``kdtune distill`` reads it back. Unknown keys are errors. The
search space is :mod:`kdtune.objectives.search.space`. Loss (alpha weights the soft term):
``L = alpha*L_soft + (1 - alpha)*L_hard + beta*L_intermediate``.
Why: docs/design.md, "Alpha weights the soft term".
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kdtune.frozen import FrozenModel

from ..compute.device import check_device_name
from ..data.dataset import DataConfig
from ..student.mapping import MAPPING_KINDS, layer_mapping

Schedule = Literal["joint", "two-stage"]
Init = Literal["teacher-layers", "random", "checkpoint"]
Vocabulary = Literal["task", "full"]
Align = Literal["temperature", "none"]
INTERMEDIATE_LOSSES = ("hidden", "embedding", "attention")

_ANY_DEPTH = 1_000_000
"""A teacher depth no config reaches: checks a mapping's form while the teacher is unknown."""


class EvalConfig(FrozenModel):
    """How a student is measured (see :func:`objectives.measure.metrics.confidence_metrics`)."""

    kappa: float = Field(0.05, gt=0, description="phi_cnf holds when sigma <= kappa")
    reference_class: int = Field(0, ge=0, description="class c of the sigma statistic")
    on_train: bool = Field(False, description="also measure on the training split")
    latency_batches: int = Field(3, ge=0, description="batches timed for inference latency")
    int8: bool = Field(False, description="also measure the student after ONNX Runtime's "
                       "dynamic INT8 quantisation: accuracy_int8, sigma_int8, agreement_int8")


class DistillConfig(FrozenModel):
    """Everything one distillation run needs.

    ``temperature`` is t of the prediction loss ``-softmax(z_T/t)·log_softmax(z_S/t)``;
    ``t2_scaling`` multiplies it by t² (Hinton) so gradients keep their scale as t grows.
    ``soft_loss: mse`` replaces that soft term by the mean squared error of the logits
    (:func:`~kdtune.objectives.distillation.losses.logit_mse`; temperature unused).
    ``beta`` weights the sum of the intermediate losses named in ``intermediate``;
    ``beta = 0`` or an empty ``intermediate`` switches them off (and skips computing them).
    ``schedule``: ``joint`` optimises the total loss for ``epochs`` epochs; ``two-stage``
    (TinyBERT) first trains the intermediate losses alone for ``intermediate_epochs``
    epochs, then the prediction losses for ``epochs`` epochs.

    ``hidden_size`` is the student's width H_S (None: the teacher's). Its attention heads
    keep the teacher's head size (H_S / d_T heads, at least 1) and its feed-forward size the
    teacher's ratio (4 x H_S for BERT); the intermediate losses project its hidden states to
    the teacher's width with a learned W_h, and the attention loss averages the teacher's
    heads into the student's head count (:mod:`kdtune.objectives.distillation.prepare`).
    ``ffn_size`` sets the feed-forward size instead (None: the teacher's ratio); a narrower
    feed-forward block with ``init: teacher-layers`` keeps evenly spaced teacher neurons.
    ``vocabulary``: ``task`` (default) keeps the teacher's special tokens, the wordpieces of
    the students' text and every single character (:mod:`kdtune.objectives.student.vocabulary`);
    ``full`` the teacher's whole vocabulary. ``align: temperature`` fits one temperature
    after training so that the student's probabilities match the teacher's (``align_fit``:
    ``sigma``, which generalised to the test split, ``kl``, which did not, or ``kl-correct``,
    KL on the inputs both classify correctly: bench/RESULTS-students.md) on ``align_on``
    (``heldout``: ``align_holdout`` of the students'
    labelled rows kept out of training, from the transfer split when there is one;
    ``selection``: the selection split) and folds it
    into the classifier (:mod:`kdtune.objectives.distillation.align`).
    ``init``: ``teacher-layers`` (default) initialises the student from the mapped teacher
    layers, selecting a subset of each weight's rows and columns for a narrower student
    (any width up to the teacher's; :mod:`kdtune.objectives.student.from_teacher`); ``random`` uses
    the model's own initialiser; ``checkpoint`` loads ``init_checkpoint``.
    ``dropout``: the student's hidden and attention dropout while it learns (None keeps the
    teacher's, 0.1 for BERT).
    """

    teacher: str = Field(description="teacher checkpoint directory or hub id")
    data: DataConfig = DataConfig()
    student_layers: int = Field(2, ge=1)
    layer_mapping: str | tuple[int, ...] = "uniform"
    hidden_size: int | None = Field(None, ge=8)
    ffn_size: int | None = Field(None, ge=1)
    vocabulary: Vocabulary = "task"
    align: Align = "none"
    align_fit: Literal["sigma", "kl", "kl-correct"] = "sigma"
    align_on: Literal["heldout", "selection"] = "heldout"
    align_holdout: float = Field(0.2, gt=0, lt=0.5)
    init: Init = "teacher-layers"
    init_checkpoint: str | None = None
    dropout: float | None = Field(None, ge=0, lt=1)
    temperature: float = Field(1.0, gt=0)
    t2_scaling: bool = True
    soft_loss: Literal["ce", "mse"] = "ce"
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

    @field_validator("layer_mapping")
    @classmethod
    def _mapping_form(cls, v: str | tuple[int, ...], info: ValidationInfo):
        """A known kind, or an explicit list fitting ``student_layers`` (teacher unknown)."""
        depth = info.data.get("student_layers")
        if depth is not None and not (isinstance(v, str) and v.strip() in MAPPING_KINDS):
            layer_mapping(list(v) if isinstance(v, tuple) else v, _ANY_DEPTH, depth)
        return v

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        return check_device_name(v)

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
