"""Storage benchmark (b): a worker's ask and tell latency as its study grows (system PostgreSQL).

In this process one study grows to ``plan.trials`` trials. At every ``plan.bucket`` trials
of size, ``plan.per_level`` trials go through the steps of kdtune's worker loop
(:func:`one_trial`): the shipped ask (``kdtune.study.worker.next_trial``: budget lock,
stale-trial checks, the SQL budget count ``budget_counts_db``, ``study.ask()``), the
objective inside the heartbeat thread, ``study.tell``. A worker that joins the grown study
(a freshly opened storage, empty cache) is timed on its first ask. The trials between two
sizes are bulk-inserted by SQL (:func:`fill_trials`), because growing a study through the
worker path costs about 0.1 s a trial. Then :func:`worker_loop_check` runs a few more
trials through the real ``run_worker`` loop, with ``next_trial`` and ``Study.tell`` timed.
"""

from __future__ import annotations

import datetime
import os
import statistics
import time
import uuid
from dataclasses import dataclass

from breakdown import run_breakdown
from checks import check_counts, check_grown_study
from env import study_config


@dataclass(frozen=True)
class LatencyPlan:
    """Grow to ``trials``, measuring ``per_level`` trials every ``bucket`` trials of size;
    then ``breakdown_trials`` step-by-step asks and ``loop_trials`` trials of the real
    worker loop. The objective sleeps ``delay`` s; growing stops after ``timeout`` s."""

    trials: int
    bucket: int
    per_level: int
    loop_trials: int
    breakdown_trials: int
    delay: float
    timeout: float


def one_trial(study, cfg, objective) -> tuple[float, float, float]:
    """One trial through the worker's steps; returns (ask, objective, tell) seconds."""
    from kdtune.storage import optuna_adapter
    from kdtune.study import worker

    t0 = time.perf_counter()
    trial = worker.next_trial(study, cfg)
    t1 = time.perf_counter()
    if trial is None or trial == "done":
        raise RuntimeError(f"no trial to run ({trial!r}): the latency study's budget is spent")
    with optuna_adapter.heartbeat(study, trial):
        values = objective(trial)
    t2 = time.perf_counter()
    study.tell(trial, values)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def fill_trials(study, target: int, rng) -> int:
    """Bulk-insert COMPLETE trials (SQL) until ``study`` holds ``target`` trials.

    The rows are what a no-op trial leaves: the three parameters with their distributions
    and the two values; numbers continue the study's. Returns how many were inserted. The
    tables come from kdtune's Optuna adapter.
    """
    from optuna.distributions import FloatDistribution, IntDistribution, distribution_to_json
    from optuna.trial import TrialState
    from sqlalchemy import func, insert, select

    from kdtune.storage import optuna_adapter

    engine = optuna_adapter.rdb_engine(study)
    trials = optuna_adapter.trials_table()
    params = optuna_adapter.trial_params_table()
    values = optuna_adapter.trial_values_table()
    dists = {"temperature": FloatDistribution(1.0, 20.0, log=True),
             "alpha": FloatDistribution(0.0, 1.0),
             "student_layers": IntDistribution(1, 6)}
    djson = {k: distribution_to_json(d) for k, d in dists.items()}
    sid = optuna_adapter.study_id(study)
    with engine.begin() as conn:
        have = conn.execute(select(func.count()).where(trials.c.study_id == sid)).scalar()
        n = target - have
        if n <= 0:
            return 0
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # as Optuna stores it
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
                             "value_type": "FINITE"})
        conn.execute(insert(params), prow)
        conn.execute(insert(values), vrow)
    return n


def run_latency(plan: LatencyPlan, url: str, sqlite_url: str | None) -> dict:
    """Grow a study on ``url`` (system PostgreSQL) and time its worker steps at each size;
    then the breakdown, the worker-loop check and the budget-count checks (also on
    ``sqlite_url``). Returns the raw timings (seconds) and the checks."""
    import numpy as np
    from noop_objective import factory

    from kdtune.storage import optuna_adapter
    from kdtune.study.service import create_study, open_study

    os.environ.pop("KDTUNE_NOOP_LOG", None)
    os.environ["KDTUNE_NOOP_DELAY"] = str(plan.delay)
    objective = factory(None)
    n, b, m = plan.trials, plan.bucket, plan.per_level
    levels = list(range(0, n + 1, b))
    budget = n + m + 10 * len(levels) + plan.loop_trials + 100
    rng = np.random.default_rng(0)
    name = f"lat-{uuid.uuid4().hex[:6]}"
    create_study(study_config(name, url, budget))
    study, cfg = open_study(name, url, heartbeat=True, worker_index=0)
    rec: dict[str, list] = {"level": [], "ask": [], "tell": [], "obj": []}
    cold = []
    filled = 0
    t_start = time.perf_counter()
    for level in levels:
        filled += fill_trials(study, level, rng)
        # a worker joining the grown study: fresh storage, empty cache (its first ask)
        fresh, _ = open_study(name, url, heartbeat=True, worker_index=1)
        a, _, t = one_trial(fresh, cfg, objective)
        cold.append({"size": level, "ask": a, "tell": t})
        optuna_adapter.rdb_engine(fresh).dispose()
        for _ in range(m):
            a, o, t = one_trial(study, cfg, objective)
            rec["level"].append(level)
            rec["ask"].append(a)
            rec["obj"].append(o)
            rec["tell"].append(t)
        print(f"[latency] level {level:6d}: ask median "
              f"{statistics.median(rec['ask'][-m:]) * 1e3:6.2f} ms, tell median "
              f"{statistics.median(rec['tell'][-m:]) * 1e3:6.2f} ms; first ask of a new "
              f"worker {cold[-1]['ask'] * 1e3:.0f} ms ({time.perf_counter() - t_start:.0f} s)",
              flush=True)
        if time.perf_counter() - t_start > plan.timeout:
            print(f"[latency] stopped after level {level} (--latency-timeout)", flush=True)
            break

    breakdown = run_breakdown(url, study, cfg, objective, plan.breakdown_trials)
    loop = worker_loop_check(study, url, plan.loop_trials, objective)
    checks = [check_counts(url, "system-pg")]
    if sqlite_url:
        checks.append(check_counts(sqlite_url, "sqlite"))
    checks.append(check_grown_study(study))
    optuna_adapter.rdb_engine(study).dispose()
    return {"n": n, "bucket": b, "per_level": m, "levels": sorted(set(rec["level"])),
            "rec": rec, "cold": cold, "filled": filled, "loop": loop, "checks": checks,
            "breakdown": breakdown, "seconds": time.perf_counter() - t_start}


def worker_loop_check(study, url: str, trials: int, objective) -> dict:
    """Run ``trials`` more trials on the grown study through the real ``run_worker`` loop,
    timing each ``next_trial`` that returned a trial and each ``Study.tell``.

    Returns {} when ``trials`` is 0.
    """
    if not trials:
        return {}
    import optuna

    from kdtune.attrs import STUDY_CONFIG
    from kdtune.study import worker
    from kdtune.study.budget import budget_counts_db

    size = budget_counts_db(study)["finished"]
    asks: list[float] = []
    tells: list[float] = []
    original_next, original_tell = worker.next_trial, optuna.Study.tell

    def timed_next(st, cfg):
        t0 = time.perf_counter()
        r = original_next(st, cfg)
        if r is not None and r != "done":
            asks.append(time.perf_counter() - t0)
        return r

    def timed_tell(self, *a, **k):
        t0 = time.perf_counter()
        r = original_tell(self, *a, **k)
        tells.append(time.perf_counter() - t0)
        return r

    # the worker stops at the budget: set it to size + trials for this check
    raw = dict(study.user_attrs[STUDY_CONFIG])
    raw["n_trials"] = size + trials
    study.set_user_attr(STUDY_CONFIG, raw)
    worker.next_trial, optuna.Study.tell = timed_next, timed_tell
    try:
        summary = worker.run_worker(study.study_name, url, index=2, objective=objective)
    finally:
        worker.next_trial, optuna.Study.tell = original_next, original_tell
    print(f"[worker loop] {len(asks)} trials at size {size}: ask median "
          f"{statistics.median(asks) * 1e3:.2f} ms, tell median "
          f"{statistics.median(tells) * 1e3:.2f} ms", flush=True)
    return {"size": size, "summary": summary, "ask": asks, "tell": tells}
