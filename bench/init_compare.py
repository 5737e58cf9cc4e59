"""Benchmark: teacher-subset initialisation against random initialisation of narrow students.

Issue #12 asks to compare the initialisation that selects a subset of the teacher's weights
(``init: teacher-layers``, Xu et al. 2023) with random initialisation and default to the
better. Arms, interleaved seed by seed so both see the same machine load: the same student
shape and training (``--layers`` x ``--hidden``, ``--epochs`` epochs at ``--lr`` on
``--train`` polarity sentences, the demo's cached LP-FT teacher), differing only in ``init``.
The choice is read on the evaluation split (the split a search selects on); the test split,
which took no part in it, is reported beside it, with paired bootstrap 95% intervals over
the test split's examples for each run.

    .venv/bin/python bench/init_compare.py --seeds 0,1,2 --output bench/RESULTS-init.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(teacher: Path, init: str, seed: int, args) -> dict:
    import numpy as np

    from kdtune.frozen import validate
    from kdtune.objectives.compute.predict import predict_logits
    from kdtune.objectives.data.tokens import data_collator, tokenize
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.distillation.run import distill
    from kdtune.objectives.measure.bootstrap import paired_bootstrap
    from kdtune.objectives.measure.metrics import confidence_metrics, softmax
    from kdtune.objectives.teacher.load import load_teacher

    cfg = validate({"teacher": str(teacher), "init": init, "seed": seed,
                    "student_layers": args.layers, "hidden_size": args.hidden,
                    "learning_rate": args.lr, "epochs": args.epochs, "batch_size": 32,
                    "min_relative_accuracy": None, "threads": 2,
                    "data": {"train_size": args.train, "eval_size": 400, "max_length": 64}},
                   DistillConfig)
    t0 = time.perf_counter()
    result = distill(cfg)
    seconds = time.perf_counter() - t0
    # test split: never read by the choice
    from kdtune.objectives.data.dataset import load_splits

    splits = load_splits(cfg.data)
    test = tokenize(splits.split("test"), result.tokenizer, cfg.data.max_length)
    collate = data_collator(result.tokenizer)
    t_model, _ = load_teacher(teacher)
    p_t = softmax(predict_logits(t_model, test, collate))
    p_s = softmax(predict_logits(result.student, test, collate))
    labels = np.asarray(test["label"])
    m = confidence_metrics(p_t, p_s, labels)
    ci = paired_bootstrap(p_t, p_s, labels, seed=seed)
    return {"init": init, "seed": seed, "seconds": seconds,
            "eval_accuracy": result.metrics["accuracy_student"],
            "eval_sigma": result.metrics["sigma"],
            "test_accuracy": m["accuracy_student"], "test_sigma": m["sigma"],
            "test_accuracy_ci": ci["accuracy_student"].as_list(),
            "test_sigma_ci": ci["sigma"].as_list(), "params": result.metrics.get("params")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--train", type=int, default=800)
    ap.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS-init.md")
    args = ap.parse_args()
    from kdtune.objectives.teacher.registry import cached_teacher
    from kdtune.study.cli.demo import demo_teacher_config

    teacher = cached_teacher(demo_teacher_config())
    started = datetime.datetime.now(datetime.UTC)
    load = os.getloadavg()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for init in (("teacher-layers", "random") if seed % 2 == 0
                     else ("random", "teacher-layers")):
            row = one_run(teacher, init, seed, args)
            print(row, flush=True)
            rows.append(row)

    def summary(init: str, key: str) -> str:
        xs = [r[key] for r in rows if r["init"] == init]
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        return f"{statistics.mean(xs):.4f} ± {sd:.4f}"

    lines = [
        "# Narrow-student initialisation: teacher subset against random",
        "",
        f"Command: `.venv/bin/python bench/init_compare.py --seeds {args.seeds} --layers "
        f"{args.layers} --hidden {args.hidden} --epochs {args.epochs} --lr {args.lr} "
        f"--train {args.train}`",
        f"Date: {started:%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, {os.cpu_count()} "
        f"cores, no GPU. Load average at start: {load[0]:.2f}. Teacher: the demo's LP-FT "
        "MiniLM (6 x 384). Arms interleaved seed by seed (order alternating).",
        "",
        "Mean ± sample standard deviation over seeds (eval: the selection split, 400 "
        "sentences; test: 400 sentences that took no part in the choice):",
        "",
        "| init | eval accuracy | eval sigma | test accuracy | test sigma |",
        "|---|---|---|---|---|",
    ]
    for init in ("teacher-layers", "random"):
        lines.append(f"| {init} | {summary(init, 'eval_accuracy')} | "
                     f"{summary(init, 'eval_sigma')} | {summary(init, 'test_accuracy')} | "
                     f"{summary(init, 'test_sigma')} |")
    lines += ["", "Per run (test figures with paired bootstrap 95% intervals, 1,000 "
              "resamples):", "", "| init | seed | s | eval acc | test acc [95%] | "
              "test sigma [95%] |", "|---|---|---|---|---|---|"]
    for r in rows:
        a, s = r["test_accuracy_ci"], r["test_sigma_ci"]
        lines.append(f"| {r['init']} | {r['seed']} | {r['seconds']:.0f} | "
                     f"{r['eval_accuracy']:.4f} | {r['test_accuracy']:.4f} [{a[0]:.3f}, "
                     f"{a[1]:.3f}] | {r['test_sigma']:.4f} [{s[0]:.3f}, {s[1]:.3f}] |")
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
