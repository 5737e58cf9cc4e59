"""Tests for the teacher modules (teacher_fit, teacher_load, teacher_registry, teacher_base,
length_batches: fitting, saving, loading, caching) and objectives.compute.device."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError

from kdtune.errors import DataError, KdtuneError, UsageError
from kdtune.objectives.compute.device import check_device_name, configure_threads, resolve_device
from kdtune.objectives.compute.length_batches import LengthGroupedBatches
from kdtune.objectives.data.dataset import DataConfig
from kdtune.objectives.teacher import base as teacher_base
from kdtune.objectives.teacher import fit as teacher_fit
from kdtune.objectives.teacher import registry as teacher_registry
from kdtune.objectives.teacher.fit import TeacherFitConfig, fit_teacher
from kdtune.objectives.teacher.load import TEACHER_METADATA, load_teacher, read_teacher_metadata
from kdtune.objectives.teacher.registry import cached_teacher, teacher_cache_key

GOOD = ["wonderful", "moving", "brilliant", "charming", "superb", "delightful"]
BAD = ["dull", "tedious", "clumsy", "boring", "awful", "lifeless"]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    """60 short labelled sentences (string labels 'negative'/'positive')."""
    path = tmp_path_factory.mktemp("teacher-data") / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for i in range(60):
            words, label = (GOOD, "positive") if i % 2 else (BAD, "negative")
            writer.writerow(
                [f"a {words[i % 6]} film , number {i} , truly {words[(i + 1) % 6]}", label]
            )
    return path


def _cfg(base, data_path, **kw) -> TeacherFitConfig:
    data = DataConfig(
        source=str(data_path), text_columns=("review",), label_column="sentiment", max_length=32
    )
    kw.setdefault("epochs", 2)
    kw.setdefault("batch_size", 8)
    kw.setdefault("learning_rate", 1e-3)
    return TeacherFitConfig(base=str(base), data=data, device="cpu", threads=1, **kw)


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_fit_saves_a_loadable_labelled_checkpoint(tmp_path, tiny_bert_dir, small_csv):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "teacher"
    metrics = fit_teacher(_cfg(tiny_bert_dir, small_csv), out, progress=False)

    for key in ("train_accuracy", "eval_accuracy", "test_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert (metrics["n_train"], metrics["n_eval"], metrics["n_test"]) == (48, 6, 6)
    assert metrics["epochs"] == 2 and metrics["linear_probe_epochs"] == 1
    assert metrics["seconds"] > 0
    assert metrics["base"] == str(tiny_bert_dir)
    assert metrics["label_names"] == ["negative", "positive"]
    assert metrics["data"]["text_columns"] == ["review"]
    assert isinstance(metrics["kdtune_version"], str) and metrics["kdtune_version"]
    assert [h["phase"] for h in metrics["history"]] == ["probe", "fine-tune", "fine-tune"]

    assert (out / TEACHER_METADATA).is_file() and (out / "config.json").is_file()
    assert json.loads((out / TEACHER_METADATA).read_text()) == metrics
    assert read_teacher_metadata(out) == metrics
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.label2id == {"negative": 0, "positive": 1}
    assert _leftovers(tmp_path) == []


def test_load_teacher_gives_eager_attention_maps(tmp_path, tiny_bert_dir, small_csv):
    out = tmp_path / "teacher"
    fit_teacher(_cfg(tiny_bert_dir, small_csv, epochs=1), out, progress=False)
    model, tokenizer = load_teacher(out)
    assert not model.training
    enc = tokenizer(["a wonderful film", "a dull one"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        result = model(**enc, output_attentions=True, output_hidden_states=True)
    assert len(result.attentions) == 4 and result.attentions[0].shape[:2] == (2, 2)
    assert len(result.hidden_states) == 5


def test_fit_is_deterministic_for_a_seed(tmp_path, tiny_bert_dir, small_csv):
    cfg = _cfg(tiny_bert_dir, small_csv, epochs=1)
    a = fit_teacher(cfg, tmp_path / "a", progress=False)
    b = fit_teacher(cfg, tmp_path / "b", progress=False)
    assert a["history"] == b["history"] and a["test_accuracy"] == b["test_accuracy"]


def test_bad_base_is_a_clear_error_and_leaves_nothing(tmp_path, small_csv):
    out = tmp_path / "sub" / "teacher"
    with pytest.raises(ValueError, match="no such checkpoint directory"):
        fit_teacher(_cfg(tmp_path / "no-such-model", small_csv), out, progress=False)
    with pytest.raises(ValueError) as err:
        fit_teacher(_cfg("kdtune-tests/no-such-model", small_csv), out, progress=False)
    assert "could not load a tokenizer from base 'kdtune-tests/no-such-model'" in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "sub").exists()


def test_bad_data_leaves_nothing(tmp_path, tiny_bert_dir, small_csv):
    data = DataConfig(source=str(small_csv), text_columns=("text",), label_column="sentiment")
    cfg = TeacherFitConfig(base=str(tiny_bert_dir), data=data, device="cpu")
    with pytest.raises(ValueError, match="'text' not found .*available columns: review, sentiment"):
        fit_teacher(cfg, tmp_path / "teacher", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_errors_are_kdtune_errors(tmp_path, tiny_bert_dir, small_csv, monkeypatch):
    """Usage problems are UsageError (exit 2), data problems DataError, a failed save
    KdtuneError (exit 1); the first two stay ValueErrors for library callers."""
    with pytest.raises(UsageError, match="no such checkpoint directory"):
        fit_teacher(_cfg(tmp_path / "no-such-model", small_csv), tmp_path / "a", progress=False)
    data = DataConfig(source=str(small_csv), text_columns=("text",), label_column="sentiment")
    with pytest.raises(DataError):
        fit_teacher(TeacherFitConfig(base=str(tiny_bert_dir), data=data, device="cpu"),
                    tmp_path / "b", progress=False)
    with pytest.raises(UsageError, match="not a kdtune teacher"):
        read_teacher_metadata(tmp_path)
    assert check_device_name(" CUDA:1 ") == "cuda:1"
    with pytest.raises(UsageError, match="'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu0'"):
        check_device_name("gpu0")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(teacher_fit, "atomic_directory", disk_full)
    with pytest.raises(KdtuneError, match="could not save the teacher to .*No space left"):
        fit_teacher(_cfg(tiny_bert_dir, small_csv, epochs=1, linear_probe_epochs=0),
                    tmp_path / "c", progress=False)


def test_failure_while_saving_leaves_nothing(tmp_path, tiny_bert_dir, small_csv, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(teacher_fit, "json", SimpleNamespace(dumps=boom))
    with pytest.raises(RuntimeError, match="disk on fire"):
        fit_teacher(_cfg(tiny_bert_dir, small_csv, epochs=1), tmp_path / "teacher", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path, tiny_bert_dir, small_csv):
    out = tmp_path / "teacher"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    cfg = _cfg(tiny_bert_dir, small_csv, epochs=1)
    with pytest.raises(ValueError, match="already exists and is not empty"):
        fit_teacher(cfg, out, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    fit_teacher(cfg, out, progress=False, overwrite=True)
    assert (out / TEACHER_METADATA).is_file() and not (out / "keep.txt").exists()
    assert _leftovers(tmp_path) == []


def test_max_length_beyond_positions_is_rejected(tmp_path, tiny_bert_dir, small_csv):
    data = DataConfig(
        source=str(small_csv), text_columns=("review",), label_column="sentiment", max_length=512
    )
    cfg = TeacherFitConfig(base=str(tiny_bert_dir), data=data, device="cpu")
    with pytest.raises(ValueError, match="max_length=512 exceeds the 128 positions"):
        fit_teacher(cfg, tmp_path / "teacher", progress=False)


def test_load_teacher_errors(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint directory"):
        load_teacher(tmp_path / "missing")
    with pytest.raises(ValueError) as err:
        load_teacher("kdtune-tests/no-such-teacher")
    assert str(err.value).startswith("could not load teacher 'kdtune-tests/no-such-teacher'")
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="as a local checkpoint"):
        load_teacher(tmp_path / "empty")


def test_cached_teacher_fits_once(tmp_path, tiny_bert_dir, small_csv, monkeypatch):
    monkeypatch.setenv("KDTUNE_HOME", str(tmp_path / "home"))
    cfg = _cfg(tiny_bert_dir, small_csv, epochs=1)
    path = cached_teacher(cfg, progress=False)
    assert path == tmp_path / "home" / "teachers" / teacher_cache_key(cfg)
    assert (path / TEACHER_METADATA).is_file()

    def refit(*args, **kwargs):
        raise AssertionError("fitted twice")

    monkeypatch.setattr(teacher_registry, "fit_teacher", refit)
    assert cached_teacher(cfg, progress=False) == path
    # Where a teacher is fitted does not change which teacher it is.
    assert cached_teacher(cfg.model_copy(update={"threads": 2}), progress=False) == path
    assert teacher_cache_key(cfg.model_copy(update={"seed": 1})) != teacher_cache_key(cfg)
    # What the students learn on is not part of the teacher.
    students = cfg.data.model_copy(update={"students": "transfer"})
    assert teacher_cache_key(cfg.model_copy(update={"data": students})) == teacher_cache_key(cfg)


def test_config_validation():
    cfg = TeacherFitConfig()
    assert cfg.base == "minilm" and cfg.epochs == 3
    assert cfg.data == DataConfig(transfer_size=800)  # students' rows kept out of its training
    with pytest.raises(ValidationError, match="learning_rat"):
        TeacherFitConfig(learning_rat=1e-4)
    with pytest.raises(ValidationError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        TeacherFitConfig(device="gpu")
    with pytest.raises(ValidationError):
        TeacherFitConfig(warmup_ratio=1.5)
    with pytest.raises(ValidationError):
        cfg.epochs = 3
    assert Path(teacher_base.resolve_base("minilm")).is_dir()


def test_resolve_device_and_threads():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        cpus = len(os.sched_getaffinity(0))
        assert configure_threads(workers=2) == max(1, cpus // 2)
        assert configure_threads(workers=10 * cpus) == 1
        with pytest.raises(ValueError, match="workers must be at least 1"):
            configure_threads(workers=0)
    finally:
        torch.set_num_threads(before)


def test_length_grouped_batches_cover_every_example_once():
    lengths = [(i * 37) % 61 + 1 for i in range(1000)]
    sampler = LengthGroupedBatches(lengths, batch_size=32, seed=3, chunk_batches=5)
    first, second = list(sampler), list(sampler)
    for epoch in (first, second):
        assert len(epoch) == len(sampler) == 32  # 6 chunks of 160 (5 batches) + 40 (2 batches)
        assert sorted(i for batch in epoch for i in batch) == list(range(1000))
        assert all(len(batch) <= 32 for batch in epoch)
    assert first != second  # reshuffled each epoch
    assert list(LengthGroupedBatches(lengths, 32, seed=3, chunk_batches=5)) == first
    padded = sum(max(lengths[i] for i in b) * len(b) for b in first)
    assert padded < 1.3 * sum(lengths)  # far less padding than random batches


@pytest.mark.slow
def test_minilm_teacher_on_polarity_beats_chance(tmp_path):
    data = DataConfig(train_size=1200, max_length=64)
    cfg = TeacherFitConfig(data=data, epochs=1, learning_rate=1e-4)  # one short epoch
    started = time.perf_counter()
    metrics = fit_teacher(cfg, tmp_path / "minilm-teacher", progress=False)
    elapsed = time.perf_counter() - started
    assert metrics["n_train"] == 1200 and metrics["n_test"] == 400
    assert metrics["test_accuracy"] >= 0.70, metrics
    print(
        f"MiniLM polarity teacher: test accuracy {metrics['test_accuracy']:.3f} in {elapsed:.0f} s"
    )


def test_head_learning_rate_applies_to_pooler_and_classifier_only(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir))
    cfg = TeacherFitConfig(learning_rate=2e-5, head_learning_rate=1e-3, weight_decay=0.1)
    groups = teacher_fit._param_groups(model, cfg)
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(lr_of) == len(names)  # every parameter exactly once
    assert lr_of[id(names["classifier.weight"])] == (1e-3, 0.1)
    assert lr_of[id(names["bert.pooler.dense.bias"])] == (1e-3, 0.0)
    assert lr_of[id(names["bert.encoder.layer.0.attention.self.query.weight"])] == (2e-5, 0.1)
    assert lr_of[id(names["bert.embeddings.LayerNorm.weight"])] == (2e-5, 0.0)
    same = teacher_fit._param_groups(model, cfg.model_copy(update={"head_learning_rate": None}))
    assert {g["lr"] for g in same} == {2e-5}
    probe = teacher_fit._param_groups(model, cfg, probe=True)
    probed = {id(p) for g in probe for p in g["params"]}
    heads = {id(p) for n, p in names.items() if n.startswith(("classifier", "bert.pooler"))}
    assert probed == heads and {g["lr"] for g in probe} == {cfg.linear_probe_learning_rate}


def test_linear_probe_moves_only_the_head(tmp_path, tiny_bert_dir, small_csv, monkeypatch):
    """During the probe epoch the encoder stays put; fine-tuning then moves everything."""
    snapshots = []
    train_epoch = teacher_fit._train_epoch

    def spy(model, *args):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        loss = train_epoch(model, *args)
        snapshots.append({n: not torch.equal(before[n], p) for n, p in model.named_parameters()})
        return loss

    monkeypatch.setattr(teacher_fit, "_train_epoch", spy)
    fit_teacher(_cfg(tiny_bert_dir, small_csv, epochs=1), tmp_path / "t", progress=False)
    probe, fine_tune = snapshots
    moved = {n for n, changed in probe.items() if changed}
    assert moved == {n for n in probe if n.startswith(("classifier", "bert.pooler"))}
    assert fine_tune["bert.encoder.layer.0.attention.self.query.weight"]
    assert fine_tune["bert.embeddings.word_embeddings.weight"]


def test_teacher_fit_cli(tmp_path, tiny_bert_dir, small_csv):
    """`kdtune teacher fit` saves a teacher and says so once; bad settings: one line, exit 2."""
    def kdtune(*args):
        return subprocess.run(
            [sys.executable, "-m", "kdtune.study.cli", "teacher", "fit", *args],
            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=600,
        )

    data = [f"data.source={small_csv}", "data.text_columns=[review]",
            "data.label_column=sentiment", "data.max_length=32", "data.transfer_size=null"]
    sets = [arg for kv in [f"base={tiny_bert_dir}", *data, "epochs=1", "linear_probe_epochs=0",
                           "threads=1"] for arg in ("--set", kv)]
    out = tmp_path / "teacher"
    done = kdtune("-o", str(out), *sets)
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).count("teacher saved to") == 1
    assert done.stdout.startswith(f"teacher saved to {out}: test accuracy")
    assert [h["phase"] for h in read_teacher_metadata(out)["history"]] == ["fine-tune"]

    bad = kdtune("-o", str(tmp_path / "bad"), "--set", "linear_probe_epochs=-1")
    assert bad.returncode == 2 and "linear_probe_epochs" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
