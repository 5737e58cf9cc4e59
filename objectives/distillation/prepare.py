"""The first steps of a distillation run: its inputs and the teacher's outputs.

:func:`load_inputs` loads the teacher and the data, tokenizes the splits (padding per batch),
chooses the layer mapping and the student's shape and vocabulary, and reads once what later
steps need (:class:`RunInputs`: labels, fingerprints, held-out rows); :func:`teacher_signal`
reads the teacher's outputs from the on-disk cache when enabled (computed once per fingerprint,
shared by every trial and every local worker), else from a live forward per batch
(:class:`~kdtune.objectives.teacher.forward.TeacherSignal`). The student is built next
(:mod:`.build`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from kdtune.errors import UsageError

from ..student.mapping import attention_pairs, hidden_state_pairs, layer_mapping
from ..student.size import student_shape
from ..teacher.forward import TeacherSignal
from .config import DistillConfig


@dataclass(frozen=True)
class RunInputs:
    """What a run trains and measures on.

    Attributes:
        teacher: the teacher classifier, in eval mode, on the run's device.
        tokenizer: the teacher's tokenizer (the student shares it).
        splits: the loaded :class:`kdtune.objectives.data.dataset.Splits`.
        train, eval: the tokenized training and evaluation splits (unpadded). ``train`` is
            the students' transfer set: the labelled transfer split (or the train split
            when the config has none), then any unlabelled and augmented rows (label -1).
        train_fingerprint: the content fingerprint of ``train`` before tokenising (the
            teacher-output cache key's data part).
        mapping: [g(1), ..., g(M)], the teacher layer of each student layer.
        hidden_pairs: (student, teacher) ``hidden_states`` indices, embeddings first.
        attention_pairs: (student, teacher) ``attentions`` indices.
        vocab: the student's task vocabulary (:mod:`~kdtune.objectives.student.vocabulary`), or
            ``None`` when it keeps the teacher's (``vocabulary: full``).
        student_tokenizer: the student's tokenizer (the teacher's without ``vocab``).
        student_eval: the evaluation split tokenised by ``student_tokenizer``.
        eval_fingerprint: the evaluation split's content fingerprint.
        train_labels, eval_labels: the ``label`` columns of ``train`` and ``eval`` as arrays
            (-1 for the transfer set's unlabelled and augmented rows).
        student_shape: the student's (width, attention heads, feed-forward size)
            (:func:`~kdtune.objectives.student.size.student_shape`).
        held_out: the rows of ``train`` kept out of training to fit the alignment
            temperature (:func:`held_out_rows`), or ``None``.
        collate, student_collate: pad a list of rows into a batch with the teacher's and
            the student's tokenizer (:func:`~kdtune.objectives.data.tokens.data_collator`).
    """

    teacher: Any
    tokenizer: Any
    splits: Any
    train: Any
    eval: Any
    train_fingerprint: str
    mapping: list[int]
    hidden_pairs: list[tuple[int, int]]
    attention_pairs: list[tuple[int, int]]
    vocab: Any = None
    student_tokenizer: Any = None
    student_eval: Any = None
    eval_fingerprint: str = ""
    train_labels: Any = None
    eval_labels: Any = None
    student_shape: tuple[int, int, int] | None = None
    held_out: Any = None
    collate: Any = None
    student_collate: Any = None


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

    The teacher, the splits and their tokenised forms are loaded once per process and
    reused by later trials that share them (:mod:`~kdtune.objectives.compute.memo`).

    Raises:
        ValueError: a teacher that does not load, data whose labels are not the teacher's,
            or a bad layer mapping.
    """
    from ..compute.memo import WORKER_MEMO, path_stamp
    from ..data.dataset import check_labels_match, content_fingerprint, load_splits
    from ..data.tokens import data_collator, label_array, tokenize
    from ..data.transfer import transfer_set
    from ..student.vocabulary import task_vocabulary, used_token_ids
    from ..teacher.load import load_teacher

    # SDPA whatever the losses: attention scores come from hooks (module docstring of reuse)
    teacher, tokenizer = WORKER_MEMO.get(
        "teacher", (path_stamp(str(cfg.teacher)), str(device)),
        lambda: load_teacher(cfg.teacher, "sdpa"))
    teacher.to(device).eval()  # a run on an accelerator may have moved it to the CPU
    if splits is None:
        splits = WORKER_MEMO.get("splits", cfg.data.model_dump_json(),
                                 lambda: load_splits(cfg.data))
    check_labels_match(splits, teacher.config.id2label or {})
    which = cfg.data.students
    labelled = splits.students_rows(which)  # then any unlabelled and augmented rows
    labelled_fingerprint = splits.students_fingerprint(which)
    transfer_rows = splits.transfer_rows(which)
    mapping = layer_mapping(cfg.layer_mapping, teacher.config.num_hidden_layers,
                            cfg.student_layers)
    shape = student_shape(teacher.config, cfg.hidden_size, cfg.ffn_size)
    train = labelled
    if cfg.data.transfer.enabled:
        train = transfer_set(labelled, cfg.data.transfer, tokenizer,
                             teacher.get_input_embeddings().weight, cfg.data.seed,
                             memo_key=f"{cfg.teacher}|{labelled_fingerprint}")
    train_fingerprint = (labelled_fingerprint if train is labelled
                         else content_fingerprint(train, splits.label_names))

    def tokens(dataset, fingerprint: str, tok=tokenizer, name=str(cfg.teacher)):
        return WORKER_MEMO.get("tokens", (name, fingerprint, cfg.data.max_length),
                               lambda: tokenize(dataset, tok, cfg.data.max_length))

    eval_fingerprint = splits.fingerprint("eval")
    train_tokens = tokens(train, train_fingerprint)
    eval_tokens = tokens(splits.eval, eval_fingerprint)
    train_labels, eval_labels = label_array(train_tokens), label_array(eval_tokens)
    collate = student_collate = data_collator(tokenizer)
    vocab, student_tokenizer, student_eval = None, tokenizer, eval_tokens
    if cfg.vocabulary == "task":  # the student's task vocabulary, once per students' set
        vocab = WORKER_MEMO.get(
            "vocabulary", (str(cfg.teacher), train_fingerprint, cfg.data.max_length),
            lambda: task_vocabulary(tokenizer, used_token_ids(train_tokens)))
        student_tokenizer = vocab.tokenizer
        student_eval = tokens(splits.eval, eval_fingerprint, vocab.tokenizer,
                              f"{cfg.teacher}|task|{train_fingerprint}")
        student_collate = data_collator(student_tokenizer)
    return RunInputs(
        teacher=teacher, tokenizer=tokenizer, splits=splits,
        train=train_tokens, train_fingerprint=train_fingerprint, eval=eval_tokens,
        mapping=mapping, hidden_pairs=hidden_state_pairs(mapping),
        attention_pairs=attention_pairs(mapping), vocab=vocab,
        student_tokenizer=student_tokenizer, student_eval=student_eval,
        eval_fingerprint=eval_fingerprint, train_labels=train_labels, eval_labels=eval_labels,
        student_shape=shape, held_out=held_out_rows(cfg, train_labels, transfer_rows),
        collate=collate, student_collate=student_collate,
    )


def held_out_rows(cfg: DistillConfig, train_labels: np.ndarray,
                  transfer: range | None) -> np.ndarray | None:
    """The students' labelled rows kept out of training to fit the alignment temperature
    (``align_on: heldout``): a seeded ``align_holdout`` share, at least one row; else None.

    They are drawn from the transfer split when the students also learn on the teacher's
    training rows (``data.students: all``): the teacher is nearly one-hot on its own
    training sentences, so a temperature fitted there would sharpen the student.
    ``transfer``: where the transfer split's rows sit in ``train``
    (:meth:`~kdtune.objectives.data.dataset.Splits.transfer_rows`)."""
    if cfg.align != "temperature" or cfg.align_on != "heldout":
        return None
    labelled = np.flatnonzero(train_labels >= 0)
    if transfer is not None:
        labelled = labelled[(labelled >= transfer.start) & (labelled < transfer.stop)]
    n = max(1, round(cfg.align_holdout * len(labelled)))
    rng = np.random.default_rng([cfg.seed, 0xA11])
    return np.sort(rng.choice(labelled, size=min(n, len(labelled)), replace=False))


def kept_vocabulary_size(cfg: DistillConfig) -> int | None:
    """The student's vocabulary size under ``cfg`` (``None``: the teacher's), known before
    any trial trains: loads the teacher and the students' set as the first trial would
    (memoised, so that trial reuses them)."""
    if cfg.vocabulary != "task":
        return None
    return load_inputs(cfg, torch.device("cpu")).vocab.size


def teacher_signal(cfg: DistillConfig, inputs: RunInputs, device: torch.device) -> TeacherSignal:
    """The teacher's outputs for the run: from the cache when enabled, else live.

    The cache key names the teacher, the data and the tokenisation, not the layers
    (:func:`~kdtune.objectives.cache.fingerprint.teacher_fingerprint`): a run with
    intermediate losses reads its layers (:func:`_intermediate_indices`) from the one
    all-layers cache of the training split, which the first such run of the study writes
    and every later depth or layer mapping reuses without a teacher pass
    (:func:`~kdtune.objectives.cache.outputs.compute_or_load`). ``live`` is set when that cache (or
    the needed layers alone) would exceed ``cfg.cache_budget_mb``."""
    hidden, attention = _intermediate_indices(cfg, inputs.hidden_pairs, inputs.attention_pairs)
    train_out = eval_out = None
    if cfg.teacher_cache:
        from ..cache.fingerprint import teacher_fingerprint
        from ..cache.outputs import compute_or_load

        tokenizer = inputs.tokenizer
        tok_name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__

        def outputs(split: str, dataset, hidden_idx, attention_idx):
            data_key = inputs.train_fingerprint if split == "train" else inputs.eval_fingerprint
            fingerprint = teacher_fingerprint(cfg.teacher, data_key, split, tok_name,
                                              cfg.data.max_length)
            return compute_or_load(inputs.teacher, tokenizer, dataset, fingerprint,
                                   list(hidden_idx), list(attention_idx),
                                   memory_budget_mb=cfg.cache_budget_mb, device=device)

        train_out = outputs("train", inputs.train, hidden, attention)
        eval_out = outputs("eval", inputs.eval, (), ())
    live = train_out is None or (cfg.uses_intermediate and train_out.needs_live_teacher)
    heads = inputs.student_shape[1]
    return TeacherSignal(model=inputs.teacher, train=train_out, eval=eval_out, live=live,
                         hidden=hidden, attention=attention,
                         heads=heads if heads != inputs.teacher.config.num_attention_heads
                         else None)


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

