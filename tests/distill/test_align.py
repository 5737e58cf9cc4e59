"""Tests for distillation.align: fitting one temperature and folding it into the classifier."""

from __future__ import annotations

import numpy as np
import pytest

from kdtune.objectives.distillation.align import (
    ALIGN_FITS,
    ALIGN_MODES,
    align_student,
    fit_temperature,
    fold_temperature,
)
from kdtune.objectives.measure.metrics import confidence_metrics, softmax


def _teacher(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher logits (n, K), its probabilities and labels it gets mostly (~85%) right."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, k))
    labels = logits.argmax(axis=1)
    flip = rng.random(n) < 0.15
    labels[flip] = rng.integers(0, k, size=int(flip.sum()))
    return logits, softmax(logits), labels


def _tiny_bert(num_labels: int = 3):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=num_labels,
    )
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():  # a random head gives near-zero logits; make them informative
        model.classifier.weight.mul_(20.0)
        model.classifier.bias.normal_(std=1.0)
    return model


def _batch():
    import torch

    generator = torch.Generator().manual_seed(1)
    return {
        "input_ids": torch.randint(0, 100, (6, 9), generator=generator),
        "attention_mask": torch.ones(6, 9, dtype=torch.long),
    }


def _logits(model):
    import torch

    with torch.no_grad():
        return model(**_batch()).logits


def test_constants():
    assert ALIGN_MODES == ("temperature", "none")
    assert ALIGN_FITS == ("kl", "sigma", "kl-correct")


@pytest.mark.parametrize("k", [2, 3])
def test_kl_correct_fits_the_both_correct_inputs_alone(k):
    """The student is the teacher at temperature 2.5 on every input except a block it gets
    wrong and is far too sure of: kl-correct recovers 2.5 from the others, while the plain
    KL fit is pulled towards softening the wrong block."""
    logits, p_teacher, labels = _teacher(400, k, seed=3)
    labels = logits.argmax(axis=1)  # the teacher right everywhere
    student = logits / 2.5
    wrong = np.arange(len(labels)) < 80
    student[wrong] = -30.0 * np.eye(k)[labels[wrong]]  # confidently wrong
    t = fit_temperature(student, p_teacher, labels, objective="kl-correct")
    assert t == pytest.approx(1 / 2.5, abs=1e-3)
    assert fit_temperature(student, p_teacher, labels, objective="kl") > 1 / 2.5 + 0.1
    with pytest.raises(ValueError, match="labels are required by objective='kl-correct'"):
        fit_temperature(student, p_teacher, objective="kl-correct")


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("factor", [0.4, 2.5])
def test_kl_recovers_known_temperature(k, factor):
    logits, p_teacher, labels = _teacher(300, k)
    t = fit_temperature(logits * factor, p_teacher, objective="kl")
    assert t == pytest.approx(factor, abs=1e-3)
    # labels are optional for kl and do not change the fit
    assert fit_temperature(logits * factor, p_teacher, labels) == pytest.approx(t, abs=1e-6)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("factor", [0.4, 2.5])
def test_sigma_recovers_known_temperature(k, factor):
    logits, p_teacher, labels = _teacher(300, k)
    t = fit_temperature(logits * factor, p_teacher, labels, objective="sigma")
    assert t == pytest.approx(factor, rel=0.02)
    sigma_key = "sigma" if k == 2 else "sigma_max"
    aligned = confidence_metrics(p_teacher, softmax(logits * factor, t), labels)
    unaligned = confidence_metrics(p_teacher, softmax(logits * factor), labels)
    assert aligned[sigma_key] < 1e-3 < unaligned[sigma_key]


def test_sigma_uses_reference_class_and_only_both_correct_inputs():
    # Inputs the student gets wrong must not steer the sigma fit: give them a wildly
    # different scale; the both-correct ones are exactly the teacher's logits * 0.5.
    logits, p_teacher, labels = _teacher(300, 2, seed=3)
    student = logits * 0.5
    wrong = p_teacher.argmax(axis=1) != labels
    assert wrong.any()
    student[wrong] = logits[wrong] * 7.0
    t = fit_temperature(student, p_teacher, labels, objective="sigma", reference_class=1)
    assert t == pytest.approx(0.5, rel=0.02)


def test_fit_returns_one_for_degenerate_logits():
    _, p_teacher, labels = _teacher(20, 3)
    constant = np.full((20, 3), 1.7)
    assert fit_temperature(constant, p_teacher) == 1.0
    assert fit_temperature(constant, p_teacher, labels, objective="sigma") == 1.0


def test_fit_returns_one_when_student_already_matches():
    logits, p_teacher, labels = _teacher(100, 3)
    assert fit_temperature(logits, p_teacher) == pytest.approx(1.0, abs=1e-6)
    assert fit_temperature(logits, p_teacher, labels, objective="sigma") == pytest.approx(
        1.0, rel=1e-3
    )


def test_fit_stays_within_bounds():
    logits, p_teacher, _ = _teacher(100, 2)
    t = fit_temperature(logits * 0.01, p_teacher, bounds=(0.05, 20.0))
    assert t == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"objective": "entropy"}, "objective"),
        ({"objective": "sigma", "labels": None}, "labels"),
        ({"student_logits": np.zeros((5, 3))}, "p_teacher"),
        ({"student_logits": np.zeros(5)}, "student_logits"),
        ({"student_logits": np.zeros((0, 3))}, "student_logits"),
        ({"student_logits": np.full((8, 3), np.nan)}, "student_logits"),
        ({"p_teacher": np.full((8, 3), 2.0)}, "p_teacher"),
        ({"labels": np.zeros(7, dtype=int)}, "labels"),
        ({"labels": np.full(8, 3)}, "labels"),
        ({"reference_class": 3}, "reference_class"),
        ({"bounds": (2.0, 1.0)}, "bounds"),
        ({"bounds": (0.0, 1.0)}, "bounds"),
    ],
)
def test_fit_errors_name_the_argument(kwargs, named):
    logits, p_teacher, labels = _teacher(8, 3)
    args = {"student_logits": logits, "p_teacher": p_teacher, "labels": labels, **kwargs}
    with pytest.raises(ValueError, match=named) as info:
        fit_temperature(**args)
    assert "\n" not in str(info.value)


def test_unknown_objective_lists_accepted_values():
    logits, p_teacher, _ = _teacher(8, 2)
    with pytest.raises(ValueError, match="'kl', 'sigma', 'kl-correct'"):
        fit_temperature(logits, p_teacher, objective="mse")


def test_fold_divides_logits_and_records_temperature(tmp_path):
    import torch
    from transformers import BertForSequenceClassification

    model = _tiny_bert()
    before = _logits(model)
    fold_temperature(model, 2.5)
    after = _logits(model)
    assert torch.allclose(after, before / 2.5, atol=1e-6)
    assert torch.equal(after.argmax(dim=1), before.argmax(dim=1))
    assert model.config.kdtune_temperature == pytest.approx(2.5)
    assert not model.classifier.weight.requires_grad or model.classifier.weight.grad is None

    model.save_pretrained(tmp_path)
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    assert torch.allclose(_logits(reloaded), after, atol=1e-6)
    assert reloaded.config.kdtune_temperature == pytest.approx(2.5)


def test_fold_twice_composes_and_accepts_a_student():
    import torch

    from kdtune.objectives.student.model import Student

    model = _tiny_bert()
    before = _logits(model)
    student = Student(model, mapping=[1], teacher_hidden_size=16)
    fold_temperature(student, 0.5)
    fold_temperature(student, 4.0)
    assert torch.allclose(_logits(model), before / 2.0, atol=1e-6)
    assert model.config.kdtune_temperature == pytest.approx(2.0)


def test_fold_roberta_style_head_uses_out_proj():
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    model = RobertaForSequenceClassification(config).eval()
    before = _logits(model)
    fold_temperature(model, 3.0)
    assert torch.allclose(_logits(model), before / 3.0, atol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_fold_refuses_bad_temperature(bad):
    import torch

    model = _tiny_bert()
    weight = model.classifier.weight.detach().clone()
    with pytest.raises(ValueError, match="temperature"):
        fold_temperature(model, bad)
    assert torch.equal(model.classifier.weight, weight)
    assert not hasattr(model.config, "kdtune_temperature")


def test_fold_refuses_a_model_without_linear_classifier():
    from torch import nn

    class Headless(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.classifier = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    with pytest.raises(ValueError, match="Headless"):
        fold_temperature(Headless(), 2.0)


@pytest.mark.parametrize("objective", ["kl", "sigma", "kl-correct"])
def test_align_student_lowers_kl_and_folds(objective):
    import torch

    model = _tiny_bert()
    z = _logits(model).numpy().astype(np.float64)
    # The teacher is a sharper version of the student, with some noise.
    rng = np.random.default_rng(5)
    teacher_logits = z * 3.0 + rng.normal(scale=0.3, size=z.shape)
    p_teacher = softmax(teacher_logits)
    labels = teacher_logits.argmax(axis=1)

    report = align_student(model, z, p_teacher, labels, objective=objective)
    assert set(report) == {
        "align_temperature",
        "align_objective",
        "sigma_before",
        "sigma_after",
        "sigma_max_before",
        "sigma_max_after",
        "kl_before",
        "kl_after",
    }
    t = report["align_temperature"]
    assert report["align_objective"] == objective
    assert 0 < t < 1  # the student was under-confident
    assert report["kl_after"] <= report["kl_before"]
    if objective == "sigma":
        assert report["sigma_max_after"] <= report["sigma_max_before"]
    folded = _logits(model).numpy()
    np.testing.assert_allclose(folded, z / t, rtol=1e-5, atol=1e-5)
    assert model.config.kdtune_temperature == pytest.approx(t)
    assert torch.equal(torch.from_numpy(folded).argmax(1), torch.from_numpy(z).argmax(1))


def test_align_student_leaves_model_untouched_on_bad_input():
    import torch

    model = _tiny_bert()
    weight = model.classifier.weight.detach().clone()
    z = _logits(model).numpy()
    with pytest.raises(ValueError, match="p_teacher"):
        align_student(model, z, softmax(z)[:, :2], z.argmax(1))
    assert torch.equal(model.classifier.weight, weight)
