"""TinyBERT-style data augmentation by word replacement, with embedding-space neighbours.

For each word of a sentence, with probability ``p_t`` (0.4) it is replaced by one of its ``K``
(15) candidates, ``N_a`` times per sentence (TinyBERT, Algorithm 1). A word's candidates are its
nearest neighbours, by cosine similarity, in the teacher's input (word-piece) embedding matrix
(:func:`neighbour_table`); :func:`augment_sentences` makes the copies. Only a word that is one
whole alphabetic vocabulary entry of two letters or more is replaced. Deterministic for the same
texts, embeddings and seed.
Why: docs/design.md, "Augmentation: embedding neighbours", "Augmented text may flip its label".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["augment_sentences", "lookup_words", "lowercases", "neighbour_table", "split_word"]

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


def _eligible_vocab(tokenizer: Any, rows: int) -> dict[str, int]:
    """Whole alphabetic vocabulary entries of two letters or more (no ``##``, no specials)
    that have an embedding row, in vocabulary-id order."""
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    return dict(sorted(((tok, i) for tok, i in tokenizer.get_vocab().items()
                        if len(tok) >= 2 and tok.isalpha() and tok not in special
                        and i < rows), key=lambda item: item[1]))


def lookup_words(texts: Sequence[str], lower: bool) -> set[str]:
    """The lookup forms of the whitespace-separated words of ``texts`` (punctuation around
    a word stripped; lower-case for an uncased vocabulary)."""
    return {(core.lower() if lower else core)
            for text in texts for core in (split_word(t)[1] for t in text.split())}


def neighbour_table(tokenizer: Any, embeddings: torch.Tensor, words: Iterable[str],
                    k: int, within: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Each of ``words`` that is an eligible vocabulary entry -> its ``k`` nearest ones.

    Nearness is the cosine similarity of the teacher's input embeddings. A float32 matmul
    on the CPU shortlists ``k + 8`` candidates per word, which are then ranked in float64
    with ties broken by vocabulary id, so the table is the same on any device and thread
    count (the embeddings are copied to the CPU first).

    Args:
        tokenizer: the teacher's tokenizer (its vocabulary names the embedding rows).
        embeddings: (vocabulary, width) the teacher's input word embeddings.
        words: lookup forms (:func:`lookup_words`); the ineligible ones are skipped.
        k: candidates per word (fewer only if the vocabulary is smaller).
        within: only these lookup forms are candidates (and only they are looked up);
            ``None``: any eligible vocabulary entry.

    Returns:
        ``{word: [candidate, ...]}``, nearest first, sorted by word.
    """
    import torch

    weights = embeddings.detach().to("cpu")
    vocab = _eligible_vocab(tokenizer, weights.shape[0])
    if within is not None:
        keep = set(within)
        vocab = {w: i for w, i in vocab.items() if w in keep}
    queries = sorted(set(words) & vocab.keys())
    if not queries or len(vocab) < 2:
        return {}
    names = list(vocab)
    exact = torch.nn.functional.normalize(weights[list(vocab.values())].double(), dim=1)
    coarse = exact.float()
    position = {n: i for i, n in enumerate(names)}
    k = min(k, len(names) - 1)
    shortlist = min(k + 8, len(names) - 1)
    table: dict[str, list[str]] = {}
    for start in range(0, len(queries), _BATCH):
        chunk = queries[start:start + _BATCH]
        rows = torch.tensor([position[w] for w in chunk])
        sims = coarse[rows] @ coarse.T
        sims[torch.arange(len(chunk)), rows] = -2.0  # never the word itself
        top = sims.topk(shortlist, dim=1).indices
        precise = torch.einsum("qd,qkd->qk", exact[rows], exact[top])
        for word, idx, sim in zip(chunk, top.tolist(), precise.tolist(), strict=True):
            ranked = sorted(zip(sim, idx, strict=True), key=lambda pair: (-pair[0], pair[1]))
            table[word] = [names[i] for _, i in ranked[:k]]
    return table


def augment_sentences(texts: Sequence[str], table: dict[str, list[str]], n_copies: int,
                      replace_prob: float, seed: int, lower: bool = True,
                      special: Sequence[str] = (), progress: bool = False) -> list[str]:
    """``n_copies`` augmented copies of each text, the copies of a text consecutive.

    A text is split on whitespace; each word whose lookup form (punctuation around it
    stripped, lower-case if ``lower``) is a key of ``table`` is replaced with probability
    ``replace_prob`` by a uniformly drawn candidate, the punctuation kept around it and a
    capital first letter kept. A word containing one of the ``special`` tokens (such as
    ``[SEP]``) is never replaced. Copies join the words with single spaces. A copy may equal
    its source (no replacement drawn): it is kept, so the output always has
    ``len(texts) * n_copies`` rows. The draws come from one generator seeded by ``seed``,
    so the same arguments give the same copies in any process.

    Args:
        texts: the sentences to augment.
        table: candidates per lookup form (:func:`neighbour_table`).
        n_copies: copies per text (TinyBERT's N_a).
        replace_prob: the probability that a replaceable word is replaced (TinyBERT's p_t).
        seed: seeds the draws.
        lower: look words up lower-case (an uncased vocabulary, :func:`lowercases`).
        special: the tokenizer's special tokens (``all_special_tokens``).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng([seed, 0xA06])
    out = []
    for text in tqdm(texts, desc="augmenting", disable=not progress):
        tokens = text.split()
        parts = [("", "", "") if any(x in t for x in special) else split_word(t)
                 for t in tokens]
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
