"""Build and initialise the TinyBERT-style student of a teacher: :func:`build_student`.

A student has M = ``len(mapping)`` transformer layers (student layer m learns from teacher
layer g(m) = ``mapping[m - 1]``), the teacher's width unless ``hidden_size`` is set.
``init``: ``"teacher-layers"`` (default: teacher layer g(m) into student layer m, weights
selected when narrower), ``"random"`` (fresh) or ``"checkpoint"`` (a saved student's weights);
``attn_implementation``: ``"eager"`` (default, attention maps) or ``"sdpa"`` (faster, none).

Why: docs/design.md, "Student width and heads", "Student initialisation", "Eager or SDPA attention".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .from_teacher import SELECTIONS, copy_teacher_weights
from .mapping import check_mapping
from .model import Student
from .size import student_config

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

__all__ = ["ATTENTION_IMPLEMENTATIONS", "INIT_MODES", "build_student"]

INIT_MODES = ("teacher-layers", "random", "checkpoint")
ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa")

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
    selection: str = "even",
    attn_implementation: str = "eager",
    dropout: float | None = None,
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
        selection: which teacher rows and columns a narrower ``teacher-layers`` student
            takes: ``"even"`` (evenly spaced) or ``"first"`` (:mod:`.from_teacher`).
        attn_implementation: ``"eager"`` (attention maps available) or ``"sdpa"``.
        dropout: the student's hidden and attention dropout while it learns; ``None`` keeps
            the teacher's. The student's saved config carries the value used.

    Returns:
        A :class:`Student` on the CPU, in training mode, with that attention implementation,
        the teacher's labels (``id2label``/``label2id``) and a projection W_h when
        H_S != H_T.

    Raises:
        ValueError: a bad ``mapping``, ``hidden_size``, ``init``, ``checkpoint``,
            ``num_attention_heads``, ``intermediate_size``, ``attn_implementation`` or
            ``dropout``;
            ``init="teacher-layers"`` with a
            width above the teacher's; a checkpoint that cannot be loaded or does not match.
    """
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {', '.join(INIT_MODES)}, got {init!r}")
    if attn_implementation not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"attn_implementation must be one of "
                         f"{', '.join(ATTENTION_IMPLEMENTATIONS)}, got {attn_implementation!r}")
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
    cfg = student_config(t_cfg, len(layers), hidden_size, num_attention_heads, intermediate_size)
    overrides = _dropout_overrides(cfg, dropout)
    for name, value in overrides.items():
        setattr(cfg, name, value)
    width = int(cfg.hidden_size)
    t_width = int(t_cfg.hidden_size)

    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if init == "teacher-layers" and width > t_width:
        raise ValueError(
            f"init='teacher-layers' selects teacher weights, which needs a width up to the "
            f"teacher's width {t_width}, but hidden_size={hidden_size}; use init='random' (or "
            f"'checkpoint') for a wider student"
        )
    if init == "checkpoint":
        model = _load_checkpoint(Path(checkpoint), cfg,  # type: ignore[arg-type]
                                 attn_implementation, overrides)
    else:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_config(
            cfg, attn_implementation=attn_implementation)
        if init == "teacher-layers":
            copy_teacher_weights(teacher, model, layers, selection)
    model.train()

    projection = None
    if width != t_width:
        projection = nn.Linear(width, t_width)
        std = float(getattr(cfg, "initializer_range", 0.02))
        nn.init.normal_(projection.weight, mean=0.0, std=std)
        nn.init.zeros_(projection.bias)
    return Student(model, layers, t_width, projection)


# --------------------------------------------------------------------------- helpers


def _dropout_overrides(cfg: Any, dropout: float | None) -> dict[str, float]:
    """The config fields that set a BERT-like model's dropout to ``dropout`` (none if None)."""
    if dropout is None:
        return {}
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    names = ["hidden_dropout_prob", "attention_probs_dropout_prob"]
    if getattr(cfg, "classifier_dropout", None) is not None:
        names.append("classifier_dropout")
    return {name: float(dropout) for name in names}


def _load_checkpoint(path: Path, cfg: Any, attn_implementation: str,
                     overrides: Mapping[str, float]) -> PreTrainedModel:
    """Load a student checkpoint and check it matches the requested depth, width and labels."""
    from transformers import AutoModelForSequenceClassification

    if not path.is_dir():
        raise ValueError(f"checkpoint must be an existing directory, got {str(path)!r}")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), attn_implementation=attn_implementation, **overrides
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
