"""Which students a study's trials draw: the widths and ``<depth>x<width>[x<ffn>]`` shapes under
the size caps (parameters with the kept vocabulary, batch-1 latency), and under a cap with no
size objective the largest of them only. Trials draw one of these shapes
(:func:`kdtune.objectives.search.trial.suggest_config`), so none is spent over a cap.

Why: docs/design.md, "Student size is depth and width", "Under a cap, the largest shapes".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..distillation.config import DistillConfig
from ..distillation.prepare import kept_vocabulary_size, teacher_depth
from ..student.size import (
    student_parameters,
    student_shape,
    teacher_config,
    teacher_parameters,
)
from .space import SearchSpace


def feasible_widths(space: SearchSpace, t_cfg, teacher_layers: int, cap: int | None,
                    base_layers: int = 1, vocab_size: int | None = None,
                    ffn_size: int | None = None) -> tuple[int, ...] | None:
    """The automatic widths (``search.hidden_size`` unset) at which the shallowest student
    the space allows is within the cap: a width over the cap at every depth (MiniLM at
    256 under a third: its word embedding alone is 7.8M of the 7.6M allowed) would only
    spend trials that end pruned. ``None`` when widths are not automatic or nothing is
    capped. Explicit ``search.hidden_size`` choices are kept as given."""
    if cap is None or space.hidden_size is not None or not space.search_hidden_size:
        return None
    auto = space.width_choices(int(t_cfg.hidden_size), int(t_cfg.num_attention_heads)) or ()
    depth = min(space.depth_choices(teacher_layers) or (base_layers,))
    return tuple(w for w in auto
                 if student_parameters(t_cfg, depth, w, vocab_size, ffn_size) <= cap) or None


def feasible_shapes(space: SearchSpace, t_cfg, teacher_layers: int, cap: int | None,
                    vocab_size: int | None = None, ffn_size: int | None = None
                    ) -> tuple[str, ...] | None:
    """The ``"<depth>x<width>"`` students under the caps, narrowest first, when both depth
    and width are searched automatically in a capped study (``max_params`` /
    ``max_params_ratio``, ``max_latency_ratio``: batch-1 latency against the teacher's,
    :func:`~kdtune.objectives.student.latency.shape_latency_ratio`) or with
    ``ffn_fractions``. Explicit depth or width choices form the shapes too with
    ``ffn_fractions``, a latency cap, or a parameter cap that some of their pairs exceed;
    else ``None`` (depth and width are drawn apart: the chosen pairs all fit, or nothing is
    capped). ``vocab_size``: the student's kept vocabulary (None: the
    teacher's); ``ffn_size`` its feed-forward size (None: the teacher's ratio).
    ``ffn_fractions`` adds a third axis: ``"<depth>x<width>x<ffn>"`` for each fraction
    below 1 of the width's feed-forward size (:func:`parse_shape`)."""
    latency_cap = space.max_latency_ratio
    joint = bool(space.ffn_fractions) or latency_cap is not None
    explicit = space.student_layers is not None or space.hidden_size is not None
    depths = space.depth_choices(teacher_layers)
    widths = space.width_choices(int(t_cfg.hidden_size), int(t_cfg.num_attention_heads))
    if not depths or not widths or (cap is None and not joint):
        return None
    pairs = [(d, w, f) for w in widths for d in depths
             for f in space.ffn_choices(t_cfg, w, ffn_size)]
    shapes = [(d, w, f) for d, w, f in pairs
              if cap is None or student_parameters(t_cfg, d, w, vocab_size, f) <= cap]
    if explicit and not joint and len(shapes) in (0, len(pairs)):
        return None  # every chosen pair fits, or none does (kdtune create says so)
    if latency_cap is not None:
        from ..student.latency import shape_latency_ratio

        shapes = [(d, w, f) for d, w, f in shapes
                  if shape_latency_ratio(t_cfg, d, w, vocab_size, ffn_size=f) <= latency_cap]
    return tuple(f"{d}x{w}" if f is None or not space.ffn_fractions else f"{d}x{w}x{f}"
                 for d, w, f in shapes) or None


SIZE_OBJECTIVES = frozenset({"params", "params_ratio", "latency_ms", "latency_ratio"})
"""Objectives that make a smaller student better; without one, size is only a cap."""


def largest_shapes(shapes: Sequence[str], t_cfg, ffn_size: int | None = None
                   ) -> tuple[str, ...]:
    """The shapes no other one contains (none other is as deep, as wide and has as large a
    feed-forward block), in their order. Under a cap with accuracy and sigma as the
    objectives a contained student is the larger one's weaker copy: it is drawn only when
    size is an objective too (docs/design.md, "Under a cap, the largest shapes")."""
    def dims(shape: str) -> tuple[int, int, int]:
        depth, width, ffn = parse_shape(shape)
        return depth, width, ffn or student_shape(t_cfg, width, ffn_size)[2]

    sizes = {s: np.array(dims(s)) for s in shapes}
    return tuple(s for s in shapes if not any(
        (sizes[o] >= sizes[s]).all() and (sizes[o] > sizes[s]).any() for o in shapes))


def size_facts(base: DistillConfig, space: SearchSpace) -> tuple:
    """(teacher depth, teacher config, parameter cap, kept vocabulary size or None)."""
    depth = teacher_depth(base.teacher)  # a UsageError naming the teacher if it is missing
    t_cfg = teacher_config(base.teacher)
    cap = space.params_cap(teacher_parameters(t_cfg))
    capped = cap is not None or space.max_latency_ratio is not None
    return depth, t_cfg, cap, kept_vocabulary_size(base) if capped else None


def study_shapes(base: DistillConfig, space: SearchSpace, objectives: Sequence[str] = (),
                 facts: tuple | None = None) -> tuple[str, ...] | None:
    """The ``student_shape`` choices of a study's trials (:func:`feasible_shapes`; None:
    depth and width are drawn apart): under a cap the :func:`largest_shapes` only, unless
    ``objectives`` hold a size metric. ``facts``: :func:`size_facts`, when already read."""
    depth, t_cfg, cap, vocab_size = facts or size_facts(base, space)
    shapes = feasible_shapes(space, t_cfg, depth, cap, vocab_size, base.ffn_size)
    capped = cap is not None or space.max_latency_ratio is not None
    if shapes and capped and not SIZE_OBJECTIVES & set(objectives):
        shapes = largest_shapes(shapes, t_cfg, base.ffn_size)
    return shapes


def parse_shape(shape: str) -> tuple[int, int, int | None]:
    """``"2x384"`` -> (2, 384, None); ``"2x384x1024"`` -> (2, 384, 1024): depth, width and
    feed-forward size (None: the config's)."""
    parts = [int(p) for p in shape.lower().split("x")]
    if len(parts) not in (2, 3):
        raise ValueError(f"a student shape is <depth>x<width>[x<ffn>], got {shape!r}")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None
