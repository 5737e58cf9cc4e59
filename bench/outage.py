"""Benchmark: a database outage during a 4-worker study (issue #11).

For each outage length (``--outages``, seconds; default 4, 14 and 60), repeated
``--repeats`` times in rotation: a fresh database on the system PostgreSQL, a study of
``--trials`` trials of the sleepy test objective (``tests/study/worker_objectives.py``,
``--delay`` seconds per trial, heartbeat interval 1 s, grace period 3 s), 4 real
``kdtune worker`` processes; once all 4 have started a trial, the whole server is stopped
(``pg_ctlcluster ... stop``) for the outage, then started again. Reported per run: seconds
to finish, worker exit codes, trial states, finished evaluations that were thrown away and
run again (evaluations finished minus COMPLETE trials). Needs root (it stops the machine's
PostgreSQL) and stops every other client of that server for the outage.

    .venv/bin/python bench/outage.py --outages 4,14,60 --repeats 2 --output bench/RESULTS-outage.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4


def _pg(action: str) -> None:
    cluster = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", action],
                   check=True)


def one_run(outage: float, n_trials: int, delay: float, work: Path) -> dict:
    """One study with one outage; returns its figures."""
    from kdtune.study.config import validate
    from kdtune.study.service import create_study, open_study

    db = f"kd_outage_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db], check=True)
    log = work / f"{db}.log"
    cfg = validate({"name": "outage", "storage": url, "distill": {"teacher": "unused"},
                    "n_trials": n_trials, "sampler": {"name": "random", "seed": 1},
                    "heartbeat_interval": 1, "grace_period": 3})
    create_study(cfg)
    env = dict(os.environ, KDTUNE_TEST_LOG=str(log), KDTUNE_TEST_DELAY=str(delay),
               KDTUNE_STORAGE=url,
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "study"),
                                           os.environ.get("PYTHONPATH", "")]))
    t0 = time.time()
    outs = [open(work / f"{db}.w{i}", "w") for i in range(WORKERS)]
    procs = [subprocess.Popen([sys.executable, "-m", "kdtune.study.cli", "worker", "--study",
                               "outage", "--index", str(i), "--threads", "1", "--objective",
                               "worker_objectives:sleepy"], env=env, stdout=outs[i],
                              stderr=subprocess.STDOUT) for i in range(WORKERS)]
    while not (log.exists() and log.read_text().count("start") >= WORKERS) \
            and time.time() - t0 < 60:
        time.sleep(0.1)
    time.sleep(1.0)
    try:
        _pg("stop")
        time.sleep(outage)
    finally:
        _pg("start")
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=600))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append("timeout")
    elapsed = time.time() - t0
    ends = sum(1 for line in log.read_text().splitlines() if line.startswith("end"))
    study, _ = open_study("outage", url)
    states = Counter(t.state.name for t in study.get_trials())
    del study
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", db], check=False)
    return {"outage_s": outage, "seconds": round(elapsed, 1), "exit_codes": codes,
            "states": dict(states), "evaluations_finished": ends,
            "finished_results_rerun": ends - states.get("COMPLETE", 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outages", default="4,14,60")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--delay", type=float, default=2.5)
    ap.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS-outage.md")
    args = ap.parse_args()
    outages = [float(x) for x in args.outages.split(",")]
    started = datetime.datetime.now(datetime.UTC)
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kdtune-outage-") as tmp:
        for r in range(args.repeats):
            for outage in outages[r % len(outages):] + outages[:r % len(outages)]:
                row = one_run(outage, args.trials, args.delay, Path(tmp))
                print(json.dumps(row), flush=True)
                rows.append(row)
    lines = [
        "# Database outage during a 4-worker study",
        "",
        f"Command: `.venv/bin/python bench/outage.py --outages {args.outages} --repeats "
        f"{args.repeats} --trials {args.trials} --delay {args.delay}`",
        f"Date: {started:%Y-%m-%d %H:%M} UTC. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Load average at start: "
        f"{load[0]:.2f}. System PostgreSQL stopped and started with pg_ctlcluster.",
        "",
        f"{args.trials} trials of {args.delay} s (ideal: {args.trials // WORKERS} rounds, "
        f"{args.trials / WORKERS * args.delay:.0f} s plus the outage and start-up).",
        "",
        "| outage (s) | seconds to finish | worker exits | trial states "
        "| finished results re-run |",
        "|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: r["outage_s"]):
        lines.append(f"| {row['outage_s']:g} | {row['seconds']} | {row['exit_codes']} | "
                     f"{row['states']} | {row['finished_results_rerun']} |")
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
