"""Tests for objectives.measure.audit: prediction files, model directories, the CLI command."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdtune.objectives.measure.audit import audit, audit_models, print_audit, read_predictions

REPO = Path(__file__).resolve().parents[2]

# Five binary inputs. Rows 1-4: both models right; row 5: the teacher is wrong (excluded).
TEACHER = [([0.9, 0.1], 0), ([0.8, 0.2], 0), ([0.3, 0.7], 1), ([0.4, 0.6], 1), ([0.6, 0.4], 1)]
STUDENT = [([0.7, 0.3], 0), ([0.8, 0.2], 0), ([0.1, 0.9], 1), ([0.45, 0.55], 1), ([0.2, 0.8], 1)]
# Δ on class 0 over rows 1-4: 0.2, 0.0, 0.2, -0.05; mean 0.0875;
# deviations 0.1125, -0.0875, 0.1125, -0.1375; squares sum 0.051875; / 4 = 0.01296875.
SIGMA = math.sqrt(0.01296875)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def pred_file(path: Path, data, with_pred: bool = False) -> Path:
    header = ["id", "label", "p0", "p1"] + (["pred"] if with_pred else [])
    rows = []
    for i, (p, y) in enumerate(data):
        rows.append(
            [f"x{i}", y, *p] + ([max(range(len(p)), key=p.__getitem__)] if with_pred else [])
        )
    return write_csv(path, header, rows)


@pytest.fixture
def files(tmp_path):
    return (
        pred_file(tmp_path / "teacher.csv", TEACHER, with_pred=True),
        pred_file(tmp_path / "student.csv", STUDENT),
    )


def test_sigma_by_hand(files) -> None:
    report = audit(*files, kappa=0.05)
    assert report["n_both_correct"] == 4
    assert report["sigma"] == pytest.approx(SIGMA, abs=1e-12)
    assert report["mean_abs_delta"] == pytest.approx((0.2 + 0.0 + 0.2 + 0.05) / 4)
    assert report["phi_cnf"] is False
    assert report["agreement"] == pytest.approx(4 / 5)
    assert report["accuracy_teacher"] == pytest.approx(4 / 5)
    assert report["accuracy_student"] == 1.0
    assert report["source"] == {
        "kind": "files",
        "teacher_preds": str(files[0]),
        "student_preds": str(files[1]),
        "n": 5,
    }
    assert audit(*files, kappa=0.2)["phi_cnf"] is True
    # reference class 1: Δ flips sign, the spread is the same on a binary task
    assert audit(*files, reference_class=1)["sigma"] == pytest.approx(SIGMA, abs=1e-12)


def test_print_audit(files, capsys) -> None:
    print_audit(audit(*files))
    out = capsys.readouterr().out
    assert "sigma_label" in out and "ece_gap" in out
    assert f"phi_cnf FAILS: sigma {SIGMA:.4f} > kappa 0.05" in out


def test_print_audit_meanings_come_from_the_catalogue(files, capsys, monkeypatch) -> None:
    from kdtune.objectives.measure import catalogue

    monkeypatch.setenv("COLUMNS", "250")  # no wrapping: each row on one line
    print_audit(audit(*files))
    lines = capsys.readouterr().out.splitlines()
    for name in ("sigma", "phi_cnf", "n_both_correct", "kl_teacher_student", "ece_gap_abs"):
        row = next(ln for ln in lines if ln.strip("│┃ ").startswith(f"{name} "))
        assert catalogue.meaning(name) in row, (name, row)


def test_file_problems_are_data_errors(tmp_path) -> None:
    from kdtune.errors import DataError

    with pytest.raises(DataError, match="no such file"):
        read_predictions(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("header", "rows", "match"),
    [
        (["label", "q0", "q1"], [[0, 0.5, 0.5]], r"p0, p1.*found columns: label, q0, q1"),
        (["y", "p0", "p1"], [[0, 0.5, 0.5]], r"no 'label' column; found columns: y, p0, p1"),
        (["label", "p0", "p2"], [[0, 0.5, 0.5]], r"missing p1"),
        (["label", "p0", "p1"], [[0, 0.5, 0.5], [1, 2.0, 3.0]], r"row 2: .*sum to 5.*logits"),
        (["label", "p0", "p1"], [[0, 0.5, 0.5], [1, "x", 0.5]], r"row 2: probability 'x'"),
        (["label", "p0", "p1"], [[2, 0.5, 0.5]], r"row 1: label 2 is not a class id"),
        (["label", "p0", "p1", "pred"], [[0, 0.8, 0.2, 1]], r"row 1: pred 1 is not the argmax"),
        (["label", "p0", "p1"], [], r"no rows"),
    ],
)
def test_bad_file(tmp_path, header, rows, match) -> None:
    bad = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(ValueError, match=match) as info:
        read_predictions(bad, "teacher predictions")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"teacher predictions {bad}")


def test_pred_ties_accepted(tmp_path) -> None:
    tie = write_csv(tmp_path / "tie.csv", ["label", "p0", "p1", "pred"], [[1, 0.5, 0.5, 1]])
    probs, labels = read_predictions(tie)
    assert probs.tolist() == [[0.5, 0.5]] and labels.tolist() == [1]


def test_files_that_do_not_align(tmp_path, files) -> None:
    teacher, _ = files
    with pytest.raises(ValueError, match="no such file"):
        audit(teacher, tmp_path / "missing.csv")
    short = pred_file(tmp_path / "short.csv", STUDENT[:4])
    with pytest.raises(ValueError, match="5 rows, the student predictions 4"):
        audit(teacher, short)
    relabelled = pred_file(
        tmp_path / "relabelled.csv", STUDENT[:2] + [(STUDENT[2][0], 0)] + STUDENT[3:]
    )
    with pytest.raises(ValueError, match=r"row 3: label 1 in the teacher predictions but 0"):
        audit(teacher, relabelled)
    three = write_csv(
        tmp_path / "three.csv",
        ["label", "p0", "p1", "p2"],
        [[y, p[0], p[1], 0.0] for p, y in STUDENT],
    )
    with pytest.raises(ValueError, match=r"2 classes \(p0..p1\), the student predictions 3"):
        audit(teacher, three)


# --------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory) -> Path:
    good = [
        "a wonderful, moving film",
        "great acting and a sharp script",
        "I loved it",
        "funny and warm",
        "a delight",
        "beautifully shot",
        "smart and touching",
        "the best film this year",
        "charming from start to end",
        "brilliant",
    ]
    bad = [
        "a dull mess",
        "boring and far too long",
        "I hated it",
        "flat and lifeless",
        "a waste of time",
        "badly acted",
        "clumsy and loud",
        "the worst film this year",
        "tedious from start to end",
        "awful",
    ]
    rows = [[t, "positive"] for t in good] + [[t, "negative"] for t in bad]
    return write_csv(tmp_path_factory.mktemp("data") / "reviews.csv", ["text", "label"], rows)


def test_audit_models_same_model(tiny_bert_dir, reviews_csv) -> None:
    report = audit_models(
        str(tiny_bert_dir),
        str(tiny_bert_dir),
        [f"data.source={reviews_csv}", "batch_size=5"],
        split="train",
    )
    assert report["n_all"] == 16  # 20 rows, 2 each carved for eval and test
    assert report["agreement"] == 1.0
    assert report["n_both_correct"] >= 2
    assert report["sigma"] == pytest.approx(0.0, abs=1e-12)
    assert report["kl_teacher_student"] == pytest.approx(0.0, abs=1e-9)
    assert report["phi_cnf"] is True
    assert report["source"]["kind"] == "models" and report["source"]["split"] == "train"


def test_audit_models_bad_input(tiny_bert_dir, reviews_csv, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown key 'data.sorce'"):
        audit_models(str(tiny_bert_dir), str(tiny_bert_dir), [f"data.sorce={reviews_csv}"])
    with pytest.raises(ValueError, match="split must be one of train, eval, test"):
        audit_models(str(tiny_bert_dir), str(tiny_bert_dir), [], split="validation")
    other = write_csv(
        tmp_path / "other.csv",
        ["text", "label"],
        [[f"text {i}", "bad" if i % 2 else "good"] for i in range(20)],
    )
    with pytest.raises(ValueError, match=r"data labels \['bad', 'good'\] do not match"):
        audit_models(str(tiny_bert_dir), str(tiny_bert_dir), [f"data.source={other}"])


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "kdtune.study.cli", "audit", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_json_and_error(files, tmp_path) -> None:
    teacher, student = files
    done = run_cli("--teacher-preds", str(teacher), "--student-preds", str(student), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["sigma"] == pytest.approx(SIGMA, abs=1e-12)
    assert report["source"]["n"] == 5

    bad = write_csv(tmp_path / "bad.csv", ["label", "q0"], [[0, 1.0]])
    done = run_cli("--teacher-preds", str(bad), "--student-preds", str(student))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdtune: error: ")
    assert "found columns: label, q0" in lines[0]
