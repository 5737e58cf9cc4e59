"""The first steps of a distillation run: its inputs, the teacher's outputs, the student.

:func:`load_inputs` loads the teacher and the data, tokenizes the splits (padding happens
per batch) and chooses the layer mapping. :func:`teacher_signal` decides where the losses
read the teacher's outputs from: the on-disk teacher-output cache when enabled (computed
once per fingerprint, shared by every trial and every local worker), else a live teacher
forward in each batch. :func:`prepare_student` builds the student on the run's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from kdtune.errors import UsageError

from .config import DistillConfig
from .mapping import attention_pairs, hidden_state_pairs, layer_mapping
from .student import Student
from .student_build import build_student
from .teacher_forward import forward_teacher


@dataclass(frozen=True)
class RunInputs:
    """What a run trains and measures on.

    Attributes:
        teacher: the teacher classifier, in eval mode, on the run's device.
        tokenizer: the teacher's tokenizer (the student shares it).
        splits: the loaded :class:`kdtune.objectives.data.Splits`.
        train, eval: the tokenized training and evaluation splits (unpadded).
        mapping: [g(1), ..., g(M)], the teacher layer of each student layer.
        hidden_pairs: (student, teacher) ``hidden_states`` indices, embeddings first.
        attention_pairs: (student, teacher) ``attentions`` indices.
    """

    teacher: Any
    tokenizer: Any
    splits: Any
    train: Any
    eval: Any
    mapping: list[int]
    hidden_pairs: list[tuple[int, int]]
    attention_pairs: list[tuple[int, int]]


def teacher_depth(teacher: str) -> int:
    """Number of transformer layers N of a teacher, from its config only (no weights).

    Raises:
        UsageError: ``teacher`` is neither a checkpoint directory nor a reachable hub id.
    """
    from transformers import AutoConfig

    try:
        return int(AutoConfig.from_pretrained(teacher).num_hidden_layers)
    except OSError as e:
        raise UsageError(f"teacher {teacher!r} is not a checkpoint directory or reachable "
                         f"hub id: {str(e).splitlines()[0]}") from e


def load_inputs(cfg: DistillConfig, device: torch.device, splits=None) -> RunInputs:
    """Load the teacher and the data (unless ``splits`` are given), tokenize, map layers.

    Raises:
        ValueError: a teacher that does not load, data whose labels are not the teacher's,
            or a bad layer mapping.
    """
    from .data import check_labels_match, load_splits
    from .teacher_load import load_teacher
    from .tokens import tokenize

    teacher, tokenizer = load_teacher(cfg.teacher)
    teacher.to(device).eval()
    if splits is None:
        splits = load_splits(cfg.data)
    check_labels_match(splits, _label_names(teacher))
    mapping = layer_mapping(cfg.layer_mapping, teacher.config.num_hidden_layers,
                            cfg.student_layers)
    return RunInputs(
        teacher=teacher, tokenizer=tokenizer, splits=splits,
        train=tokenize(splits.train, tokenizer, cfg.data.max_length),
        eval=tokenize(splits.eval, tokenizer, cfg.data.max_length),
        mapping=mapping, hidden_pairs=hidden_state_pairs(mapping),
        attention_pairs=attention_pairs(mapping),
    )


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
    """

    model: Any
    train: Any
    eval: Any
    live: bool
    hidden: tuple[int, ...]
    attention: tuple[int, ...]

    def for_batch(self, batch: dict, idx: torch.Tensor, device: torch.device) -> dict:
        """Teacher logits (and the needed hidden states / attentions) for one batch.

        From the cache when it holds everything, else from a live forward
        (:func:`objectives.teacher_forward.forward_teacher`, which zeroes padding exactly as
        the cache does, so both paths feed the losses the same numbers).
        """
        seq_len = batch["input_ids"].shape[1]
        if not self.live:
            return self.train.batch(idx.tolist(), seq_len, device=device)
        with torch.no_grad():
            out = forward_teacher(self.model, batch, self.hidden, self.attention)
        if self.train is not None:  # cached logits keep trials identical with or without it
            out["logits"] = self.train.batch(idx.tolist(), seq_len, device=device)["logits"]
        return out


def teacher_signal(cfg: DistillConfig, inputs: RunInputs, device: torch.device) -> TeacherSignal:
    """The teacher's outputs for the run: from the cache when enabled, else live."""
    hidden, attention = _intermediate_indices(cfg, inputs.hidden_pairs, inputs.attention_pairs)
    train_out = eval_out = None
    if cfg.teacher_cache:
        from .cache import compute_or_load
        from .cache_fingerprint import teacher_fingerprint

        tokenizer = inputs.tokenizer
        tok_name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__

        def outputs(split: str, dataset, hidden_idx, attention_idx):
            fingerprint = teacher_fingerprint(
                cfg.teacher, inputs.splits.fingerprint(split), split, tok_name,
                cfg.data.max_length, tuple(hidden_idx), bool(attention_idx))
            return compute_or_load(inputs.teacher, tokenizer, dataset, fingerprint,
                                   list(hidden_idx), list(attention_idx),
                                   memory_budget_mb=cfg.cache_budget_mb, device=device)

        train_out = outputs("train", inputs.train, hidden, attention)
        eval_out = outputs("eval", inputs.eval, (), ())
    live = train_out is None or (cfg.uses_intermediate and train_out.needs_live_teacher)
    return TeacherSignal(model=inputs.teacher, train=train_out, eval=eval_out, live=live,
                         hidden=hidden, attention=attention)


def prepare_student(cfg: DistillConfig, inputs: RunInputs, signal: TeacherSignal,
                    device: torch.device) -> Student:
    """Build the student on ``device``; move the teacher to the CPU if nothing needs it here."""
    student = build_student(inputs.teacher, inputs.mapping, hidden_size=cfg.hidden_size,
                            init=cfg.init, checkpoint=cfg.init_checkpoint)
    student.to(device)
    if not signal.live and signal.eval is not None and device.type != "cpu":
        inputs.teacher.cpu()  # every teacher output the run needs is cached
    return student


def _intermediate_indices(
    cfg: DistillConfig,
    hidden_pairs: Sequence[tuple[int, int]],
    attention_pairs_: Sequence[tuple[int, int]],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Teacher hidden-state and attention indices the intermediate losses need (or none)."""
    if not cfg.uses_intermediate:
        return (), ()
    wanted = set(cfg.intermediate)
    hidden = sorted({t for _, t in hidden_pairs}) if wanted & {"hidden", "embedding"} else []
    attention = sorted({t for _, t in attention_pairs_}) if "attention" in wanted else []
    return tuple(hidden), tuple(attention)


def _label_names(model) -> list[str]:
    id2label = model.config.id2label or {}
    return [str(id2label[i]) for i in sorted(int(k) for k in id2label)]
