"""The teacher's outputs for a batch: a live forward with intermediates, in the same form as the
teacher-output cache, or the cache's own (:class:`TeacherSignal`).

:func:`forward_teacher` runs the teacher on one padded batch and returns its logits, the
hidden states and the pre-softmax attention scores asked for, with every padding position
set to 0: exactly what :meth:`~kdtune.objectives.cache.store.TeacherOutputs.batch` gives
from the cache, so a distillation loss sees the same numbers from both paths.

Index conventions (as :func:`kdtune.objectives.student.mapping.attention_pairs` gives them):
``hidden_states`` index 0 is the embedding output and i the output of layer i;
``attentions`` index i - 1 is layer i. :func:`average_heads`: student head i gets the mean of
teacher heads i*A_T/A_S up to (i+1)*A_T/A_S.
Why: docs/design.md, "Attention loss across head counts".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from kdtune.errors import UsageError

from ..compute.attention import capture_attention_scores
from ..compute.predict import MODEL_INPUTS

__all__ = ["TeacherSignal", "average_heads", "check_available", "forward_teacher", "layer_indices"]


def layer_indices(name: str, values: Iterable[int]) -> list[int]:
    """``values`` as sorted unique non-negative ints.

    Raises:
        UsageError: a string, or a value that is not an int >= 0 (naming ``name``).
    """
    if isinstance(values, str | bytes):
        raise UsageError(f"{name} must be a sequence of ints >= 0, got {values!r}")
    out = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise UsageError(f"{name} must hold ints >= 0, got {v!r} in {list(values)!r}")
        out.add(int(v))
    return sorted(out)


def check_available(name: str, indices: Sequence[int], available: int) -> None:
    """Raise UsageError naming ``name`` unless every index is below ``available``."""
    bad = [i for i in indices if i >= available]
    if bad:
        raise UsageError(
            f"{name} {bad} out of range; the teacher has indices 0..{available - 1} "
            f"({'hidden_states' if name == 'layers_hidden' else 'attentions'})"
        )


@torch.no_grad()
def forward_teacher(
    teacher: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    layers_hidden: Sequence[int] = (),
    layers_attention: Sequence[int] = (),
) -> dict[str, Any]:
    """A live teacher forward, returned in :meth:`TeacherOutputs.batch`'s format.

    Hidden states of padding tokens and attention rows/columns of padding tokens are set to 0
    (as in the cache), so a loss sees the same numbers from both paths. The teacher should
    be in eval mode (dropout off). Attention maps are the pre-softmax scores
    ``Q·Kᵀ/sqrt(d)`` (TinyBERT's attention loss compares those), captured with hooks, so any
    attention implementation works.

    Args:
        teacher: the teacher classifier.
        batch: ``input_ids`` and ``attention_mask`` (B, L) [, ``token_type_ids``]; other
            keys are ignored.
        layers_hidden: ``hidden_states`` indices to return (0 = embeddings).
        layers_attention: ``attentions`` indices to return (0-based, index i - 1 = layer i).

    Returns:
        ``{"logits": (B, K) float32, "hidden": {i: (B, L, H)}, "attentions": {i: (B, heads,
        L, L)}, "lengths": (B,)}`` on the teacher's device.
    """
    hidden_idx = layer_indices("layers_hidden", layers_hidden)
    att_idx = layer_indices("layers_attention", layers_attention)
    inputs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
    if "attention_mask" not in inputs:
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    scores: list[torch.Tensor] = []
    if att_idx:
        with capture_attention_scores(teacher) as captured:
            res = teacher(**inputs, output_hidden_states=bool(hidden_idx), return_dict=True)
        scores = list(captured.scores)
    else:
        res = teacher(**inputs, output_hidden_states=bool(hidden_idx), return_dict=True)
    mask = inputs["attention_mask"].to(torch.float32)
    out: dict[str, Any] = {
        "logits": res.logits.float(),
        "hidden": {},
        "attentions": {},
        "lengths": inputs["attention_mask"].sum(dim=1),
    }
    if hidden_idx:
        states = res.hidden_states
        check_available("layers_hidden", hidden_idx, len(states) if states else 0)
        out["hidden"] = {i: states[i].float() * mask[:, :, None] for i in hidden_idx}
    if att_idx:
        check_available("layers_attention", att_idx, len(scores))
        square = mask[:, None, :, None] * mask[:, None, None, :]
        out["attentions"] = {i: scores[i].float() * square for i in att_idx}
    return out


@dataclass(frozen=True)
class TeacherSignal:
    """Where the losses read the teacher's outputs from, batch by batch.

    Attributes:
        model: the teacher (used for a live forward when ``live``).
        train, eval: cached outputs for the training and evaluation splits, or ``None``
            when the cache is off.
        live: whether training batches need a live teacher forward (no cache, or
            intermediates over the cache's memory budget).
        hidden: the teacher ``hidden_states`` indices the intermediate losses read.
        attention: the teacher ``attentions`` indices the attention loss reads.
        heads: the student's attention heads; teacher attentions are averaged into this
            many heads (:func:`average_heads`) when it differs from the teacher's.
    """

    model: Any
    train: Any
    eval: Any
    live: bool
    hidden: tuple[int, ...]
    attention: tuple[int, ...]
    heads: int | None = None

    def for_batch(self, batch: dict, idx: torch.Tensor, device: torch.device) -> dict:
        """Teacher logits (and the needed hidden states / attentions) for one batch.

        From the cache when it holds everything, else from a live forward
        (:func:`forward_teacher`, which zeroes padding exactly as
        the cache does, so both paths feed the losses the same numbers).
        """
        seq_len = batch["input_ids"].shape[1]
        if not self.live:
            out = self.train.batch(idx.tolist(), seq_len, device=device)
        else:
            with torch.no_grad():
                out = forward_teacher(self.model, batch, self.hidden, self.attention)
            if self.train is not None:  # cached logits keep trials identical either way
                out["logits"] = self.train.batch(idx.tolist(), seq_len, device=device)["logits"]
        if self.heads is not None and out.get("attentions"):
            out["attentions"] = {i: average_heads(a, self.heads)
                                 for i, a in out["attentions"].items()}
        return out


def average_heads(scores: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, A_T, L, L) attention maps -> (B, ``heads``, L, L), each output head the mean of
    its window of input heads (adaptive average pooling over the head axis; a window of
    one repeats a head when ``heads`` > A_T). Unchanged when the counts agree."""
    n = scores.shape[1]
    if n == heads:
        return scores
    weights = _head_pool(n, heads).to(scores.device)
    return torch.einsum("sh,bhij->bsij", weights, scores.float()).to(scores.dtype)


@functools.lru_cache(maxsize=16)
def _head_pool(n: int, heads: int) -> torch.Tensor:
    """(heads, n) averaging weights of :func:`average_heads`, built once per shape (it runs
    on every batch of every attention layer)."""
    weights = torch.zeros(heads, n, dtype=torch.float32)
    for i in range(heads):
        lo, hi = (i * n) // heads, -(-(i + 1) * n // heads)
        weights[i, lo:hi] = 1.0 / (hi - lo)
    return weights
