"""Tests for distillation.losses, each against a hand computation with small numbers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kdtune.objectives.distillation.losses import (
    LOSSES,
    attention_mse,
    combine_losses,
    embedding_mse,
    get_loss,
    hard_cross_entropy,
    hidden_mse,
    kl_divergence,
    logit_mse,
    soft_cross_entropy,
)

# Two examples, two classes.
STUDENT = [[1.0, 0.0], [0.0, 2.0]]
TEACHER = [[2.0, 0.0], [0.0, 0.0]]


def _softmax(row: list[float], t: float = 1.0) -> list[float]:
    exps = [math.exp(v / t) for v in row]
    return [e / sum(exps) for e in exps]


def _hand_soft_ce(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    total = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p_t, p_s = _softmax(t_row, t), _softmax(s_row, t)
        total += -sum(a * math.log(b) for a, b in zip(p_t, p_s, strict=True))
    return total / len(student)


def _hand_kl(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    total = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p_t, p_s = _softmax(t_row, t), _softmax(s_row, t)
        total += sum(a * (math.log(a) - math.log(b)) for a, b in zip(p_t, p_s, strict=True))
    return total / len(student)


def test_soft_cross_entropy_by_hand() -> None:
    # Example 1: p_T = softmax(2, 0) = (0.8808, 0.1192), log p_S = log softmax(1, 0)
    #            = (-0.3133, -1.3133); CE = 0.8808*0.3133 + 0.1192*1.3133 = 0.4325.
    # Example 2: p_T = (0.5, 0.5), log p_S = log softmax(0, 2) = (-2.1269, -0.1269);
    #            CE = 0.5*2.1269 + 0.5*0.1269 = 1.1269.
    # Mean: (0.4325 + 1.1269) / 2 = 0.7797.
    loss = soft_cross_entropy(torch.tensor(STUDENT), torch.tensor(TEACHER))
    assert loss.item() == pytest.approx(_hand_soft_ce(STUDENT, TEACHER, 1.0), rel=1e-6)
    assert loss.item() == pytest.approx(0.7797, abs=1e-4)


def test_soft_cross_entropy_temperature_and_t2() -> None:
    s, t = torch.tensor(STUDENT), torch.tensor(TEACHER)
    plain = soft_cross_entropy(s, t, temperature=2.0)
    assert plain.item() == pytest.approx(_hand_soft_ce(STUDENT, TEACHER, 2.0), rel=1e-6)
    scaled = soft_cross_entropy(s, t, temperature=2.0, t2_scaling=True)
    assert scaled.item() == pytest.approx(4.0 * plain.item(), rel=1e-6)
    # at t = 1 the t^2 factor is 1
    assert soft_cross_entropy(s, t, t2_scaling=True).item() == pytest.approx(
        soft_cross_entropy(s, t).item()
    )


def test_logit_mse_by_hand() -> None:
    s, t = torch.tensor(STUDENT), torch.tensor(TEACHER)
    by_hand = sum((a - b) ** 2 for rs, rt in zip(STUDENT, TEACHER, strict=True)
                  for a, b in zip(rs, rt, strict=True)) / (len(STUDENT) * len(STUDENT[0]))
    assert logit_mse(s, t).item() == pytest.approx(by_hand, rel=1e-6)
    assert logit_mse(t, t).item() == 0.0
    # a constant shift leaves softmax unchanged but not this loss: logits are matched as given
    assert logit_mse(t + 1.0, t).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape of student_logits"):
        logit_mse(s, t[:, :1])


def test_kl_divergence_by_hand_and_t2() -> None:
    s, t = torch.tensor(STUDENT), torch.tensor(TEACHER)
    assert kl_divergence(s, t).item() == pytest.approx(_hand_kl(STUDENT, TEACHER, 1.0), rel=1e-6)
    kl3 = _hand_kl(STUDENT, TEACHER, 3.0)
    assert kl_divergence(s, t, temperature=3.0).item() == pytest.approx(kl3, rel=1e-6)
    assert kl_divergence(s, t, 3.0, t2_scaling=True).item() == pytest.approx(9 * kl3, rel=1e-6)
    assert kl_divergence(t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_soft_ce_equals_kl_plus_teacher_entropy_with_same_gradient() -> None:
    # teacher entropies: H(0.8808, 0.1192) = 0.3662, H(0.5, 0.5) = ln 2
    entropy = 0.0
    for row in TEACHER:
        entropy -= sum(p * math.log(p) for p in _softmax(row)) / len(TEACHER)
    s1 = torch.tensor(STUDENT, requires_grad=True)
    s2 = torch.tensor(STUDENT, requires_grad=True)
    ce = soft_cross_entropy(s1, torch.tensor(TEACHER))
    kl = kl_divergence(s2, torch.tensor(TEACHER))
    assert ce.item() == pytest.approx(kl.item() + entropy, rel=1e-6)
    ce.backward()
    kl.backward()
    torch.testing.assert_close(s1.grad, s2.grad)


def test_hard_cross_entropy_by_hand() -> None:
    # labels (0, 1): -log softmax(1, 0)[0] = ln(1 + e^-1) = 0.3133,
    #                -log softmax(0, 2)[1] = ln(1 + e^-2) = 0.1269
    expected = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 2
    loss = hard_cross_entropy(torch.tensor(STUDENT), torch.tensor([0, 1]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_prediction_loss_errors() -> None:
    s = torch.tensor(STUDENT)
    with pytest.raises(ValueError, match="teacher_logits"):
        soft_cross_entropy(s, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="student_logits"):
        kl_divergence(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        soft_cross_entropy(s, s, temperature=0.0)
    with pytest.raises(ValueError, match="labels must have shape"):
        hard_cross_entropy(s, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="dtype"):
        hard_cross_entropy(s, torch.tensor([0.0, 1.0]))


def test_hidden_mse_plain_mean_includes_padding() -> None:
    # B=1, L=2, H=2. Differences: token 0: (1, -1), token 1 (padding): (2, 0).
    student = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])
    # squares 1, 1, 4, 0 -> mean 6/4
    assert hidden_mse(student, teacher).item() == pytest.approx(1.5)
    # with mask (1, 0) only token 0 counts: (1 + 1) / (1 token * 2 dims) = 1
    mask = torch.tensor([[1, 0]])
    assert hidden_mse(student, teacher, mask=mask).item() == pytest.approx(1.0)
    assert hidden_mse(student, teacher, mask=mask.bool()).item() == pytest.approx(1.0)


def test_hidden_mse_projection_path() -> None:
    # student width 2 -> teacher width 3 via a fixed linear map W (no bias)
    proj = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        # y = W x; W rows: (1, 0), (0, 1), (1, 1)
        proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    student = torch.tensor([[[1.0, 2.0]]])  # projected: (1, 2, 3)
    teacher = torch.tensor([[[0.0, 2.0, 5.0]]])  # differences (1, 0, -2): squares 1, 0, 4
    loss = hidden_mse(student, teacher, projection=proj)
    assert loss.item() == pytest.approx(5.0 / 3.0)
    loss.backward()
    assert proj.weight.grad is not None
    # a plain callable works too
    assert hidden_mse(student, teacher, projection=proj.forward).item() == pytest.approx(5 / 3)


def test_hidden_mse_errors() -> None:
    with pytest.raises(ValueError, match=r"projection is None but the widths differ .*2.*3"):
        hidden_mse(torch.zeros(1, 2, 2), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="teacher_hidden"):
        hidden_mse(torch.zeros(1, 2, 2), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="student_hidden"):
        hidden_mse(torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="projection must map"):
        hidden_mse(torch.zeros(1, 2, 2), torch.zeros(1, 2, 3), projection=nn.Linear(2, 4))
    with pytest.raises(ValueError, match="mask must have shape"):
        hidden_mse(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), mask=torch.ones(1, 3))
    with pytest.raises(ValueError, match="mask selects no tokens"):
        hidden_mse(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), mask=torch.zeros(1, 2))


def test_embedding_mse_follows_hidden_rule() -> None:
    student = torch.tensor([[[3.0], [1.0]]])
    teacher = torch.tensor([[[1.0], [1.0]]])
    assert embedding_mse(student, teacher).item() == pytest.approx(2.0)  # (4 + 0) / 2
    with pytest.raises(ValueError, match="projection is None"):
        embedding_mse(torch.zeros(1, 1, 2), torch.zeros(1, 1, 3))


def test_attention_mse_masks_large_negative_entries() -> None:
    # B=1, heads=1, L=2. Entries <= -100 become 0 in both before the MSE.
    student = torch.tensor([[[[1.0, -100.0], [0.5, -1e4]]]])
    teacher = torch.tensor([[[[0.0, 3.0], [0.5, -99.0]]]])
    # after masking: student (1, 0, 0.5, 0), teacher (0, 3, 0.5, -99)
    # squares: 1, 9, 0, 9801 -> mean 9811 / 4
    assert attention_mse(student, teacher).item() == pytest.approx(9811 / 4)
    # both masked at the same position: no contribution
    masked = torch.tensor([[[[2.0, -1e4]]]])
    other = torch.tensor([[[[1.0, -1e9]]]])
    assert attention_mse(masked, other).item() == pytest.approx(0.5)  # (1 + 0) / 2


def test_attention_mse_errors() -> None:
    with pytest.raises(ValueError, match="heads must match: student has 2, teacher has 4"):
        attention_mse(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 3, 3))
    with pytest.raises(ValueError, match="teacher_scores must have the shape"):
        attention_mse(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="student_scores"):
        attention_mse(torch.zeros(2, 3, 3), torch.zeros(1, 2, 3, 3))


def test_combine_losses_alpha_convention() -> None:
    soft, hard, inter = torch.tensor(2.0), torch.tensor(10.0), torch.tensor(100.0)
    # alpha = 1: pure soft (distillation) loss
    assert combine_losses(soft, hard, inter, alpha=1.0, beta=0.0).item() == pytest.approx(2.0)
    # alpha = 0: pure hard loss
    assert combine_losses(soft, hard, inter, alpha=0.0, beta=0.0).item() == pytest.approx(10.0)
    # 0.25*2 + 0.75*10 + 0.5*100 = 0.5 + 7.5 + 50 = 58
    assert combine_losses(soft, hard, inter, alpha=0.25, beta=0.5).item() == pytest.approx(58.0)


def test_combine_losses_skips_zero_weight_terms() -> None:
    soft = torch.tensor(2.0, requires_grad=True)
    total = combine_losses(soft, None, None, alpha=1.0, beta=0.0)
    assert total.item() == pytest.approx(2.0)
    total.backward()
    assert soft.grad.item() == pytest.approx(1.0)
    # a nan in a zero-weight term does not leak into the total
    nan = torch.tensor(float("nan"))
    assert combine_losses(soft, nan, nan, alpha=1.0, beta=0.0).item() == pytest.approx(2.0)


def test_combine_losses_errors() -> None:
    one = torch.tensor(1.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\].*got 1.5"):
        combine_losses(one, one, one, alpha=1.5, beta=0.0)
    with pytest.raises(ValueError, match="alpha"):
        combine_losses(one, one, one, alpha=float("nan"), beta=0.0)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0, got -1"):
        combine_losses(one, one, one, alpha=0.5, beta=-1.0)
    with pytest.raises(ValueError, match="hard is None but its weight is 0.5"):
        combine_losses(one, None, one, alpha=0.5, beta=0.0)
    with pytest.raises(ValueError, match="intermediate is None"):
        combine_losses(one, one, None, alpha=0.5, beta=1.0)


def test_registry() -> None:
    assert set(LOSSES) == {
        "soft_cross_entropy",
        "kl_divergence",
        "logit_mse",
        "hard_cross_entropy",
        "hidden_mse",
        "embedding_mse",
        "attention_mse",
    }
    assert get_loss("attention_mse") is attention_mse
    assert get_loss("embedding_mse") is embedding_mse
    with pytest.raises(ValueError, match="unknown loss 'mse'; accepted: .*hidden_mse"):
        get_loss("mse")
