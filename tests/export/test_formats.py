"""ONNX and INT8 students: ``kdtune distill --formats``, ``kdtune convert``, loading the
outputs with transformers and ONNX Runtime, and ``kdtune audit`` on an ONNX directory.

A tiny real pipeline: the trained tiny teacher of conftest, a student distilled from it on
the synthetic data, exported by PyTorch's ONNX exporter and quantised by ONNX Runtime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from kdtune.study.cli.root import main
from kdtune.study.export.formats import CARD_START


@pytest.fixture(scope="module")
def converted(tmp_path_factory, tiny_teacher_dir, synthetic_csv):
    base = tmp_path_factory.mktemp("formats")
    config = base / "run.yaml"
    config.write_text(yaml.safe_dump({
        "teacher": str(tiny_teacher_dir),
        "data": {"source": str(synthetic_csv), "train_size": 160, "eval_size": 80,
                 "test_size": 80, "max_length": 16},
        "student_layers": 1, "epochs": 2, "batch_size": 16, "learning_rate": 2e-3,
        "device": "cpu", "threads": 1, "eval": {"latency_batches": 0}}))
    student = base / "student"
    assert main(["distill", str(config), "-o", str(student), "--formats", "onnx,int8",
                 "--json"]) == 0
    return config, student


def test_each_format_is_measured_against_teacher_and_float(converted):
    _, student = converted
    report = json.loads((student / "formats.json").read_text())
    rows = report["formats"]
    assert list(rows) == ["float", "onnx", "int8"] and report["split"] == "test"
    assert rows["float"]["sigma_vs_float"] == 0 and rows["float"]["agreement"] == 1
    # the ONNX export computes what the float student computes
    assert rows["onnx"]["agreement"] == 1 and rows["onnx"]["sigma_vs_float"] < 1e-4
    assert rows["onnx"]["sigma"] == pytest.approx(rows["float"]["sigma"], abs=1e-4)
    # INT8 moves the confidences a little and shrinks the file
    assert 0 < rows["int8"]["sigma_vs_float"] < 0.1 and rows["int8"]["agreement"] >= 0.9
    assert rows["int8"]["size_bytes"] < rows["onnx"]["size_bytes"]
    for row in rows.values():
        low, high = row["sigma_ci"]
        assert low <= row["sigma"] <= high
        assert row["latency_ms_b1"] > 0 and row["latency_ms_b32"] > 0
    card = (student / "README.md").read_text()
    assert card.count(CARD_START) == 1 and "| int8 |" in card


def test_outputs_load_with_transformers_and_onnx_runtime(converted):
    import onnxruntime as ort
    from transformers import AutoTokenizer, pipeline

    from kdtune.objectives.data.dataset import load_splits
    from kdtune.objectives.distillation.config import DistillConfig

    config, student = converted
    cfg = DistillConfig.model_validate(yaml.safe_load(config.read_text()))
    texts = list(load_splits(cfg.data).test["text"])
    classify = pipeline("text-classification", model=str(student), device="cpu")
    labels = [r["label"] for r in classify(texts, truncation=True, max_length=16)]
    id2label = classify.model.config.id2label
    for fmt in ("onnx", "int8"):
        tok = AutoTokenizer.from_pretrained(student / fmt)
        session = ort.InferenceSession(str(student / fmt / "model.onnx"),
                                       providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        enc = tok(texts, padding=True, truncation=True, max_length=16, return_tensors="np")
        logits = session.run(["logits"], {n: enc[n].astype(np.int64) for n in names})[0]
        got = [id2label[int(i)] for i in logits.argmax(1)]
        same = np.mean([a == b for a, b in zip(got, labels, strict=True)])
        assert same >= (1.0 if fmt == "onnx" else 0.9), (fmt, same)


def test_audit_takes_an_onnx_student_and_convert_replaces_the_card_section(converted, capsys):
    config, student = converted
    report = json.loads((student / "formats.json").read_text())["formats"]
    assert main(["audit", "--config", str(config), "--student", str(student / "onnx"),
                 "--split", "test", "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["accuracy_student"] == pytest.approx(report["onnx"]["accuracy"])
    assert audit["sigma"] == pytest.approx(report["onnx"]["sigma"], abs=1e-6)
    assert main(["convert", str(student), "--formats", "int8", "--json"]) == 0
    assert list(json.loads(capsys.readouterr().out)["formats"]) == ["float", "int8"]
    assert (student / "README.md").read_text().count(CARD_START) == 1


def test_an_unknown_format_is_refused_before_training(tmp_path, converted, capsys):
    config, _ = converted
    out = tmp_path / "never"
    assert main(["distill", str(config), "-o", str(out), "--formats", "onnx,tflite"]) == 2
    assert "tflite not one of onnx, int8" in capsys.readouterr().err
    assert not out.exists()


def test_a_study_can_score_students_after_int8_quantisation(tiny_teacher_dir, synthetic_csv,
                                                            tmp_path):
    from kdtune.errors import ConfigError
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.distillation.run import distill
    from kdtune.study.config import load_config

    cfg = DistillConfig.model_validate({
        "teacher": str(tiny_teacher_dir),
        "data": {"source": str(synthetic_csv), "train_size": 160, "eval_size": 80,
                 "test_size": 80, "max_length": 16},
        "student_layers": 1, "epochs": 1, "batch_size": 16, "learning_rate": 2e-3,
        "device": "cpu", "threads": 1, "eval": {"latency_batches": 0, "int8": True}})
    m = distill(cfg).metrics
    assert 0 <= m["sigma_int8"] <= 0.5 and 0 <= m["accuracy_int8"] <= 1
    assert m["agreement_int8"] >= 0.8 and m["int8_seconds"] > 0
    assert abs(m["sigma_int8"] - m["sigma"]) < 0.1  # a drift, not another model

    study = tmp_path / "study.yaml"
    raw = {"name": "int8", "objectives": ["accuracy_student", "sigma_int8"],
           "distill": {"teacher": str(tiny_teacher_dir),
                       "data": {"source": str(synthetic_csv), "eval_size": 80,
                                "test_size": 80}},
           "search": {"max_params_ratio": None}}
    study.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="sigma_int8 need distill.eval.int8: true"):
        load_config(study)
    raw["distill"]["eval"] = {"int8": True}
    study.write_text(yaml.safe_dump(raw))
    assert load_config(study).objectives == ("accuracy_student", "sigma_int8")
