"""Storage benchmark (a): how many no-op trials per second N real ``kdtune worker`` processes
finish on each storage, and whether any trial is lost, duplicated or run past the budget.

Each run creates a study with a fixed budget and starts N workers::

    PYTHONPATH=bench python -m kdtune.study.cli worker --study NAME --index I \\
        --objective noop_objective:factory

with the storage in $KDTUNE_STORAGE (unset: the embedded server). The no-op objective logs
every trial number it evaluates to $KDTUNE_NOOP_LOG, so a number seen twice is a duplicated
evaluation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from env import BACKENDS, BENCH, REPO, study_config

OBJECTIVE = "noop_objective:factory"


@dataclass(frozen=True)
class ThroughputPlan:
    """What to run: ``trials`` per study, each count of ``workers`` on each of ``backends``,
    ``repeats`` times; the objective sleeps ``delay`` s; a run is killed after ``timeout`` s."""

    trials: int
    workers: tuple[int, ...]
    backends: tuple[str, ...]
    repeats: int
    delay: float
    timeout: float


def worker_env(url: str | None, log: Path, delay: float) -> dict[str, str]:
    """The environment of a benchmark worker: its storage, the no-op objective's settings,
    and bench/ on PYTHONPATH so that ``--objective noop_objective:factory`` imports."""
    env = dict(os.environ)
    env.pop("KDTUNE_STORAGE", None)
    if url:
        env["KDTUNE_STORAGE"] = url
    env.update(KDTUNE_NOOP_LOG=str(log), KDTUNE_NOOP_DELAY=str(delay),
               PYTHONPATH=os.pathsep.join(p for p in (str(BENCH), env.get("PYTHONPATH")) if p))
    return env


def _run_workers(name: str, workers: int, env: dict, run_dir: Path,
                 timeout: float) -> tuple[float, list[int | None], bool]:
    """Start the workers, wait for all (SIGKILL them after ``timeout`` s).

    Returns (wall seconds, exit codes, timed out).
    """
    outs = [open(run_dir / f"worker-{i}.out", "w") for i in range(workers)]
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-m", "kdtune.study.cli", "worker", "--study", name,
                          "--index", str(i), "--objective", OBJECTIVE],
                         env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        for i, fh in enumerate(outs)
    ]
    deadline = t0 + timeout
    timed_out = False
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            timed_out = True
            break
    if timed_out:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()
    wall = time.perf_counter() - t0
    for fh in outs:
        fh.close()
    return wall, [p.returncode for p in procs], timed_out


def _scan_logs(run_dir: Path, workers: int) -> dict:
    """Evaluations per trial number, and the workers' 'database is locked' / error lines."""
    evals: Counter[int] = Counter()
    log = run_dir / "evals.log"
    if log.exists():
        for line in log.read_text().splitlines():
            evals[int(line.split()[1])] += 1
    locked = errors = 0
    first_error = ""
    for i in range(workers):
        text = (run_dir / f"worker-{i}.out").read_text(errors="replace")
        locked += text.count("database is locked")
        errors += text.count("Traceback")
        if not first_error:
            bad = [ln for ln in text.splitlines()
                   if "error" in ln.lower() or "locked" in ln or "retrying" in ln]
            first_error = bad[0][:200] if bad else ""
    return {"evaluations": sum(evals.values()),
            "duplicates": sum(c - 1 for c in evals.values() if c > 1),
            "locked_lines": locked, "tracebacks": errors, "first_error": first_error}


def throughput_run(backend: str, url: str | None, workers: int, plan: ThroughputPlan,
                   work: Path) -> dict:
    """One study of ``plan.trials`` trials run by ``workers`` processes on ``backend``."""
    from kdtune.storage import optuna_adapter
    from kdtune.study.budget import budget_counts
    from kdtune.study.service import create_study, open_study

    name = f"tp-{backend}-{workers}-{uuid.uuid4().hex[:6]}"
    create_study(study_config(name, url, plan.trials))
    run_dir = work / name
    run_dir.mkdir()
    env = worker_env(url, run_dir / "evals.log", plan.delay)
    wall, codes, timed_out = _run_workers(name, workers, env, run_dir, plan.timeout)

    study, _ = open_study(name, url)
    trials = study.get_trials(deepcopy=False)
    counts = budget_counts(trials)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    steady = None
    if complete:
        span = (max(t.datetime_complete for t in complete)
                - min(t.datetime_start for t in complete)).total_seconds()
        steady = len(complete) / span if span > 0 else None
    optuna_adapter.rdb_engine(study).dispose()
    return {
        "backend": backend, "workers": workers, "budget": plan.trials, "study": name,
        "wall_s": wall, "wall_tps": counts["complete"] / wall,
        "steady_tps": steady, "complete": counts["complete"], "failed": counts["failed"],
        "running": counts["running"], "waiting": counts["waiting"], "trials": len(trials),
        "lost": max(0, plan.trials - counts["complete"]),
        "beyond_budget": max(0, counts["finished"] - plan.trials),
        "exit_codes": codes, "timed_out": timed_out, **_scan_logs(run_dir, workers),
    }


def run_throughput(plan: ThroughputPlan, urls: dict[str, str | None], work: Path) -> list[dict]:
    """Every (worker count, repeat, backend) run; the backends of one worker count run back
    to back, their order rotated from one worker count to the next."""
    rows = []
    backends = [b for b in BACKENDS if b in plan.backends]
    for k, n in enumerate(plan.workers):
        order = backends[k % len(backends):] + backends[:k % len(backends)]
        for rep in range(plan.repeats):
            for backend in order:
                r = throughput_run(backend, urls[backend], n, plan, work)
                r["repeat"] = rep
                rows.append(r)
                print(f"[throughput] {backend:12s} workers={n:2d} steady "
                      f"{r['steady_tps'] or 0:7.1f}/s wall {r['wall_tps']:6.1f}/s "
                      f"complete={r['complete']} lost={r['lost']} dup={r['duplicates']} "
                      f"locked={r['locked_lines']} codes={set(r['exit_codes'])} "
                      f"{'TIMEOUT' if r['timed_out'] else ''}", flush=True)
    return rows
