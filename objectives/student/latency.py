"""A student shape's latency against its teacher's, known before anything is trained.

Latency depends on the architecture, not the weights: :func:`shape_latency_ratio` builds the
teacher's architecture and the student's (random weights, PyTorch, SDPA attention) and times
one input of ``seq_len`` tokens through each, batch 1, 1 thread, alternating the two, median
after warm-up. ``search.max_latency_ratio`` keeps the depth x width shapes under it
(:func:`kdtune.objectives.search.shapes.feasible_shapes`). Results are memoised per process.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

__all__ = ["shape_latency_ratio"]

_RATIOS: dict[tuple, float] = {}


def shape_latency_ratio(t_cfg: Any, layers: int, hidden_size: int | None,
                        vocab_size: int | None = None, seq_len: int = 32,
                        repeats: int = 15, ffn_size: int | None = None) -> float:
    """Median batch-1 latency of the student shape / the teacher's (1 thread)."""
    key = (id(t_cfg), layers, hidden_size, vocab_size, seq_len, repeats, ffn_size)
    if key not in _RATIOS:
        _RATIOS[key] = _measure(t_cfg, layers, hidden_size, vocab_size, seq_len, repeats,
                                ffn_size)
    return _RATIOS[key]


def _measure(t_cfg: Any, layers: int, hidden_size: int | None, vocab_size: int | None,
             seq_len: int, repeats: int, ffn_size: int | None) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification

    from .size import student_config, student_shape

    width, heads, ffn = student_shape(t_cfg, hidden_size, ffn_size)
    s_cfg = student_config(t_cfg, layers, width, heads, ffn)
    if vocab_size is not None:
        s_cfg.vocab_size = int(vocab_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = [AutoModelForSequenceClassification.from_config(
            c, attn_implementation="sdpa").eval() for c in (t_cfg, s_cfg)]
        ids = torch.full((1, seq_len), 1000, dtype=torch.long)
        times: list[list[float]] = [[], []]
        with torch.inference_mode():
            for k in range(repeats + 2):
                for i, model in enumerate(models):
                    start = time.perf_counter()
                    model(input_ids=ids.clamp(max=model.config.vocab_size - 1))
                    if k >= 2:  # two warm-up rounds
                        times[i].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times[1]) / statistics.median(times[0])
