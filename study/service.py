"""Studies: create them, open them, count their trials, run local workers on them.

A study stores its whole :class:`~study.config.StudyConfig` as the user attribute
``kdtune_config``, so any worker on any machine needs only the storage and the study name.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from kdtune.errors import KdtuneError, StudyNotFound
from kdtune.frozen import apply_overrides
from kdtune.storage import StorageSettings, describe, make_storage, warn_if_shared_sqlite

from .config import StudyConfig, config_from_json, load_config, validate
from .report import pareto_front

CONFIG_ATTR = "kdtune_config"
VERSION_ATTR = "kdtune_version"
_log = logging.getLogger(__name__)


def load_study_config(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    storage: str | None = None,
    n_trials: int | None = None,
) -> StudyConfig:
    """Load a study config; ``storage`` and ``n_trials`` (CLI flags) win over the file."""
    extra = list(overrides)
    cfg = load_config(path, extra)
    if storage is None and n_trials is None:
        return cfg
    raw = json.loads(cfg.model_dump_json())
    if storage is not None:
        raw["storage"] = storage
    if n_trials is not None:
        raw["n_trials"] = n_trials
    return validate(apply_overrides(raw, []))


def build_sampler(cfg: StudyConfig, worker_index: int = 0) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded with ``seed + worker_index``.

    Reseeding per worker matters: NSGA-II and random workers sharing one seed would suggest
    identical parameters in parallel.
    """
    s = cfg.sampler
    seed = None if s.seed is None else s.seed + worker_index
    if s.name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.population_size, seed=seed)
    if s.name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=s.n_startup_trials, multivariate=True, constant_liar=True
        )
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=s.n_startup_trials)
    raise ValueError(f"sampler.name {s.name!r} is not one of nsga2, tpe, random, gp")


def storage_settings(cfg: StudyConfig | None, *, create_schema: bool) -> StorageSettings:
    if cfg is None:
        return StorageSettings(create_schema=create_schema)
    return StorageSettings(
        heartbeat_interval=cfg.heartbeat_interval,
        grace_period=cfg.grace_period or 3 * cfg.heartbeat_interval,
        max_retry=cfg.max_retries,
        create_schema=create_schema,
    )


def create_study(cfg: StudyConfig) -> dict:
    """Create the study (schema included) or open it if it exists; store the config.

    Repeating it is safe (``load_if_exists``). A study that exists with a different config
    keeps its stored config, and a warning says so: a study's search space must not change
    under running workers.
    """
    storage = make_storage(cfg.storage, storage_settings(cfg, create_schema=True))
    study = optuna.create_study(
        storage=storage,
        study_name=cfg.name,
        directions=cfg.directions,
        sampler=build_sampler(cfg),
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != cfg.directions:
        raise KdtuneError(
            f"study {cfg.name!r} exists with directions "
            f"{[d.name.lower() for d in study.directions]}, not {cfg.directions}"
        )
    # The stored config never carries the storage URL: it may hold a password, and the
    # dashboard (no authentication) shows study attributes. Workers are told the storage.
    public = json.loads(cfg.model_copy(update={"storage": None}).model_dump_json())
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        from kdtune import __version__

        study.set_metric_names(list(cfg.objectives))
        study.set_user_attr(CONFIG_ATTR, public)
        study.set_user_attr(VERSION_ATTR, __version__)
        _save_note(study, cfg.model_copy(update={"storage": None}))
    elif stored != public:
        _log.warning("study %r exists with a different config; keeping the stored one", cfg.name)
    return {
        "study": cfg.name,
        "storage": describe(cfg.storage),
        "objectives": list(cfg.objectives),
        "directions": cfg.directions,
        "trials": len(study.get_trials(deepcopy=False)),
        "n_trials": cfg.n_trials,
    }


def _save_note(study: optuna.Study, cfg: StudyConfig) -> None:
    """Show the config on the dashboard's study page (optuna-dashboard notes)."""
    from optuna_dashboard import save_note

    from kdtune.frozen import dump_yaml

    save_note(study, f"# kdtune study `{cfg.name}`\n\nConfig:\n\n```yaml\n{dump_yaml(cfg)}```\n")


def open_study(
    name: str, storage: str | None, *, heartbeat: bool = False, worker_index: int = 0
) -> tuple[optuna.Study, StudyConfig]:
    """Open an existing kdtune study and its stored config.

    With ``heartbeat`` the storage records heartbeats and re-queues trials of dead workers;
    the schema is never created here (that is ``create``'s job).
    """
    plain = make_storage(storage, StorageSettings(create_schema=False))
    try:
        study_id = plain.get_study_id_from_name(name)
    except KeyError as e:
        names = [s.study_name for s in plain.get_all_studies()]
        shown = ", ".join(names[:10]) if names else "none"
        raise StudyNotFound(
            f"no study named {name!r} in {describe(storage)}; studies there: {shown}"
        ) from e
    except Exception as e:  # an empty database has no tables yet
        if "does not exist" in str(e) or "no such table" in str(e):
            raise StudyNotFound(
                f"no study named {name!r} in {describe(storage)} (no kdtune studies there yet)"
            ) from e
        raise
    raw = plain.get_study_user_attrs(study_id).get(CONFIG_ATTR)
    if raw is None:
        raise KdtuneError(f"study {name!r} was not created by kdtune (no stored config)")
    cfg = config_from_json(json.dumps(raw))
    settings = storage_settings(cfg if heartbeat else None, create_schema=False)
    st = make_storage(storage, settings) if heartbeat else plain
    study = optuna.load_study(study_name=name, storage=st,
                              sampler=build_sampler(cfg, worker_index))
    return study, cfg


# ---------------------------------------------------------------------------------------
# Counting trials against the budget


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of FAIL trials that have been re-queued (they no longer count)."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", []))
    return out


def budget_counts(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials by state, and how many count against the budget.

    ``finished``: COMPLETE, PRUNED, and FAIL trials that will not be retried.
    ``used``: finished + RUNNING + WAITING (a re-queued trial waits for a worker).
    """
    retried = retried_numbers(trials)
    states = Counter(t.state for t in trials)
    final_fail = sum(1 for t in trials if t.state == TrialState.FAIL and t.number not in retried)
    finished = states[TrialState.COMPLETE] + states[TrialState.PRUNED] + final_fail
    return {
        "complete": states[TrialState.COMPLETE],
        "pruned": states[TrialState.PRUNED],
        "failed": states[TrialState.FAIL],
        "failed_final": final_fail,
        "running": states[TrialState.RUNNING],
        "waiting": states[TrialState.WAITING],
        "finished": finished,
        "used": finished + states[TrialState.RUNNING] + states[TrialState.WAITING],
    }


def budget_counts_db(study: optuna.Study) -> dict[str, int]:
    """:func:`budget_counts` for ``study``, counted by the database (the workers' hot path).

    Loading every trial to count them made each ask grow with the study (41 ms at 0 trials,
    87 ms at 10,000 on PostgreSQL, bench/RESULTS-storage.md); SQL counts keep kdtune's part
    of an ask nearly flat.
    """
    from optuna.storages._rdb import models
    from sqlalchemy import func, select

    from kdtune.storage.factory import rdb_engine

    trials = models.TrialModel.__table__
    attrs = models.TrialSystemAttributeModel.__table__
    sid = study._study_id
    with rdb_engine(study._storage).connect() as conn:
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
                .where(trials.c.study_id == sid, attrs.c.key == "retry_history")
            ).scalars():
                retried.update(json.loads(value))
            final_fail = len(fail_numbers - retried)
    complete, pruned = states.get(TrialState.COMPLETE, 0), states.get(TrialState.PRUNED, 0)
    running, waiting = states.get(TrialState.RUNNING, 0), states.get(TrialState.WAITING, 0)
    finished = complete + pruned + final_fail
    return {"complete": complete, "pruned": pruned, "failed": failed,
            "failed_final": final_fail, "running": running, "waiting": waiting,
            "finished": finished, "used": finished + running + waiting}


def study_status(name: str, storage: str | None) -> dict:
    """Trial counts, the budget and the Pareto front size of a study."""
    study, cfg = open_study(name, storage)
    trials = study.get_trials(deepcopy=False)
    counts = budget_counts(trials)
    front = pareto_front(study) if counts["complete"] else []
    return {
        "study": name,
        "storage": describe(storage if storage is not None else cfg.storage),
        "objectives": ", ".join(f"{m} ({d})" for m, d in zip(cfg.objectives, cfg.directions,
                                                              strict=True)),
        "budget": cfg.n_trials,
        **counts,
        "pareto_front": len(front),
    }


# ---------------------------------------------------------------------------------------
# Local workers


def run_study(cfg: StudyConfig, workers: int = 2, progress: bool = True) -> dict:
    """Create the study, then run ``workers`` worker processes until the budget is done.

    Workers are separate processes (``python -m study.worker``), exactly as on other
    machines: one trial at a time each, all pulling from the shared storage. The storage URL
    reaches them through ``$KDTUNE_STORAGE`` (never on a command line, where ``ps`` shows
    passwords). Ctrl-C stops them cleanly: each fails and re-queues its current trial.
    """
    warn_if_shared_sqlite(cfg.storage, workers)
    create_study(cfg)
    env = dict(os.environ)
    if cfg.storage:
        env["KDTUNE_STORAGE"] = cfg.storage
    threads = cfg.distill.threads or max(1, (os.cpu_count() or 1) // workers)
    env["KDTUNE_THREADS"] = str(threads)
    if progress:  # one progress bar (ours): no model-loading / tokenising bars from workers
        env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        env.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "kdtune.study.cli", "worker", "--study", cfg.name,
             "--index", str(i)],
            env=env,
        )
        for i in range(workers)
    ]
    try:
        _watch(cfg, procs, progress)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    codes = [p.wait() for p in procs]
    status = study_status(cfg.name, cfg.storage)
    if any(codes):
        raise KdtuneError(f"worker exit codes {codes}; study status: {status}")
    return status


def _watch(cfg: StudyConfig, procs: list[subprocess.Popen], progress: bool) -> None:
    """Show trials done / running / failed and the Pareto front size until workers exit."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    study, _ = open_study(cfg.name, cfg.storage)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("trials", total=cfg.n_trials, detail="")
        front, front_at = 0, 0  # Pareto front size, and the complete count it was taken at
        while True:
            alive = any(p.poll() is None for p in procs)
            try:
                c = budget_counts_db(study)  # counted in SQL: cheap on large studies
                if c["complete"] != front_at:  # the front loads every trial: only on change
                    front, front_at = len(pareto_front(study)), c["complete"]
                bar.update(task, completed=min(c["finished"], cfg.n_trials),
                           detail=f"running {c['running']}  failed {c['failed']}  "
                           f"pruned {c['pruned']}  pareto {front}")
            except Exception as e:  # a storage hiccup must not kill the workers' parent
                _log.debug("progress poll failed: %s", e)
            if not alive:
                break
            time.sleep(1.0)
