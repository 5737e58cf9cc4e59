"""Tests for the teacher-output cache (cache, cache_fingerprint, cache_store, teacher_forward):
fingerprints, hits, invalidation, alignment, budget, atomicity."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

from kdtune.objectives.cache import fingerprint as cache_fingerprint
from kdtune.objectives.cache import outputs as cache
from kdtune.objectives.cache.fingerprint import file_digest, teacher_fingerprint
from kdtune.objectives.cache.outputs import compute_or_load
from kdtune.objectives.cache.store import cache_root
from kdtune.objectives.teacher.forward import forward_teacher

WORDS = "the film was a quiet and moving portrait of grief told with rare grace and wit".split()
TEXTS = [" ".join(WORDS[: 2 + (i * 7) % 15]) for i in range(37)]  # 37 rows, lengths 4..18


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Each test gets an empty kdtune home, so a cache from another test or run is no hit."""
    home = tmp_path / "home"
    monkeypatch.setenv("KDTUNE_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def dataset(tokenizer):
    from datasets import Dataset

    enc = tokenizer(TEXTS, truncation=True, max_length=32)
    return Dataset.from_dict({**enc, "label": [i % 2 for i in range(len(TEXTS))]})


def _fp(teacher_dir, **changes):
    args = {
        "teacher_dir": teacher_dir,
        "dataset_fingerprint": "data-abc",
        "split": "train",
        "tokenizer_name": "tiny",
        "max_length": 32,
    }
    return teacher_fingerprint(**{**args, **changes})


class ForwardCounter:
    def __init__(self, model):
        self.calls = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.calls += 1


def test_fingerprint_covers_every_argument(tiny_bert_dir):
    base = _fp(tiny_bert_dir)
    assert len(base) == 64 and base == _fp(tiny_bert_dir)
    changed = [
        _fp(tiny_bert_dir, dataset_fingerprint="data-xyz"),
        _fp(tiny_bert_dir, split="eval"),
        _fp(tiny_bert_dir, tokenizer_name="other"),
        _fp(tiny_bert_dir, max_length=64),
    ]
    assert len({base, *changed}) == 1 + len(changed)


def test_fingerprint_changes_when_teacher_weights_change(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    copy = tmp_path / "teacher"
    shutil.copytree(tiny_bert_dir, copy)
    before = _fp(copy)
    model = AutoModelForSequenceClassification.from_pretrained(str(copy))
    with torch.no_grad():
        model.classifier.bias[0] += 1e-3
    model.save_pretrained(copy)
    assert _fp(copy) != before


def test_file_digest_sidecar_is_never_stale(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    old = 1_600_000_000_000_000_000
    os.utime(path, ns=(old, old))  # old enough to be remembered in the sidecar
    first = file_digest(path)
    sidecars = list((cache_fingerprint.kdtune_home() / "cache" / "file-digests").glob("*.json"))
    assert len(sidecars) == 1 and json.loads(sidecars[0].read_text())["sha256"] == first
    assert file_digest(path) == first

    path.write_bytes(b"b" * 1000)  # same size, and the same mtime forced back
    os.utime(path, ns=(old, old))
    assert file_digest(path) != first  # ctime moved, so the sidecar is not trusted


def test_fingerprint_rejects_bad_teacher_dir(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        _fp(tmp_path / "absent")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no weights"):
        _fp(tmp_path)


def test_second_call_is_a_hit(teacher, tokenizer, dataset, private_home):
    counter = ForwardCounter(teacher)
    try:
        first = compute_or_load(teacher, tokenizer, dataset, "f" * 64, [0, 2, 4], [1, 3],
                                batch_size=8)  # fmt: skip
        assert counter.calls == 5  # ceil(37 / 8)
        second = compute_or_load(teacher, tokenizer, dataset, "f" * 64, [0, 2, 4], [1, 3])
        assert counter.calls == 5
    finally:
        counter.handle.remove()
    assert not teacher.training
    assert (
        second.path
        == first.path
        == private_home / "cache/teacher-outputs" / ("f" * 64) / "h0.1.2.3.4-a0.1.2.3"
    )  # all layers cached; only the requested ones opened
    assert set(second.hidden) == {0, 2, 4} and set(second.attentions) == {1, 3}
    assert second.has_intermediates and not second.needs_live_teacher
    np.testing.assert_array_equal(second.logits, first.logits)
    assert not list(second.path.parent.glob(".tmp-*"))


def test_different_fingerprint_recomputes(teacher, tokenizer, dataset):
    counter = ForwardCounter(teacher)
    try:
        compute_or_load(teacher, tokenizer, dataset, "a" * 64, batch_size=64)
        compute_or_load(teacher, tokenizer, dataset, "b" * 64, batch_size=64)
    finally:
        counter.handle.remove()
    assert counter.calls == 2


def test_batch_matches_live_forward(teacher, tokenizer, dataset):
    outputs = compute_or_load(teacher, tokenizer, dataset, "c" * 64, [0, 2, 4], [1, 3],
                              batch_size=5)  # fmt: skip
    assert outputs.num_examples == len(TEXTS) and outputs.num_labels == 2
    idx = [3, 0, 36, 17]
    rows = [TEXTS[i] for i in idx]
    enc = tokenizer(rows, padding="max_length", max_length=24, return_tensors="pt")
    got = outputs.batch(idx, seq_len=24)
    live = forward_teacher(teacher, enc, [0, 2, 4], [1, 3])
    with torch.no_grad():
        plain = teacher(**enc).logits
    assert torch.allclose(got["logits"], plain, atol=1e-5)
    assert torch.equal(got["lengths"], enc["attention_mask"].sum(1))
    assert set(got["hidden"]) == {0, 2, 4} and set(got["attentions"]) == {1, 3}
    for i in (0, 2, 4):
        assert got["hidden"][i].shape == (4, 24, 32)
        assert torch.allclose(got["hidden"][i], live["hidden"][i], atol=1e-5)
    for i in (1, 3):
        assert got["attentions"][i].shape == (4, 2, 24, 24)
        assert torch.allclose(got["attentions"][i], live["attentions"][i], atol=1e-5)
    # Padding is zero; real entries are pre-softmax scores whose softmax over the real
    # tokens is the teacher's own attention distribution.
    n0 = int(got["lengths"][0])
    assert got["hidden"][2][0, n0:].abs().max() == 0
    assert got["attentions"][1][0, :, n0:].abs().max() == 0
    with torch.no_grad():
        probs = teacher(**enc, output_attentions=True).attentions[1]
    assert torch.allclose(torch.softmax(got["attentions"][1][0, :, :n0, :n0], -1),
                          probs[0, :, :n0, :n0], atol=1e-5)

    with pytest.raises(ValueError, match="seq_len 3 is shorter"):
        outputs.batch(idx, seq_len=3)
    with pytest.raises(ValueError, match="indices must be in 0..36"):
        outputs.batch([37], seq_len=24)


def test_budget_exceeded_caches_logits_only(teacher, tokenizer, dataset):
    small = compute_or_load(teacher, tokenizer, dataset, "d" * 64, [0, 4], [3],
                            memory_budget_mb=0.001)  # fmt: skip
    assert small.path.name == "logits"
    assert small.needs_live_teacher and not small.hidden and not small.attentions
    got = small.batch([0, 1], seq_len=32)
    assert got["logits"].shape == (2, 2) and got["hidden"] == {} and got["attentions"] == {}
    assert not (small.path / "hidden_0.npy").exists()
    # Logits-only outputs serve a request without intermediates (e.g. the eval split).
    plain = compute_or_load(teacher, tokenizer, dataset, "d" * 64)
    assert plain.path == small.path and not plain.needs_live_teacher
    # A larger budget later writes the all-layers variant beside it.
    full = compute_or_load(teacher, tokenizer, dataset, "d" * 64, [0, 4], [3])
    assert full.path.name == "h0.1.2.3.4-a0.1.2.3" and not full.needs_live_teacher
    np.testing.assert_allclose(full.logits, small.logits, atol=1e-6)


def test_failed_write_leaves_nothing(teacher, tokenizer, dataset, monkeypatch):
    real = cache.forward_teacher
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash mid-write")
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "forward_teacher", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        compute_or_load(teacher, tokenizer, dataset, "e" * 64, [0], [], batch_size=8)
    parent = cache_root() / ("e" * 64)
    assert list(parent.iterdir()) == []
    monkeypatch.setattr(cache, "forward_teacher", real)
    ok = compute_or_load(teacher, tokenizer, dataset, "e" * 64, [0], [], batch_size=8)
    assert ok.has_intermediates and [p.name for p in parent.iterdir()] == ["h0.1.2.3.4-a"]


def test_race_loser_uses_winner(teacher, tokenizer, dataset):
    winner = compute_or_load(teacher, tokenizer, dataset, "9" * 64)
    mtime = (winner.path / "manifest.json").stat().st_mtime_ns
    # A second worker that computed concurrently finishes after the winner renamed its copy.
    cache._compute_and_store(teacher, tokenizer, dataset, cache._dataset_lengths(dataset),
                             "9" * 64, winner.path, (), (), 16)  # fmt: skip
    assert (winner.path / "manifest.json").stat().st_mtime_ns == mtime
    assert [p.name for p in winner.path.parent.iterdir()] == ["logits"]


def test_misaligned_dataset_is_rejected(teacher, tokenizer, dataset):
    compute_or_load(teacher, tokenizer, dataset, "7" * 64)
    with pytest.raises(ValueError, match="do not line up"):
        compute_or_load(teacher, tokenizer, dataset.select(range(10)), "7" * 64)


def test_invalid_arguments(teacher, tokenizer, dataset):
    with pytest.raises(ValueError, match="layers_hidden \\[5\\] out of range"):
        compute_or_load(teacher, tokenizer, dataset, "8" * 64, [0, 5])
    with pytest.raises(ValueError, match="layers_attention \\[4\\] out of range"):
        compute_or_load(teacher, tokenizer, dataset, "8" * 64, [], [4])
    with pytest.raises(ValueError, match="fingerprint must be"):
        compute_or_load(teacher, tokenizer, dataset, "../x", [])
    with pytest.raises(ValueError, match="batch_size must be"):
        compute_or_load(teacher, tokenizer, dataset, "8" * 64, batch_size=0)
    with pytest.raises(ValueError, match="input_ids"):
        compute_or_load(teacher, tokenizer, dataset.remove_columns("input_ids"), "8" * 64)


def test_sdpa_teacher_gives_the_same_scores(tiny_bert_dir, teacher, tokenizer, dataset):
    """Scores are captured with hooks on query/key, so any attention kernel works."""
    from transformers import AutoModelForSequenceClassification

    sdpa = AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert_dir), attn_implementation="sdpa"
    ).eval()
    a = compute_or_load(sdpa, tokenizer, dataset, "6" * 64, [], [0]).batch([0, 1], 24)
    b = compute_or_load(teacher, tokenizer, dataset, "5a" * 32, [], [0]).batch([0, 1], 24)
    assert torch.allclose(a["attentions"][0], b["attentions"][0], atol=1e-5)


def test_padded_rows_give_the_same_logits(teacher, tokenizer, dataset):
    """The logits-only path (the shared prediction loop) cuts padded rows back to their
    real tokens, so a dataset padded to max_length caches the same logits."""
    from datasets import Dataset

    from kdtune.objectives.compute.predict import predict_logits
    from kdtune.objectives.data.tokens import data_collator

    enc = tokenizer(TEXTS, truncation=True, max_length=32, padding="max_length")
    padded = Dataset.from_dict(dict(enc))
    a = compute_or_load(teacher, tokenizer, dataset, "4" * 64, batch_size=8)
    b = compute_or_load(teacher, tokenizer, padded, "3" * 64, batch_size=8)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-5)
    plain = predict_logits(teacher, dataset.remove_columns("label"), data_collator(tokenizer))
    np.testing.assert_allclose(a.logits, plain, atol=1e-5)
    assert json.loads((a.path / "manifest.json").read_text())["num_labels"] == 2


def test_stale_partial_directories_are_removed(teacher, tokenizer, dataset):
    parent = cache_root() / ("2" * 64)
    stale, fresh = parent / ".logits.partial-dead", parent / ".h0-a.partial-live"
    stale.mkdir(parents=True)
    fresh.mkdir()
    os.utime(stale, (1_600_000_000, 1_600_000_000))
    compute_or_load(teacher, tokenizer, dataset, "2" * 64)
    assert not stale.exists() and fresh.exists()  # a writer may still be filling "fresh"
