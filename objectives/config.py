"""Typed, frozen configuration for one distillation run and for the search space.

:class:`DistillConfig` is the *complete* description of one distillation: teacher, data,
student shape and every training hyperparameter. A trial turns the study's base
``DistillConfig`` plus its sampled parameters into a new ``DistillConfig``; ``kdtune export``
writes one to YAML, and ``kdtune distill`` reads it back. Unknown keys are errors.

Each model checks its own keys; what only the pair of base config and search space shows is
checked by :mod:`kdtune.objectives.space_checks`. The checks against the files the
config names (teacher, data) are :mod:`kdtune.objectives.checks`'.

Size. A student's size is its depth (``student_layers``) and its width (``hidden_size``;
heads and feed-forward size follow it, :mod:`kdtune.objectives.student_size`). A search
varies both and caps the student's parameter count (``SearchSpace.max_params`` or
``max_params_ratio``, by default one third of the teacher's): a trial whose student is over
the cap is not trained (:mod:`kdtune.objectives.trial`).

alpha convention (kdtune): ``L = alpha*L_soft + (1 - alpha)*L_hard + beta*L_intermediate``,
so alpha weights the distillation (soft) term. torchdistill's alpha weights the hard term
instead; TextBrewer has separate weights.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kdtune.frozen import FrozenModel

from .data import DataConfig
from .halving import HalvingConfig
from .mapping import MAPPING_KINDS, layer_mapping
from .runtime import check_device_name
from .student_size import auto_widths
from .warm_start import check_entry

Schedule = Literal["joint", "two-stage"]
Init = Literal["teacher-layers", "random", "checkpoint"]
Vocabulary = Literal["task", "full"]
Align = Literal["temperature", "none"]
INTERMEDIATE_LOSSES = ("hidden", "embedding", "attention")

_ANY_DEPTH = 1_000_000
"""A teacher depth no config reaches: checks a mapping's form while the teacher is unknown."""


class EvalConfig(FrozenModel):
    """How a student is measured (see :func:`objectives.metrics.confidence_metrics`)."""

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
    ``beta`` weights the sum of the intermediate losses named in ``intermediate``;
    ``beta = 0`` or an empty ``intermediate`` switches them off (and skips computing them).
    ``schedule``: ``joint`` optimises the total loss for ``epochs`` epochs; ``two-stage``
    (TinyBERT) first trains the intermediate losses alone for ``intermediate_epochs``
    epochs, then the prediction losses for ``epochs`` epochs.

    ``hidden_size`` is the student's width H_S (None: the teacher's). Its attention heads
    keep the teacher's head size (H_S / d_T heads, at least 1) and its feed-forward size the
    teacher's ratio (4 x H_S for BERT); the intermediate losses project its hidden states to
    the teacher's width with a learned W_h, and the attention loss averages the teacher's
    heads into the student's head count (:mod:`kdtune.objectives.prepare`).
    ``vocabulary``: ``task`` (default) keeps the teacher's special tokens, the wordpieces of
    the students' text and every single character (:mod:`kdtune.objectives.vocabulary`);
    ``full`` the teacher's whole vocabulary. ``align: temperature`` fits one temperature
    after training so that the student's probabilities match the teacher's (``align_fit``:
    ``sigma``, which generalised to the test split, or ``kl``, which did not:
    bench/RESULTS-students.md) on ``align_on`` (``heldout``: ``align_holdout`` of the students'
    labelled rows kept out of training, from the transfer split when there is one;
    ``selection``: the selection split) and folds it
    into the classifier (:mod:`kdtune.objectives.align`).
    ``init``: ``teacher-layers`` (default) initialises the student from the mapped teacher
    layers, selecting a subset of each weight's rows and columns for a narrower student
    (any width up to the teacher's; :mod:`kdtune.objectives.student_init`); ``random`` uses
    the model's own initialiser; ``checkpoint`` loads ``init_checkpoint``.
    """

    teacher: str = Field(description="teacher checkpoint directory or hub id")
    data: DataConfig = DataConfig()
    student_layers: int = Field(2, ge=1)
    layer_mapping: str | tuple[int, ...] = "uniform"
    hidden_size: int | None = Field(None, ge=8)
    vocabulary: Vocabulary = "task"
    align: Align = "none"
    align_fit: Literal["sigma", "kl"] = "sigma"
    align_on: Literal["heldout", "selection"] = "heldout"
    align_holdout: float = Field(0.2, gt=0, lt=0.5)
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


class FloatParam(FrozenModel):
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


class IntParam(FrozenModel):
    """An integer searched in [low, high]."""

    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> IntParam:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class ChoiceParam(FrozenModel):
    """One of a list of values (one value fixes the parameter)."""

    choices: tuple[str | int | float, ...] = Field(min_length=1)


DEFAULT_MAX_PARAMS_RATIO = 1 / 3
"""The default size cap: a student has at most this fraction of the teacher's parameters."""


class SearchSpace(FrozenModel):
    """What a trial samples. A parameter set to ``null`` is not searched: the base
    DistillConfig's value is used. ``student_layers: null`` means 1..N-1 for a teacher of N
    layers (an ordered integer). ``epochs`` is not searched by default: it is the fidelity.

    Size: ``hidden_size: null`` searches the widths 1/2, 2/3 and all of the teacher's
    (multiples of its head size; :func:`auto_widths`: 192, 256, 384 for MiniLM), unless
    ``search_hidden_size`` is false; ``{choices: [...]}`` names them. Every trial's student
    must have at most ``max_params`` parameters (with its kept vocabulary), or, when that is
    null, at most ``max_params_ratio`` x the teacher's (default 1/3; both null: no cap).
    With depth and width both searched, a trial draws one ``student_shape`` among the pairs
    under the cap (:func:`kdtune.objectives.trial.feasible_shapes`); with explicit choices an
    over-cap trial is not trained and ends PRUNED with its constraint recorded.
    """

    temperature: FloatParam | None = FloatParam(low=1.0, high=20.0, log=True)
    alpha: FloatParam | None = FloatParam(low=0.0, high=1.0)
    layer_mapping: ChoiceParam | None = ChoiceParam(choices=("uniform", "top", "bottom"))
    student_layers: ChoiceParam | None = None
    learning_rate: FloatParam | None = FloatParam(low=1e-4, high=2e-3, log=True)
    epochs: IntParam | None = Field(None, description="null (default): every trial trains "
        "distill.epochs, the fidelity successive halving stops early; {low, high} searches it")
    beta: FloatParam | None = FloatParam(low=0.0, high=1.0)
    schedule: ChoiceParam | None = ChoiceParam(choices=("joint", "two-stage"))
    hidden_size: ChoiceParam | None = None
    search_hidden_size: bool = Field(
        True, description="search width over 1/4..2/3 of the teacher's when hidden_size is null"
    )
    max_params: int | None = Field(
        None, ge=1, description="cap on a student's parameters; wins over max_params_ratio"
    )
    max_params_ratio: float | None = Field(
        DEFAULT_MAX_PARAMS_RATIO, gt=0,
        description="cap on a student's parameters as a fraction of the teacher's",
    )
    max_latency_ratio: float | None = Field(
        None, gt=0, description="cap on a student's batch-1 latency as a fraction of the "
        "teacher's (1 thread, measured on the architectures before training); applies when "
        "depth and width are both searched")
    search_student_layers: bool = Field(
        True, description="search depth over 1..N-1 when student_layers is null"
    )
    halving: HalvingConfig | None = Field(
        None, description="multi-objective successive halving along prediction epochs "
        "(rungs, eta); null: every trial trains to the end"
    )
    warm_start: tuple[Annotated[Any, AfterValidator(check_entry)], ...] = Field(
        (), description="configurations tried first: 'tinybert' or {param: value}")
    reuse_repeats: bool = Field(
        True, description="a trial whose configuration a finished trial already had copies "
        "that trial's result instead of training again (training is seeded, so it would "
        "repeat it); false trains every trial, e.g. to measure run-to-run noise"
    )

    @model_validator(mode="after")
    def _latency_cap_needs_shapes(self) -> SearchSpace:
        drawn = (self.student_layers is None and self.search_student_layers
                 and self.hidden_size is None and self.search_hidden_size)
        if self.max_latency_ratio is not None and not drawn:
            raise ValueError("max_latency_ratio applies when depth and width are both "
                             "searched (student_layers: null, hidden_size: null)")
        return self

    @field_validator("student_layers")
    @classmethod
    def _depths(cls, v: ChoiceParam | None) -> ChoiceParam | None:
        bad = [c for c in (v.choices if v else ()) if not isinstance(c, int) or c < 1]
        if bad:
            raise ValueError(f"student depths must be ints >= 1, got {bad[0]!r}")
        return v

    @field_validator("hidden_size")
    @classmethod
    def _widths(cls, v: ChoiceParam | None) -> ChoiceParam | None:
        bad = [c for c in (v.choices if v else ()) if not isinstance(c, int) or c < 8]
        if bad:
            raise ValueError(f"student widths must be ints >= 8, got {bad[0]!r}")
        return v

    def width_choices(
        self, teacher_width: int | None, teacher_heads: int | None = None
    ) -> tuple[int, ...] | None:
        """The student widths trials draw, or None when trials keep the base config's.

        ``hidden_size`` when given; else :func:`auto_widths` of the teacher (unless
        ``search_hidden_size`` is false); ``()`` while the teacher is unknown.
        """
        if self.hidden_size is not None:
            return tuple(int(c) for c in self.hidden_size.choices)
        if not self.search_hidden_size:
            return None
        if teacher_width is None:
            return ()
        return auto_widths(teacher_width, teacher_heads or 1)

    def params_cap(self, teacher_params: int) -> int | None:
        """The most parameters a trial's student may have (None: no cap)."""
        if self.max_params is not None:
            return self.max_params
        if self.max_params_ratio is None:
            return None
        return int(self.max_params_ratio * teacher_params)

    def depth_choices(self, teacher_layers: int | None) -> tuple[int, ...] | None:
        """The student depths trials draw, or None when trials keep the base config's.

        ``student_layers`` when given; else 1..N-1 for a teacher of N > 1 layers (unless
        ``search_student_layers`` is false); ``()`` while N is unknown.
        """
        if self.student_layers is not None:
            return tuple(self.student_layers.choices)
        if not self.search_student_layers:
            return None
        if teacher_layers is None:
            return ()
        return tuple(range(1, teacher_layers)) if teacher_layers > 1 else None
