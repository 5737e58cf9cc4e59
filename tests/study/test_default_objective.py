"""The default objectives follow the teacher's number of classes: sigma for K = 2,
sigma_max for K > 2; sigma stays available by name; validate() alone looks nothing up."""

from __future__ import annotations

import csv

import pytest

from kdtune.study.config import (
    BINARY_OBJECTIVES,
    MULTICLASS_OBJECTIVES,
    default_objectives,
    resolve_objectives,
    validate,
    validate_with_overrides,
)

RAW = {"name": "x", "distill": {"teacher": "not-looked-at"}}


def test_default_objectives_by_class_count():
    assert default_objectives(2) == BINARY_OBJECTIVES == ("accuracy_student", "sigma")
    assert default_objectives(3) == MULTICLASS_OBJECTIVES == ("accuracy_student", "sigma_max")
    assert default_objectives(7) == MULTICLASS_OBJECTIVES


def test_validate_alone_keeps_the_binary_default():
    cfg = validate(RAW)
    assert cfg.objectives == BINARY_OBJECTIVES
    assert cfg.directions == ["maximize", "minimize"]


def test_resolve_uses_the_class_count_unless_objectives_are_named():
    cfg = resolve_objectives(validate(RAW), classes=3)
    assert cfg.objectives == MULTICLASS_OBJECTIVES
    assert cfg.directions == ["maximize", "minimize"]
    assert resolve_objectives(validate(RAW), classes=2).objectives == BINARY_OBJECTIVES
    named = validate({**RAW, "objectives": ["accuracy_student", "sigma"]})
    assert resolve_objectives(named, classes=3).objectives == BINARY_OBJECTIVES  # by name
    # the resolved config round-trips as the study stores it (objectives written out)
    again = validate(cfg.model_dump(mode="json"))
    assert resolve_objectives(again, classes=2).objectives == MULTICLASS_OBJECTIVES


@pytest.fixture(scope="module")
def three_class(tmp_path_factory, minilm_path):
    """A 3-class teacher (config and tokenizer only: the check reads no weights) and data."""
    from transformers import AutoTokenizer, BertConfig

    out = tmp_path_factory.mktemp("k3")
    names = ["negative", "neutral", "positive"]
    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
               num_attention_heads=2, intermediate_size=64, num_labels=3,
               id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
               architectures=["BertForSequenceClassification"]).save_pretrained(out / "t")
    tok.save_pretrained(out / "t")
    data = out / "data.csv"
    with open(data, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(300):
            w.writerow([f"sentence number {i}", names[i % 3]])
    return out / "t", data


def test_the_complete_check_picks_sigma_max_for_three_classes(three_class):
    teacher, data = three_class
    raw = {"name": "k3", "distill": {"teacher": str(teacher), "student_layers": 1,
                                     "data": {"source": str(data), "train_size": 100,
                                              "eval_size": 50, "test_size": 50}},
           "search": {"max_params_ratio": None}}  # a tiny teacher is mostly embedding
    cfg = validate_with_overrides(raw, [], check=True)
    assert cfg.objectives == MULTICLASS_OBJECTIVES
    # an unrelated --set leaves the objectives to the teacher (it once fixed them binary)
    for unrelated in (["n_trials=3"], ["distill.epochs=2"], ["search.max_params_ratio=0.9"]):
        assert validate_with_overrides(raw, unrelated, check=True).objectives == \
            MULTICLASS_OBJECTIVES, unrelated
    named = validate_with_overrides(raw, ["objectives=[accuracy_student,sigma]"], check=True)
    assert named.objectives == BINARY_OBJECTIVES
    assert validate_with_overrides(raw, [], check=False).objectives == BINARY_OBJECTIVES


def test_the_complete_check_keeps_sigma_for_a_binary_teacher(tiny_bert_dir, synthetic_csv):
    raw = {"name": "k2", "distill": {"teacher": str(tiny_bert_dir), "student_layers": 2,
                                     "data": {"source": str(synthetic_csv)}},
           "search": {"max_params_ratio": None}}
    assert validate_with_overrides(raw, [], check=True).objectives == BINARY_OBJECTIVES
