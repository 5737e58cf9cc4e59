"""Student size: shape (width, heads, feed-forward size), weight-selection init and the
parameter count. The size cap in the search: test_size_cap.py."""

from __future__ import annotations

import pytest
import torch

from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.distillation.run import distill
from kdtune.objectives.student.build import build_student
from kdtune.objectives.student.from_teacher import select
from kdtune.objectives.student.model import count_parameters
from kdtune.objectives.student.size import (
    auto_widths,
    student_parameters,
    student_shape,
    teacher_parameters,
)
from kdtune.objectives.teacher.forward import average_heads


def test_heads_and_ffn_follow_the_width(wide):
    assert student_shape(wide.config, None) == (64, 4, 256)
    assert student_shape(wide.config, 32) == (32, 2, 128)  # heads of 16 kept, FFN 4x
    assert student_shape(wide.config, 8) == (8, 1, 32)  # narrower than one head: one head
    assert student_shape(wide.config, 40) == (40, 2, 160)  # 40/16 -> 2 heads of 20
    assert auto_widths(384, 12) == (192, 256, 384)  # MiniLM: 1/2, 2/3, full width
    assert auto_widths(768, 12) == (384, 512, 768)  # BERT-base
    assert auto_widths(768, 12, (1,)) == (768,)  # search.width_fractions: [1]
    assert auto_widths(384, 12, (0.25, 1)) == (96, 384)
    assert auto_widths(64, 4) == (32, 48, 64)


@pytest.mark.parametrize("selection", ["even", "first"])
def test_teacher_subset_init_copies_the_selected_slices(wide, selection):
    width, heads, ffn = student_shape(wide.config, 32)
    student = build_student(wide, [1, 3], hidden_size=width, num_attention_heads=heads,
                            intermediate_size=ffn, selection=selection)
    s, t = dict(student.model.named_parameters()), dict(wide.named_parameters())
    h = select(64, 32, selection)
    f = select(256, 128, selection)
    kept_heads = select(4, 2, selection)
    a = [k * 16 + d for k in kept_heads for d in range(16)]  # whole heads of 16
    if selection == "even":
        assert h[:3] == [0, 2, 4] and kept_heads == [0, 2] and f[:2] == [0, 2]
    else:
        assert h[:3] == [0, 1, 2] and kept_heads == [0, 1]
    H, A, F = torch.tensor(h), torch.tensor(a), torch.tensor(f)  # noqa: N806
    emb = "bert.embeddings."
    for name in ("word_embeddings.weight", "position_embeddings.weight",
                 "token_type_embeddings.weight"):
        assert torch.equal(s[emb + name], t[emb + name][:, H]), name
    for name in ("LayerNorm.weight", "LayerNorm.bias"):
        assert torch.equal(s[emb + name], t[emb + name][H]), name
    for m, g in enumerate([1, 3]):
        sp, tp = f"bert.encoder.layer.{m}.", f"bert.encoder.layer.{g - 1}."
        for qkv in ("query", "key", "value"):
            w = f"attention.self.{qkv}."
            assert torch.equal(s[sp + w + "weight"], t[tp + w + "weight"][A][:, H])
            assert torch.equal(s[sp + w + "bias"], t[tp + w + "bias"][A])
        o = "attention.output."
        assert torch.equal(s[sp + o + "dense.weight"], t[tp + o + "dense.weight"][H][:, A])
        assert torch.equal(s[sp + o + "LayerNorm.weight"], t[tp + o + "LayerNorm.weight"][H])
        assert torch.equal(s[sp + "intermediate.dense.weight"],
                           t[tp + "intermediate.dense.weight"][F][:, H])
        assert torch.equal(s[sp + "output.dense.weight"], t[tp + "output.dense.weight"][H][:, F])
        assert torch.equal(s[sp + "output.dense.bias"], t[tp + "output.dense.bias"][H])
    assert torch.equal(s["bert.pooler.dense.weight"], t["bert.pooler.dense.weight"][H][:, H])
    assert torch.equal(s["classifier.weight"], t["classifier.weight"][:, H])
    assert torch.equal(s["classifier.bias"], t["classifier.bias"])


def test_full_width_subset_init_is_an_exact_copy(wide):
    student = build_student(wide, [2], hidden_size=64, num_attention_heads=4)
    t = dict(wide.named_parameters())
    for key, value in student.model.named_parameters():
        src = key.replace("encoder.layer.0.", "encoder.layer.1.")
        assert torch.equal(value, t[src]), key


@pytest.mark.parametrize(("layers", "width"), [(1, None), (2, 32), (3, 16), (2, 8)])
def test_parameter_count_matches_the_built_student(wide, layers, width):
    shape = student_shape(wide.config, width)
    student = build_student(wide, list(range(1, layers + 1)), hidden_size=shape[0],
                            num_attention_heads=shape[1], intermediate_size=shape[2])
    assert student_parameters(wide.config, layers, width) == count_parameters(student)
    assert teacher_parameters(wide.config) == sum(p.numel() for p in wide.parameters())


def test_average_heads_pools_the_teacher_into_the_students_count():
    scores = torch.arange(4.0).reshape(1, 4, 1, 1).expand(2, 4, 3, 3)
    pooled = average_heads(scores, 2)
    assert pooled.shape == (2, 2, 3, 3)
    assert pooled[0, :, 0, 0].tolist() == [0.5, 2.5]  # heads (0, 1) and (2, 3)
    assert average_heads(scores, 4) is scores
    assert average_heads(scores, 3)[0, :, 0, 0].tolist() == [0.5, 1.5, 2.5]  # 4 -> 3 windows


def test_a_narrower_student_trains_with_every_intermediate_loss(wide_dir, small_data):
    """hidden 32 against a 64-wide teacher: 2 heads, W_h, teacher heads averaged 4 -> 2."""
    from transformers import AutoConfig

    cfg = DistillConfig(teacher=str(wide_dir), data=small_data, student_layers=2,
                        hidden_size=32, beta=1.0, epochs=1, batch_size=16, threads=2,
                        learning_rate=1e-3, eval={"latency_batches": 1})
    for cache in (True, False):
        r = distill(cfg.model_copy(update={"teacher_cache": cache}))
        assert r.student.hidden_size == 32 and r.student.config.num_attention_heads == 2
        assert r.student.config.intermediate_size == 128
        assert r.student.projection is not None
        losses = r.history[0]
        for term in ("loss_hidden", "loss_embedding", "loss_attention", "loss_soft"):
            assert losses[term] > 0, term
        assert r.metrics["params"] == student_parameters(r.student.model.config, 2, None)
        assert r.metrics["params"] == student_parameters(
            AutoConfig.from_pretrained(str(wide_dir)), 2, 32, r.metrics["vocabulary_size"])
        assert r.metrics["vocabulary_size"] < 30522  # the task vocabulary cut the embedding


def test_ffn_size_narrows_the_feed_forward_block_only(wide, wide_dir, small_data):
    """ffn_size 96 at the teacher's width: the FFN keeps evenly spaced teacher neurons, the
    count and the cap see it, and a distillation builds and trains it."""
    from transformers import AutoConfig

    assert student_shape(wide.config, None, 96) == (64, 4, 96)
    assert student_shape(wide.config, 32, 96) == (32, 2, 96)
    student = build_student(wide, [2], intermediate_size=96)
    neurons = select(256, 96)
    t = dict(wide.named_parameters())
    s = dict(student.model.named_parameters())
    assert torch.equal(s["bert.encoder.layer.0.intermediate.dense.weight"],
                       t["bert.encoder.layer.1.intermediate.dense.weight"][neurons])
    assert torch.equal(s["bert.encoder.layer.0.output.dense.weight"],
                       t["bert.encoder.layer.1.output.dense.weight"][:, neurons])
    assert torch.equal(s["bert.encoder.layer.0.attention.self.query.weight"],
                       t["bert.encoder.layer.1.attention.self.query.weight"])
    assert student_parameters(wide.config, 1, None, None, 96) == count_parameters(student)
    assert student_parameters(wide.config, 1, None, None, 96) < student_parameters(
        wide.config, 1, None)

    cfg = DistillConfig(teacher=str(wide_dir), data=small_data, student_layers=1,
                        ffn_size=96, epochs=1, batch_size=16, threads=2,
                        eval={"latency_batches": 1})
    r = distill(cfg)
    assert r.student.config.intermediate_size == 96 and r.student.hidden_size == 64
    assert r.metrics["params"] == student_parameters(
        AutoConfig.from_pretrained(str(wide_dir)), 1, None, r.metrics["vocabulary_size"], 96)
    from kdtune.study.export.card import student_lines

    assert "64 wide (feed-forward 96)" in student_lines(cfg, r.metrics)


def test_ffn_size_above_the_teachers_is_refused_at_check(wide_dir, small_data):
    from kdtune.objectives.search.checks import check_distill

    cfg = DistillConfig(teacher=str(wide_dir), data=small_data, ffn_size=512)
    problems = check_distill(cfg)
    assert any("ffn_size" in p and "256" in p and "512" in p for p in problems), problems
