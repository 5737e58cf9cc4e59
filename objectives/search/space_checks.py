"""What a trial drawn from a search space would trip over, checked before any trial runs.

:func:`search_problems` checks the pair of base
:class:`~kdtune.objectives.distillation.config.DistillConfig`
and :class:`~kdtune.objectives.search.space.SearchSpace`:
every value a searched key may take is
valid, every searched depth is below the teacher's, every mapping fits every depth.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..distillation.config import _ANY_DEPTH, DistillConfig
from ..student.mapping import MAPPING_KINDS, layer_mapping
from .space import ChoiceParam, FloatParam, IntParam, SearchSpace

__all__ = ["search_problems"]


_SEARCHED = ("temperature", "alpha", "learning_rate", "epochs", "beta", "schedule")
"""Searched keys whose every value must be valid for the DistillConfig key of that name
(``student_layers`` and ``layer_mapping`` depend on each other: see :func:`search_problems`)."""


def search_problems(
    base: DistillConfig,
    space: SearchSpace | None,
    teacher_layers: int | None = None,
    base_key: str = "distill",
    space_key: str = "search",
) -> list[str]:
    """What a trial drawn from ``space`` on top of ``base`` would trip over, one line each.

    * every value a searched key may take (a range's ends, each choice) is valid for
      DistillConfig (e.g. ``alpha`` in 0..1, ``schedule`` one of joint, two-stage);
    * every student depth trials use is in 1..N-1 for a teacher of N layers;
    * every layer mapping trials use fits every such depth
      (:func:`kdtune.objectives.student.mapping.layer_mapping`).

    ``space`` None checks ``base`` as it is (one run, nothing searched). ``teacher_layers``
    None (teacher unknown) checks the mappings' form only. Lines start with the key path
    (``search.alpha: ...``).
    """
    space = space or _NOTHING_SEARCHED
    problems = []
    for name in _SEARCHED:
        spec = getattr(space, name)
        for value in _values(spec):
            bad = _field_problem(base, name, value)
            if bad:
                problems.append(f"{space_key}.{name}: value {value!r} {bad}")
                break
    depths = space.depth_choices(teacher_layers)
    depth_key = f"{space_key}.student_layers"
    if depths is None:
        depths, depth_key = (base.student_layers,), f"{base_key}.student_layers"
    if teacher_layers is not None:
        wrong = [d for d in depths if not 1 <= d < teacher_layers]
        if wrong:
            problems.append(
                f"{depth_key}: {wrong[0]} is not below the teacher's depth; accepted: "
                f"1..{teacher_layers - 1} (the teacher has {teacher_layers} layers)"
            )
            depths = tuple(d for d in depths if 1 <= d < teacher_layers)
    if space.layer_mapping is not None:
        kinds, mapping_key = space.layer_mapping.choices, f"{space_key}.layer_mapping"
    else:
        kinds, mapping_key = (base.layer_mapping,), f"{base_key}.layer_mapping"
    for kind in kinds:
        bad = _mapping_problem(kind, depths, teacher_layers)
        if bad:
            problems.append(f"{mapping_key}: {bad}")
    return problems


_NOTHING_SEARCHED = SearchSpace(
    temperature=None, alpha=None, layer_mapping=None, learning_rate=None, epochs=None,
    beta=None, schedule=None, search_student_layers=False, search_hidden_size=False,
    max_params_ratio=None,
)


def _values(spec: FloatParam | IntParam | ChoiceParam | None) -> tuple[Any, ...]:
    if spec is None:
        return ()
    if isinstance(spec, ChoiceParam):
        return spec.choices
    return (spec.low, spec.high)


def _field_problem(base: DistillConfig, name: str, value: Any) -> str:
    """Why DistillConfig refuses ``value`` for key ``name`` ("" when it accepts it)."""
    try:
        DistillConfig.model_validate({**base.model_dump(), name: value})
    except ValidationError as e:
        for err in e.errors():
            if err["loc"] and err["loc"][0] == name:
                return "is not accepted: " + err["msg"].removeprefix("Value error, ")
    return ""


def _mapping_problem(kind: Any, depths: tuple[int, ...], teacher_layers: int | None) -> str:
    """Why ``kind`` fails for one of ``depths`` ("" when it fits them all).

    With no depth known (the teacher is unknown and trials search depth), an explicit list
    is checked for the depth it implies.
    """
    if isinstance(kind, tuple):
        kind = list(kind)
    if isinstance(kind, int | float):
        kind = str(kind)
    if not depths:
        named = isinstance(kind, str) and kind.strip() in MAPPING_KINDS
        depths = (1,) if named else (len(kind) if isinstance(kind, list) else
                                      len(str(kind).split(",")),)
    for depth in depths:
        try:
            layer_mapping(kind, teacher_layers or max(_ANY_DEPTH, depth), depth)
        except ValueError as e:
            named = f"student_layers={depth}" in str(e)
            where = f" (student_layers={depth})" if len(depths) > 1 and not named else ""
            return f"{e}{where}"
    return ""
