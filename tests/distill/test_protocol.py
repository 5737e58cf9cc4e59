"""The four-way split protocol: a transfer split for the students, disjoint from the
teacher's training data and from the selection and test splits; recorded and checked."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kdtune.objectives.data.dataset import DataConfig, load_splits
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.measure.protocol import describe_protocol, protocol_problems

REPO = Path(__file__).resolve().parents[2]
NAMES = ("train", "eval", "test", "transfer")


def _csv(path: Path, n: int) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(n):
            w.writerow([f"sentence number {i} is {'fine' if i % 3 else 'bad'}",
                        "pos" if i % 3 else "neg"])
    return path


def _texts(splits, name):
    return set(splits.split(name)["text"])


def test_transfer_split_is_carved_disjoint_and_leaves_the_others_unchanged(tmp_path):
    path = _csv(tmp_path / "d.csv", 300)
    plain = load_splits(DataConfig(source=str(path), eval_size=30, test_size=30))
    four = load_splits(DataConfig(source=str(path), eval_size=30, test_size=30,
                                  transfer_size=60))
    assert plain.transfer is None and plain.students is plain.train
    assert four.sizes() == {"train": 180, "eval": 30, "test": 30, "transfer": 60}
    assert four.students is four.transfer and four.students_split == "transfer"
    for i, a in enumerate(NAMES):
        for b in NAMES[i + 1:]:
            assert not _texts(four, a) & _texts(four, b), (a, b)
    # Test and selection rows do not move when a transfer split is carved; train gives them.
    assert four.fingerprint("test") == plain.fingerprint("test")
    assert four.fingerprint("eval") == plain.fingerprint("eval")
    assert _texts(four, "train") | _texts(four, "transfer") == _texts(plain, "train")
    # Stratified like the others: the 1:2 class ratio holds in the transfer split.
    labels = list(four.transfer["label"])
    assert labels.count(0) == 20 and labels.count(1) == 40


def test_transfer_split_stable_across_processes_and_seeds(tmp_path):
    cfg = DataConfig(source=str(_csv(tmp_path / "d.csv", 200)), eval_size=20, test_size=20,
                     transfer_size=40, seed=3)
    here = load_splits(cfg)
    prints = {n: here.fingerprint(n) for n in NAMES}
    code = ("import json, sys; from kdtune.objectives.data.dataset import DataConfig, load_splits; "
            "s = load_splits(DataConfig.model_validate_json(sys.argv[1])); "
            f"print(json.dumps({{n: s.fingerprint(n) for n in {NAMES!r}}}))")
    out = subprocess.run([sys.executable, "-c", code, cfg.model_dump_json()], cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == prints
    other = load_splits(cfg.model_copy(update={"seed": 4}))
    assert other.fingerprint("transfer") != prints["transfer"]
    assert not _texts(other, "transfer") & _texts(other, "eval")


def test_transfer_size_beyond_the_pool_is_one_data_error(tmp_path):
    cfg = DataConfig(source=str(_csv(tmp_path / "d.csv", 100)), transfer_size=500)
    with pytest.raises(ValueError, match=r"transfer 500"):
        load_splits(cfg)


def test_protocol_records_splits_and_finds_no_overlap_with_the_teachers_data(
        tiny_teacher_dir, synthetic_csv):
    # The tiny teacher was fitted on synthetic_csv with eval 80 / test 80 and seed 0.
    data = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, train_size=100)
    protocol = describe_protocol(data, load_splits(data), str(tiny_teacher_dir))
    teacher = protocol["splits"]["teacher_train"]
    assert teacher["known"] and teacher["rows"] == 240
    assert protocol["splits"]["selection"]["rows"] == 80
    assert protocol["overlaps"]["teacher_train&selection"] == 0
    assert protocol["overlaps"]["teacher_train&test"] == 0
    # No transfer split: students learn on the teacher's own sentences, which is allowed.
    assert protocol["students_split"] == "train"
    assert protocol["overlaps"]["teacher_train&transfer"] == 100
    assert protocol_problems(protocol) == []
    json.dumps(protocol)  # stored with the study as JSON


def test_protocol_refuses_a_selection_split_the_teacher_trained_on(
        tiny_teacher_dir, synthetic_csv):
    from kdtune.objectives.search.checks import check_distill

    moved = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, seed=5)
    protocol = describe_protocol(moved, load_splits(moved), str(tiny_teacher_dir))
    assert protocol["overlaps"]["teacher_train&selection"] > 0
    problems = protocol_problems(protocol)
    assert any(p.startswith("distill.data: ") and "selection split" in p and "teacher" in p
               for p in problems)
    # kdtune create's check says the same, one line each.
    cfg = DistillConfig(teacher=str(tiny_teacher_dir), data=moved)
    assert any("selection split are also in the teacher train data" in p
               for p in check_distill(cfg))


def test_a_teacher_from_elsewhere_has_unknown_training_data(tiny_bert_dir, synthetic_csv):
    data = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80)
    protocol = describe_protocol(data, load_splits(data), str(tiny_bert_dir))
    assert protocol["splits"]["teacher_train"]["known"] is False
    assert not any(k.startswith("teacher_train") for k in protocol["overlaps"])


def test_the_study_records_its_protocol_and_the_report_shows_it(tmp_path, tiny_teacher_dir,
                                                                synthetic_csv):
    from kdtune.attrs import PROTOCOL
    from kdtune.study.config import validate_with_overrides
    from kdtune.study.report.html import _protocol_html
    from kdtune.study.service import create_study, open_study

    cfg = validate_with_overrides({
        "name": "protocol", "storage": f"sqlite:///{tmp_path / 's.db'}",
        "distill": {"teacher": str(tiny_teacher_dir),
                    "data": {"source": str(synthetic_csv), "eval_size": 80, "test_size": 80,
                             "transfer_size": 40, "students": "transfer"}},
        "search": {"max_params_ratio": None}}, [], check=False)
    create_study(cfg)
    study, _ = open_study("protocol", cfg.storage)
    protocol = study.user_attrs[PROTOCOL]
    assert protocol["students_split"] == "transfer"
    assert protocol["splits"]["transfer"]["rows"] == 40
    # The tiny teacher trained on all 240 remaining rows, the 40 transfer rows included.
    assert protocol["overlaps"]["teacher_train&transfer"] == 40
    assert protocol["overlaps"]["teacher_train&test"] == 0
    assert any("transfer split are in the teacher's training data" in p
               for p in protocol_problems(protocol))
    html = _protocol_html(protocol)
    assert "teacher train" in html and "240" in html and "teacher train &amp; transfer: 40" in html


def test_students_learning_on_every_row_record_train_and_transfer(tiny_teacher_dir,
                                                                   synthetic_csv):
    """data.students: all (the default): the students' rows are the teacher's train split and
    the transfer split; sharing rows with the teacher is the point, not a problem."""
    data = DataConfig(source=str(synthetic_csv), eval_size=80, test_size=80, transfer_size=40)
    protocol = describe_protocol(data, load_splits(data), str(tiny_teacher_dir))
    assert protocol["students_split"] == "train+transfer"
    assert protocol["splits"]["transfer"]["rows"] == 240
    assert protocol["overlaps"]["transfer&test"] == protocol["overlaps"]["transfer&selection"] == 0
    assert protocol_problems(protocol) == []
