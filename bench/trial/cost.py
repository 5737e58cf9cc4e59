"""Benchmark: the wall time of one distillation trial on the polarity MiniLM teacher.

Side by side, in one run, for a 2-layer student on the demo's data sizes:

* teacher-output cache on (warm: outputs already on disk) versus off (live teacher forward
  in every batch), with intermediate losses off (beta = 0) and on (beta = 1, hidden +
  embedding + attention);
* the first (cold) cached run, which also pays for computing the cache.

Each configuration runs ``--repeats`` times; the median is reported with the breakdown
(data, cache, build, train, eval). Results are appended to bench/RESULTS-trial-cost.md with
the command, the machine and the date.

    .venv/bin/python bench/trial/cost.py --repeats 2
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # its siblings and bench/, PYTHONSAFEPATH too
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-size", type=int, default=800)
    ap.add_argument("--eval-size", type=int, default=400)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output", type=Path, default=REPO / "bench" / "RESULTS-trial-cost.md")
    args = ap.parse_args()

    import torch

    from kdtune.objectives.cache.store import cache_root
    from kdtune.objectives.data.dataset import DataConfig, load_splits
    from kdtune.objectives.distillation.config import DistillConfig
    from kdtune.objectives.distillation.run import distill
    from kdtune.objectives.teacher.registry import cached_teacher
    from kdtune.study.cli.demo import demo_teacher_config

    teacher = cached_teacher(demo_teacher_config())
    data = DataConfig(train_size=args.train_size, eval_size=args.eval_size, max_length=64)
    splits = load_splits(data)

    def cfg(cache: bool, beta: float) -> DistillConfig:
        return DistillConfig(teacher=str(teacher), data=data, student_layers=args.layers,
                             beta=beta, teacher_cache=cache, epochs=1, threads=args.threads,
                             eval={"latency_batches": 0})

    rows = []

    def run(name: str, c: DistillConfig, repeats: int, clear_cache: bool = False):
        walls, parts = [], []
        for _ in range(repeats):
            if clear_cache and cache_root().exists():
                shutil.rmtree(cache_root())
            t0 = time.perf_counter()
            r = distill(c, splits=splits)
            walls.append(time.perf_counter() - t0)
            parts.append(r.timings)
        med = statistics.median(walls)
        breakdown = {k: statistics.median(p.get(k, 0.0) for p in parts) for k in parts[0]}
        rows.append((name, med, breakdown, r.metrics["accuracy_student"], r.metrics["sigma"]))
        print(f"{name:48s} {med:7.1f} s  {breakdown}", flush=True)

    for beta, label in ((0.0, "intermediate off"), (1.0, "intermediate on")):
        run(f"cache cold (computes it), {label}", cfg(True, beta), 1, clear_cache=True)
        run(f"cache warm, {label}", cfg(True, beta), args.repeats)
        run(f"no cache (live teacher), {label}", cfg(False, beta), args.repeats)

    base = {name: med for name, med, *_ in rows}
    lines = [
        f"## Trial cost, {datetime.date.today().isoformat()}",
        "",
        f"Command: `.venv/bin/python bench/trial/cost.py --repeats {args.repeats} "
        f"--train-size {args.train_size} --eval-size {args.eval_size} --layers {args.layers} "
        f"--threads {args.threads}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} torch threads. Teacher: MiniLM (6 layers, hidden 384) fine-tuned on "
        f"polarity; student {args.layers} layers; {args.train_size} train / {args.eval_size} "
        f"eval sentences, max length 64, 1 epoch, batch 32. Median of {args.repeats} runs "
        "(cold runs: 1).",
        "",
        "| configuration | wall s | data | cache | build | train | eval | accuracy | sigma |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, med, b, acc, sig in rows:
        lines.append(f"| {name} | {med:.1f} | {b.get('data', 0):.1f} | {b.get('cache', 0):.1f} "
                     f"| {b.get('build', 0):.1f} | {b.get('train', 0):.1f} | "
                     f"{b.get('eval', 0):.1f} | {acc:.3f} | {sig:.4f} |")
    for label in ("intermediate off", "intermediate on"):
        warm, live = base[f"cache warm, {label}"], base[f"no cache (live teacher), {label}"]
        lines.append(f"\nRatio no-cache / warm-cache, {label}: {live / warm:.2f}x")
    off, on = base["cache warm, intermediate off"], base["cache warm, intermediate on"]
    lines.append(f"\nRatio intermediate on / off (warm cache): {on / off:.2f}x\n")
    text = "\n".join(lines) + "\n"
    with open(args.output, "a") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
