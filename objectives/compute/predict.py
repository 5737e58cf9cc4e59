"""The one prediction loop: a model's logits on a tokenised dataset, in the dataset's order.

Teacher evaluation, the teacher-output cache's logits, student evaluation and the audit all
call :func:`predict_logits`. Examples are batched by length (fewer pad tokens), run in eval
mode under ``torch.inference_mode``, and put back in the dataset's order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def length_order(dataset: Any) -> np.ndarray:
    """Row indices of ``dataset`` sorted by token count (stable), for batching by length."""
    from .length_batches import token_lengths

    return np.argsort(np.array(token_lengths(dataset)), kind="stable")


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    dataset: Any,
    collate: Callable[[list[dict]], dict[str, torch.Tensor]],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> np.ndarray:
    """Logits (n, K) of ``model`` on every row of ``dataset``, as float64, in row order.

    Args:
        model: a sequence classifier (its output has ``.logits`` or ``["logits"]``); it is
            put in eval mode and left there.
        dataset: a tokenised ``datasets.Dataset`` (``input_ids`` at least).
        collate: pads a list of rows into a batch of tensors (e.g. a
            ``DataCollatorWithPadding``); keys other than the model inputs are dropped.
        device: where ``model`` lives.
        batch_size: rows per forward.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n = len(dataset)
    if n == 0:
        raise ValueError("dataset is empty: nothing to predict")
    order = length_order(dataset)
    model.eval()
    chunks = []
    for start in range(0, n, batch_size):
        rows = [dataset[int(i)] for i in order[start:start + batch_size]]
        batch = collate(rows)
        inputs = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        res = model(**inputs)
        logits = res.logits if hasattr(res, "logits") else res["logits"]
        chunks.append(logits.float().cpu())
    out = np.empty((n, chunks[0].shape[1]), dtype=np.float64)
    out[order] = torch.cat(chunks).numpy()
    return out


def accuracy(logits: np.ndarray, labels: Any) -> float:
    """Share of rows whose arg-max logit is the label."""
    labels = np.asarray(labels)
    return float((np.asarray(logits).argmax(axis=1) == labels).mean())
