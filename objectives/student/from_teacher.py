"""``init: teacher-layers``: a student's weights selected from its teacher's, for any width up
to the teacher's.

:func:`copy_teacher_weights`: student layer m starts from teacher layer g(m), each weight the
teacher's restricted to a subset of its rows and columns, the same subset per dimension
(hidden, attention, feed-forward) in every tensor and layer; :func:`select` picks the subset:
``"even"`` (default) i * n // k for i < k, or ``"first"``, the first k.

Why: docs/design.md, "Weight selection for narrower students", "Evenly spaced selection".
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

__all__ = ["SELECTIONS", "copy_teacher_weights", "select"]

SELECTIONS = ("even", "first")

# "bert.encoder.layer.3.attention.self.query.weight" -> layer index 3 (0-based).
LAYER_KEY = re.compile(r"(^|\.)encoder\.layer\.(\d+)\.")
_ROLES = (  # BERT parameter names whose axes are not all hidden-sized
    (re.compile(r"attention\.self\.(query|key|value)\.weight$"), ("attention", "hidden")),
    (re.compile(r"attention\.self\.(query|key|value)\.bias$"), ("attention",)),
    (re.compile(r"attention\.output\.dense\.weight$"), ("hidden", "attention")),
    (re.compile(r"intermediate\.dense\.weight$"), ("ffn", "hidden")),
    (re.compile(r"intermediate\.dense\.bias$"), ("ffn",)),
    (re.compile(r"(?<!attention\.)output\.dense\.weight$"), ("hidden", "ffn")),
)


def select(n: int, k: int, selection: str = "even") -> list[int]:
    """k of the indices 0..n-1: evenly spaced (``"even"``) or the first k (``"first"``)."""
    if not 1 <= k <= n:
        raise ValueError(f"cannot select {k} of {n} coordinates; a student is at most as "
                         f"wide as its teacher with init='teacher-layers'")
    if selection == "first":
        return list(range(k))
    if selection == "even":
        return [(i * n) // k for i in range(k)]
    raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")


def _indices(t_cfg: Any, s_cfg: Any, selection: str) -> dict[str, list[int]]:
    """The selected teacher coordinates of each dimension (module docstring)."""
    t_width, s_width = int(t_cfg.hidden_size), int(s_cfg.hidden_size)
    t_heads, s_heads = int(t_cfg.num_attention_heads), int(s_cfg.num_attention_heads)
    t_head, s_head = t_width // t_heads, s_width // s_heads
    if s_heads <= t_heads and s_head <= t_head:
        inner = [h * t_head + d for h in select(t_heads, s_heads, selection)
                 for d in select(t_head, s_head, selection)]
    else:  # more (narrower) heads than the teacher: select coordinates, not heads
        inner = select(t_heads * t_head, s_heads * s_head, selection)
    return {
        "hidden": select(t_width, s_width, selection),
        "attention": inner,
        "ffn": select(int(t_cfg.intermediate_size), int(s_cfg.intermediate_size), selection),
    }


def _roles(key: str, t_shape: tuple[int, ...], s_shape: tuple[int, ...],
           sizes: dict[str, tuple[int, int]]) -> tuple[str | None, ...]:
    """Which dimension each axis of parameter ``key`` is (None: copied whole)."""
    for pattern, roles in _ROLES:
        if pattern.search(key) and len(roles) == len(t_shape):
            return tuple(r if t != s else None for r, t, s in zip(roles, t_shape, s_shape,
                                                                    strict=True))
    out: list[str | None] = []
    for t, s in zip(t_shape, s_shape, strict=True):
        role = None
        if t != s:
            role = next((name for name, pair in sizes.items() if pair == (t, s)), "?")
        out.append(role)
    return tuple(out)


def copy_teacher_weights(teacher: nn.Module, student: nn.Module, layers: list[int],
                         selection: str = "even") -> None:
    """Initialise ``student`` in place from ``teacher`` (module docstring).

    Raises:
        ValueError: the teacher has no ``...encoder.layer.<i>...`` parameters, or a student
            parameter has no teacher counterpart it can be selected from.
    """
    source = teacher.state_dict()
    target = student.state_dict()
    if not any(LAYER_KEY.search(k) for k in source):
        raise ValueError(
            f"teacher ({type(teacher).__name__}) has no '...encoder.layer.<i>...' parameters; "
            f"init='teacher-layers' supports BERT-like encoders only; use init='random'"
        )
    t_cfg, s_cfg = teacher.config, student.config
    index = _indices(t_cfg, s_cfg, selection)
    sizes = {name: (len(_full(name, t_cfg)), len(idx)) for name, idx in index.items()}
    new_state: dict[str, torch.Tensor] = {}
    for key, value in target.items():
        match = LAYER_KEY.search(key)
        if match is None:
            src_key = key
        else:
            g = layers[int(match.group(2))]  # student layer m = index + 1 learns from g(m)
            start, end = match.span(2)
            src_key = f"{key[:start]}{g - 1}{key[end:]}"
        src = source.get(src_key)
        roles = () if src is None or src.dim() != value.dim() else _roles(
            key, tuple(src.shape), tuple(value.shape), sizes)
        if src is None or src.dim() != value.dim() or "?" in roles:
            raise ValueError(
                f"cannot copy student parameter {key!r} from teacher parameter {src_key!r}: "
                f"{'missing in the teacher' if src is None else 'shapes differ'}"
            )
        picked = src.detach()
        for axis, role in enumerate(roles):
            if role is not None:
                picked = picked.index_select(axis, torch.tensor(index[role], device=picked.device))
        if picked.shape != value.shape:
            raise ValueError(f"cannot copy student parameter {key!r} from teacher parameter "
                             f"{src_key!r}: shapes differ")
        new_state[key] = picked.to(device="cpu", dtype=value.dtype).clone()
    student.load_state_dict(new_state, strict=True)


def _full(name: str, t_cfg: Any) -> range:
    n = {"hidden": t_cfg.hidden_size, "attention": t_cfg.hidden_size,
         "ffn": t_cfg.intermediate_size}[name]
    return range(int(n))
