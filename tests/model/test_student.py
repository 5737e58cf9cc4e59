"""Tests for objectives.student.model: building, initialising, running and saving students."""

from __future__ import annotations

import pytest
import torch

from kdtune.objectives.student.build import build_student
from kdtune.objectives.student.model import Student, StudentOutput, count_parameters


@pytest.fixture()
def batch(tokenizer):
    return tokenizer(
        ["a genuinely moving film", "dull, overlong and far too pleased with itself"],
        padding=True,
        return_tensors="pt",
    )


def _params(model):
    return dict(model.named_parameters())


def test_teacher_layers_copies_mapped_layers(teacher):
    student = build_student(teacher, [2, 4])
    assert isinstance(student, Student)
    assert student.num_layers == 2 and student.mapping == [2, 4]
    assert student.projection is None
    t, s = _params(teacher), _params(student.model)
    for m, g in enumerate([2, 4]):
        prefix_s, prefix_t = f"bert.encoder.layer.{m}.", f"bert.encoder.layer.{g - 1}."
        keys = [k for k in s if k.startswith(prefix_s)]
        assert keys
        for key in keys:
            assert torch.equal(s[key], t[prefix_t + key[len(prefix_s) :]]), key
    # Layer 1 of the student must not be the teacher's layer 1 (it is layer 2).
    q = "attention.self.query.weight"
    assert not torch.equal(s[f"bert.encoder.layer.0.{q}"], t[f"bert.encoder.layer.0.{q}"])
    for key in s:
        if ".encoder.layer." not in key:  # embeddings, pooler, classifier
            assert torch.equal(s[key], t[key]), key
    # Copies, not shared storage: training the student leaves the teacher alone.
    assert s["classifier.weight"].data_ptr() != t["classifier.weight"].data_ptr()


def test_config_labels_and_eager(teacher):
    student = build_student(teacher, [4])
    cfg = student.config
    assert cfg.num_hidden_layers == 1 and cfg.hidden_size == 32
    assert cfg.id2label == teacher.config.id2label
    assert cfg._attn_implementation == "eager"
    assert student.model.training


def test_full_depth_student_matches_teacher(teacher, batch):
    student = build_student(teacher, [1, 2, 3, 4]).eval()
    with torch.no_grad():
        out = student(**batch)
        ref = teacher(**batch).logits
    assert torch.allclose(out.logits, ref, atol=1e-6)


def test_forward_shapes_without_and_with_intermediates(teacher, batch):
    student = build_student(teacher, [2, 4]).eval()
    plain = student(**batch, labels=torch.tensor([1, 0]))  # extra collator keys are ignored
    assert isinstance(plain, StudentOutput)
    assert plain.logits.shape == (2, 2)
    assert plain.hidden_states is None and plain.attentions is None
    full = student(output_intermediate=True, **batch)
    b, seq = batch["input_ids"].shape
    assert len(full.hidden_states) == 3 and len(full.attentions) == 2
    assert full.hidden_states[0].shape == (b, seq, 32)
    assert full.attentions[0].shape == (b, 2, seq, seq)
    assert full.projected_hidden_states is full.hidden_states


def test_narrow_student_has_projection(teacher, batch):
    torch.manual_seed(0)
    student = build_student(teacher, [2, 4], hidden_size=16, init="random")
    assert student.hidden_size == 16
    assert student.config.num_attention_heads == 2  # the teacher's head count is kept
    assert student.config.intermediate_size == 32  # the teacher's 64/32 ratio
    assert isinstance(student.projection, torch.nn.Linear)
    assert tuple(student.projection.weight.shape) == (32, 16)
    out = student(output_intermediate=True, **batch)
    b, seq = batch["input_ids"].shape
    assert [h.shape for h in out.hidden_states] == [(b, seq, 16)] * 3
    assert [h.shape for h in out.projected_hidden_states] == [(b, seq, 32)] * 3
    assert [a.shape for a in out.attentions] == [(b, 2, seq, seq)] * 2
    # Gradients reach the projection through the projected hidden states.
    out.projected_hidden_states[1].sum().backward()
    assert student.projection.weight.grad is not None
    projection = sum(p.numel() for p in student.projection.parameters())
    total = sum(p.numel() for p in student.parameters())
    assert count_parameters(student) == total - projection
    assert count_parameters(student) == count_parameters(student.model)


def test_random_init_does_not_copy(teacher):
    torch.manual_seed(1)
    student = build_student(teacher, [2, 4], init="random")
    s, t = _params(student.model), _params(teacher)
    assert not torch.equal(s["classifier.weight"], t["classifier.weight"])
    assert not torch.equal(
        s["bert.embeddings.word_embeddings.weight"], t["bert.embeddings.word_embeddings.weight"]
    )


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ([], "1..4"),
        ([1, 2, 3, 4, 4], "1..4"),
        ([0, 2], "1..4"),
        ([2, 5], "1..4"),
        ([3, 2], "strictly increasing"),
        ([2, 2], "strictly increasing"),
        ([1.0, 2], "1..4"),
        ("2,4", "list of teacher layer numbers"),
    ],
)
def test_invalid_mapping(teacher, mapping, match):
    with pytest.raises(ValueError, match=match):
        build_student(teacher, mapping)


def test_invalid_arguments(teacher, tmp_path):
    with pytest.raises(ValueError, match="init='random'"):  # wider than the teacher (32)
        build_student(teacher, [2, 4], hidden_size=64)
    with pytest.raises(ValueError, match="init must be one of"):
        build_student(teacher, [2, 4], init="teacher")
    with pytest.raises(ValueError, match="not divisible by num_attention_heads 2"):
        build_student(teacher, [2, 4], hidden_size=15, init="random")
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        build_student(teacher, [2, 4], hidden_size=0, init="random")
    with pytest.raises(ValueError, match="needs checkpoint"):
        build_student(teacher, [2, 4], init="checkpoint")
    with pytest.raises(ValueError, match="only used with init='checkpoint'"):
        build_student(teacher, [2, 4], checkpoint=str(tmp_path))
    with pytest.raises(ValueError, match="existing directory"):
        build_student(teacher, [2, 4], init="checkpoint", checkpoint=tmp_path / "absent")


def test_save_round_trip_pipeline_and_checkpoint_init(teacher, tokenizer, batch, tmp_path):
    from transformers import AutoModelForSequenceClassification, pipeline

    torch.manual_seed(2)
    student = build_student(teacher, [2, 4])
    with torch.no_grad():  # make the student differ from its teacher-layer initialisation
        student.model.classifier.bias.add_(0.5)
    out_dir = student.save_pretrained(tmp_path / "student", tokenizer)

    loaded = AutoModelForSequenceClassification.from_pretrained(str(out_dir)).eval()
    assert loaded.config.num_hidden_layers == 2
    assert loaded.config.id2label == {0: "negative", 1: "positive"}
    student.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**batch).logits, student(**batch).logits, atol=1e-6)

    classify = pipeline("text-classification", model=str(out_dir), device="cpu")
    result = classify("This film was an absolute delight from start to finish.")
    assert result[0]["label"] in {"negative", "positive"}
    assert 0.0 <= result[0]["score"] <= 1.0

    resumed = build_student(teacher, [2, 4], init="checkpoint", checkpoint=out_dir)
    for key, value in _params(student.model).items():
        assert torch.equal(_params(resumed.model)[key], value), key
    assert resumed.config._attn_implementation == "eager"

    with pytest.raises(ValueError, match="num_hidden_layers 2 \\(expected 3\\)"):
        build_student(teacher, [1, 2, 4], init="checkpoint", checkpoint=out_dir)
    with pytest.raises(ValueError, match="hidden_size 32 \\(expected 16\\)"):
        build_student(teacher, [2, 4], hidden_size=16, init="checkpoint", checkpoint=out_dir)


@pytest.mark.parametrize("init", ["teacher-layers", "checkpoint"])
def test_dropout_zero_makes_training_mode_deterministic_and_default_keeps_teachers(
        teacher, batch, tmp_path, init):
    saved = build_student(teacher, [2, 4]).save_pretrained(tmp_path / "s")
    checkpoint = saved if init == "checkpoint" else None
    default = build_student(teacher, [2, 4], init=init, checkpoint=checkpoint)
    assert default.config.hidden_dropout_prob == teacher.config.hidden_dropout_prob > 0
    quiet = build_student(teacher, [2, 4], init=init, checkpoint=checkpoint, dropout=0.0)
    assert quiet.config.hidden_dropout_prob == quiet.config.attention_probs_dropout_prob == 0
    assert quiet.model.training and default.model.training
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.equal(quiet(**batch).logits, quiet(**batch).logits)
        assert not torch.equal(default(**batch).logits, default(**batch).logits)
    with pytest.raises(ValueError, match="dropout must be in"):
        build_student(teacher, [2, 4], dropout=1.0)
