"""TinyBERT-style data augmentation by word replacement, with embedding-space neighbours.

TinyBERT (Jiao et al. 2020, Algorithm 1) enlarges the task data for distillation: for each
word of a sentence, with probability ``p_t`` (0.4) it is replaced by one of its ``K`` (15)
candidates, ``N_a`` times per sentence. TinyBERT's candidates come from BERT's masked-LM head
(single-piece words) and GloVe (other words). kdtune's teachers are sequence classifiers
without a masked-LM head, so a word's candidates here are its nearest neighbours, by cosine
similarity, in the teacher's own input (word-piece) embedding matrix. It is a substitute: the
neighbours of a word in an input embedding are often related words (synonyms, antonyms,
inflections), not what a language model would fill in, so an augmented sentence may flip
its sentiment. That is harmless for distillation, where the student learns the teacher's
soft targets on it and no hard label is used.

Which words are replaced: a whitespace-separated word whose letters (punctuation around it
stripped and kept) are one whole vocabulary entry; for an uncased vocabulary the lookup is
lower-case. Multi-piece words, numbers and punctuation are never replaced. Candidates are
whole alphabetic vocabulary entries of at least two letters, never ``##`` pieces, special
tokens or the word itself. A replacement keeps a capitalised word capitalised.

Everything is deterministic for a given seed: the same texts and seed give the same copies
in any process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["augment_sentences", "lowercases", "neighbour_table", "split_word"]

_WORD = re.compile(r"^(\W*)(.*?)(\W*)$", re.UNICODE)
_BATCH = 1024
"""Query words per similarity matmul (bounds memory: 1024 x vocabulary floats)."""


def split_word(token: str) -> tuple[str, str, str]:
    """``"(great!"`` -> ``("(", "great", "!")``: leading punctuation, the word, trailing."""
    lead, core, trail = _WORD.match(token).groups()
    return lead, core, trail


def lowercases(tokenizer: Any) -> bool:
    """Whether the tokenizer's vocabulary is uncased (words are looked up lower-case)."""
    return bool(getattr(tokenizer, "do_lower_case", False)
                or getattr(tokenizer, "init_kwargs", {}).get("do_lower_case", False))


def _eligible_vocab(tokenizer: Any) -> dict[str, int]:
    """Whole alphabetic vocabulary entries of two letters or more (no ``##``, no specials)."""
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    return {tok: i for tok, i in tokenizer.get_vocab().items()
            if len(tok) >= 2 and tok.isalpha() and tok not in special}


def neighbour_table(tokenizer: Any, embeddings: torch.Tensor, texts: Sequence[str],
                    k: int) -> dict[str, list[str]]:
    """Each replaceable word of ``texts`` -> its ``k`` nearest eligible vocabulary entries.

    Args:
        tokenizer: the teacher's tokenizer (its vocabulary names the embedding rows).
        embeddings: (vocabulary, width) the teacher's input word embeddings.
        texts: the sentences to be augmented (only their words are looked up).
        k: candidates per word.

    Returns:
        ``{word: [candidate, ...]}``, nearest first, keyed by the lookup form (lower-case for
        an uncased vocabulary).
    """
    import torch

    vocab = _eligible_vocab(tokenizer)
    lower = lowercases(tokenizer)
    words = sorted({(core.lower() if lower else core) for text in texts
                    for core in (split_word(t)[1] for t in text.split())} & vocab.keys())
    if not words:
        return {}
    names = list(vocab)
    rows = torch.tensor([vocab[n] for n in names])
    matrix = torch.nn.functional.normalize(embeddings.detach().float()[rows], dim=1)
    position = {n: i for i, n in enumerate(names)}
    k = min(k, len(names) - 1)
    table: dict[str, list[str]] = {}
    for start in range(0, len(words), _BATCH):
        chunk = words[start:start + _BATCH]
        query = matrix[[position[w] for w in chunk]]
        sims = query @ matrix.T
        sims[torch.arange(len(chunk)), [position[w] for w in chunk]] = -2.0  # not itself
        top = sims.topk(k, dim=1).indices.tolist()
        for word, idx in zip(chunk, top, strict=True):
            table[word] = [names[i] for i in idx]
    return table


def augment_sentences(texts: Sequence[str], table: dict[str, list[str]], n_copies: int,
                      replace_prob: float, seed: int, lower: bool = True) -> list[str]:
    """``n_copies`` augmented copies of each text, copies of a text consecutive.

    Each replaceable word (a key of ``table`` in its lookup form) is replaced with
    probability ``replace_prob`` by a uniformly drawn candidate. A copy may equal its source
    (a short sentence with no replacement drawn): it is kept, so the output always has
    ``len(texts) * n_copies`` rows.
    """
    rng = np.random.default_rng([seed, 0xA06])
    out = []
    for text in texts:
        tokens = text.split()
        parts = [split_word(t) for t in tokens]
        for _ in range(n_copies):
            words = []
            for token, (lead, core, trail) in zip(tokens, parts, strict=True):
                candidates = table.get(core.lower() if lower else core)
                if candidates and rng.random() < replace_prob:
                    new = candidates[int(rng.integers(len(candidates)))]
                    if core[:1].isupper():
                        new = new[:1].upper() + new[1:]
                    words.append(f"{lead}{new}{trail}")
                else:
                    words.append(token)
            out.append(" ".join(words))
    return out
