"""A worker: one process, one trial at a time, pulling trials from a shared study.

Guarantees (each tested in tests/test_worker.py):

* **Exact global budget.** A worker asks for a trial only while ``finished + running +
  waiting < n_trials``; that check and ``study.ask()`` happen under a study-wide lock (a
  PostgreSQL advisory lock, or a file lock next to a SQLite file), so two workers can never
  both take the last slot.
* **Dead workers' trials come back.** Each running trial sends heartbeats; a trial whose
  worker died (even by SIGKILL) goes stale after the grace period, another worker marks it
  FAIL and re-queues it (same parameters) as a WAITING trial.
* **A trial that raised is re-queued** up to ``max_retries`` times; an error whose
  ``retryable`` attribute is False (a diverged, NaN/inf loss) fails with its reason and is
  not retried (it would diverge again).
* **SIGINT/SIGTERM** end the current trial cleanly: it is marked FAIL with the reason and
  re-queued, never left RUNNING.
* **Database restarts** are survived: storage calls are retried with back-off
  (``pool_pre_ping`` replaces dead connections).

Which objective runs: the distillation objective of :mod:`objectives.trial`, or, for
benchmarks and tests, the factory named by ``$KDTUNE_OBJECTIVE`` (``module:function``,
called with the StudyConfig and returning ``trial -> values``).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import fcntl
import importlib
import logging
import os
import signal
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.storage.factory import rdb_engine

from .config import StudyConfig
from .service import budget_counts_db, open_study

_log = logging.getLogger("kdtune.worker")
FAIL_REASON_ATTR = "fail_reason"


class WorkerInterrupted(BaseException):
    """Raised inside a running trial when the worker receives SIGINT or SIGTERM."""


# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def budget_lock(study: optuna.Study) -> Iterator[None]:
    """A lock shared by every worker of ``study``, held while checking the budget and asking.

    PostgreSQL: a session-level advisory lock keyed by the study name, on a dedicated
    connection. SQLite: an exclusive ``fcntl`` lock on ``<database>.kdtune-lock``.
    """
    engine = rdb_engine(study._storage)
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        key = zlib.crc32(f"kdtune:{study.study_name}".encode())
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
    else:
        db = engine.url.database or "memory"
        lock_path = Path(f"{db}.kdtune-lock")
        with open(lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def requeue(study: optuna.Study, trial: FrozenTrial, max_retries: int) -> bool:
    """Add a WAITING copy of a failed trial (same parameters) unless it ran out of retries.

    Records ``failed_trial`` (the first attempt) and ``retry_history`` in the copy's system
    attributes, as :class:`optuna.storages.RetryFailedTrialCallback` does, so both kinds of
    retry count the same way.
    """
    history = list(trial.system_attrs.get("retry_history", [])) + [trial.number]
    if len(history) > max_retries:
        return False
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs={"failed_trial": history[0], "retry_history": history},
        )
    )
    return True


def with_retries(fn: Callable, what: str, attempts: int = 8, delay: float = 0.5):
    """Call ``fn`` again after a database error (e.g. PostgreSQL restarting), with back-off."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import DBAPIError, OperationalError

    for i in range(attempts):
        try:
            return fn()
        except (OperationalError, DBAPIError, StorageInternalError) as e:
            if i == attempts - 1:
                raise
            _log.warning("%s failed (%s); retrying in %.1fs", what, str(e).splitlines()[0],
                         delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    return None  # pragma: no cover


def load_objective(cfg: StudyConfig) -> Callable[[optuna.Trial], list[float] | float]:
    """The objective for ``cfg``: kdtune's distillation objective, or $KDTUNE_OBJECTIVE."""
    spec = os.environ.get("KDTUNE_OBJECTIVE")
    if spec:
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)(cfg)
    from kdtune.objectives.trial import make_objective

    return make_objective(cfg.distill, cfg.search, cfg.objectives)


# ---------------------------------------------------------------------------------------


class _Signals:
    """SIGINT/SIGTERM: raise WorkerInterrupted inside a trial, else just ask the loop to stop."""

    def __init__(self) -> None:
        self.stop = False
        self.in_trial = False
        self.signal_name = ""

    def __enter__(self) -> _Signals:
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    def _handle(self, signum, frame) -> None:
        self.stop = True
        self.signal_name = signal.Signals(signum).name
        if self.in_trial:
            raise WorkerInterrupted(self.signal_name)


def default_worker_index() -> int:
    """$JOB_COMPLETION_INDEX (Kubernetes indexed Jobs), else a hash of host name and pid.

    Containers all run as pid 1, so the pid alone would give every compose replica the
    same sampler seed.
    """
    if "JOB_COMPLETION_INDEX" in os.environ:
        return int(os.environ["JOB_COMPLETION_INDEX"])
    import socket

    return zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 100_000


def run_worker(
    study_name: str,
    storage: str | None = None,
    index: int | None = None,
    objective: Callable[[optuna.Trial], list[float] | float] | None = None,
    poll_interval: float | None = None,
) -> dict:
    """Pull trials from ``study_name`` until its budget is finished. Returns a summary.

    Args:
        study_name: an existing kdtune study (``kdtune create`` made it).
        storage: storage spec; None uses $KDTUNE_STORAGE or the embedded server.
        index: worker index, added to the sampler seed (default:
            :func:`default_worker_index`).
        objective: overrides the study's objective (tests, benchmarks).
        poll_interval: seconds between budget checks while other workers hold the last
            trials (default: min(heartbeat_interval, 2)).
    """
    if index is None:
        index = default_worker_index()
    study, cfg = with_retries(
        lambda: open_study(study_name, storage, heartbeat=True, worker_index=index), "open study"
    )
    objective = objective or load_objective(cfg)
    poll = poll_interval if poll_interval is not None else min(cfg.heartbeat_interval, 2)
    from optuna.storages._heartbeat import get_heartbeat_thread  # the thread optimize() uses

    ran = {"complete": 0, "pruned": 0, "failed": 0, "requeued": 0}
    with _Signals() as sig:
        while not sig.stop:
            trial = with_retries(lambda: _next_trial(study, cfg), "ask for a trial")
            if trial == "done":
                break
            if trial is None:
                time.sleep(poll)
                continue
            if sig.stop:  # a signal arrived while asking
                _fail(study, trial, f"worker stopped by {sig.signal_name}", cfg, ran, retry=True)
                break
            with get_heartbeat_thread(trial._trial_id, study._storage):
                try:
                    sig.in_trial = True
                    values = objective(trial)
                    sig.in_trial = False
                except WorkerInterrupted as e:
                    sig.in_trial = False
                    _fail(study, trial, f"worker stopped by {e}", cfg, ran, retry=True)
                    break
                except optuna.TrialPruned as e:
                    sig.in_trial = False
                    trial.set_user_attr("prune_reason", str(e) or "pruned")
                    with_retries(lambda t=trial: study.tell(t, state=TrialState.PRUNED), "tell")
                    ran["pruned"] += 1
                    continue
                except Exception as e:
                    # An error may say retrying cannot help (a diverged loss would diverge
                    # again): objectives.distill.Diverged sets ``retryable = False``.
                    sig.in_trial = False
                    retry = getattr(e, "retryable", True)
                    if retry:
                        _log.exception("trial %d raised", trial.number)
                    _fail(study, trial, f"{type(e).__name__}: {e}", cfg, ran, retry=retry)
                    continue
            with_retries(lambda t=trial, v=values: study.tell(t, v), "tell")
            ran["complete"] += 1
    return {"worker": index, **ran, "stopped_by_signal": sig.stop}


def _next_trial(study: optuna.Study, cfg: StudyConfig):
    """Under the budget lock: fail stale trials, then ask for a trial if the budget allows.

    Returns a Trial, None (others hold the remaining slots: wait and look again) or "done".
    """
    with budget_lock(study):
        optuna.storages.fail_stale_trials(study)
        fail_heartbeatless_trials(study, cfg.grace_period or 3 * cfg.heartbeat_interval)
        counts = budget_counts_db(study)
        if counts["finished"] >= cfg.n_trials:
            return "done"
        if counts["used"] >= cfg.n_trials and counts["waiting"] == 0:
            return None
        return study.ask()


def fail_heartbeatless_trials(study: optuna.Study, grace_period: int) -> None:
    """Fail (and re-queue) RUNNING trials that sent no heartbeat within ``grace_period`` s.

    Optuna's stale-trial check skips trials with no heartbeat row, so a worker that died
    between ``study.ask()`` and its first heartbeat (or an ask whose reply was lost to a
    database restart and then retried) would leave a trial RUNNING forever, holding a
    budget slot.
    """
    from optuna.storages._rdb import models
    from sqlalchemy import select

    trials = models.TrialModel.__table__
    beats = models.TrialHeartbeatModel.__table__
    now_utc = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # as Optuna stores it
    cutoff = now_utc - datetime.timedelta(seconds=grace_period)
    with rdb_engine(study._storage).connect() as conn:
        ids = conn.execute(
            select(trials.c.trial_id)
            .outerjoin(beats, beats.c.trial_id == trials.c.trial_id)
            .where(trials.c.study_id == study._study_id,
                   trials.c.state == TrialState.RUNNING,
                   beats.c.trial_id.is_(None),
                   trials.c.datetime_start < cutoff)
        ).scalars().all()
    callback = study._storage.get_heartbeat_stale_trial_callback()
    for trial_id in ids:
        try:
            if not study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        _log.warning("trial id %d never sent a heartbeat; failed it", trial_id)
        if callback is not None:
            callback(study, copy.deepcopy(study._storage.get_trial(trial_id)))


def _fail(study, trial, reason: str, cfg: StudyConfig, ran: dict, retry: bool) -> None:
    """Mark ``trial`` FAIL with ``reason``; re-queue it (under the lock) when allowed."""

    def tell_and_requeue() -> None:
        with budget_lock(study):
            trial.set_user_attr(FAIL_REASON_ATTR, reason[:500])
            study.tell(trial, state=TrialState.FAIL)
            if retry:
                frozen = study._storage.get_trial(trial._trial_id)
                ran["requeued"] += int(requeue(study, frozen, cfg.max_retries))

    with_retries(tell_and_requeue, "record a failed trial")
    ran["failed"] += 1
