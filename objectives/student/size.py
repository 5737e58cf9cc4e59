"""A student's shape and size, known before it is built: width, heads, feed-forward size and
parameter count.

:func:`student_shape`: a student of width H_S keeps the teacher's head size d = H_T / A_T, so
A_S = H_S / d heads, and its feed-forward ratio, F_S = round(H_S * F_T / H_T), unless
``ffn_size`` names F_S.
:func:`student_parameters`: the exact parameter count of the served model, computed on
PyTorch's ``meta`` device and memoised per teacher config.

Why: docs/design.md, "Student shape keeps the head size", "Parameter counts on the meta device".
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = [
    "WIDTH_FRACTIONS",
    "auto_widths",
    "parameter_count",
    "student_config",
    "student_parameters",
    "student_shape",
    "teacher_config",
    "teacher_parameters",
]


WIDTH_FRACTIONS = (1 / 2, 2 / 3, 1)
"""The widths ``hidden_size: null`` searches, as fractions of the teacher's width."""


def auto_widths(teacher_width: int, teacher_heads: int,
                fractions: tuple[float, ...] = WIDTH_FRACTIONS) -> tuple[int, ...]:
    """The student widths searched by default: ``fractions`` (:data:`WIDTH_FRACTIONS`
    unless ``search.width_fractions`` names others) of the teacher's width, each rounded to
    a multiple of the teacher's head size (at least one head).

    MiniLM (384 wide, heads of 32): 192, 256, 384; BERT-base (768, heads of 64): 384, 512,
    768. The teacher's own width keeps its weights whole (with a task vocabulary one layer
    of it fits under a third of MiniLM's size); students a quarter or a third as wide
    mostly stayed at chance after a few dozen steps (bench/RESULTS.md), so they are only
    searched when named (``search.hidden_size``).
    """
    head = max(1, teacher_width // teacher_heads)
    widths = {max(head, round(f * teacher_width / head) * head) for f in fractions}
    return tuple(sorted(w for w in widths if 8 <= w <= teacher_width))


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int (or None), got {value!r}")
    return value


def student_shape(t_cfg: Any, hidden_size: int | None,
                  ffn_size: int | None = None) -> tuple[int, int, int]:
    """(width, attention heads, feed-forward size) of a student of ``hidden_size``.

    ``None`` (or the teacher's width) gives the teacher's shape; see the module docstring.
    ``ffn_size`` sets the feed-forward size instead of the teacher's ratio.
    """
    t_width, t_heads = int(t_cfg.hidden_size), int(t_cfg.num_attention_heads)
    t_ffn = int(t_cfg.intermediate_size)
    ffn = None if ffn_size is None else _positive_int("ffn_size", ffn_size)
    if hidden_size is None or hidden_size == t_width:
        return t_width, t_heads, ffn or t_ffn
    width = _positive_int("hidden_size", hidden_size)
    head_size = max(1, t_width // t_heads)
    heads = max(1, width // head_size)
    while width % heads:
        heads -= 1
    return width, heads, ffn or max(1, round(width * t_ffn / t_width))


def student_config(
    t_cfg: Any,
    layers: int,
    hidden_size: int | None,
    num_attention_heads: int | None = None,
    intermediate_size: int | None = None,
) -> Any:
    """The teacher's config with the student's depth and width (labels kept).

    ``num_attention_heads`` None keeps the teacher's head count; ``intermediate_size`` None
    keeps the teacher's ratio to the width (:func:`student_shape` gives the counts a
    distillation run uses).

    Raises:
        ValueError: a width that the head count does not divide, or a non-positive size.
    """
    t_width = int(t_cfg.hidden_size)
    width = t_width if hidden_size is None else _positive_int("hidden_size", hidden_size)
    heads = (
        int(t_cfg.num_attention_heads)
        if num_attention_heads is None
        else _positive_int("num_attention_heads", num_attention_heads)
    )
    if width % heads != 0:
        which = " (the teacher's head count)" if num_attention_heads is None else ""
        divisors = [h for h in range(1, width + 1) if width % h == 0]
        raise ValueError(
            f"hidden_size {width} is not divisible by num_attention_heads {heads}{which}; "
            f"choose a hidden_size that is a multiple of {heads}, or num_attention_heads "
            f"among the divisors of {width}: {divisors}"
        )
    if intermediate_size is None:
        ffn = int(t_cfg.intermediate_size)
        ffn = ffn if width == t_width else max(1, round(width * ffn / t_width))
    else:
        ffn = _positive_int("intermediate_size", intermediate_size)

    cfg = copy.deepcopy(t_cfg)
    cfg.num_hidden_layers = layers
    cfg.hidden_size = width
    cfg.num_attention_heads = heads
    cfg.intermediate_size = ffn
    cfg.name_or_path = ""
    for flag in ("output_hidden_states", "output_attentions"):
        if hasattr(cfg, flag):
            setattr(cfg, flag, False)
    return cfg


def parameter_count(cfg: Any) -> int:
    """Parameters of the sequence classifier ``cfg`` describes, built on the meta device."""
    import torch
    from transformers import AutoModelForSequenceClassification

    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


_COUNTS: dict[tuple[str, int | None, int | None, int | None, int | None], int] = {}
"""Memoised counts by (teacher config as JSON, depth or None for the teacher, width,
vocabulary size or None for the teacher's, feed-forward size or None for the ratio)."""


def _counted(t_cfg: Any, layers: int | None, hidden_size: int | None,
             vocab_size: int | None = None, ffn_size: int | None = None) -> int:
    key = (json.dumps(t_cfg.to_dict(), sort_keys=True, default=str), layers, hidden_size,
           vocab_size, ffn_size)
    if key not in _COUNTS:
        if layers is None:
            _COUNTS[key] = parameter_count(t_cfg)
        else:
            width, heads, ffn = student_shape(t_cfg, hidden_size, ffn_size)
            cfg = student_config(t_cfg, layers, width, heads, ffn)
            if vocab_size is not None:
                cfg.vocab_size = int(vocab_size)
            _COUNTS[key] = parameter_count(cfg)
    return _COUNTS[key]


def student_parameters(t_cfg: Any, layers: int, hidden_size: int | None,
                       vocab_size: int | None = None, ffn_size: int | None = None) -> int:
    """Parameters of the served student of ``layers`` layers and width ``hidden_size``
    (None: the teacher's) of the teacher whose config is ``t_cfg``, shaped by
    :func:`student_shape` (``ffn_size``: its feed-forward size, None: the teacher's ratio),
    with ``vocab_size`` wordpieces (None: the teacher's; a task vocabulary keeps fewer);
    equal to ``count_parameters`` of the built student."""
    return _counted(t_cfg, int(layers), hidden_size, vocab_size, ffn_size)


def teacher_parameters(t_cfg: Any) -> int:
    """Parameters of the teacher whose config is ``t_cfg`` (no weights are read)."""
    return _counted(t_cfg, None, None)


def teacher_config(teacher: str) -> Any:
    """A teacher's Hugging Face config (its ``config.json``; no weights are read).

    Raises:
        OSError: ``teacher`` is neither a checkpoint directory nor a reachable hub id.
    """
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(teacher)
