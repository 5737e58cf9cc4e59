"""The search space of a study: which hyperparameters a trial draws, and the size caps.

:class:`SearchSpace` names the searched parameters (:class:`FloatParam`, :class:`IntParam`,
:class:`ChoiceParam`). A search varies a student's depth (``student_layers``) and width
(``hidden_size``) and caps its parameter count (``SearchSpace.max_params`` or
``max_params_ratio``, by default one half of the teacher's) or its latency
(``max_latency_ratio``); only shapes under the caps are offered (:mod:`.trial`).

Why: docs/design.md, "Where a config is checked", "Student size is depth and width".
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from kdtune.frozen import FrozenModel

from ..student.size import WIDTH_FRACTIONS, auto_widths, student_shape
from .halving import HalvingConfig
from .warm_start import check_entry


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


DEFAULT_MAX_PARAMS_RATIO = 1 / 2
"""The default size cap: a student has at most this fraction of the teacher's parameters
(one half: under a third only students with a narrower feed-forward block, drawn only with
``ffn_fractions``, came within three points of the teacher; why: docs/design.md,
"Student size is depth and width")."""


class SearchSpace(FrozenModel):
    """What a trial samples. A parameter set to ``null`` is not searched: the base
    DistillConfig's value is used. ``student_layers: null`` means 1..N-1 for a teacher of N
    layers (an ordered integer). ``epochs`` is not searched by default: it is the fidelity.

    Size: ``hidden_size: null`` searches the widths ``width_fractions`` (1/2, 2/3 and all)
    of the teacher's (multiples of its head size; :func:`auto_widths`: 192, 256, 384 for
    MiniLM), unless ``search_hidden_size`` is false; ``{choices: [...]}`` names them. Every
    trial's student must have at most ``max_params`` parameters (with its kept vocabulary),
    or, when that is null, at most ``max_params_ratio`` x the teacher's (default 1/2; both
    null: no cap).
    With depth and width both searched, a trial draws one ``student_shape`` among the pairs
    (with ``ffn_fractions``, depth x width x feed-forward triples) under the cap
    (:func:`kdtune.objectives.search.shapes.feasible_shapes`); explicit choices form the
    shapes too when some of their pairs are over the cap (or with ``ffn_fractions`` or
    ``max_latency_ratio``). A trial that is still over the cap (a fixed depth with explicit
    widths, an enqueued size) is not trained and ends PRUNED with its constraint recorded.
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
        True, description="search width over width_fractions of the teacher's when "
        "hidden_size is null"
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
    width_fractions: tuple[Annotated[float, Field(gt=0, le=1)], ...] = Field(
        WIDTH_FRACTIONS, min_length=1, description="the widths searched when hidden_size is "
        "null, as fractions of the teacher's (rounded to whole heads); [1]: the teacher's "
        "width only")
    ffn_fractions: tuple[Annotated[float, Field(gt=0, le=1)], ...] = Field(
        (), description="feed-forward sizes drawn with depth and width, as fractions of the "
        "teacher's ratio (e.g. [1, 0.67, 0.33]: 1,536, 1,024 and 512 neurons at MiniLM's "
        "width); empty: the teacher's ratio (or distill.ffn_size) only. Applies when depth "
        "and width are both searched")
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
        drawn = ((self.student_layers is not None or self.search_student_layers)
                 and (self.hidden_size is not None or self.search_hidden_size))
        for key in ("max_latency_ratio", "ffn_fractions"):
            if getattr(self, key) and not drawn:
                raise ValueError(f"{key} applies when depth and width are both searched "
                                 "(search_student_layers and search_hidden_size not false)")
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
        return auto_widths(teacher_width, teacher_heads or 1, self.width_fractions)

    def ffn_choices(self, t_cfg: Any, width: int, ffn_size: int | None) -> list[int | None]:
        """The feed-forward sizes drawn at ``width``, widest first: ``ffn_size`` (the base
        config's), or with ``ffn_fractions`` each fraction of the width's own (teacher-ratio)
        size, None for fraction 1."""
        if not self.ffn_fractions:
            return [ffn_size]
        full = student_shape(t_cfg, width)[2]
        sizes = {None if f == 1 else max(1, round(f * full)) for f in self.ffn_fractions}
        return sorted(sizes, key=lambda f: full if f is None else f, reverse=True)

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
