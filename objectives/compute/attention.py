"""Attention *scores* (before softmax) of BERT self-attention layers, as TinyBERT distils them.

Why: docs/design.md, "Attention scores from hooks", "Masked attention scores are -10000".
:func:`capture_attention_scores` recomputes S = Q·Kᵀ / sqrt(d_head) from hooks on each layer's
``query`` and ``key``; masked key positions get :data:`MASKED_SCORE` (-10000). Example::

    with capture_attention_scores(student) as cap:
        out = student(**batch)
    loss = attention_mse(cap.scores[0], teacher_scores[2])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["MASKED_SCORE", "AttentionScores", "capture_attention_scores", "scores_for_layers"]

MASKED_SCORE = -10000.0
"""The score given to padded key positions (TinyBERT's extended-mask value)."""


def _self_attention_modules(model: nn.Module) -> list[nn.Module]:
    """Self-attention modules in layer order: duck-typed on BERT's attribute names
    (``query``/``key`` Linear, ``num_attention_heads``, ``attention_head_size``), as in
    ``transformers.models.bert.modeling_bert.BertSelfAttention``; cross-attention skipped."""
    found = []
    for module in model.modules():
        if "crossattention" in type(module).__name__.lower():
            continue
        if (
            isinstance(getattr(module, "query", None), nn.Linear)
            and isinstance(getattr(module, "key", None), nn.Linear)
            and hasattr(module, "num_attention_heads")
            and hasattr(module, "attention_head_size")
        ):
            found.append(module)
    return found


class AttentionScores:
    """Scores captured during the latest forward pass of the model (see module docstring).

    Attributes:
        scores: one tensor per self-attention layer, in layer order (index i is the same
            layer as ``output_attentions[i]``), shape (B, heads, L, L), masked key columns
            set to :data:`MASKED_SCORE`. Refilled by every forward pass.
        mask: the (B, L) ``attention_mask`` of the latest forward pass, or None.
    """

    def __init__(self, modules: list[nn.Module]) -> None:
        self._modules = modules
        self._queries: dict[int, torch.Tensor] = {}
        self.scores: list[torch.Tensor] = []
        self.mask: torch.Tensor | None = None

    def _on_model(self, _model, args, kwargs) -> None:
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1:  # forward(input_ids, attention_mask, ...)
            mask = args[1]
        if mask is not None and mask.dim() != 2:
            raise ValueError(
                f"capture_attention_scores needs a (B, L) attention_mask, got shape "
                f"{tuple(mask.shape)}"
            )
        self.mask = mask
        self._queries = {}
        self.scores = [None] * len(self._modules)  # type: ignore[list-item]

    def _on_query(self, index: int, output: torch.Tensor) -> None:
        self._queries[index] = output

    def _on_key(self, index: int, output: torch.Tensor) -> None:
        module = self._modules[index]
        heads, size = module.num_attention_heads, module.attention_head_size
        b, length = output.shape[:2]
        q = self._queries.pop(index).view(b, length, heads, size).transpose(1, 2)
        k = output.view(b, length, heads, size).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * size**-0.5
        if self.mask is not None:
            padded = (self.mask == 0).to(scores.device)[:, None, None, :]
            scores = scores.masked_fill(padded, MASKED_SCORE)
        if not self.scores:  # the model's forward was bypassed (pre-hook not run)
            self.scores = [None] * len(self._modules)  # type: ignore[list-item]
        self.scores[index] = scores


@contextlib.contextmanager
def capture_attention_scores(model: nn.Module) -> Iterator[AttentionScores]:
    """Capture every self-attention layer's pre-softmax scores while in the ``with`` block.

    Call the model you passed (``model(input_ids=..., attention_mask=...)``): the mask is
    taken from that call. Without a mask no position is masked. Hooks are removed on exit,
    even on error.

    Raises:
        ValueError: ``model`` has no BERT-style self-attention layers.
    """
    modules = _self_attention_modules(model)
    if not modules:
        raise ValueError(
            f"{type(model).__name__} has no BERT-style self-attention layers (modules with "
            "query/key Linear, num_attention_heads and attention_head_size)"
        )
    capture = AttentionScores(modules)
    handles = [model.register_forward_pre_hook(capture._on_model, with_kwargs=True)]
    try:
        for i, module in enumerate(modules):
            handles.append(
                module.query.register_forward_hook(
                    lambda _m, _in, out, i=i: capture._on_query(i, out)
                )
            )
            handles.append(
                module.key.register_forward_hook(lambda _m, _in, out, i=i: capture._on_key(i, out))
            )
        yield capture
    finally:
        for handle in handles:
            handle.remove()


def scores_for_layers(
    scores: Sequence[torch.Tensor], layers: Sequence[int]
) -> dict[int, torch.Tensor]:
    """``{i: scores[i]}`` for 0-based layer indices (as from ``mapping.attention_pairs``)."""
    out = {}
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(scores):
            raise ValueError(f"layer index must be an int in 0..{len(scores) - 1}, got {i!r}")
        out[i] = scores[i]
    return out
