"""Bad configs are refused whole, before anything is created (issue #10, item 5).

Table-driven: each row is one kind of bad config. Through the real CLI (``main``, the console
script's entry point, and a few rows as ``python -m kdtune.study.cli`` subprocesses) each must
exit 2, name every problem on its own ``kdtune: error:`` line, and leave no study, no file and
no output directory behind. The teacher is the tiny random BERT of conftest.py (4 layers, 2
labels), the data small CSVs written here, the storage a SQLite file in the test's directory.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from kdtune.study.cli.root import main

REPO = Path(__file__).resolve().parents[2]
NO_SEARCH = {"student_layers": None, "search_student_layers": False, "layer_mapping": None}


def _csv(path: Path, labels: list[str]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in range(240):
            w.writerow([f"sentence number {i} is fine", labels[i % len(labels)]])
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_bert_dir, synthetic_csv) -> dict[str, Path]:
    """The tiny teacher, the good data, and the bad inputs the rows name."""
    from transformers import BertConfig

    root = tmp_path_factory.mktemp("bad-config-inputs")
    encoder = root / "encoder-only"
    BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64).save_pretrained(encoder)  # no classifier architecture
    return {
        "teacher": tiny_bert_dir,
        "data": synthetic_csv,
        "one_class": _csv(root / "one-class.csv", ["positive"]),
        "three_class": _csv(root / "three-class.csv", ["negative", "neutral", "positive"]),
        "encoder": encoder,
        "missing": root / "no-such-dir",
    }


def _merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for key, value in patch.items():
        if value == "<delete>":
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _study(files: dict, tmp_path: Path, patch: dict) -> dict:
    base = {
        "name": f"bad-{uuid.uuid4().hex[:8]}",
        "storage": f"sqlite:///{tmp_path / 'studies.db'}",
        "distill": {
            "teacher": str(files["teacher"]),
            "data": {"source": str(files["data"]), "train_size": 80, "eval_size": 40,
                     "test_size": 40, "max_length": 16},
            "batch_size": 16,
        },
        # The tiny teacher's word embedding alone is over a third of it: no default cap.
        "search": {"max_params_ratio": None},
        "n_trials": 2,
    }
    return _merge(base, _resolve(patch, files))


def _resolve(value, files: dict):
    """Replace ``"<name>"`` placeholders with the paths of :func:`files`."""
    if isinstance(value, dict):
        return {k: _resolve(v, files) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("<") and value[1:-1] in files:
        return str(files[value[1:-1]])
    return value


# (id, patch to the valid study config, one tuple of fragments per expected problem line)
ROWS = [
    ("mistyped-mapping", {"distill": {"layer_mapping": "unifrom"}},
     [("distill.layer_mapping:", "'unifrom'", "uniform")]),
    ("bad-device", {"distill": {"device": "gpu0"}},
     [("distill.device:", "'gpu0'", "'auto', 'cpu', 'cuda' or 'cuda:N'")]),
    ("depth-not-below-teacher", {"distill": {"student_layers": 4}, "search": NO_SEARCH},
     [("distill.student_layers:", "1..3", "4 layers")]),
    ("searched-depth-not-below-teacher", {"search": {"student_layers": {"choices": [2, 5]}}},
     [("search.student_layers:", "5", "1..3")]),
    ("missing-teacher", {"distill": {"teacher": "<missing>"}},
     [("distill.teacher:", "no such checkpoint directory")]),
    ("teacher-not-a-classifier", {"distill": {"teacher": "<encoder>"}},
     [("distill.teacher:", "not a sequence classifier")]),
    ("missing-label-column", {"distill": {"data": {"label_column": "sentiment"}}},
     [("distill.data.label_column:", "'sentiment'", "available columns: text, label")]),
    ("missing-text-column", {"distill": {"data": {"text_columns": ["review"]}}},
     [("distill.data.text_columns:", "'review'", "available columns")]),
    ("missing-data-file", {"distill": {"data": {"source": "<missing>"}}},
     [("distill.data.source:", "no such file or directory")]),
    ("one-class-labels", {"distill": {"data": {"source": "<one_class>"}}},
     [("distill.data.label_column:", "only one class", "at least two")]),
    ("three-classes-for-a-two-class-teacher", {"distill": {"data": {"source": "<three_class>"}}},
     [("distill.data.label_column:", "3 classes in the data, 2 in the teacher")]),
    ("unknown-key", {"distill": {"temprature": 2.0}},
     [("unknown key 'distill.temprature'", "temperature")]),
    ("unknown-objective", {"objectives": ["accuracy_student", "sigmaa"]},
     [("objectives:", "unknown objective 'sigmaa'", "accuracy_student")]),
    ("reversed-search-range", {"search": {"temperature": {"low": 8.0, "high": 2.0}}},
     [("search.temperature:", "must not exceed")]),
    ("search-range-outside-the-key", {"search": {"alpha": {"low": 0.0, "high": 2.0}}},
     [("search.alpha:", "2.0", "less than or equal to 1")]),
    ("mapping-not-increasing",
     {"distill": {"layer_mapping": [3, 2]}, "search": NO_SEARCH},
     [("distill.layer_mapping:", "strictly increasing")]),
    ("mapping-out-of-range",
     {"distill": {"layer_mapping": [2, 7]}, "search": NO_SEARCH},
     [("distill.layer_mapping:", "7", "1..4")]),
    ("searched-mapping-unknown", {"search": {"layer_mapping": {"choices": ["uniform", "topp"]}}},
     [("search.layer_mapping:", "'topp'")]),
    ("searched-schedule-unknown", {"search": {"schedule": {"choices": ["joint", "2stage"]}}},
     [("search.schedule:", "'2stage'", "two-stage")]),
    ("bad-sampler", {"sampler": {"name": "cmaes"}},
     [("sampler.name:", "'cmaes'", "nsga2")]),
    ("reference-class-out-of-range", {"distill": {"eval": {"reference_class": 2}}},
     [("distill.eval.reference_class:", "0..1")]),
    ("width-with-copied-layers", {"distill": {"hidden_size": 64}},
     [("distill.hidden_size:", "width 32")]),
    ("cap-below-the-smallest-student", {"search": {"max_params": 1000}},
     [("search.max_params:", "1,000", "smallest student")]),
    ("train-size-beyond-the-data", {"distill": {"data": {"train_size": 5000}}},
     [("distill.data.train_size:", "5000")]),
    ("missing-teacher-key", {"distill": {"teacher": "<delete>"}},
     [("missing required key 'distill.teacher'",)]),
    ("two-problems-at-once", {"distill": {"device": "gpu0", "teacher": "<missing>"}},
     [("distill.device:", "'gpu0'"), ("distill.teacher:", "no such checkpoint directory")]),
    ("four-problems-at-once",
     {"distill": {"temprature": 2.0, "layer_mapping": "unifrom",
                  "data": {"label_column": "sentiment"}},
      "sampler": {"name": "cmaes"}},
     [("unknown key 'distill.temprature'",), ("distill.layer_mapping:", "'unifrom'"),
      ("distill.data.label_column:", "'sentiment'"), ("sampler.name:", "'cmaes'")]),
]


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _assert_refused(code: int, stderr: str, expected: list[tuple[str, ...]]) -> None:
    assert code == 2, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert all(ln.startswith("kdtune: error: ") for ln in lines), stderr
    assert len(lines) == len(expected), stderr
    for fragments in expected:
        hits = [ln for ln in lines if all(f in ln for f in fragments)]
        assert len(hits) == 1, (fragments, stderr)


@pytest.mark.parametrize("patch, expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_create_refuses_and_creates_nothing(files, tmp_path, capsys, patch, expected):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study(files, tmp_path, patch)))
    before = _files_under(tmp_path)
    code = main(["create", str(path)])
    _assert_refused(code, capsys.readouterr().err, expected)
    assert _files_under(tmp_path) == before  # no SQLite file: no study


def test_the_valid_config_creates_its_study(files, tmp_path, capsys):
    """The control: without a patch the same config passes and the study appears."""
    path = tmp_path / "study.yaml"
    cfg = _study(files, tmp_path, {})
    path.write_text(yaml.safe_dump(cfg))
    assert main(["create", str(path)]) == 0, capsys.readouterr().err
    assert (tmp_path / "studies.db").is_file()
    assert f"study {cfg['name']} ready" in capsys.readouterr().out


def test_overrides_are_checked_like_the_file(files, tmp_path, capsys):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study(files, tmp_path, {})))
    code = main(["create", str(path), "--set", "distill.device=gpu0",
                 "--set", f"distill.teacher={files['missing']}"])
    _assert_refused(code, capsys.readouterr().err,
                    [("distill.device:",), ("distill.teacher:",)])
    assert not (tmp_path / "studies.db").exists()


def _kdtune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


@pytest.mark.parametrize("command", ["create", "run"])
def test_module_entry_create_and_run_refuse(files, tmp_path, command):
    patch = {"distill": {"layer_mapping": "unifrom", "data": {"source": "<one_class>"}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study(files, tmp_path, patch)))
    before = _files_under(tmp_path)
    args = [command, str(path)] + (["--workers", "1"] if command == "run" else [])
    out = _kdtune(*args)
    _assert_refused(out.returncode, out.stderr,
                    [("distill.layer_mapping:", "'unifrom'"),
                     ("distill.data.label_column:", "only one class")])
    assert _files_under(tmp_path) == before
    assert out.stdout == ""


def _distill_config(files: dict, patch: dict) -> dict:
    base = {"teacher": str(files["teacher"]),
            "data": {"source": str(files["data"]), "eval_size": 40, "test_size": 40,
                     "max_length": 16}}
    return _merge(base, _resolve(patch, files))


def test_module_entry_distill_refuses_a_bare_config(files, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(_distill_config(
        files, {"device": "gpu0", "student_layers": 4, "data": {"label_column": "y"}})))
    before = _files_under(tmp_path)
    out = _kdtune("distill", str(path), "-o", str(tmp_path / "student"))
    _assert_refused(out.returncode, out.stderr,
                    [("device:", "'gpu0'"), ("student_layers:", "1..3"),
                     ("data.label_column:", "'y'")])
    assert _files_under(tmp_path) == before  # no student directory, no partial one


def test_distill_refuses_an_export_file_and_a_busy_output(files, tmp_path, capsys):
    path = tmp_path / "best.yaml"
    exported = {"distill": _distill_config(files, {"teacher": "<missing>"}),
                "source": {"study": "s", "trial": 0, "pick": "knee", "kdtune_version": "0",
                           "metrics": {}}}
    path.write_text(yaml.safe_dump(exported))
    busy = tmp_path / "student"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    before = _files_under(tmp_path)
    code = main(["distill", str(path), "-o", str(busy), "--set", "schedule=twostage"])
    _assert_refused(code, capsys.readouterr().err,
                    [("--output:", "not empty"), ("distill.teacher:", "no such checkpoint"),
                     ("distill.schedule:", "'twostage'")])
    assert _files_under(tmp_path) == before and (busy / "keep.txt").read_text() == "mine"


def test_teacher_fit_refuses_before_writing(files, tmp_path, capsys):
    out = tmp_path / "teacher"
    code = main(["teacher", "fit", "-o", str(out), "--set", f"base={files['missing']}",
                 "--set", f"data.source={files['one_class']}", "--set", "device=gpu"])
    _assert_refused(code, capsys.readouterr().err,
                    [("base:", "no such checkpoint directory"), ("device:", "'gpu'"),
                     ("data.label_column:", "only one class")])
    assert not out.exists() and list(tmp_path.iterdir()) == []
