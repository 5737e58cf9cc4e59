"""Benchmark part 2: where one trial's time goes, and what parallel workers buy.

On the demo task (polarity MiniLM teacher, 2-layer student, 800 training / 400 evaluation
sentences, 1 epoch, intermediate losses off, warm teacher-output cache), side by side in
one run:

1. a study of ``--trials`` identical trials with 1 worker process (2 torch threads): each
   trial's wall time split into data + cache loading, student construction, training,
   evaluation (timed inside the objective) and the rest, which is storage and orchestration
   (ask under the budget lock, suggest, user attributes, tell);
2. training throughput (examples per second) of kdtune's loop against a bare PyTorch loop
   training the same student on the same batches with the same loss (the ceiling here);
3. the same study with 2 worker processes (1 torch thread each): trials per hour against
   1 worker with 2 threads (the best one worker does on 2 cores) and 1 worker with 1
   thread (what each of the 2 workers gets).

Targets (issue 5): storage and orchestration under 2% of a trial, kdtune's loop within
10% of the bare loop, 2 workers at least 1.7x one worker's trials per hour.

    .venv/bin/python bench/trial_breakdown.py --trials 8
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIXED = {"temperature": 2.0, "alpha": 0.7, "beta": 0.0, "learning_rate": 1e-4, "epochs": 1,
         "student_layers": 2, "layer_mapping": "uniform", "schedule": "joint"}


def study_config(name: str, teacher: Path, trials: int, threads: int):
    from kdtune.study.config import validate

    distill = {"teacher": str(teacher), "threads": threads, "batch_size": 32,
               "data": {"train_size": 800, "eval_size": 400, "max_length": 64}, **FIXED}
    search = {k: None for k in ("temperature", "alpha", "layer_mapping", "learning_rate",
                                "epochs", "beta", "schedule")}
    search["search_student_layers"] = False
    search["reuse_repeats"] = False  # identical trials on purpose: train every one
    # one searched no-op dimension would change nothing; all fixed: identical trials
    return validate({"name": name, "distill": distill, "search": search, "n_trials": trials,
                     "sampler": {"name": "random", "seed": 0}})


def run_arm(name, teacher, trials, workers, threads):
    from optuna.trial import TrialState

    from kdtune.study.service import open_study, run_study

    cfg = study_config(name, teacher, trials, threads)
    t0 = time.perf_counter()
    run_study(cfg, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    study, _ = open_study(name, None)
    done = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    return wall, done


def bare_loop_seconds(teacher: Path, threads: int) -> tuple[float, int]:
    """Train the same student on the same batches with a plain loop; (seconds, examples)."""
    import torch

    from kdtune.objectives.config import DistillConfig
    from kdtune.objectives.losses import hard_cross_entropy, soft_cross_entropy
    from kdtune.objectives.prepare import load_inputs, teacher_signal
    from kdtune.objectives.student_build import build_student
    from kdtune.objectives.training import train_loader

    cfg = DistillConfig(teacher=str(teacher), threads=threads, batch_size=32,
                        data={"train_size": 800, "eval_size": 400, "max_length": 64}, **FIXED)
    torch.set_num_threads(threads)
    device = torch.device("cpu")
    inputs = load_inputs(cfg, device)
    cached = teacher_signal(cfg, inputs, device).train  # the warm teacher-output cache
    torch.manual_seed(cfg.seed)
    student = build_student(inputs.teacher, inputs.mapping)
    loader = train_loader(inputs, cfg)  # the batches kdtune's loop trains on
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.learning_rate)
    student.train()
    t0 = time.perf_counter()
    n = 0
    for batch in loader:
        idx = batch.pop("idx")
        labels = batch.pop("labels")
        t_logits = torch.from_numpy(cached.logits[idx.numpy()]).float()
        logits = student.model(**batch).logits
        loss = 0.7 * soft_cross_entropy(logits, t_logits, 2.0, True) + \
            0.3 * hard_cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(labels)
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--output", type=Path, default=REPO / "bench" / "RESULTS-trial-cost.md")
    args = ap.parse_args()

    import torch

    from kdtune.objectives.teacher_registry import cached_teacher
    from kdtune.study.demo import demo_teacher_config

    teacher = cached_teacher(demo_teacher_config())
    stamp = time.strftime("%Y%m%d%H%M%S")
    # warm the teacher-output cache so every arm measures warm trials
    run_arm(f"bench-warm-{stamp}", teacher, 1, 1, 2)

    wall1, trials1 = run_arm(f"bench-1w-{stamp}", teacher, args.trials, 1, 2)
    parts = ("data", "cache", "build", "train", "eval")
    starts = sorted(t.datetime_start for t in trials1)
    period = statistics.median((b - a).total_seconds() for a, b in zip(starts, starts[1:],
                                                                        strict=False)) \
        if len(starts) > 1 else wall1 / max(1, len(trials1))
    med = {p: statistics.median(t.user_attrs.get(f"seconds_{p}", 0.0) for t in trials1)
           for p in parts}
    inside = sum(med.values())
    overhead = period - inside

    # the bare loop twice; the faster run is the ceiling (noise only ever slows it)
    bare_s, n = min(bare_loop_seconds(teacher, 2) for _ in range(2))
    kd_train = med["train"]

    wall2, trials2 = run_arm(f"bench-2w-{stamp}", teacher, args.trials, 2, 1)
    wall11, trials11 = run_arm(f"bench-1w1t-{stamp}", teacher, args.trials, 1, 1)
    per_hour_1 = 3600 * len(trials1) / wall1
    per_hour_2 = 3600 * len(trials2) / wall2
    per_hour_11 = 3600 * len(trials11) / wall11

    lines = [
        f"## Trial breakdown and workers, {datetime.date.today().isoformat()}", "",
        f"Command: `.venv/bin/python bench/trial_breakdown.py --trials {args.trials}`", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}. "
        "Demo task: MiniLM polarity teacher, 2-layer student, 800 train / 400 eval "
        "sentences, 1 epoch, batch 32, intermediate losses off, warm teacher-output cache. "
        "Workers are `kdtune worker` processes on the embedded PostgreSQL.", "",
        f"One worker (2 torch threads), {len(trials1)} identical trials; median trial "
        f"period (start to next start) {period:.1f} s:", "",
        "| part | seconds | share |", "|---|---|---|",
    ]
    for p in parts:
        lines.append(f"| {p} | {med[p]:.2f} | {100 * med[p] / period:.1f}% |")
    lines.append(f"| storage + orchestration (rest) | {overhead:.2f} | "
                 f"{100 * overhead / period:.1f}% |")
    lines += [
        "",
        f"Training throughput: kdtune loop {n / kd_train:.1f} examples/s "
        f"({kd_train:.1f} s), bare PyTorch loop {n / bare_s:.1f} examples/s ({bare_s:.1f} s): "
        f"kdtune at {100 * bare_s / kd_train:.0f}% of the bare loop.",
        "",
        f"Trials per hour: 1 worker x 2 threads {per_hour_1:.0f} ({wall1:.0f} s for "
        f"{len(trials1)}), 2 workers x 1 thread {per_hour_2:.0f} ({wall2:.0f} s for "
        f"{len(trials2)}): {per_hour_2 / per_hour_1:.2f}x; 1 worker x 1 thread "
        f"{per_hour_11:.0f} ({wall11:.0f} s for {len(trials11)}), so 2 single-thread workers "
        f"give {per_hour_2 / per_hour_11:.2f}x one single-thread worker.", "",
    ]
    text = "\n".join(lines)
    with open(args.output, "a") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
