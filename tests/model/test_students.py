"""Students worth shipping: the students' data, the task vocabulary, alignment in a run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from kdtune.errors import ConfigError
from kdtune.objectives.data.dataset import DataConfig, load_splits
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.distillation.run import distill
from kdtune.objectives.student.vocabulary import (
    check_wordpiece,
    shrink_embeddings,
    task_vocabulary,
    tokenised_differently,
)


def _data(csv_path, **kw):
    return DataConfig(source=str(csv_path), eval_size=80, test_size=80, max_length=16, **kw)


def _cfg(teacher, csv_path, data=None, **kw):
    settings = {"batch_size": 16, "threads": 2, "student_layers": 1, "epochs": 1,
                "learning_rate": 1e-3, **kw}
    return DistillConfig(teacher=str(teacher), data=data or _data(csv_path), **settings)


TEXTS = ["the movie was a delightful romp, though overlong", "an utterly forgettable sequel",
         "Café crème brûlée at the multiplex!", "its ending was dull and tedious"]


def test_the_task_vocabulary_tokenises_the_students_text_exactly_as_the_teacher(minilm_path):
    from transformers import AutoTokenizer

    teacher = AutoTokenizer.from_pretrained(str(minilm_path))
    ids = teacher(TEXTS, text_pair=TEXTS[::-1])["input_ids"]
    vocab = task_vocabulary(teacher, np.unique([i for row in ids for i in row]))
    assert 100 < vocab.size < 3000 < vocab.teacher_size  # specials, the text, single chars
    got = vocab.tokenizer(TEXTS, text_pair=TEXTS[::-1])["input_ids"]
    for t_row, s_row in zip(ids, got, strict=True):  # token by token, pairs included
        assert list(vocab.to_student[t_row]) == s_row
        assert teacher.convert_ids_to_tokens(t_row) == vocab.tokenizer.convert_ids_to_tokens(
            s_row)
    # An unseen word splits into finer pieces (single characters), never [UNK].
    pieces = vocab.tokenizer.tokenize("zymurgical")
    assert "[UNK]" not in pieces and len(pieces) > len(teacher.tokenize("zymurgical"))
    assert tokenised_differently(teacher, vocab, ["zymurgical", TEXTS[0]]) == 0.5
    for name in ("pad", "unk", "cls", "sep", "mask"):
        token = getattr(teacher, f"{name}_token")
        assert vocab.tokenizer.convert_ids_to_tokens(getattr(vocab.tokenizer, f"{name}_token_id")
                                                     ) == token


def test_a_tokenizer_that_is_not_wordpiece_is_refused_in_one_line():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bpe = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(unk_token="<unk>")),
                                  unk_token="<unk>")
    with pytest.raises(ConfigError, match="needs a WordPiece tokenizer; the teacher's is BPE"):
        check_wordpiece(bpe)


def test_shrunk_embeddings_keep_the_teachers_rows(minilm_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    teacher_tok = AutoTokenizer.from_pretrained(str(minilm_path))
    ids = teacher_tok(TEXTS)["input_ids"]
    vocab = task_vocabulary(teacher_tok, np.unique([i for row in ids for i in row]))
    model = BertForSequenceClassification(BertConfig(
        vocab_size=len(teacher_tok), hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32))
    full = model.get_input_embeddings().weight.detach().clone()
    shrink_embeddings(model, vocab)
    cut = model.get_input_embeddings().weight
    assert cut.shape == (vocab.size, 16) and model.config.vocab_size == vocab.size
    assert torch.equal(cut[vocab.to_student[ids[0]]], full[ids[0]])
    model.eval()
    with torch.no_grad():  # same rows in, same logits out
        s_ids = torch.as_tensor(vocab.to_student[ids[0]])[None]
        after = model(input_ids=s_ids).logits
        model.set_input_embeddings(torch.nn.Embedding.from_pretrained(full))
        before = model(input_ids=torch.tensor([ids[0]])).logits
    assert torch.allclose(after, before)


def test_students_learn_on_every_row_outside_selection_and_test(tiny_teacher_dir, synthetic_csv):
    from kdtune.objectives.distillation.prepare import load_inputs

    all_rows = _cfg(tiny_teacher_dir, synthetic_csv, data=_data(synthetic_csv, transfer_size=60))
    alone = _cfg(tiny_teacher_dir, synthetic_csv,
                 data=_data(synthetic_csv, transfer_size=60, students="transfer"))
    splits = load_splits(all_rows.data)
    every = load_inputs(all_rows, torch.device("cpu"))
    only = load_inputs(alone, torch.device("cpu"))
    assert len(only.train) == 60 and len(every.train) == 60 + len(splits.train) == 240
    ids = {name: set(splits.row_ids[name][1].tolist()) for name in splits.names}
    assert len(ids["train"] | ids["transfer"]) == 240  # the students' rows, by source index
    assert not (ids["train"] | ids["transfer"]) & (ids["eval"] | ids["test"])
    assert every.train_fingerprint != only.train_fingerprint  # the cache keys on the data
    # The kept vocabulary comes from the students' rows only, never the held-out ones.
    assert every.vocab.size >= only.vocab.size


def test_a_task_vocabulary_student_is_smaller_and_serves_from_its_directory(
        tiny_teacher_dir, synthetic_csv, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    cfg = _cfg(tiny_teacher_dir, synthetic_csv)
    task = distill(cfg)
    full = distill(cfg.model_copy(update={"vocabulary": "full"}))
    assert task.metrics["vocabulary_size"] < full.metrics["vocabulary_size"]
    assert task.metrics["params"] < full.metrics["params"]
    # The students' text tokenises the same, so training matches the full-vocabulary run's.
    assert task.history[0]["loss_total"] == pytest.approx(full.history[0]["loss_total"],
                                                          rel=1e-4)
    assert task.metrics["accuracy_student"] == full.metrics["accuracy_student"]
    task.student.save_pretrained(tmp_path / "s", task.tokenizer)
    assert (tmp_path / "s" / "vocab.txt").read_text().count("\n") == task.metrics[
        "vocabulary_size"]
    model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "s"))
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "s"))
    assert len(tok) == model.config.vocab_size == task.metrics["vocabulary_size"]
    clf = pipeline("text-classification", model=model, tokenizer=tok, top_k=None)
    scores = clf(["the cast was superb", "a plot was dull"])
    assert all(len(s) == 2 for s in scores)


def test_alignment_folds_one_temperature_and_keeps_the_labels(tiny_teacher_dir, synthetic_csv):
    cfg = _cfg(tiny_teacher_dir, synthetic_csv, align_on="selection")
    assert cfg.align == "none"  # the default (it trades calibration away)
    plain = distill(cfg)
    aligned = distill(cfg.model_copy(update={"align": "temperature"}))
    t = aligned.metrics["align_temperature"]
    assert t > 0 and t != 1.0
    assert aligned.student.model.config.kdtune_temperature == pytest.approx(t)
    assert aligned.metrics["accuracy_student"] == plain.metrics["accuracy_student"]
    assert aligned.metrics["sigma_unaligned"] == pytest.approx(plain.metrics["sigma"])
    # fitted by sigma on the selection split: there it can only lower sigma
    assert aligned.metrics["align_fit"] == "sigma"
    assert aligned.metrics["sigma"] <= plain.metrics["sigma"] + 1e-9
    held = distill(cfg.model_copy(update={"align": "temperature", "align_on": "heldout"}))
    assert held.metrics["align_rows"] == round(0.2 * 240)  # of the 240 students' rows
    four = cfg.data.model_copy(update={"transfer_size": 60})
    held = distill(cfg.model_copy(update={"align": "temperature", "align_on": "heldout",
                                          "data": four}))
    assert held.metrics["align_rows"] == round(0.2 * 60)  # from the transfer split only


def test_three_class_sentence_pairs_distil_with_a_task_vocabulary(tmp_path, tiny_bert_dir):
    from kdtune.objectives.teacher.fit import TeacherFitConfig, fit_teacher

    rng = np.random.default_rng(0)
    words = {"yes": ["agree", "indeed", "surely"], "no": ["never", "refuse", "deny"],
             "maybe": ["perhaps", "possibly", "unsure"]}
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["premise", "hypothesis", "label"])
        for i in range(300):
            label = list(words)[i % 3]
            w.writerow([f"the speaker said item {i}", f"they {rng.choice(words[label])}", label])
    data = DataConfig(source=str(path), text_columns=("premise", "hypothesis"), eval_size=60,
                      test_size=60, max_length=24)
    fit_teacher(TeacherFitConfig(base=str(tiny_bert_dir), data=data, epochs=2,
                                 learning_rate=1e-3, batch_size=16, threads=2),
                tmp_path / "teacher", progress=False)
    r = distill(DistillConfig(teacher=str(tmp_path / "teacher"), data=data, student_layers=1,
                              epochs=1, batch_size=16, threads=2, align="temperature"))
    assert r.metrics["vocabulary_size"] < 30522 and len(r.metrics["sigma_per_class"]) == 3
    assert np.isfinite(r.metrics["align_temperature"])
    json.dumps(r.metrics, default=str)  # what a trial stores
