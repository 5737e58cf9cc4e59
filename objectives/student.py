"""Build the TinyBERT-style student that a distillation run trains.

A student is a BERT-like sequence classifier with M = ``len(mapping)`` transformer layers,
built from the teacher's configuration (N layers). Student layer m (1..M) learns from teacher
layer g(m) = ``mapping[m - 1]``; see :mod:`objectives.mapping` for how mappings are chosen.

Width. By default the student is as wide as the teacher. With ``hidden_size`` set, it is
narrower (or wider) and keeps the teacher's number of attention heads, as TinyBERT does
(4 layers, hidden 312, 12 heads of size 26 from BERT-base's 12 heads of 64): TinyBERT's
attention loss compares the student's and the teacher's attention maps head by head, so the
head counts must agree. ``intermediate_size`` keeps the teacher's ratio to ``hidden_size``.

Initialisation (``init``):

* ``"teacher-layers"`` (default): embeddings, pooler and classifier head are copied from
  the teacher, and teacher layer g(m) is copied into student layer m. Needs the student to
  be as wide as the teacher.
* ``"random"``: everything (embeddings and classifier head included) is freshly initialised
  by the model class's own initialiser, from torch's global RNG (seed it for repeatability).
* ``"checkpoint"``: student weights are loaded from a directory written by
  :meth:`Student.save_pretrained` (or any ``from_pretrained`` directory) whose depth, width
  and labels match.

Projection W_h. When the widths differ, TinyBERT's hidden-state loss compares
``H_S · W_h`` with ``H_T``. kdtune uses ONE learned ``nn.Linear(student_hidden,
teacher_hidden)`` shared by all student layers AND the embedding output, as TinyBERT's
released code does (its ``fit_dense``); the paper's separate W_e for embeddings is not used.
With equal widths there is no projection (identity, no parameters). The projection exists
for training only: :meth:`Student.save_pretrained` and :func:`count_parameters` leave it out.

Attention maps. The student is built with ``attn_implementation="eager"`` so that it can
return attention maps; Hugging Face's eager attention returns post-softmax probabilities,
shape (B, heads, L, L), which is also what the teacher-output cache stores.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

__all__ = [
    "INIT_MODES",
    "MODEL_INPUTS",
    "Student",
    "StudentOutput",
    "build_student",
    "count_parameters",
]

INIT_MODES = ("teacher-layers", "random", "checkpoint")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")

# "bert.encoder.layer.3.attention.self.query.weight" -> layer index 3 (0-based).
_LAYER_KEY = re.compile(r"(^|\.)encoder\.layer\.(\d+)\.")
_REQUIRED_CONFIG = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")


@dataclass(frozen=True)
class StudentOutput:
    """What :meth:`Student.forward` returns.

    Attributes:
        logits: (B, K) classifier logits.
        hidden_states: ``None`` unless intermediates were requested; else M + 1 tensors of
            shape (B, L, H_S): index 0 the embedding output, index m the output of layer m.
        projected_hidden_states: ``hidden_states`` mapped to the teacher's width by the
            shared projection W_h, each (B, L, H_T); the very same tensors as
            ``hidden_states`` when the widths agree. ``None`` when ``hidden_states`` is.
        attentions: ``None`` unless intermediates were requested; else M tensors of shape
            (B, heads, L, L), post-softmax attention probabilities, index m - 1 for layer m.
    """

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    projected_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, key: str) -> Any:
        """Field access by name, ``out["logits"]``, as with Hugging Face model outputs."""
        if key not in _OUTPUT_FIELDS:
            raise KeyError(f"{key!r}; StudentOutput fields: {', '.join(_OUTPUT_FIELDS)}")
        return getattr(self, key)


_OUTPUT_FIELDS = ("logits", "hidden_states", "projected_hidden_states", "attentions")


class Student(nn.Module):
    """A Hugging Face sequence classifier plus the training-only projection W_h.

    Attributes:
        model: the Hugging Face classifier (what gets saved and served).
        projection: ``nn.Linear(H_S, H_T)`` shared by all hidden states when the widths
            differ, else ``None``.
        mapping: [g(1), ..., g(M)], the teacher layer each student layer learns from.
        teacher_hidden_size: H_T.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        mapping: Sequence[int],
        teacher_hidden_size: int,
        projection: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.projection = projection
        self.mapping = list(mapping)
        self.teacher_hidden_size = int(teacher_hidden_size)

    @property
    def config(self) -> Any:
        """The Hugging Face model's configuration."""
        return self.model.config

    @property
    def num_layers(self) -> int:
        """M, the student's number of transformer layers."""
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        """H_S, the student's hidden width."""
        return int(self.model.config.hidden_size)

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """Map a student hidden state (..., H_S) to the teacher's width (..., H_T)."""
        return hidden if self.projection is None else self.projection(hidden)

    def forward(self, output_intermediate: bool = False, **batch: Any) -> StudentOutput:
        """Run the student on a batch.

        Args:
            output_intermediate: also return hidden states (raw and projected) and
                attention maps; otherwise those fields are ``None``.
            **batch: a collated batch. Only the model inputs (``input_ids``,
                ``attention_mask``, ``token_type_ids``, ``position_ids``) are passed on;
                other keys such as ``labels`` are ignored, so a collator's output can be
                passed as it is.

        Returns:
            :class:`StudentOutput` with logits (B, K) and, on request, M + 1 hidden states
            (B, L, H_S), their projections (B, L, H_T) and M attention maps (B, heads, L, L).
        """
        if "input_ids" not in batch and "inputs_embeds" not in batch:
            raise ValueError(
                f"batch must hold 'input_ids'; got keys {sorted(batch)}; accepted model inputs: "
                f"{', '.join(MODEL_INPUTS)}"
            )
        inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS or k == "inputs_embeds"}
        out = self.model(
            **inputs,
            output_hidden_states=output_intermediate,
            output_attentions=output_intermediate,
            return_dict=True,
        )
        if not output_intermediate:
            return StudentOutput(logits=out.logits)
        hidden = tuple(out.hidden_states)
        projected = hidden if self.projection is None else tuple(self.project(h) for h in hidden)
        return StudentOutput(
            logits=out.logits,
            hidden_states=hidden,
            projected_hidden_states=projected,
            attentions=tuple(out.attentions),
        )

    def save_pretrained(self, directory: str | Path, tokenizer: Any | None = None) -> Path:
        """Save the Hugging Face model (and ``tokenizer``) to ``directory``; return its path.

        The projection W_h is not saved: the directory is a plain Hugging Face checkpoint
        that ``AutoModelForSequenceClassification.from_pretrained`` and
        ``transformers.pipeline("text-classification", model=directory)`` load directly
        (the pipeline also needs the tokenizer saved here). Label names (``id2label``) are
        the teacher's.
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)
        return path


def count_parameters(student: Student | nn.Module) -> int:
    """Number of parameters of the served model: the HF model's, without the projection W_h.

    Parameters shared between modules are counted once.
    """
    model = student.model if isinstance(student, Student) else student
    return sum(p.numel() for p in model.parameters())


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
    layers = _check_mapping(mapping, n_layers)
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


def _check_mapping(mapping: Sequence[int], teacher_layers: int) -> list[int]:
    """Validate [g(1)..g(M)]: 1 <= M <= N, ints in 1..N, strictly increasing."""
    if isinstance(mapping, str | bytes) or not isinstance(mapping, Sequence):
        raise ValueError(
            f"mapping must be a list of teacher layer numbers in 1..{teacher_layers}, "
            f"got {mapping!r} ({type(mapping).__name__})"
        )
    values = list(mapping)
    if not 1 <= len(values) <= teacher_layers:
        raise ValueError(
            f"mapping must hold 1..{teacher_layers} (the teacher's depth) teacher layers, one "
            f"per student layer; got {len(values)}: {values}"
        )
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= teacher_layers:
            raise ValueError(
                f"mapping values must be teacher layer numbers in 1..{teacher_layers}, got "
                f"{v!r} in {values}"
            )
    for a, b in zip(values, values[1:], strict=False):
        if b <= a:
            raise ValueError(f"mapping must be strictly increasing, got {b} after {a} in {values}")
    return values


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
