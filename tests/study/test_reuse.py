"""Work done once per worker (issue 14): the teacher, the splits, their tokens and each
architecture's latency are reused by later trials, and a trial's result does not depend on
whether they were reused."""

from __future__ import annotations

import pytest
import torch

from kdtune.objectives.compute.memo import WORKER_MEMO, Memo
from kdtune.objectives.data.dataset import DataConfig
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.distillation.run import distill


def test_memo_makes_once_keeps_the_most_recent_and_forgets_failures():
    memo = Memo({"x": 2})
    made = []

    def make(v):
        return lambda: made.append(v) or v

    assert memo.get("x", 1, make("a")) == "a" and memo.get("x", 1, make("b")) == "a"
    assert made == ["a"] and memo.hits == {"x": 1} and memo.misses == {"x": 1}
    memo.get("x", 2, make("c"))
    memo.get("x", 1, make("d"))  # 1 is now the most recent
    memo.get("x", 3, make("e"))  # evicts 2
    assert memo.get("x", 1, make("f")) == "a" and memo.get("x", 2, make("g")) == "g"

    def boom():
        raise ValueError("no")

    with pytest.raises(ValueError):
        memo.get("x", 9, boom)
    assert memo.get("x", 9, make("h")) == "h"  # nothing was remembered for the failure
    memo.clear()
    assert memo.hits == {} and memo.get("x", 1, make("i")) == "i"


def _run(teacher, csv, **kw):
    data = DataConfig(source=str(csv), eval_size=80, test_size=80, max_length=16)
    settings = {"batch_size": 16, "threads": 2, "student_layers": 2, "epochs": 1,
                "learning_rate": 1e-3, **kw}
    return distill(DistillConfig(teacher=str(teacher), data=data, **settings))


def test_trials_reuse_the_teacher_data_and_latency_and_reproduce_either_way(
        tiny_teacher_dir, synthetic_csv):
    WORKER_MEMO.clear()
    cold = _run(tiny_teacher_dir, synthetic_csv, seed=5, temperature=3.0)
    assert WORKER_MEMO.hits == {}
    loads = dict(WORKER_MEMO.misses)
    # tokens: the students' set, the selection split, and the selection split in the
    # student's task vocabulary; vocabulary: the vocabulary and its tokenised-differently share
    # latency: the student's architecture and the teacher's (the ratio's denominator)
    assert loads == {"teacher": 1, "splits": 1, "tokens": 3, "vocabulary": 2, "latency": 2}

    # another trial of the same study: nothing is loaded or timed again
    other = _run(tiny_teacher_dir, synthetic_csv, seed=6, temperature=1.5)
    assert WORKER_MEMO.misses == loads
    assert WORKER_MEMO.hits == {"teacher": 1, "splits": 1, "tokens": 3, "vocabulary": 2,
                                "latency": 2}
    assert other.teacher is cold.teacher  # one teacher in memory
    assert other.metrics["latency_ms"] == cold.metrics["latency_ms"]  # same architecture

    # the first configuration again, on the warm memo: the same student, the same figures
    warm = _run(tiny_teacher_dir, synthetic_csv, seed=5, temperature=3.0)
    same = {k: v for k, v in cold.metrics.items() if k != "latency_ms"}
    assert {k: warm.metrics[k] for k in same} == same
    for a, b in zip(cold.student.parameters(), warm.student.parameters(), strict=True):
        assert torch.equal(a, b)

    # latency is timed with the kernel a saved student is served with (SDPA): an eager
    # student of the same shape reuses it, and keeps its own kernel afterwards
    eager = _run(tiny_teacher_dir, synthetic_csv, seed=5, beta=1.0,
                 intermediate=("hidden", "attention"))
    assert eager.student.attention_implementation == "eager"
    assert WORKER_MEMO.misses["latency"] == 2 and WORKER_MEMO.misses["teacher"] == 1
    # a new architecture is timed
    _run(tiny_teacher_dir, synthetic_csv, seed=5, student_layers=1)
    assert WORKER_MEMO.misses["latency"] == 3


def test_a_teacher_refitted_in_place_is_loaded_again(tmp_path):
    from kdtune.objectives.compute.memo import path_stamp

    (tmp_path / "config.json").write_text("{}")
    before = path_stamp(str(tmp_path))
    assert path_stamp(str(tmp_path)) == before
    (tmp_path / "model.safetensors").write_bytes(b"new weights")
    assert path_stamp(str(tmp_path)) != before
    assert path_stamp("org/some-hub-id") == ("org/some-hub-id",)
    text = tmp_path / "unlabelled.txt"  # a transfer set's text file: size and mtime
    text.write_text("a")
    first = path_stamp(str(text))
    text.write_text("ab")
    assert path_stamp(str(text)) != first
