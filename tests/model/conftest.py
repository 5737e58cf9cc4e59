"""Fixtures of the student-size tests: a random 64-wide BERT classifier to shrink, and the
small data config its distillations use."""

from __future__ import annotations

import pytest
import torch

from kdtune.objectives.data.dataset import DataConfig


@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory, minilm_path):
    """A random 3-layer BERT classifier 64 wide (4 heads of 16, FFN 256), real tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("wide-bert")
    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=3,
                     num_attention_heads=4, intermediate_size=256, max_position_embeddings=64,
                     num_labels=2, id2label={0: "negative", 1: "positive"},
                     label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def wide(wide_dir):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(wide_dir), attn_implementation="eager").eval()


@pytest.fixture
def small_data(synthetic_csv) -> DataConfig:
    return DataConfig(source=str(synthetic_csv), train_size=64, eval_size=40, test_size=40,
                      max_length=16)
