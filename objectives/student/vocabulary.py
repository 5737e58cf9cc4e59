"""The task vocabulary: the teacher's wordpieces that the students' text uses, and no others.

``distill.vocabulary: task`` keeps the teacher's special tokens, every wordpiece in the
students' tokenised text, and every single-character piece with its ``##`` form.
:func:`task_vocabulary` returns a :class:`TaskVocabulary` (kept teacher ids, student tokenizer,
teacher-to-student id map); :func:`shrink_embeddings` cuts a word embedding to the kept rows.

Why: docs/design.md, "Task vocabulary keeps single characters", "Student tokenizer is rewritten",
"Tokens align on the students' text".
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdtune.errors import ConfigError

__all__ = ["VOCABULARIES", "TaskVocabulary", "check_wordpiece", "shrink_embeddings",
           "student_batch", "task_vocabulary", "tokenised_differently", "tokenizer_kind",
           "used_token_ids"]

VOCABULARIES = ("task", "full")


@dataclass(frozen=True, eq=False)
class TaskVocabulary:
    """A student's vocabulary cut from its teacher's.

    Attributes:
        kept: the teacher ids kept, ascending; student id i is teacher id ``kept[i]``.
        tokenizer: the student's tokenizer (same normalisation, the kept pieces only).
        to_student: (V_T,) int64 array, teacher id -> student id (the student's ``[UNK]``
            for a dropped piece).
        teacher_size: V_T, the teacher's vocabulary size.
    """

    kept: np.ndarray
    tokenizer: Any
    to_student: np.ndarray
    teacher_size: int

    @property
    def size(self) -> int:
        """The number of kept wordpieces (the student's ``vocab_size``)."""
        return len(self.kept)

    def student_ids(self, ids: Any) -> Any:
        """Teacher token ids (a torch tensor) as the student's ids."""
        import torch

        table = getattr(self, "_table", None)
        if table is None or table.device != ids.device:
            table = torch.as_tensor(self.to_student, device=ids.device)
            object.__setattr__(self, "_table", table)
        return table[ids]


def student_batch(vocab: TaskVocabulary | None, batch: dict) -> dict:
    """A training batch (teacher token ids) as the student's inputs under ``vocab`` (the batch
    itself when the student keeps the teacher's vocabulary)."""
    if vocab is None:
        return batch
    return {**batch, "input_ids": vocab.student_ids(batch["input_ids"])}


def tokenizer_kind(tokenizer: Any) -> str:
    """The tokenizer's model type (``WordPiece``, ``BPE``, ``Unigram``...)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return type(backend.model).__name__ if backend is not None else type(tokenizer).__name__


def check_wordpiece(tokenizer: Any, key: str = "distill.vocabulary") -> None:
    """Raise ConfigError unless ``tokenizer`` is a fast WordPiece tokenizer (one line)."""
    kind = tokenizer_kind(tokenizer)
    if kind != "WordPiece":
        raise ConfigError([f"{key}: 'task' needs a WordPiece tokenizer; the teacher's is "
                           f"{kind} (use vocabulary: full)"])


def used_token_ids(dataset: Any) -> np.ndarray:
    """The distinct ``input_ids`` of a tokenised dataset, ascending."""
    try:
        import pyarrow.compute as pc

        flat = pc.list_flatten(dataset.with_format("arrow")["input_ids"])
        return np.unique(np.asarray(flat, dtype=np.int64))
    except (AttributeError, TypeError):
        ids = [i for row in dataset["input_ids"] for i in row]
        return np.unique(np.asarray(ids, dtype=np.int64))


def task_vocabulary(tokenizer: Any, used_ids: np.ndarray) -> TaskVocabulary:
    """The task vocabulary of ``tokenizer`` for text whose token ids are ``used_ids``.

    Raises:
        ConfigError: the tokenizer is not WordPiece (:func:`check_wordpiece`).
    """
    check_wordpiece(tokenizer)
    vocab = tokenizer.backend_tokenizer.get_vocab()  # piece -> id, added tokens included
    n = max(vocab.values()) + 1
    keep = np.zeros(n, dtype=bool)
    keep[np.asarray(used_ids, dtype=np.int64)] = True
    keep[[i for i in tokenizer.all_special_ids if i is not None and 0 <= i < n]] = True
    for piece, i in vocab.items():
        if len(piece) == 1 or (piece.startswith("##") and len(piece) == 3):
            keep[i] = True
    kept = np.flatnonzero(keep)
    to_student = np.full(n, -1, dtype=np.int64)
    to_student[kept] = np.arange(len(kept))
    student_tok = _cut_tokenizer(tokenizer, kept)
    to_student[to_student < 0] = student_tok.unk_token_id
    return TaskVocabulary(kept=kept, tokenizer=student_tok, to_student=to_student,
                          teacher_size=n)


def _cut_tokenizer(tokenizer: Any, kept: np.ndarray) -> Any:
    """``tokenizer`` with only the ``kept`` ids, renumbered 0..len(kept)-1 in teacher order."""
    from transformers import AutoTokenizer

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    by_id = {i: piece for piece, i in tokenizer.backend_tokenizer.get_vocab().items()}
    new_id = {int(old): new for new, old in enumerate(kept)}
    pieces = [by_id[int(i)] for i in kept]
    spec["model"]["vocab"] = {piece: i for i, piece in enumerate(pieces)}
    for token in spec.get("added_tokens") or []:
        token["id"] = new_id[int(token["id"])]
    _renumber_post_processor(spec.get("post_processor"), new_id)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        Path(tmp, "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False),
                                               encoding="utf-8")
        Path(tmp, "vocab.txt").write_text("".join(p + "\n" for p in pieces), encoding="utf-8")
        config = Path(tmp, "tokenizer_config.json")
        if config.exists():
            cfg = json.loads(config.read_text(encoding="utf-8"))
            decoder = cfg.get("added_tokens_decoder") or {}
            cfg["added_tokens_decoder"] = {str(new_id[int(k)]): v for k, v in decoder.items()
                                           if int(k) in new_id}
            cfg.pop("vocab_file", None)
            config.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        cut = AutoTokenizer.from_pretrained(tmp)
    cut.name_or_path = f"{getattr(tokenizer, 'name_or_path', '')}#task-{len(kept)}"
    return cut


def _renumber_post_processor(node: Any, new_id: dict[int, int]) -> None:
    """Rewrite the special-token ids of a TemplateProcessing / BertProcessing spec."""
    if isinstance(node, dict):
        if node.get("type") == "Sequence":
            for child in node.get("processors") or []:
                _renumber_post_processor(child, new_id)
            return
        for token in (node.get("special_tokens") or {}).values():
            token["ids"] = [new_id[int(i)] for i in token.get("ids", [])]
        for name in ("sep", "cls"):  # BertProcessing: ["[SEP]", 102]
            if isinstance(node.get(name), list) and len(node[name]) == 2:
                node[name][1] = new_id[int(node[name][1])]


def shrink_embeddings(model: Any, vocab: TaskVocabulary) -> None:
    """Cut ``model``'s word embedding (a Hugging Face model, or a Student) to the kept rows,
    in place; ``config.vocab_size`` and ``pad_token_id`` follow."""
    import torch

    hf = getattr(model, "model", model)
    old = hf.get_input_embeddings()
    if old.weight.shape[0] == vocab.size:
        return  # already cut (a student checkpoint of this vocabulary)
    if old.weight.shape[0] != vocab.teacher_size:
        raise ValueError(f"the student's word embedding has {old.weight.shape[0]} rows; the "
                         f"teacher's vocabulary has {vocab.teacher_size}")
    pad = vocab.tokenizer.pad_token_id
    with torch.no_grad():  # from_pretrained draws no random numbers: seeded runs stay equal
        rows = old.weight[torch.as_tensor(vocab.kept, device=old.weight.device)].clone()
    new = torch.nn.Embedding.from_pretrained(rows, freeze=False, padding_idx=pad)
    hf.set_input_embeddings(new)
    hf.config.vocab_size = vocab.size
    hf.config.pad_token_id = pad


def tokenised_differently(teacher_tokenizer: Any, vocab: TaskVocabulary, texts: list,
                          pairs: list | None = None, max_length: int = 128) -> float:
    """The share of ``texts`` (and ``pairs``) the student tokenises differently from the
    teacher (a different piece sequence after mapping the teacher's ids)."""
    if not texts:
        return 0.0
    args = (texts, pairs) if pairs is not None else (texts,)
    kw = {"truncation": True, "max_length": max_length}
    t_ids = teacher_tokenizer(*args, **kw)["input_ids"]
    s_ids = vocab.tokenizer(*args, **kw)["input_ids"]
    differ = sum(list(vocab.to_student[np.asarray(t, dtype=np.int64)]) != list(s)
                 for t, s in zip(t_ids, s_ids, strict=True))
    return differ / len(texts)
