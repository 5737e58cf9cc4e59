"""What a worker records when a trial ends, and when a study stops itself.

* :func:`tell_complete`: a finished trial's values (never raises for a trial no longer RUNNING).
* :func:`tell_failed`: FAIL with the reason, re-queued when retrying can help (:func:`retryable`); a
  trial already failed by another worker is left as it is.
* :func:`check_hopeless`: stops a study whose first ``stop_after_failures`` trials all failed with
  the same error; every worker exits with :class:`StudyStopped`.

Why: docs/design.md, "Late results of stale trials", "Hopeless studies stop".
"""

from __future__ import annotations

import logging

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from kdtune.attrs import FAIL_REASON, RETRY_HISTORY, STUDY_STOPPED
from kdtune.errors import KdtuneError, UsageError
from kdtune.storage import optuna_adapter
from kdtune.storage.link import DatabaseLink

from .budget import budget_counts_db, budget_lock, requeue
from .config import StudyConfig
from .stale import STALE_PREFIX

STOPPED_PREFIX = "worker stopped by"
"""How the fail reason of a trial ended by a signal begins."""
_log = logging.getLogger("kdtune.worker")


class StudyStopped(KdtuneError):
    """The study stopped itself: its trials keep failing with the same error. Exit code 1."""


def retryable(e: BaseException) -> bool:
    """Whether another attempt at the same parameters may succeed.

    Not for a usage, config or data error (kdtune.errors.UsageError and its kinds), nor for
    an error whose ``retryable`` attribute is False (a diverged, NaN/inf loss).
    """
    return not isinstance(e, UsageError) and bool(getattr(e, "retryable", True))


def error_reason(e: BaseException) -> str:
    """A trial's fail reason for exception ``e``: its type and first line, at most 500 chars."""
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}"[:500]


def _state(study: optuna.Study, trial: optuna.Trial) -> TrialState:
    return optuna_adapter.frozen_trial(study, trial).state


def tell_complete(study: optuna.Study, trial: optuna.Trial, values, link: DatabaseLink,
                  label: str) -> str:
    """Record ``values`` for ``trial``, or on its retry if it was failed as stale meanwhile.

    Returns "complete" (recorded on the trial or on its retry), "dropped" (failed as stale
    and no retry left to take the result) or "failed" (Optuna refused the values, e.g. NaN).
    """
    def tell() -> FrozenTrial | None:
        try:  # Optuna reads the trial back after its write and returns it: no second read
            return study.tell(trial, values, skip_if_finished=True)
        except UpdateFinishedTrialError:  # failed between Optuna's check and its write
            return None

    stored = (link.call(tell, "tell")
              or link.call(lambda: optuna_adapter.frozen_trial(study, trial), "read a trial"))
    if stored.state == TrialState.COMPLETE:
        return "complete"
    if not str(stored.user_attrs.get(FAIL_REASON, "")).startswith(STALE_PREFIX):
        return "failed"
    retry = link.call(lambda: _claim_retry(study, trial), "claim a trial's retry")
    if retry is None:
        _log.warning("%s: trial %d was failed as stale while it ran and its retry is taken "
                     "or spent; its result is dropped", label, trial.number)
        return "dropped"
    for key, value in stored.user_attrs.items():
        if key != FAIL_REASON:
            link.call(lambda k=key, v=value: optuna_adapter.set_trial_user_attr(
                study, retry[1], k, v), "copy a result")
    link.call(lambda: study.tell(retry[0], values), "tell")
    _log.warning("%s: trial %d was failed as stale while it ran; its result is recorded on "
                 "its retry, trial %d", label, trial.number, retry[0])
    return "complete"


def _claim_retry(study: optuna.Study, trial: optuna.Trial) -> tuple[int, int] | None:
    """Under the budget lock (the stale check re-queues under it too): make the WAITING
    retry of ``trial`` RUNNING for this worker. Returns its (number, id), or None."""
    with budget_lock(study):
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            history = t.system_attrs.get(RETRY_HISTORY, [])
            if history and history[-1] == trial.number:
                tid = optuna_adapter.trial_id(t)
                if optuna_adapter.claim_waiting_trial(study, tid):
                    return t.number, tid
    return None


def tell_failed(study: optuna.Study, trial: optuna.Trial, reason: str, cfg: StudyConfig,
                retry: bool, link: DatabaseLink, label: str) -> str:
    """Mark ``trial`` FAIL with ``reason`` and re-queue it (under the lock) when ``retry``.

    Returns "requeued", "failed" or "gone" (another worker had already failed it as stale:
    nothing is written, it was re-queued then).
    """
    def fail() -> str:
        with budget_lock(study):
            if _state(study, trial) != TrialState.RUNNING:
                return "gone"
            trial.set_user_attr(FAIL_REASON, reason[:500])
            try:
                study.tell(trial, state=TrialState.FAIL)
            except UpdateFinishedTrialError:
                return "gone"
            if retry and requeue(study, optuna_adapter.frozen_trial(study, trial),
                                 cfg.max_retries):
                return "requeued"
            return "failed"

    outcome = link.call(fail, "record a failed trial")
    if outcome == "gone":
        _log.warning("%s: trial %d was already failed as stale by another worker; moving on",
                     label, trial.number)
    return outcome


def stop_reason(study: optuna.Study) -> str | None:
    """The reason the study stopped itself, or None while it runs."""
    import json

    from sqlalchemy import select

    table = optuna_adapter.study_user_attrs_table()
    with optuna_adapter.rdb_engine(study).connect() as conn:
        value = conn.execute(select(table.c.value_json).where(
            table.c.study_id == optuna_adapter.study_id(study),
            table.c.key == STUDY_STOPPED)).scalar()
    return None if value is None else json.loads(value)


def check_hopeless(study: optuna.Study, cfg: StudyConfig) -> str | None:
    """Stop the study when its first ``stop_after_failures`` trials failed with one error.

    Only failures the objective raised count (not stale trials nor signals), and only while
    no trial has completed or been pruned. Returns the stop reason (also stored as the
    study attribute :data:`~kdtune.attrs.STUDY_STOPPED`), or None.
    """
    k = cfg.stop_after_failures
    if not k:
        return None
    with budget_lock(study):
        counts = budget_counts_db(study)
        if counts["complete"] or counts["pruned"] or counts["failed"] < k:
            return None
        failed = sorted(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)),
                        key=lambda t: t.number)
        reasons = [r for t in failed if (r := t.user_attrs.get(FAIL_REASON))
                   and not r.startswith((STALE_PREFIX, STOPPED_PREFIX))][:k]
        if len(reasons) < k or len(set(reasons)) != 1:
            return None
        why = (f"study {study.study_name!r} stopped: its first {k} trials all failed with "
               f"{reasons[0]}")
        if stop_reason(study) is None:
            study.set_user_attr(STUDY_STOPPED, why)
    return why


__all__ = ["STOPPED_PREFIX", "StudyStopped", "check_hopeless", "error_reason", "retryable",
           "stop_reason", "tell_complete", "tell_failed"]
