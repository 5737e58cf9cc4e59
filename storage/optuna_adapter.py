"""The one module that touches Optuna's private API.

Each thing kdtune needs that Optuna does not publish is wrapped in a small named function: the
SQLAlchemy engine and tables behind an RDB storage (:func:`rdb_engine`, :func:`trials_table`, ...),
database ids (:func:`study_id`, :func:`trial_id`), the heartbeat (:func:`heartbeat`), a trial failed
with its reason in one transaction (:func:`fail_running_trial`), the stale-trial callback
(:func:`stale_trial_callback`). Its multi-objective arithmetic (hypervolume, non-dominated
sort) is in :mod:`kdtune.storage.optuna_pareto`.

Why: docs/design.md, "Optuna's private API in two modules", "kdtune's own heartbeat thread".
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from .heartbeat import HeartbeatThread
from .link import DatabaseLink

StaleTrialCallback = Callable[[optuna.Study, FrozenTrial], None]


# --------------------------------------------------------------------------- studies, trials


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage object a loaded study reads and writes through."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (the ``study_id`` column of the ``trials`` table)."""
    return study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The trial's id in its storage (unlike ``trial.number``, unique across studies)."""
    return trial._trial_id


def get_trial(study: optuna.Study, tid: int) -> FrozenTrial:
    """The stored trial with id ``tid``, as the storage has it now."""
    return study._storage.get_trial(tid)


def frozen_trial(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial:
    """A live trial's stored state (its system attributes included) after a ``tell``."""
    return get_trial(study, trial_id(trial))


def fail_trial(study: optuna.Study, tid: int) -> bool:
    """Mark RUNNING trial ``tid`` FAIL directly in the storage.

    Returns False when another process changed its state first (Optuna's compare-and-set);
    a trial that is already finished raises :class:`optuna.exceptions.UpdateFinishedTrialError`.
    """
    return study._storage.set_trial_state_values(tid, state=TrialState.FAIL)


def claim_waiting_trial(study: optuna.Study, tid: int) -> bool:
    """Make WAITING trial ``tid`` RUNNING; False when another process took it first."""
    return study._storage.set_trial_state_values(tid, state=TrialState.RUNNING)


def set_trial_user_attr(study: optuna.Study, tid: int, key: str, value: Any) -> None:
    """Set a user attribute of the unfinished trial ``tid``."""
    study._storage.set_trial_user_attr(tid, key, value)


def fail_running_trial(study: optuna.Study, tid: int, user_attrs: dict[str, Any]) -> bool:
    """Mark trial ``tid`` FAIL with ``user_attrs``, in one transaction, if it is RUNNING.

    Returns False when it is not RUNNING (its worker told it, or another worker failed it
    first). Unlike :func:`fail_trial`, the attributes (e.g. why it failed) are written
    with the state, so a FAIL trial is never seen without them.
    """
    from sqlalchemy import update

    trials = trials_table()
    with rdb_engine(study).begin() as conn:
        changed = conn.execute(
            update(trials)
            .where(trials.c.trial_id == tid, trials.c.state == TrialState.RUNNING)
            .values(state=TrialState.FAIL, datetime_complete=stored_now())
        ).rowcount
        if not changed:
            return False
        _replace_user_attrs(conn, tid, user_attrs)
    return True


def _replace_user_attrs(conn: Any, tid: int, attrs: dict[str, Any]) -> None:
    """Within the transaction ``conn``, set trial ``tid``'s user attributes ``attrs``:
    one DELETE of those keys and one multi-row INSERT, on any RDB dialect."""
    import json

    from sqlalchemy import delete, insert

    if not attrs:
        return
    table = trial_user_attrs_table()
    conn.execute(delete(table).where(table.c.trial_id == tid, table.c.key.in_(list(attrs))))
    conn.execute(insert(table), [{"trial_id": tid, "key": k, "value_json": json.dumps(v)}
                                 for k, v in attrs.items()])


def set_trial_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """Set several user attributes of a running ``trial`` in one transaction.

    ``trial.set_user_attr`` commits once per key; a trial's ~35 metrics and timings cost as
    many round trips. On an RDB storage this writes them in one transaction
    (:func:`_replace_user_attrs`, as :func:`fail_running_trial` does), through the worker's
    :class:`DatabaseLink` so that an outage waits as any storage call does; on another
    storage, or a :class:`optuna.trial.FixedTrial`, one call per key. Like Optuna, it
    refuses a finished trial (:class:`optuna.exceptions.UpdateFinishedTrialError`). The
    trial object in this process sees the new values at once.
    """
    if not attrs:
        return
    if not isinstance(trial, optuna.Trial):  # optuna.trial.FixedTrial: no storage behind it
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    storage, tid = trial.storage, trial_id(trial)
    try:
        engine = rdb_engine(storage)
    except TypeError:
        for key, value in attrs.items():
            storage.set_trial_user_attr(tid, key, value)
    else:
        def write() -> None:
            from optuna.exceptions import UpdateFinishedTrialError
            from sqlalchemy import select

            trials = trials_table()
            with engine.begin() as conn:
                state = conn.execute(select(trials.c.state).where(trials.c.trial_id == tid)
                                     .with_for_update()).scalar_one()
                if TrialState(state).is_finished():
                    raise UpdateFinishedTrialError(
                        f"trial {tid} is already {TrialState(state).name}: its user "
                        "attributes cannot change")
                _replace_user_attrs(conn, tid, attrs)

        link = getattr(storage, "_kdtune_link", None)
        if link is not None:
            link.call(write, "set trial user attrs")
        else:
            write()
    trial._cached_frozen_trial.user_attrs.update(attrs)


# --------------------------------------------------------------------------- RDB internals


def stored_now() -> Any:
    """Now, as Optuna's trials table stores its datetimes: naive UTC (Optuna >= 5 converts
    the local time to UTC on write and back on read), whatever this host's time zone."""
    import datetime

    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def rdb_engine(storage: BaseStorage | optuna.Study) -> Any:
    """The SQLAlchemy engine behind an Optuna RDB storage (or a study's storage).

    Unwraps Optuna's cache layer (``_CachedStorage._backend``). Raises TypeError naming the
    storage type when it is not an RDB storage.
    """
    if isinstance(storage, optuna.Study):
        storage = study_storage(storage)
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is None:
        raise TypeError(f"{type(storage).__name__} is not an RDB storage; accepted: "
                        "optuna.storages.RDBStorage (PostgreSQL or SQLite)")
    return engine


def trials_table() -> Any:
    """The ``trials`` table (SQLAlchemy Core): trial_id, number, study_id, state, datetimes."""
    from optuna.storages._rdb import models

    return models.TrialModel.__table__


def trial_system_attrs_table() -> Any:
    """The ``trial_system_attributes`` table: trial_id, key, value_json."""
    from optuna.storages._rdb import models

    return models.TrialSystemAttributeModel.__table__


def trial_user_attrs_table() -> Any:
    """The ``trial_user_attributes`` table: trial_id, key, value_json."""
    from optuna.storages._rdb import models

    return models.TrialUserAttributeModel.__table__


def study_user_attrs_table() -> Any:
    """The ``study_user_attributes`` table: study_id, key, value_json."""
    from optuna.storages._rdb import models

    return models.StudyUserAttributeModel.__table__


def trial_params_table() -> Any:
    """The ``trial_params`` table: trial_id, param_name, param_value, distribution_json."""
    from optuna.storages._rdb import models

    return models.TrialParamModel.__table__


def trial_values_table() -> Any:
    """The ``trial_values`` table: trial_id, objective, value, value_type."""
    from optuna.storages._rdb import models

    return models.TrialValueModel.__table__


def trial_heartbeats_table() -> Any:
    """The ``trial_heartbeats`` table: trial_id, heartbeat (UTC, naive)."""
    from optuna.storages._rdb import models

    return models.TrialHeartbeatModel.__table__


# --------------------------------------------------------------------------- heartbeats


def heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between heartbeats the study's storage was opened with (None: no heartbeats)."""
    storage = study_storage(study)
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter() if getter is not None else None


def record_heartbeat(study: optuna.Study, tid: int) -> None:
    """Record one heartbeat of trial ``tid`` in Optuna's heartbeat table."""
    study_storage(study).record_heartbeat(tid)


def heartbeat(study: optuna.Study, trial: optuna.Trial,
              link: DatabaseLink | None = None) -> contextlib.AbstractContextManager:
    """kdtune's heartbeat thread around a trial, as a context manager.

    It records a heartbeat every ``heartbeat_interval`` seconds while the block runs and
    keeps trying through a database outage (:class:`kdtune.storage.heartbeat.HeartbeatThread`);
    on a storage without heartbeats it does nothing.
    """
    interval = heartbeat_interval(study)
    if not interval:
        return contextlib.nullcontext()
    tid = trial_id(trial)
    return HeartbeatThread(lambda: record_heartbeat(study, tid), interval, link)


_STORAGE_CALLS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies", "create_new_trial",
    "set_trial_param", "get_trial_id_from_study_id_trial_number", "get_trial_number_from_id",
    "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "get_trial", "get_all_trials",
    "get_n_trials", "get_best_trial", "get_trial_params", "get_trial_user_attrs",
    "get_trial_system_attrs",
)


def route_storage_calls(study: optuna.Study, link: DatabaseLink) -> None:
    """Send every call the study (and its trials) make to its storage through ``link``.

    So ``trial.suggest_*``, ``trial.set_user_attr``, ``study.ask`` and ``study.tell`` made
    during a database outage wait for the database (:meth:`DatabaseLink.call`) instead of
    failing the trial. The methods are replaced on this storage object only.
    """
    storage = study_storage(study)
    storage._kdtune_link = link  # type: ignore[attr-defined]  # set_trial_user_attrs' writes
    for name in _STORAGE_CALLS:
        method = getattr(storage, name, None)
        if method is None or getattr(method, "_kdtune_routed", False):
            continue

        def routed(*args, _method=method, _name=name, **kwargs):
            return link.call(lambda: _method(*args, **kwargs), _name.replace("_", " "))

        routed._kdtune_routed = True  # type: ignore[attr-defined]
        setattr(storage, name, routed)


def stale_trial_callback(study: optuna.Study) -> StaleTrialCallback | None:
    """The callback the study's storage runs on a trial it failed for lack of heartbeats."""
    return study_storage(study).get_heartbeat_stale_trial_callback()


def retry_stale_trials(max_retry: int | None) -> dict[str, Any]:
    """The :class:`~optuna.storages.RDBStorage` keyword that re-queues stale trials.

    Up to ``max_retry`` times (None: without limit), each as a WAITING copy with the same
    parameters and ``failed_trial`` / ``retry_history`` system attributes.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature warnings
        callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    return {"heartbeat_stale_trial_callback": callback}


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning (heartbeats are an experimental feature)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


__all__ = [
    "claim_waiting_trial",
    "fail_running_trial",
    "fail_trial",
    "frozen_trial",
    "get_trial",
    "heartbeat",
    "heartbeat_interval",
    "quiet_experimental",
    "rdb_engine",
    "record_heartbeat",
    "stored_now",
    "retry_stale_trials",
    "route_storage_calls",
    "set_trial_user_attr",
    "stale_trial_callback",
    "study_id",
    "study_storage",
    "study_user_attrs_table",
    "trial_heartbeats_table",
    "trial_id",
    "trial_system_attrs_table",
    "trial_user_attrs_table",
    "trials_table",
]
