"""Build and initialise the TinyBERT-style student of a teacher.

A student has M = ``len(mapping)`` transformer layers and is built from the teacher's
configuration (N layers); student layer m (1..M) learns from teacher layer
g(m) = ``mapping[m - 1]``, checked by :func:`objectives.mapping.check_mapping`.

Width. By default the student is as wide as the teacher. With ``hidden_size`` set, it is
narrower (or wider) and keeps the teacher's number of attention heads, as TinyBERT does
(4 layers, hidden 312, 12 heads of size 26 from BERT-base's 12 heads of 64): TinyBERT's
attention loss compares the student's and the teacher's attention maps head by head, so the
head counts must agree. ``intermediate_size`` keeps the teacher's ratio to ``hidden_size``.
When the widths differ the student gets the projection W_h (see :mod:`objectives.student`).

Initialisation (``init``):

* ``"teacher-layers"`` (default): embeddings, pooler and classifier head are copied from
  the teacher, and teacher layer g(m) is copied into student layer m. Needs the student to
  be as wide as the teacher.
* ``"random"``: everything (embeddings and classifier head included) is freshly initialised
  by the model class's own initialiser, from torch's global RNG (seed it for repeatability).
* ``"checkpoint"``: student weights are loaded from a directory written by
  :meth:`Student.save_pretrained` (or any ``from_pretrained`` directory) whose depth, width
  and labels match.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .mapping import check_mapping
from .student import Student

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

__all__ = ["INIT_MODES", "build_student"]

INIT_MODES = ("teacher-layers", "random", "checkpoint")

# "bert.encoder.layer.3.attention.self.query.weight" -> layer index 3 (0-based).
_LAYER_KEY = re.compile(r"(^|\.)encoder\.layer\.(\d+)\.")
_REQUIRED_CONFIG = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")


def build_student(
    teacher: PreTrainedModel,
    mapping: Sequence[int],
    hidden_size: int | None = None,
    init: str = "teacher-layers",
    checkpoint: str | Path | None = None,
    *,
    num_attention_heads: int | None = None,
    intermediate_size: int | None = None,
) -> Student:
    """Build an M-layer student for ``teacher``, M = ``len(mapping)``.

    Args:
        teacher: an N-layer BERT-like sequence classifier (``BertForSequenceClassification``
            or another model whose parameters are named ``...encoder.layer.<i>...``).
        mapping: [g(1), ..., g(M)]: strictly increasing teacher layer numbers in 1..N, one per
            student layer (1 <= M <= N).
        hidden_size: the student's width H_S; ``None`` keeps the teacher's width H_T.
        init: ``"teacher-layers"``, ``"random"`` or ``"checkpoint"`` (module docstring).
        checkpoint: the directory to load when ``init="checkpoint"``; must be ``None``
            otherwise.
        num_attention_heads: heads per layer; ``None`` keeps the teacher's count (needed for
            TinyBERT's head-by-head attention loss). Must divide the width.
        intermediate_size: feed-forward width; ``None`` keeps the teacher's ratio
            ``intermediate_size / hidden_size`` (rounded), the teacher's own size at full width.

    Returns:
        A :class:`Student` on the CPU, in training mode, with ``attn_implementation="eager"``,
        the teacher's labels (``id2label``/``label2id``) and a projection W_h when
        H_S != H_T.

    Raises:
        ValueError: a bad ``mapping``, ``hidden_size``, ``init``, ``checkpoint``,
            ``num_attention_heads`` or ``intermediate_size``; ``init="teacher-layers"`` with a
            width other than the teacher's; a checkpoint that cannot be loaded or does not match.
    """
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {', '.join(INIT_MODES)}, got {init!r}")
    if init == "checkpoint" and checkpoint is None:
        raise ValueError("init='checkpoint' needs checkpoint, a directory to load; got None")
    if init != "checkpoint" and checkpoint is not None:
        raise ValueError(
            f"checkpoint={str(checkpoint)!r} is only used with init='checkpoint', got init={init!r}"
        )
    t_cfg = teacher.config
    missing = [name for name in _REQUIRED_CONFIG if not hasattr(t_cfg, name)]
    if missing:
        raise ValueError(
            f"teacher ({type(teacher).__name__}) is not BERT-like: its config lacks {missing}"
        )
    n_layers = int(t_cfg.num_hidden_layers)
    layers = check_mapping(mapping, n_layers)
    cfg = _student_config(t_cfg, len(layers), hidden_size, num_attention_heads, intermediate_size)
    width = int(cfg.hidden_size)
    t_width = int(t_cfg.hidden_size)

    if init == "teacher-layers" and width != t_width:
        raise ValueError(
            f"init='teacher-layers' copies teacher weights, which needs the teacher's width "
            f"{t_width}, but hidden_size={hidden_size}; use init='random' (or 'checkpoint') "
            f"for a student of another width"
        )
    if init == "checkpoint":
        model = _load_checkpoint(Path(checkpoint), cfg)  # type: ignore[arg-type]
    else:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_config(cfg, attn_implementation="eager")
        if init == "teacher-layers":
            _copy_teacher_weights(teacher, model, layers)
    model.train()

    projection = None
    if width != t_width:
        projection = nn.Linear(width, t_width)
        std = float(getattr(cfg, "initializer_range", 0.02))
        nn.init.normal_(projection.weight, mean=0.0, std=std)
        nn.init.zeros_(projection.bias)
    return Student(model, layers, t_width, projection)


# --------------------------------------------------------------------------- helpers


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int (or None), got {value!r}")
    return value


def _student_config(
    t_cfg: Any,
    layers: int,
    hidden_size: int | None,
    num_attention_heads: int | None,
    intermediate_size: int | None,
) -> Any:
    """The teacher's config with the student's depth and width (labels kept)."""
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


def _copy_teacher_weights(teacher: nn.Module, student: nn.Module, layers: list[int]) -> None:
    """Copy embeddings, pooler, head and teacher layer g(m) -> student layer m, in place."""
    source = teacher.state_dict()
    target = student.state_dict()
    if not any(_LAYER_KEY.search(k) for k in source):
        raise ValueError(
            f"teacher ({type(teacher).__name__}) has no '...encoder.layer.<i>...' parameters; "
            f"init='teacher-layers' supports BERT-like encoders only; use init='random'"
        )
    new_state: dict[str, torch.Tensor] = {}
    for key, value in target.items():
        match = _LAYER_KEY.search(key)
        if match is None:
            src_key = key
        else:
            g = layers[int(match.group(2))]  # student layer m = index + 1 learns from g(m)
            start, end = match.span(2)
            src_key = f"{key[:start]}{g - 1}{key[end:]}"
        if src_key not in source or source[src_key].shape != value.shape:
            raise ValueError(
                f"cannot copy student parameter {key!r} from teacher parameter {src_key!r}: "
                f"{'missing in the teacher' if src_key not in source else 'shapes differ'}"
            )
        new_state[key] = source[src_key].detach().to(device="cpu", dtype=value.dtype).clone()
    student.load_state_dict(new_state, strict=True)


def _load_checkpoint(path: Path, cfg: Any) -> PreTrainedModel:
    """Load a student checkpoint and check it matches the requested depth, width and labels."""
    from transformers import AutoModelForSequenceClassification

    if not path.is_dir():
        raise ValueError(f"checkpoint must be an existing directory, got {str(path)!r}")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), attn_implementation="eager"
        )
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one readable error
        raise ValueError(f"could not load student checkpoint {str(path)!r}: {e}") from e
    got = model.config
    checks = {
        "num_hidden_layers": (int(got.num_hidden_layers), int(cfg.num_hidden_layers)),
        "hidden_size": (int(got.hidden_size), int(cfg.hidden_size)),
        "num_labels": (int(got.num_labels), int(cfg.num_labels)),
    }
    bad = {k: v for k, v in checks.items() if v[0] != v[1]}
    if bad:
        detail = ", ".join(f"{k} {have} (expected {want})" for k, (have, want) in bad.items())
        raise ValueError(f"checkpoint {str(path)!r} does not match the student: {detail}")
    if _labels(got.id2label) != _labels(cfg.id2label):
        raise ValueError(
            f"checkpoint {str(path)!r} has labels {_labels(got.id2label)}, the teacher "
            f"{_labels(cfg.id2label)}"
        )
    return model


def _labels(id2label: Mapping[Any, str]) -> list[str]:
    return [str(id2label[k]) for k in sorted(id2label, key=int)]
