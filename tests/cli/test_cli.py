"""End to end through the CLI: run a study with real workers and the real distillation
objective (tiny trained teacher), then pareto, export, distill, pipeline, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _kdtune(*args, timeout=600):
    env = dict(os.environ, KDTUNE_THREADS="1")
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout, env=env)


def test_run_export_distill_pipeline(tmp_path, tiny_teacher_dir, synthetic_csv):
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    config = {
        "name": name,
        "distill": {
            "teacher": str(tiny_teacher_dir),
            "data": {"source": str(synthetic_csv), "train_size": 160, "eval_size": 80,
                     "test_size": 80, "max_length": 16},
            "batch_size": 16,
        },
        # the tiny teacher's MiniLM vocabulary at width 32 makes its embeddings ~95% of its
        # parameters: no student could meet the default 1/3 cap, so the cap is off here
        "search": {"epochs": {"low": 1, "high": 1},
                   "learning_rate": {"low": 5e-4, "high": 2e-3, "log": True},
                   "search_hidden_size": False, "max_params_ratio": None},
        "n_trials": 4,
        "sampler": {"name": "nsga2", "population_size": 2, "seed": 3},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))

    run = _kdtune("run", str(path), "--workers", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    # one progress display: no library bars or heartbeat warnings from the workers
    for noise in ("Tokenizing", "Loading weights", "Heartbeat of storage"):
        assert noise not in run.stderr, noise
    # stderr is a pipe here, as in a CI log: plain lines per step, no carriage returns
    assert "trials 4/4" in run.stderr and "\r" not in run.stderr, run.stderr[-2000:]
    # then `kdtune test`: each front trial retrained in this process reproduces what its
    # worker process measured (same seed, same thread count)
    tested = [line for line in run.stdout.splitlines() if line.startswith("trial ")]
    assert tested and all(", reproduced by the retrained student" in t for t in tested), \
        run.stdout
    assert any(line.startswith("TinyBERT ") for line in run.stdout.splitlines())

    status = json.loads(_kdtune("status", "--study", name, "--json").stdout)
    assert status["finished"] == 4 and status["running"] == 0
    assert status["complete"] + status["pruned"] + status["failed_final"] == 4
    assert status["complete"] >= 1

    pareto = _kdtune("pareto", "--study", name, "--format", "json")
    assert pareto.returncode == 0, pareto.stderr
    front = json.loads(pareto.stdout)
    assert front and {"trial", "accuracy_student", "sigma"} <= set(front[0])

    best = tmp_path / "best.yaml"
    exp = _kdtune("export", "--study", name, "--pick", "max-accuracy", "-o", str(best),
                  "--json")
    assert exp.returncode == 0, exp.stderr
    exported = yaml.safe_load(best.read_text())
    assert exported["source"]["study"] == name
    assert exported["distill"]["teacher"] == str(tiny_teacher_dir)
    assert exported["source"]["metrics"]["accuracy_student"] == max(
        r["accuracy_student"] for r in front)
    # the thread count the trial trained with is pinned: another count trains another student
    assert exported["distill"]["threads"] == max(1, (os.cpu_count() or 1) // 2)

    student = tmp_path / "student"
    dist = _kdtune("distill", str(best), "-o", str(student), "--json")
    assert dist.returncode == 0, dist.stderr[-3000:]
    info = json.loads(dist.stdout)
    assert 0.0 <= info["sigma"] <= 0.5 and (student / "README.md").exists()
    assert "phi_cnf" in (student / "README.md").read_text()

    from transformers import pipeline

    clf = pipeline("text-classification", model=str(student))
    out = clf(["the film was wonderful", "the plot was dreadful"])
    assert {o["label"] for o in out} <= {"negative", "positive"}

    report = _kdtune("report", "--study", name, "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    png = (tmp_path / "report" / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    # the export refuses a pick that doesn't exist, in one line
    bad = _kdtune("export", "--study", name, "--pick", "best", "-o", str(tmp_path / "x.yaml"))
    assert bad.returncode == 2 and bad.stderr.startswith("kdtune: error: --pick 'best'")
    assert not (tmp_path / "x.yaml").exists()


# --------------------------------------------------------------------------- one error root


def _status_raising(monkeypatch, error: BaseException) -> None:
    """Make ``kdtune status`` raise ``error`` (the command imports the function on use)."""
    import kdtune.study.service as service

    def boom(*_a, **_k):
        raise error

    monkeypatch.setattr(service, "study_status", boom)


def test_unexpected_exception_is_one_line_exit_1_and_names_debug(monkeypatch, capsys):
    from kdtune.study.cli.root import main

    _status_raising(monkeypatch, ValueError("bad thing\nsecond line"))
    assert main(["status", "--study", "s"]) == 1
    err = capsys.readouterr().err
    assert err == ("kdtune: error: unexpected ValueError: bad thing "
                   "(run with kdtune --debug for the traceback)\n")


def test_debug_shows_the_traceback(monkeypatch, capsys):
    from kdtune.study.cli.root import main

    _status_raising(monkeypatch, KeyError("k"))
    assert main(["--debug", "status", "--study", "s"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in boom" in err
    assert err.rstrip().splitlines()[-1] == "kdtune: error: unexpected KeyError: 'k'"
    # the flag does not stick to the next call in the same process
    assert main(["status", "--study", "s"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_known_errors_exit_with_their_code_one_line_per_problem(monkeypatch, capsys):
    from kdtune.errors import ConfigError, KdtuneError, StorageError, UsageError
    from kdtune.study.cli.root import main

    cases = [
        (KdtuneError("the study cannot finish"), 1, ["the study cannot finish"]),
        (StorageError("cannot use storage x: refused"), 1, ["cannot use storage x: refused"]),
        (UsageError("--pick 'best' is not one of knee"), 2, ["--pick 'best' is not one of knee"]),
        (ConfigError(["a.b: wrong", "c: missing"]), 2, ["a.b: wrong", "c: missing"]),
    ]
    for error, code, lines in cases:
        _status_raising(monkeypatch, error)
        assert main(["status", "--study", "s"]) == code, error
        assert capsys.readouterr().err.splitlines() == [f"kdtune: error: {ln}" for ln in lines]


def test_bad_command_lines_exit_2(capsys):
    from kdtune.study.cli.root import main

    assert main(["status"]) == 2  # missing --study
    assert main(["no-such-command"]) == 2
    # one kdtune line each (not click's three-line usage message), naming the help to read
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("kdtune: error: ") for line in lines)
    assert "(see kdtune status --help)" in lines[0] and "(see kdtune --help)" in lines[1]


def test_audit_flag_combinations_are_usage_errors(tmp_path, capsys):
    from kdtune.study.cli.root import main

    preds = tmp_path / "p.csv"
    preds.write_text("label,p0\n0,1.0\n")
    for argv in (["audit"], ["audit", "--teacher-preds", str(preds)],
                 ["audit", "--teacher-preds", str(preds), "--student-preds", str(preds),
                  "--teacher", "t"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("kdtune: error: give --teacher-preds and --student-preds")
        assert err.count("\n") == 1
