"""The student a distillation run trains: a Hugging Face classifier plus the projection W_h.

:class:`Student` is a BERT-like sequence classifier with M transformer layers; student layer m
(1..M) learns from teacher layer g(m) = ``mapping[m - 1]`` (chosen by :mod:`.mapping`;
built and initialised from its teacher by :mod:`objectives.student.build`). When the widths
differ, the hidden-state loss compares ``H_S · W_h`` with ``H_T`` through one learned
projection W_h, which :meth:`Student.save_pretrained` and :func:`count_parameters` leave out.

Why: docs/design.md, "One projection W_h for all layers", "Student attention maps".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel

__all__ = ["MODEL_INPUTS", "Student", "StudentOutput", "count_parameters"]

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


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
        attentions: ``None`` unless intermediates were requested from an eager-attention
            model; else M tensors of shape (B, heads, L, L), post-softmax attention
            probabilities, index m - 1 for layer m.
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

    @property
    def attention_implementation(self) -> str:
        """The model's attention kernel: ``"eager"`` (returns attention maps) or ``"sdpa"``."""
        return str(getattr(self.model.config, "_attn_implementation", None) or "eager")

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """Map a student hidden state (..., H_S) to the teacher's width (..., H_T)."""
        return hidden if self.projection is None else self.projection(hidden)

    def forward(self, output_intermediate: bool = False, **batch: Any) -> StudentOutput:
        """Run the student on a batch.

        Args:
            output_intermediate: also return hidden states (raw and projected) and, with
                eager attention, attention maps; otherwise those fields are ``None``.
            **batch: a collated batch. Only the model inputs (``input_ids``,
                ``attention_mask``, ``token_type_ids``, ``position_ids``) are passed on;
                other keys such as ``labels`` are ignored, so a collator's output can be
                passed as it is.

        Returns:
            :class:`StudentOutput` with logits (B, K) and, on request, M + 1 hidden states
            (B, L, H_S), their projections (B, L, H_T) and (eager attention only) M
            attention maps (B, heads, L, L).
        """
        if "input_ids" not in batch and "inputs_embeds" not in batch:
            raise ValueError(
                f"batch must hold 'input_ids'; got keys {sorted(batch)}; accepted model inputs: "
                f"{', '.join(MODEL_INPUTS)}"
            )
        inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS or k == "inputs_embeds"}
        maps = output_intermediate and self.attention_implementation == "eager"
        out = self.model(
            **inputs,
            output_hidden_states=output_intermediate,
            output_attentions=maps,
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
            attentions=tuple(out.attentions) if maps else None,
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
            _write_vocab_txt(path, tokenizer)
        return path


def _write_vocab_txt(path: Path, tokenizer: Any) -> None:
    """Write ``vocab.txt`` (one piece per line, in id order) beside a WordPiece tokenizer's
    ``tokenizer.json`` when ``save_pretrained`` did not, for tools that read it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (path / "vocab.txt").exists() or backend is None \
            or type(backend.model).__name__ != "WordPiece":
        return
    vocab = backend.get_vocab()
    pieces = sorted(vocab, key=vocab.__getitem__)
    (path / "vocab.txt").write_text("".join(p + "\n" for p in pieces), encoding="utf-8")


def count_parameters(student: Student | nn.Module) -> int:
    """Number of parameters of the served model: the HF model's, without the projection W_h.

    Parameters shared between modules are counted once.
    """
    model = student.model if isinstance(student, Student) else student
    return sum(p.numel() for p in model.parameters())
