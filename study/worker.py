"""A worker: one process, one trial at a time, pulling trials from a shared study.

Started as ``kdtune worker --study NAME`` on any machine that reaches the storage (by ``kdtune run``
for local workers, by compose or Kubernetes elsewhere), or in-process with :func:`run_worker`
(:func:`next_trial`: the next trial, under the budget lock). It runs the distillation objective of
:mod:`kdtune.objectives.search.trial` (given the worker's thread count) or, for benchmarks and
tests, a ``--objective module:function`` factory (StudyConfig -> ``trial -> values``).

Why: docs/design.md, "Worker guarantees".
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import time
import zlib
from collections.abc import Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from kdtune.attrs import PRUNE_REASON
from kdtune.errors import KdtuneError, StorageError, UsageError
from kdtune.storage import optuna_adapter
from kdtune.storage.link import DatabaseLink

from .budget import budget_counts_db, budget_lock, epochs_trained_db
from .config import StudyConfig
from .local import population_warning
from .outcome import (
    STOPPED_PREFIX,
    StudyStopped,
    check_hopeless,
    error_reason,
    retryable,
    stop_reason,
    tell_complete,
    tell_failed,
)
from .service import open_study
from .signals import debugging
from .stale import fail_heartbeatless_trials, fail_stale_trials

Objective = Callable[[optuna.Trial], "list[float] | float"]
_log = logging.getLogger("kdtune.worker")
DB_WAIT_SECONDS = 300.0
"""How long a worker waits for an unavailable database before giving up, by default."""
"""Seconds a worker waits for an unavailable database before it gives up (default 300)."""


class WorkerInterrupted(BaseException):
    """Raised inside a running trial when the worker receives SIGINT or SIGTERM."""


def load_objective(cfg: StudyConfig, objective: Objective | str | None = None,
                   threads: int | None = None) -> Objective:
    """The objective a worker runs on ``cfg``'s trials.

    Args:
        cfg: the study's config.
        objective: None for kdtune's distillation objective
            (:func:`kdtune.objectives.search.trial.make_objective`); a callable ``trial -> values``
            used as it is; or ``"module:function"`` naming a factory that is called with
            ``cfg`` and returns one (tests and benchmarks).
        threads: CPU threads for training (None: the objective's default).

    Raises:
        UsageError: ``objective`` is not ``module:function`` or names nothing importable.
    """
    if callable(objective):
        return objective
    if objective is None:
        from kdtune.objectives.search.trial import make_objective

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
    db_wait: float | None = None,
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
        db_wait: seconds to wait for an unavailable database before giving up (default:
            :data:`DB_WAIT_SECONDS`; ``kdtune worker --db-wait``).

    Raises:
        StudyNotFound: no such study.
        StudyStopped: the study stopped itself (its first trials failed with one error).
        StorageError: the database stayed unavailable for ``db_wait`` seconds.
        UsageError: ``objective``, ``threads`` or ``db_wait`` is not usable.
    """
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be 1 or more, got {threads}")
    if db_wait is not None and db_wait <= 0:
        raise UsageError(f"db_wait must be a positive number of seconds, got {db_wait}")
    if index is None:
        index = default_worker_index()
    label = f"kdtune worker {index}"
    link = DatabaseLink(label, db_wait if db_wait is not None else DB_WAIT_SECONDS,
                        max_delay=2.0)
    study, cfg = link.call(
        lambda: open_study(study_name, storage, heartbeat=True, worker_index=index),
        "open the study")
    optuna_adapter.route_storage_calls(study, link)
    running = link.call(lambda: budget_counts_db(study)["running"], "count running trials")
    if (small := population_warning(cfg, running + 1)) is not None:  # seen from here
        _log.warning("%s: %s", label, small)
    run_trial = load_objective(cfg, objective, threads)
    poll = poll_interval if poll_interval is not None else min(cfg.heartbeat_interval, 2)

    ran = {"complete": 0, "pruned": 0, "failed": 0, "requeued": 0, "dropped": 0}
    with _Signals() as sig:
        while not sig.stop:
            trial = link.call(lambda: next_trial(study, cfg, link), "ask for a trial")
            if trial == "done":
                break
            if trial is None:
                time.sleep(poll)
                continue
            if sig.stop:  # a signal arrived while asking
                _count(ran, tell_failed(study, trial, f"{STOPPED_PREFIX} {sig.signal_name}",
                                        cfg, True, link, label))
                break
            outcome = _run_one(study, trial, run_trial, cfg, link, label, sig)
            if outcome in ("complete", "pruned", "dropped"):
                ran[outcome] += 1
            else:
                _count(ran, outcome)
            if sig.stop:
                break
            if outcome in ("failed", "requeued"):
                why = link.call(lambda: check_hopeless(study, cfg), "check the failures")
                if why:
                    raise StudyStopped(why)
    return {"worker": index, **ran, "stopped_by_signal": sig.stop}


def _count(ran: dict, outcome: str) -> None:
    if outcome in ("failed", "requeued"):
        ran["failed"] += 1
        ran["requeued"] += outcome == "requeued"


def _run_one(study, trial, run_trial, cfg, link, label, sig) -> str:
    """Run one trial with heartbeats and record how it ended; returns the outcome."""
    with optuna_adapter.heartbeat(study, trial, link):
        try:
            sig.in_trial = True
            values = run_trial(trial)
            sig.in_trial = False
        except WorkerInterrupted as e:
            sig.in_trial = False
            return tell_failed(study, trial, f"{STOPPED_PREFIX} {e}", cfg, True, link, label)
        except optuna.TrialPruned as e:
            sig.in_trial = False
            try:
                if link.call(lambda: _still_running(study, trial), "read a trial"):
                    trial.set_user_attr(PRUNE_REASON, str(e) or "pruned")
                    link.call(lambda: study.tell(trial, state=TrialState.PRUNED,
                                                 skip_if_finished=True), "tell")
            except UpdateFinishedTrialError:
                pass  # failed as stale meanwhile: it was re-queued
            return "pruned"
        except UpdateFinishedTrialError:
            sig.in_trial = False  # the objective wrote to a trial failed as stale meanwhile
            _log.warning("%s: trial %d was failed as stale by another worker while it ran; "
                         "moving on", label, trial.number)
            return "dropped"
        except Exception as e:
            sig.in_trial = False
            if isinstance(e, StorageError) and link.down:
                raise  # the database stayed away for db_wait seconds: this worker gives up
            retry = retryable(e)
            if isinstance(e, KdtuneError):
                _log.warning("%s: trial %d failed: %s", label, trial.number, error_reason(e))
            elif debugging():
                _log.exception("%s: trial %d raised", label, trial.number)
            else:
                _log.warning("%s: trial %d failed: %s (kdtune --debug shows the traceback)",
                             label, trial.number, error_reason(e))
            return tell_failed(study, trial, error_reason(e), cfg, retry, link, label)
        return tell_complete(study, trial, values, link, label)  # still beating meanwhile


def _still_running(study, trial) -> bool:
    return optuna_adapter.frozen_trial(study, trial).state == TrialState.RUNNING


def next_trial(study: optuna.Study, cfg: StudyConfig, link: DatabaseLink | None = None):
    """Under the budget lock: fail stale trials, then ask for a trial if the budget allows.

    Returns a Trial, None (others hold the remaining slots: wait and look again) or "done".

    Raises:
        StudyStopped: the study stopped itself.
    """
    why = stop_reason(study)
    if why:
        raise StudyStopped(why)
    with budget_lock(study):
        fail_stale_trials(study, cfg, link)
        counts = budget_counts_db(study)
        if counts["finished"] >= cfg.n_trials:
            return "done"
        if (cfg.epoch_budget is not None and counts["waiting"] == 0
                and epochs_trained_db(study) >= cfg.epoch_budget):
            return "done"  # the compute budget is spent (re-queued trials still run)
        if counts["used"] >= cfg.n_trials and counts["waiting"] == 0:
            return None
        return study.ask()


__all__ = ["DB_WAIT_SECONDS", "WorkerInterrupted", "default_worker_index",
           "fail_heartbeatless_trials", "load_objective", "next_trial", "run_worker"]
