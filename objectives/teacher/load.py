"""Loading a fitted teacher for inference, and reading what its fit recorded.

:func:`load_teacher` loads any sequence-classifier checkpoint (a directory written by
:func:`~kdtune.objectives.teacher.fit.fit_teacher`, another local checkpoint, or a hub id)
with eager attention; :func:`read_teacher_metadata` reads the ``kdtune_teacher.json`` a fit
writes beside the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdtune.errors import UsageError

from ..oneline import one_line
from .source import NO_DIRECTORY, checkpoint_source

__all__ = ["TEACHER_METADATA", "load_teacher", "read_teacher_metadata"]

TEACHER_METADATA = "kdtune_teacher.json"


def load_teacher(path: str | Path, attn_implementation: str = "eager",
                 role: str = "teacher") -> tuple[Any, Any]:
    """Load a teacher checkpoint for inference: ``(model, tokenizer)``, model in eval mode.

    Args:
        path: a local checkpoint directory (e.g. from ``fit_teacher``) or a hub model id.
        attn_implementation: ``"eager"`` by default, since SDPA returns no attention maps.
        role: what the checkpoint is, for error messages (``"student"`` from the audit).

    Raises:
        UsageError: the path is neither a loadable local directory nor a reachable hub id
            (a missing directory is told at once, without trying the hub: see
            :func:`~kdtune.objectives.teacher.source.checkpoint_source`).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = Path(str(path)).expanduser()
    if isinstance(path, Path) and not local.exists():
        raise UsageError(f"could not load {role} {str(path)!r}: {NO_DIRECTORY}")
    try:
        source = checkpoint_source(str(path))
    except UsageError as e:
        raise UsageError(f"could not load {role} {str(path)!r}: {e}") from e
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, attn_implementation=attn_implementation
        )
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, hub errors alike
        kind = "local checkpoint" if local.exists() else "hub model id (or local directory)"
        raise UsageError(f"could not load {role} {str(path)!r} as a {kind}: {one_line(e)}") from e
    model.eval()
    return model, tokenizer


def read_teacher_metadata(path: str | Path) -> dict[str, Any]:
    """Return the ``kdtune_teacher.json`` metrics of a fitted teacher directory.

    Raises:
        UsageError: the directory has no readable ``kdtune_teacher.json``.
    """
    meta = Path(path).expanduser() / TEACHER_METADATA
    try:
        return json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"{meta}: not a kdtune teacher ({one_line(e)})") from e
