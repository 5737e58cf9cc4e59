"""Stale trials: RUNNING trials whose worker died are failed (with the reason) and re-queued.

A worker beats while its trial runs (:func:`kdtune.storage.optuna_adapter.heartbeat`). A RUNNING
trial is stale when its last beat, or, with no beat at all, its start, is older than the grace
period; another worker, asking for a trial, fails it with :data:`~kdtune.attrs.FAIL_REASON` saying
so and re-queues it (same parameters) as a WAITING trial (:func:`fail_stale_trials`), but only once
the database has been back for ``grace_period + heartbeat_interval`` seconds (:func:`may_judge`).

Why: docs/design.md, "Stale trials wait for the database to settle".
"""

from __future__ import annotations

import datetime
import logging

import optuna
from optuna.trial import TrialState

from kdtune.attrs import FAIL_REASON
from kdtune.storage import optuna_adapter
from kdtune.storage.link import DatabaseLink

from .budget import requeue
from .config import StudyConfig

STALE_PREFIX = "stale:"
"""How the fail reason of a trial failed as stale begins."""
_log = logging.getLogger("kdtune.worker")


def grace_period(cfg: StudyConfig) -> int:
    """Seconds without a heartbeat after which a RUNNING trial is stale."""
    return cfg.grace_period or 3 * cfg.heartbeat_interval


def settle_time(cfg: StudyConfig) -> int:
    """Seconds the database must have been back before any trial is judged stale."""
    return grace_period(cfg) + cfg.heartbeat_interval


def server_uptime(study: optuna.Study) -> float | None:
    """Seconds since the PostgreSQL server started (None on SQLite)."""
    engine = optuna_adapter.rdb_engine(study)
    if engine.dialect.name != "postgresql":
        return None
    from sqlalchemy import text

    with engine.connect() as conn:
        return float(conn.execute(text(
            "SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())")).scalar())


def may_judge(study: optuna.Study, cfg: StudyConfig, link: DatabaseLink | None) -> bool:
    """Whether every live worker has had time to beat since the database came back."""
    settle = settle_time(cfg)
    if link is not None and link.settled_for() < settle:
        return False
    uptime = server_uptime(study)
    return uptime is None or uptime >= settle


def stale_trial_ids(study: optuna.Study, grace: int) -> list[tuple[int, bool]]:
    """``(trial id, has a heartbeat)`` of the study's RUNNING trials stale for ``grace`` s."""
    from sqlalchemy import and_, func, or_, select

    trials = optuna_adapter.trials_table()
    beats = optuna_adapter.trial_heartbeats_table()
    # Heartbeats are stamped by the database's clock, trial starts by the worker's clock in
    # UTC (Optuna >= 5 stores naive UTC, whatever the host's time zone): each is compared
    # with its own clock, so workers in different time zones judge alike.
    start_cutoff = optuna_adapter.stored_now() - datetime.timedelta(seconds=grace)
    with optuna_adapter.rdb_engine(study).connect() as conn:
        db_now = conn.execute(select(func.now())).scalar().replace(tzinfo=None)
        db_cutoff = db_now - datetime.timedelta(seconds=grace)
        rows = conn.execute(
            select(trials.c.trial_id, beats.c.trial_id.is_not(None))
            .outerjoin(beats, beats.c.trial_id == trials.c.trial_id)
            .where(trials.c.study_id == optuna_adapter.study_id(study),
                   trials.c.state == TrialState.RUNNING,
                   or_(and_(beats.c.trial_id.is_(None), trials.c.datetime_start < start_cutoff),
                       beats.c.heartbeat < db_cutoff))
        ).all()
    return [(int(tid), bool(beat)) for tid, beat in rows]


def fail_stale_trials(study: optuna.Study, cfg: StudyConfig,
                      link: DatabaseLink | None = None) -> list[int]:
    """Fail the study's stale trials with their reason and re-queue them; their numbers.

    Call it under :func:`kdtune.study.budget.budget_lock`. Does nothing until the database
    has been back long enough for live workers to have beaten again (:func:`may_judge`).
    """
    if not may_judge(study, cfg, link):
        return []
    grace = grace_period(cfg)
    failed = []
    for tid, had_beat in stale_trial_ids(study, grace):
        why = (f"{STALE_PREFIX} no heartbeat for {grace} s (its worker died or lost the "
               "database)" if had_beat else
               f"{STALE_PREFIX} no heartbeat within {grace} s of its start (its worker died "
               "before its first beat)")
        if not optuna_adapter.fail_running_trial(study, tid, {FAIL_REASON: why}):
            continue
        trial = optuna_adapter.get_trial(study, tid)
        requeued = requeue(study, trial, cfg.max_retries)
        _log.warning("trial %d failed as stale (%s)%s", trial.number, why.split(": ", 1)[1],
                     "; re-queued" if requeued else "; no retries left")
        failed.append(trial.number)
    return failed


def fail_heartbeatless_trials(study: optuna.Study, grace_period: int) -> None:
    """Fail (and re-queue) RUNNING trials stale for ``grace_period`` s, without waiting
    for the database to settle (benchmarks time this step; workers use
    :func:`fail_stale_trials`)."""
    for tid, _ in stale_trial_ids(study, grace_period):
        if optuna_adapter.fail_running_trial(
                study, tid, {FAIL_REASON: f"{STALE_PREFIX} no heartbeat for {grace_period} s"}):
            trial = optuna_adapter.get_trial(study, tid)
            callback = optuna_adapter.stale_trial_callback(study)
            if callback is not None:
                callback(study, trial)


__all__ = ["STALE_PREFIX", "fail_heartbeatless_trials", "fail_stale_trials", "grace_period",
           "may_judge", "server_uptime", "settle_time", "stale_trial_ids"]
