"""A study's trial budget: what counts against it, and the lock that keeps it exact.

* :func:`budget_counts` / :func:`budget_counts_db`: trials by state and how many count
  against ``n_trials`` (from loaded trials, or counted in SQL on the workers' hot path).
* :func:`budget_lock`: the study-wide lock a worker holds while it checks the budget and
  asks for a trial, so two workers never both take the last slot.
* :func:`requeue`: a WAITING copy of a failed trial, recorded as its retry.
* :func:`study_state` and :func:`pace`: where a study stands (open, running, done, stopped),
  how long it has run and, at its pace so far, how long it has left.

A FAIL trial that was re-queued no longer counts (its retry does); a FAIL trial that will
not be retried counts as finished.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import random
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.attrs import EPOCHS_TRAINED, FAILED_TRIAL, REPEAT_OF, REPEAT_SEED, RETRY_HISTORY
from kdtune.fileio import file_lock
from kdtune.storage import database_errors, optuna_adapter


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of FAIL trials that have been re-queued (they no longer count)."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get(RETRY_HISTORY, []))
    return out


def _counts(complete: int, pruned: int, failed: int, final_fail: int, running: int,
            waiting: int) -> dict[str, int]:
    finished = complete + pruned + final_fail
    return {"complete": complete, "pruned": pruned, "failed": failed,
            "failed_final": final_fail, "running": running, "waiting": waiting,
            "finished": finished, "used": finished + running + waiting}


def budget_counts(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state, and how many count against the budget.

    ``finished``: COMPLETE, PRUNED, and FAIL trials that will not be retried.
    ``used``: finished + RUNNING + WAITING (a re-queued trial waits for a worker).
    """
    retried = retried_numbers(trials)
    states = Counter(t.state for t in trials)
    final_fail = sum(1 for t in trials if t.state == TrialState.FAIL and t.number not in retried)
    return _counts(states[TrialState.COMPLETE], states[TrialState.PRUNED],
                   states[TrialState.FAIL], final_fail, states[TrialState.RUNNING],
                   states[TrialState.WAITING])


def budget_counts_db(study: optuna.Study) -> dict[str, int]:
    """:func:`budget_counts` for ``study``, counted by the database (the workers' hot path).

    Loading every trial to count them made each ask grow with the study (41 ms at 0 trials,
    87 ms at 10,000 on PostgreSQL, bench/RESULTS-storage.md); SQL counts keep kdtune's part
    of an ask nearly flat.
    """
    from sqlalchemy import func, select

    trials = optuna_adapter.trials_table()
    attrs = optuna_adapter.trial_system_attrs_table()
    sid = optuna_adapter.study_id(study)
    with database_errors("counting trials"), optuna_adapter.rdb_engine(study).connect() as conn:
        states = dict(conn.execute(
            select(trials.c.state, func.count())
            .where(trials.c.study_id == sid)
            .group_by(trials.c.state)
        ).all())
        failed = states.get(TrialState.FAIL, 0)
        final_fail = failed
        if failed:
            fail_numbers = set(conn.execute(
                select(trials.c.number)
                .where(trials.c.study_id == sid, trials.c.state == TrialState.FAIL)
            ).scalars())
            retried: set[int] = set()
            for value in conn.execute(
                select(attrs.c.value_json)
                .join(trials, attrs.c.trial_id == trials.c.trial_id)
                .where(trials.c.study_id == sid, attrs.c.key == RETRY_HISTORY)
            ).scalars():
                retried.update(json.loads(value))
            final_fail = len(fail_numbers - retried)
    return _counts(states.get(TrialState.COMPLETE, 0), states.get(TrialState.PRUNED, 0),
                   failed, final_fail, states.get(TrialState.RUNNING, 0),
                   states.get(TrialState.WAITING, 0))


def epochs_trained_db(study: optuna.Study) -> int:
    """Epochs trained by all of ``study``'s trials so far (their
    :data:`~kdtune.attrs.EPOCHS_TRAINED`, running trials included), summed from the database:
    the compute that a study's ``epoch_budget`` counts."""
    from sqlalchemy import select

    trials = optuna_adapter.trials_table()
    attrs = optuna_adapter.trial_user_attrs_table()
    sid = optuna_adapter.study_id(study)
    with database_errors("counting epochs"), optuna_adapter.rdb_engine(study).connect() as conn:
        values = conn.execute(
            select(attrs.c.value_json)
            .join(trials, attrs.c.trial_id == trials.c.trial_id)
            .where(trials.c.study_id == sid, attrs.c.key == EPOCHS_TRAINED)
        ).scalars()
        return sum(int(json.loads(v)) for v in values)


@contextlib.contextmanager
def budget_lock(study: optuna.Study) -> Iterator[None]:
    """A lock shared by every worker of ``study``, held while checking the budget and asking.

    PostgreSQL: a transaction-scoped advisory lock (``pg_try_advisory_xact_lock``, retried
    with backoff) keyed by the study name, in a transaction held open on a dedicated
    connection while the block runs; correct behind PgBouncer in transaction pooling. SQLite:
    :func:`kdtune.fileio.file_lock` on ``<database>.kdtune-lock``.
    """
    engine = optuna_adapter.rdb_engine(study)
    if engine.dialect.name != "postgresql":
        with file_lock(Path(f"{engine.url.database or 'memory'}.kdtune-lock")):
            yield
        return
    from sqlalchemy import text

    key = zlib.crc32(f"kdtune:{study.study_name}".encode())
    # Transaction-scoped: the lock lives exactly as long as this transaction, which stays
    # open (on one server connection, also behind PgBouncer in transaction pooling) until
    # the block ends; commit or rollback releases it. A session-level lock/unlock pair
    # could land on two different server connections behind a pooler. Waiting is a loop of
    # short try-lock transactions, not a blocking lock: a waiter blocked inside a
    # transaction would hold one of the pooler's few server connections, and with enough
    # waiters the holder could not get one for its own work (deadlock).
    with engine.connect() as conn:
        delay = 0.005
        while True:
            tx = conn.begin()
            if conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar():
                break
            tx.rollback()
            time.sleep(delay * (1 + random.random()))
            delay = min(2 * delay, 0.2)
        try:
            yield
        finally:
            tx.commit()


def requeue(study: optuna.Study, trial: FrozenTrial, max_retries: int) -> bool:
    """Add a WAITING copy of a failed trial (same parameters, and the repeat marks of a
    ``kdtune rescore`` repeat) unless it ran out of retries.

    Records :data:`~kdtune.attrs.FAILED_TRIAL` (the first attempt) and
    :data:`~kdtune.attrs.RETRY_HISTORY` in the copy's system attributes, as Optuna's
    stale-trial retry callback does, so both kinds of retry count the same way.
    """
    history = list(trial.system_attrs.get(RETRY_HISTORY, [])) + [trial.number]
    if len(history) > max_retries:
        return False
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            # a rescore repeat stays a repeat on its seed (kdtune.study.rescore)
            user_attrs={k: trial.user_attrs[k] for k in (REPEAT_OF, REPEAT_SEED)
                        if k in trial.user_attrs},
            system_attrs={FAILED_TRIAL: history[0], RETRY_HISTORY: history},
        )
    )
    return True


def study_state(counts: dict[str, int], budget: int | None, stopped: bool) -> str:
    """``stopped`` (it stopped itself), ``running`` (a trial is running), ``done`` (its
    budget is spent), else ``open`` (workers may join it)."""
    if stopped:
        return "stopped"
    if counts["running"]:
        return "running"
    if budget is not None and counts["finished"] >= budget:
        return "done"
    return "open"


def pace(trials: list[FrozenTrial], counts: dict[str, int], budget: int | None,
         now: datetime.datetime | None = None) -> dict[str, float | None]:
    """``elapsed_s``: from the first trial's start to now while a trial runs, else to the last
    trial's end; ``eta_s``: the budget left at the pace so far (finished trials per elapsed
    second, all workers together), ``None`` while nothing finished or when it is spent."""
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    if not starts:
        return {"elapsed_s": None, "eta_s": None}
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    if counts["running"] or not ends:
        end = now or datetime.datetime.now(tz=min(starts).tzinfo)
    else:
        end = max(ends)
    elapsed = max(0.0, (end - min(starts)).total_seconds())
    left = None if budget is None else budget - counts["finished"]
    eta = (elapsed / counts["finished"] * left
           if counts["finished"] and left is not None and left > 0 else None)
    return {"elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta, 1)}


__all__ = ["budget_counts", "budget_counts_db", "budget_lock", "pace", "requeue",
           "retried_numbers", "study_state"]
