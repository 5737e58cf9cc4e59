"""Issue 14's training-loop speed-ups: length-grouped batches, fused AdamW, the word
embedding's row-sparse clipping, SDPA attention, and that a configuration still reproduces."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from kdtune.objectives.data.dataset import DataConfig
from kdtune.objectives.distillation.build import attention_implementation
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.distillation.run import distill
from kdtune.objectives.distillation.training import (
    Optimiser,
    adamw,
    clip_gradients,
    train_loader,
    word_embedding,
)
from kdtune.objectives.student.build import build_student


def _cfg(**kw) -> DistillConfig:
    # construct without validation: no teacher on disk is needed
    return DistillConfig.model_construct(teacher="unused", **kw)


def _run(teacher, csv, **kw):
    data = DataConfig(source=str(csv), eval_size=80, test_size=80, max_length=16)
    return distill(DistillConfig(teacher=str(teacher), data=data, batch_size=16, threads=2,
                                 student_layers=2, epochs=1, learning_rate=1e-3, **kw))


# ------------------------------------------------------------------ (a) reproduction


@pytest.mark.parametrize("extra", [{"beta": 0.0},
                                   {"beta": 1.0, "intermediate": ("hidden", "attention")}],
                         ids=["sdpa", "eager-attention-loss"])
def test_a_configuration_reproduces_its_result(tiny_teacher_dir, synthetic_csv, extra):
    """Same configuration and seed: the same losses, epoch by epoch, and the same metrics;
    another seed trains differently (so the equality is not vacuous)."""
    first = _run(tiny_teacher_dir, synthetic_csv, seed=3, **extra)
    again = _run(tiny_teacher_dir, synthetic_csv, seed=3, **extra)
    other = _run(tiny_teacher_dir, synthetic_csv, seed=4, **extra)
    keys = ("accuracy_student", "sigma", "sigma_max", "accuracy_student_ci", "sigma_ci")
    assert {k: first.metrics[k] for k in keys} == {k: again.metrics[k] for k in keys}
    assert first.history == again.history
    for a, b in zip(first.student.parameters(), again.student.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.history[0]["loss_total"] != other.history[0]["loss_total"]
    # (c) at run level: the attention loss alone decides the kernel
    want = "eager" if "attention" in extra.get("intermediate", ()) else "sdpa"
    assert first.student.attention_implementation == want
    assert first.teacher.config._attn_implementation == "sdpa"  # one teacher for all trials


# ------------------------------------------------------------- (b) length-grouped batches


@pytest.fixture(scope="module")
def mixed(tokenizer):
    """200 rows whose lengths range from 1 to about 40 words, in random order."""
    from datasets import Dataset

    rng = random.Random(0)
    words = ["film", "plot", "cast", "dull", "great", "score", "ending", "story"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(200)]
    enc = tokenizer(texts, truncation=True, max_length=64)
    train = Dataset.from_dict({**enc, "label": [i % 2 for i in range(200)]})
    return SimpleNamespace(tokenizer=tokenizer, train=train)


def _epoch(loader) -> list[dict]:
    return [b for b in loader]


def test_every_row_appears_once_per_epoch_with_its_index(mixed):
    loader = train_loader(mixed, _cfg(batch_size=16, seed=0))
    for _ in range(2):  # two epochs of one loader
        batches = _epoch(loader)
        idx = torch.cat([b["idx"] for b in batches]).tolist()
        assert sorted(idx) == list(range(len(mixed.train)))
        assert len(batches) == len(loader) == 13
        for b in batches[:3]:  # idx names the row each batch line holds
            for line, row in zip(b["input_ids"], b["idx"].tolist(), strict=True):
                ids = mixed.train[row]["input_ids"]
                assert line[: len(ids)].tolist() == ids
                assert (line[len(ids):] == mixed.tokenizer.pad_token_id).all()
            assert b["labels"].tolist() == [mixed.train[r]["label"] for r in b["idx"].tolist()]


def test_grouped_batches_are_shorter_than_random_ones(mixed):
    lengths = [len(ids) for ids in mixed.train["input_ids"]]
    grouped = [b["input_ids"].shape[1] for b in _epoch(train_loader(mixed, _cfg(batch_size=16)))]
    perm = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
    shuffled = [max(lengths[i] for i in perm[s:s + 16]) for s in range(0, len(perm), 16)]
    assert sum(grouped) / len(grouped) < 0.75 * sum(shuffled) / len(shuffled)


def test_the_order_follows_the_seed(mixed):
    def order(seed: int, epochs: int = 1) -> list[list[int]]:
        loader = train_loader(mixed, _cfg(batch_size=16, seed=seed))
        out = []
        for _ in range(epochs):
            out.append(torch.cat([b["idx"] for b in loader]).tolist())
        return out

    assert order(0) == order(0)
    assert order(0) != order(1)
    first, second = order(0, epochs=2)
    assert first != second  # each epoch reshuffles


# ------------------------------------------------------------------- (c) attention kernel


def test_sdpa_unless_the_attention_loss_is_on():
    assert attention_implementation(_cfg(beta=0.0)) == "sdpa"  # default intermediate, off
    assert attention_implementation(_cfg(beta=1.0, intermediate=("hidden", "embedding"))) \
        == "sdpa"
    assert attention_implementation(_cfg(beta=1.0, intermediate=("attention",))) == "eager"
    assert attention_implementation(_cfg(beta=0.5)) == "eager"  # default has attention


def test_sdpa_student_gives_hidden_states_and_saves_loadably(teacher, tokenizer, tmp_path):
    from transformers import AutoModelForSequenceClassification

    batch = tokenizer(["a genuinely moving film", "dull and far too long"], padding=True,
                      return_tensors="pt")
    sdpa = build_student(teacher, [2, 4], attn_implementation="sdpa").eval()
    eager = build_student(teacher, [2, 4]).eval()
    assert sdpa.attention_implementation == "sdpa" and eager.attention_implementation == "eager"
    with torch.no_grad():
        s, e = sdpa(output_intermediate=True, **batch), eager(output_intermediate=True, **batch)
    assert s.attentions is None and len(e.attentions) == 2
    assert len(s.hidden_states) == 3
    for a, b in zip(s.hidden_states, e.hidden_states, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(s.logits, e.logits, atol=1e-5)
    out = sdpa.save_pretrained(tmp_path / "s", tokenizer)
    for impl in ("eager", "sdpa"):
        loaded = AutoModelForSequenceClassification.from_pretrained(
            str(out), attn_implementation=impl).eval()
        with torch.no_grad():
            assert torch.allclose(loaded(**batch).logits, s.logits, atol=1e-5)
    resumed = build_student(teacher, [2, 4], init="checkpoint", checkpoint=out,
                            attn_implementation="sdpa")
    assert resumed.attention_implementation == "sdpa"
    with pytest.raises(ValueError, match="attn_implementation must be one of eager, sdpa"):
        build_student(teacher, [2, 4], attn_implementation="flash")


# --------------------------------------------------- (d) clipping and the word embedding


def _loss(student, tokenizer, scale: float = 1.0):
    batch = tokenizer(["a genuinely moving film", "dull and far too long"], padding=True,
                      return_tensors="pt")
    return scale * student(**batch).logits.square().sum(), batch["input_ids"]


def test_clipping_reads_only_the_batch_rows_of_the_word_embedding(teacher, tokenizer,
                                                                  monkeypatch):
    torch.manual_seed(0)
    student = build_student(teacher, [2, 4])
    params = [p for p in student.parameters() if p.requires_grad]
    emb = word_embedding(student)
    assert emb is student.model.get_input_embeddings().weight
    loss, ids = _loss(student, tokenizer, scale=100.0)  # a norm far above 1: clipping acts
    loss.backward()
    # the reference: torch's own clip over every parameter, on copies of the gradients
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for c, p in zip(copies, params, strict=True):
        c.grad = p.grad.clone()
    ref_norm = torch.nn.utils.clip_grad_norm_(copies, 1.0)
    assert ref_norm > 10

    def full_clip(*_a, **_k):
        raise AssertionError("the full-size clip_grad_norm_ ran")

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", full_clip)
    norm = clip_gradients(params, 1.0, emb, ids)
    assert float(norm) == pytest.approx(float(ref_norm), rel=1e-5)
    for p, c in zip(params, copies, strict=True):
        assert torch.allclose(p.grad, c.grad, rtol=1e-5, atol=1e-9)
    untouched = torch.ones(emb.shape[0], dtype=torch.bool)
    untouched[ids.flatten()] = False
    assert not emb.grad[untouched].any()


def test_optimiser_is_fused_and_steps_without_the_full_clip(teacher, tokenizer, monkeypatch):
    torch.manual_seed(0)
    student = build_student(teacher, [2, 4])
    opt = Optimiser.for_stage(student, _cfg(learning_rate=1e-3, warmup_ratio=0.0,
                                            weight_decay=0.01), steps=4)
    assert opt.optimizer.defaults["fused"] is True  # torch has a CPU kernel
    assert opt.embedding is student.model.get_input_embeddings().weight
    seen: list[int] = []
    real = torch.nn.utils.clip_grad_norm_

    def recording(params, *a, **k):
        params = list(params)
        seen.append(len(params))
        return real(params, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    before = opt.embedding.detach().clone()
    loss, ids = _loss(student, tokenizer)
    opt.step(loss, ids)
    assert seen == []  # the word embedding was not walked by a full clip
    assert not torch.equal(before, opt.embedding)  # but it is trained
    loss, _ = _loss(student, tokenizer)
    opt.step(loss)  # without token ids: the plain full clip
    assert seen == [len(opt.params)]


def test_adamw_falls_back_where_no_fused_kernel(monkeypatch):
    real = torch.optim.AdamW

    def no_fused(params, fused=None, **kw):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be on a supported device")
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    opt = adamw(list(torch.nn.Linear(2, 2).parameters()), lr=0.1)
    assert not opt.defaults.get("fused")


def test_token_lengths_follow_a_shuffled_selection():
    """Arrow's lengths keep the dataset's row order, a select/shuffle mapping included, and
    equal the per-row count; a plain dict of lists is counted row by row."""
    import datasets

    from kdtune.objectives.compute.length_batches import token_lengths

    rows = [[101] + [7] * n + [102] for n in (5, 0, 12, 3, 9, 1, 30, 2)]
    ds = datasets.Dataset.from_dict({"input_ids": rows, "label": [0] * len(rows)})
    view = ds.shuffle(seed=3).select(range(5))
    assert token_lengths(view) == [len(r) for r in view["input_ids"]]
    assert token_lengths(view) != token_lengths(ds)[:5]  # the mapping was applied
    assert token_lengths({"input_ids": rows}) == [len(r) for r in rows]


def test_label_array_follows_a_shuffled_selection():
    import datasets

    from kdtune.objectives.data.tokens import label_array

    ds = datasets.Dataset.from_dict({"input_ids": [[1]] * 8, "label": [0, 1, 2, 1, 0, 2, 2, 1]})
    view = ds.shuffle(seed=5).select(range(6))
    assert label_array(view).tolist() == list(view["label"])
    assert label_array(view).dtype.kind == "i"
    assert label_array({"label": [1, 0]}).tolist() == [1, 0]
