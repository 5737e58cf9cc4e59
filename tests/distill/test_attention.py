"""Tests for compute.attention: pre-softmax scores captured from BERT's query/key hooks."""

from __future__ import annotations

import pytest
import torch

from kdtune.objectives.compute.attention import (
    MASKED_SCORE,
    capture_attention_scores,
    scores_for_layers,
)
from kdtune.objectives.distillation.losses import attention_mse

SENTENCES = [
    "The film was a delight from start to finish.",
    "Dull.",
    "An uneven but often funny look at family life.",
]


@pytest.fixture(scope="module")
def model_and_batch(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, attn_implementation="eager"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # the batch really is padded
    return model, batch


def test_softmax_of_scores_equals_output_attentions(model_and_batch) -> None:
    model, batch = model_and_batch
    with torch.no_grad(), capture_attention_scores(model) as cap:
        out = model(**batch, output_attentions=True)
    assert len(cap.scores) == len(out.attentions) == 4
    real = batch["attention_mask"].bool()  # (B, L): rows of real query tokens
    for scores, probs in zip(cap.scores, out.attentions, strict=True):
        assert scores.shape == probs.shape == (3, 2, real.shape[1], real.shape[1])
        mine = torch.softmax(scores, dim=-1)
        for b in range(len(SENTENCES)):
            rows = real[b]
            torch.testing.assert_close(mine[b][:, rows], probs[b][:, rows], rtol=1e-5, atol=1e-6)


def test_padded_key_columns_are_masked(model_and_batch) -> None:
    model, batch = model_and_batch
    with torch.no_grad(), capture_attention_scores(model) as cap:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    padded = batch["attention_mask"] == 0
    for scores in cap.scores:
        columns = padded[:, None, None, :].expand_as(scores)
        assert torch.all(scores[columns] == MASKED_SCORE)
        assert torch.all(scores[~columns] > -100)  # real scores are ordinary numbers
    # the loss's <= -100 rule zeroes exactly the masked entries
    assert attention_mse(cap.scores[0], torch.zeros_like(cap.scores[0])) > 0


def test_mask_taken_from_positional_argument(model_and_batch) -> None:
    model, batch = model_and_batch
    with torch.no_grad(), capture_attention_scores(model) as cap:
        model(batch["input_ids"], batch["attention_mask"])
    assert cap.mask is batch["attention_mask"]
    assert (cap.scores[0] == MASKED_SCORE).any()


def test_gradients_reach_query_weights(model_and_batch) -> None:
    model, batch = model_and_batch
    model.zero_grad()
    with capture_attention_scores(model) as cap:
        model(**batch)
    loss = sum(attention_mse(s, torch.zeros_like(s)) for s in cap.scores)
    loss.backward()
    for layer in model.bert.encoder.layer:
        grad = layer.attention.self.query.weight.grad
        assert grad is not None and grad.abs().sum() > 0
    model.zero_grad()


def test_hooks_removed_on_exit(model_and_batch) -> None:
    model, batch = model_and_batch

    def hook_count() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

    before = hook_count()
    with pytest.raises(RuntimeError, match="boom"), capture_attention_scores(model):
        assert hook_count() == before + 1 + 2 * 4
        raise RuntimeError("boom")
    assert hook_count() == before
    with capture_attention_scores(model) as cap:
        pass
    with torch.no_grad():
        model(**batch)
    assert cap.scores == []  # nothing captured after exit


def test_rejects_non_bert_and_scores_for_layers() -> None:
    with pytest.raises(ValueError, match="no BERT-style self-attention"):
        with capture_attention_scores(torch.nn.Linear(2, 2)):
            pass
    scores = [torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)]
    assert scores_for_layers(scores, [0, 2]) == {0: scores[0], 2: scores[2]}
    with pytest.raises(ValueError, match=r"0\.\.2"):
        scores_for_layers(scores, [3])
