"""Benchmark part 3: storage at scale (worker throughput, and latency as a study grows).

(a) Throughput. A study with a fixed budget (``--trials``, default 200) of a no-op
    objective (bench/noop_objective.py: three suggestions, 2 ms, two values) is run by 1, 2,
    4, 8 and 16 real ``kdtune worker`` processes (``python -m study.cli worker --study
    NAME``, storage in $KDTUNE_STORAGE) on three storages: the system PostgreSQL (a fresh
    database created for the run and dropped after it), the embedded PostgreSQL (storage
    spec None, $KDTUNE_HOME a temporary directory) and SQLite (a temporary file). For each
    worker count the three backends run back to back (order rotated), so they see the same
    machine load. Reported: trials/s in the steady state (first trial start to last trial
    completion, from the stored datetimes) and wall-clock including process start-up; lost
    trials (COMPLETE < budget); duplicated evaluations (the objective logs each trial number
    it evaluates: a number seen twice is a duplicate); trials beyond the budget; worker exit
    codes and "database is locked" lines in the workers' logs.

(b) Latency as the study grows, on the system PostgreSQL. In this process, two studies
    grow side by side to ``--latency-trials`` trials (default 10,000): "before" asks with
    kdtune's own ``study.worker._next_trial`` (budget counted from ``study.get_trials()``),
    "after" with :func:`next_trial_sql`, a copy of it whose budget counts come from SQL on
    the trials table (:func:`budget_counts_sql`). At every ``--bucket`` trials of size
    (0, 1,000, ..., 10,000) ``--per-level`` trials per study go through the worker's steps,
    alternating before/after trial by trial so both see the same load: ask (lock, fail stale
    trials, count the budget, ``study.ask()``), the objective inside the heartbeat thread,
    ``study.tell``; the trials between two sizes are bulk-inserted by SQL
    (:func:`fill_trials`: COMPLETE, with the no-op objective's parameters and values),
    because growing 10,000 trials through the worker path takes ~0.1 s a trial here.
    Reported: median ask / tell latency at each size, and the first ask of a freshly opened
    study (a worker joining the grown study, empty cache). Then a check through the real
    worker loop: ``study.worker.run_worker`` runs ``--loop-trials`` more trials on each
    grown study with ``_next_trial`` wrapped by a timer (replaced by the SQL copy for
    "after"). ``budget_counts_sql`` is checked against ``budget_counts`` on studies holding
    COMPLETE, PRUNED, RUNNING, WAITING, re-queued FAIL and final FAIL trials, on PostgreSQL
    and SQLite, and on the two grown studies.

Writes bench/RESULTS-storage.md (``--output``; text after its ``<!-- conclusion -->`` marker
is kept across runs) and, next to it, storage-throughput.png and storage-latency.png; raw
numbers go to ``--raw`` (JSON). The exact command (13 minutes on an idle-ish 2-core
machine, 26 when other work took a core):

    .venv/bin/python bench/storage_scale.py --trials 200 --workers 1,2,4,8,16 --repeats 2 \\
        --latency-trials 10000 --bucket 1000 --per-level 200 --loop-trials 200 --breakdown-trials 60
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

MARKER = "<!-- conclusion -->"
BACKENDS = ("system-pg", "embedded-pg", "sqlite")


# ---------------------------------------------------------------------------------------
# The proposed change: budget counts from SQL instead of every trial


def budget_counts_sql(study) -> dict[str, int]:
    """Same dict as :func:`study.service.budget_counts`, counted by the database.

    One ``GROUP BY state`` on the study's rows of ``trials`` (indexed on ``study_id``);
    only when the study has FAIL trials, their numbers and the ``retry_history`` system
    attributes (re-queued copies) are read to tell re-queued FAILs from final ones. No
    FrozenTrial is built, so the cost does not grow with the number of finished trials.
    """
    from optuna.storages._rdb import models
    from optuna.trial import TrialState
    from sqlalchemy import func, select

    from kdtune.storage.factory import rdb_engine

    trials = models.TrialModel.__table__
    attrs = models.TrialSystemAttributeModel.__table__
    sid = study._study_id
    with rdb_engine(study._storage).connect() as conn:
        states = {
            TrialState[s] if isinstance(s, str) else s: n
            for s, n in conn.execute(
                select(trials.c.state, func.count())
                .where(trials.c.study_id == sid)
                .group_by(trials.c.state)
            )
        }
        failed = states.get(TrialState.FAIL, 0)
        final_fail = failed
        if failed:
            fail_numbers = {
                n for (n,) in conn.execute(
                    select(trials.c.number).where(
                        trials.c.study_id == sid, trials.c.state == TrialState.FAIL
                    )
                )
            }
            retried: set[int] = set()
            for (value,) in conn.execute(
                select(attrs.c.value_json)
                .join(trials, attrs.c.trial_id == trials.c.trial_id)
                .where(trials.c.study_id == sid, attrs.c.key == "retry_history")
            ):
                retried.update(json.loads(value))
            final_fail = len(fail_numbers - retried)
    complete = states.get(TrialState.COMPLETE, 0)
    pruned = states.get(TrialState.PRUNED, 0)
    running = states.get(TrialState.RUNNING, 0)
    waiting = states.get(TrialState.WAITING, 0)
    finished = complete + pruned + final_fail
    return {
        "complete": complete,
        "pruned": pruned,
        "failed": failed,
        "failed_final": final_fail,
        "running": running,
        "waiting": waiting,
        "finished": finished,
        "used": finished + running + waiting,
    }


def next_trial_sql(study, cfg):
    """study.worker._next_trial with the budget counted by :func:`budget_counts_sql`."""
    import optuna

    from kdtune.study.worker import budget_lock

    with budget_lock(study):
        optuna.storages.fail_stale_trials(study)
        counts = budget_counts_sql(study)
        if counts["finished"] >= cfg.n_trials:
            return "done"
        if counts["used"] >= cfg.n_trials and counts["waiting"] == 0:
            return None
        return study.ask()


# ---------------------------------------------------------------------------------------
# Helpers


def _cfg(name: str, storage: str | None, n_trials: int):
    from kdtune.study.config import validate

    return validate({"name": name, "storage": storage, "distill": {"teacher": "unused"},
                     "n_trials": n_trials, "sampler": {"name": "random"}})


def _machine() -> dict:
    mem = ""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu,
            "load_start": os.getloadavg(), "python": platform.python_version()}


def _versions(system_url: str) -> dict:
    import optuna
    import sqlalchemy
    from sqlalchemy import create_engine, text

    out = {"optuna": optuna.__version__, "sqlalchemy": sqlalchemy.__version__}
    for key, url in (("system_pg", system_url),):
        eng = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
        with eng.connect() as c:
            out[key] = c.execute(text("SHOW server_version")).scalar()
        eng.dispose()
    return out


class SystemDatabase:
    """A fresh database on the system PostgreSQL, dropped on exit."""

    def __init__(self, server: str) -> None:
        self.server = server.rstrip("/")
        self.name = f"kdtune_bench_{uuid.uuid4().hex[:8]}"
        self.url = f"{self.server}/{self.name}"

    def _admin(self, sql: str) -> None:
        from sqlalchemy import create_engine, text

        admin = self.server.replace("postgresql://", "postgresql+psycopg2://", 1)
        eng = create_engine(f"{admin}/postgres", isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text(sql))
        eng.dispose()

    def __enter__(self) -> SystemDatabase:
        self._admin(f"CREATE DATABASE {self.name}")
        return self

    def __exit__(self, *exc) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def _worker_env(url: str | None, log: Path, delay: float) -> dict:
    env = dict(os.environ)
    env.pop("KDTUNE_STORAGE", None)
    if url:
        env["KDTUNE_STORAGE"] = url
    env.update(KDTUNE_OBJECTIVE="noop_objective:factory", KDTUNE_NOOP_LOG=str(log),
               KDTUNE_NOOP_DELAY=str(delay),
               PYTHONPATH=os.pathsep.join([str(BENCH), str(REPO)]))
    return env


# ---------------------------------------------------------------------------------------
# (a) throughput


def throughput_run(backend: str, url: str | None, workers: int, budget: int, work: Path,
                   delay: float, timeout: float) -> dict:
    from kdtune.study.service import budget_counts, create_study, open_study

    name = f"tp-{backend}-{workers}-{uuid.uuid4().hex[:6]}"
    create_study(_cfg(name, url, budget))
    run_dir = work / name
    run_dir.mkdir()
    log = run_dir / "evals.log"
    env = _worker_env(url, log, delay)
    outs = [open(run_dir / f"worker-{i}.out", "w") for i in range(workers)]
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-m", "kdtune.study.cli", "worker", "--study", name,
                          "--index", str(i)], env=env, cwd=REPO, stdout=fh,
                         stderr=subprocess.STDOUT)
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
    codes = [p.returncode for p in procs]

    study, _ = open_study(name, url)
    trials = study.get_trials(deepcopy=False)
    counts = budget_counts(trials)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    steady = None
    if complete:
        span = (max(t.datetime_complete for t in complete)
                - min(t.datetime_start for t in complete)).total_seconds()
        steady = len(complete) / span if span > 0 else None
    evals = Counter()
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
    from kdtune.storage.factory import rdb_engine

    rdb_engine(study._storage).dispose()
    return {
        "backend": backend, "workers": workers, "budget": budget, "study": name,
        "wall_s": wall, "wall_tps": counts["complete"] / wall,
        "steady_tps": steady, "complete": counts["complete"], "failed": counts["failed"],
        "running": counts["running"], "waiting": counts["waiting"], "trials": len(trials),
        "lost": max(0, budget - counts["complete"]),
        "beyond_budget": max(0, counts["finished"] - budget),
        "evaluations": sum(evals.values()),
        "duplicates": sum(c - 1 for c in evals.values() if c > 1),
        "exit_codes": codes, "timed_out": timed_out, "locked_lines": locked,
        "tracebacks": errors, "first_error": first_error,
    }


def run_throughput(args, urls: dict, work: Path) -> list[dict]:
    rows = []
    backends = [b for b in BACKENDS if b in args.backends]
    for k, n in enumerate(args.workers):
        order = backends[k % len(backends):] + backends[:k % len(backends)]
        for rep in range(args.repeats):
            for backend in order:
                r = throughput_run(backend, urls[backend], n, args.trials, work, args.delay,
                                   args.run_timeout)
                r["repeat"] = rep
                rows.append(r)
                print(f"[throughput] {backend:12s} workers={n:2d} steady "
                      f"{r['steady_tps'] or 0:7.1f}/s wall {r['wall_tps']:6.1f}/s "
                      f"complete={r['complete']} lost={r['lost']} dup={r['duplicates']} "
                      f"locked={r['locked_lines']} codes={set(r['exit_codes'])} "
                      f"{'TIMEOUT' if r['timed_out'] else ''}", flush=True)
    return rows


# ---------------------------------------------------------------------------------------
# (b) latency as the study grows


def _one_trial(next_fn, study, cfg, objective) -> tuple[float, float, float]:
    """One trial through the worker's steps; returns (ask, objective, tell) seconds."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    t0 = time.perf_counter()
    trial = next_fn(study, cfg)
    t1 = time.perf_counter()
    if trial is None or trial == "done":
        raise RuntimeError(f"no trial to run ({trial!r})")
    with get_heartbeat_thread(trial._trial_id, study._storage):
        values = objective(trial)
    t2 = time.perf_counter()
    study.tell(trial, values)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def fill_trials(study, target: int, rng) -> int:
    """Bulk-insert COMPLETE trials (SQL) until ``study`` holds ``target`` trials.

    The rows are what a no-op trial leaves: the three parameters with their distributions
    and the two values; numbers continue the study's. Returns how many were inserted.
    Growing a study through the worker path costs about 0.1 s a trial on this machine, so
    the trials between measured levels are filled this way.
    """
    from optuna.distributions import (
        FloatDistribution,
        IntDistribution,
        distribution_to_json,
    )
    from optuna.storages._rdb import models
    from optuna.trial import TrialState
    from sqlalchemy import func, insert, select

    from kdtune.storage.factory import rdb_engine

    trials = models.TrialModel.__table__
    params = models.TrialParamModel.__table__
    values = models.TrialValueModel.__table__
    finite = models.TrialValueModel.TrialValueType.FINITE
    dists = {"temperature": FloatDistribution(1.0, 20.0, log=True),
             "alpha": FloatDistribution(0.0, 1.0),
             "student_layers": IntDistribution(1, 6)}
    djson = {k: distribution_to_json(d) for k, d in dists.items()}
    sid = study._study_id
    with rdb_engine(study._storage).begin() as conn:
        have = conn.execute(select(func.count()).where(trials.c.study_id == sid)).scalar()
        n = target - have
        if n <= 0:
            return 0
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        conn.execute(insert(trials), [
            {"number": have + i, "study_id": sid, "state": TrialState.COMPLETE,
             "datetime_start": now, "datetime_complete": now} for i in range(n)])
        ids = conn.execute(select(trials.c.trial_id).where(
            trials.c.study_id == sid, trials.c.number >= have).order_by(trials.c.number)
        ).scalars().all()
        prow, vrow = [], []
        for tid in ids:
            t = float(rng.uniform(1.0, 20.0))
            a = float(rng.uniform(0.0, 1.0))
            layers = int(rng.integers(1, 7))
            for name, val in (("temperature", t), ("alpha", a), ("student_layers", layers)):
                prow.append({"trial_id": tid, "param_name": name, "param_value": float(val),
                             "distribution_json": djson[name]})
            for k, val in enumerate((a * layers / 6.0, 1.0 / t)):
                vrow.append({"trial_id": tid, "objective": k, "value": val,
                             "value_type": finite})
        conn.execute(insert(params), prow)
        conn.execute(insert(values), vrow)
    return n


def run_latency(args, url: str) -> dict:
    import numpy as np
    from noop_objective import factory

    import kdtune.study.worker as sw
    from kdtune.storage.factory import rdb_engine
    from kdtune.study.service import create_study, open_study

    os.environ.pop("KDTUNE_NOOP_LOG", None)
    os.environ["KDTUNE_NOOP_DELAY"] = str(args.delay)
    objective = factory(None)
    n, b, m = args.latency_trials, args.bucket, args.per_level
    levels = list(range(0, n + 1, b))
    budget = n + m + 10 * len(levels) + args.loop_trials + 100
    fns = {"before": sw._next_trial, "after": next_trial_sql}
    tag = uuid.uuid4().hex[:6]
    rng = np.random.default_rng(0)
    studies = {}
    for v in fns:
        cfg = _cfg(f"lat-{v}-{tag}", url, budget)
        create_study(cfg)
        studies[v] = open_study(cfg.name, url, heartbeat=True, worker_index=0)
    rec = {v: {"level": [], "ask": [], "tell": [], "obj": []} for v in fns}
    cold = {v: [] for v in fns}
    filled = {v: 0 for v in fns}
    t_start = time.perf_counter()
    for level in levels:
        for v in fns:
            filled[v] += fill_trials(studies[v][0], level, rng)
        # a worker joining the grown study: fresh storage, empty cache (its first ask)
        for v in fns:
            st, cfg = studies[v]
            fresh, _ = open_study(st.study_name, url, heartbeat=True, worker_index=1)
            a, _, t = _one_trial(fns[v], fresh, cfg, objective)
            cold[v].append({"size": level, "ask": a, "tell": t})
            rdb_engine(fresh._storage).dispose()
        for i in range(m):
            for v in (("before", "after") if i % 2 == 0 else ("after", "before")):
                st, cfg = studies[v]
                a, o, t = _one_trial(fns[v], st, cfg, objective)
                rec[v]["level"].append(level)
                rec[v]["ask"].append(a)
                rec[v]["obj"].append(o)
                rec[v]["tell"].append(t)
        mb = statistics.median(rec["before"]["ask"][-m:]) * 1e3
        ma = statistics.median(rec["after"]["ask"][-m:]) * 1e3
        print(f"[latency] level {level:6d}: ask median before {mb:6.2f} ms, after {ma:6.2f} "
              f"ms; first ask of a new worker before {cold['before'][-1]['ask'] * 1e3:.0f} "
              f"ms, after {cold['after'][-1]['ask'] * 1e3:.0f} ms "
              f"({time.perf_counter() - t_start:.0f} s)", flush=True)
        if time.perf_counter() - t_start > args.latency_timeout:
            print(f"[latency] stopped after level {level} (--latency-timeout)", flush=True)
            break

    breakdown = {}
    if args.breakdown_trials:
        breakdown = run_breakdown(args, url, studies["after"], objective)
    loop = {}
    if args.loop_trials:
        loop = _worker_loop_check(args, url, studies, fns)

    checks = [_check_counts(url, "system-pg")]
    if args.sqlite_url:
        checks.append(_check_counts(args.sqlite_url, "sqlite"))
    from kdtune.study.service import budget_counts

    for v in fns:
        st, _ = studies[v]
        checks.append({"where": f"grown study {v}", "equal":
                       budget_counts(st.get_trials(deepcopy=False)) == budget_counts_sql(st)})
        rdb_engine(st._storage).dispose()
    return {"n": n, "bucket": b, "per_level": m, "levels": sorted(set(rec["before"]["level"])),
            "rec": rec, "cold": cold, "filled": filled, "loop": loop, "checks": checks,
            "breakdown": breakdown,
            "seconds": time.perf_counter() - t_start}


def run_breakdown(args, url: str, big, objective) -> dict:
    """Time each step of one ask/tell on an empty study and on the grown one, interleaved.

    Steps: the advisory lock; ``fail_stale_trials``; kdtune's budget count from every trial
    (``budget_counts(study.get_trials())``) and the SQL count (``budget_counts_sql``), both
    timed on every ask; Optuna's cached-storage refresh + WAITING filter (what
    ``study.ask()`` runs first, in ``_pop_waiting_trial_id``); Optuna's trial-number count
    (the SQL that ``create_new_trial`` runs); ``study.ask()``; ``study.tell``.
    """
    import optuna
    from optuna.storages._heartbeat import get_heartbeat_thread
    from optuna.storages._rdb import models
    from optuna.trial import TrialState
    from sqlalchemy import func, select

    from kdtune.storage.factory import rdb_engine
    from kdtune.study.service import budget_counts, create_study, open_study
    from kdtune.study.worker import budget_lock

    cfg = _cfg(f"bd-small-{uuid.uuid4().hex[:6]}", url, 100_000)
    create_study(cfg)
    small = open_study(cfg.name, url, heartbeat=True, worker_index=0)
    trials = models.TrialModel.__table__
    steps = ("lock", "fail_stale_trials", "budget_counts(get_trials)", "budget_counts_sql",
             "cached refresh + WAITING filter", "trial-number count (SQL)", "study.ask",
             "study.tell")
    out = {}
    for label in ("small", "big"):
        out[label] = {k: [] for k in steps}
        out[label]["size"] = 0
    for i in range(args.breakdown_trials):
        for label, (st, _) in (("small", small), ("big", big)):
            rec = out[label]
            t = [time.perf_counter()]
            with budget_lock(st):
                t.append(time.perf_counter())
                optuna.storages.fail_stale_trials(st)
                t.append(time.perf_counter())
                budget_counts(st.get_trials(deepcopy=False))
                t.append(time.perf_counter())
                budget_counts_sql(st)
                t.append(time.perf_counter())
                st._storage.get_all_trials(st._study_id, deepcopy=False,
                                           states=(TrialState.WAITING,))
                t.append(time.perf_counter())
                with rdb_engine(st._storage).connect() as conn:
                    conn.execute(select(func.count(trials.c.trial_id)).where(
                        trials.c.study_id == st._study_id,
                        trials.c.trial_id < 2**31 - 1)).scalar()
                t.append(time.perf_counter())
                trial = st.ask()
                t.append(time.perf_counter())
            with get_heartbeat_thread(trial._trial_id, st._storage):
                values = objective(trial)
            t0 = time.perf_counter()
            st.tell(trial, values)
            t.append(t0)
            t.append(time.perf_counter())
            durations = [t[k + 1] - t[k] for k in range(7)] + [t[8] - t[7]]
            for k, d in zip(steps, durations, strict=True):
                rec[k].append(d)
            if i == 0:
                rec["size"] = len(st.get_trials(deepcopy=False)) - 1
    rdb_engine(small[0]._storage).dispose()
    return {"steps": steps, **out}


def _worker_loop_check(args, url, studies, fns) -> dict:
    """Run the real worker loop (run_worker) for a few more trials on each grown study."""
    import optuna
    from noop_objective import factory

    import kdtune.study.worker as sw
    from kdtune.study.service import budget_counts

    out = {}
    original_next, original_tell = sw._next_trial, optuna.Study.tell
    for v, fn in fns.items():
        st, cfg = studies[v]
        size = budget_counts(st.get_trials(deepcopy=False))["complete"]
        asks, tells = [], []

        def timed_next(study, cfg, fn=fn, asks=asks):
            t0 = time.perf_counter()
            r = fn(study, cfg)
            if r is not None and r != "done":
                asks.append(time.perf_counter() - t0)
            return r

        def timed_tell(self, *a, tells=tells, **k):
            t0 = time.perf_counter()
            r = original_tell(self, *a, **k)
            tells.append(time.perf_counter() - t0)
            return r

        # the worker stops at the budget: set it to size + loop_trials for this check
        from kdtune.study.service import CONFIG_ATTR

        raw = dict(st.user_attrs[CONFIG_ATTR])
        raw["n_trials"] = size + args.loop_trials
        st.set_user_attr(CONFIG_ATTR, raw)
        sw._next_trial, optuna.Study.tell = timed_next, timed_tell
        try:
            summary = sw.run_worker(st.study_name, url, index=2, objective=factory(None))
        finally:
            sw._next_trial, optuna.Study.tell = original_next, original_tell
        out[v] = {"size": size, "summary": summary, "ask": asks, "tell": tells}
        print(f"[worker loop] {v}: {len(asks)} trials at size {size}: ask median "
              f"{statistics.median(asks) * 1e3:.2f} ms, tell median "
              f"{statistics.median(tells) * 1e3:.2f} ms", flush=True)
    return out


def _check_counts(url: str, where: str) -> dict:
    """budget_counts_sql == budget_counts on a study with every state and a re-queue."""
    from optuna.trial import TrialState

    from kdtune.storage.factory import rdb_engine
    from kdtune.study.service import budget_counts, create_study, open_study
    from kdtune.study.worker import requeue

    cfg = _cfg(f"chk-{uuid.uuid4().hex[:6]}", url, 20)
    create_study(cfg)
    st, _ = open_study(cfg.name, url)
    results = []
    trials = [st.ask() for _ in range(5)]
    for t in trials:
        t.suggest_float("x", 0, 1)
    st.tell(trials[0], [0.1, 0.2])
    st.tell(trials[1], state=TrialState.PRUNED)
    st.tell(trials[2], state=TrialState.FAIL)  # re-queued
    requeue(st, st._storage.get_trial(trials[2]._trial_id), max_retries=2)
    st.tell(trials[3], state=TrialState.FAIL)  # final
    # trials[4] stays RUNNING; the re-queued copy is WAITING
    results.append(budget_counts(st.get_trials(deepcopy=False)) == budget_counts_sql(st))
    retry = st.ask()  # pops the WAITING copy, fails it again and re-queues it
    st.tell(retry, state=TrialState.FAIL)
    requeue(st, st._storage.get_trial(retry._trial_id), max_retries=2)
    results.append(budget_counts(st.get_trials(deepcopy=False)) == budget_counts_sql(st))
    counts = budget_counts_sql(st)
    rdb_engine(st._storage).dispose()
    return {"where": where, "equal": all(results), "counts": counts}


# ---------------------------------------------------------------------------------------
# Report


def _median_ms(xs) -> float:
    return statistics.median(xs) * 1e3 if xs else float("nan")


def _plot_throughput(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for backend, style in zip(BACKENDS, ("o-", "s-", "^-"), strict=True):
        pts = sorted((r["workers"], r["steady_tps"] or 0.0, r["lost"] or r["duplicates"])
                     for r in rows if r["backend"] == backend)
        if not pts:
            continue
        xs = sorted({p[0] for p in pts})
        ys = [statistics.median([p[1] for p in pts if p[0] == x]) for x in xs]
        line, = ax.plot(xs, ys, style, label=backend)
        bad = [(p[0], p[1]) for p in pts if p[2]]
        if bad:
            ax.plot(*zip(*bad, strict=True), "x", color=line.get_color(), ms=12, mew=2)
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
    ax.set_xlabel("kdtune worker processes (2 CPU cores)")
    ax.set_ylabel("trials / s (steady state)")
    ax.set_ylim(bottom=0)
    ax.set_title("No-op objective throughput by storage (x: lost trials or duplicates)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _by_level(lat: dict, variant: str, key: str) -> list[float]:
    """Median (ms) of ``key`` latencies measured at each level of the study's size."""
    rec = lat["rec"][variant]
    return [_median_ms([x for lv, x in zip(rec["level"], rec[key], strict=True) if lv == level])
            for level in lat["levels"]]


def _plot_latency(lat: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for v, color in (("before", "tab:red"), ("after", "tab:blue")):
        ask = _by_level(lat, v, "ask")
        tell = _by_level(lat, v, "tell")
        xs = lat["levels"]
        ax1.plot(xs, ask, "o-", color=color, label=f"ask, {v}")
        ax1.plot(xs, tell, "s--", color=color, alpha=0.6, label=f"tell, {v}")
        cold = lat["cold"][v]
        ax2.plot([c["size"] for c in cold], [c["ask"] * 1e3 for c in cold], "o-",
                 color=color, label=f"first ask of a new worker, {v}")
    ax1.set_xlabel("trials already in the study")
    ax1.set_ylabel(f"median of {lat['per_level']} trials at that size (ms)")
    ax1.set_title("Worker ask / tell latency as the study grows (system PostgreSQL)")
    ax1.set_ylim(bottom=0)
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("trials already in the study")
    ax2.set_ylabel("latency (ms)")
    ax2.set_title("A worker joining the grown study: its first ask")
    ax2.set_ylim(bottom=0)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_report(args, machine, versions, rows, lat, out: Path, started, elapsed) -> None:
    old_tail = ""
    if out.exists():
        text = out.read_text()
        if MARKER in text:
            old_tail = text.split(MARKER, 1)[1]
    cmd = " ".join([".venv/bin/python", "bench/storage_scale.py", *sys.argv[1:]])
    lines = [
        "# Benchmark part 3: storage at scale",
        "",
        f"Date: {started:%Y-%m-%d %H:%M} (local); bench run time {elapsed / 60:.1f} min.",
        "",
        "Command:",
        "",
        f"    {cmd}",
        "",
        f"Machine: {machine['nproc']} CPU cores ({machine['cpu']}), {machine['memory']} memory, "
        f"Python {machine['python']}, Optuna {versions['optuna']}, SQLAlchemy "
        f"{versions['sqlalchemy']}, system PostgreSQL {versions['system_pg']}, embedded "
        "PostgreSQL 16 (pgserver). **The machine is shared with other work**: load average "
        f"{machine['load_start'][0]:.2f} at the start and {machine['load_end'][0]:.2f} at the "
        "end (1-minute), so absolute numbers are noisy; comparisons were run side by side "
        "(backends back to back per worker count; before/after interleaved trial by trial) "
        "and are reported as ratios.",
        "",
        "Objective: bench/noop_objective.py (3 suggestions, "
        f"{args.delay * 1e3:.0f} ms sleep, 2 values), via "
        "`KDTUNE_OBJECTIVE=noop_objective:factory PYTHONPATH=bench`. Sampler: random. "
        "Heartbeats on (interval 10 s, the default), as `kdtune worker` runs them.",
        "",
    ]
    if rows:
        lines += [
            f"## (a) Throughput: {args.trials} trials per run, real `kdtune worker` processes",
            "",
            "Steady state = COMPLETE trials / (last completion - first start); wall = COMPLETE "
            "trials / (first worker spawned to last worker exited), which includes each "
            "process's start-up (about 0.7 s of CPU to import kdtune and Optuna).",
            "",
            "| workers | backend | steady trials/s | wall trials/s | vs system PG (steady) "
            "| complete | lost | duplicates | beyond budget | FAIL | 'database is locked' "
            "lines | exit codes |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for n in args.workers:
            ref = [r["steady_tps"] for r in rows if r["workers"] == n
                   and r["backend"] == "system-pg" and r["steady_tps"]]
            ref_v = statistics.median(ref) if ref else None
            for backend in BACKENDS:
                for r in [r for r in rows if r["workers"] == n and r["backend"] == backend]:
                    ratio = (f"{r['steady_tps'] / ref_v:.2f}x" if ref_v and r["steady_tps"]
                             else "-")
                    codes = ",".join(str(c) for c in sorted(set(r["exit_codes"])))
                    if r["timed_out"]:
                        codes += " (timed out, killed)"
                    lines.append(
                        f"| {n} | {backend} | {r['steady_tps'] or 0:.1f} | {r['wall_tps']:.1f} "
                        f"| {ratio} | {r['complete']} | {r['lost']} | {r['duplicates']} | "
                        f"{r['beyond_budget']} | {r['failed']} | {r['locked_lines']} | {codes} |")
        total_lost = sum(r["lost"] for r in rows)
        total_dup = sum(r["duplicates"] for r in rows)
        lines += ["", f"Totals over {len(rows)} runs: lost trials {total_lost}, duplicated "
                  f"evaluations {total_dup}, trials beyond the budget "
                  f"{sum(r['beyond_budget'] for r in rows)}.", ""]
        errs = [r for r in rows if r["first_error"]]
        if errs:
            lines += ["First error/warning line per run that had one:", ""]
            for r in errs:
                lines.append(f"- {r['backend']}, {r['workers']} workers: `{r['first_error']}`")
            lines.append("")
        lines += ["![throughput](storage-throughput.png)", ""]
    if lat:
        lines += [
            f"## (b) Latency as the study grows: 0 to {lat['levels'][-1]:,} trials, system "
            "PostgreSQL",
            "",
            "One in-process worker per study, two studies grown side by side. *before*: "
            "kdtune's `study.worker._next_trial` (budget from `study.get_trials()` + "
            "`budget_counts`); *after*: the same function with `budget_counts_sql` (the patch "
            "in the conclusion). ask = `_next_trial` (advisory lock, `fail_stale_trials`, "
            "budget count, `study.ask()`); tell = `study.tell`; between them the objective "
            "runs inside the heartbeat thread, as in `run_worker`. At each size (every "
            f"{lat['bucket']:,} trials) {lat['per_level']} trials per study are run through "
            "those steps, alternating before/after trial by trial; the table gives their "
            "medians in ms. The trials between two sizes were bulk-inserted by SQL as COMPLETE "
            "trials with the no-op objective's three parameters and two values "
            f"({lat['filled']['before']:,} per study): growing 10,000 trials through the "
            "worker path costs about 0.1 s each here, i.e. about 35 minutes for the two "
            "studies, over this task's time limit.",
            "",
            "| trials in study | ask before | ask after | after/before | tell before "
            "| tell after |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        ab, aa = _by_level(lat, "before", "ask"), _by_level(lat, "after", "ask")
        tb, ta = _by_level(lat, "before", "tell"), _by_level(lat, "after", "tell")
        for i, level in enumerate(lat["levels"]):
            lines.append(f"| {level:,}-{level + lat['per_level'] - 1:,} | {ab[i]:.2f} | "
                         f"{aa[i]:.2f} | {aa[i] / ab[i]:.2f} | {tb[i]:.2f} | {ta[i]:.2f} |")
        lines += ["", "A worker joining the grown study (fresh process-level storage and "
                  "cache, as a newly started `kdtune worker`): its first ask, ms.", "",
                  "| trials in study | first ask before | first ask after |", "|---:|---:|---:|"]
        for cb, ca in zip(lat["cold"]["before"], lat["cold"]["after"], strict=True):
            lines.append(f"| {cb['size']} | {cb['ask'] * 1e3:.1f} | {ca['ask'] * 1e3:.1f} |")
        bd = lat.get("breakdown")
        if bd:
            lines += ["", "Where the time goes: each step of one ask/tell, on a new study "
                      f"(0 to {len(bd['small']['study.ask'])} trials) and on the grown one "
                      f"({bd['big']['size']:,} trials), "
                      f"{len(bd['small']['study.ask'])} trials each, interleaved; medians in ms. "
                      "Both budget counts are timed on every ask; the last rows are Optuna's "
                      "own work inside `study.ask()` (the cached-storage refresh with its "
                      "WAITING filter, and the SQL count that numbers a new trial), timed "
                      "separately by repeating them.", "",
                      "| step | new study | grown study | grown - new |",
                      "|---|---:|---:|---:|"]
            for k in bd["steps"]:
                a, g = _median_ms(bd["small"][k]), _median_ms(bd["big"][k])
                lines.append(f"| {k} | {a:.2f} | {g:.2f} | {g - a:+.2f} |")
        if lat["loop"]:
            lines += ["", "Check through the real worker loop (`study.worker.run_worker`, "
                      "objective = no-op, `_next_trial` wrapped by a timer; for *after* "
                      "replaced by the SQL copy):", "",
                      "| variant | trials in study | trials run | ask median ms | "
                      "tell median ms |", "|---|---:|---:|---:|---:|"]
            for v, d in lat["loop"].items():
                lines.append(f"| {v} | {d['size']} | {len(d['ask'])} | "
                             f"{_median_ms(d['ask']):.2f} | {_median_ms(d['tell']):.2f} |")
        lines += ["", "`budget_counts_sql` equals `budget_counts`: " + "; ".join(
            f"{c['where']}: {'yes' if c['equal'] else 'NO'}" for c in lat["checks"]) + ".",
            "", f"Latency part run time: {lat['seconds'] / 60:.1f} min.", "",
            "![latency](storage-latency.png)", ""]
    lines.append(MARKER)
    out.write_text("\n".join(lines) + (old_tail if old_tail else "\n"))


# ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=200, help="budget per throughput run")
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 2, 4, 8, 16])
    ap.add_argument("--backends", type=lambda s: s.split(","), default=list(BACKENDS))
    ap.add_argument("--repeats", type=int, default=1, help="throughput runs per cell")
    ap.add_argument("--delay", type=float, default=0.002, help="objective sleep, seconds")
    ap.add_argument("--run-timeout", type=float, default=300.0,
                    help="seconds before a throughput run's workers are killed")
    ap.add_argument("--latency-trials", type=int, default=10_000)
    ap.add_argument("--bucket", type=int, default=1000,
                    help="measure every this many trials of study size")
    ap.add_argument("--per-level", type=int, default=200,
                    help="trials timed per study at each measured size")
    ap.add_argument("--loop-trials", type=int, default=200)
    ap.add_argument("--breakdown-trials", type=int, default=60,
                    help="ask/tell steps timed on an empty and on the grown study")
    ap.add_argument("--latency-timeout", type=float, default=900.0,
                    help="stop growing the latency studies after this many seconds")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--system-server", default="postgresql://postgres@127.0.0.1:5432",
                    help="system PostgreSQL server (a fresh database is created and dropped)")
    ap.add_argument("--output", type=Path, default=BENCH / "RESULTS-storage.md")
    ap.add_argument("--raw", type=Path, default=Path(tempfile.gettempdir())
                    / "kdtune-storage-scale.json")
    args = ap.parse_args()

    import logging
    import warnings

    import optuna

    warnings.simplefilter("ignore")  # Optuna's experimental-feature / heartbeat warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("kdtune").setLevel(logging.WARNING)
    started = datetime.datetime.now()
    t0 = time.perf_counter()
    machine = _machine()
    work = Path(tempfile.mkdtemp(prefix="kdtune-storage-"))
    work.chmod(0o755)  # the embedded server runs as the pgserver user when we are root
    home = work / "home"
    os.environ["KDTUNE_HOME"] = str(home)
    os.environ.pop("KDTUNE_STORAGE", None)
    from kdtune.storage import embedded

    rows: list[dict] = []
    lat: dict = {}
    try:
        with SystemDatabase(args.system_server) as db:
            versions = _versions(f"{args.system_server}/postgres")
            urls = {"system-pg": db.url, "embedded-pg": None,
                    "sqlite": f"sqlite:///{work / 'bench.db'}"}
            args.sqlite_url = f"sqlite:///{work / 'check.db'}"
            if not args.skip_throughput:
                if "embedded-pg" in args.backends:
                    embedded.start()
                rows = run_throughput(args, urls, work)
            if not args.skip_latency:
                lat = run_latency(args, db.url)
    finally:
        if embedded.status().running:
            embedded.stop()
    machine["load_end"] = os.getloadavg()
    elapsed = time.perf_counter() - t0
    if rows:
        _plot_throughput(rows, args.output.parent / "storage-throughput.png")
    if lat:
        _plot_latency(lat, args.output.parent / "storage-latency.png")
    _write_report(args, machine, versions, rows, lat, args.output, started, elapsed)
    args.raw.write_text(json.dumps({"machine": machine, "versions": versions,
                                    "throughput": rows, "latency": lat}, default=str))
    shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.output} ({elapsed / 60:.1f} min); raw numbers in {args.raw}")


if __name__ == "__main__":
    main()
