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

REPO = Path(__file__).resolve().parent.parent


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
        "search": {"epochs": {"low": 1, "high": 1},
                   "learning_rate": {"low": 5e-4, "high": 2e-3, "log": True}},
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
