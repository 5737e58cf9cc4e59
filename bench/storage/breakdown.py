"""Storage benchmark (b), where the time goes: each step of a worker's ask and tell, timed on
a new study and on the grown one, interleaved trial by trial.

The steps are those of the shipped ``kdtune.study.worker.next_trial`` (budget lock,
Optuna's ``fail_stale_trials``, kdtune's ``fail_heartbeatless_trials``, the SQL budget
count ``budget_counts_db``, ``study.ask()``) and ``study.tell``; two more rows time
Optuna's own work inside ``study.ask()`` by repeating it: the cached-storage refresh with
its WAITING filter (``get_all_trials(states=(WAITING,))``, what ``study.ask()`` runs first)
and the SQL count that numbers a new trial.
"""

from __future__ import annotations

import time
import uuid

from env import study_config

STEPS = ("lock", "fail_stale_trials", "fail_heartbeatless_trials", "budget_counts_db",
         "cached refresh + WAITING filter", "trial-number count (SQL)", "study.ask",
         "study.tell")


def _timed_trial(st, cfg, objective) -> list[float]:
    """One ask/tell with each of :data:`STEPS` timed (seconds, in that order)."""
    import optuna
    from optuna.trial import TrialState
    from sqlalchemy import func, select

    from kdtune.storage import optuna_adapter
    from kdtune.study.budget import budget_counts_db, budget_lock
    from kdtune.study.worker import fail_heartbeatless_trials

    trials = optuna_adapter.trials_table()
    sid = optuna_adapter.study_id(st)
    t = [time.perf_counter()]
    with budget_lock(st):
        t.append(time.perf_counter())
        optuna.storages.fail_stale_trials(st)
        t.append(time.perf_counter())
        fail_heartbeatless_trials(st, cfg.grace_period or 3 * cfg.heartbeat_interval)
        t.append(time.perf_counter())
        budget_counts_db(st)
        t.append(time.perf_counter())
        optuna_adapter.study_storage(st).get_all_trials(sid, deepcopy=False,
                                                        states=(TrialState.WAITING,))
        t.append(time.perf_counter())
        with optuna_adapter.rdb_engine(st).connect() as conn:
            conn.execute(select(func.count(trials.c.trial_id)).where(
                trials.c.study_id == sid, trials.c.trial_id < 2**31 - 1)).scalar()
        t.append(time.perf_counter())
        trial = st.ask()
        t.append(time.perf_counter())
    with optuna_adapter.heartbeat(st, trial):
        values = objective(trial)
    t0 = time.perf_counter()
    st.tell(trial, values)
    return [t[k + 1] - t[k] for k in range(len(t) - 1)] + [time.perf_counter() - t0]


def run_breakdown(url: str, big, big_cfg, objective, trials: int) -> dict:
    """Time :data:`STEPS` for ``trials`` trials on a new study on ``url`` and on ``big``
    (the grown study, whose StudyConfig is ``big_cfg``), alternating between the two.

    Returns {} when ``trials`` is 0, else ``{"steps": STEPS, "small": {step: [seconds, ...],
    "size": trials in the study before the first}, "big": {...}}``.
    """
    if not trials:
        return {}
    from kdtune.storage import optuna_adapter
    from kdtune.study.service import create_study, open_study

    cfg = study_config(f"bd-small-{uuid.uuid4().hex[:6]}", url, 100_000)
    create_study(cfg)
    small, small_cfg = open_study(cfg.name, url, heartbeat=True, worker_index=0)
    out: dict = {label: {**{k: [] for k in STEPS}, "size": 0} for label in ("small", "big")}
    for i in range(trials):
        for label, st, st_cfg in (("small", small, small_cfg), ("big", big, big_cfg)):
            if i == 0:
                out[label]["size"] = len(st.get_trials(deepcopy=False))
            for k, d in zip(STEPS, _timed_trial(st, st_cfg, objective), strict=True):
                out[label][k].append(d)
    optuna_adapter.rdb_engine(small).dispose()
    return {"steps": STEPS, **out}
