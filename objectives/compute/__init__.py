"""Running models anywhere in the pipeline: device and threads, length-grouped batches, the
one prediction loop, attention scores, and the per-worker memo.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "AttentionScores": ".attention",
    "MASKED_SCORE": ".attention",
    "LengthGroupedBatches": ".length_batches",
    "token_lengths": ".length_batches",
    "capture_attention_scores": ".attention",
    "scores_for_layers": ".attention",
    "DEVICE_NAMES": ".device",
    "available_cpus": ".device",
    "check_device_name": ".device",
    "configure_threads": ".device",
    "resolve_device": ".device",
    "Memo": ".memo",
    "WORKER_MEMO": ".memo",
    "path_stamp": ".memo",
    "length_order": ".predict",
    "predict_logits": ".predict",
})
