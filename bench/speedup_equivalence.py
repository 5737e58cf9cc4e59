"""Do issue 14's speed-ups change what a trial finds? One fixed configuration, many seeds,
the code before and after, interleaved.

The speed-ups change the order of the training batches (grouped by length), the optimiser's
rounding (fused AdamW) and the attention kernel (SDPA), so a seed no longer gives the same
student as before: the question is whether accuracy and sigma move by more than seed noise.
For each seed, the same configuration (the trial benchmark's default: 2-layer student,
800 / 400 polarity sentences, 1 epoch, t = 2, alpha = 0.7) is distilled by each code tree in
turn, in a fresh process per arm and seed block. Reported: mean and standard deviation per
arm, the paired difference after - before with its 95% t-interval over seeds, and the
train seconds.

    .venv/bin/python bench/speedup_equivalence.py --before /tmp/kd-before --after /tmp/kd-after \
        --teacher .kdtune-test-home/teachers/83c178f57acf0e44 --seeds 10

``--before`` and ``--after`` are kdtune source trees (``git archive COMMIT | tar -x -C DIR``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXED = {"temperature": 2.0, "alpha": 0.7, "beta": 0.0, "learning_rate": 1e-4, "epochs": 1,
         "student_layers": 2, "layer_mapping": "uniform", "schedule": "joint",
         "batch_size": 32, "data": {"train_size": 800, "eval_size": 400, "max_length": 64}}
CHILD = r"""
import json, sys
from kdtune.objectives.distillation.config import DistillConfig
from kdtune.objectives.distillation.run import distill
teacher, threads, seeds, fixed = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
for seed in (int(s) for s in seeds.split(",")):
    r = distill(DistillConfig(teacher=teacher, threads=threads, seed=seed, **fixed))
    print(json.dumps({"seed": seed, "accuracy": r.metrics["accuracy_student"],
                      "sigma": r.metrics["sigma"], "train_s": r.timings["train"]}), flush=True)
"""


def package_dir(src: Path) -> Path:
    """A directory whose ``kdtune`` package is source tree ``src`` (layers linked in)."""
    if not (src / "objectives" / "training.py").is_file():
        raise SystemExit(f"{src}: not a kdtune source tree")
    pkg = Path(tempfile.mkdtemp(prefix="kdtune-code-"))
    shutil.copytree(src / "kdtune", pkg / "kdtune")
    for layer in ("objectives", "study", "storage"):
        (pkg / "kdtune" / layer).symlink_to(src.resolve() / layer)
    return pkg


def run_arm(pkg: Path, args, seeds: list[int]) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(pkg), "PYTHONSAFEPATH": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(args.teacher), str(args.threads),
                          ",".join(map(str, seeds)), json.dumps(FIXED)],
                         env=env, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    mean = statistics.fmean(diffs)
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return mean, mean - half, mean + half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--block", type=int, default=2, help="seeds per process and arm turn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output", type=Path, default=REPO / "bench" / "RESULTS-trial-cost.md")
    args = ap.parse_args()
    args.teacher = args.teacher.resolve()
    pkgs = {"before": package_dir(args.before), "after": package_dir(args.after)}
    rows: dict[str, list[dict]] = {"before": [], "after": []}
    load_start = os.getloadavg()
    for start in range(0, args.seeds, args.block):
        block = list(range(start, min(start + args.block, args.seeds)))
        order = ("before", "after") if start // args.block % 2 == 0 else ("after", "before")
        for arm in order:  # alternate which arm goes first
            rows[arm] += run_arm(pkgs[arm], args, block)
            print(arm, rows[arm][-len(block):], flush=True)
    by_seed = {arm: {r["seed"]: r for r in rs} for arm, rs in rows.items()}
    seeds = sorted(by_seed["before"])
    lines = [f"\n## Speed-ups and results (issue 14), {datetime.datetime.now():%Y-%m-%d %H:%M}\n",
             f"Command: `.venv/bin/python bench/speedup_equivalence.py {' '.join(sys.argv[1:])}`",
             f"\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch "
             f"threads; load {load_start} at the start, {os.getloadavg()} at the end. "
             f"Before: {args.before}; after: {args.after}. {len(seeds)} seeds, the two code "
             "trees alternating in blocks of "
             f"{args.block} seeds. The same configuration for every run: {json.dumps(FIXED)}.\n",
             "| figure | before: mean ± sd | after: mean ± sd | after - before, paired: mean "
             "[95% t-interval] |", "|---|---|---|---|"]
    for key, digits in (("accuracy", 4), ("sigma", 4), ("train_s", 2)):
        b = [by_seed["before"][s][key] for s in seeds]
        a = [by_seed["after"][s][key] for s in seeds]
        mean, low, high = t_interval([x - y for x, y in zip(a, b, strict=True)])
        cells = [f"{statistics.fmean(x):.{digits}f} ± {statistics.stdev(x):.{digits}f}"
                 for x in (b, a)]
        lines.append(f"| {key} | {cells[0]} | {cells[1]} | "
                     f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] |")
    text = "\n".join(lines) + "\n"
    print(text)
    with args.output.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
