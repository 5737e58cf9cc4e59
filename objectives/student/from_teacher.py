"""``init: teacher-layers``: a student's weights selected from its teacher's, for any width up
to the teacher's.

Depth: student layer m is initialised from teacher layer g(m) (the layer mapping).
Width: weight selection, "Initializing Models with Larger Ones" (Xu et al., ICLR 2024,
arXiv:2311.18823): every student weight is the teacher weight restricted to a subset of its
rows and columns, and the subset of each dimension is the same in every tensor and every
layer, so the selected embedding coordinates feed the selected columns of every layer, and
the residual stream stays consistent across the network. The dimensions:

* hidden (H_T -> H_S): embeddings (word, position, token type) and their LayerNorm, every
  layer's projections in and out of the residual stream and its LayerNorms, the pooler,
  the classifier's input;
* attention (A_T heads of d_T -> A_S heads of d_S): whole heads are kept (A_S of the A_T
  heads, then d_S of each head's d_T coordinates), in the query, key and value rows and the
  attention output's columns, so each student head starts as a (narrowed) teacher head;
* feed-forward (F_T -> F_S): the intermediate layer's rows and the output layer's columns.

``selection="even"`` (default) takes evenly spaced indices (i * n // k for i < k: every
third of 384 coordinates for width 128), which Xu et al. found better than the first k
(``"first"``, also available). At the teacher's width every selection is the identity, so
the student gets exact copies of the mapped teacher layers.
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
