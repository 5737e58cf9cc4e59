"""Benchmark part 3: storage at scale (worker throughput, and latency as a study grows).

Everything measured is kdtune's shipped code, imported from the installed ``kdtune``
package; Optuna internals are reached only through ``kdtune.storage.optuna_adapter``.

(a) Throughput (bench/storage/throughput.py). A study with a fixed budget (``--trials``,
    default 200) of a no-op objective (bench/noop_objective.py: three suggestions, 2 ms,
    two values) is run by 1, 2, 4, 8 and 16 real worker processes (``python -m
    kdtune.study.cli worker --study NAME --objective noop_objective:factory`` with bench/
    on PYTHONPATH, storage in $KDTUNE_STORAGE) on three storages: the system PostgreSQL (a
    fresh database created for the run and dropped after it), the embedded PostgreSQL
    (storage spec None, $KDTUNE_HOME a temporary directory) and SQLite (a temporary file).
    For each worker count the three backends run back to back (order rotated), so they see
    the same machine load. Reported: trials/s in the steady state (first trial start to
    last trial completion, from the stored datetimes) and wall-clock including process
    start-up; lost trials (COMPLETE < budget); duplicated evaluations (the objective logs
    each trial number it evaluates: a number seen twice is a duplicate); trials beyond the
    budget; worker exit codes and "database is locked" lines in the workers' logs.

(b) Latency as the study grows, on the system PostgreSQL (bench/storage/latency.py). In
    this process one study grows to ``--latency-trials`` trials (default 10,000). At every
    ``--bucket`` trials of size (0, 1,000, ..., 10,000) ``--per-level`` trials go through
    the worker's steps: ask (``kdtune.study.worker.next_trial``: lock, fail stale trials,
    count the budget in SQL, ``study.ask()``), the objective inside the heartbeat thread,
    ``study.tell``; the trials between two sizes are bulk-inserted by SQL (COMPLETE, with
    the no-op objective's parameters and values), because growing 10,000 trials through
    the worker path takes ~0.1 s a trial. Reported: median ask / tell latency at each
    size, and the first ask of a freshly opened study (a worker joining the grown study,
    empty cache); each step of an ask timed on a new and on the grown study
    (bench/storage/breakdown.py, ``--breakdown-trials``); ``--loop-trials`` more trials
    through the real ``run_worker`` loop with ``next_trial`` and ``Study.tell`` timed.
    The workers' SQL budget count (``kdtune.study.budget.budget_counts_db``) is checked
    against ``budget_counts`` (from loaded trials) on studies holding COMPLETE, PRUNED,
    RUNNING, WAITING, re-queued FAIL and final FAIL trials, on PostgreSQL and SQLite, and
    on the grown study (bench/storage/checks.py).

    Retired: the "before/after" arms. Until the SQL budget count shipped (commit 9cf26e2,
    now ``budget_counts_db``), (b) grew two studies side by side, one asking with the
    then-shipped ``next_trial`` (budget counted from every loaded trial) and one with a
    copy of it counting in SQL, to decide whether to ship the change. Their numbers are in
    the conclusion of bench/RESULTS-storage.md. Since the change landed, the "after" copy
    duplicated shipped code and the "before" arm measured code kdtune no longer runs, so
    (b) now measures the shipped path alone.

Writes bench/RESULTS-storage.md (``--output``, bench/storage/report.py; text after its
``<!-- conclusion -->`` marker is kept across runs) and, next to it, storage-throughput.png
and storage-latency.png (bench/storage/plots.py); raw numbers go to ``--raw`` (JSON).
The full run (its run time is in the report):

    .venv/bin/python bench/storage/scale.py --trials 200 --workers 1,2,4,8,16 --repeats 2 \\
        --latency-trials 10000 --bucket 1000 --per-level 200 --loop-trials 200 --breakdown-trials 60

Needs the system PostgreSQL at ``--system-server`` (a user that may create databases).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # its siblings and bench/, PYTHONSAFEPATH too
from env import BACKENDS, BENCH, SystemDatabase, machine_info, software_versions  # noqa: E402
from latency import LatencyPlan, run_latency  # noqa: E402
from plots import plot_latency, plot_throughput  # noqa: E402
from report import write_report  # noqa: E402
from throughput import ThroughputPlan, run_throughput  # noqa: E402


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from e


def _backend_list(text: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown backend {unknown[0]!r}; accepted: "
                                         f"{', '.join(BACKENDS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200, help="budget per throughput run")
    ap.add_argument("--workers", type=_int_list, default=(1, 2, 4, 8, 16),
                    help="worker counts, comma-separated")
    ap.add_argument("--backends", type=_backend_list, default=BACKENDS,
                    help=f"comma-separated, of {', '.join(BACKENDS)}")
    ap.add_argument("--repeats", type=int, default=1, help="throughput runs per cell")
    ap.add_argument("--delay", type=float, default=0.002, help="objective sleep, seconds")
    ap.add_argument("--run-timeout", type=float, default=300.0,
                    help="seconds before a throughput run's workers are killed")
    ap.add_argument("--latency-trials", type=int, default=10_000)
    ap.add_argument("--bucket", type=int, default=1000,
                    help="measure every this many trials of study size")
    ap.add_argument("--per-level", type=int, default=200,
                    help="trials timed at each measured size")
    ap.add_argument("--loop-trials", type=int, default=200)
    ap.add_argument("--breakdown-trials", type=int, default=60,
                    help="ask/tell steps timed on an empty and on the grown study")
    ap.add_argument("--latency-timeout", type=float, default=900.0,
                    help="stop growing the latency study after this many seconds")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--system-server", default="postgresql://postgres@127.0.0.1:5432",
                    help="system PostgreSQL server (a fresh database is created and dropped)")
    ap.add_argument("--output", type=Path, default=BENCH / "RESULTS-storage.md")
    ap.add_argument("--raw", type=Path, default=Path(tempfile.gettempdir())
                    / "kdtune-storage-scale.json")
    return ap.parse_args(argv)


def _quiet() -> None:
    import logging
    import warnings

    import optuna

    warnings.simplefilter("ignore")  # Optuna's experimental-feature / heartbeat warnings
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("kdtune").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tp = ThroughputPlan(trials=args.trials, workers=args.workers, backends=args.backends,
                        repeats=args.repeats, delay=args.delay, timeout=args.run_timeout)
    lp = LatencyPlan(trials=args.latency_trials, bucket=args.bucket, per_level=args.per_level,
                     loop_trials=args.loop_trials, breakdown_trials=args.breakdown_trials,
                     delay=args.delay, timeout=args.latency_timeout)
    _quiet()
    started = datetime.datetime.now()
    t0 = time.perf_counter()
    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="kdtune-storage-"))
    work.chmod(0o755)  # the embedded server runs as the pgserver user when we are root
    os.environ["KDTUNE_HOME"] = str(work / "home")
    os.environ.pop("KDTUNE_STORAGE", None)
    from kdtune.storage import embedded

    rows: list[dict] = []
    lat: dict = {}
    try:
        with SystemDatabase(args.system_server) as db:
            versions = software_versions(f"{args.system_server}/postgres")
            urls = {"system-pg": db.url, "embedded-pg": None,
                    "sqlite": f"sqlite:///{work / 'bench.db'}"}
            if not args.skip_throughput:
                if "embedded-pg" in tp.backends:
                    embedded.start()
                rows = run_throughput(tp, urls, work)
            if not args.skip_latency:
                lat = run_latency(lp, db.url, f"sqlite:///{work / 'check.db'}")
    finally:
        if embedded.status().running:
            embedded.stop()
    machine["load_end"] = os.getloadavg()
    elapsed = time.perf_counter() - t0
    if rows:
        plot_throughput(rows, args.output.parent / "storage-throughput.png")
    if lat:
        plot_latency(lat, args.output.parent / "storage-latency.png")
    cmd = " ".join([".venv/bin/python", "bench/storage/scale.py",
                    *(sys.argv[1:] if argv is None else argv)])
    write_report(args.output, cmd=cmd, machine=machine, versions=versions, delay=args.delay,
                 trials=args.trials, workers=args.workers, rows=rows, lat=lat,
                 started=started, elapsed=elapsed)
    args.raw.write_text(json.dumps({"machine": machine, "versions": versions,
                                    "throughput": rows, "latency": lat}, default=str))
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.output} ({elapsed / 60:.1f} min); raw numbers in {args.raw}")


if __name__ == "__main__":
    main()
