"""Warm start: configurations enqueued before the sampler's own, once, when a study is created.

``search.warm_start`` lists entries, each ``"tinybert"`` (TinyBERT's task-distillation
recipe: temperature 1, alpha 1, uniform mapping, two-stage schedule) or a mapping of searched
parameter names to values (``{temperature: 2.0, alpha: 0.5}``). Parameters an entry leaves
out are drawn by the sampler as usual; a recipe value outside the study's search space is
left out too (the sampler could not have proposed it), so a warm start never widens the
space. In a study that draws student shapes, an entry that names none is tried at each of the
largest shapes (:func:`kdtune.objectives.search.shapes.study_shapes`): a recipe is only as
good as the student it trains. :func:`warm_start_params` turns the entries into Optuna's
``enqueue_trial`` dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["SEARCHED", "TINYBERT_PARAMS", "check_entry", "warm_start_params"]

SEARCHED = ("temperature", "alpha", "layer_mapping", "learning_rate", "epochs", "beta",
            "schedule", "student_layers", "hidden_size", "student_shape")
"""The parameter names a trial may sample."""

TINYBERT_PARAMS = {"temperature": 1.0, "alpha": 1.0, "layer_mapping": "uniform",
                   "schedule": "two-stage"}
"""The searched values of TinyBERT's recipe, which ``"tinybert"`` stands for (kdtune's
alpha weights the soft loss: 1 is TinyBERT's soft-only prediction loss); the whole recipe,
these and its fixed losses, is :func:`kdtune.objectives.search.recipes.tinybert_recipe`."""


def check_entry(entry: Any) -> Any:
    """An entry as given, or ValueError naming what is wrong with it."""
    if entry == "tinybert":
        return entry
    if not isinstance(entry, dict) or not entry:
        raise ValueError(f"a warm-start entry is 'tinybert' or a mapping of searched "
                         f"parameters to values, got {entry!r}")
    unknown = sorted(set(entry) - set(SEARCHED))
    if unknown:
        raise ValueError(f"warm-start parameter {unknown[0]!r} is not searched; accepted: "
                         f"{', '.join(SEARCHED)}")
    return entry


def _fits(spec: Any, value: Any) -> bool:
    if spec is None:
        return False
    choices = getattr(spec, "choices", None)
    if choices is not None:
        return value in choices
    return spec.low <= value <= spec.high


def warm_start_params(space: Any, shapes: Sequence[str] | None = None
                      ) -> list[dict[str, Any]]:
    """``space.warm_start`` as ``enqueue_trial`` parameter dicts; ``"tinybert"`` keeps only
    the recipe's values that the space searches and allows. With ``shapes`` (the largest
    ones a study draws) an entry naming no shape is repeated at each of them."""
    out = []
    for entry in space.warm_start:
        if entry == "tinybert":
            entry = {k: v for k, v in TINYBERT_PARAMS.items() if _fits(getattr(space, k), v)}
        if shapes and "student_shape" not in entry:
            out += [{**entry, "student_shape": shape} for shape in shapes]
        elif entry:
            out.append(dict(entry))
    return out
