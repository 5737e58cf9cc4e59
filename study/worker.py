"""A worker: one process, one trial at a time, pulling trials from a shared study.

Started as ``kdtune worker --study NAME`` on any machine that reaches the storage (by
``kdtune run`` for local workers, by compose or Kubernetes elsewhere), or in-process with
:func:`run_worker`.

Guarantees (each tested in tests/test_worker.py):

* **Exact global budget.** A worker asks for a trial only while ``finished + running +
  waiting < n_trials``; that check and ``study.ask()`` happen under a study-wide lock
  (:func:`kdtune.study.budget.budget_lock`: a PostgreSQL advisory lock, or a file lock next
  to a SQLite file), so two workers can never both take the last slot.
* **Dead workers' trials come back.** Each running trial sends heartbeats; a trial whose
  worker died (even by SIGKILL) goes stale after the grace period, another worker marks it
  FAIL and re-queues it (same parameters) as a WAITING trial.
* **A trial that raised is re-queued** up to ``max_retries`` times; an error whose
  ``retryable`` attribute is False (a diverged, NaN/inf loss) fails with its reason and is
  not retried (it would diverge again).
* **SIGINT/SIGTERM** end the current trial cleanly: it is marked FAIL with the reason and
  re-queued, never left RUNNING.
* **Database restarts** are survived: storage calls are retried with back-off
  (:func:`kdtune.storage.with_retries`; ``pool_pre_ping`` replaces dead connections).

Which objective runs: the distillation objective of :mod:`kdtune.objectives.trial`, given
the worker's thread count; or, for benchmarks and tests, the ``objective`` argument
(``kdtune worker --objective module:function``, a factory called with the StudyConfig
and returning ``trial -> values``).
"""

from __future__ import annotations

import copy
import datetime
import importlib
import logging
import os
import signal
import time
import zlib
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from kdtune.attrs import FAIL_REASON, PRUNE_REASON
from kdtune.errors import UsageError
from kdtune.storage import optuna_adapter, with_retries

from .budget import budget_counts_db, budget_lock, requeue
from .config import StudyConfig
from .service import open_study

Objective = Callable[[optuna.Trial], "list[float] | float"]
_log = logging.getLogger("kdtune.worker")


class WorkerInterrupted(BaseException):
    """Raised inside a running trial when the worker receives SIGINT or SIGTERM."""


def load_objective(cfg: StudyConfig, objective: Objective | str | None = None,
                   threads: int | None = None) -> Objective:
    """The objective a worker runs on ``cfg``'s trials.

    Args:
        cfg: the study's config.
        objective: None for kdtune's distillation objective
            (:func:`kdtune.objectives.trial.make_objective`); a callable ``trial -> values``
            used as it is; or ``"module:function"`` naming a factory that is called with
            ``cfg`` and returns one (tests and benchmarks).
        threads: CPU threads for training (None: the objective's default).

    Raises:
        UsageError: ``objective`` is not ``module:function`` or names nothing importable.
    """
    if callable(objective):
        return objective
    if objective is None:
        from kdtune.objectives.trial import make_objective

        return make_objective(cfg.distill, cfg.search, cfg.objectives, threads=threads)
    module, _, name = objective.partition(":")
    if not module or not name:
        raise UsageError(f"--objective {objective!r} is not of the form module:function")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise UsageError(f"--objective {objective!r} cannot be imported: {e}") from e
    return factory(cfg)


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
    objective: Objective | str | None = None,
    poll_interval: float | None = None,
    threads: int | None = None,
) -> dict:
    """Pull trials from ``study_name`` until its budget is finished. Returns a summary.

    Args:
        study_name: an existing kdtune study (``kdtune create`` made it).
        storage: storage spec; None uses $KDTUNE_STORAGE or the embedded server.
        index: worker index, added to the sampler seed (default:
            :func:`default_worker_index`).
        objective: None for the study's distillation objective; else a callable
            ``trial -> values`` or a ``"module:function"`` factory (see
            :func:`load_objective`; tests, benchmarks).
        poll_interval: seconds between budget checks while other workers hold the last
            trials (default: min(heartbeat_interval, 2)).
        threads: CPU threads the distillation objective trains with (None: its default).

    Raises:
        StudyNotFound: no such study.
        StorageError: the storage stayed unreachable through every retry.
        UsageError: ``objective`` or ``threads`` is not usable.
    """
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be 1 or more, got {threads}")
    if index is None:
        index = default_worker_index()
    study, cfg = with_retries(
        lambda: open_study(study_name, storage, heartbeat=True, worker_index=index), "open study"
    )
    run_trial = load_objective(cfg, objective, threads)
    poll = poll_interval if poll_interval is not None else min(cfg.heartbeat_interval, 2)

    ran = {"complete": 0, "pruned": 0, "failed": 0, "requeued": 0}
    with _Signals() as sig:
        while not sig.stop:
            trial = with_retries(lambda: next_trial(study, cfg), "ask for a trial")
            if trial == "done":
                break
            if trial is None:
                time.sleep(poll)
                continue
            if sig.stop:  # a signal arrived while asking
                _fail(study, trial, f"worker stopped by {sig.signal_name}", cfg, ran, retry=True)
                break
            with optuna_adapter.heartbeat(study, trial):
                try:
                    sig.in_trial = True
                    values = run_trial(trial)
                    sig.in_trial = False
                except WorkerInterrupted as e:
                    sig.in_trial = False
                    _fail(study, trial, f"worker stopped by {e}", cfg, ran, retry=True)
                    break
                except optuna.TrialPruned as e:
                    sig.in_trial = False
                    trial.set_user_attr(PRUNE_REASON, str(e) or "pruned")
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


def next_trial(study: optuna.Study, cfg: StudyConfig):
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
    from sqlalchemy import select

    trials = optuna_adapter.trials_table()
    beats = optuna_adapter.trial_heartbeats_table()
    now_utc = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # as Optuna stores it
    cutoff = now_utc - datetime.timedelta(seconds=grace_period)
    with optuna_adapter.rdb_engine(study).connect() as conn:
        ids = conn.execute(
            select(trials.c.trial_id)
            .outerjoin(beats, beats.c.trial_id == trials.c.trial_id)
            .where(trials.c.study_id == optuna_adapter.study_id(study),
                   trials.c.state == TrialState.RUNNING,
                   beats.c.trial_id.is_(None),
                   trials.c.datetime_start < cutoff)
        ).scalars().all()
    callback = optuna_adapter.stale_trial_callback(study)
    for trial_id in ids:
        try:
            if not optuna_adapter.fail_trial(study, trial_id):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        _log.warning("trial id %d never sent a heartbeat; failed it", trial_id)
        if callback is not None:
            callback(study, copy.deepcopy(optuna_adapter.get_trial(study, trial_id)))


def _fail(study, trial, reason: str, cfg: StudyConfig, ran: dict, retry: bool) -> None:
    """Mark ``trial`` FAIL with ``reason``; re-queue it (under the lock) when allowed."""

    def tell_and_requeue() -> None:
        with budget_lock(study):
            trial.set_user_attr(FAIL_REASON, reason[:500])
            study.tell(trial, state=TrialState.FAIL)
            if retry:
                frozen = optuna_adapter.frozen_trial(study, trial)
                ran["requeued"] += int(requeue(study, frozen, cfg.max_retries))

    with_retries(tell_and_requeue, "record a failed trial")
    ran["failed"] += 1
