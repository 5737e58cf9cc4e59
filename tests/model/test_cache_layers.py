"""The one all-layers teacher-output cache (issue 14): every layer mapping reads its layers
from it without a teacher pass, and reads exactly what a live forward gives."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from kdtune.objectives.cache import outputs as cache
from kdtune.objectives.cache.fingerprint import file_digest, teacher_fingerprint
from kdtune.objectives.cache.outputs import compute_or_load, estimate_intermediate_bytes
from kdtune.objectives.cache.store import CACHE_FORMAT_VERSION
from kdtune.objectives.teacher.forward import forward_teacher

WORDS = "the film was a quiet and moving portrait of grief told with rare grace and wit".split()
TEXTS = [" ".join(WORDS[: 2 + (i * 7) % 15]) for i in range(37)]  # 37 rows, lengths 4..18
ALL = "h0.1.2.3.4-a0.1.2.3"  # the tiny teacher has 4 layers


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KDTUNE_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def dataset(tokenizer):
    from datasets import Dataset

    enc = tokenizer(TEXTS, truncation=True, max_length=32)
    return Dataset.from_dict({**enc, "label": [i % 2 for i in range(len(TEXTS))]})


class Counts:
    """Teacher forwards (a hook) and cache writes (a spy on store_variant)."""

    def __init__(self, model, monkeypatch):
        self.forwards, self.writes = 0, []
        self.handle = model.register_forward_hook(lambda *_: self._forward())
        real = cache.store_variant

        def spy(final, *a, **k):
            self.writes.append(final.name)
            return real(final, *a, **k)

        monkeypatch.setattr(cache, "store_variant", spy)

    def _forward(self):
        self.forwards += 1


def _mib(lengths_of, hidden, att) -> float:
    """Estimated MiB of an intermediate cache of the tiny teacher on ``lengths_of``."""
    return estimate_intermediate_bytes(lengths_of, 32, 2, hidden, att) / 2**20


def test_all_layers_read_equals_a_live_forward_bit_for_bit(teacher, tokenizer, dataset):
    """What the losses receive from the all-layers cache is exactly the live forward of the
    same rows, and exactly what a cache of just the needed layers gave before."""
    outputs = compute_or_load(teacher, tokenizer, dataset, "a1" * 32, [0, 2, 4], [1, 3])
    assert outputs.path.name == ALL
    assert set(outputs.hidden) == {0, 2, 4} and set(outputs.attentions) == {1, 3}
    # The cache ran one batch (37 rows < 64), longest first: the same forward, live.
    lengths = cache._dataset_lengths(dataset)
    order = np.argsort(-lengths, kind="stable").tolist()
    batch = cache._pad_batch([dataset[r] for r in order])
    live = forward_teacher(teacher, batch, range(5), range(4))
    got = outputs.batch(order, seq_len=batch["input_ids"].shape[1])
    assert torch.equal(got["logits"], live["logits"])
    for i in (0, 2, 4):
        assert torch.equal(got["hidden"][i], live["hidden"][i])
    for i in (1, 3):
        assert torch.equal(got["attentions"][i], live["attentions"][i])

    # The needed layers alone (the cache before issue 14, now the budget fallback).
    budget = _mib(lengths, [0, 2, 4], [1, 3]) * 1.01
    exact = compute_or_load(teacher, tokenizer, dataset, "b2" * 32, [0, 2, 4], [1, 3],
                            memory_budget_mb=budget)
    assert exact.path.name == "h0.2.4-a1.3"
    old = exact.batch(order, seq_len=batch["input_ids"].shape[1])
    for kind in ("hidden", "attentions"):
        for i, t in old[kind].items():
            assert torch.equal(got[kind][i], t)


def test_a_second_mapping_reads_the_cache_without_a_teacher_pass(teacher, tokenizer, dataset,
                                                                 monkeypatch):
    counts = Counts(teacher, monkeypatch)
    try:
        first = compute_or_load(teacher, tokenizer, dataset, "c3" * 32, [0, 2, 4], [1, 3])
        assert counts.forwards == 1 and counts.writes == [ALL]
        # another depth / mapping: student layers 1..3 from teacher layers 1, 2, 3
        second = compute_or_load(teacher, tokenizer, dataset, "c3" * 32, [0, 1, 2, 3], [0, 1, 2])
        hidden_only = compute_or_load(teacher, tokenizer, dataset, "c3" * 32, [0, 3], [])
        assert counts.forwards == 1 and counts.writes == [ALL]
    finally:
        counts.handle.remove()
    assert second.path == first.path == hidden_only.path
    assert set(second.hidden) == {0, 1, 2, 3} and set(second.attentions) == {0, 1, 2}
    assert set(hidden_only.hidden) == {0, 3} and hidden_only.attentions == {}
    assert not second.needs_live_teacher and not hidden_only.needs_live_teacher
    np.testing.assert_array_equal(second.hidden[2], first.hidden[2])


def test_hidden_only_caches_no_attention_and_attention_later_adds_it(teacher, tokenizer,
                                                                     dataset, monkeypatch):
    counts = Counts(teacher, monkeypatch)
    try:
        compute_or_load(teacher, tokenizer, dataset, "d4" * 32, [0, 2], [])
        compute_or_load(teacher, tokenizer, dataset, "d4" * 32, [1, 4], [])
        assert counts.writes == ["h0.1.2.3.4-a"]
        both = compute_or_load(teacher, tokenizer, dataset, "d4" * 32, [0, 2], [3])
        again = compute_or_load(teacher, tokenizer, dataset, "d4" * 32, [4], [])
    finally:
        counts.handle.remove()
    assert counts.writes == ["h0.1.2.3.4-a", ALL] and counts.forwards == 2
    assert both.path.name == ALL
    assert again.path.name == "h0.1.2.3.4-a"  # the all-layers one of the kinds needed first


def test_budget_fallback_and_older_variants(teacher, tokenizer, dataset, monkeypatch):
    """All layers over the budget: just the needed ones when they fit, else logits (live
    teacher); a variant already holding the layers is read whatever the budget."""
    lengths = cache._dataset_lengths(dataset)
    between = _mib(lengths, [0, 4], [3]) * 1.01
    assert between < _mib(lengths, range(5), range(4))
    counts = Counts(teacher, monkeypatch)
    try:
        exact = compute_or_load(teacher, tokenizer, dataset, "e5" * 32, [0, 4], [3],
                                memory_budget_mb=between)
        assert exact.path.name == "h0.4-a3" and not exact.needs_live_teacher
        subset = compute_or_load(teacher, tokenizer, dataset, "e5" * 32, [4], [3],
                                 memory_budget_mb=0)  # older variant, no budget: still read
        assert subset.path == exact.path and counts.writes == ["h0.4-a3"]
        over = compute_or_load(teacher, tokenizer, dataset, "e5" * 32, [0, 1, 2], [1, 3],
                               memory_budget_mb=between)  # not held, more than the budget
        assert over.path.name == "logits" and over.needs_live_teacher
        full = compute_or_load(teacher, tokenizer, dataset, "e5" * 32, [0, 2], [3])
        assert full.path.name == ALL and not full.needs_live_teacher
        # Once the all-layers variant exists it is preferred to the older exact one.
        assert compute_or_load(teacher, tokenizer, dataset, "e5" * 32, [0, 4], [3],
                               memory_budget_mb=0).path.name == ALL
    finally:
        counts.handle.remove()
    assert counts.writes == ["h0.4-a3", "logits", ALL] and counts.forwards == 3


def test_logits_only_fingerprint_is_the_key_of_earlier_versions(tiny_bert_dir):
    """Layers left the key; a request without intermediates keeps the key it had, so the
    logits caches written before stay hits."""
    files = sorted(p for p in tiny_bert_dir.iterdir() if p.is_file()
                   and p.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"))
    payload = {"format": CACHE_FORMAT_VERSION, "teacher_files": {p.name: file_digest(p)
               for p in files}, "dataset": "d", "split": "train", "tokenizer": "tok",
               "max_length": 32, "layers": [], "with_attentions": False}
    before = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    assert teacher_fingerprint(tiny_bert_dir, "d", "train", "tok", 32) == before


def test_trials_of_two_mappings_share_one_teacher_pass(tiny_teacher_dir, synthetic_csv,
                                                       monkeypatch):
    from kdtune.objectives.data.dataset import DataConfig
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.distillation.prepare import load_inputs, teacher_signal

    data = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, max_length=16)
    cpu = torch.device("cpu")
    signals = []
    for layers, mapping in ((2, "uniform"), (3, "bottom"), (1, "top")):
        cfg = DistillConfig(teacher=str(tiny_teacher_dir), data=data, student_layers=layers,
                            layer_mapping=mapping, beta=1.0, threads=1)
        inputs = load_inputs(cfg, cpu)
        if not signals:
            counts = Counts(inputs.teacher, monkeypatch)
        signals.append((teacher_signal(cfg, inputs, cpu), inputs))
    counts.handle.remove()
    assert counts.writes == [ALL, "logits"]  # train (all layers), eval (logits)
    assert [s.hidden for s, _ in signals] == [(0, 2, 4), (0, 1, 2, 3), (0, 4)]
    assert [s.attention for s, _ in signals] == [(1, 3), (0, 1, 2), (3,)]
    for signal, inputs in signals:
        assert not signal.live and signal.train.path.name == ALL
        assert set(signal.train.hidden) == set(signal.hidden)
        # the cached batch agrees with a live forward of the training batch
        rows = [0, 5, 9]
        batch = cache._pad_batch([inputs.train[r] for r in rows])
        got = signal.for_batch(batch, torch.tensor(rows), cpu)
        live = forward_teacher(inputs.teacher, batch, signal.hidden, signal.attention)
        for i in signal.hidden:
            assert torch.allclose(got["hidden"][i], live["hidden"][i], atol=1e-5)
        for i in signal.attention:
            assert torch.allclose(got["attentions"][i], live["attentions"][i], atol=1e-4)
